/**
 * Load test of the serving path: rounds of 1,000 concurrent requests of mixed lengths over a
 * loopback `Deno.serve`, with a hot reload (`loadStateDict`) in the middle of each round. Every
 * request is answered, every answer equals a one-at-a-time run with the weights it was served
 * with (the old ones for every answer received before the reload), and memory stays flat over
 * the rounds (V8 heap with its external buffers, after a full collection; process RSS; WASM
 * memory) after a warm-up round.
 */

import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { MicroBatcher, Random, StochasticArrayLSTM, type Tensor } from "../mod.ts";
import { instantiate } from "../src/backends/wasm/bindings.ts";
import { type Answer, closeTo, serveLoopback } from "./_serve.ts";

const I = 8, H = 16, K = 2, MAX_STEPS = 24, REQUESTS = 1000, ROUNDS = 4;
const MiB = 2 ** 20;

// A full garbage collection before each measurement, so the bounds measure what is kept.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;

Deno.test("1,000 concurrent requests with a hot reload: all answered, all exact, no leak", async () => {
  const weights = [1, 2].map((seed) => new StochasticArrayLSTM(I, H, K, { backend: "wasm", seed }));
  const random = new Random(7);
  const inputs: Tensor[] = Array.from({ length: REQUESTS }, () => {
    const steps = 1 + Math.floor(random.uniform() * MAX_STEPS);
    return {
      shape: [steps, I],
      data: Float32Array.from({ length: steps * I }, () => random.normal()),
    };
  });
  // One at a time, with each set of weights: what every answer must equal.
  const expected: Tensor[][] = [];
  for (const model of weights) {
    const hiddens: Tensor[] = [];
    for (const x of inputs) {
      hiddens.push((await model.forward({ shape: [1, ...x.shape], data: x.data })).hidden);
    }
    expected.push(hiddens);
  }
  const states = weights.map((model) => model.stateDict());

  const model = new StochasticArrayLSTM(I, H, K, { backend: "wasm", seed: 1 });
  const batcher = new MicroBatcher(model, { maxDelayMs: 2, maxBatch: 64 });
  await using server = serveLoopback(batcher);
  let serving = 0;
  const usage: { heap: number; rss: number; wasm: number }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = serving, after = 1 - serving;
    let answered = 0, reloaded = false;
    const results = await Promise.all(inputs.map(async (x, i) => {
      const { status, body } = await server.post(x);
      const early = !reloaded;
      if (++answered === REQUESTS / 2) {
        model.loadStateDict(states[after]);
        serving = after;
        reloaded = true;
      }
      return { i, status, body, early };
    }));
    assert.ok(reloaded);
    for (const { i, status, body, early } of results) {
      assert.equal(status, 200, `round ${round}, request ${i}: ${JSON.stringify(body)}`);
      const answer = (body as Answer).hidden;
      const old = closeTo(answer, expected[before][i].data);
      assert.ok(
        old || (!early && closeTo(answer, expected[after][i].data)),
        `round ${round}, request ${i} (${early ? "before" : "after"} the reload) matches ` +
          "neither set of weights it could have been served with",
      );
      assert.equal((body as Answer).output.length, inputs[i].shape[0]);
    }
    collectGarbage();
    const memory = Deno.memoryUsage();
    usage.push({
      heap: memory.heapUsed + memory.external,
      rss: memory.rss,
      wasm: instantiate().memory.buffer.byteLength,
    });
  }
  const [warm, ...later] = usage;
  for (const [round, now] of later.entries()) {
    const grown = (key: keyof typeof now) => `${((now[key] - warm[key]) / MiB).toFixed(1)} MiB`;
    assert.ok(now.heap - warm.heap < 1 * MiB, `round ${round + 1}: heap grew ${grown("heap")}`);
    assert.ok(now.rss - warm.rss < 64 * MiB, `round ${round + 1}: RSS grew ${grown("rss")}`);
    assert.ok(now.wasm - warm.wasm <= 4 * MiB, `round ${round + 1}: wasm grew ${grown("wasm")}`);
  }
  await batcher.close();
  model.dispose();
  weights.forEach((model) => model.dispose());
});
