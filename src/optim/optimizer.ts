/**
 * The base of the optimizers: parameter checks, `zeroGrad()`, `step()` over the parameters that
 * have a gradient, per-parameter state, `stateDict()` / `loadStateDict()` and `dispose()`.
 *
 * @module
 */

import type { OptimizerUpdate } from "../contract/mod.ts";
import { describe } from "../errors.ts";
import { firstNonfiniteGrad, refusedStep } from "./nonfinite.ts";
import { checkOptionNames, nonfiniteOption, numberOption } from "./options.ts";
import { Parameter } from "../nn/parameter.ts";
import { DeviceGroup, syncParameters } from "../nn/device_group.ts";
import { ResidentGroup } from "../nn/resident.ts";
import { type ResidentOwner, RunnerGroup } from "../nn/runner_group.ts";
import type {
  OptimizerStateDict,
  OptionValue,
  ParameterState,
  ResidentParameterState,
} from "./state.ts";
import type { Tensor } from "../tensor.ts";

/** Whether `parameter` has a gradient, here or held on a device (without reading it back). */
function hasGrad(parameter: Parameter): boolean {
  return parameter.heldGrad !== null || parameter.grad !== null;
}

/**
 * An optimizer over a fixed list of parameters, as PyTorch's `torch.optim.Optimizer` with one
 * parameter group.
 *
 * @example A new update rule: sign descent
 * ```ts
 * import assert from "node:assert/strict";
 * import { Optimizer, Parameter, type ParameterState, tensor } from "../../mod.ts";
 * class SignSGD extends Optimizer {
 *   constructor(params: Parameter[], lr: number) {
 *     super(params, { lr });
 *   }
 *   protected update(value: Float32Array, grad: Float32Array): ParameterState {
 *     const lr = this.option<number>("lr");
 *     for (let i = 0; i < value.length; i++) value[i] -= lr * Math.sign(grad[i]);
 *     return {};
 *   }
 * }
 * const p = new Parameter("w", tensor([1, 1], [2]));
 * const opt = new SignSGD([p], 0.5);
 * p.grad = tensor([3, -0.1], [2]);
 * opt.step();
 * assert.deepEqual([...p.value.data], [0.5, 1.5]);
 * ```
 */
export abstract class Optimizer {
  /** The parameters it updates, in order. */
  readonly params: readonly Parameter[];
  #state: (ParameterState | null)[];
  /** Per parameter, the resident group that holds its state instead of `#state`, or `null`. */
  #holders: (RunnerGroup | null)[];
  readonly #owner: ResidentOwner = { evacuate: (group) => this.#evacuate(group) };
  #options: Record<string, OptionValue>;
  #disposed = false;
  #skipped = 0;
  /** What a step with a NaN or infinite gradient does: refuse it (`"error"`) or skip it. */
  readonly nonfinite: "error" | "skip";

