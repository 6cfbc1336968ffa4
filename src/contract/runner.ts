/**
 * {@linkcode defineBackend}, the one way to make a backend, and the runner it hands out: the
 * contract's checks (`checks.ts`) around a backend's compiled cell, calls in flight counted across
 * `dispose`, and training for every backend (the fused kernels' own backward, else the float64
 * reference's).
 *
 * @module
 */

import { describe } from "../errors.ts";
import { Reclaimer } from "../reclaim.ts";
import { backward as referenceBackward } from "../reference/backward.ts";
import type { RecurrentActivation } from "./activation.ts";
import {
  checkEpsilonRule,
  checkGradient,
  checkInput,
  checkOutputGradients,
  checkSpec,
  copyInput,
  copySpec,
  parameterSizes,
  sizesOf,
  toFloat32,
} from "./checks.ts";
import { requestedExtras } from "./extras.ts";
import type {
  Backend,
  CellSpec,
  CompiledCell,
  DeviceWeights,
  InputGradients,
  LayerRelevance,
  RelevanceStep,
  ResidentWeights,
  ResolvedBackendName,
  SequenceInput,
  SequenceOutput,
  SequenceRunner,
  TrainingStep,
} from "./types.ts";

/** Frees the cells of runners that were collected without `dispose()`. */
const forgotten = new Reclaimer();

/**
 * The runner every backend hands out: the contract's checks around a backend's compiled cell.
 * It counts the calls in flight so that `dispose()` during a call lets that call finish (a hot
 * reload swaps runners under running calls) and frees the cell when the last one settles.
 */
class ContractRunner implements SequenceRunner {
  readonly backend: ResolvedBackendName;
  /** The compiled spec without its weights: all `checkInput` needs. */
  readonly #spec: CellSpec;
  #cell: CompiledCell | null;
  #disposed = false;
  #inFlight = 0;
  /** Present when the compiled cell has a fused training path. */
  readonly runTraining?: (input: SequenceInput) => Promise<TrainingStep>;
  /** Present when the compiled cell has a fused relevance pass. */
  readonly runRelevance?: (input: SequenceInput) => Promise<RelevanceStep>;
  /** Present when the compiled cell updates its weights in place. */
  readonly resident?: ResidentWeights & { onRelease(listener: () => void): void };
  /** Present when the compiled cell keeps its weights on a device. */
  readonly device?: DeviceWeights & { onRelease(listener: () => void): void };
  /**
   * A copy of the compiled weights for the float64 reference backward, kept only when the cell
   * has no fused training.
   */
  readonly #reference: CellSpec | null;
  /** Resident optimizer steps taken: a training step recorded before one is stale. */
  #generation = 0;
  #releaseListeners: (() => void)[] = [];

  constructor(backend: ResolvedBackendName, spec: CellSpec, cell: CompiledCell) {
    this.backend = backend;
    this.#spec = sizesOf(spec);
    this.#cell = cell;
    this.#reference = cell.runTraining ? null : copySpec(spec);
    if (cell.runTraining) this.runTraining = (input) => this.#runTraining(input);
    if (cell.runRelevance) this.runRelevance = (input) => this.#runRelevance(input);
    if (cell.resident) this.resident = this.#guardResident(cell.resident);
    if (cell.device) this.device = this.#guardDevice(cell.device);
    forgotten.watch(this, cell);
  }

