/**
 * torch's GRU and RNN cells (variant kinds `"gru"`, `"rnn_tanh"`, `"rnn_relu"`) through the
 * backend contract, on every backend registered in `_backends.ts`: parity with the float64
 * reference (`src/reference/gru_rnn.ts`) on random cells of odd sizes (large ones split over the
 * wasm Workers), no cell states, training left to the oracle, and the contract's checks.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, CellSpec, SequenceInput } from "../src/contract.ts";
import { Random } from "../src/random.ts";
import { runTorchSequence } from "../src/reference/gru_rnn.ts";
import { type VariantKind, VARIANTS } from "../src/variants.ts";
import { BACKENDS } from "./_backends.ts";
import { maxAbsDiff } from "./_golden.ts";

/** Float32 kernels against the float64 reference rounded to float32. */
const TOLERANCE = 3e-5;
const KINDS: VariantKind[] = ["gru", "rnn_tanh", "rnn_relu"];

function uniform(random: Random, length: number, bound: number): Float32Array {
  return Float32Array.from({ length }, () => (2 * random.uniform() - 1) * bound);
}

function integer(random: Random, min: number, max: number): number {
  return min + Math.floor(random.uniform() * (max - min + 1));
}

/** A cell with torch's init U(±1/√H), and an input; `large` is big enough to split over Workers. */
function randomCase(
  random: Random,
  kind: VariantKind,
  large: boolean,
): { spec: CellSpec; input: SequenceInput } {
  const batch = large ? integer(random, 40, 65) : integer(random, 1, 9);
  const seqLen = large ? integer(random, 30, 40) : integer(random, 1, 12);
  const I = integer(random, 1, 20), H = large ? integer(random, 100, 140) : integer(random, 1, 33);
  const rows = VARIANTS[kind].gates * H, bound = 1 / Math.sqrt(H);
  return {
    spec: {
      variant: { kind, k: 1, maxPooling: false },
      inputSize: I,
      hiddenSize: H,
      params: {
        i2hWeight: uniform(random, rows * I, bound),
        i2hBias: uniform(random, rows, bound),
        h2hWeight: uniform(random, rows * H, bound),
        h2hBias: uniform(random, rows, bound),
        i2aWeight: null,
        i2aBias: null,
      },
    },
    input: {
      batch,
      seqLen,
      x: uniform(random, batch * seqLen * I, 2),
      hidden: uniform(random, batch * H, 1),
      state: new Float32Array(0),
    },
  };
}

for (const { label, backend } of BACKENDS) {
  const test = (name: string, fn: (backend: Backend) => Promise<void>) =>
    Deno.test({ name: `${label}: ${name}`, ignore: backend === null, fn: () => fn(backend!) });

  for (const [index, kind] of KINDS.entries()) {
    test(`${kind} matches the reference on random cells, without cell states`, async (b) => {
      const random = new Random(500 + index);
      for (let trial = 0; trial < 4; trial++) {
        const { spec, input } = randomCase(random, kind, trial === 0);
        using runner = await b.compile(spec);
        const actual = await runner.run(input);
        const expected = runTorchSequence(spec, input);
        const error = Math.max(
          maxAbsDiff(actual.output, expected.output),
          maxAbsDiff(actual.hidden, expected.hidden),
        );
        const shape = [input.batch, input.seqLen, spec.inputSize, spec.hiddenSize];
        assert.ok(error <= TOLERANCE, `B,T,I,H = ${shape}: max abs error ${error}`);
        assert.equal(actual.state.length, 0);
        // No fused training kernel yet: the models train these cells with the float64 oracle.
        assert.equal(runner.runTraining, undefined);
      }
    });
  }

  test("GRU and RNN specs and inputs are checked like the others", async (b) => {
    const { spec, input } = randomCase(new Random(9), "gru", false);
    const H = spec.hiddenSize, I = spec.inputSize;
    await assert.rejects(
      b.compile({ ...spec, params: { ...spec.params, i2hWeight: new Float32Array(4 * H * I) } }),
      {
        name: "RangeError",
        message: `spec.params.i2hWeight must be a Float32Array of (3kH, I) = ${
          3 * H * I
        } floats, got ${4 * H * I} floats`,
      },
    );
    await assert.rejects(
      b.compile({ ...spec, variant: { kind: "gru", k: 2, maxPooling: false } }),
      { name: "RangeError", message: 'spec.variant.k must be 1 for an "gru" cell, got 2' },
    );
    await assert.rejects(
      b.compile({ ...spec, variant: { ...spec.variant, recurrentActivation: "hard_sigmoid" } }),
      /recurrentActivation must be "sigmoid" \(or absent\) for a "gru" cell/,
    );
    using runner = await b.compile(spec);
    await assert.rejects(
      runner.run({ ...input, state: new Float32Array(input.batch * H) }),
      /input.state must be a Float32Array of nothing \(a "gru" cell keeps no cell states\) = 0/,
    );
  });
}
