/**
 * Tracks the `nonblocking` calls of one native object: while one runs on a thread of Deno's pool,
 * the object must be neither freed nor called again.
 *
 * @module
 */

/**
 * Marks a native object as in use for the length of each `nonblocking` call it runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PoolUse } from "./pool_use.ts";
 * const use = new PoolUse();
 * const status = await use.run(() => {
 *   assert.equal(use.running, true);
 *   return Promise.resolve(0);
 * });
 * assert.equal(status, 0);
 * assert.equal(use.running, false);
 * ```
 */
export class PoolUse {
  #running = false;

  /** Whether a call runs on a thread of Deno's pool now. */
  get running(): boolean {
    return this.#running;
  }

  /** Runs a `nonblocking` call, marking the object as in use until it settles. */
  async run(call: () => Promise<number>): Promise<number> {
    this.#running = true;
    try {
      return await call();
    } finally {
      this.#running = false;
    }
  }
}
