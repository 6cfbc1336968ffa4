/**
 * Seeded random cells and inputs for the parity tests: PyTorch's default init, odd sizes, random
 * initial states, and the one rule every backend's parity test follows for the stochastic
 * variant's near ties.
 *
 * @module
 */

import type {
  CellSpec,
  RecurrentActivation,
  SequenceInput,
  SequenceOutput,
  VariantKind,
} from "../src/contract/mod.ts";
import type { Random } from "../src/random.ts";
import { runSequence } from "../src/reference/sequence.ts";

/** A cell and one call's input. */
export interface RandomCase {
  readonly spec: CellSpec;
  readonly input: SequenceInput;
}

/** The sizes of a case: batch, steps, inputs, hidden units, lanes. */
export interface CaseShape {
  readonly batch: number;
  readonly seqLen: number;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly k: number;
}

function uniformArray(random: Random, length: number, bound: number): Float32Array {
  return Float32Array.from({ length }, () => (2 * random.uniform() - 1) * bound);
}

/**
 * A cell of `kind` with the given LSTM weights; the attention variant's `i2a` weights come from
 * `draw(length)`, called for the weight, then the bias.
 */
export function cellSpec(
  variant: CellSpec["variant"],
  sizes: { inputSize: number; hiddenSize: number },
  lstm: Pick<CellSpec["params"], "i2hWeight" | "i2hBias" | "h2hWeight" | "h2hBias">,
  draw: (length: number) => Float32Array,
): CellSpec {
  const attention = variant.kind === "attention";
  const { inputSize: I, hiddenSize: H } = sizes, { k } = variant;
  return {
    variant,
    inputSize: I,
    hiddenSize: H,
    params: {
      ...lstm,
      i2aWeight: attention ? draw(k * H * I) : null,
      i2aBias: attention ? draw(k * H) : null,
    },
  };
}

function integer(random: Random, min: number, max: number): number {
  return min + Math.floor(random.uniform() * (max - min + 1));
}

/**
 * Random sizes: `large` ones (B 40–65, H 100–140, T 30–40) are big enough for a two-thread WASM
 * backend to split over its Workers; the others range from 1 to those bounds.
 */
export function randomShape(random: Random, kind: VariantKind, large: boolean): CaseShape {
  return {
    batch: large ? integer(random, 40, 65) : integer(random, 1, 65),
    k: kind === "lstm" ? 1 : integer(random, 1, 5),
    inputSize: integer(random, 1, 70),
    hiddenSize: large ? integer(random, 100, 140) : integer(random, 1, 140),
    seqLen: large ? integer(random, 30, 40) : integer(random, 1, 40),
  };
}

/**
 * A random cell of `shape` with PyTorch's default init, and a random input and initial state.
 *
 * The stochastic cell's output is discontinuous at ties of the best two output gates, and two
 * float32 implementations round differently (~1e-7), so a near tie could legitimately pick
 * different lanes. Its output gates are therefore made tie-free: their weights shrink 100-fold and
 * each unit's lanes get biases 0.5 apart in a random order, so the GEMM still computes them but
 * the winning lane of each unit (random across units) is never in doubt. The golden cases cover
 * ties and close calls.
 */
export function randomCase(
  random: Random,
  kind: VariantKind,
  maxPooling: boolean,
  shape: CaseShape,
): RandomCase {
  const { batch, seqLen: T, inputSize: I, hiddenSize: H, k } = shape;
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
  const spec = cellSpec(
    { kind, k, maxPooling },
    { inputSize: I, hiddenSize: H },
    { i2hWeight, i2hBias, h2hWeight, h2hBias: uniformArray(random, rows, 1 / Math.sqrt(H)) },
    (length) => uniformArray(random, length, 1 / Math.sqrt(I)),
  );
  const input: SequenceInput = {
    batch,
    seqLen: T,
    x: uniformArray(random, batch * T * I, 2),
    hidden: uniformArray(random, batch * H, 1),
    state: uniformArray(random, k * batch * H, 2),
  };
  return { spec, input };
}

/** The reference's float32 result for a case. */
export function referenceRun({ spec, input }: RandomCase): SequenceOutput {
  return runSequence(spec, input) as SequenceOutput;
}

/** `cell` with `activation` on its gates (the weights and input are shared, not copied). */
export function withActivation(cell: RandomCase, activation: RecurrentActivation): RandomCase {
  const { spec } = cell;
  return {
    ...cell,
    spec: { ...spec, variant: { ...spec.variant, recurrentActivation: activation } },
  };
}
