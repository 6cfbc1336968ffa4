/**
 * The backend contract (`src/contract/`), tested on every backend registered in `_backends.ts`:
 * the PyTorch reference's golden cases, parity with the TypeScript reference on random cells,
 * state continuation, untouched inputs and fresh outputs, disposal, empty calls, errors.
 * Backend-specific behaviour (threads, relaxed SIMD, device loss, chunking) has its own files.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  Backend,
  CellSpec,
  SequenceInput,
  SequenceOutput,
  VariantKind,
} from "../src/contract/mod.ts";
import { Random } from "../src/random.ts";
import { VARIANTS as TABLE } from "../src/variants.ts";
import { BACKENDS, type RegisteredBackend } from "./_backends.ts";
import { defineGoldenForwardTests, variantName, VARIANTS } from "./_golden.ts";
import { assertClose, assertCloseSequence, TOLERANCE } from "./_assert.ts";
import {
  type CaseShape,
  randomCase,
  randomShape,
  referenceRun,
  withActivation,
} from "./_random_cells.ts";

/** Variants × shapes that fit no workgroup or SIMD block evenly (B, T, I, H, k). */
const SHAPE_CASES: Array<[VariantKind, boolean, [number, number, number, number, number]]> = [
  ["lstm", false, [1, 7, 3, 5, 1]],
  ["lstm", false, [65, 4, 10, 33, 1]],
  ["array", false, [9, 5, 1, 1, 1]],
  ["array", false, [33, 3, 7, 13, 2]],
  ["array", false, [64, 4, 5, 17, 3]],
  ["array", false, [7, 6, 2, 6, 5]],
  ["attention", false, [5, 3, 4, 3, 1]],
  ["attention", false, [17, 4, 9, 11, 2]],
  ["attention", false, [65, 3, 6, 9, 4]],
  ["attention", true, [40, 5, 3, 7, 3]],
  ["attention", true, [2, 4, 11, 10, 5]],
  ["stochastic", false, [65, 5, 5, 12, 2]],
  ["stochastic", false, [13, 4, 3, 5, 4]],
  ["stochastic", false, [1, 8, 6, 18, 5]],
];

function shapeOf([batch, seqLen, inputSize, hiddenSize, k]: number[]): CaseShape {
  return { batch, seqLen, inputSize, hiddenSize, k };
}

/** A small attention cell with max pooling (k = 3, I = 5, H = 7) and an input of `batch`·`seqLen`. */
function smallCase(batch = 2, seqLen = 3, seed = 1): { spec: CellSpec; input: SequenceInput } {
  return randomCase(new Random(seed), "attention", true, shapeOf([batch, seqLen, 5, 7, 3]));
}

async function runOnce(
  backend: Backend,
  spec: CellSpec,
  input: SequenceInput,
): Promise<SequenceOutput> {
  using runner = await backend.compile(spec);
  return await runner.run(input);
}

/** `x (B, T, I)` rows `[start, end)` in time. */
function stepsOf(
  input: SequenceInput,
  inputSize: number,
  start: number,
  end: number,
): Float32Array {
  const { batch: B, seqLen: T } = input;
  const x = new Float32Array(B * (end - start) * inputSize);
  for (let b = 0; b < B; b++) {
    x.set(
      input.x.subarray((b * T + start) * inputSize, (b * T + end) * inputSize),
      b * (end - start) * inputSize,
    );
  }
  return x;
}

