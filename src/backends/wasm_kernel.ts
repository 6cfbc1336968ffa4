/**
 * One compiled cell in one wasm instance of this thread: packs the weights once, runs whole
 * sequences synchronously. The WASM backend uses it directly (one thread) and inside each worker.
 *
 * @module
 */

import type { CellSpec, SequenceInput, SequenceOutput } from "./backend.ts";
import { VARIANTS } from "../variants.ts";
import { instantiate, type WasmCell, type WasmFlavor, type WasmModule } from "./wasm/bindings.ts";
import { checkFitsWasm32 } from "./wasm/memory.ts";

function checkLength(name: string, array: unknown, length: number, meaning: string): void {
  if (!(array instanceof Float32Array)) {
    throw new TypeError(`${name} must be a Float32Array ${meaning}, got ${describeValue(array)}`);
  }
  if (array.length !== length) {
    throw new RangeError(
      `${name} must hold ${meaning} = ${length} floats, got ${array.length}`,
    );
  }
}

function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return `${typeof value} ${String(value)}`;
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer, got ${describeValue(value)}`);
  }
  return value;
}

/**
 * Checks a cell spec for the WASM backend: known variant, positive sizes, parameter lengths.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong.
 *
 * @example
 * ```ts
 * import { checkSpec } from "./wasm_kernel.ts";
 * const z = (n: number) => new Float32Array(n);
 * checkSpec({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * });
 * ```
 */
export function checkSpec(spec: CellSpec): void {
  const { variant, params } = spec;
  if (!Object.hasOwn(VARIANTS, variant.kind)) {
    throw new TypeError(`unknown cell kind ${JSON.stringify(variant.kind)}`);
  }
  const k = checkCount("variant.k", variant.k);
  if (VARIANTS[variant.kind].lanes === "one" && k !== 1) {
    throw new RangeError(`an "lstm" cell has k = 1, got k = ${k}`);
  }
  const I = checkCount("inputSize", spec.inputSize);
  const H = checkCount("hiddenSize", spec.hiddenSize);
  const rows = 4 * k * H;
  checkLength("params.i2hWeight", params.i2hWeight, rows * I, "(4kH, I)");
  checkLength("params.i2hBias", params.i2hBias, rows, "(4kH)");
  checkLength("params.h2hWeight", params.h2hWeight, rows * H, "(4kH, H)");
  checkLength("params.h2hBias", params.h2hBias, rows, "(4kH)");
  if (VARIANTS[variant.kind].attention) {
    checkLength("params.i2aWeight", params.i2aWeight, k * H * I, "(kH, I)");
    checkLength("params.i2aBias", params.i2aBias, k * H, "(kH)");
  }
}

/**
 * Checks one call's input against the cell's sizes.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong.
 *
 * @example
 * ```ts
 * import { checkInput } from "./wasm_kernel.ts";
 * const z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * } as const;
 * checkInput(spec, { batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(1) });
 * ```
 */
export function checkInput(spec: CellSpec, input: SequenceInput): void {
  const B = checkCount("batch", input.batch);
  const T = checkCount("seqLen", input.seqLen);
  const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
  checkLength("x", input.x, B * T * I, "(batch, seqLen, inputSize)");
  checkLength("hidden", input.hidden, B * H, "(batch, hiddenSize)");
  checkLength("state", input.state, k * B * H, "(k, batch, hiddenSize)");
}

/**
 * A cell compiled into this thread's wasm instance: the packed weights stay in wasm memory until
 * {@linkcode WasmKernel.dispose}.
 *
 * @example
 * ```ts
 * import { WasmKernel } from "./wasm_kernel.ts";
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
  #cell: WasmCell | null;
  readonly #spec: CellSpec;
  readonly #module: WasmModule;

  /**
   * Packs `spec`'s weights into the memory of this thread's instance of the `flavor` build
   * (default: relaxed SIMD where the runtime has it); the spec's arrays are only read.
   */
  constructor(spec: CellSpec, flavor?: WasmFlavor) {
    checkSpec(spec);
    this.#module = instantiate(flavor);
    const { variant, params } = spec;
    const none = new Float32Array(0);
    const attention = VARIANTS[variant.kind].attention;
    this.#spec = { ...spec, params: { ...params, i2aWeight: null, i2aBias: null } };
    this.#cell = new this.#module.Cell(
      VARIANTS[variant.kind].code,
      variant.k,
      variant.maxPooling,
      spec.inputSize,
      spec.hiddenSize,
      params.i2hWeight,
      params.i2hBias,
      params.h2hWeight,
      params.h2hBias,
      attention ? params.i2aWeight! : none,
      attention ? params.i2aBias! : none,
    );
  }

  /** Runs all steps of `input`; returns fresh arrays. Throws after {@linkcode WasmKernel.dispose}. */
  run(input: SequenceInput): SequenceOutput {
    if (this.#cell === null) {
      throw new Error("this wasm runner was disposed; compile the cell again to run it");
    }
    checkInput(this.#spec, input);
    const { batch: B, seqLen: T } = input;
    checkFitsWasm32(this.#spec, B, T);
    const { hiddenSize: H, variant: { k } } = this.#spec;
    this.#cell.forward(B, T, input.x, input.hidden, input.state);
    // The memory may have grown during the call: take its buffer only now.
    const memory = this.#module.memory.buffer;
    const copy = (address: number, length: number): Float32Array =>
      new Float32Array(memory, address, length).slice();
    return {
      output: copy(this.#cell.output_ptr(), B * T * H),
      hidden: copy(this.#cell.hidden_ptr(), B * H),
      state: copy(this.#cell.state_ptr(), k * B * H),
    };
  }

  /** Frees the packed weights and buffers. Idempotent. */
  dispose(): void {
    this.#cell?.free();
    this.#cell = null;
  }
}
