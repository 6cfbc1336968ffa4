/**
 * Whether a call that may split its hidden units over threads (`splitFor`) does, by what such
 * calls of one runner have taken either way. The threads of a split meet after every step, so the
 * split pays only while every one of them has a core: on a machine whose cores are busy with
 * other work one thread waits for a preempted partner at every step, and one thread alone is
 * faster (measured on 2 shared cores under a load of 4–6: a batch-1 `LSTM` took 0.015 ms a step
 * on one thread, 0.017–0.040 split, against 0.008 split on idle cores). Both ways give the same
 * bits, so the choice changes only the time.
 *
 * @module
 */

/** Every this many calls, the way that has been slower is tried again (the load changes). */
const RETRY_EVERY = 16;

/** Weight of the newest time in each way's running average. */
const NEWEST = 0.25;

/**
 * Milliseconds per FLOP of the calls that split their units and of those that did not, as running
 * averages; the next call takes the faster way, or the other every {@linkcode RETRY_EVERY} calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SplitChoice } from "./split_choice.ts";
 * const choice = new SplitChoice();
 * assert.equal(choice.next(), true); // untried: split
 * choice.record(true, 4, 1e6);
 * assert.equal(choice.next(), false); // then the other way once
 * choice.record(false, 2, 1e6);
 * assert.equal(choice.next(), false); // the faster one
 * ```
 */
export class SplitChoice {
  /** Average ms per FLOP without and with the split; `NaN` until tried. */
  readonly #perFlop = [NaN, NaN];
  #calls = 0;

  /** Whether the next call splits its hidden units. */
  next(): boolean {
    const [whole, split] = this.#perFlop;
    const call = this.#calls++;
    if (Number.isNaN(split)) return true;
    if (Number.isNaN(whole)) return false;
    const faster = split <= whole;
    return call % RETRY_EVERY === 0 ? !faster : faster;
  }

  /** Records a call of `flops` that took `ms`, split by hidden units (`byUnits`) or not. */
  record(byUnits: boolean, ms: number, flops: number): void {
    const way = byUnits ? 1 : 0;
    const perFlop = ms / flops;
    const before = this.#perFlop[way];
    this.#perFlop[way] = Number.isNaN(before) ? perFlop : before + NEWEST * (perFlop - before);
  }
}
