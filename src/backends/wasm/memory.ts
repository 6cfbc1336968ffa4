/**
 * What one forward call needs in wasm32 memory, checked before the call: a wasm32 module addresses
 * at most 4 GiB, and a call that cannot fit there is refused with a message rather than sent to
 * the kernels (which would otherwise abort, or, before they checked their sizes, wrap a 32-bit
 * length and write out of bounds).
 *
 * @module
 */

import type { CellSpec } from "../backend.ts";
import { VARIANTS } from "../../variants.ts";

/** Bytes a wasm32 memory holds at most: 65536 pages of 64 KiB. */
export const WASM32_MEMORY_BYTES: number = 2 ** 32;

/**
 * Bytes a call of `batch` sequences of `seqLen` steps allocates in wasm memory: the copies of
 * `x`, `hidden` and `state` and the kernels' buffers (`Workspace` in `wasm/src/sequence.rs`).
 *
 * @example
 * ```ts
 * import { callBytes } from "./memory.ts";
 * import assert from "node:assert/strict";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 4, hiddenSize: 4 } as const;
 * assert.equal(callBytes(spec, 1, 1), 4 * (4 + 4 + 4 + 2 * 8 + 4 + 4 + 4 + 4));
 * ```
 */
export function callBytes(
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  batch: number,
  seqLen: number,
): number {
  const { variant: { kind, k }, inputSize: I, hiddenSize: H } = spec;
  const pad = (n: number, multiple: number) => Math.ceil(n / multiple) * multiple;
  const hiddenPad = pad(H, 4);
  const depth = pad(I, 4) + hiddenPad;
  const { attention, argmax } = VARIANTS[kind];
  const inputs = batch * seqLen * I + batch * H + k * batch * H;
  const workspace = 2 * batch * depth + batch * k * hiddenPad +
    (argmax ? batch * hiddenPad : 0) + (attention ? batch * pad(k * hiddenPad, 16) : 0) +
    batch * seqLen * H + batch * H + k * batch * H;
  return 4 * (inputs + workspace);
}

/**
 * Throws if a call of `batch` sequences of `seqLen` steps cannot fit in wasm32 memory.
 *
 * @throws {RangeError} Naming the sizes, the bytes needed and the limit.
 *
 * @example
 * ```ts
 * import { checkFitsWasm32 } from "./memory.ts";
 * import assert from "node:assert/strict";
 * const spec = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 64 } as const;
 * checkFitsWasm32(spec, 1024, 100);
 * assert.throws(() => checkFitsWasm32(spec, 1 << 16, 1 << 10), RangeError);
 * ```
 */
export function checkFitsWasm32(
  spec: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  batch: number,
  seqLen: number,
): void {
  const bytes = callBytes(spec, batch, seqLen);
  if (bytes > WASM32_MEMORY_BYTES) {
    throw new RangeError(
      `a wasm call of batch ${batch} × seqLen ${seqLen} with hiddenSize ${spec.hiddenSize} needs ` +
        `${bytes} bytes, more than a wasm32 memory holds (${WASM32_MEMORY_BYTES} bytes): ` +
        "run fewer or shorter sequences per call, or use the webgpu backend",
    );
  }
}
