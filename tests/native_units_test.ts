/**
 * What only the native backend has: a small batch split by hidden units over native threads
 * (`native/src/units.rs`), bit-identical to one thread, and the runner's choice of it; a batch
 * split by rows over the kept worker threads, call after call. The contract every backend meets
 * is tested in `backend_contract_test.ts`.
 */

import assert from "node:assert/strict";
import type { SequenceOutput } from "../src/contract/mod.ts";
import { createNativeBackend } from "../src/backends/native/mod.ts";
import { type Extras, NativeKernel } from "../src/backends/native/kernel.ts";
import { openNativeLibrary } from "../src/backends/native/library.ts";
import { splitFor } from "../src/backends/native/runner.ts";
import { SplitChoice } from "../src/backends/native/split_choice.ts";
import { isAvailable } from "./_backends.ts";
import { fixedCell, fixedInput } from "./_fixed_cells.ts";

const ignore = !isAvailable("native");

/** Every result as its bits, so that a difference in the last bit (or a sign of zero) shows. */
function bits(output: SequenceOutput): Record<string, number[]> {
  return Object.fromEntries(
    Object.entries(output).map(([name, values]) => [
      name,
      [...new Uint32Array((values as Float32Array | Int32Array).slice().buffer)],
    ]),
  );
}

const CELLS = [
  ["lstm", 1],
  ["array", 1],
  ["array", 4],
  ["attention", 1],
  ["attention", 4],
  ["stochastic", 1],
  ["stochastic", 4],
] as const;

for (const [kind, k] of CELLS) {
  Deno.test({
    name: `native ${kind} k ${k}: hidden units split over 2 or 3 threads give one thread's bits`,
    ignore,
    async fn() {
      const library = await openNativeLibrary();
      // Odd sizes: the last block is part padding, an odd number of blocks (5 units: 2 blocks,
      // 37: 10, 45: 12 with a part that gets one pair less).
      for (const H of [5, 37, 45]) {
        const spec = fixedCell(kind, k, 7, H);
        const kernel = new NativeKernel(library, spec, 3);
        try {
          const extras: Extras = { attention: kind === "attention", lanes: kind === "stochastic" };
          for (const batch of [1, 3]) {
            const input = fixedInput(spec, batch, 6);
            const one = bits(await kernel.run(input, { parts: 1, byUnits: false }, extras, false));
            for (const parts of [2, 3]) {
              const split = await kernel.run(input, { parts, byUnits: true }, extras, false);
              assert.deepEqual(bits(split), one, `H ${H}, batch ${batch}, ${parts} threads`);
            }
            // Without the opt-in outputs, after a call that had them.
            const none = { attention: false, lanes: false };
            const plain = bits(await kernel.run(input, { parts: 2, byUnits: true }, none, false));
            const { output, hidden, state } = one;
            assert.deepEqual(plain, { output, hidden, state }, `H ${H}, batch ${batch}, plain`);
          }
        } finally {
          kernel.dispose();
        }
      }
    },
  });
}

Deno.test({
  name:
    "native: back-to-back row-split forwards from Deno's pool give one thread's bits every time",
  ignore,
  async fn() {
    // Calls from threads of Deno's pool one after the other, as a model's loop makes them: a
    // kept worker late to one call once ran a part of the next with the earlier call's closure.
    const library = await openNativeLibrary();
    const spec = fixedCell("array", 2, 7, 64);
    const kernel = new NativeKernel(library, spec, 3);
    try {
      const none = { attention: false, lanes: false };
      const input = fixedInput(spec, 256, 4);
      const one = bits(await kernel.run(input, { parts: 1, byUnits: false }, none, true));
      // Compared after the loop, so the calls follow each other as closely as in a model's loop.
      const results = [];
      for (let call = 0; call < 200; call++) {
        results.push(
          await kernel.run(input, { parts: 2 + (call % 2), byUnits: false }, none, true),
        );
      }
      results.forEach((split, call) => assert.deepEqual(bits(split), one, `call ${call}`));
    } finally {
      kernel.dispose();
    }
  },
});

Deno.test({
  name: "native: the latency case (batch 1, 256 units) splits its units, a tiny cell does not",
  ignore,
  async fn() {
    const latency = { batch: 1, seqLen: 100 };
    for (const kind of ["lstm", "array", "attention", "stochastic"] as const) {
      const spec = fixedCell(kind, kind === "lstm" ? 1 : 4, 64, 256);
      assert.deepEqual(splitFor(2, spec, latency), { parts: 2, byUnits: true }, kind);
      assert.deepEqual(splitFor(1, spec, latency), { parts: 1, byUnits: false }, kind);
    }
    assert.deepEqual(splitFor(2, fixedCell("lstm", 1, 4, 8), latency), {
      parts: 1,
      byUnits: false,
    });
    const gru = {
      variant: { kind: "gru", k: 1, maxPooling: false },
      inputSize: 64,
      hiddenSize: 256,
    } as const;
    assert.deepEqual(splitFor(2, gru, latency), { parts: 1, byUnits: false });
    // Through the backend: two threads give one thread's results.
    const spec = fixedCell("array", 2, 16, 190);
    const input = fixedInput(spec, 1, 40);
    assert.equal(splitFor(2, spec, input).byUnits, true);
    const [one, two] = await Promise.all([1, 2].map((threads) => createNativeBackend({ threads })));
    const [a, b] = await Promise.all([one.compile(spec), two.compile(spec)]);
    try {
      assert.deepEqual(bits(await b.run(input)), bits(await a.run(input)));
    } finally {
      a.dispose();
      b.dispose();
    }
  },
});

Deno.test("native: a runner keeps the faster way of its unit-splittable calls and retries the other", () => {
  const choice = new SplitChoice();
  const ways = (calls: number) => Array.from({ length: calls }, () => choice.next());
  assert.deepEqual(ways(1), [true]);
  choice.record(true, 3, 1e6);
  assert.deepEqual(ways(1), [false]);
  choice.record(false, 1, 1e6);
  // Calls 2–17: one thread, but for the retry of the split at call 16.
  const next = ways(16);
  assert.deepEqual(next.map((way, i) => way ? i + 2 : -1).filter((i) => i >= 0), [16]);
  // The split becomes faster (the machine's cores are free again): it is taken from then on.
  for (let i = 0; i < 8; i++) choice.record(true, 0.5, 1e6);
  assert.deepEqual(ways(4), [true, true, true, true]);
});
