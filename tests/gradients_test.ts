import assert from "node:assert/strict";
import type { CellSpec, SequenceInput, VariantKind } from "../src/contract/mod.ts";
import { runSequence } from "../src/reference/sequence.ts";
import { backward, type InputGradients } from "../src/reference/backward.ts";
import { Random } from "../src/random.ts";
import {
  goldenEntries,
  goldenInit,
  goldenSpec,
  loadGoldenCase,
  variantName,
  VARIANTS,
} from "./_golden.ts";
import { cellSpec } from "./_random_cells.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

for (const entry of goldenEntries().filter((entry) => entry.has_grads)) {
  Deno.test(`gradients match the reference: ${entry.file}`, () => {
    const golden = loadGoldenCase(entry);
    const { batch: B, seq_len: T, hidden_size: H, k } = entry.dims;
    const init = goldenInit(golden);
    const t = golden.tensors;
    const grads = backward(goldenSpec(golden), {
      batch: B,
      seqLen: T,
      x: t.x.data,
      hidden: init?.hidden.data ?? new Float32Array(B * H),
      state: init?.state.data ?? new Float32Array(k * B * H),
    }, { output: t.R.data, state: t.R2.data });
    for (const [name, value] of Object.entries(grads.params)) {
      assertClose(value, t[`grad.${name}`].data, TOLERANCE.referenceGradient, `grad.${name}`);
    }
    assertClose(grads.x, t["grad.x"].data, TOLERANCE.referenceGradient, "grad.x");
    if (init !== undefined) {
      assertClose(grads.hidden, t["grad.h0"].data, TOLERANCE.referenceGradient, "grad.h0");
      assertClose(grads.state, t["grad.c0"].data, TOLERANCE.referenceGradient, "grad.c0");
    }
  });
}

interface Problem {
  spec: CellSpec;
  input: SequenceInput;
  weights: { output: Float64Array; hidden: Float64Array; state: Float64Array };
}

function randomArray(random: Random, length: number, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => scale * random.normal());
}

function randomProblem(kind: VariantKind, maxPooling: boolean, seed: number): Problem {
  const random = new Random(seed);
  const pick = (low: number, high: number) => low + Math.floor(random.uniform() * (high - low + 1));
  const k = kind === "lstm" ? 1 : pick(1, 4);
  const B = pick(1, 3), T = pick(1, 5), I = pick(1, 4), H = pick(1, 5);
  const rows = 4 * k * H;
  const spec = cellSpec(
    { kind, k, maxPooling },
    { inputSize: I, hiddenSize: H },
    {
      i2hWeight: randomArray(random, rows * I, 0.5),
      i2hBias: randomArray(random, rows, 0.5),
      h2hWeight: randomArray(random, rows * H, 0.5),
      h2hBias: randomArray(random, rows, 0.5),
    },
    (length) => randomArray(random, length),
  );
  const input: SequenceInput = {
    batch: B,
    seqLen: T,
    x: randomArray(random, B * T * I),
    hidden: randomArray(random, B * H, 0.5),
    state: randomArray(random, k * B * H),
  };
  const weights = {
    output: Float64Array.from(randomArray(random, B * T * H)),
    hidden: Float64Array.from(randomArray(random, B * H)),
    state: Float64Array.from(randomArray(random, k * B * H)),
  };
  return { spec, input, weights };
}

/** The scalar loss Σ output·R + Σ hidden·Rh + Σ state·Rc, in float64. */
function loss({ spec, input, weights }: Problem): number {
  const result = runSequence(spec, input, Float64Array);
  let total = 0;
  for (const key of ["output", "hidden", "state"] as const) {
    for (let i = 0; i < result[key].length; i++) total += result[key][i] * weights[key][i];
  }
  return total;
}

/** Central difference of the loss in one float32 entry; divides by the step actually taken. */
function centralDifference(problem: Problem, array: Float32Array, index: number): number {
  const original = array[index];
  const step = 1e-3 * Math.max(1, Math.abs(original));
  array[index] = original + step;
  const up = array[index];
  const lossUp = loss(problem);
  array[index] = original - step;
  const down = array[index];
  const lossDown = loss(problem);
  array[index] = original;
  return (lossUp - lossDown) / (up - down);
}

function checkAgainstFiniteDifferences(problem: Problem, grads: InputGradients): void {
  const { params } = problem.spec;
  const targets: [string, Float32Array | null, ArrayLike<number> | undefined][] = [
    ["i2h.weight", params.i2hWeight, grads.params["i2h.weight"]],
    ["i2h.bias", params.i2hBias, grads.params["i2h.bias"]],
    ["h2h.weight", params.h2hWeight, grads.params["h2h.weight"]],
    ["h2h.bias", params.h2hBias, grads.params["h2h.bias"]],
    ["i2a.weight", params.i2aWeight, grads.params["i2a.weight"]],
    ["i2a.bias", params.i2aBias, grads.params["i2a.bias"]],
    ["x", problem.input.x, grads.x],
    ["hidden", problem.input.hidden, grads.hidden],
    ["state", problem.input.state, grads.state],
  ];
  for (const [name, array, analytic] of targets) {
    if (array === null || analytic === undefined) continue;
    const numeric = Array.from(array, (_, i) => centralDifference(problem, array, i));
    assertClose(
      analytic,
      numeric,
      TOLERANCE.finiteDifference,
      `${name} against finite differences`,
    );
  }
}

for (const [kind, maxPooling] of VARIANTS) {
  Deno.test(`gradients match central finite differences: ${variantName(kind, maxPooling)}`, () => {
    for (let seed = 1; seed <= 6; seed++) {
      const problem = randomProblem(kind, maxPooling, seed * 7919 + kind.length);
      const grads = backward(problem.spec, problem.input, {
        output: problem.weights.output,
        hidden: problem.weights.hidden,
        state: problem.weights.state,
      });
      checkAgainstFiniteDifferences(problem, grads);
    }
  });
}

Deno.test("backward rejects gradients of the wrong size", () => {
  const problem = randomProblem("array", false, 5);
  assert.throws(
    () => backward(problem.spec, problem.input, { output: new Float64Array(1) }),
    /grads\.output has the wrong shape/,
  );
});
