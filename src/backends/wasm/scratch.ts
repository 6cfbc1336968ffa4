/**
 * Buffers that a training step's slices travel in between the calling thread and a worker, reused
 * from call to call: a fresh array for every slice costs a page fault per 4 KiB on first touch, on
 * both sides, several MiB per step at the documentation's batch. A buffer is transferred, never
 * shared, so only one thread holds it at a time; nothing in one ever reaches a caller (results are
 * copied out of it into arrays of their own).
 *
 * @module
 */

/**
 * `Float32Array` views of `lengths` floats, one after another from the start of `buffer`, or of a
 * new buffer where `buffer` is `null` or too small.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { packedViews } from "./scratch.ts";
 * const buffer = new ArrayBuffer(64);
 * const [a, b] = packedViews(buffer, [3, 2]);
 * assert.equal(a.buffer, buffer);
 * assert.deepEqual([a.byteOffset, b.byteOffset, b.length], [0, 12, 2]);
 * assert.notEqual(packedViews(buffer, [20])[0].buffer, buffer); // 80 bytes do not fit
 * ```
 */
export function packedViews(
  buffer: ArrayBuffer | null,
  lengths: readonly number[],
): Float32Array[] {
  let total = 0;
  for (const length of lengths) total += length;
  const target = buffer !== null && buffer.byteLength >= 4 * total
    ? buffer
    : new ArrayBuffer(4 * total);
  let offset = 0;
  return lengths.map((length) => {
    const view = new Float32Array(target, 4 * offset, length);
    offset += length;
    return view;
  });
}

/**
 * The spare buffers of one worker's calls: taken to send a call's slices (or to receive its
 * results), given back once the results have been copied out. At most two are kept (a forward's
 * and a backward's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ScratchBuffers } from "./scratch.ts";
 * const spares = new ScratchBuffers();
 * assert.equal(spares.take(), null);
 * const buffer = new ArrayBuffer(8);
 * spares.give(buffer);
 * assert.equal(spares.take(), buffer);
 * ```
 */
export class ScratchBuffers {
  readonly #spare: ArrayBuffer[] = [];

  /** A spare buffer, or `null` when none is left (the receiver then makes one). */
  take(): ArrayBuffer | null {
    return this.#spare.pop() ?? null;
  }

  /** Keeps `buffer` for a later call; a shared or detached one, or one too many, is dropped. */
  give(buffer: ArrayBufferLike): void {
    if (!(buffer instanceof ArrayBuffer) || buffer.byteLength === 0) return;
    if (this.#spare.length < 2) this.#spare.push(buffer);
  }
}
