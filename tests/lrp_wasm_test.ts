/**
 * LRP on the wasm backend, whose one-lane cells are explained by the Rust relevance pass
 * (wasm/src/lrp.rs, through `runRelevance`): against the float64 TypeScript pass of the js
 * backend on random cases (one and two directions, `biasFactor` 0 and 1, batches split over
 * Workers), conservation, the Keras weight list, and the contract's checks of the pass. The golden
 * cases of the original run on wasm in lrp_test.ts.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  Bidirectional,
  kerasLrpNetwork,
  Linear,
  lrp,
  type LrpNetwork,
  type LrpResult,
  LSTM,
  randn,
  type Tensor,
} from "../mod.ts";
import type { SequenceInput } from "../src/contract/mod.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import { cellParameters, runForRelevance } from "../src/models/lstm.ts";
import { kerasWeightList } from "./_keras_lrp.ts";

type Backend = "js" | "wasm";

/** Checks the wasm result against the js (float64) one, and conservation with `biasFactor` 1. */
function checkClose(wasm: LrpResult, js: LrpResult, biasFactor: number, label: string): void {
  const [B, T, I] = wasm.relevance.shape;
  assert.deepEqual(wasm.target, js.target, `${label}: targets`);
  const C = wasm.scores.shape[1];
  for (let b = 0; b < B; b++) {
    const row = js.relevance.data.subarray(b * T * I, (b + 1) * T * I);
    const scale = Math.max(...row.map(Math.abs), Math.abs(js.rest.data[b]), 1e-6);
    row.forEach((expected, i) => {
      const got = wasm.relevance.data[b * T * I + i];
      assert.ok(
        Math.abs(got - expected) <= 1e-4 * scale,
        `${label}: relevance[${b}] #${i}: ${got} vs ${expected}`,
      );
    });
    const rest = wasm.rest.data[b];
    assert.ok(Math.abs(rest - js.rest.data[b]) <= 1e-4 * scale, `${label}: rest[${b}]`);
    const score = wasm.scores.data[b * C + wasm.target[b]];
    assert.ok(
      Math.abs(score - js.scores.data[b * C + js.target[b]]) <= 1e-5 * (1 + Math.abs(score)),
      `${label}: score[${b}]`,
    );
    if (biasFactor === 1) {
      let total = rest;
      for (let i = 0; i < T * I; i++) total += wasm.relevance.data[b * T * I + i];
      assert.ok(
        Math.abs(total - score) <= 1e-5 * (1 + Math.abs(score)),
        `${label}: conservation[${b}]: ${total} vs ${score}`,
      );
    }
  }
}

const networks: [string, (backend: Backend, I: number, H: number) => LrpNetwork, number][] = [
  ["LSTM", (backend, I, H) => new LSTM(I, H, { backend, seed: 1 }), 1],
  ["ArrayLSTM (k = 1)", (backend, I, H) => new ArrayLSTM(I, H, 1, { backend, seed: 2 }), 1],
  [
    "Bidirectional LSTM",
    (backend, I, H) =>
      new Bidirectional(new LSTM(I, H, { backend, seed: 3 }), new LSTM(I, H, { backend, seed: 4 })),
    2,
  ],
];

// Sizes with padding (I, H not multiples of 4), one step, one sequence, odd batches.
const sizes: [number, number, number, number][] = [[3, 6, 3, 4], [1, 1, 2, 5], [5, 4, 7, 9]];

for (const [name, make, directions] of networks) {
  for (const biasFactor of [0, 1]) {
    Deno.test(`wasm lrp of ${name} matches the float64 pass, biasFactor ${biasFactor}`, async () => {
      for (const [B, T, I, H] of sizes) {
        const x = randn([B, T, I], { seed: B + T });
        const dense = new Linear(directions * H, 3, { seed: 5 });
        const target = Array.from({ length: B }, (_, b) => b % 3);
        const options = { target, biasFactor, eps: 1e-3 };
        const wasm = await lrp(make("wasm", I, H), dense, x, options);
        const js = await lrp(make("js", I, H), dense, x, options);
        checkClose(wasm, js, biasFactor, `B ${B} T ${T} I ${I} H ${H}`);
      }
    });
  }
}

Deno.test("wasm lrp splits a large batch over Workers and matches the float64 pass", async () => {
  // 2·B·T·(I + H)·4H ≈ 9e7 flops: above the backend's threshold for splitting the batch.
  const [B, T, I, H] = [96, 40, 16, 48];
  const x = randn([B, T, I], { seed: 1 });
  const dense = new Linear(2 * H, 4, { seed: 2 });
  const make = (backend: Backend) =>
    new Bidirectional(new LSTM(I, H, { backend, seed: 3 }), new LSTM(I, H, { backend, seed: 4 }));
  for (const biasFactor of [0, 1]) {
    const wasm = await lrp(make("wasm"), dense, x, { biasFactor });
    const js = await lrp(make("js"), dense, x, { biasFactor, target: [...wasm.target] });
    checkClose(wasm, js, biasFactor, `biasFactor ${biasFactor}`);
  }
});