function defineContractTests({ label, backend, unavailable }: RegisteredBackend): void {
  const ignore = backend === null;
  if (ignore) console.log(`${label} contract tests skipped: ${unavailable}`);
  const test = (name: string, fn: (backend: Backend) => Promise<void>) =>
    Deno.test({ name: `${label}: ${name}`, ignore, fn: () => fn(backend!) });

  defineGoldenForwardTests(backend ?? "js", { label, ignore });

  for (const [index, [kind, maxPooling]] of VARIANTS.entries()) {
    test(`matches the reference on random ${variantName(kind, maxPooling)} cells`, async (b) => {
      const random = new Random(1000 + index);
      for (let trial = 0; trial < 4; trial++) {
        const shape = randomShape(random, kind, trial === 0);
        const cell = randomCase(random, kind, maxPooling, shape);
        const actual = await runOnce(b, cell.spec, cell.input);
        assertCloseSequence(actual, referenceRun(cell), TOLERANCE.float32, JSON.stringify(shape));
      }
    });
  }

  for (const activation of ["hard_sigmoid", "hard_sigmoid_keras3"] as const) {
    for (const [index, [kind, maxPooling]] of VARIANTS.entries()) {
      const name = variantName(kind, maxPooling);
      test(`matches the reference with ${activation} gates on random ${name} cells`, async (b) => {
        const random = new Random(2000 + index);
        for (let trial = 0; trial < 2; trial++) {
          const shape = randomShape(random, kind, trial === 0);
          const cell = withActivation(randomCase(random, kind, maxPooling, shape), activation);
          const actual = await runOnce(b, cell.spec, cell.input);
          assertCloseSequence(actual, referenceRun(cell), TOLERANCE.float32, JSON.stringify(shape));
        }
      });
    }
  }

  for (const [index, [kind, maxPooling, sizes]] of SHAPE_CASES.entries()) {
    test(
      `matches the reference: ${variantName(kind, maxPooling)} B,T,I,H,k=${sizes.join(",")}`,
      async (b) => {
        const cell = randomCase(new Random(100 + index), kind, maxPooling, shapeOf(sizes));
        const actual = await runOnce(b, cell.spec, cell.input);
        assertCloseSequence(actual, referenceRun(cell), TOLERANCE.float32, sizes.join(","));
      },
    );
  }

  test("leaves inputs untouched, returns fresh arrays, keeps its own weights", async (b) => {
    const { spec, input } = smallCase(64, 50);
    const specBefore = structuredClone(spec);
    const inputBefore = structuredClone(input);
    using runner = await b.compile(spec);
    const first = await runner.run(input);
    const second = await runner.run(input);
    assert.deepEqual(input, inputBefore);
    assert.deepEqual(spec, specBefore);
    assert.deepEqual(first, second, "same input, same output");
    for (const array of [first.output, first.hidden, first.state]) {
      for (const given of [input.x, input.hidden, input.state]) {
        assert.notEqual(array.buffer, given.buffer);
      }
    }
    first.output.fill(NaN);
    first.state.fill(NaN);
    assert.ok(second.output.every(Number.isFinite), "results do not share memory");
    assert.ok(second.state.every(Number.isFinite), "results do not share memory");
    // Weights changed after compile do not reach the compiled runner.
    spec.params.h2hWeight.fill(0);
    assert.deepEqual(await runner.run(input), second);
  });

  test("hidden is the last step of output", async (b) => {
    const { spec, input } = smallCase(5, 4);
    const { output, hidden } = await runOnce(b, spec, input);
    const { hiddenSize: H } = spec;
    const T = input.seqLen;
    for (let row = 0; row < input.batch; row++) {
      assert.deepEqual(
        hidden.subarray(row * H, (row + 1) * H),
        output.subarray((row * T + T - 1) * H, (row * T + T) * H),
      );
    }
  });

  test("continuing from a returned state equals one run over the joined sequence", async (b) => {
    for (const [kind, maxPooling] of VARIANTS) {
      const { spec, input } = randomCase(
        new Random(7),
        kind,
        maxPooling,
        shapeOf([6, 7, 4, 9, kind === "lstm" ? 1 : 3]),
      );
      using runner = await b.compile(spec);
      const I = spec.inputSize, H = spec.hiddenSize, B = input.batch;
      const whole = await runner.run(input);
      const head = await runner.run({ ...input, seqLen: 3, x: stepsOf(input, I, 0, 3) });
      const tail = await runner.run({
        batch: B,
        seqLen: 4,
        x: stepsOf(input, I, 3, 7),
        hidden: head.hidden,
        state: head.state,
      });
      const name = variantName(kind, maxPooling);
      assertClose(tail.hidden, whole.hidden, TOLERANCE.reordered, `${name}: hidden`);
      assertClose(tail.state, whole.state, TOLERANCE.reordered, `${name}: state`);
      for (let row = 0; row < B; row++) {
        const joined = [
          ...head.output.subarray(row * 3 * H, (row + 1) * 3 * H),
          ...tail.output.subarray(row * 4 * H, (row + 1) * 4 * H),
        ];
        const expected = whole.output.subarray(row * 7 * H, (row + 1) * 7 * H);
        assertClose(joined, expected, TOLERANCE.reordered, `${name}: output row ${row}`);
      }
    }
  });

  test("runs concurrent calls of several shapes on one runner", async (b) => {
    const { spec } = smallCase();
    using runner = await b.compile(spec);
    const inputs = [[3, 2], [40, 1], [3, 2], [1, 5], [64, 30]].map(([batch, seqLen], i) =>
      smallCase(batch, seqLen, 10 + i).input
    );
    const together = await Promise.all(inputs.map((input) => runner.run(input)));
    for (const [i, input] of inputs.entries()) {
      assert.deepEqual(together[i], await runner.run(input), `call ${i}`);
      const reference = referenceRun({ spec, input });
      assertCloseSequence(together[i], reference, TOLERANCE.float32, `call ${i}`);
    }
  });

  test("answers empty calls (batch 0 or seqLen 0) with the initial state", async (b) => {
    const { spec } = smallCase();
    using runner = await b.compile(spec);
    const noSteps = smallCase(2, 0).input;
    const result = await runner.run(noSteps);
    assert.deepEqual(result, {
      output: new Float32Array(0),
      hidden: noSteps.hidden,
      state: noSteps.state,
    });
    assert.notEqual(result.hidden, noSteps.hidden);
    assert.notEqual(result.state, noSteps.state);
    const empty = new Float32Array(0);
    assert.deepEqual(
      await runner.run({ batch: 0, seqLen: 4, x: empty, hidden: empty, state: empty }),
      { output: empty, hidden: empty, state: empty },
    );
  });

  test("refuses to run once disposed, also with using", async (b) => {
    const { spec, input } = smallCase();
    const runner = await b.compile(spec);
    await runner.run(input);
    runner.dispose();
    runner.dispose(); // idempotent
    const disposed = {
      name: "Error",
      message: `this ${b.name} runner was disposed; compile the cell again to run it`,
    };
    await assert.rejects(runner.run(input), disposed);
    let escaped: typeof runner | null = null;
    {
      using scoped = await b.compile(spec);
      escaped = scoped;
      assert.equal((await scoped.run(input)).output.length, 2 * 3 * 7);
    }
    await assert.rejects(escaped.run(input), disposed);
  });

  test("rejects malformed specs, naming the field, the expected and the actual value", async (b) => {
    const { spec } = smallCase();
    const cases: Array<[CellSpec, string, string]> = [
      [
        { ...spec, params: { ...spec.params, i2hWeight: new Float32Array(3) } },
        "RangeError",
        "spec.params.i2hWeight must be a Float32Array of (4kH, I) = 420 floats, got 3 floats",
      ],
      [
        { ...spec, params: { ...spec.params, h2hBias: new Float64Array(84) as never } },
        "TypeError",
        "spec.params.h2hBias must be a Float32Array of (4kH) = 84 floats, got Float64Array",
      ],
      [
        { ...spec, params: { ...spec.params, i2aBias: null } },
        "TypeError",
        "spec.params.i2aBias must be a Float32Array of (kH) = 21 floats, got null",
      ],
      [
        { ...spec, variant: { kind: "array", k: 3, maxPooling: false } },
        "TypeError",
        'spec.params.i2aWeight must be null unless the kind is "attention" (only attention has ' +
        'i2a parameters), got a Float32Array for kind "array"',
      ],
      [
        { ...spec, hiddenSize: 0 },
        "RangeError",
        "spec.hiddenSize must be a positive integer, got 0",
      ],
      [
        { ...spec, inputSize: 2.5 },
        "RangeError",
        "spec.inputSize must be a positive integer, got 2.5",
      ],
      [
        { ...spec, variant: { kind: "lstm", k: 2, maxPooling: false } },
        "RangeError",
        'spec.variant.k must be 1 for an "lstm" cell, got 2',
      ],
      [
        { ...spec, variant: { kind: "peephole" as VariantKind, k: 3, maxPooling: false } },
        "TypeError",
        `spec.variant.kind must be one of ${
          Object.keys(TABLE).map((kind) => `"${kind}"`).join(", ")
        }, got "peephole"`,
      ],
    ];
    for (const [bad, name, message] of cases) {
      await assert.rejects(b.compile(bad), { name, message });
    }
  });

  test("rejects malformed inputs, naming the field, the expected and the actual value", async (b) => {
    const { spec, input } = smallCase(2, 3);
    using runner = await b.compile(spec);
    const cases: Array<[SequenceInput, string, string]> = [
      [
        { ...input, seqLen: 4 },
        "RangeError",
        "input.x must be a Float32Array of (batch, seqLen, inputSize) = (2, 4, 5) = 40 floats, " +
        "got 30 floats",
      ],
      [
        { ...input, hidden: new Float32Array(7) },
        "RangeError",
        "input.hidden must be a Float32Array of (batch, hiddenSize) = (2, 7) = 14 floats, got 7 floats",
      ],
      [
        { ...input, state: new Float32Array(14) },
        "RangeError",
        "input.state must be a Float32Array of (k, batch, hiddenSize) = (3, 2, 7) = 42 floats, " +
        "got 14 floats",
      ],
      [
        { ...input, x: Array.from(input.x) as never },
        "TypeError",
        "input.x must be a Float32Array of (batch, seqLen, inputSize) = (2, 3, 5) = 30 floats, " +
        "got Array",
      ],
      [
        { ...input, batch: 1.5 },
        "RangeError",
        "input.batch must be a non-negative integer, got 1.5",
      ],
      [
        { ...input, seqLen: -1 },
        "RangeError",
        "input.seqLen must be a non-negative integer, got -1",
      ],
      [
        { ...input, ownsState: "yes" as never },
        "TypeError",
        'input.ownsState must be a boolean, got "yes"',
      ],
    ];
    for (const [bad, name, message] of cases) {
      await assert.rejects(runner.run(bad), { name, message });
    }
    assert.equal((await runner.run(input)).output.length, 2 * 3 * 7, "still usable");
  });
}

for (const entry of BACKENDS) defineContractTests(entry);
