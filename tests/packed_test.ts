/**
 * Variable-length sequences (`forward(x, { lengths })`): each row of a packed batch equals that
 * row run alone at its own length, on every backend, in inference and in training (gradients of
 * the parameters, `x` and the initial state), for hook subclasses, and across a hot reload.
 */

import assert from "node:assert/strict";
import {
  add,
  ArrayLSTM,
  AttentionArrayLSTM,
  LSTM,
  mul,
  randn,
  requiresGrad,
  StochasticArrayLSTM,
  sum,
  type Tensor,
  type TrackedTensor,
} from "../mod.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { assertClose, mixed } from "./_assert.ts";
import { BACKEND_NAMES, CPU_BACKENDS, isAvailable } from "./_backends.ts";

const I = 3, H = 4, B = 4, T = 5;
const LENGTHS = [5, 2, 5, 1];
/** A row of a packed batch against that row alone: float32 sums of other shapes. */
const ROW_TOLERANCE = mixed(1e-4);

function everyModel(backend: ResolvedBackendName): LSTM[] {
  return [
    new LSTM(I, H, { backend, seed: 1 }),
    new ArrayLSTM(I, H, 2, { backend, seed: 2 }),
    new AttentionArrayLSTM(I, H, 3, { backend, seed: 3 }),
    new AttentionArrayLSTM(I, H, 2, { backend, seed: 4, maxPooling: true }),
    new StochasticArrayLSTM(I, H, 3, { backend, seed: 5 }),
  ];
}

/** Rows `b` of a `(outer, B, inner)` tensor, as `(outer, 1, inner)`. */
function row(t: Tensor, b: number): Tensor {
  const [outer, rows, inner] = t.shape;
  const data = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    data.set(t.data.subarray((o * rows + b) * inner, (o * rows + b + 1) * inner), o * inner);
  }
  return { shape: [outer, 1, inner], data };
}

/** The first `steps` steps of sequence `b` of `(B, T, F)`, as `(1, steps, F)`. */
function steps(t: Tensor, b: number, count: number): Tensor {
  const [, seqLen, F] = t.shape;
  const start = b * seqLen * F;
  return { shape: [1, count, F], data: t.data.slice(start, start + count * F) };
}

/** Checks a packed result against each row run alone on `reference`. */
async function assertRowsMatch(
  name: string,
  packed: { output: Tensor; hidden: Tensor; state: Tensor },
  reference: LSTM,
  x: Tensor,
  init: { hidden: Tensor; state: Tensor },
  lengths: readonly number[],
): Promise<void> {
  for (const [b, length] of lengths.entries()) {
    const alone = await reference.forward(steps(x, b, length), {
      hidden: row(init.hidden, b),
      state: row(init.state, b),
    });
    const out = steps(packed.output, b, T).data;
    assertClose(
      out.subarray(0, length * H),
      alone.output.data,
      ROW_TOLERANCE,
      `${name} output row ${b}`,
    );
    assert.ok(out.subarray(length * H).every((v) => v === 0), `${name} row ${b}: zeros past it`);
    assertClose(
      row(packed.hidden, b).data,
      alone.hidden.data,
      ROW_TOLERANCE,
      `${name} hidden row ${b}`,
    );
    assertClose(
      row(packed.state, b).data,
      alone.state.data,
      ROW_TOLERANCE,
      `${name} state row ${b}`,
    );
  }
}