Deno.test("wasm lrp of the Keras weight list matches the float64 pass and conserves", async () => {
  const [I, H, C] = [3, 5, 2];
  const list = kerasWeightList(I, H, C);
  const x = randn([4, 6, I], { seed: 9 });
  const explain = (backend: Backend) => {
    const { network, dense } = kerasLrpNetwork(list, { backend });
    return lrp(network, dense, x, { biasFactor: 1, target: [0, 1, 1, 0] });
  };
  checkClose(await explain("wasm"), await explain("js"), 1, "Keras list");
});

Deno.test("the wasm relevance pass runs again on one step and checks its arguments", async () => {
  const lstm = new LSTM(3, 4, { backend: "wasm", seed: 1 });
  const x: Tensor = randn([2, 5, 3], { seed: 2 });
  const step = await runForRelevance(lstm, x);
  assert.ok(step !== null, "a wasm LSTM has the relevance pass");
  const { output } = await lstm.forward(x);
  assert.deepEqual(step.output, output.data); // the recording forward is the forward
  const arriving = randn([2, 5, 4], { seed: 3 }).data;
  const first = await step.relevance(arriving, { eps: 1e-3, biasFactor: 1 });
  await runForRelevance(new LSTM(3, 4, { backend: "wasm", seed: 1 }), randn([2, 5, 3]));
  const again = await step.relevance(arriving, { eps: 1e-3, biasFactor: 1 });
  assert.deepEqual(again, first);
  await assert.rejects(
    () => step.relevance(new Float32Array(3), { eps: 1e-3, biasFactor: 0 }),
    /outputRelevance must have \(batch, seqLen, hiddenSize\) = \(2, 5, 4\) = 40 floats, got 3/,
  );
  await assert.rejects(
    () => step.relevance(arriving, { eps: -1, biasFactor: 0 }),
    /rule.eps must be a finite number >= 0, got -1/,
  );
  lstm.dispose();
});

Deno.test("one-lane cells only have the wasm relevance pass; a disposed runner refuses it", async () => {
  const backend = createWasmBackend({ threads: 1 });
  const spec = (kind: "lstm" | "array", k: number) => ({
    variant: { kind, k, maxPooling: false },
    inputSize: 2,
    hiddenSize: 3,
    params: cellParameters(new ArrayLSTM(2, 3, k, { seed: 1 }).stateDict()),
  });
  const input: SequenceInput = {
    batch: 1,
    seqLen: 2,
    x: new Float32Array(4),
    hidden: new Float32Array(3),
    state: new Float32Array(3),
  };
  const lanes = await backend.compile(spec("array", 2));
  assert.equal(lanes.runRelevance, undefined);
  lanes.dispose();
  const runner = await backend.compile(spec("lstm", 1));
  const step = await runner.runRelevance!(input);
  runner.dispose();
  await assert.rejects(
    () => step.relevance(new Float32Array(6), { eps: 1e-3, biasFactor: 0 }),
    /runner was disposed or stepped before the relevance pass/,
  );
});

Deno.test("the relevance pass split over two Workers gives the one-thread result bit for bit", async () => {
  // 2·B·T·(I + H)·4H ≈ 1e8 flops: above the backend's threshold for splitting the batch.
  const [B, T, I, H] = [64, 30, 16, 64];
  const spec = {
    variant: { kind: "lstm", k: 1, maxPooling: false },
    inputSize: I,
    hiddenSize: H,
    params: cellParameters(new LSTM(I, H, { seed: 1 }).stateDict()),
  } as const;
  const input: SequenceInput = {
    batch: B,
    seqLen: T,
    x: randn([B, T, I], { seed: 2 }).data,
    hidden: new Float32Array(B * H),
    state: new Float32Array(B * H),
  };
  const arriving = randn([B, T, H], { seed: 3 }).data;
  const results = [];
  for (const threads of [1, 2]) {
    using runner = await createWasmBackend({ threads }).compile(spec);
    const step = await runner.runRelevance!(input);
    results.push({ step, relevance: await step.relevance(arriving, { eps: 1e-3, biasFactor: 1 }) });
  }
  assert.deepEqual(results[1].step.output, results[0].step.output);
  assert.deepEqual(results[1].relevance, results[0].relevance);
});
