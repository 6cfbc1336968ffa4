/**
 * A micro-batcher for serving: single-sequence requests that arrive within a few milliseconds of
 * each other run as one batched `forward` (with `lengths`, so each keeps its own length), and each
 * caller gets its own rows back.
 *
 * @module
 */

import { checkOptions, checkShape, checkSize, describe } from "../errors.ts";
import type { ForwardResult, LSTM } from "../models/lstm.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/** How requests are grouped into batches. */
export interface MicroBatcherOptions {
  /**
   * How long the first request of a batch waits for others, in milliseconds (default 2): the
   * most latency batching adds. `0` batches the requests made in the same task.
   */
  maxDelayMs?: number;
  /** The most requests in one batch (default 64); a full batch runs at once. */
  maxBatch?: number;
}

/** One request's results: what `forward` returns for this sequence alone (batch of one). */
export interface Prediction {
  /** The hidden state after every step, shape `(1, seqLen, hiddenSize)`. */
  readonly output: Tensor;
  /** The final hidden state, shape `(1, 1, hiddenSize)`. */
  readonly hidden: Tensor;
  /** The final cell states, shape `(k, 1, hiddenSize)`. */
  readonly state: Tensor;
}

interface Request {
  readonly x: Float32Array;
  readonly steps: number;
  readonly resolve: (value: Prediction) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent single-sequence requests to one model into batched forwards.
 *
 * Each request is checked (and its input copied) when it is made, so a bad request rejects only
 * itself; a failure of a batch's forward rejects that batch's requests with the error. A hot
 * reload (`model.loadStateDict`) is safe at any time: batches already running finish with the
 * old weights, later ones use the new. The model runs in whatever mode it is in: call
 * `model.eval()` (the default) so that serving records nothing.
 *
 * @example Three concurrent requests of different lengths, one batch
 * ```ts
 * import assert from "node:assert/strict";
 * import { LSTM, MicroBatcher, randn } from "../../mod.ts";
 * const model = new LSTM(3, 8, { backend: "js", seed: 1 });
 * await using batcher = new MicroBatcher(model, { maxDelayMs: 5 });
 * const inputs = [randn([4, 3], { seed: 1 }), randn([1, 3], { seed: 2 }), randn([2, 3], { seed: 3 })];
 * const results = await Promise.all(inputs.map((x) => batcher.predict(x)));
 * assert.deepEqual(results.map((r) => r.output.shape), [[1, 4, 8], [1, 1, 8], [1, 2, 8]]);
 * const alone = await model.forward({ shape: [1, 4, 3], data: inputs[0].data });
 * assert.ok(results[0].hidden.data.every((v, i) => Math.abs(v - alone.hidden.data[i]) < 1e-6));
 * ```
 */
export class MicroBatcher {
  /** The model every batch runs on. */
  readonly model: LSTM;
  /** How long the first request of a batch waits for others, in milliseconds. */
  readonly maxDelayMs: number;
  /** The most requests in one batch. */
  readonly maxBatch: number;
  #queue: Request[] = [];
  #timer: ReturnType<typeof setTimeout> | null = null;
  readonly #running = new Set<Promise<void>>();
  #closed = false;

  /**
   * Makes a batcher for `model`.
   *
   * @param model The model to serve; the batcher never disposes it.
   * @param options Batch window and size.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, MicroBatcher } from "../../mod.ts";
   * await using batcher = new MicroBatcher(new LSTM(3, 4, { backend: "js" }), { maxBatch: 8 });
   * assert.deepEqual([batcher.maxDelayMs, batcher.maxBatch, batcher.pending], [2, 8, 0]);
   * assert.throws(() => new MicroBatcher(batcher.model, { maxDelayMs: -1 }), /maxDelayMs/);
   * ```
   */
  constructor(model: LSTM, options: MicroBatcherOptions = {}) {
    checkOptions(options);
    const { maxDelayMs = 2, maxBatch = 64 } = options;
    if (typeof maxDelayMs !== "number" || !(maxDelayMs >= 0) || !Number.isFinite(maxDelayMs)) {
      throw new RangeError(
        `options.maxDelayMs must be a finite number of milliseconds ≥ 0, got ${
          describe(maxDelayMs)
        }`,
      );
    }
    this.model = model;
    this.maxDelayMs = maxDelayMs;
    this.maxBatch = checkSize("options.maxBatch", maxBatch);
  }

