/**
 * One cell being trained in one wasm instance of this thread (`Trainer` of wasm/src/train.rs): a
 * recording forward and the fused backward. The WASM backend uses it directly (one thread) and
 * inside each worker, which runs its rows of the batch; it takes only inputs and gradients that
 * passed the contract's checks (`src/contract/`).
 *
 * A trainer keeps the activations of its last forward only. Each forward is tagged with a step
 * number; a backward for an older step runs that step's forward again first (the same kernels on
 * the same weights give the same activations), so several recorded runs of one layer can be
 * back-propagated in any order.
 *
 * @module
 */

import type {
  CellSpec,
  EpsilonRule,
  LayerRelevance,
  OptimizerUpdate,
  ResidentOptimizerState,
  SequenceInput,
  SequenceOutput,
  WantedGradients,
} from "../../contract/mod.ts";
import { dispatchOptimizer } from "../../optimizer_kinds.ts";
import { instantiate, type WasmFlavor, type WasmModule, type WasmTrainer } from "./bindings.ts";
import { lstmCellArguments } from "../cell_arguments.ts";
import { checkFitsWasm32 } from "./memory_plan.ts";
import { packedViews } from "./scratch.ts";

/**
 * dLoss/d a slice's results, in `f32`; empty `hidden`/`state` count as zero. `wanted` (default:
 * both) says which input gradients to compute; the others come back as zeros.
 */
export interface SliceGradients {
  /** dLoss/d`output`, `(B, T, H)`. */
  readonly output: Float32Array;
  /** dLoss/d final `hidden`, `(B, H)`, or empty. */
  readonly hidden: Float32Array;
  /** dLoss/d final `state`, `(k, B, H)`, or empty. */
  readonly state: Float32Array;
  /** The input gradients the caller reads. */
  readonly wanted?: WantedGradients;
}

/**
 * What a backward of some rows returns: fresh arrays, or views of the buffer it was given. An
 * input gradient that was not wanted is empty.
 */
export interface SliceInputGradients {
  /** The parameter gradients of these rows, flat in the order of `parameterSizes`. */
  readonly params: Float32Array;
  /** dLoss/d`x`, `(B, T, I)`. */
  readonly x: Float32Array;
  /** dLoss/d initial `hidden`, `(B, H)`. */
  readonly hidden: Float32Array;
  /** dLoss/d initial `state`, `(k, B, H)`. */
  readonly state: Float32Array;
}

/**
 * A cell's trainer in this thread's wasm instance; its memory stays until
 * {@linkcode WasmTrainingKernel.dispose}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { WasmTrainingKernel } from "./train_kernel.ts";
 * const z = (n: number) => new Float32Array(n);
 * const kernel = new WasmTrainingKernel({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4).fill(0.5), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * const input = { batch: 1, seqLen: 2, x: z(2).fill(1), hidden: z(1), state: z(1) };
 * kernel.forward(input, 1);
 * const grads = kernel.backward(input, 1, { output: z(2).fill(1), hidden: z(0), state: z(0) });
 * assert.equal(grads.params.length, 16);
 * kernel.dispose();
 * ```
 */
export class WasmTrainingKernel {
  #trainer: WasmTrainer | null;
  readonly #sizes: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">;
  readonly #module: WasmModule;
  /** The step whose activations the trainer holds, and its sizes, or `null`. */
  #recorded: { readonly step: number; readonly batch: number; readonly seqLen: number } | null =
    null;
  /** Whether the recorded step kept what the relevance pass needs. */
  #recordedCandidates = false;

