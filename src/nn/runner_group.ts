/**
 * `RunnerGroup`: what wasm's `ResidentGroup` and webgpu's `DeviceGroup` share, a layer's
 * parameters whose weights a compiled runner holds: whether a step may run there, who holds the
 * optimizer state, the flat layout, and the hand-over when the runner is freed. The subclasses
 * differ in how values come back: wasm reads its memory synchronously, webgpu only
 * asynchronously.
 *
 * @module
 */

import type { ResidentOptimizerState } from "../contract/mod.ts";
import type { Parameter, ParameterHolder } from "./parameter.ts";

/** Who holds a group's optimizer state: asked to read it back before another owner writes. */
export interface ResidentOwner {
  /** Copies the group's optimizer state into the owner's own (TypeScript) state. */
  evacuate(group: RunnerGroup): void;
}

/** A runner that tells its groups when it is freed. */
export interface ReleasingRunner {
  /** Calls `listener` when the runner is about to be freed, while its weights still exist. */
  onRelease(listener: () => void): void;
}

/**
 * The parameters of one recurrent layer (in `parameterSizes` order) bound to the runner that
 * holds their weights. When the runner is freed, what it still holds is read back (`settle`),
 * then the optimizer that owns the state takes it back and the parameters are unbound.
 *
 * @example Both backends' groups are runner groups
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, tensor } from "../../mod.ts";
 * import { RunnerGroup } from "./runner_group.ts";
 * const lstm = new LSTM(1, 2, { backend: "wasm", seed: 1 }).train();
 * await lstm.forward(tensor([1, 2], [1, 2, 1]));
 * assert.ok(lstm.parameters()[0].resident instanceof RunnerGroup);
 * lstm.dispose();
 * ```
 */
export abstract class RunnerGroup implements ParameterHolder {
  /** The parameters, in the order of the runner's flat layout. */
  readonly parameters: readonly Parameter[];
  readonly #current: () => boolean;
  readonly #stepped: () => void;
  readonly #settle: () => Promise<void> | void;
  readonly #sizes: readonly number[];
  readonly #offsets: readonly number[];
  #released = false;
  #owner: ResidentOwner | null = null;

