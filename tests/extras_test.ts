/**
 * The opt-in per-step outputs (`SequenceInput.outputs`, `forward`'s `returnAttention` and
 * `returnLanes`), on every backend registered in `_backends.ts`: the attention weights and the
 * stochastic cell's chosen lanes match the TypeScript reference and a hook subclass that records
 * them step by step; asking for them changes no other result; not asking returns none; lengths,
 * training mode and errors.
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  Backend,
  ResolvedBackendName,
  SequenceInput,
  VariantKind,
} from "../src/contract/mod.ts";
import { Random } from "../src/random.ts";
import { selectedLane } from "../src/reference/cell.ts";
import { traceLayer } from "../src/explain/lrp_layer.ts";
import { cellParameters } from "../src/models/lstm.ts";
import {
  AttentionArrayLSTM,
  LSTM,
  randn,
  type RecurrentState,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";
import { createWasmBackend } from "../src/backends/wasm/mod.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu/mod.ts";
import { BACKENDS, hasWebGpu, type RegisteredBackend } from "./_backends.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";
import { type RandomCase, randomCase, referenceRun } from "./_random_cells.ts";

/** Two float32 implementations summing in different orders drift apart by about this much. */

/** Variant, max pooling, B, T, I, H, k: odd sizes, and one large enough to split over workers. */
const CASES: Array<[VariantKind, boolean, number, number, number, number, number]> = [
  ["attention", false, 5, 4, 3, 7, 3],
  ["attention", true, 17, 3, 6, 9, 2],
  ["attention", false, 64, 30, 9, 101, 4],
  ["attention", false, 3, 5, 4, 6, 1],
  ["stochastic", false, 13, 4, 3, 5, 4],
  ["stochastic", false, 1, 8, 6, 18, 5],
  ["stochastic", false, 64, 30, 7, 105, 3],
  ["stochastic", false, 4, 3, 2, 3, 1],
];

function defineExtrasTests({ label, backend }: RegisteredBackend): void {
  const ignore = backend === null;
  const test = (name: string, fn: (backend: Backend) => Promise<void>) =>
    Deno.test({ name: `${label}: ${name}`, ignore, fn: () => fn(backend!) });

  for (const [index, [kind, maxPooling, B, T, I, H, k]] of CASES.entries()) {
    const shape = { batch: B, seqLen: T, inputSize: I, hiddenSize: H, k };
    const name = `${kind}${maxPooling ? " (max pooling)" : ""} B,T,I,H,k=${[B, T, I, H, k]}`;
    test(`opt-in outputs match the reference: ${name}`, async (b) => {
      const cell = randomCase(new Random(700 + index), kind, maxPooling, shape);
      const outputs = kind === "attention" ? { attention: true } : { lanes: true };
      const asked: SequenceInput = { ...cell.input, outputs };
      const expected = referenceRun({ spec: cell.spec, input: asked });
      using runner = await b.compile(cell.spec);
      const plain = await runner.run(cell.input);
      const actual = await runner.run(asked);
      assert.deepEqual(
        [actual.output, actual.hidden, actual.state],
        [plain.output, plain.hidden, plain.state],
        "asking for them changes no other result",
      );
      assert.equal(plain.attention, undefined);
      assert.equal(plain.lanes, undefined);
      if (kind === "attention") {
        assert.equal(actual.lanes, undefined);
        assert.ok(actual.attention instanceof Float32Array);
        assert.equal(actual.attention.length, B * T * H * k);
        assertClose(actual.attention, expected.attention!, TOLERANCE.float32, "attention");
      } else {
        assert.equal(actual.attention, undefined);
        assert.ok(actual.lanes instanceof Int32Array);
        assert.deepEqual(actual.lanes, expected.lanes);
      }
    });
  }

  test("an empty call returns empty opt-in outputs", async (b) => {
    const cell = randomCase(new Random(3), "stochastic", false, {
      batch: 0,
      seqLen: 4,
      inputSize: 2,
      hiddenSize: 3,
      k: 2,
    });
    using runner = await b.compile(cell.spec);
    const result = await runner.run({ ...cell.input, outputs: { lanes: true } });
    assert.deepEqual(result.lanes, new Int32Array(0));
  });

  test("outputs for the wrong cell, or not booleans, are refused naming the class", async (b) => {
    const shape = { batch: 2, seqLen: 3, inputSize: 2, hiddenSize: 3, k: 2 };
    const refused: Array<[VariantKind, SequenceInput["outputs"], RegExp]> = [
      ["stochastic", { attention: true }, /input\.outputs\.attention.*AttentionArrayLSTM.*Stoch/],
      ["array", { lanes: true }, /input\.outputs\.lanes.*StochasticArrayLSTM.*ArrayLSTM/],
      ["attention", { lanes: true }, /input\.outputs\.lanes is only for the StochasticArrayLSTM/],
      ["lstm", { attention: true }, /only for the AttentionArrayLSTM cell.*"lstm" \(LSTM\)/],
      ["attention", { attention: 1 as unknown as boolean }, /must be a boolean, got 1/],
    ];
    for (const [kind, outputs, message] of refused) {
      const cell = randomCase(new Random(4), kind, false, { ...shape, k: kind === "lstm" ? 1 : 2 });
      using runner = await b.compile(cell.spec);
      await assert.rejects(runner.run({ ...cell.input, outputs }), message);
    }
    const cell = randomCase(new Random(5), "attention", false, shape);
    using runner = await b.compile(cell.spec);
    const off = await runner.run({ ...cell.input, outputs: { attention: false, lanes: false } });
    assert.equal(off.attention, undefined);
    if (runner.runTraining) {
      await assert.rejects(
        runner.runTraining({ ...cell.input, outputs: { attention: true } }),
        /input\.outputs is for run\(\)/,
      );
    }
  });

  // The models run on a backend by name: once per name (the wasm one splits over workers).
  if (label.includes("threads: 1")) return;
  defineModelTests(label, label.split(" ")[0] as ResolvedBackendName, ignore);
}

