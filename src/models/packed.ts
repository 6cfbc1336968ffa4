/**
 * Variable-length sequences, run as PyTorch's packed sequences are: rows sorted by length
 * (longest first), then time chunks split at the distinct lengths, each chunk run on the rows
 * still going and continued from the state the previous chunk returned. A row that has finished
 * drops out of the batch, so its final state is the one at its own length and its outputs past it
 * stay zero. Every copy between the caller's layout and the chunks is recorded on the tape, so
 * gradients reach the parameters, `x` and the initial state through all chunks.
 *
 * @module
 */

import { describe } from "../errors.ts";
import type { Tensor } from "../tensor.ts";
import { record, type TrackedTensor } from "../nn/tape.ts";

/** A recurrent state as the chunks pass it on: hidden `(1, B, H)` and cells `(k, B, H)`. */
export interface ChunkState {
  /** Hidden state, shape `(1, rows, H)`. */
  readonly hidden: Tensor;
  /** Cell states, shape `(k, rows, H)`. */
  readonly state: Tensor;
}

/** What running one chunk returns. */
export interface ChunkResult extends ChunkState {
  /** Outputs of the chunk's steps, shape `(rows, steps, H)`. */
  readonly output: Tensor;
}

/** The next chunk to run: its input `(rows, steps, I)` and the state to start from. */
export interface Chunk {
  /** Input of the rows still going, over this chunk's steps. */
  readonly x: TrackedTensor;
  /** The state those rows start the chunk with. */
  readonly start: ChunkState;
}

/** The results in the caller's row order, as `forward` returns them. */
export interface PackedResult {
  /** Outputs `(B, T, H)`, zero past each row's length. */
  readonly output: TrackedTensor;
  /** Hidden state at each row's length, `(1, B, H)`. */
  readonly hidden: TrackedTensor;
  /** Cell states at each row's length, `(k, B, H)`. */
  readonly state: TrackedTensor;
}

/**
 * Checks `lengths` against a batch and returns it as an `Int32Array` (a copy).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkLengths } from "./packed.ts";
 * assert.deepEqual([...checkLengths([3, 1], 2, 3)], [3, 1]);
 * assert.throws(() => checkLengths([4, 1], 2, 3), /lengths\[0\] must be an integer/);
 * ```
 */
export function checkLengths(lengths: unknown, batch: number, seqLen: number): Int32Array {
  if (!Array.isArray(lengths) && !(lengths instanceof Int32Array)) {
    throw new TypeError(
      `lengths must be an array or Int32Array with one length per sequence, got ${
        describe(lengths)
      }`,
    );
  }
  if (lengths.length !== batch) {
    throw new RangeError(
      `lengths must have one entry per sequence of x (batch = ${batch}), got ${lengths.length}`,
    );
  }
  const checked = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const length: unknown = lengths[b];
    if (!Number.isInteger(length) || (length as number) < 1 || (length as number) > seqLen) {
      throw new RangeError(
        `lengths[${b}] must be an integer in [1, seqLen = ${seqLen}] (the steps of x), got ${
          describe(length)
        }`,
      );
    }
    checked[b] = length as number;
  }
  return checked;
}

/** One side of a block copy: a tensor viewed as `(outer, rows, inner)`, from `offset` in a row. */
interface View {
  readonly rows: number;
  readonly inner: number;
  readonly offset: number;
}

/** `width` elements of each `(outer, row)`, from row `pairs[i][0]` of `from` to `[1]` of `to`. */
interface Block {
  readonly source: Tensor;
  readonly outer: number;
  readonly width: number;
  readonly from: View;
  readonly to: View;
  readonly pairs: readonly (readonly [number, number])[];
}

function copyBlock(
  src: Float32Array,
  from: View,
  dst: Float32Array,
  to: View,
  { outer, width, pairs }: Block,
  backward: boolean,
): void {
  for (let o = 0; o < outer; o++) {
    for (const pair of pairs) {
      const [a, b] = backward ? [pair[1], pair[0]] : pair;
      const start = (o * from.rows + a) * from.inner + from.offset;
      dst.set(src.subarray(start, start + width), (o * to.rows + b) * to.inner + to.offset);
    }
  }
}

/**
 * A tensor of `shape` assembled from blocks of other tensors (zeros elsewhere), recorded: the
 * gradient of each source is the matching block of the result's gradient. Blocks never overlap.
 */
