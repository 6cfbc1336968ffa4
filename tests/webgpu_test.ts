/**
 * The WebGPU backend against the PyTorch reference (golden cases) and against the TypeScript
 * oracle on odd shapes. Runs on any adapter, Mesa's lavapipe included; skipped (with the reason
 * printed) only where there is no adapter at all.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { CellSpec, SequenceInput, VariantKind } from "../src/backends/backend.ts";
import { jsBackend, newTrace, runSequence } from "../src/backends/js.ts";
import { requestWebGpuBackend, type WebGpuSequenceRunner } from "../src/backends/webgpu.ts";
import { Random } from "../src/random.ts";
import { defineGoldenForwardTests, maxAbsDiff } from "./_golden.ts";

const backend = await requestWebGpuBackend();
const ignore = backend === null;
if (ignore) console.log("webgpu tests skipped: navigator.gpu found no WebGPU adapter");

defineGoldenForwardTests(backend ?? "webgpu", { ignore });

/** Random cells and inputs, with initial states, at shapes that fit no workgroup evenly. */
function randomCase(
  seed: number,
  kind: VariantKind,
  k: number,
  maxPooling: boolean,
  [batch, seqLen, inputSize, hiddenSize]: [number, number, number, number],
): { spec: CellSpec; input: SequenceInput } {
  const random = new Random(seed);
  const values = (n: number, scale: number) =>
    Float32Array.from({ length: n }, () => (2 * random.uniform() - 1) * scale);
  const gates = 4 * k * hiddenSize;
  const attention = kind === "attention";
  const scale = 1 / Math.sqrt(hiddenSize);
  return {
    spec: {
      variant: { kind, k, maxPooling },
      inputSize,
      hiddenSize,
      params: {
        i2hWeight: values(gates * inputSize, 1 / Math.sqrt(inputSize)),
        i2hBias: values(gates, 0.5),
        h2hWeight: values(gates * hiddenSize, scale),
        h2hBias: values(gates, 0.5),
        i2aWeight: attention ? values(k * hiddenSize * inputSize, 1) : null,
        i2aBias: attention ? values(k * hiddenSize, 1) : null,
      },
    },
    input: {
      batch,
      seqLen,
      x: values(batch * seqLen * inputSize, 2),
      hidden: values(batch * hiddenSize, 1),
      state: values(k * batch * hiddenSize, 2),
    },
  };
}

/**
 * Batch rows whose stochastic lane choice is a near tie (best and second output gate closer than
 * 1e-5) at some step, with that step: float32 rounding may pick either lane there, and the choice
 * then carries on through the recurrence. Other variants have none.
 */
function nearTies(spec: CellSpec, input: SequenceInput): Map<number, number> {
  const rows = new Map<number, number>();
  if (spec.variant.kind !== "stochastic") return rows;
  const trace = newTrace();
  runSequence(spec, input, Float32Array, trace);
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = spec;
  for (let t = 0; t < T; t++) {
    const gates = trace.outputGates[t];
    for (let b = 0; b < B; b++) {
      if (rows.has(b)) continue;
      for (let unit = 0; unit < H; unit++) {
        const lanes = Array.from({ length: k }, (_, j) => gates[(j * B + b) * H + unit]);
        lanes.sort((p, q) => q - p);
        if (k > 1 && lanes[0] - lanes[1] < 1e-5) {
          rows.set(b, t);
          break;
        }
      }
    }
  }
  return rows;
}

/** Compares a WebGPU result with the oracle's, leaving out what follows a stochastic near tie. */
function assertClose(
  spec: CellSpec,
  input: SequenceInput,
  actual: { output: Float32Array; hidden: Float32Array; state: Float32Array },
  expected: { output: Float32Array; hidden: Float32Array; state: Float32Array },
  tolerance: number,
): void {
  const { batch: B, seqLen: T } = input;
  const { hiddenSize: H, variant: { k } } = spec;
  const ties = nearTies(spec, input);
  const keep = (
    array: Float32Array,
    rowOf: (i: number) => number,
    stepOf: (i: number) => number,
  ) => array.filter((_, i) => stepOf(i) < (ties.get(rowOf(i)) ?? Infinity));
  const outputRow = (i: number) => Math.floor(i / (T * H));
  const outputStep = (i: number) => Math.floor(i / H) % T;
  const finalRow = (i: number) => Math.floor(i / H) % B;
  const final = () => T - 1;
  const errors = {
    output: maxAbsDiff(
      keep(actual.output, outputRow, outputStep),
      keep(expected.output, outputRow, outputStep),
    ),
    hidden: maxAbsDiff(
      keep(actual.hidden, finalRow, final),
      keep(expected.hidden, finalRow, final),
    ),
    state: maxAbsDiff(keep(actual.state, finalRow, final), keep(expected.state, finalRow, final)),
  };
  assert.ok(ties.size < B || B < 4, `too many near ties to compare: ${ties.size} of ${B} rows`);
  assert.ok(
    Math.max(errors.output, errors.hidden, errors.state) <= tolerance,
    `max abs errors ${JSON.stringify(errors)} > ${tolerance} (k = ${k})`,
  );
}