  run(input: SequenceInput): Promise<SequenceOutput> {
    return this.#call(input, (cell, checked) => cell.run(checked), (checked) => {
      const wants = requestedExtras(checked);
      return {
        output: new Float32Array(0),
        hidden: checked.hidden.slice(),
        state: checked.state.slice(),
        ...(wants.attention ? { attention: new Float32Array(0) } : {}),
        ...(wants.lanes ? { lanes: new Int32Array(0) } : {}),
      };
    });
  }

  trainingStep(input: SequenceInput): Promise<TrainingStep> {
    return this.runTraining ? this.runTraining(input) : this.#referenceTraining(input);
  }

  #runTraining(input: SequenceInput): Promise<TrainingStep> {
    if (input?.outputs !== undefined) return noExtras("training");
    return this.#call(
      input,
      async (cell, checked) => this.#guardBackward(checked, await cell.runTraining!(checked)),
      (checked) => this.#emptyStep(checked),
    );
  }

  /**
   * A cell without fused training: its forward, and the float64 reference backward over the
   * copied weights and a copy of the input (the caller may reuse its arrays once this returns).
   */
  #referenceTraining(input: SequenceInput): Promise<TrainingStep> {
    if (input?.outputs !== undefined) return noExtras("training");
    const spec = this.#reference!;
    return this.#call(
      input,
      async (cell, checked) => {
        const kept = copyInput(checked);
        const { output, hidden, state } = await cell.run(kept);
        const step: TrainingStep = {
          output,
          hidden,
          state,
          backward: (grads) => Promise.resolve(referenceBackward(spec, kept, grads)),
        };
        // The backward needs no cell: it still runs after `dispose`, as long as no step ran.
        return this.#guardBackward(kept, step, false);
      },
      (checked) => this.#emptyStep(checked),
    );
  }

  #runRelevance(input: SequenceInput): Promise<RelevanceStep> {
    if (input?.outputs !== undefined) return noExtras("relevance");
    return this.#call(
      input,
      async (cell, checked) => this.#guardRelevance(checked, await cell.runRelevance!(checked)),
      (checked) => ({
        output: new Float32Array(0),
        hidden: checked.hidden.slice(),
        state: checked.state.slice(),
        relevance: () =>
          Promise.resolve({
            input: new Float32Array(0),
            rest: new Float32Array(checked.batch),
          }),
      }),
    );
  }

  /** The cell's step with its relevance pass checked and counted as in flight. */
  #guardRelevance(input: SequenceInput, step: RelevanceStep): RelevanceStep {
    const { batch, seqLen } = input;
    const generation = this.#generation;
    const H = this.#spec.hiddenSize;
    return {
      output: step.output,
      hidden: step.hidden,
      state: step.state,
      relevance: (outputRelevance, rule) => {
        if (this.#disposed || this.#cell === null || generation !== this.#generation) {
          return Promise.reject(
            new Error(
              `this ${this.backend} runner was disposed or stepped before the relevance pass of ` +
                "its step (its parameters were replaced): run the forward again",
            ),
          );
        }
        try {
          checkGradient(
            "outputRelevance",
            outputRelevance,
            batch * seqLen * H,
            `(batch, seqLen, hiddenSize) = (${batch}, ${seqLen}, ${H})`,
          );
          checkEpsilonRule(rule, "rule");
        } catch (error) {
          return Promise.reject(error);
        }
        this.#inFlight++;
        let result: Promise<LayerRelevance>;
        try {
          result = step.relevance(toFloat32(outputRelevance), rule);
        } catch (error) {
          result = Promise.reject(error);
        }
        return result.finally(() => this.#settle());
      },
    };
  }

  /**
   * Checks `input` and runs `call` on the cell, counted as in flight; answers empty calls with
   * `empty` and calls after `dispose` with a rejection.
   */
  #call<T>(
    input: SequenceInput,
    call: (cell: CompiledCell, input: SequenceInput) => Promise<T>,
    empty: (input: SequenceInput) => T,
  ): Promise<T> {
    const cell = this.#cell;
    if (this.#disposed || cell === null) {
      return Promise.reject(
        new Error(`this ${this.backend} runner was disposed; compile the cell again to run it`),
      );
    }
    try {
      checkInput(this.#spec, input);
    } catch (error) {
      return Promise.reject(error);
    }
    if (input.batch === 0 || input.seqLen === 0) return Promise.resolve(empty(input));
    this.#inFlight++;
    let result: Promise<T>;
    try {
      result = call(cell, input);
    } catch (error) {
      result = Promise.reject(error);
    }
    // The callback holds `this`, so a runner is never collected (and its cell freed) mid-call.
    return result.finally(() => this.#settle());
  }

  /** The cell's resident weights, refused after `dispose`; a step makes older records stale. */
  #guardResident(weights: ResidentWeights): ResidentWeights & {
    onRelease(listener: () => void): void;
  } {
    // Reads work until the cell is freed (release listeners read during `dispose`), steps stop at
    // `dispose`.
    const live = (stepping = false): ResidentWeights => {
      if (this.#cell === null || (stepping && this.#disposed)) {
        throw new Error(
          `this ${this.backend} runner was disposed; its resident weights are gone`,
        );
      }
      return weights;
    };
    return {
      step: (update, grads) => {
        live(true).step(update, grads);
        this.#generation++;
      },
      parameters: () => live().parameters(),
      readState: () => live().readState(),
      writeState: (state) => live().writeState(state),
      onRelease: (listener) => this.#releaseListeners.push(listener),
    };
  }

  /** The cell's device weights, refused after `dispose`; a step makes older records stale. */
  #guardDevice(weights: DeviceWeights): DeviceWeights & { onRelease(listener: () => void): void } {
    // Reads start until the cell is freed (release listeners read during `dispose`); changes stop
    // at `dispose`.
    const live = (changing = true): DeviceWeights => {
      if (this.#cell === null || (changing && this.#disposed)) {
        throw new Error(`this ${this.backend} runner was disposed; its device weights are gone`);
      }
      return weights;
    };
    return {
      step: (update) => {
        live().step(update);
        this.#generation++;
      },
      scaleGradients: (factors) => live().scaleGradients(factors),
      writeGradients: (grads) => live().writeGradients(grads),
      writeState: (state) => live().writeState(state),
      read: () => {
        try {
          return live(false).read();
        } catch (error) {
          return Promise.reject(error);
        }
      },
      onRelease: (listener) => this.#releaseListeners.push(listener),
    };
  }

  /**
   * The step with its backward checked and run at most once; on the cell (`onCell`) it is
   * refused after `dispose` and counted as in flight.
   */
  #guardBackward(input: SequenceInput, step: TrainingStep, onCell = true): TrainingStep {
    const { batch, seqLen } = input;
    const generation = this.#generation;
    let used = false;
    return {
      output: step.output,
      hidden: step.hidden,
      state: step.state,
      backward: (grads, options) => {
        if (used) {
          return Promise.reject(
            new Error(
              "backward() was already called on this training step; run the forward again to " +
                "back-propagate a second time",
            ),
          );
        }
        const gone = onCell && (this.#disposed || this.#cell === null);
        if (gone || generation !== this.#generation) {
          return Promise.reject(
            new Error(
              `this ${this.backend} runner was disposed or stepped before the backward of its training step ` +
                "(its parameters were replaced): call backward() before changing the parameters",
            ),
          );
        }
        try {
          checkOutputGradients(this.#spec, batch, seqLen, grads);
        } catch (error) {
          return Promise.reject(error);
        }
        used = true;
        if (onCell) this.#inFlight++;
        let result: Promise<InputGradients>;
        try {
          result = step.backward({
            output: toFloat32(grads.output),
            ...(grads.hidden === undefined ? {} : { hidden: toFloat32(grads.hidden) }),
            ...(grads.state === undefined ? {} : { state: toFloat32(grads.state) }),
            ...(grads.wanted === undefined ? {} : { wanted: { ...grads.wanted } }),
          }, options);
        } catch (error) {
          result = Promise.reject(error);
        }
        return onCell ? result.finally(() => this.#settle()) : result;
      },
    };
  }

  /** An empty call's step: no step ran, so only the initial state gets its gradient through. */
  #emptyStep(input: SequenceInput): TrainingStep {
    const { batch, seqLen } = input;
    const spec = this.#spec;
    return {
      output: new Float32Array(0),
      hidden: input.hidden.slice(),
      state: input.state.slice(),
      backward: (grads) => {
        try {
          checkOutputGradients(spec, batch, seqLen, grads);
        } catch (error) {
          return Promise.reject(error);
        }
        return Promise.resolve({
          params: Object.fromEntries(
            parameterSizes(spec).map(([name, size]) => [name, new Float32Array(size)]),
          ),
          x: new Float32Array(batch * seqLen * spec.inputSize),
          hidden: grads.hidden
            ? toFloat32(grads.hidden).slice()
            : new Float32Array(input.hidden.length),
          state: grads.state
            ? toFloat32(grads.state).slice()
            : new Float32Array(input.state.length),
        });
      },
    };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    forgotten.release(this);
    if (this.#inFlight === 0) this.#free();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #settle(): void {
    if (--this.#inFlight === 0 && this.#disposed) this.#free();
  }

  #free(): void {
    // Listeners read the weights (and optimizer state) out while the cell still holds them.
    for (const listener of this.#releaseListeners.splice(0)) {
      try {
        listener();
      } catch {
        // Unreadable weights (a trapped instance): a later read of them throws and says so.
      }
    }
    const cell = this.#cell;
    this.#cell = null;
    cell?.dispose();
  }
}

/** The rejection of a training or relevance step asked for opt-in outputs. */
function noExtras(step: "training" | "relevance"): Promise<never> {
  return Promise.reject(
    new TypeError(
      `input.outputs is for run(): a ${step} step returns no attention or lanes; run the ` +
        "same input with run() to get them",
    ),
  );
}

/**
 * Makes a backend from its compile step: the spec is checked ({@linkcode checkSpec}) before
 * `compile` sees it, and every call's input ({@linkcode checkInput}) before the compiled cell does;
 * empty calls and calls after `dispose` are answered here. This is the only place the contract is
 * enforced: a new backend gets it by being defined with this function. `activations` lists the
 * gate activations its kernels implement (only `"sigmoid"` unless it says more).
 *
 * Training comes with it: every runner has `trainingStep`, which is the cell's fused
 * `runTraining` when it has one, else its `run` with the float64 reference backward
 * (`src/reference/backward.ts`) over a copy of the weights. So a backend that only runs forward
 * trains too, every variant included.
 *
 * @example A backend whose cells return zeros
 * ```ts
 * import { defineBackend } from "./runner.ts";
 * import assert from "node:assert/strict";
 * const zeros = defineBackend("js", (spec) =>
 *   Promise.resolve({
 *     run: ({ batch, seqLen }) => {
 *       const size = batch * spec.hiddenSize;
 *       return Promise.resolve({
 *         output: new Float32Array(size * seqLen),
 *         hidden: new Float32Array(size),
 *         state: new Float32Array(spec.variant.k * size),
 *       });
 *     },
 *     dispose: () => {},
 *   })
 * );
 * const z = (n: number) => new Float32Array(n);
 * using runner = await zeros.compile({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * const { output } = await runner.run({ batch: 1, seqLen: 3, x: z(3), hidden: z(1), state: z(1) });
 * assert.deepEqual(output, z(3));
 * await assert.rejects(runner.run({ batch: 1, seqLen: 3, x: z(2), hidden: z(1), state: z(1) }));
 * // No fused training: trainingStep back-propagates with the float64 reference.
 * const step = await runner.trainingStep({ batch: 1, seqLen: 3, x: z(3), hidden: z(1), state: z(1) });
 * const grads = await step.backward({ output: new Float32Array([1, 1, 1]) });
 * assert.equal(grads.x.length, 3);
 * ```
 */
export function defineBackend(
  name: ResolvedBackendName,
  compile: (spec: CellSpec) => Promise<CompiledCell>,
  activations: readonly RecurrentActivation[] = ["sigmoid"],
): Backend {
  return {
    name,
    async compile(spec: CellSpec): Promise<SequenceRunner> {
      checkSpec(spec);
      const activation = spec.variant.recurrentActivation ?? "sigmoid";
      if (!activations.includes(activation)) {
        throw new RangeError(
          `the ${name} backend runs recurrentActivation ${
            activations.map(describe).join(", ")
          }, got ${describe(activation)}: compile this cell on the js backend`,
        );
      }
      return new ContractRunner(name, spec, await compile(spec));
    },
  };
}