function assemble(name: string, shape: number[], blocks: readonly Block[]): TrackedTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (const block of blocks) {
    copyBlock(block.source.data, block.from, data, block.to, block, false);
  }
  return record(
    name,
    [{ shape, data }],
    blocks.map((block) => block.source),
    ([grad]) =>
      blocks.map((block) => {
        const out = new Float32Array(block.source.data.length);
        copyBlock(grad!, block.to, out, block.from, block, true);
        return out;
      }),
  )[0];
}

/** Rows `0..count` of a state, recorded (the rows still going after a chunk). */
function firstRows(state: ChunkState, count: number): ChunkState {
  const rows = state.hidden.shape[1], H = state.hidden.shape[2], k = state.state.shape[0];
  const pairs = Array.from({ length: count }, (_, i) => [i, i] as const);
  const view = (n: number): View => ({ rows: n, inner: H, offset: 0 });
  return {
    hidden: assemble("packed state", [1, count, H], [
      { source: state.hidden, outer: 1, width: H, from: view(rows), to: view(count), pairs },
    ]),
    state: assemble("packed state", [k, count, H], [
      { source: state.state, outer: k, width: H, from: view(rows), to: view(count), pairs },
    ]),
  };
}

/**
 * Runs a batch of variable-length sequences in chunks: `next()` gives the chunk to run (or
 * `null` when all have run), `accept()` takes its result, `result()` assembles the outputs in
 * the caller's row order. Everything read from `x` and the initial state is copied when the plan
 * is made, so the caller may reuse those buffers as soon as the constructor returns.
 *
 * @example Two rows of lengths 3 and 1, run by a stand-in cell that outputs its input
 * ```ts
 * import assert from "node:assert/strict";
 * import { PackedRun } from "./packed.ts";
 * import { tensor, zeros } from "../tensor.ts";
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3, 1]);
 * const run = new PackedRun(x, { hidden: zeros([1, 2, 1]), state: zeros([1, 2, 1]) }, [1, 3]);
 * for (let chunk = run.next(); chunk !== null; chunk = run.next()) {
 *   const [rows, steps] = chunk.x.shape;
 *   const last = Array.from({ length: rows }, (_, r) => chunk.x.data[r * steps + steps - 1]);
 *   const hidden = tensor(last, [1, rows, 1]);
 *   run.accept({ output: chunk.x, hidden, state: hidden });
 * }
 * const { output, hidden } = run.result();
 * assert.deepEqual([...output.data], [1, 0, 0, 4, 5, 6]);
 * assert.deepEqual([...hidden.data], [1, 6]);
 * ```
 */
export class PackedRun {
  readonly #shape: { batch: number; seqLen: number; hidden: number; k: number };
  /** Row `i` of the chunks is row `order[i]` of the caller's batch. */
  readonly #order: number[];
  /** Per chunk: first step, end step, and rows still going. */
  readonly #chunks: { from: number; to: number; rows: number }[] = [];
  readonly #inputs: TrackedTensor[];
  #start: ChunkState;
  #done = 0;
  readonly #outputs: Block[] = [];
  readonly #hiddens: Block[] = [];
  readonly #states: Block[] = [];
  #attention: Float32Array | null = null;
  #lanes: Int32Array | null = null;

