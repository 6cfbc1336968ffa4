/**
 * `Parameter`: a trainable tensor with a name, its gradient, and a version that tells compiled
 * runners when to re-pack.
 *
 * @module
 */

import type { BackendName } from "../contract/mod.ts";
import { checkShape, describe } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/**
 * What holds a parameter's weights while a compiled runner has them: a runner group
 * (`RunnerGroup`, `src/nn/runner_group.ts`, which implements this). A parameter names only this,
 * so the core `Parameter` depends on no backend's group.
 */
export interface ParameterHolder {
  /** The parameters it holds, in the order of the runner's flat layout. */
  readonly parameters: readonly Parameter[];
  /** Whether a fused step may run there: the runner is alive and still the layer's. */
  readonly usable: boolean;
}

/**
 * A gradient that stays where the weights live (the webgpu device): its squared norm is known
 * here, its values are read back only by an explicit `sync()`.
 */
export interface HeldGradient {
  /** The group whose device buffer holds it (a `DeviceGroup`). */
  readonly holder: ParameterHolder;
  /** `Σ g²`, as of the last backward (and clipping). */
  squaredNorm(): number;
  /** Multiplies the gradient by `factor` where it lives. */
  scale(factor: number): void;
  /** The values read back by the last `sync()`; throws when they are older than the device's. */
  read(): Float32Array;
}

/**
 * A trainable tensor: `{ name, value, grad }`, as PyTorch's `nn.Parameter` with its `.grad`.
 * Layers return the same `Parameter` objects from every `parameters()` call, so optimizers hold
 * them across `loadStateDict`. A new value is *assigned* (`p.value = next`), never written into
 * `p.value.data`: the assignment bumps {@linkcode Parameter.version}, which is how a model knows
 * to re-pack its weights for its backend.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Parameter, tensor } from "../../mod.ts";
 * const p = new Parameter("weight", tensor([1, 2], [2]));
 * p.value = tensor([3, 4], [2]);
 * assert.equal(p.version, 1);
 * assert.equal(p.grad, null);
 * ```
 */
export class Parameter {
  /** The key of this parameter in its layer's `stateDict()` (`i2h.weight`, `weight`, ...). */
  readonly name: string;
  /** The backend of the layer that owns it; `null` for layers that run anywhere (`Linear`). */
  readonly backend: BackendName | null;
  /**
   * Set by its layer while a runner holds the weights (wasm memory, or the webgpu device): a
   * `RunnerGroup`, whose optimizers update the whole group there in one fused step. `null`
   * otherwise.
   *
   * @ignore
   */
  resident: ParameterHolder | null = null;
  #grad: Tensor | null = null;
  /** Set while the gradient lives on a device: `#grad` then caches what `sync()` read. */
  #held: HeldGradient | null = null;
  #value: Tensor;
  /** Reads the value back from where an in-place update left it; `null` when `#value` is current. */
  #read: (() => Float32Array) | null = null;
  #version = 0;

  /**
   * Makes a parameter without gradient.
   *
   * @param name The parameter's `stateDict` key.
   * @param value Its initial value (used as is, not copied).
   * @param backend The owning layer's backend, or `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, zeros } from "../../mod.ts";
   * const p = new Parameter("bias", zeros([3]));
   * assert.deepEqual([p.name, p.grad, p.backend, p.version], ["bias", null, null, 0]);
   * p.value = zeros([3]); // replaced, never written into
   * assert.equal(p.version, 1);
   * ```
   */
  constructor(name: string, value: Tensor, backend: BackendName | null = null) {
    if (typeof name !== "string") {
      throw new TypeError(`name must be a string, got ${describe(name)}`);
    }
    checkTensor(`value of parameter "${name}"`, value);
    this.name = name;
    this.#value = value;
    this.backend = backend;
  }

  /**
   * The current value (read-only by convention: assign a new tensor to change it). After an
   * in-place update it is read back here, once.
   */
  get value(): Tensor {
    if (this.#read !== null) {
      const data = this.#read();
      this.#read = null;
      this.#value = { shape: this.#value.shape, data };
    }
    return this.#value;
  }

  /** Replaces the value with a tensor of the same shape and bumps the version. */
  set value(next: Tensor) {
    const name = `the new value of parameter "${this.name}"`;
    checkTensor(name, next);
    checkShape(name, next.shape, this.#value.shape, "the parameter's shape");
    this.#value = next;
    this.#read = null;
    this.#version++;
  }

  /**
   * Notes that the value was updated where it lives (a fused optimizer step): bumps the version,
   * and the next read of `value` calls `read` for the new data.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * p.updatedInPlace(() => Float32Array.of(3, 4));
   * assert.deepEqual([p.version, [...p.value.data]], [1, [3, 4]]);
   * ```
   *
   * @ignore
   */
  updatedInPlace(read: () => Float32Array): void {
    this.#read = read;
    this.#version++;
  }

  /**
   * d loss / d value, accumulated by `backward()`; `null` until then or after `zeroGrad()`.
   * Assigning replaces it (and drops a gradient held on a device).
   *
   * @throws {Error} When the gradient lives on the webgpu device and changed since the last
   *   `await opt.sync()` (or `layer.sync()`): WebGPU cannot read it back synchronously.
   */
  get grad(): Tensor | null {
    if (this.#held !== null) return { shape: this.#value.shape, data: this.#held.read() };
    return this.#grad;
  }

  set grad(next: Tensor | null) {
    this.#held = null;
    this.#grad = next;
  }

  /**
   * The device that holds the gradient, or `null` when `grad` is a host tensor (or `null`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * p.grad = tensor([2], [1]);
   * assert.equal(p.heldGrad, null); // a host gradient
   * ```
   *
   * @ignore
   */
  get heldGrad(): HeldGradient | null {
    return this.#held;
  }

  /**
   * Notes that the gradient now lives on a device (after a backward there).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const held = { holder: null!, squaredNorm: () => 4, scale() {}, read: () => Float32Array.of(2) };
   * p.holdGrad(held);
   * assert.equal(p.gradSquaredNorm(), 4);
   * assert.deepEqual([...p.grad!.data], [2]);
   * ```
   *
   * @ignore
   */
  holdGrad(held: HeldGradient): void {
    this.#held = held;
    this.#grad = null;
  }

  /**
   * `Σ g²` of the gradient (0 without one), without reading a gradient held on a device back.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([0, 0], [2]));
   * p.grad = tensor([3, 4], [2]);
   * assert.equal(p.gradSquaredNorm(), 25);
   * ```
   */
  gradSquaredNorm(): number {
    if (this.#held !== null) return this.#held.squaredNorm();
    let squares = 0;
    const data = this.#grad?.data ?? [];
    for (let i = 0; i < data.length; i++) squares += data[i] * data[i];
    return squares;
  }

  /**
   * Multiplies the gradient by `factor` where it lives (a new host tensor, or on the device).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([0], [1]));
   * p.grad = tensor([4], [1]);
   * p.scaleGrad(0.5);
   * assert.deepEqual([...p.grad!.data], [2]);
   * ```
   */
  scaleGrad(factor: number): void {
    if (this.#held !== null) return this.#held.scale(factor);
    const grad = this.#grad;
    if (grad === null) return;
    this.#grad = { shape: grad.shape, data: grad.data.map((value: number) => value * factor) };
  }

  /** How many times the value was replaced. */
  get version(): number {
    return this.#version;
  }
}
