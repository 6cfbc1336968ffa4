/**
 * One LSTM-family cell being trained in the native library (`NativeTrainer` of
 * `native/src/ffi.rs`): the recording forward and its fused backward over a number of threads,
 * the LRP relevance pass, and the optimizer steps where the weights live.
 *
 * A trainer keeps the activations of its last forward only. Each forward is tagged with a step
 * number; a backward for an older step runs that step's forward again first (the same kernels on
 * the same weights give the same activations), as the wasm backend's trainer does.
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
import { checkStatus, copyIn, copyOut, type Handle, lstmArguments } from "./kernel.ts";
import type { NativeLibrary } from "./library.ts";
import { PoolUse } from "./pool_use.ts";

/** dLoss/d a call's results; empty `hidden`/`state` count as zero. */
export interface NativeGradients {
  readonly output: Float32Array;
  readonly hidden: Float32Array;
  readonly state: Float32Array;
  readonly wanted: WantedGradients;
}

/** What a backward returns: fresh arrays; an input gradient that was not wanted is empty. */
export interface NativeInputGradients {
  /** The parameter gradients, flat in the order of `parameterSizes`. */
  readonly params: Float32Array;
  readonly x: Float32Array;
  readonly hidden: Float32Array;
  readonly state: Float32Array;
}

/** The recorded step: its tag, input, threads, and whether it kept the LRP candidates. */
interface Recorded {
  readonly step: number;
  readonly input: SequenceInput;
  readonly parts: number;
  readonly candidates: boolean;
}

/**
 * A cell's trainer in the native library; freed by {@linkcode NativeTrainingKernel.dispose}.
 *
 * @example
 * ```ts ignore
 * const trainer = new NativeTrainingKernel(library, spec, 2);
 * await trainer.forward(input, 1, 2, false, false);
 * const grads = await trainer.backward(1, gradients, false);
 * trainer.dispose();
 * ```
 */
export class NativeTrainingKernel {
  readonly #library: NativeLibrary;
  readonly #sizes: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">;
  #handle: Handle;
  #recorded: Recorded | null = null;
  readonly #pool = new PoolUse();