/** Records the attention weights of every step, `(B, T, H, k)`, through the hook path. */
class RecordingAttention extends AttentionArrayLSTM {
  steps: Float32Array[] = [];
  override forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState {
    const [batch] = x.shape;
    const { k, hiddenSize: H } = this;
    const w = this.parameter("i2a.weight").data, bias = this.parameter("i2a.bias").data;
    const step = new Float32Array(batch * H * k);
    for (let b = 0; b < batch; b++) {
      for (let u = 0; u < H; u++) {
        const lanes = Array.from({ length: k }, (_, lane) => {
          const row = lane * H + u;
          let a = bias[row];
          for (let i = 0; i < this.inputSize; i++) {
            a += x.data[b * this.inputSize + i] * w[row * this.inputSize + i];
          }
          return Math.exp(1 / (1 + Math.exp(-a)));
        });
        const total = lanes.reduce((sum, v) => sum + v, 0);
        const largest = Math.max(...lanes.map((v) => v / total));
        lanes.forEach((v, lane) =>
          step[(b * H + u) * k + lane] = this.maxPooling ? largest : v / total
        );
      }
    }
    this.steps.push(step);
    return super.forwardCell(x, hidden, state);
  }
}

/** Records the lane read out at every step, `(B, T, H)`, through the hook path. */
class RecordingLanes extends StochasticArrayLSTM {
  steps: Int32Array[] = [];
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    const [k, batch, H] = states.shape;
    this.steps.push(
      Int32Array.from({ length: batch * H }, (_, i) => selectedLane(outputs.data, k, batch * H, i)),
    );
    return super.updateHidden(outputs, states);
  }
}

/** Per-step `(B, X)` records into `(B, T, X)`. */
function byRow<A extends Float32Array | Int32Array>(
  steps: A[],
  batch: number,
  make: (n: number) => A,
): A {
  const T = steps.length, width = steps[0].length / batch;
  const out = make(batch * T * width);
  steps.forEach((step, t) => {
    for (let b = 0; b < batch; b++) {
      out.set(step.subarray(b * width, (b + 1) * width), (b * T + t) * width);
    }
  });
  return out;
}