/** Variants × lanes × shapes (batch, steps, inputs, hidden): odd sizes, every row block. */
const PARITY_CASES: Array<[VariantKind, number, boolean, [number, number, number, number]]> = [
  ["lstm", 1, false, [1, 7, 3, 5]],
  ["lstm", 1, false, [65, 4, 10, 33]],
  ["array", 1, false, [9, 5, 1, 1]],
  ["array", 2, false, [33, 3, 7, 13]],
  ["array", 3, false, [64, 4, 5, 17]],
  ["array", 5, false, [7, 6, 2, 6]],
  ["attention", 1, false, [5, 3, 4, 3]],
  ["attention", 2, false, [17, 4, 9, 11]],
  ["attention", 4, false, [65, 3, 6, 9]],
  ["attention", 3, true, [40, 5, 3, 7]],
  ["attention", 5, true, [2, 4, 11, 10]],
  ["stochastic", 2, false, [65, 5, 5, 12]],
  ["stochastic", 4, false, [13, 4, 3, 5]],
  ["stochastic", 5, false, [1, 8, 6, 18]],
];

for (const [index, [kind, k, maxPooling, shape]] of PARITY_CASES.entries()) {
  Deno.test({
    name: `webgpu matches js: ${kind}${maxPooling ? " (maxPooling)" : ""} k=${k} ` +
      `B,T,I,H=${shape.join(",")}`,
    ignore,
    async fn() {
      const { spec, input } = randomCase(100 + index, kind, k, maxPooling, shape);
      using runner = await backend!.compile(spec) as WebGpuSequenceRunner;
      const expected = await (await jsBackend.compile(spec)).run(input);
      assertClose(spec, input, await runner.run(input), expected, 2e-5);
    },
  });
}

Deno.test({
  name: "webgpu runs twice with the same result and never mutates its inputs",
  ignore,
  async fn() {
    const { spec, input } = randomCase(7, "attention", 3, true, [21, 4, 5, 9]);
    const copies = {
      x: input.x.slice(),
      hidden: input.hidden.slice(),
      state: input.state.slice(),
      i2hWeight: spec.params.i2hWeight.slice(),
      h2hWeight: spec.params.h2hWeight.slice(),
      i2aWeight: spec.params.i2aWeight!.slice(),
    };
    const runner = await backend!.compile(spec);
    const first = await runner.run(input);
    const second = await runner.run(input);
    runner.dispose();
    assert.deepEqual(second, first);
    assert.ok(first.output !== second.output && first.state !== input.state);
    assert.deepEqual(input.x, copies.x);
    assert.deepEqual(input.hidden, copies.hidden);
    assert.deepEqual(input.state, copies.state);
    assert.deepEqual(spec.params.i2hWeight, copies.i2hWeight);
    assert.deepEqual(spec.params.h2hWeight, copies.h2hWeight);
    assert.deepEqual(spec.params.i2aWeight, copies.i2aWeight);
  },
});

Deno.test({
  name: "webgpu serves several call shapes and empty calls from one runner",
  ignore,
  async fn() {
    const { spec } = randomCase(8, "array", 2, false, [1, 1, 4, 6]);
    using runner = await backend!.compile(spec) as WebGpuSequenceRunner;
    const js = await jsBackend.compile(spec);
    for (const [batch, seqLen] of [[3, 2], [40, 1], [3, 2], [1, 5], [0, 3], [2, 0]]) {
      const { input } = randomCase(batch * 10 + seqLen, "array", 2, false, [batch, seqLen, 4, 6]);
      const results = await Promise.all([runner.run(input), runner.run(input)]);
      const expected = await js.run(input);
      for (const result of results) assertClose(spec, input, result, expected, 2e-5);
    }
  },
});
