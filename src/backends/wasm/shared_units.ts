/**
 * Threads that share the hidden units of one call, step by step: a batch too small to split by
 * rows (batch 1, the latency case) is split by blocks of hidden units instead. Every thread runs
 * every step on its own blocks, with its own wasm instance, and after each step the threads trade
 * their units of `h_t` through a `SharedArrayBuffer`, which each then copies into its next input
 * rows. Each thread streams only its share of the weights per step (half of 1.3 MB at 64 inputs
 * and 256 units: it then fits in a core's L2), where one thread alone streams all of it from L3.
 *
 * The exchange waits by spinning (a step takes ~10 µs; waking a sleeping thread takes about as
 * long), then sleeping in `Atomics.wait` where the thread may block, so a thread that is late
 * costs no CPU. Results are bit-identical to one thread's: every unit is computed as `forward`
 * computes it.
 *
 * @module
 */

/** Hidden units per block of the kernels (`UNITS` of `wasm/src/pack.rs`). */
const UNITS = 4;
/** `Int32` flags in front of the data: one step counter per part, then the abort flag. */
const FLAG_BYTES = 64;
/** Most parts one buffer serves (the flags must fit in {@linkcode FLAG_BYTES}). */
export const MAX_SHARING_PARTS = FLAG_BYTES / 4 - 1;
/** Loads of a flag before a waiting thread sleeps instead. */
const SPINS = 2_000_000;
/** A part that has not moved for this long has stopped: the call fails instead of hanging. */
const STALL_MS = 10_000;

/**
 * Blocks `[first, end)` of part `part` of `parts`, out of `blocks` blocks of four units: as even
 * as possible, in pairs (the batch-1 kernel takes blocks two at a time).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blocksOf } from "./shared_units.ts";
 * assert.deepEqual([blocksOf(64, 0, 2), blocksOf(64, 1, 2)], [[0, 32], [32, 64]]);
 * assert.deepEqual([blocksOf(5, 0, 2), blocksOf(5, 1, 2)], [[0, 2], [2, 5]]);
 * ```
 */
export function blocksOf(blocks: number, part: number, parts: number): [number, number] {
  const pairs = Math.floor(blocks / 2);
  const at = (p: number) => (p === parts ? blocks : 2 * Math.floor((pairs * p) / parts));
  return [at(part), at(part + 1)];
}

/** Hidden units `[start, end)` of part `part` of `parts` for `hidden` units. */
export function unitsOf(hidden: number, part: number, parts: number): [number, number] {
  const [first, end] = blocksOf(Math.ceil(hidden / UNITS), part, parts);
  return [Math.min(hidden, first * UNITS), Math.min(hidden, end * UNITS)];
}

/**
 * The buffer `parts` threads share for a call of `batch` rows and `hidden` units: the flags and
 * two `(B, H)` slots of `h_t` (steps alternate, so a thread can write step `t + 1`'s units while a
 * slower one still reads step `t`'s).
 */
export function sharedUnitsBuffer(batch: number, hidden: number, parts: number): SharedArrayBuffer {
  if (parts > MAX_SHARING_PARTS) {
    throw new RangeError(`parts: expected at most ${MAX_SHARING_PARTS}, got ${parts}`);
  }
  return new SharedArrayBuffer(FLAG_BYTES + 2 * batch * hidden * 4);
}

/** Marks the call failed, so the other parts stop waiting and throw. */
export function abortSharing(buffer: SharedArrayBuffer, parts: number): void {
  const flags = new Int32Array(buffer, 0, parts + 1);
  Atomics.store(flags, parts, 1);
  for (let part = 0; part <= parts; part++) Atomics.notify(flags, part);
}

/** Whether this thread may sleep in `Atomics.wait` (a browser's main thread may not). */
let mayBlock: boolean | undefined;

/** Probes with a wait of 0 ms on `flags` (the call's own buffer: the probe allocates nothing). */
function canBlock(flags: Int32Array): boolean {
  if (mayBlock === undefined) {
    try {
      Atomics.wait(flags, 0, Atomics.load(flags, 0), 0);
      mayBlock = true;
    } catch {
      mayBlock = false;
    }
  }
  return mayBlock;
}

/** One part's end of {@linkcode sharedUnitsBuffer}: hands its units over after each step. */
export class SharedUnits {
  readonly #flags: Int32Array;
  readonly #slots: Float32Array;
  readonly #batch: number;
  readonly #hidden: number;
  readonly #parts: number;
  readonly #part: number;

  /** Part `part` of `parts` of a call of `batch` rows and `hidden` units, over `buffer`. */
  constructor(
    buffer: SharedArrayBuffer,
    batch: number,
    hidden: number,
    part: number,
    parts: number,
  ) {
    this.#flags = new Int32Array(buffer, 0, parts + 1);
    this.#slots = new Float32Array(buffer, FLAG_BYTES, 2 * batch * hidden);
    this.#batch = batch;
    this.#hidden = hidden;
    this.#part = part;
    this.#parts = parts;
  }

  /** This part's blocks of four hidden units, `[first, end)`. */
  get blocks(): [number, number] {
    return blocksOf(Math.ceil(this.#hidden / UNITS), this.#part, this.#parts);
  }

  /**
   * After step `t`: publishes this part's units of `h_t` from `rows` (`B` rows `stride` floats
   * apart, `h` from index 0), waits for the other parts' and copies theirs into `rows`.
   */
  exchange(t: number, rows: Float32Array, stride: number): void {
    const H = this.#hidden, slot = (t % 2) * this.#batch * H;
    const [start, end] = unitsOf(H, this.#part, this.#parts);
    for (let b = 0; b < this.#batch; b++) {
      this.#slots.set(rows.subarray(b * stride + start, b * stride + end), slot + b * H + start);
    }
    Atomics.store(this.#flags, this.#part, t + 1);
    Atomics.notify(this.#flags, this.#part);
    for (let other = 0; other < this.#parts; other++) {
      if (other === this.#part) continue;
      this.#waitFor(other, t + 1);
      const [from, to] = unitsOf(H, other, this.#parts);
      for (let b = 0; b < this.#batch; b++) {
        rows.set(this.#slots.subarray(slot + b * H + from, slot + b * H + to), b * stride + from);
      }
    }
  }

  /** Spins, then sleeps, until part `other` has finished `steps` steps; throws on an abort. */
  #waitFor(other: number, steps: number): void {
    const flags = this.#flags, abort = this.#parts;
    for (let spin = 0; spin < SPINS; spin++) {
      if (Atomics.load(flags, other) >= steps) return;
    }
    const sleep = canBlock(this.#flags);
    let last = Atomics.load(flags, other), since = performance.now();
    while (last < steps) {
      if (Atomics.load(flags, abort) !== 0) {
        throw new Error("a thread sharing this call's hidden units failed; see its error");
      }
      if (sleep) Atomics.wait(flags, other, last, 1);
      const now = Atomics.load(flags, other);
      if (now !== last) {
        last = now;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        throw new Error(
          `a thread sharing this call's hidden units stopped at step ${last} for ${STALL_MS} ms`,
        );
      }
    }
  }
}
