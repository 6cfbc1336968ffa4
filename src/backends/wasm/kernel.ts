/**
 * One compiled cell in one wasm instance of this thread: packs the weights once, runs whole
 * sequences synchronously. The WASM backend uses it directly (one thread) and inside each worker;
 * it takes only specs and inputs that passed the contract's checks (`src/contract/`).
 *
 * @module
 */

import {
  type CellSpec,
  requestedExtras,
  type SequenceInput,
  type SequenceOutput,
  stateRows,
} from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import {
  instantiate,
  type WasmCell,
  type WasmFlavor,
  type WasmModule,
  type WasmTorchCell,
} from "./bindings.ts";
import { lstmCellArguments, torchCellArguments } from "../cell_arguments.ts";
import { checkFitsWasm32 } from "./memory_plan.ts";
import type { SharedUnits } from "./shared_units.ts";

/**
 * A cell compiled into this thread's wasm instance: the packed weights stay in wasm memory until
 * {@linkcode WasmKernel.dispose}.
 *
 * @example
 * ```ts
 * import { WasmKernel } from "./kernel.ts";
 * const z = (n: number) => new Float32Array(n);
 * const kernel = new WasmKernel({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * const { output } = kernel.run({ batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(1) });
 * kernel.dispose();
 * ```
 */
export class WasmKernel {
  /** A `Cell` for the LSTM family, a `TorchCell` for GRU and RNN. */
  #cell: WasmCell | WasmTorchCell | null;
  readonly #sizes: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">;
  readonly #module: WasmModule;

  /**
   * Packs `spec`'s weights into the memory of this thread's instance of the `flavor` build
   * (default: relaxed SIMD where the runtime has it); the spec's arrays are only read.
   */
  constructor(spec: CellSpec, flavor?: WasmFlavor) {
    this.#module = instantiate(flavor);
    const { variant } = spec;
    const { cellStates } = VARIANTS[variant.kind];
    this.#sizes = {
      variant: { ...variant },
      inputSize: spec.inputSize,
      hiddenSize: spec.hiddenSize,
    };
    this.#cell = cellStates
      ? new this.#module.Cell(...lstmCellArguments(spec))
      : new this.#module.TorchCell(...torchCellArguments(spec));
  }

  /** Whether {@linkcode WasmKernel.run} can still be called (not disposed, no trap). */
  get usable(): boolean {
    return this.#cell !== null;
  }

  /**
   * Runs all steps of `input`; returns fresh arrays. Throws after {@linkcode WasmKernel.dispose}
   * and after a call that trapped, which leaves the kernel unusable (make a new one).
   */
  run(input: SequenceInput): SequenceOutput {
    if (this.#cell === null) throw new Error("this wasm kernel was disposed");
    const { batch: B, seqLen: T } = input;
    const cell = this.#cell;
    const wants = requestedExtras(input);
    checkFitsWasm32(this.#sizes, B, T, wants);
    try {
      if ("state_ptr" in cell) {
        cell.set_outputs(wants.attention, wants.lanes);
        cell.forward(B, T, input.x, input.hidden, input.state);
      } else cell.forward(B, T, input.x, input.hidden);
    } catch (error) {
      // A trap leaves the cell marked as borrowed, so freeing it would throw: drop it (its memory
      // is lost with it) rather than let a later dispose() fail.
      this.#cell = null;
      throw new Error(
        `the wasm kernel failed on batch ${B} × seqLen ${T} (${error}); the cell is rebuilt on ` +
          "the next call",
        { cause: error },
      );
    }
    return this.#results(B, T, wants);
  }

  /**
   * Runs `input` as one of the threads that share its hidden units (`units`): every step on this
   * part's blocks only, trading `h_t` with the other parts after each. Only the LSTM family's
   * cells, without opt-in outputs. The output and cells are valid for this part's units; the
   * final hidden state for all of them.
   */
  runSharing(input: SequenceInput, units: SharedUnits): SequenceOutput {
    const cell = this.#cell;
    if (cell === null) throw new Error("this wasm kernel was disposed");
    if (!("state_ptr" in cell)) throw new Error("only the LSTM family's cells share units");
    const { batch: B, seqLen: T } = input;
    checkFitsWasm32(this.#sizes, B, T, { attention: false, lanes: false });
    const [first, end] = units.blocks;
    // An error of the exchange (another part failed) leaves this cell usable; a trap does not.
    let inWasm = true;
    try {
      cell.set_outputs(false, false);
      cell.begin(B, T, input.x, input.hidden, input.state);
      const stride = cell.row_stride();
      // begin sized every buffer: memory does not grow during the steps.
      const memory = this.#module.memory.buffer;
      const length = (B - 1) * stride + this.#sizes.hiddenSize;
      // Two buffers of rows take turns: one view of each, made on first use.
      const views = new Map<number, Float32Array>();
      for (let t = 0; t < T; t++) {
        const address = cell.step(t, first, end);
        let rows = views.get(address);
        if (rows === undefined) {
          views.set(address, rows = new Float32Array(memory, address, length));
        }
        inWasm = false;
        units.exchange(t, rows, stride);
        inWasm = true;
      }
      cell.finish();
    } catch (error) {
      if (!inWasm) throw error;
      this.#cell = null;
      throw new Error(
        `the wasm kernel failed on batch ${B} × seqLen ${T} sharing units (${error}); the cell ` +
          "is rebuilt on the next call",
        { cause: error },
      );
    }
    return this.#results(B, T, { attention: false, lanes: false });
  }

  /** Copies of the last call's results out of wasm memory. */
  #results(B: number, T: number, wants: { attention: boolean; lanes: boolean }): SequenceOutput {
    const cell = this.#cell!;
    const { hiddenSize: H, variant } = this.#sizes;
    // The memory may have grown during the call: take its buffer only now.
    const memory = this.#module.memory.buffer;
    const copy = (address: number, length: number): Float32Array =>
      new Float32Array(memory, address, length).slice();
    return {
      output: copy(cell.output_ptr(), B * T * H),
      hidden: copy(cell.hidden_ptr(), B * H),
      ...("state_ptr" in cell
        ? {
          state: copy(cell.state_ptr(), stateRows(variant) * B * H),
          ...(wants.attention
            ? { attention: copy(cell.attention_ptr(), B * T * H * variant.k) }
            : {}),
          ...(wants.lanes
            ? { lanes: new Int32Array(memory, cell.lanes_ptr(), B * T * H).slice() }
            : {}),
        }
        : { state: new Float32Array(0) }),
    };
  }

  /** Frees the packed weights and buffers. Idempotent. */
  dispose(): void {
    this.#cell?.free();
    this.#cell = null;
  }
}