  /**
   * Checks the parameters (no duplicates, one backend) and keeps the options.
   *
   * @param params The parameters (from `layer.parameters()`), all of one backend.
   * @param options The checked hyper-parameters, `lr` included.
   * @param nonfinite What a step with a non-finite gradient does (default `"error"`).
   *
   * @example A subclass passes its checked options
   * ```ts
   * import assert from "node:assert/strict";
   * import { Optimizer, Parameter, type ParameterState, tensor } from "../../mod.ts";
   * class SignSGD extends Optimizer {
   *   constructor(params: Parameter[], lr: number) {
   *     super(params, { lr });
   *   }
   *   protected update(value: Float32Array, grad: Float32Array): ParameterState {
   *     const lr = this.option<number>("lr");
   *     for (let i = 0; i < value.length; i++) value[i] -= lr * Math.sign(grad[i]);
   *     return {};
   *   }
   * }
   * const p = new Parameter("w", tensor([1, 1], [2]));
   * const opt = new SignSGD([p], 0.5);
   * p.grad = tensor([3, -0.1], [2]);
   * opt.step();
   * assert.deepEqual([...p.value.data], [0.5, 1.5]);
   * ```
   */
  protected constructor(
    params: readonly Parameter[],
    options: Record<string, OptionValue>,
    nonfinite: "error" | "skip" = "error",
  ) {
    if (!Array.isArray(params) || params.length === 0) {
      throw new TypeError(
        `params must be a non-empty array of Parameter (from layer.parameters()), got ${
          describe(params)
        }`,
      );
    }
    const seen = new Set<Parameter>();
    let first: { backend: string; index: number } | null = null;
    params.forEach((parameter, index) => {
      if (!(parameter instanceof Parameter)) {
        throw new TypeError(
          `params[${index}] must be a Parameter (from layer.parameters()), got ${
            describe(parameter)
          }`,
        );
      }
      if (seen.has(parameter)) {
        throw new RangeError(
          `params[${index}] ("${parameter.name}") appears twice; pass each parameter once`,
        );
      }
      seen.add(parameter);
      if (parameter.backend === null) return;
      if (first === null) first = { backend: parameter.backend, index };
      else if (parameter.backend !== first.backend) {
        throw new RangeError(
          `params mixes backends: params[${first.index}] ("${params[first.index].name}") is on ${
            describe(first.backend)
          }, params[${index}] ("${parameter.name}") on ${
            describe(parameter.backend)
          }; build the layers with the same backend, or use one optimizer per backend`,
        );
      }
    });
    this.params = [...params];
    this.#state = params.map(() => null);
    this.#holders = params.map(() => null);
    this.#options = options;
    this.nonfinite = nonfiniteOption({ nonfinite });
  }

  /**
   * How many steps were skipped for a non-finite gradient (with `nonfinite: "skip"`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p], { lr: 1, nonfinite: "skip" });
   * p.grad = tensor([NaN], [1]);
   * assert.equal(opt.step(), false);
   * assert.equal(opt.skippedSteps, 1);
   * assert.deepEqual([...p.value.data], [1]);
   * ```
   */
  get skippedSteps(): number {
    return this.#skipped;
  }

  /** The learning rate (schedules set it). */
  get lr(): number {
    return this.#options.lr as number;
  }

  set lr(value: number) {
    this.#options.lr = numberOption({ lr: value }, "lr", 0);
  }

  /**
   * A hyper-parameter by name.
   *
   * @example An update rule reads its learning rate
   * ```ts
   * import assert from "node:assert/strict";
   * import { Optimizer, Parameter, type ParameterState, tensor } from "../../mod.ts";
   * class SignSGD extends Optimizer {
   *   constructor(params: Parameter[], lr: number) {
   *     super(params, { lr });
   *   }
   *   protected update(value: Float32Array, grad: Float32Array): ParameterState {
   *     const lr = this.option<number>("lr");
   *     for (let i = 0; i < value.length; i++) value[i] -= lr * Math.sign(grad[i]);
   *     return {};
   *   }
   * }
   * const p = new Parameter("w", tensor([1, 1], [2]));
   * const opt = new SignSGD([p], 0.5);
   * p.grad = tensor([3, -0.1], [2]);
   * opt.step();
   * assert.deepEqual([...p.value.data], [0.5, 1.5]);
   * ```
   */
  protected option<T extends OptionValue>(name: string): T {
    return this.#options[name] as T;
  }

  /**
   * Sets every parameter's `grad` to `null` (PyTorch 2's `zero_grad(set_to_none=True)`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p]);
   * p.grad = tensor([2], [1]);
   * opt.zeroGrad();
   * assert.equal(p.grad, null);
   * ```
   */
  zeroGrad(): void {
    for (const parameter of this.params) parameter.grad = null;
  }

  /**
   * Reads back what of these parameters lives on the webgpu device (weights, gradients and this
   * optimizer's state there), one read-back per layer: `p.value`, `p.grad` and `stateDict()`
   * then read synchronously until the next step or backward. Needed there because WebGPU reads
   * buffers back only asynchronously; elsewhere it does nothing.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p], { lr: 1 });
   * p.grad = tensor([1], [1]);
   * opt.step();
   * await opt.sync(); // nothing on a device here
   * assert.deepEqual([...p.value.data], [0]);
   * ```
   */
  sync(): Promise<void> {
    return syncParameters(this.params);
  }

