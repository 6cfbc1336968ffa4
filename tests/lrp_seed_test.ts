/**
 * The LRP-for-LSTMs seed end to end (tests/testdata/lrp_seed): its own model, loaded with
 * `fromKeras(await loadKeras(bytes))`, explained by `lrp` as the seed's TF2 `LSTM_network.lrp`
 * explains it (relevance, rest, and with `returnStates` every step's hidden and cell states of
 * both directions; `lengths` as each sequence explained alone), on every backend here; and
 * `lengths` and `returnStates` on the other networks `lrp` explains.
 *
 * Tolerance: `TOLERANCE.gradient`, within 1e-3 of each array's largest entry. The relevance is a
 * backward pass over a float32 forward (the backends') compared with the seed's float64 one, the
 * comparison that tolerance is named for; its ε-rule divides by activations that can be near
 * zero (the cell, the candidate's pre-activation), so errors scale with the largest relevance,
 * not entry by entry. Measured (of the largest entry): relevance and states ≤ 5.4e-5 with ε > 0
 * and ≤ 3.2e-4 for the seed's own conservation check, ε = 0, on the float64 pass here (js, wasm
 * with `returnStates`, webgpu on lavapipe); ≤ 2.2e-5 with ε > 0 on wasm's float32 pass. The one
 * exception is ε = 0 on wasm's float32 pass: nothing stabilises a cell near zero there and the
 * error reaches 1.8e-3 of the largest entry, so that case is compared on the float64 pass
 * (`returnStates` takes it) and its fast pass is checked for conservation only.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  Bidirectional,
  fromKeras,
  LastStep,
  Linear,
  loadKeras,
  lrp,
  type LrpOptions,
  type LrpResult,
  LSTM,
  randn,
  Sequential,
  type Tensor,
} from "../mod.ts";
import { KerasRecurrent } from "../src/interop/keras_recurrent.ts";
import { readSafetensorsArrays } from "../src/safetensors.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { AVAILABLE_BACKENDS } from "./_backends.ts";

const DIR = new URL("./testdata/lrp_seed/", import.meta.url);
const MODEL = Deno.readFileSync(new URL("sentiment_model.hdf5", DIR));
const EXPECTED = readSafetensorsArrays(Deno.readFileSync(new URL("expected.safetensors", DIR)))
  .tensors;
const CASES: {
  case: string;
  eps: number;
  biasFactor: number;
  target: number[] | null;
  lengths: number[] | null;
}[] = JSON.parse(Deno.readTextFileSync(new URL("cases.json", DIR))).cases;

function expected(key: string): { shape: number[]; data: Float64Array | Float32Array } {
  const entry = EXPECTED[key];
  assert.ok(entry !== undefined, `expected.safetensors lacks ${key}`);
  return { shape: entry.shape, data: entry.data as Float64Array | Float32Array };
}

function input(name: string): Tensor {
  const x = expected(`${name}/x`);
  return { shape: x.shape, data: Float32Array.from(x.data) };
}

function optionsOf(entry: typeof CASES[number]): LrpOptions {
  return {
    eps: entry.eps,
    biasFactor: entry.biasFactor,
    ...(entry.target === null ? {} : { target: entry.target }),
    ...(entry.lengths === null ? {} : { lengths: entry.lengths }),
  };
}

/** Relevance, rest and targets against the seed's; the states too when the result has them. */
function checkAgainstSeed(result: LrpResult, name: string, label: string): void {
  const tolerance = TOLERANCE.gradient;
  assert.deepEqual(result.target, [...expected(`${name}/target`).data], `${label}: target`);
  assertClose(result.scores, expected(`${name}/scores`), TOLERANCE.float32, `${label}: scores`);
  assertClose(result.relevance, expected(`${name}/relevance`), tolerance, `${label}: relevance`);
  // The rest is compared on the scale of the relevance it is the remainder of.
  const scale = Math.max(...expected(`${name}/relevance`).data.map(Math.abs));
  assertClose(
    result.rest,
    expected(`${name}/rest`),
    { mode: "absolute", bound: tolerance.bound * scale },
    `${label}: rest`,
  );
  if (result.states === undefined) return;
  assert.equal(result.states.length, 1, `${label}: one level`);
  for (const direction of ["forward", "backward"] as const) {
    for (const kind of ["hidden", "cell"] as const) {
      assertClose(
        result.states[0][direction]![kind],
        expected(`${name}/${direction}_${kind}`),
        tolerance,
        `${label}: ${direction} ${kind}`,
      );
    }
  }
}

