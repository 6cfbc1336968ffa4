/**
 * torch's GRU and RNN cells (variant kinds `"gru"`, `"rnn_tanh"`, `"rnn_relu"`) through the
 * backend contract, on every backend registered in `_backends.ts`: torch's own results
 * (tests/testdata/golden_interop, layers and directions composed here from the runners), parity with
 * the float64 reference (`src/reference/gru_rnn.ts`) on random cells of odd sizes (large ones
 * split over the wasm Workers), no cell states, training left to the oracle, and the contract's
 * checks.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, CellSpec, SequenceInput } from "../src/contract/mod.ts";
import { Random } from "../src/random.ts";
import { readSafetensors } from "../src/safetensors.ts";
import type { Tensor } from "../src/tensor.ts";
import { runTorchSequence } from "../src/reference/gru_rnn.ts";
import { type VariantKind, VARIANTS } from "../src/variants.ts";
import { BACKENDS } from "./_backends.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { fixtureIndex, readFixture } from "./_testdata.ts";

/** Float32 kernels against the float64 reference rounded to float32. */
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

interface TorchGolden {
  file: string;
  kind: "torch" | "keras";
  mode?: "LSTM" | "GRU" | "RNN_TANH" | "RNN_RELU";
  L?: number;
  D?: number;
  init?: boolean;
}

const GOLDEN_KINDS: Record<string, VariantKind> = {
  GRU: "gru",
  RNN_TANH: "rnn_tanh",
  RNN_RELU: "rnn_relu",
};

/** torch's `(B, T, H)` steps in reverse time order. */
function reverseTime(values: Float32Array, B: number, T: number, width: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      out.set(
        values.subarray((b * T + t) * width, (b * T + t + 1) * width),
        (b * T + T - 1 - t) * width,
      );
    }
  }
  return out;
}

/**
 * torch's `nn.GRU`/`nn.RNN` forward of a golden case, each layer and direction one runner of
 * `backend`: returns `output` `(B, T, D·H)` and `h_n` `(L·D, B, H)`.
 */
async function torchForward(
  backend: Backend,
  entry: TorchGolden,
  tensors: Record<string, Tensor>,
): Promise<{ output: Float32Array; hN: Float32Array }> {
  const kind = GOLDEN_KINDS[entry.mode!], L = entry.L!, D = entry.D!;
  let [B, T, width] = tensors.x.shape;
  let x = tensors.x.data;
  const H = tensors.weight_hh_l0.shape[1];
  const hN = new Float32Array(L * D * B * H);
  for (let layer = 0; layer < L; layer++) {
    const next = new Float32Array(B * T * D * H);
    for (let direction = 0; direction < D; direction++) {
      const name = (base: string) => `${base}_l${layer}${direction === 1 ? "_reverse" : ""}`;
      using runner = await backend.compile({
        variant: { kind, k: 1, maxPooling: false },
        inputSize: width,
        hiddenSize: H,
        params: {
          i2hWeight: tensors[name("weight_ih")].data,
          i2hBias: tensors[name("bias_ih")].data,
          h2hWeight: tensors[name("weight_hh")].data,
          h2hBias: tensors[name("bias_hh")].data,
          i2aWeight: null,
          i2aBias: null,
        },
      });
      const row = layer * D + direction;
      const h0 = entry.init
        ? tensors.h0.data.slice(row * B * H, (row + 1) * B * H)
        : new Float32Array(B * H);
      const input = direction === 1 ? reverseTime(x, B, T, width) : x;
      const result = await runner.run({
        batch: B,
        seqLen: T,
        x: input,
        hidden: h0,
        state: new Float32Array(0),
      });
      const output = direction === 1 ? reverseTime(result.output, B, T, H) : result.output;
      for (let bt = 0; bt < B * T; bt++) {
        next.set(output.subarray(bt * H, (bt + 1) * H), (bt * D + direction) * H);
      }
      hN.set(result.hidden, row * B * H);
    }
    x = next;
    width = D * H;
  }
  return { output: x, hN };
}

const goldenCases = (fixtureIndex("golden_interop") as unknown as TorchGolden[])
  .filter((entry) => entry.kind === "torch" && entry.mode !== "LSTM");

for (const { label, backend } of BACKENDS) {
  const test = (name: string, fn: (backend: Backend) => Promise<void>) =>
    Deno.test({ name: `${label}: ${name}`, ignore: backend === null, fn: () => fn(backend!) });

  for (const entry of goldenCases) {
    test(`golden_interop ${entry.file} (torch's own results)`, async (b) => {
      const { tensors } = readSafetensors(readFixture("golden_interop", entry.file));
      const { output, hN } = await torchForward(b, entry, tensors);
      assertClose(output, tensors.output.data, TOLERANCE.golden, "output");
      assertClose(hN, tensors.h_n.data, TOLERANCE.golden, "h_n");
    });
  }

  for (const [index, kind] of KINDS.entries()) {
    test(`${kind} matches the reference on random cells, without cell states`, async (b) => {
      const random = new Random(500 + index);
      for (let trial = 0; trial < 4; trial++) {
        const { spec, input } = randomCase(random, kind, trial === 0);
        using runner = await b.compile(spec);
        const actual = await runner.run(input);
        const expected = runTorchSequence(spec, input);
        const shape = `B,T,I,H = ${[input.batch, input.seqLen, spec.inputSize, spec.hiddenSize]}`;
        assertClose(actual.output, expected.output, TOLERANCE.float32, `${shape}: output`);
        assertClose(actual.hidden, expected.hidden, TOLERANCE.float32, `${shape}: hidden`);
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