function defineModelTests(label: string, backend: ResolvedBackendName, ignore: boolean): void {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `${label}: ${name}`, ignore, fn });
  const x = randn([6, 9, 5], { seed: 11 });

  for (const maxPooling of [false, true]) {
    test(`returnAttention matches a hook subclass (maxPooling ${maxPooling})`, async () => {
      using model = new AttentionArrayLSTM(5, 10, 3, { backend, seed: 3, maxPooling });
      const hooks = new RecordingAttention(5, 10, 3, { backend: "js", seed: 3, maxPooling });
      const { attention, output } = await model.forward(x, { returnAttention: true });
      const expected = await hooks.forward(x);
      assert.deepEqual(attention!.shape, [6, 9, 10, 3]);
      const recorded = byRow(hooks.steps, 6, (n) => new Float32Array(n));
      assertClose(attention!.data, recorded, TOLERANCE.backends, "attention");
      assertClose(output.data, expected.output.data, TOLERANCE.backends, "output");
    });
  }

  test("returnLanes matches a hook subclass", async () => {
    using model = new StochasticArrayLSTM(5, 10, 3, { backend, seed: 3 });
    const hooks = new RecordingLanes(5, 10, 3, { backend: "js", seed: 3 });
    const { lanes } = await model.forward(x, { returnLanes: true });
    await hooks.forward(x);
    assert.deepEqual(lanes!.shape, [6, 9, 10]);
    assert.deepEqual(lanes!.data, byRow(hooks.steps, 6, (n) => new Int32Array(n)));
  });

  test("with lengths, steps past a sequence's end are zero (attention) or -1 (lanes)", async () => {
    const lengths = [9, 2, 5, 9, 1, 4];
    using attentive = new AttentionArrayLSTM(5, 4, 2, { backend, seed: 5 });
    using stochastic = new StochasticArrayLSTM(5, 4, 2, { backend, seed: 5 });
    const { attention } = await attentive.forward(x, { returnAttention: true, lengths });
    const { lanes } = await stochastic.forward(x, { returnLanes: true, lengths });
    const full = await attentive.forward(x, { returnAttention: true });
    const fullLanes = await stochastic.forward(x, { returnLanes: true });
    lengths.forEach((length, b) => {
      for (let t = 0; t < 9; t++) {
        const a = attention!.data.subarray((b * 9 + t) * 8, (b * 9 + t + 1) * 8);
        const l = lanes!.data.subarray((b * 9 + t) * 4, (b * 9 + t + 1) * 4);
        if (t >= length) {
          assert.deepEqual([...a], new Array(8).fill(0));
          assert.deepEqual([...l], new Array(4).fill(-1));
        } else {
          // Attention depends on the step's input only; the lanes on the state, which is the same
          // before a sequence ends.
          assert.deepEqual(a, full.attention!.data.subarray((b * 9 + t) * 8, (b * 9 + t + 1) * 8));
          assert.deepEqual(l, fullLanes.lanes!.data.subarray((b * 9 + t) * 4, (b * 9 + t + 1) * 4));
        }
      }
    });
  });

  test("in training mode the outputs come back too, without history", async () => {
    using model = new StochasticArrayLSTM(5, 4, 2, { backend, seed: 6 }).train();
    const result = await model.forward(x, { returnLanes: true });
    const inference = await model.eval().forward(x, { returnLanes: true });
    assert.ok(result.output.requiresGrad);
    assert.deepEqual(result.lanes, inference.lanes);
    assert.equal((result.lanes as unknown as { requiresGrad?: boolean }).requiresGrad, undefined);
  });

  test("not asking returns no opt-in outputs", async () => {
    using model = new AttentionArrayLSTM(5, 4, 2, { backend, seed: 7 });
    const result = await model.forward(x, { returnAttention: false });
    assert.deepEqual(Object.keys(result).sort(), ["hidden", "output", "state"]);
  });

  test("options for the wrong class, or a hook subclass, are refused naming it", async () => {
    using lstm = new LSTM(5, 4, { backend, seed: 1 });
    await assert.rejects(
      lstm.forward(x, { returnLanes: true }),
      /init\.returnLanes is only for StochasticArrayLSTM .*got a LSTM/,
    );
    using stochastic = new StochasticArrayLSTM(5, 4, 2, { backend, seed: 1 });
    await assert.rejects(
      stochastic.forward(x, { returnAttention: true }),
      /init\.returnAttention is only for AttentionArrayLSTM .*got a StochasticArrayLSTM/,
    );
    await assert.rejects(
      stochastic.forward(x, { returnLanes: "yes" as unknown as boolean }),
      /init\.returnLanes must be a boolean, got "yes"/,
    );
    const hooks = new RecordingLanes(5, 4, 2, { backend, seed: 1 });
    await assert.rejects(
      hooks.forward(x, { returnLanes: true }),
      /RecordingLanes overrides a hook/,
    );
  });
}