  /** Requests waiting for their batch to start. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Runs one sequence in the next batch. `x` is read before this returns, so the caller may
   * reuse its buffer at once.
   *
   * @param x One sequence, shape `(seqLen, inputSize)` or `(1, seqLen, inputSize)`.
   * @returns Its results, as `forward` gives them for a batch of one.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, MicroBatcher, randn } from "../../mod.ts";
   * await using batcher = new MicroBatcher(new LSTM(3, 4, { backend: "js", seed: 1 }));
   * const { output, hidden, state } = await batcher.predict(randn([5, 3], { seed: 2 }));
   * assert.deepEqual([output.shape, hidden.shape, state.shape], [[1, 5, 4], [1, 1, 4], [1, 1, 4]]);
   * await assert.rejects(batcher.predict(randn([5, 2])), /x/);
   * ```
   */
  predict(x: Tensor): Promise<Prediction> {
    try {
      if (this.#closed) {
        throw new Error("predict() after close(): this MicroBatcher takes no more requests");
      }
      checkTensor("x", x);
      const I = this.model.inputSize;
      if (x.shape.length === 3) {
        checkShape("x", x.shape, [1, -1, I], "(1, seqLen, inputSize)");
      } else {
        checkShape("x", x.shape, [-1, I], "(seqLen, inputSize)");
      }
      const steps = x.shape[x.shape.length - 2];
      if (steps === 0) throw new RangeError("x must have at least one step, got seqLen = 0");
      const { promise, resolve, reject } = Promise.withResolvers<Prediction>();
      this.#queue.push({ x: x.data.slice(), steps, resolve, reject });
      if (this.#queue.length >= this.maxBatch) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), this.maxDelayMs);
      return promise;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Starts a batch of the waiting requests (all of them, in batches of at most `maxBatch`). */
  #flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.maxBatch);
      const done = this.#run(batch).finally(() => this.#running.delete(done));
      this.#running.add(done);
    }
  }

  async #run(requests: Request[]): Promise<void> {
    const I = this.model.inputSize;
    const seqLen = Math.max(...requests.map((request) => request.steps));
    const x = new Float32Array(requests.length * seqLen * I);
    requests.forEach((request, b) => x.set(request.x, b * seqLen * I));
    let result: ForwardResult;
    try {
      result = await this.model.forward({ shape: [requests.length, seqLen, I], data: x }, {
        lengths: requests.map((request) => request.steps),
      });
    } catch (error) {
      for (const request of requests) request.reject(error);
      return;
    }
    const H = this.model.hiddenSize, k = this.model.k, B = requests.length;
    requests.forEach((request, b) => {
      const start = b * seqLen * H;
      const state = new Float32Array(k * H);
      for (let lane = 0; lane < k; lane++) {
        state.set(result.state.data.subarray((lane * B + b) * H, (lane * B + b + 1) * H), lane * H);
      }
      request.resolve({
        output: {
          shape: [1, request.steps, H],
          data: result.output.data.slice(start, start + request.steps * H),
        },
        hidden: { shape: [1, 1, H], data: result.hidden.data.slice(b * H, (b + 1) * H) },
        state: { shape: [k, 1, H], data: state },
      });
    });
  }

  /**
   * Takes no more requests, runs the waiting ones at once, and resolves when every batch has
   * settled. The model stays usable (and is not disposed).
   *
   * @example Waiting requests still run; later ones are refused
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, MicroBatcher, randn } from "../../mod.ts";
   * const batcher = new MicroBatcher(new LSTM(3, 4, { backend: "js" }), { maxDelayMs: 1000 });
   * const waiting = batcher.predict(randn([2, 3]));
   * await batcher.close();
   * assert.deepEqual((await waiting).output.shape, [1, 2, 4]);
   * await assert.rejects(batcher.predict(randn([2, 3])), /after close/);
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    this.#flush();
    await Promise.allSettled([...this.#running]);
  }

  /**
   * Same as {@linkcode MicroBatcher.close}, for `await using`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { LSTM, MicroBatcher, randn } from "../../mod.ts";
   * const model = new LSTM(3, 4, { backend: "js" });
   * {
   *   await using batcher = new MicroBatcher(model);
   *   assert.equal((await batcher.predict(randn([2, 3]))).hidden.shape[2], 4);
   * }
   * assert.equal(model.hiddenSize, 4); // the model outlives the batcher
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
