/**
 * `DeviceGroup`: a layer's parameters whose weights, gradients and optimizer state live on the
 * webgpu device. WebGPU reads buffers back only asynchronously, while `p.value`, `p.grad`,
 * `opt.step()` and `opt.stateDict()` are synchronous: so every change is submitted at once, the
 * host copies are read back together by an explicit `await sync()`, and a synchronous read of a
 * host copy older than the device throws and says so.
 *
 * @module
 */

import type { DeviceSnapshot, DeviceWeights, OptimizerUpdate } from "../contract/mod.ts";
import type { ResidentOptimizerState } from "../contract/mod.ts";
import type { HeldGradient, Parameter } from "./parameter.ts";
import { type ReleasingRunner, RunnerGroup } from "./runner_group.ts";

/** What changed on the device since the last `sync()`: one counter per kind of content. */
interface Versions {
  values: number;
  grads: number;
  state: number;
}

/**
 * The parameters of one recurrent layer (in `parameterSizes` order) bound to the device that
 * holds their weights. A backward leaves their gradients there ({@linkcode Parameter.heldGrad},
 * with their squared norms known here, for `clipGradNorm`), a step updates the weights there,
 * and {@linkcode DeviceGroup.sync} reads weights, gradients and optimizer state back at once.
 *
 * @example A layer binds its parameters after a training forward on webgpu
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, tensor } from "../../mod.ts";
 * import { requestWebGpuBackend } from "../backends/webgpu/mod.ts";
 * if (await requestWebGpuBackend() !== null) {
 *   const lstm = new LSTM(1, 1, { backend: "webgpu", seed: 1 }).train();
 *   await lstm.forward(tensor([1], [1, 1, 1]));
 *   const group = lstm.parameters()[0].resident;
 *   assert.ok(group !== null && group.usable);
 *   lstm.dispose();
 * }
 * ```
 */
export class DeviceGroup extends RunnerGroup {
  readonly #weights: DeviceWeights;
  #versions: Versions = { values: 0, grads: 0, state: 0 };
  /** The last read-back, and the versions it shows. */
  #synced: { snapshot: DeviceSnapshot; versions: Versions } | null = null;
  /** The read-back under way, which `sync()` calls share. */
  #reading: Promise<void> | null = null;
  /** Why the last read-back failed (a lost device), or `null`: stale reads throw it. */
  #failure: Error | null = null;
  /** Each gradient's `Σ g²`, as the device computed it, times the clipping since. */
  #squaredNorms: number[];
  /** Each gradient's clipping factor not yet applied on the device. */
  #factors: number[];

  /**
   * Binds `parameters` to `weights` and sets their `resident` to this group.
   *
   * @param parameters The layer's parameters, in the device's flat order.
   * @param weights The runner's device weights.
   * @param current Whether the layer still runs on this runner (no parameter replaced since).
   * @param stepped Called after each step (the layer notes that its runner is up to date).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { DeviceGroup } from "./device_group.ts";
   * import { requestWebGpuBackend } from "../backends/webgpu/mod.ts";
   * if (await requestWebGpuBackend() !== null) {
   *   const lstm = new LSTM(1, 1, { backend: "webgpu", seed: 1 }).train();
   *   await lstm.forward(tensor([1], [1, 1, 1]));
   *   const group = lstm.parameters()[0].resident as DeviceGroup;
   *   assert.deepEqual(group.sizes, [4, 4, 4, 4]);
   *   lstm.dispose();
   * }
   * ```
   */
  constructor(
    parameters: readonly Parameter[],
    weights: DeviceWeights & ReleasingRunner,
    current: () => boolean,
    stepped: () => void,
  ) {
    // Freed runner: the read-back is submitted while its buffers still exist.
    super(parameters, weights, current, stepped, () => this.sync());
    this.#weights = weights;
    this.#squaredNorms = parameters.map(() => 0);
    this.#factors = parameters.map(() => 1);
  }

  /**
   * How a backward through this group's runner treats its parameter gradients: `"add"` them to
   * the device's when the parameters' gradients are held there, `"replace"` the device's when
   * they are all `null` (after `zeroGrad()`), and `null` (the host path: `grad` accumulates in
   * TypeScript) for anything else. Pending clipping is applied on the device before an `"add"`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const snapshot = {
   *   parameters: Float32Array.of(3, 4),
   *   gradients: Float32Array.of(1, 1),
   *   state: { steps: 1, slots: [new Float32Array(2), new Float32Array(2), new Float32Array(2)] },
   * } as const;
   * const device = { // a stand-in for a webgpu runner's DeviceWeights
   *   step() {}, scaleGradients() {}, writeGradients() {}, writeState() {}, onRelease() {},
   *   read: () => Promise.resolve(snapshot),
   * };
   * const group = new DeviceGroup([p], device, () => true, () => {});
   * assert.equal(group.backwardMode(), "replace"); // no gradient yet
   * group.heldAfterBackward(Float32Array.of(2));
   * assert.equal(group.backwardMode(), "add");
   * ```
   */
  backwardMode(): "add" | "replace" | null {
    if (!this.usable) return null;
    if (this.parameters.every((parameter) => parameter.heldGrad?.holder === this)) {
      this.#applyFactors();
      return "add";
    }
    const empty = this.parameters.every((p) => p.heldGrad === null && p.grad === null);
    return empty ? "replace" : null;
  }