for (const backend of BACKEND_NAMES) {
  Deno.test({
    name: `each row of a packed batch equals the js reference run alone at its length (${backend})`,
    ignore: !isAvailable(backend),
    fn: async () => {
      const references = everyModel("js");
      for (const [i, model] of everyModel(backend).entries()) {
        const x = randn([B, T, I], { seed: 10 + i });
        const init = { hidden: randn([1, B, H], { seed: 20 + i }), state: randn([model.k, B, H]) };
        for (const lengths of [LENGTHS, new Int32Array([1, 3, 2, 4]), [T, T, T, 3]]) {
          const packed = await model.forward(x, { ...init, lengths });
          await assertRowsMatch(model.constructor.name, packed, references[i], x, init, [
            ...lengths,
          ]);
        }
        const zeroState = references[i].initHidden(x);
        const fromZeros = await model.forward(x, { lengths: LENGTHS });
        await assertRowsMatch("zeros", fromZeros, references[i], x, zeroState, LENGTHS);
        model.dispose();
      }
    },
  });

  Deno.test({
    name: `training through lengths: gradients equal the sum of per-row runs (${backend})`,
    ignore: !isAvailable(backend),
    fn: async () => {
      for (const [i, model] of everyModel(backend).entries()) {
        model.train();
        const k = model.k;
        const w = {
          output: randn([B, T, H], { seed: 30 + i }),
          hidden: randn([1, B, H], { seed: 40 + i }),
          state: randn([k, B, H], { seed: 50 + i }),
        };
        const loss = (r: { output: Tensor; hidden: Tensor; state: Tensor }, ws: typeof w) =>
          add(
            add(sum(mul(r.output, ws.output)), sum(mul(r.hidden, ws.hidden))),
            sum(mul(r.state, ws.state)),
          );
        const x = requiresGrad(randn([B, T, I], { seed: 60 + i }));
        const hidden = requiresGrad(randn([1, B, H], { seed: 70 + i }));
        const state = requiresGrad(randn([k, B, H], { seed: 80 + i }));
        await loss(await model.forward(x, { hidden, state, lengths: LENGTHS }), w).backward();
        await model.sync(); // webgpu keeps the gradients on the device
        const packedGrads = model.parameters().map((p) => p.grad!.data.slice());
        model.parameters().forEach((p) => (p.grad = null));

        for (const [b, length] of LENGTHS.entries()) {
          const xb = requiresGrad(steps(x, b, length));
          const hb = requiresGrad(row(hidden, b)), sb = requiresGrad(row(state, b));
          const alone = await model.forward(xb, { hidden: hb, state: sb });
          const wb = {
            output: steps(w.output, b, length),
            hidden: row(w.hidden, b),
            state: row(w.state, b),
          };
          await loss(alone, wb).backward();
          const xGrad = steps(x.grad!, b, T).data;
          assertClose(
            xGrad.subarray(0, length * I),
            xb.grad!.data,
            ROW_TOLERANCE,
            `x.grad row ${b}`,
          );
          assert.ok(xGrad.subarray(length * I).every((v) => v === 0), "no gradient past length");
          assertClose(
            row(hidden.grad!, b).data,
            hb.grad!.data,
            ROW_TOLERANCE,
            `hidden.grad row ${b}`,
          );
          assertClose(
            row(state.grad!, b).data,
            sb.grad!.data,
            ROW_TOLERANCE,
            `state.grad row ${b}`,
          );
        }
        await model.sync();
        model.parameters().forEach((p, j) =>
          assertClose(packedGrads[j], p.grad!.data, ROW_TOLERANCE, p.name)
        );
        model.dispose();
      }
    },
  });
}

Deno.test("lengths gradients agree with finite differences (js)", async () => {
  const model = new ArrayLSTM(2, 3, 2, { backend: "js", seed: 7 });
  const x = randn([3, 4, 2], { seed: 8 });
  const hidden = randn([1, 3, 3], { seed: 9 });
  const lengths = [2, 4, 1];
  const w = randn([3, 4, 3], { seed: 10 });
  const lossOf = async (xs: Tensor, h: Tensor): Promise<TrackedTensor> => {
    const r = await model.forward(xs, {
      hidden: h,
      state: randn([2, 3, 3], { seed: 11 }),
      lengths,
    });
    return add(sum(mul(r.output, w)), sum(r.hidden));
  };
  const xLeaf = requiresGrad(x), hLeaf = requiresGrad(hidden);
  await (await lossOf(xLeaf, hLeaf)).backward();
  const eps = 1e-2;
  const probe = async (t: Tensor, i: number, grad: number, name: string) => {
    const moved = (delta: number) => {
      const data = t.data.slice();
      data[i] += delta;
      return { shape: t.shape, data };
    };
    const [plus, minus] = t === x
      ? [await lossOf(moved(eps), hidden), await lossOf(moved(-eps), hidden)]
      : [await lossOf(x, moved(eps)), await lossOf(x, moved(-eps))];
    const numeric = (plus.data[0] - minus.data[0]) / (2 * eps);
    assert.ok(Math.abs(numeric - grad) < 3e-3, `${name}[${i}]: ${grad} vs ${numeric}`);
  };
  for (let i = 0; i < x.data.length; i += 3) await probe(x, i, xLeaf.grad!.data[i], "x");
  for (let i = 0; i < hidden.data.length; i++) await probe(hidden, i, hLeaf.grad!.data[i], "h0");
});