for (const entry of BACKENDS) defineExtrasTests(entry);

/** Asks `backend` for `cell`'s opt-in output (attention weights or lanes) and checks it. */
async function assertOptInOutputs(backend: Backend, cell: RandomCase): Promise<void> {
  const attention = cell.spec.variant.kind === "attention";
  const asked = { ...cell.input, outputs: attention ? { attention: true } : { lanes: true } };
  const expected = referenceRun({ spec: cell.spec, input: asked });
  using runner = await backend.compile(cell.spec);
  const actual = await runner.run(asked);
  if (attention) {
    assertClose(actual.attention!, expected.attention!, TOLERANCE.float32, "attention");
  } else {
    assert.deepEqual(actual.lanes, expected.lanes);
  }
}

Deno.test("wasm: opt-in outputs are the same when a batch runs in rounds over two workers", async () => {
  // 4 kB per call: the batch runs in rounds of a few rows on each of two workers.
  const backend = createWasmBackend({
    threads: 2,
    memory: { instanceBytes: 1 << 24, chunkBytes: 4096 },
  });
  for (const kind of ["attention", "stochastic"] as const) {
    const shape = { batch: 64, seqLen: 30, inputSize: 9, hiddenSize: 101, k: 3 };
    await assertOptInOutputs(backend, randomCase(new Random(10), kind, false, shape));
  }
});

for (const kind of ["attention", "stochastic"] as const) {
  Deno.test({
    name: `webgpu: opt-in ${kind} outputs are the same when the call is split in batch and time`,
    ignore: !hasWebGpu,
    async fn() {
      // A 40 kB binding limit cuts this call into 2 batch chunks of 7 time chunks each.
      const split = await requestWebGpuBackend({ maxStorageBufferBindingSize: 40_000 });
      const shape = { batch: 65, seqLen: 20, inputSize: 5, hiddenSize: 8, k: 2 };
      await assertOptInOutputs(split!, randomCase(new Random(9), kind, false, shape));
    },
  });
}

Deno.test("lrp's trace of a stochastic layer reads out the lanes the backend chose", async () => {
  const [B, T, I, H, k] = [3, 4, 5, 6, 3];
  using model = new StochasticArrayLSTM(I, H, k, { backend: "js", seed: 12 });
  const x = randn([B, T, I], { seed: 13 });
  const { output, lanes } = await model.forward(x, { returnLanes: true });
  const values = model.stateDict();
  const weights = {
    kind: "stochastic" as const,
    k,
    maxPooling: false,
    activation: "sigmoid" as const,
    inputSize: I,
    hiddenSize: H,
    ...cellParameters(values),
  };
  const trace = (chosen: Int32Array | null) =>
    traceLayer(weights, B, T, Float64Array.from(x.data), Float64Array.from(output.data), chosen)
      .lanes!;
  // Recomputed in float64 or taken from the backend: the same lanes here (no near tie)...
  assert.deepEqual(trace(lanes!.data), trace(null));
  // ...and given lanes are the ones used, transposed to the trace's (T, B, H).
  const given = Int32Array.from({ length: B * T * H }, (_, i) => i % k);
  const used = trace(given);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let u = 0; u < H; u++) {
        assert.equal(used[(t * B + b) * H + u], given[(b * T + t) * H + u]);
      }
    }
  }
});