  /** Copies `spec`'s weights into this thread's instance of the `flavor` build. */
  constructor(spec: CellSpec, flavor?: WasmFlavor) {
    this.#module = instantiate(flavor);
    const { variant } = spec;
    this.#sizes = {
      variant: { ...variant },
      inputSize: spec.inputSize,
      hiddenSize: spec.hiddenSize,
    };
    this.#trainer = new this.#module.Trainer(...lstmCellArguments(spec));
  }

  /** Whether the kernel can still be called (not disposed, no trap). */
  get usable(): boolean {
    return this.#trainer !== null;
  }

  /**
   * The recording forward of `input`, tagged `step`; returns fresh arrays, or with `into` views of
   * that buffer (of a new one where it is too small). With `candidates` it also keeps what
   * {@linkcode WasmTrainingKernel.relevance} needs (one-lane cells only).
   */
  forward(
    input: SequenceInput,
    step: number,
    candidates = false,
    into?: ArrayBuffer | null,
  ): SequenceOutput {
    const trainer = this.#live();
    const { batch: B, seqLen: T } = input;
    const { hiddenSize: H, variant: { k } } = this.#sizes;
    checkFitsWasm32(this.#sizes, B, T);
    this.#recorded = null;
    this.#guard(`forward of batch ${B} × seqLen ${T}`, () => {
      trainer.keep_candidates(candidates);
      trainer.forward(B, T, input.x, input.hidden, input.state);
    });
    this.#recorded = { step, batch: B, seqLen: T };
    this.#recordedCandidates = candidates;
    const [output, hidden, state] = this.#results(into, [
      [trainer.output_ptr(), B * T * H],
      [trainer.hidden_ptr(), B * H],
      [trainer.state_ptr(), k * B * H],
    ]);
    return { output, hidden, state };
  }

  /**
   * The backward of step `step`, whose forward ran on `input` (run again first unless it was this
   * kernel's last forward; `null` when the caller knows it was). Returns this call's gradients
   * only, as fresh arrays, or with `into` as views of that buffer (which may hold `grads`: they
   * are read first), or of a new one where it is too small.
   */
  backward(
    input: SequenceInput | null,
    step: number,
    grads: SliceGradients,
    into?: ArrayBuffer | null,
  ): SliceInputGradients {
    if (this.#recorded?.step !== step) {
      if (input === null) {
        throw new Error(
          `the wasm trainer no longer holds the activations of training step ${step}; run the ` +
            "forward again",
        );
      }
      this.forward(input, step);
    }
    const trainer = this.#live();
    const { batch: B, seqLen: T } = this.#recorded!;
    const { inputSize: I, hiddenSize: H, variant: { k } } = this.#sizes;
    this.#recorded = null;
    const wanted = grads.wanted ?? { x: true, hidden: true, state: true };
    this.#guard(`backward of batch ${B} × seqLen ${T}`, () => {
      trainer.zero_grad();
      trainer.backward(grads.output, grads.hidden, grads.state, wanted.x, wanted.hidden);
    });
    const [params, x, hidden, state] = this.#results(into, [
      [trainer.gradients_ptr(), trainer.parameters_len()],
      [trainer.grad_x_ptr(), wanted.x ? B * T * I : 0],
      [trainer.grad_hidden_ptr(), wanted.hidden ? B * H : 0],
      [trainer.grad_state_ptr(), wanted.state ? k * B * H : 0],
    ]);
    return { params, x, hidden, state };
  }

  /**
   * The LRP relevance pass of step `step`, whose forward ran on `input` (run again, keeping the
   * candidates, unless it was this kernel's last forward and kept them). `outputRelevance`
   * `(B, T, H)` is the relevance arriving at every step's hidden state. The record stays: a
   * second pass needs no new forward.
   */
  relevance(
    input: SequenceInput,
    step: number,
    outputRelevance: Float32Array,
    rule: EpsilonRule,
  ): LayerRelevance {
    if (this.#recorded?.step !== step || !this.#recordedCandidates) this.forward(input, step, true);
    const trainer = this.#live();
    const { batch: B, seqLen: T } = input;
    const { inputSize: I } = this.#sizes;
    this.#guard(
      `relevance pass of batch ${B} × seqLen ${T}`,
      () => trainer.relevance(outputRelevance, rule.eps, rule.biasFactor),
    );
    return {
      input: this.#copy(trainer.relevance_x_ptr(), B * T * I),
      rest: this.#copy(trainer.relevance_rest_ptr(), B),
    };
  }

  /**
   * One optimizer update of the weights in wasm memory from `grads` (flat), then a repack. It
   * drops the recorded activations: they belong to the old weights.
   */
  step(update: OptimizerUpdate, grads: Float32Array): void {
    const trainer = this.#live();
    // Looked up before the guard: an unknown kind is the caller's error, not a trap.
    const apply = dispatchOptimizer(update, {
      sgd: ({ lr, momentum, dampening, nesterov, weightDecay }) => () =>
        trainer.sgd_update(lr, momentum, dampening, nesterov, weightDecay),
      adam: ({ lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled }) => () =>
        trainer.adam_update(lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled),
    });
    this.#recorded = null;
    this.#guard(`${update.kind} step`, () => {
      this.#view(trainer.gradients_ptr(), trainer.parameters_len()).set(grads);
      apply();
      trainer.repack();
    });
  }

  /** A copy of the flat parameters (`parameterSizes` order). */
  parameters(): Float32Array {
    const trainer = this.#live();
    return this.#copy(trainer.parameters_ptr(), trainer.parameters_len());
  }

  /** Replaces the flat parameters (a broadcast from the thread that stepped), then repacks. */
  setParameters(values: Float32Array): void {
    const trainer = this.#live();
    this.#recorded = null;
    this.#view(trainer.parameters_ptr(), trainer.parameters_len()).set(values);
    this.#guard("repack", () => trainer.repack());
  }

  /** A copy of the optimizer state. */
  readState(): ResidentOptimizerState {
    const trainer = this.#live();
    const n = trainer.parameters_len();
    const slot = (index: number) => this.#copy(trainer.optimizer_state_ptr(index), n);
    return { steps: trainer.optimizer_steps(), slots: [slot(0), slot(1), slot(2)] };
  }

  /** Replaces the optimizer state. */
  writeState(state: ResidentOptimizerState): void {
    const trainer = this.#live();
    const n = trainer.parameters_len();
    state.slots.forEach((values, index) =>
      this.#view(trainer.optimizer_state_ptr(index), n).set(values)
    );
    trainer.set_optimizer_steps(state.steps);
  }

  /** Frees the trainer. Idempotent. */
  dispose(): void {
    this.#trainer?.free();
    this.#trainer = null;
  }

  #live(): WasmTrainer {
    if (this.#trainer === null) throw new Error("this wasm training kernel was disposed");
    return this.#trainer;
  }

  #guard(what: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      // A trap leaves the trainer borrowed, so freeing it would throw: drop it.
      this.#trainer = null;
      throw new Error(
        `the wasm trainer failed in the ${what} (${error}); compile the cell again`,
        { cause: error },
      );
    }
  }

  /**
   * Copies of the wasm ranges `[address, length]`: fresh arrays, or views of `into` (see
   * `packedViews`) when it is given.
   */
  #results(
    into: ArrayBuffer | null | undefined,
    ranges: readonly [number, number][],
  ): Float32Array[] {
    if (into === undefined) return ranges.map(([address, length]) => this.#copy(address, length));
    const views = packedViews(into, ranges.map(([, length]) => length));
    ranges.forEach(([address, length], index) => views[index].set(this.#view(address, length)));
    return views;
  }

  #copy(address: number, length: number): Float32Array {
    return this.#view(address, length).slice();
  }

  #view(address: number, length: number): Float32Array {
    // The memory may have grown during the call: take its buffer only now.
    return new Float32Array(this.#module.memory.buffer, address, length);
  }
}
