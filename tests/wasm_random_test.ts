/**
 * The WASM backend against the TypeScript oracle (`jsBackend`) on random cells: every variant,
 * odd sizes (not multiples of 4 or 8), random weights and initial states, one and two threads, and
 * the plain SIMD build as well as the relaxed one. Seeded, so every run checks the same cases.
 */

import assert from "node:assert/strict";
import type { CellSpec, SequenceInput, VariantKind } from "../src/backends/backend.ts";
import { jsBackend } from "../src/backends/js.ts";
import { createWasmBackend } from "../src/backends/wasm.ts";
import { Random } from "../src/random.ts";
import { maxAbsDiff, variantName, VARIANTS } from "./_golden.ts";

/** Two float32 implementations summing in different orders drift apart by about this much. */
const TOLERANCE = 3e-5;

interface Case {
  spec: CellSpec;
  input: SequenceInput;
}

function uniformArray(random: Random, length: number, bound: number): Float32Array {
  return Float32Array.from({ length }, () => (2 * random.uniform() - 1) * bound);
}

function integer(random: Random, min: number, max: number): number {
  return min + Math.floor(random.uniform() * (max - min + 1));
}

/**
 * A random cell with PyTorch's default init, and a random input and initial state.
 *
 * The stochastic cell's output is discontinuous at ties of the best two output gates, and the two
 * backends round differently (~1e-7), so a near tie could legitimately pick different lanes. Its
 * output gates are therefore made tie-free: their weights shrink 100-fold and each unit's lanes get
 * biases 0.5 apart in a random order, so the GEMM still computes them but the winning lane of each
 * unit (random across units) is never in doubt. The golden cases cover ties and close calls.
 */
function randomCase(
  random: Random,
  kind: VariantKind,
  maxPooling: boolean,
  large: boolean,
): Case {
  // `large` cases are big enough for the two-thread backend to split them over its Workers.
  const batch = large ? integer(random, 40, 65) : integer(random, 1, 65);
  const k = kind === "lstm" ? 1 : integer(random, 1, 5);
  const I = integer(random, 1, 70);
  const H = large ? integer(random, 100, 140) : integer(random, 1, 140);
  const T = large ? integer(random, 30, 40) : integer(random, 1, 40);
  const rows = 4 * k * H;
  const i2hWeight = uniformArray(random, rows * I, 1 / Math.sqrt(I));
  const i2hBias = uniformArray(random, rows, 1 / Math.sqrt(I));
  const h2hWeight = uniformArray(random, rows * H, 1 / Math.sqrt(H));
  if (kind === "stochastic") {
    for (let unit = 0; unit < H; unit++) {
      const lanes = Array.from({ length: k }, (_, lane) => ({ lane, key: random.uniform() }));
      lanes.sort((a, b) => a.key - b.key);
      for (const [rank, { lane }] of lanes.entries()) {
        const row = (lane * 4 + 2) * H + unit; // this lane's output gate of this unit
        i2hBias[row] = 0.5 * rank;
        for (let d = 0; d < I; d++) i2hWeight[row * I + d] *= 0.01;
        for (let d = 0; d < H; d++) h2hWeight[row * H + d] *= 0.01;
      }
    }
  }
  const spec: CellSpec = {
    variant: { kind, k, maxPooling },
    inputSize: I,
    hiddenSize: H,
    params: {
      i2hWeight,
      i2hBias,
      h2hWeight,
      h2hBias: uniformArray(random, rows, 1 / Math.sqrt(H)),
      i2aWeight: kind === "attention" ? uniformArray(random, k * H * I, 1 / Math.sqrt(I)) : null,
      i2aBias: kind === "attention" ? uniformArray(random, k * H, 1 / Math.sqrt(I)) : null,
    },
  };
  const input: SequenceInput = {
    batch,
    seqLen: T,
    x: uniformArray(random, batch * T * I, 2),
    hidden: uniformArray(random, batch * H, 1),
    state: uniformArray(random, k * batch * H, 2),
  };
  return { spec, input };
}

const BACKENDS: [number, boolean][] = [[1, true], [2, true], [1, false]];

for (const [threads, relaxedSimd] of BACKENDS) {
  const backend = createWasmBackend({ threads, relaxedSimd });
  const label = `threads: ${threads}${relaxedSimd ? "" : ", plain SIMD"}`;
  for (const [index, [kind, maxPooling]] of VARIANTS.entries()) {
    const name = variantName(kind, maxPooling);
    Deno.test(`wasm (${label}) matches js on random ${name} cells`, async () => {
      const random = new Random(threads * 100 + index);
      for (let trial = 0; trial < 4; trial++) {
        const { spec, input } = randomCase(random, kind, maxPooling, trial === 0);
        const expected = await (await jsBackend.compile(spec)).run(input);
        const runner = await backend.compile(spec);
        try {
          const actual = await runner.run(input);
          const errors = {
            output: maxAbsDiff(actual.output, expected.output),
            hidden: maxAbsDiff(actual.hidden, expected.hidden),
            state: maxAbsDiff(actual.state, expected.state),
          };
          const { batch: B, seqLen: T } = input;
          const { inputSize: I, hiddenSize: H, variant: { k } } = spec;
          assert.ok(
            Math.max(errors.output, errors.hidden, errors.state) <= TOLERANCE,
            `B=${B} T=${T} I=${I} H=${H} k=${k}: ${JSON.stringify(errors)}`,
          );
        } finally {
          runner.dispose();
        }
      }
    });
  }
}
