/**
 * The micro-batcher: concurrent requests coalesced into batched forwards, each caller's rows
 * routed back, failures isolated, hot reloads and close().
 */

import assert from "node:assert/strict";
import {
  type ForwardOptions,
  type ForwardResult,
  MicroBatcher,
  randn,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";
import { isClose, TOLERANCE } from "./_assert.ts";
import { CPU_BACKENDS } from "./_backends.ts";

const I = 3, H = 4, K = 2;

/** A model that counts its forwards and the batch sizes, and fails when told to. */
class Counted extends StochasticArrayLSTM {
  batches: number[] = [];
  failNext: Error | null = null;
  override forward(x: Tensor, init?: ForwardOptions): Promise<ForwardResult> {
    this.batches.push(x.shape[0]);
    const failure = this.failNext;
    this.failNext = null;
    return failure === null ? super.forward(x, init) : Promise.reject(failure);
  }
}

const closeTo = (actual: Tensor, expected: Tensor) => isClose(actual, expected, TOLERANCE.backends);

for (const backend of CPU_BACKENDS) {
  Deno.test(`concurrent requests run as one batch and each gets its own results (${backend})`, async () => {
    const model = new Counted(I, H, K, { backend, seed: 1 });
    const batcher = new MicroBatcher(model, { maxDelayMs: 20 });
    const lengths = [5, 1, 3, 5, 2, 4];
    const inputs = lengths.map((T, i) => randn([T, I], { seed: i }));
    const results = await Promise.all(
      inputs.map((x, i) => batcher.predict(i % 2 ? { shape: [1, ...x.shape], data: x.data } : x)),
    );
    assert.deepEqual(model.batches, [lengths.length]);
    for (const [i, x] of inputs.entries()) {
      const alone = await model.forward({ shape: [1, ...x.shape], data: x.data });
      assert.ok(closeTo(results[i].output, alone.output), `output ${i}`);
      assert.ok(closeTo(results[i].hidden, alone.hidden), `hidden ${i}`);
      assert.ok(closeTo(results[i].state, alone.state), `state ${i}`);
    }
    await batcher.close();
    model.dispose();
  });
}

Deno.test("maxBatch caps a batch; a full batch runs without waiting for the window", async () => {
  const model = new Counted(I, H, K, { backend: "js", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 10_000, maxBatch: 4 });
  const results = Promise.all(
    Array.from({ length: 8 }, (_, i) => batcher.predict(randn([1 + i, I], { seed: i }))),
  );
  assert.equal((await results).length, 8);
  assert.deepEqual(model.batches, [4, 4]);
  await batcher.close();
});

Deno.test("a bad request rejects only itself; a failing batch rejects its own requests", async () => {
  const model = new Counted(I, H, K, { backend: "js", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 5 });
  const good = batcher.predict(randn([2, I], { seed: 1 }));
  await assert.rejects(() => batcher.predict(randn([2, I + 1], { seed: 2 })), {
    name: "RangeError",
    message: /x has the wrong shape: expected \(seqLen, inputSize\) = \[\*, 3\], got \[2, 4\]/,
  });
  await assert.rejects(() => batcher.predict(randn([2, 2, I])), {
    message: /x has the wrong shape: expected \(1, seqLen, inputSize\)/,
  });
  await assert.rejects(() => batcher.predict({ shape: [0, I], data: new Float32Array() }), {
    message: /x must have at least one step/,
  });
  await assert.rejects(() => batcher.predict(null as unknown as Tensor), { name: "TypeError" });
  assert.equal((await good).output.shape[1], 2);

  const failure = new Error("device lost");
  model.failNext = failure;
  const failed = [batcher.predict(randn([1, I])), batcher.predict(randn([3, I]))];
  for (const request of failed) await assert.rejects(() => request, (e) => e === failure);
  assert.equal((await batcher.predict(randn([2, I]))).hidden.shape[1], 1);
  await batcher.close();
});

Deno.test("NaN in one request leaves the other requests of its batch alone", async () => {
  const model = new StochasticArrayLSTM(I, H, K, { backend: "wasm", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 5 });
  const bad = randn([3, I]);
  bad.data[4] = NaN;
  const x = randn([3, I], { seed: 2 });
  const [poisoned, clean] = await Promise.all([batcher.predict(bad), batcher.predict(x)]);
  assert.ok(poisoned.hidden.data.every(Number.isNaN));
  const alone = await model.forward({ shape: [1, 3, I], data: x.data });
  assert.ok(closeTo(clean.hidden, alone.hidden));
  await batcher.close();
  model.dispose();
});

Deno.test("the caller may reuse x at once; a hot reload mid-flight serves old or new weights", async () => {
  const model = new StochasticArrayLSTM(I, H, K, { backend: "wasm", seed: 1 });
  const next = new StochasticArrayLSTM(I, H, K, { backend: "wasm", seed: 2 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 1 });
  const x = randn([4, I], { seed: 3 });
  const old = await model.forward({ shape: [1, 4, I], data: x.data });
  const fresh = await next.forward({ shape: [1, 4, I], data: x.data });
  const buffer = { shape: x.shape, data: x.data.slice() };
  const first = batcher.predict(buffer);
  buffer.data.fill(9);
  await new Promise((resolve) => setTimeout(resolve, 5));
  const inFlight = batcher.predict(x);
  model.loadStateDict(next.stateDict());
  const after = batcher.predict(x);
  assert.ok(closeTo((await first).hidden, old.hidden));
  const served = (await inFlight).hidden;
  assert.ok(closeTo(served, old.hidden) || closeTo(served, fresh.hidden));
  assert.ok(closeTo((await after).hidden, fresh.hidden));
  await batcher.close();
  model.dispose();
  next.dispose();
});

Deno.test("close() runs the waiting requests, then refuses new ones", async () => {
  const model = new Counted(I, H, K, { backend: "js", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 10_000 });
  const waiting = batcher.predict(randn([2, I]));
  assert.equal(batcher.pending, 1);
  await batcher.close();
  assert.equal((await waiting).output.shape[1], 2);
  await assert.rejects(() => batcher.predict(randn([2, I])), /predict\(\) after close\(\)/);
});

Deno.test("MicroBatcher rejects bad options, naming them", () => {
  const model = new Counted(I, H, K, { backend: "js", seed: 1 });
  assert.throws(() => new MicroBatcher(model, { maxDelayMs: -1 }), /options\.maxDelayMs/);
  assert.throws(() => new MicroBatcher(model, { maxDelayMs: Infinity }), /options\.maxDelayMs/);
  assert.throws(() => new MicroBatcher(model, { maxBatch: 0 }), /options\.maxBatch/);
  assert.throws(() => new MicroBatcher(model, { maxBatch: 1.5 }), /options\.maxBatch/);
});