  /**
   * Binds `parameters` to `runner` and sets their `resident` to this group.
   *
   * @param parameters The layer's parameters, in the runner's flat order.
   * @param runner The runner that holds the weights.
   * @param current Whether the layer still runs on this runner (no parameter replaced since).
   * @param stepped Called after each step (the layer notes that its runner is up to date).
   * @param settle Reads back what only the runner holds, when it is being freed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { RunnerGroup } from "./runner_group.ts";
   * class Held extends RunnerGroup {
   *   readState() { return { steps: 0, slots: [new Float32Array(1), new Float32Array(1), new Float32Array(1)] } as const; }
   *   writeState() {}
   * }
   * const p = new Parameter("w", tensor([1], [1]));
   * const group = new Held([p], { onRelease() {} }, () => true, () => {}, () => {});
   * assert.equal(p.resident, group);
   * ```
   */
  constructor(
    parameters: readonly Parameter[],
    runner: ReleasingRunner,
    current: () => boolean,
    stepped: () => void,
    settle: () => Promise<void> | void,
  ) {
    this.parameters = [...parameters];
    this.#current = current;
    this.#stepped = stepped;
    this.#settle = settle;
    this.#sizes = parameters.map(({ value }) => value.data.length);
    let start = 0;
    this.#offsets = this.#sizes.map((size) => (start += size) - size);
    for (const parameter of parameters) parameter.resident = this;
    runner.onRelease(() => this.#release());
  }

  /** Whether a step may run here: the runner is alive and still the layer's. */
  get usable(): boolean {
    return !this.#released && this.#current();
  }

  /** Each parameter's length in the flat layout. */
  get sizes(): readonly number[] {
    return this.#sizes;
  }

  /** Each parameter's first element in the flat layout. */
  get offsets(): readonly number[] {
    return this.#offsets;
  }

  /**
   * Makes `owner` the holder of the optimizer state; a previous owner reads its state back first.
   * Returns whether the state already was `owner`'s.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { RunnerGroup } from "./runner_group.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as RunnerGroup;
   * const owner = { evacuate() {} };
   * assert.equal(group.claim(owner), false);
   * assert.equal(group.claim(owner), true);
   * lstm.dispose();
   * ```
   */
  claim(owner: ResidentOwner): boolean {
    if (this.#owner === owner) return true;
    this.#owner?.evacuate(this);
    this.#owner = owner;
    return false;
  }

  /**
   * One array per parameter (in order, e.g. their gradients) as one array in the flat layout.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { RunnerGroup } from "./runner_group.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as RunnerGroup;
   * const flat = group.flatten(group.sizes.map((size, index) => new Float32Array(size).fill(index)));
   * assert.deepEqual([...flat.subarray(group.offsets[3])], [3, 3, 3, 3]);
   * lstm.dispose();
   * ```
   */
  flatten(arrays: readonly Float32Array[]): Float32Array {
    const flat = new Float32Array(this.#sizes.reduce((sum, size) => sum + size, 0));
    arrays.forEach((array, index) => flat.set(array, this.#offsets[index]));
    return flat;
  }

  /**
   * A copy of the optimizer state, flat.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { RunnerGroup } from "./runner_group.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * assert.equal((lstm.parameters()[0].resident as RunnerGroup).readState().steps, 0);
   * lstm.dispose();
   * ```
   */
  abstract readState(): ResidentOptimizerState;

  /**
   * Replaces the optimizer state, flat.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, tensor } from "../../mod.ts";
   * import type { RunnerGroup } from "./runner_group.ts";
   * const lstm = new LSTM(1, 1, { backend: "wasm", seed: 1 }).train();
   * await lstm.forward(tensor([1], [1, 1, 1]));
   * const group = lstm.parameters()[0].resident as RunnerGroup;
   * group.writeState({ steps: 2, slots: group.readState().slots });
   * assert.equal(group.readState().steps, 2);
   * lstm.dispose();
   * ```
   */
  abstract writeState(state: ResidentOptimizerState): void;

  /** Whether the runner was freed. */
  protected get released(): boolean {
    return this.#released;
  }

  /**
   * After a step on the runner: marks each parameter's value as changed in place (`read(index)`
   * gives parameter `index`'s new value on first access) and tells the layer.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, tensor } from "../../mod.ts";
   * import { RunnerGroup } from "./runner_group.ts";
   * class Held extends RunnerGroup {
   *   readState() { return { steps: 0, slots: [new Float32Array(1), new Float32Array(1), new Float32Array(1)] } as const; }
   *   writeState() {}
   *   bump() { this.markStepped(() => Float32Array.of(7)); }
   * }
   * const p = new Parameter("w", tensor([1], [1]));
   * let steps = 0;
   * new Held([p], { onRelease() {} }, () => true, () => steps++, () => {}).bump();
   * assert.equal(steps, 1);
   * assert.equal(p.value.data[0], 7);
   * ```
   */
  protected markStepped(read: (index: number) => Float32Array): void {
    this.parameters.forEach((parameter, index) => parameter.updatedInPlace(() => read(index)));
    this.#stepped();
  }

  /**
   * The runner is being freed: `settle` reads back what it still holds (a promise when that is
   * asynchronous), then the owner takes the optimizer state and the parameters are unbound.
   */
  #release(): void {
    const settled = this.#settle();
    this.#released = true;
    if (settled === undefined) this.#handOver();
    else settled.then(() => this.#handOver(), () => {});
  }

  #handOver(): void {
    this.#owner?.evacuate(this);
    this.#owner = null;
    for (const parameter of this.parameters) {
      if (parameter.resident === this) parameter.resident = null;
    }
  }
}