  /**
   * Notes a backward that left the gradients on the device, with their squared norms.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const snapshot = {
   *   parameters: Float32Array.of(3, 4),
   *   gradients: Float32Array.of(1, 1),
   *   state: { steps: 1, slots: [new Float32Array(2), new Float32Array(2), new Float32Array(2)] },
   * } as const;
   * const device = { // a stand-in for a webgpu runner's DeviceWeights
   *   step() {}, scaleGradients() {}, writeGradients() {}, writeState() {}, onRelease() {},
   *   read: () => Promise.resolve(snapshot),
   * };
   * const group = new DeviceGroup([p], device, () => true, () => {});
   * group.heldAfterBackward(Float32Array.of(2));
   * assert.equal(p.heldGrad?.holder, group);
   * assert.equal(p.gradSquaredNorm(), 2); // known without a read-back
   * assert.throws(() => p.grad, /await opt\.sync\(\)/);
   * ```
   */
  heldAfterBackward(squaredNorms: Float32Array): void {
    this.#versions.grads++;
    this.#squaredNorms = [...squaredNorms];
    this.#factors = this.parameters.map(() => 1);
    this.parameters.forEach((parameter, index) => parameter.holdGrad(this.#held(index)));
  }

  /**
   * One update where the weights live: from the gradients held there (`grads` `null`), or from
   * `grads` (host gradients, in order), uploaded first.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const snapshot = {
   *   parameters: Float32Array.of(3, 4),
   *   gradients: Float32Array.of(1, 1),
   *   state: { steps: 1, slots: [new Float32Array(2), new Float32Array(2), new Float32Array(2)] },
   * } as const;
   * const device = { // a stand-in for a webgpu runner's DeviceWeights
   *   step() {}, scaleGradients() {}, writeGradients() {}, writeState() {}, onRelease() {},
   *   read: () => Promise.resolve(snapshot),
   * };
   * const group = new DeviceGroup([p], device, () => true, () => {});
   * group.step({ kind: "sgd", lr: 1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 }, [
   *   Float32Array.of(1, 1),
   * ]);
   * assert.equal(p.version, 1);
   * await group.sync();
   * assert.deepEqual([...p.value.data], [3, 4]); // what the device holds
   * ```
   */
  step(update: OptimizerUpdate, grads: readonly Float32Array[] | null): void {
    if (grads === null) {
      this.#applyFactors();
    } else {
      this.#weights.writeGradients(this.flatten(grads));
      this.#versions.grads++;
    }
    this.#weights.step(update);
    this.#versions.values++;
    this.#versions.state++;
    this.markStepped((index) => this.#slice("values", index));
  }

  /**
   * A copy of the optimizer state, flat, as the last `sync()` read it.
   *
   * @throws {Error} When the device's state changed since the last `sync()`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const snapshot = {
   *   parameters: Float32Array.of(3, 4),
   *   gradients: Float32Array.of(1, 1),
   *   state: { steps: 1, slots: [new Float32Array(2), new Float32Array(2), new Float32Array(2)] },
   * } as const;
   * const device = { // a stand-in for a webgpu runner's DeviceWeights
   *   step() {}, scaleGradients() {}, writeGradients() {}, writeState() {}, onRelease() {},
   *   read: () => Promise.resolve(snapshot),
   * };
   * const group = new DeviceGroup([p], device, () => true, () => {});
   * await group.sync();
   * assert.equal(group.readState().steps, 1);
   * ```
   */
  readState(): ResidentOptimizerState {
    const synced = this.#fresh("state", "the optimizer state of");
    const { steps, slots: [first, second, max] } = synced.snapshot.state;
    return { steps, slots: [first.slice(), second.slice(), max.slice()] };
  }

  /**
   * Replaces the optimizer state, flat, on the device.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const snapshot = {
   *   parameters: Float32Array.of(3, 4),
   *   gradients: Float32Array.of(1, 1),
   *   state: { steps: 1, slots: [new Float32Array(2), new Float32Array(2), new Float32Array(2)] },
   * } as const;
   * const device = { // a stand-in for a webgpu runner's DeviceWeights
   *   step() {}, scaleGradients() {}, writeGradients() {}, writeState() {}, onRelease() {},
   *   read: () => Promise.resolve(snapshot),
   * };
   * const group = new DeviceGroup([p], device, () => true, () => {});
   * await group.sync();
   * group.writeState({ steps: 2, slots: snapshot.state.slots });
   * assert.throws(() => group.readState(), /await opt\.sync\(\)/); // newer on the device
   * ```
   */
  writeState(state: ResidentOptimizerState): void {
    this.#weights.writeState(state);
    this.#versions.state++;
  }

  /**
   * Reads weights, gradients and optimizer state back from the device in one read-back, so that
   * `p.value`, `p.grad` and the optimizer's `stateDict()` can be read synchronously until the
   * next change on the device.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, SGD, sum, tensor } from "../../mod.ts";
   * import { DeviceGroup } from "./device_group.ts";
   * import { requestWebGpuBackend } from "../backends/webgpu/mod.ts";
   * if (await requestWebGpuBackend() !== null) {
   *   const lstm = new LSTM(1, 1, { backend: "webgpu", seed: 1 }).train();
   *   const opt = new SGD(lstm.parameters(), { lr: 0.1 });
   *   await sum((await lstm.forward(tensor([1], [1, 1, 1]))).output).backward();
   *   opt.step();
   *   assert.throws(() => lstm.parameters()[0].value, /await opt\.sync\(\)/);
   *   await (lstm.parameters()[0].resident as DeviceGroup).sync();
   *   assert.equal(lstm.parameters()[0].value.data.length, 4);
   *   lstm.dispose();
   * }
   * ```
   */
  sync(): Promise<void> {
    if (this.#reading !== null) return this.#reading;
    if (this.released) return Promise.resolve();
    this.#applyFactors();
    const versions = { ...this.#versions };
    const read = this.#weights.read().then((snapshot) => {
      this.#synced = { snapshot, versions };
      this.#failure = null;
    }, (error: unknown) => {
      this.#failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    }).finally(() => {
      if (this.#reading === read) this.#reading = null;
    });
    this.#reading = read;
    return read;
  }

  /** The held gradient of parameter `index`. */
  #held(index: number): HeldGradient {
    return {
      holder: this,
      squaredNorm: () => this.#squaredNorms[index],
      scale: (factor) => {
        this.#factors[index] *= factor;
        this.#squaredNorms[index] *= factor * factor;
        this.#versions.grads++;
      },
      read: () => this.#slice("grads", index),
    };
  }

  /** Applies the pending clipping factors on the device. */
  #applyFactors(): void {
    if (this.#factors.every((factor) => factor === 1) || this.released) return;
    this.#weights.scaleGradients(this.#factors);
    this.#factors = this.parameters.map(() => 1);
  }

  /** Parameter `index`'s part of the synced weights or gradients. */
  #slice(kind: "values" | "grads", index: number): Float32Array {
    const what = kind === "values" ? "the value of" : "the gradient of";
    const synced = this.#fresh(kind, `${what} parameter "${this.parameters[index].name}":`);
    const flat = kind === "values" ? synced.snapshot.parameters : synced.snapshot.gradients;
    const from = this.offsets[index];
    return flat.slice(from, from + this.sizes[index]);
  }

  /** The last read-back, if it shows the device's `kind` as it is now. */
  #fresh(kind: keyof Versions, what: string): { snapshot: DeviceSnapshot; versions: Versions } {
    const synced = this.#synced;
    if (synced === null || synced.versions[kind] !== this.#versions[kind]) {
      // After a failed read-back (the device was lost), syncing again cannot help: say why.
      if (this.#failure !== null) throw this.#failure;
      throw new Error(
        `${what} this webgpu layer changed on the device since it was last read back, and ` +
          "WebGPU cannot read it synchronously: `await opt.sync()` (or `await layer.sync()`) " +
          "first",
      );
    }
    return synced;
  }
}

/**
 * Reads back everything of `params` that lives on a device, one read-back per layer: after it,
 * their `value`, `grad` and the optimizer state read synchronously again.
 *
 * @example
 * ```ts
 * import { Parameter, tensor } from "../../mod.ts";
 * import { syncParameters } from "./device_group.ts";
 * await syncParameters([new Parameter("w", tensor([1], [1]))]); // nothing on a device: no-op
 * ```
 */
export async function syncParameters(params: readonly Parameter[]): Promise<void> {
  const groups = new Set<DeviceGroup>();
  for (const parameter of params) {
    if (parameter.resident instanceof DeviceGroup) groups.add(parameter.resident);
    const holder = parameter.heldGrad?.holder;
    if (holder instanceof DeviceGroup) groups.add(holder);
  }
  await Promise.all([...groups].map((group) => group.sync()));
}