/**
 * With `biasFactor` 1: Σ relevance + rest = score, and the top level's hidden states that the
 * dense layer reads hold the score: the forward one's at the last step, the backward one's at
 * position 0 (its final state) or, after a `LastStep`, at the last step.
 */
function checkConserved(
  result: LrpResult,
  lengths: readonly number[] | null,
  label: string,
  lastStep = false,
): void {
  const [B, T] = result.relevance.shape, C = result.scores.shape[1];
  const per = result.relevance.data.length / B;
  for (let b = 0; b < B; b++) {
    let total = result.rest.data[b];
    for (let i = 0; i < per; i++) total += result.relevance.data[b * per + i];
    const score = result.scores.data[b * C + result.target[b]];
    assertClose([total], [score], TOLERANCE.float32, `${label}: conservation[${b}]`);
    if (result.states === undefined) continue;
    const { forward, backward } = result.states[result.states.length - 1];
    const H = forward.hidden.shape[2], last = (lengths?.[b] ?? T) - 1;
    let top = 0;
    for (let u = 0; u < H; u++) {
      top += forward.hidden.data[(b * T + last) * H + u];
      if (backward !== undefined) {
        top += backward.hidden.data[(b * T + (lastStep ? last : 0)) * H + u];
      }
    }
    assertClose([top], [score], TOLERANCE.float32, `${label}: final states[${b}]`);
  }
}

for (const backend of AVAILABLE_BACKENDS) {
  Deno.test(`the LRP seed's model reproduces the seed's LSTM_network.lrp (${backend})`, async () => {
    const { model, stack, head } = fromKeras(await loadKeras(MODEL), { backend });
    for (const entry of CASES) {
      const name = entry.case, x = input(name), options = optionsOf(entry);
      if (entry.lengths === null) {
        const keras = expected(`${name}/keras`);
        assertClose(await model.forward(x), keras, TOLERANCE.golden, `${name}: forward`);
      }
      const withStates = await lrp(model, x, { ...options, returnStates: true });
      checkAgainstSeed(withStates, name, `${name} (${backend}, states)`);
      const plain = await lrp(model, x, options);
      assert.equal(plain.states, undefined);
      // Wasm's float32 pass without a stabiliser is checked for conservation only (see above).
      if (entry.eps !== 0 || backend !== "wasm") {
        checkAgainstSeed(plain, name, `${name} (${backend})`);
      }
      if (entry.biasFactor === 1) {
        checkConserved(withStates, entry.lengths, `${name} (${backend}, states)`);
        checkConserved(plain, entry.lengths, `${name} (${backend})`);
      }
      // The same network as a Stacked and its head, the way the seed reads it.
      const parts = await lrp(stack, head[0], x, options);
      assertClose(parts.relevance, plain.relevance, TOLERANCE.exact, `${name}: stack and head`);
    }
  });
}