  /**
   * Updates every parameter that has a gradient (the others are skipped, as in PyTorch), and
   * returns `true`. All or nothing: when a gradient holds a NaN or an infinity, no weight and no
   * state changes, and the step throws an error naming the parameter (`nonfinite: "error"`, the
   * default) or returns `false` and counts it in {@linkcode Optimizer.skippedSteps}
   * (`nonfinite: "skip"`). Gradients held on the webgpu device are judged by their squared norm
   * there, without a read-back (so one whose `Σ g²` overflows float32, |g| ≳ 1e19, counts as
   * infinite, as it does for `clipGradNorm` and torch).
   *
   * @throws {Error} After `dispose()`, or on a non-finite gradient with `nonfinite: "error"`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1, 2], [2]));
   * const opt = new SGD([p], { lr: 0.5 });
   * p.grad = tensor([1, -1], [2]);
   * opt.step();
   * assert.deepEqual([...p.value.data], [0.5, 2.5]);
   * ```
   */
  step(): boolean {
    if (this.#disposed) {
      throw new Error(
        `step() on a disposed ${this.constructor.name}: its state was freed; create a new optimizer`,
      );
    }
    if (!this.#gradsFinite()) return false;
    const done = this.#stepResident();
    this.params.forEach((parameter, index) => {
      if (!hasGrad(parameter) || done.has(index)) return;
      const holder = this.#holders[index];
      if (holder !== null) this.#evacuate(holder);
      const value = parameter.value.data.slice();
      this.#state[index] = this.update(value, parameter.grad!.data, this.#state[index]);
      parameter.value = { shape: parameter.value.shape, data: value };
    });
    return true;
  }

  /**
   * Whether every gradient is finite; else skips the step (`"skip"`) or throws naming the first
   * parameter whose gradient is not.
   */
  #gradsFinite(): boolean {
    const found = firstNonfiniteGrad(this.params);
    if (found === null) return true;
    if (this.nonfinite === "error") throw refusedStep(this.constructor.name, found);
    this.#skipped++;
    return false;
  }

  /**
   * Steps every resident group (a recurrent layer's weights in wasm memory or on the webgpu
   * device) whose parameters are
   * all here, all with a gradient, and whose state converts, in one fused update where the
   * weights live; returns the indices done. The others take the TypeScript path.
   */
  #stepResident(): Set<number> {
    const done = new Set<number>();
    const update = this.residentUpdate();
    if (update === null) return done;
    const groups = new Set<RunnerGroup>();
    for (const parameter of this.params) {
      const group = parameter.resident;
      if (hasGrad(parameter) && group instanceof RunnerGroup && group.usable) groups.add(group);
    }
    for (const group of groups) {
      const indices = group.parameters.map((parameter) => this.params.indexOf(parameter));
      if (indices.some((index) => index < 0 || !hasGrad(this.params[index]))) continue;
      if (!this.#placeState(group, indices)) continue;
      // Gradients held on the device stay there; host gradients are handed over.
      const held = indices.every((index) => this.params[index].heldGrad?.holder === group);
      const grads = () => indices.map((index) => this.params[index].grad!.data);
      if (group instanceof DeviceGroup) group.step(update, held ? null : grads());
      else if (group instanceof ResidentGroup) group.step(update, grads());
      for (const index of indices) done.add(index);
    }
    return done;
  }