Deno.test("forward rejects bad lengths, naming lengths", async () => {
  const model = new LSTM(I, H, { backend: "js", seed: 1 });
  const x = randn([2, 3, I], { seed: 1 });
  const cases: [unknown, string, RegExp][] = [
    [[1], "RangeError", /lengths must have one entry per sequence of x \(batch = 2\), got 1/],
    [[1, 4], "RangeError", /lengths\[1\] must be an integer in \[1, seqLen = 3\].*got 4/],
    [[0, 1], "RangeError", /lengths\[0\] must be an integer in \[1, seqLen = 3\].*got 0/],
    [[1.5, 1], "RangeError", /lengths\[0\] must be an integer .* got 1\.5/],
    [new Float32Array([1, 1]), "TypeError", /lengths must be an array or Int32Array/],
    ["12", "TypeError", /lengths must be an array or Int32Array/],
  ];
  for (const [lengths, name, message] of cases) {
    await assert.rejects(
      () => model.forward(x, { lengths: lengths as number[] }),
      { name, message },
    );
  }
});

Deno.test("lengths are never modified, and x may be reused as soon as forward returns", async () => {
  const model = new ArrayLSTM(I, H, 2, { backend: "wasm", seed: 1 });
  const x = randn([B, T, I], { seed: 2 });
  const lengths = [3, 5, 1, 2];
  const expected = await model.forward(x, { lengths });
  const buffer = { shape: x.shape, data: x.data.slice() };
  const pending = model.forward(buffer, { lengths });
  buffer.data.fill(7);
  assert.deepEqual((await pending).output.data, expected.output.data);
  assert.deepEqual(lengths, [3, 5, 1, 2]);
  model.dispose();
});

class MeanLanes extends ArrayLSTM {
  override updateHidden(outputs: Tensor, states: Tensor): Tensor {
    const sum = super.updateHidden(outputs, states);
    return { shape: sum.shape, data: sum.data.map((v) => v / this.k) };
  }
}

Deno.test("a subclass running hooks stops each row at its length", async () => {
  const model = new MeanLanes(I, H, 3, { backend: "js", seed: 3 });
  const x = randn([B, T, I], { seed: 4 });
  const init = model.initHidden(x);
  await assertRowsMatch("hooks", await model.forward(x, { lengths: LENGTHS }), model, x, init, [
    ...LENGTHS,
  ]);
});

for (const backend of CPU_BACKENDS) {
  Deno.test(`a hot reload during a packed call: it finishes with the old weights (${backend})`, async () => {
    const model = new StochasticArrayLSTM(I, H, 2, { backend, seed: 1 });
    const other = new StochasticArrayLSTM(I, H, 2, { backend, seed: 2 });
    const x = randn([B, T, I], { seed: 3 });
    const before = await model.forward(x, { lengths: LENGTHS });
    const after = await other.forward(x, { lengths: LENGTHS });
    const pending = model.forward(x, { lengths: LENGTHS });
    await Promise.resolve();
    model.loadStateDict(other.stateDict());
    assert.deepEqual((await pending).output.data, before.output.data);
    assert.deepEqual((await model.forward(x, { lengths: LENGTHS })).output.data, after.output.data);
    model.dispose();
    other.dispose();
  });
}
