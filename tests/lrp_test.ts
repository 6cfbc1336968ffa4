/**
 * LRP against the original numpy implementation (tests/testdata/golden_lrp), conservation, and
 * the errors of bad calls.
 */

import assert from "node:assert/strict";
import { kerasLrpNetwork, loadSafetensors, lrp, randn, type Tensor, zeros } from "../mod.ts";
import { fixtureIndex, readFixture } from "./_testdata.ts";
import { kerasWeightList } from "./_keras_lrp.ts";
import { CPU_BACKENDS } from "./_backends.ts";

interface LrpCase {
  file: string;
  eps: number;
  bias_factor: number;
  bidirectional: boolean;
}

/** Largest |a − b| relative to the largest |b| of the case. */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  const scale = Math.max(...expected.map(Math.abs), 1e-12);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / scale);
  }
  return worst;
}

for (const entry of fixtureIndex("golden_lrp") as unknown as LrpCase[]) {
  for (const backend of CPU_BACKENDS) {
    Deno.test(`lrp matches the original on ${entry.file} (${backend})`, async () => {
      const record = loadSafetensors(readFixture("golden_lrp", entry.file));
      const weights: Record<string, Tensor> = {
        W_x: record.W_x,
        W_h: record.W_h,
        b: record.b,
        W_x_backward: record.W_x_bw,
        W_h_backward: record.W_h_bw,
        b_backward: record.b_bw,
        W_dense: record.W_dense,
        b_dense: record.b_dense,
      };
      const { network, dense } = kerasLrpNetwork(
        weights as unknown as Parameters<typeof kerasLrpNetwork>[0],
        { backend },
      );
      const target = Array.from(record.target.data);
      const result = await lrp(network, dense, record.x, {
        target,
        eps: entry.eps,
        biasFactor: entry.bias_factor,
      });
      const errors = {
        scores: relativeError(result.scores.data, record.y_hat.data),
        relevance: relativeError(result.relevance.data, record.R_x.data),
        rest: relativeError(result.rest.data, record.R_rest.data),
      };
      assert.ok(errors.scores < 1e-5, `scores: ${errors.scores}`);
      assert.ok(errors.relevance < 1e-4, `relevance: ${errors.relevance}`);
      assert.ok(errors.rest < 1e-4, `rest: ${errors.rest}`);
    });
  }
}

Deno.test("kerasLrpNetwork takes the TF2 list and names a wrong entry", async () => {
  const [I, H, C] = [3, 2, 2];
  const list = kerasWeightList(I, H, C);
  const { network, dense } = kerasLrpNetwork(list, { backend: "js" });
  const { relevance, rest, scores, target } = await lrp(network, dense, randn([1, 4, I]), {
    biasFactor: 1,
  });
  const total = relevance.data.reduce((a, b) => a + b, 0) + rest.data[0];
  assert.ok(Math.abs(total - scores.data[target[0]]) < 1e-5);
  const wrong = (i: number, shape: number[]) => list.map((t, j) => (j === i ? zeros(shape) : t));
  assert.throws(() => kerasLrpNetwork(wrong(1, [H, 3 * H])), /weights.W_h must have shape/);
  assert.throws(
    () => kerasLrpNetwork(wrong(3, [I + 1, 4 * H])),
    /weights.W_x_backward .*got \[4, 8\]/,
  );
  assert.throws(() => kerasLrpNetwork(wrong(5, [H])), /weights.b_backward/);
  assert.throws(
    () => kerasLrpNetwork(wrong(6, [H, C])),
    /weights.W_dense .*\(2·hiddenSize, classes\)/,
  );
  assert.throws(() => kerasLrpNetwork(wrong(7, [C + 1])), /weights.b_dense/);
  assert.throws(() => kerasLrpNetwork(list.slice(0, 7)), /8 entries.*got 7/);
});