Deno.test("lrp with lengths explains each sequence as if alone, padded steps get nothing", async () => {
  const I = 3, H = 4, T = 6, lengths = [6, 4, 1];
  const x = randn([3, T, I], { seed: 7 });
  const lstm = (seed: number, inputSize = I) => new LSTM(inputSize, H, { backend: "js", seed });
  const networks: [string, Sequential][] = [
    [
      "Bidirectional, LastStep",
      new Sequential([new Bidirectional(lstm(1), lstm(2)), new LastStep(), new Linear(2 * H, 3)]),
    ],
    [
      "Stacked Bidirectionals, final states",
      new Sequential([
        new KerasRecurrent(new Bidirectional(lstm(3), lstm(4)), { returnSequences: true }),
        new KerasRecurrent(new Bidirectional(lstm(5, 2 * H), lstm(6, 2 * H))),
        new Linear(2 * H, 3),
      ]),
    ],
    [
      "ArrayLSTM",
      new Sequential([
        new ArrayLSTM(I, H, 2, { backend: "js", seed: 8 }),
        new LastStep(),
        new Linear(H, 3),
      ]),
    ],
  ];
  for (const [label, model] of networks) {
    const options = { biasFactor: 1, eps: 1e-3, returnStates: true };
    const padded = await lrp(model, x, { ...options, lengths });
    assert.equal(padded.states!.length, label.startsWith("Stacked") ? 2 : 1);
    checkConserved(padded, lengths, label, label.includes("LastStep"));
    for (const [b, length] of lengths.entries()) {
      // Row b of a (B, T, ...) tensor, its first `length` steps, and the steps after them.
      const rowOf = (t: Tensor) => {
        const per = t.data.length / t.shape[0];
        return t.data.subarray(b * per, (b + 1) * per);
      };
      const valid = (t: Tensor) => rowOf(t).subarray(0, rowOf(t).length / T * length);
      const paddedPart = (t: Tensor) => rowOf(t).subarray(rowOf(t).length / T * length);
      const alone = await lrp(model, {
        shape: [1, length, I],
        data: x.data.slice(b * T * I, (b * T + length) * I),
      }, { ...options, target: [padded.target[b]] });
      assertClose(
        valid(padded.relevance),
        alone.relevance.data,
        TOLERANCE.backends,
        `${label}[${b}]`,
      );
      assertClose(rowOf(padded.rest), alone.rest.data, TOLERANCE.backends, `${label}: rest[${b}]`);
      assert.ok(paddedPart(padded.relevance).every((v) => v === 0), `${label}: padding[${b}]`);
      padded.states!.forEach((level, l) => {
        for (const direction of ["forward", "backward"] as const) {
          const states = level[direction];
          if (states === undefined) continue;
          for (const kind of ["hidden", "cell"] as const) {
            const lone = alone.states![l][direction]![kind];
            assertClose(valid(states[kind]), lone.data, TOLERANCE.backends, `${label} ${kind}`);
            assert.ok(paddedPart(states[kind]).every((v) => v === 0), `${label}: ${kind}`);
          }
        }
      });
    }
  }
});

Deno.test("lrp returnStates: shapes, the array variants' lanes, and bad options", async () => {
  const model = new Sequential([
    new ArrayLSTM(3, 4, 2, { backend: "js", seed: 1 }),
    new LastStep(),
    new Linear(4, 2, { seed: 2 }),
  ]);
  const x = randn([2, 5, 3], { seed: 3 });
  const { states } = await lrp(model, x, { returnStates: true });
  assert.deepEqual(states![0].forward.hidden.shape, [2, 5, 4]);
  assert.deepEqual(states![0].forward.cell.shape, [2, 5, 2, 4]);
  assert.equal(states![0].backward, undefined);
  await assert.rejects(
    () => lrp(model, x, { returnStates: 1 as unknown as boolean }),
    /options.returnStates must be a boolean, got 1/,
  );
  await assert.rejects(() => lrp(model, x, { lengths: [5] }), /one entry per sequence/);
  await assert.rejects(() => lrp(model, x, { lengths: [5, 6] }), /lengths\[1\] must be/);
});

Deno.test("lrp refuses a fromKeras layer it has no rule for, naming it", async () => {
  const bi = () => new Bidirectional(new LSTM(3, 2, { seed: 1 }), new LSTM(3, 2, { seed: 2 }));
  const x = randn([1, 4, 3], { seed: 3 });
  for (
    const [layer, words] of [
      [new KerasRecurrent(bi(), { mergeMode: "sum" }), /merge_mode sum/],
      [new KerasRecurrent(new LSTM(3, 2), { goBackwards: true }), /go_backwards/],
      [new KerasRecurrent(bi(), { returnSequences: true }), /return_sequences true/],
    ] as const
  ) {
    const model = new Sequential([layer, new Linear(layer.outputSize, 2)]);
    await assert.rejects(() => lrp(model, x), (error: Error) => {
      assert.ok(error instanceof TypeError);
      assert.match(error.message, /model\.layers\[0\] \(/);
      assert.match(error.message, words);
      return true;
    });
  }
});