  /** Makes `group` hold this optimizer's state of `indices`; false if the states disagree. */
  #placeState(group: RunnerGroup, indices: number[]): boolean {
    const mine = group.claim(this.#owner);
    if (mine && indices.every((index) => this.#holders[index] === group)) return true;
    for (const index of indices) {
      const holder = this.#holders[index];
      if (holder !== null) this.#evacuate(holder);
    }
    const states = indices.map((index) => this.toResident(this.#state[index]));
    if (states.some(({ steps }) => steps !== states[0].steps)) return false;
    const total = group.sizes.reduce((sum, size) => sum + size, 0);
    const slot = (which: number) => {
      const flat = new Float32Array(total);
      let start = 0;
      states.forEach((state, position) => {
        const values = state.slots[which];
        if (values) flat.set(values, start);
        start += group.sizes[position];
      });
      return flat;
    };
    group.writeState({ steps: states[0].steps, slots: [slot(0), slot(1), slot(2)] });
    for (const index of indices) {
      this.#holders[index] = group;
      this.#state[index] = null;
    }
    return true;
  }

  /** Reads the state `group` holds for this optimizer back into `#state`. */
  #evacuate(group: RunnerGroup): void {
    const held = this.#heldStates(group);
    held.forEach((state, index) => {
      this.#state[index] = state;
      this.#holders[index] = null;
    });
  }

  /** The states `group` holds for this optimizer, by parameter index, read back. */
  #heldStates(group: RunnerGroup): Map<number, ParameterState | null> {
    const held = new Map<number, ParameterState | null>();
    if (!this.#holders.includes(group)) return held;
    const { steps, slots } = group.readState();
    let start = 0;
    group.parameters.forEach((parameter, position) => {
      const from = start, to = start += group.sizes[position];
      const index = this.params.indexOf(parameter);
      if (index < 0 || this.#holders[index] !== group) return;
      held.set(index, this.fromResident(steps, slots.map((slot) => slot.slice(from, to))));
    });
    return held;
  }

  /** Every parameter's state, with those held by resident groups read back (not moved). */
  #allStates(): (ParameterState | null)[] {
    const states = [...this.#state];
    for (const group of new Set(this.#holders)) {
      if (group === null) continue;
      this.#heldStates(group).forEach((state, index) => states[index] = state);
    }
    return states;
  }

  /**
   * The fused update a backend applies where the weights live, or `null` (the default) to
   * update every parameter here with {@linkcode Optimizer.update}. `SGD`, `Adam` and `AdamW`
   * return theirs; a subclass that changes their rule must return `null`.
   *
   * @example A custom rule keeps the TypeScript path
   * ```ts
   * import assert from "node:assert/strict";
   * import { Optimizer, Parameter, type ParameterState, tensor } from "../../mod.ts";
   * class Halve extends Optimizer {
   *   constructor(params: Parameter[]) {
   *     super(params, { lr: 0 });
   *   }
   *   protected update(value: Float32Array): ParameterState {
   *     for (let i = 0; i < value.length; i++) value[i] /= 2;
   *     return {};
   *   }
   * }
   * const p = new Parameter("w", tensor([2], [1]));
   * p.grad = tensor([0], [1]);
   * new Halve([p]).step();
   * assert.deepEqual([...p.value.data], [1]);
   * ```
   *
   * @ignore
   */
  protected residentUpdate(): OptimizerUpdate | null {
    return null;
  }

  /**
   * One parameter's state in the backend's layout (for a fused update); only called when
   * {@linkcode Optimizer.residentUpdate} is not `null`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Parameter, tensor } from "../../mod.ts";
   * const opt = new Adam([new Parameter("w", tensor([1], [1]))]);
   * assert.equal(opt.stateDict().state[0], null); // no state: steps 0, zero vectors
   * ```
   *
   * @ignore
   */
  protected toResident(state: ParameterState | null): ResidentParameterState {
    return { steps: state === null ? 0 : 1, slots: [] };
  }

  /**
   * One parameter's state back from the backend's layout (the inverse of
   * {@linkcode Optimizer.toResident}).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const opt = new SGD([new Parameter("w", tensor([1], [1]))], { momentum: 0.9 });
   * assert.equal(opt.stateDict().state[0], null);
   * ```
   *
   * @ignore
   */
  protected fromResident(steps: number, _slots: readonly Float32Array[]): ParameterState | null {
    return steps === 0 ? null : {};
  }

  /**
   * One parameter's update: writes the new value into `value` (a copy of the old one) and
   * returns the new state (`state` is `null` on the first update).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Optimizer, Parameter, type ParameterState, tensor } from "../../mod.ts";
   * class SignSGD extends Optimizer {
   *   constructor(params: Parameter[], lr: number) {
   *     super(params, { lr });
   *   }
   *   protected update(value: Float32Array, grad: Float32Array): ParameterState {
   *     const lr = this.option<number>("lr");
   *     for (let i = 0; i < value.length; i++) value[i] -= lr * Math.sign(grad[i]);
   *     return {};
   *   }
   * }
   * const p = new Parameter("w", tensor([1, 1], [2]));
   * const opt = new SignSGD([p], 0.5);
   * p.grad = tensor([3, -0.1], [2]);
   * opt.step();
   * assert.deepEqual([...p.value.data], [0.5, 1.5]);
   * ```
   */
  protected abstract update(
    value: Float32Array,
    grad: Float32Array,
    state: ParameterState | null,
  ): ParameterState;

  /**
   * The state (buffers and step counts, as copies) and hyper-parameters, to resume exactly.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Linear } from "../../mod.ts";
   * const opt = new Adam(new Linear(2, 2, { seed: 1 }).parameters(), { lr: 0.1 });
   * assert.equal(opt.stateDict().options.lr, 0.1);
   * ```
   */
  stateDict(): OptimizerStateDict {
    return {
      state: this.#allStates().map((state, index) => {
        if (state === null) return null;
        const shape = this.params[index].value.shape;
        return Object.fromEntries(
          Object.entries(state).map(([name, value]) => [
            name,
            typeof value === "number" ? value : { shape: [...shape], data: value.slice() },
          ]),
        );
      }),
      options: structuredClone(this.#options),
    };
  }

  /**
   * Restores a `stateDict()` of an optimizer of the same kind over parameters of the same shapes.
   *
   * @throws {RangeError} If it does not fit these parameters.
   *
   * @example Resume training exactly
   * ```ts
   * import assert from "node:assert/strict";
   * import { Adam, Parameter, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new Adam([p], { lr: 0.1 });
   * p.grad = tensor([1], [1]);
   * opt.step();
   * const resumed = new Adam([new Parameter("w", tensor([1], [1]))], { lr: 0.5 });
   * resumed.loadStateDict(opt.stateDict());
   * assert.deepEqual(resumed.stateDict(), opt.stateDict());
   * assert.equal(resumed.lr, 0.1);
   * ```
   */
  loadStateDict(dict: OptimizerStateDict): void {
    if (typeof dict !== "object" || dict === null || !Array.isArray(dict.state)) {
      throw new TypeError(`dict must be an optimizer stateDict(), got ${describe(dict)}`);
    }
    if (dict.state.length !== this.params.length) {
      throw new RangeError(
        `dict.state has ${dict.state.length} entries but this optimizer has ${this.params.length} parameters`,
      );
    }
    const known = Object.keys(this.#options);
    checkOptionNames(`dict.options of ${this.constructor.name}`, dict.options, known);
    const state = dict.state.map((entry, index) => {
      if (entry === null) return null;
      const size = this.params[index].value.data.length;
      return Object.fromEntries(
        Object.entries(entry).map(([name, value]) => {
          if (typeof value === "number") return [name, value];
          const data = (value as Partial<Tensor> | null)?.data;
          if (!(data instanceof Float32Array) || data.length !== size) {
            throw new RangeError(
              `dict.state[${index}].${name} must have ${size} elements like params[${index}] ("${
                this.params[index].name
              }"), got ${describe(data?.length)}`,
            );
          }
          return [name, data.slice()];
        }),
      );
    });
    this.#state = state;
    this.#holders = this.params.map(() => null);
    this.#options = { ...this.#options, ...structuredClone(dict.options) };
  }

  /**
   * Frees the optimizer state; `step()` afterwards throws.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * const opt = new SGD([p]);
   * opt.dispose();
   * p.grad = tensor([1], [1]);
   * assert.throws(() => opt.step(), /disposed/);
   * ```
   */
  dispose(): void {
    this.#state = this.params.map(() => null);
    this.#holders = this.params.map(() => null);
    this.#disposed = true;
  }

  /**
   * Same as `dispose()`, for `using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Parameter, SGD, tensor } from "../../mod.ts";
   * const p = new Parameter("w", tensor([1], [1]));
   * {
   *   using opt = new SGD([p], { lr: 1 });
   *   p.grad = tensor([1], [1]);
   *   opt.step();
   * } // state freed here
   * assert.deepEqual([...p.value.data], [0]);
   * ```
   */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