  /**
   * Plans the chunks of a batch and copies its input and initial state into them.
   *
   * @param x Input `(B, T, I)`.
   * @param start Initial state: hidden `(1, B, H)`, cells `(k, B, H)`.
   * @param lengths Steps of each row, checked by {@linkcode checkLengths}.
   */
  constructor(x: Tensor, start: ChunkState, lengths: ArrayLike<number>) {
    const [batch, seqLen, I] = x.shape;
    const [k, , H] = start.state.shape;
    this.#shape = { batch, seqLen, hidden: H, k };
    // Longest first, ties in the caller's order, so the rows still going are always a prefix.
    this.#order = Array.from({ length: batch }, (_, b) => b)
      .sort((a, b) => lengths[b] - lengths[a] || a - b);
    const ends = [...new Set(Array.from(lengths))].sort((a, b) => a - b);
    let from = 0;
    for (const to of ends) {
      const rows = this.#order.findLastIndex((b) => lengths[b] >= to) + 1;
      this.#chunks.push({ from, to, rows });
      from = to;
    }
    this.#inputs = this.#chunks.map(({ from, to, rows }) =>
      assemble("packed input", [rows, to - from, I], [{
        source: x,
        outer: 1,
        width: (to - from) * I,
        from: { rows: batch, inner: seqLen * I, offset: from * I },
        to: { rows, inner: (to - from) * I, offset: 0 },
        pairs: this.#order.slice(0, rows).map((b, i) => [b, i] as const),
      }])
    );
    const sorted = this.#order.map((b, i) => [b, i] as const);
    const view: View = { rows: batch, inner: H, offset: 0 };
    this.#start = {
      hidden: assemble("packed state", [1, batch, H], [
        { source: start.hidden, outer: 1, width: H, from: view, to: view, pairs: sorted },
      ]),
      state: assemble("packed state", [k, batch, H], [
        { source: start.state, outer: k, width: H, from: view, to: view, pairs: sorted },
      ]),
    };
  }

  /** The next chunk to run, or `null` once every chunk has run. */
  next(): Chunk | null {
    if (this.#done === this.#chunks.length) return null;
    return { x: this.#inputs[this.#done], start: this.#start };
  }

  /**
   * Takes the result of the chunk `next()` gave, with its opt-in outputs when it has them:
   * attention weights `(rows, steps, H, k)` and chosen lanes `(rows, steps, H)`.
   */
  accept(result: ChunkResult & ChunkExtras): void {
    const { from, to, rows } = this.#chunks[this.#done];
    const { batch, seqLen, hidden: H, k } = this.#shape;
    const callerRows = this.#order.slice(0, rows);
    if (result.attention !== undefined) {
      this.#attention ??= new Float32Array(batch * seqLen * H * k);
      placeSteps(result.attention.data, this.#attention, callerRows, from, to, seqLen, H * k);
    }
    if (result.lanes !== undefined) {
      this.#lanes ??= new Int32Array(batch * seqLen * H).fill(-1);
      placeSteps(result.lanes.data, this.#lanes, callerRows, from, to, seqLen, H);
    }
    const later = this.#chunks[this.#done + 1]?.rows ?? 0;
    const steps = to - from;
    this.#outputs.push({
      source: result.output,
      outer: 1,
      width: steps * H,
      from: { rows, inner: steps * H, offset: 0 },
      to: { rows: batch, inner: seqLen * H, offset: from * H },
      pairs: this.#order.slice(0, rows).map((b, i) => [i, b] as const),
    });
    // Rows `later..rows` end with this chunk: their final state is this chunk's.
    const ending = this.#order.slice(later, rows).map((b, i) => [later + i, b] as const);
    const own: View = { rows, inner: H, offset: 0 }, caller: View = { ...own, rows: batch };
    const final = { width: H, from: own, to: caller, pairs: ending };
    this.#hiddens.push({ source: result.hidden, outer: 1, ...final });
    this.#states.push({ source: result.state, outer: this.#shape.k, ...final });
    this.#done++;
    if (later > 0) this.#start = firstRows(result, later);
  }

  /**
   * The results in the caller's row order, once every chunk has run; the opt-in outputs when the
   * chunks had them, zero (attention) or -1 (lanes) past each row's length.
   */
  result(): PackedResult & ChunkExtras {
    const { batch, seqLen, hidden: H, k } = this.#shape;
    return {
      output: assemble("packed output", [batch, seqLen, H], this.#outputs),
      hidden: assemble("packed state", [1, batch, H], this.#hiddens),
      state: assemble("packed state", [k, batch, H], this.#states),
      ...(this.#attention === null
        ? {}
        : { attention: { shape: [batch, seqLen, H, k], data: this.#attention } }),
      ...(this.#lanes === null ? {} : { lanes: { shape: [batch, seqLen, H], data: this.#lanes } }),
    };
  }
}

/** The opt-in outputs of a chunk or of the whole run (no gradient: plain arrays). */
export interface ChunkExtras {
  /** Attention weights, shape `(rows, steps, H, k)`. */
  readonly attention?: Tensor;
  /** Chosen lanes, shape `(rows, steps, H)`. */
  readonly lanes?: { readonly shape: readonly number[]; readonly data: Int32Array };
}

/** Chunk row `i`'s steps `from..to` (`width` values each) into caller row `rows[i]` of `target`. */
function placeSteps<A extends Float32Array | Int32Array>(
  source: A,
  target: A,
  rows: readonly number[],
  from: number,
  to: number,
  seqLen: number,
  width: number,
): void {
  const steps = to - from;
  rows.forEach((b, i) => {
    target.set(
      source.subarray(i * steps * width, (i + 1) * steps * width),
      (b * seqLen + from) * width,
    );
  });
}
