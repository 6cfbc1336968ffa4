/**
 * Bidirectional with `lengths` (torch's packed bidirectional semantics) against running each
 * sequence alone: outputs, final states and input gradients; in a Sequential too.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  Bidirectional,
  Embedding,
  GRU,
  LastStep,
  Linear,
  LSTM,
  randn,
  requiresGrad,
  Sequential,
  sum,
  type Tensor,
} from "../mod.ts";
import { assertClose, TOLERANCE } from "./_assert.ts";

const js = { backend: "js" } as const;
const [B, T, I, H] = [3, 5, 2, 3];
const LENGTHS = [5, 2, 3];

/** Steps `[0, length)` of sequence `b` of `x`, as a batch of one. */
function alone(x: Tensor, b: number, length: number): Tensor {
  const F = x.shape[2];
  return { shape: [1, length, F], data: x.data.slice(b * T * F, (b * T + length) * F) };
}

function pair(): Bidirectional {
  return new Bidirectional(
    new LSTM(I, H, { ...js, seed: 1 }),
    new ArrayLSTM(I, H, 2, { ...js, seed: 2 }),
  );
}

Deno.test("each sequence of a padded batch is read as if alone, both directions", async () => {
  const bi = pair().train();
  const x = requiresGrad(randn([B, T, I], { seed: 3 }));
  const { output, hidden, state } = await bi.forward(x, { lengths: LENGTHS });
  await sum(output).backward();
  for (const [b, length] of LENGTHS.entries()) {
    const one = requiresGrad(alone(x, b, length));
    const want = await bi.forward(one);
    await sum(want.output).backward();
    const rows = output.data.subarray(b * T * 2 * H, (b * T + length) * 2 * H);
    assertClose(rows, want.output.data, TOLERANCE.float32, `output of sequence ${b}`);
    const past = output.data.subarray((b * T + length) * 2 * H, (b + 1) * T * 2 * H);
    assert.ok(past.every((v) => v === 0), `zeros past length ${length}`);
    for (const d of [0, 1]) {
      const got = hidden.data.subarray((d * B + b) * H, (d * B + b + 1) * H);
      assertClose(got, want.hidden.data.subarray(d * H, (d + 1) * H), TOLERANCE.float32, "hidden");
    }
    assert.deepEqual(state!.shape, [1 + 2, B, H]);
    const grad = x.grad!.data.subarray(b * T * I, (b * T + length) * I);
    assertClose(grad, one.grad!.data, TOLERANCE.float32, `input gradient of sequence ${b}`);
  }
});

Deno.test("all lengths = seqLen is the plain run, number for number", async () => {
  const bi = pair();
  const x = randn([B, T, I], { seed: 4 });
  const plain = await bi.forward(x);
  const packed = await bi.forward(x, { lengths: [T, T, T] });
  assertClose(packed.output.data, plain.output.data, TOLERANCE.float32, "output");
});

Deno.test("a Sequential classifier with a Bidirectional honours lengths", async () => {
  const model = new Sequential([
    new Embedding(7, I, { seed: 5 }),
    pair(),
    new LastStep(),
    new Linear(2 * H, 2, { seed: 6 }),
  ]);
  const ids = [[1, 2, 3, 4, 5], [6, 1, 0, 0, 0], [2, 2, 3, 0, 0]];
  const scores = await model.forward(ids, { lengths: LENGTHS });
  for (const [b, length] of LENGTHS.entries()) {
    const one = await model.forward([ids[b].slice(0, length)]);
    assertClose(scores.data.subarray(b * 2, b * 2 + 2), one.data, TOLERANCE.float32, `row ${b}`);
  }
});

Deno.test("lengths with a direction that cannot stop at them is refused by name", async () => {
  const bi = new Bidirectional(new LSTM(I, H), new GRU(I, H));
  await assert.rejects(
    () => bi.forward(randn([B, T, I]), { lengths: LENGTHS }),
    /init\.lengths needs both directions to stop at a length .* the backward layer is a GRU/,
  );
});
