/**
 * One compiled cell in the native library: the packed weights of an LSTM-family `Cell` or a GRU
 * or RNN `TorchCell` (one copy per thread it may use), and its forward over a number of threads.
 * It takes only specs and inputs that passed the contract's checks (`src/contract/`).
 *
 * @module
 */

import {
  type CellSpec,
  type SequenceInput,
  type SequenceOutput,
  stateRows,
} from "../../contract/mod.ts";
import { VARIANTS } from "../../variants.ts";
import { lstmCellArguments, torchCellArguments } from "../cell_arguments.ts";
import type { NativeLibrary } from "./library.ts";
import { PoolUse } from "./pool_use.ts";

/** A native handle (`*mut NativeCell` and friends). */
export type Handle = Deno.PointerValue;

/**
 * How a call is split over threads: into `parts`, each taking some of the batch rows, or (with
 * `byUnits`, LSTM family only) some of the hidden units of every row.
 */
export interface Split {
  readonly parts: number;
  readonly byUnits: boolean;
}

/** The opt-in outputs a call asks for. */
export interface Extras {
  readonly attention: boolean;
  readonly lanes: boolean;
}

/**
 * The constructor arguments of an LSTM-family `Cell` or `Trainer` after the thread count: kind
 * code, lanes, pooling, gate slope, sizes, then the six parameter arrays (`i2a` empty unless the
 * cell has attention), each with its length.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lstmArguments } from "./kernel.ts";
 * const z = (n: number) => new Float32Array(n);
 * const args = lstmArguments({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * assert.deepEqual(args.slice(0, 6), [0, 1, 0, 0, 1, 1]);
 * assert.equal(args.length, 18);
 * ```
 */
export function lstmArguments(
  spec: CellSpec,
): [number, number, number, number, number, number, ...(Float32Array | number)[]] {
  const [code, k, maxPooling, slope, inputSize, hiddenSize, ...arrays] = lstmCellArguments(spec);
  return [code, k, maxPooling ? 1 : 0, slope, inputSize, hiddenSize, ...withLengths(arrays)];
}

/** `args` with each parameter array followed by its length, as the C ABI takes arrays. */
function withLengths(args: readonly (Float32Array | number)[]): (Float32Array | number)[] {
  return args.flatMap((arg) => typeof arg === "number" ? [arg] : [arg, arg.length]);
}

/**
 * Throws the library's message for a call that returned a non-zero status.
 *
 * @example
 * ```ts ignore
 * checkStatus(library, 0, "forward"); // nothing to report
 * ```
 */
export function checkStatus(library: NativeLibrary, status: number, what: string): void {
  if (status === 0) return;
  throw new Error(`the native kernel failed in the ${what}: ${lastError(library)}`);
}

/**
 * The library's message for its last failed call.
 *
 * @example
 * ```ts ignore
 * if (status !== 0) console.error(lastError(library));
 * ```
 */
export function lastError(library: NativeLibrary): string {
  const buffer = new Uint8Array(1024);
  const length = Number(library.symbols.alstm_last_error(buffer, buffer.length));
  return new TextDecoder().decode(buffer.subarray(0, Math.min(length, buffer.length)));
}

/**
 * A copy of `length` values of the library's memory at `address` (a result it holds until its
 * next call).
 *
 * @example
 * ```ts ignore
 * const output = copyOut(address, 12);
 * ```
 */
export function copyOut(address: Deno.PointerValue, length: number): Float32Array {
  if (length === 0 || address === null) return new Float32Array(0);
  return new Float32Array(Deno.UnsafePointerView.getArrayBuffer(address, length * 4)).slice();
}

/**
 * Writes `values` into the library's memory at `address` (a flat vector of a trainer).
 *
 * @example
 * ```ts ignore
 * copyIn(address, parameters);
 * ```
 */
export function copyIn(address: Deno.PointerValue, values: Float32Array): void {
  if (values.length === 0 || address === null) return;
  new Float32Array(Deno.UnsafePointerView.getArrayBuffer(address, values.length * 4)).set(values);
}

/**
 * A cell compiled into the native library for up to `threads` threads; freed by
 * {@linkcode NativeKernel.dispose}.
 *
 * @example
 * ```ts ignore
 * const kernel = new NativeKernel(library, spec, 2);
 * const split = { parts: 2, byUnits: false };
 * const output = await kernel.run(input, split, { attention: false, lanes: false }, false);
 * kernel.dispose();
 * ```
 */