  /** Copies `spec`'s weights into a trainer for up to `threads` threads. */
  constructor(library: NativeLibrary, spec: CellSpec, threads: number) {
    this.#library = library;
    this.#sizes = { variant: spec.variant, inputSize: spec.inputSize, hiddenSize: spec.hiddenSize };
    const create = library.symbols.alstm_trainer_new as (...args: unknown[]) => Handle;
    this.#handle = create(threads, ...lstmArguments(spec));
    if (this.#handle === null) throw new Error("the native library refused the trainer");
  }

  /**
   * The recording forward of `input` (which the kernel keeps, unchanged, until its backward),
   * tagged `step`, over `parts` threads; with `candidates` it also keeps what
   * {@linkcode NativeTrainingKernel.relevance} needs. Returns fresh arrays.
   */
  async forward(
    input: SequenceInput,
    step: number,
    parts: number,
    candidates: boolean,
    background: boolean,
  ): Promise<SequenceOutput> {
    const s = this.#library.symbols;
    const handle = this.#live();
    const { batch: B, seqLen: T } = input;
    const { hiddenSize: H, variant: { k } } = this.#sizes;
    this.#recorded = null;
    // Referenced until the promise settles (they are its result): the library writes into them.
    const output = new Float32Array(B * T * H);
    const hidden = new Float32Array(B * H);
    const state = new Float32Array(k * B * H);
    const args = [
      handle,
      parts,
      B,
      T,
      input.x as Float32Array,
      input.hidden as Float32Array,
      input.state as Float32Array,
      output,
      output.length,
      hidden,
      hidden.length,
      state,
      state.length,
      candidates ? 1 : 0,
    ] as const;
    const status = background
      ? await this.#pool.run(() => s.alstm_trainer_forward_async(...args))
      : s.alstm_trainer_forward(...args);
    checkStatus(this.#library, status, `recording forward of batch ${B} × seqLen ${T}`);
    this.#recorded = { step, input, parts, candidates };
    return { output, hidden, state };
  }

  /**
   * The backward of step `step` (its forward is run again first unless it was the last one
   * recorded). Returns this call's gradients only.
   */
  async backward(
    step: number,
    input: SequenceInput,
    parts: number,
    grads: NativeGradients,
    background: boolean,
  ): Promise<NativeInputGradients> {
    if (this.#recorded?.step !== step) await this.forward(input, step, parts, false, background);
    const s = this.#library.symbols;
    const handle = this.#live();
    const { batch: B, seqLen: T } = this.#recorded!.input;
    const { inputSize: I, hiddenSize: H, variant: { k } } = this.#sizes;
    this.#recorded = null;
    const { wanted } = grads;
    const args = [
      handle,
      grads.output,
      grads.hidden,
      grads.hidden.length,
      grads.state,
      grads.state.length,
      wanted.x ? 1 : 0,
      wanted.hidden ? 1 : 0,
    ] as const;
    const status = background
      ? await this.#pool.run(() => s.alstm_trainer_backward_async(...args))
      : s.alstm_trainer_backward(...args);
    checkStatus(this.#library, status, `backward of batch ${B} × seqLen ${T}`);
    const result = (which: number) => s.alstm_trainer_result(handle, which);
    return {
      params: copyOut(s.alstm_trainer_vector(handle, 1), this.#length()),
      x: copyOut(result(3), wanted.x ? B * T * I : 0),
      hidden: copyOut(result(4), wanted.hidden ? B * H : 0),
      state: copyOut(result(5), wanted.state ? k * B * H : 0),
    };
  }

  /**
   * The LRP relevance pass of step `step` (its forward run again, keeping the candidates, unless
   * it was the last one recorded and kept them). The record stays for further passes.
   */
  async relevance(
    step: number,
    input: SequenceInput,
    parts: number,
    outputRelevance: Float32Array,
    rule: EpsilonRule,
    background: boolean,
  ): Promise<LayerRelevance> {
    const recorded = this.#recorded;
    if (recorded?.step !== step || !recorded.candidates) {
      await this.forward(input, step, parts, true, background);
    }
    const s = this.#library.symbols;
    const handle = this.#live();
    const { batch: B, seqLen: T } = input;
    const args = [handle, outputRelevance, rule.eps, rule.biasFactor] as const;
    const status = background
      ? await this.#pool.run(() => s.alstm_trainer_relevance_async(...args))
      : s.alstm_trainer_relevance(...args);
    checkStatus(this.#library, status, `relevance pass of batch ${B} × seqLen ${T}`);
    return {
      input: copyOut(s.alstm_trainer_result(handle, 6), B * T * this.#sizes.inputSize),
      rest: copyOut(s.alstm_trainer_result(handle, 7), B),
    };
  }

  /** One optimizer update from `grads` (flat), where the weights live; drops the record. */
  step(update: OptimizerUpdate, grads: Float32Array): void {
    const s = this.#library.symbols;
    const handle = this.#live();
    const apply = dispatchOptimizer(update, {
      sgd: ({ lr, momentum, dampening, nesterov, weightDecay }) => () =>
        s.alstm_trainer_sgd_step(handle, lr, momentum, dampening, nesterov ? 1 : 0, weightDecay),
      adam: ({ lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled }) => () =>
        s.alstm_trainer_adam_step(
          handle,
          lr,
          beta1,
          beta2,
          eps,
          weightDecay,
          amsgrad ? 1 : 0,
          decoupled ? 1 : 0,
        ),
    });
    this.#recorded = null;
    copyIn(s.alstm_trainer_vector(handle, 1), grads);
    checkStatus(this.#library, apply(), `${update.kind} step`);
  }

  /** A copy of the flat parameters (`parameterSizes` order). */
  parameters(): Float32Array {
    return copyOut(this.#library.symbols.alstm_trainer_vector(this.#live(), 0), this.#length());
  }

  /** A copy of the optimizer state. */
  readState(): ResidentOptimizerState {
    const s = this.#library.symbols;
    const handle = this.#live();
    const n = this.#length();
    const slot = (index: number) => copyOut(s.alstm_trainer_vector(handle, 2 + index), n);
    return { steps: s.alstm_trainer_optimizer_steps(handle), slots: [slot(0), slot(1), slot(2)] };
  }

  /** Replaces the optimizer state. */
  writeState(state: ResidentOptimizerState): void {
    const s = this.#library.symbols;
    const handle = this.#live();
    state.slots.forEach((values, index) =>
      copyIn(s.alstm_trainer_vector(handle, 2 + index), values)
    );
    s.alstm_trainer_set_optimizer_steps(handle, state.steps);
  }

  /** Whether a call runs on a thread of Deno's pool now (the trainer must not be touched). */
  get running(): boolean {
    return this.#pool.running;
  }

  /** Frees the trainer. Idempotent. */
  dispose(): void {
    if (this.#handle !== null) this.#library.symbols.alstm_trainer_free(this.#handle);
    this.#handle = null;
    this.#recorded = null;
  }

  #length(): number {
    return Number(this.#library.symbols.alstm_trainer_parameters_len(this.#live()));
  }

  #live(): Handle {
    if (this.#handle === null) throw new Error("this native trainer was disposed");
    return this.#handle;
  }
}
