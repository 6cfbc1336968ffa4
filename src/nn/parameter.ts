/**
 * `Parameter`: a trainable tensor with a name, its gradient, and a version that tells compiled
 * runners when to re-pack.
 *
 * @module
 */

import type { BackendName } from "../contract.ts";
import { checkShape, describe } from "../errors.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import type { ResidentGroup } from "./resident.ts";

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
  /** d loss / d value, accumulated by `backward()`; `null` until then or after `zeroGrad()`. */
  grad: Tensor | null = null;
  /**
   * Set by its layer while a runner holds the weights (wasm): optimizers then update the whole
   * group there in one fused step. `null` otherwise.
   */
  resident: ResidentGroup | null = null;
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
   */
  updatedInPlace(read: () => Float32Array): void {
    this.#read = read;
    this.#version++;
  }

  /** How many times the value was replaced. */
  get version(): number {
    return this.#version;
  }
}