export class NativeKernel {
  readonly #library: NativeLibrary;
  readonly #spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">;
  readonly #lstm: boolean;
  #handle: Handle;
  readonly #pool = new PoolUse();

  /** Packs `spec`'s weights (the arrays are only read) once per thread. */
  constructor(library: NativeLibrary, spec: CellSpec, threads: number) {
    this.#library = library;
    this.#spec = { variant: spec.variant, inputSize: spec.inputSize, hiddenSize: spec.hiddenSize };
    const { cellStates } = VARIANTS[spec.variant.kind];
    this.#lstm = cellStates;
    const s = library.symbols;
    this.#handle = cellStates
      ? (s.alstm_cell_new as (...args: unknown[]) => Handle)(threads, ...lstmArguments(spec))
      : (s.alstm_torch_cell_new as (...args: unknown[]) => Handle)(
        threads,
        ...withLengths(torchCellArguments(spec)),
      );
    if (this.#handle === null) {
      throw new Error(`the native library refused the cell: ${lastError(library)}`);
    }
  }

  /**
   * Runs all steps of `input` split as `split` says (a GRU or RNN cell splits rows only);
   * `background` runs it on a thread of Deno's pool (the caller must keep `input`'s arrays
   * unchanged until the promise settles). Returns fresh arrays.
   */
  run(
    input: SequenceInput,
    split: Split,
    extras: Extras,
    background: boolean,
  ): Promise<SequenceOutput> {
    return this.#lstm
      ? this.#runLstm(input, split, extras, background)
      : this.#runTorch(input, split.parts, background);
  }

  /**
   * An LSTM-family forward: the library's threads write the results straight into arrays
   * allocated here, each thread its own rows or units.
   */
  async #runLstm(
    input: SequenceInput,
    split: Split,
    extras: Extras,
    background: boolean,
  ): Promise<SequenceOutput> {
    const s = this.#library.symbols;
    const { batch: B, seqLen: T } = input;
    const { hiddenSize: H, variant } = this.#spec;
    // Referenced until the promise settles (they are its result): the library writes into them.
    const output = new Float32Array(B * T * H);
    const hidden = new Float32Array(B * H);
    const state = new Float32Array(stateRows(variant) * B * H);
    const attention = extras.attention ? new Float32Array(B * T * H * variant.k) : null;
    const lanes = extras.lanes ? new Int32Array(B * T * H) : null;
    const args = [
      this.#live(),
      split.parts,
      split.byUnits ? 1 : 0,
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
      attention,
      attention?.length ?? 0,
      lanes,
      lanes?.length ?? 0,
    ] as const;
    const status = background
      ? await this.#pool.run(() => s.alstm_cell_forward_async(...args))
      : s.alstm_cell_forward(...args);
    checkStatus(this.#library, status, `forward of batch ${B} × seqLen ${T}`);
    return {
      output,
      hidden,
      state,
      ...(attention === null ? {} : { attention }),
      ...(lanes === null ? {} : { lanes }),
    };
  }

  /** A GRU or RNN forward over `parts` threads, written into arrays allocated here. */
  async #runTorch(
    input: SequenceInput,
    parts: number,
    background: boolean,
  ): Promise<SequenceOutput> {
    const s = this.#library.symbols;
    const { batch: B, seqLen: T } = input;
    const H = this.#spec.hiddenSize;
    // Referenced until the promise settles (they are its result): the library writes into them.
    const output = new Float32Array(B * T * H);
    const hidden = new Float32Array(B * H);
    const args = [
      this.#live(),
      parts,
      B,
      T,
      input.x as Float32Array,
      input.hidden as Float32Array,
      output,
      output.length,
      hidden,
      hidden.length,
    ] as const;
    const status = background
      ? await this.#pool.run(() => s.alstm_torch_cell_forward_async(...args))
      : s.alstm_torch_cell_forward(...args);
    checkStatus(this.#library, status, `forward of batch ${B} × seqLen ${T}`);
    return { output, hidden, state: new Float32Array(0) };
  }

  /** Whether a call runs on a thread of Deno's pool now (the kernel must not be freed). */
  get running(): boolean {
    return this.#pool.running;
  }

  #live(): Handle {
    if (this.#handle === null) throw new Error("this native kernel was disposed");
    return this.#handle;
  }

  /** Frees the packed weights and buffers. Idempotent. */
  dispose(): void {
    if (this.#handle === null) return;
    const s = this.#library.symbols;
    if (this.#lstm) s.alstm_cell_free(this.#handle);
    else s.alstm_torch_cell_free(this.#handle);
    this.#handle = null;
  }
}
