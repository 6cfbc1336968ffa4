/**
 * LRP of every variant, alone, in a Bidirectional and in a Stacked, against the float64 oracle
 * (tests/_lrp_oracle.ts); conservation with `biasFactor: 1`; the errors of bad calls.
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  Bidirectional,
  GRU,
  Linear,
  lrp,
  type LrpNetwork,
  LSTM,
  randn,
  Stacked,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";
import type { CellVariant } from "../src/contract/mod.ts";
import { cellParameters } from "../src/models/lstm.ts";
import { type OracleDirection, oracleLrp } from "./_lrp_oracle.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { CPU_BACKENDS } from "./_backends.ts";

type Backend = ResolvedBackendName;

function variantOf(layer: LSTM): CellVariant {
  return { ...kindOf(layer), recurrentActivation: layer.recurrentActivation };
}

function kindOf(layer: LSTM): CellVariant {
  if (layer instanceof StochasticArrayLSTM) {
    return { kind: "stochastic", k: layer.k, maxPooling: false };
  }
  if (layer instanceof AttentionArrayLSTM) {
    return { kind: "attention", k: layer.k, maxPooling: layer.maxPooling };
  }
  if (layer instanceof ArrayLSTM) return { kind: "array", k: layer.k, maxPooling: false };
  return { kind: "lstm", k: 1, maxPooling: false };
}

function oracleDirection(layer: LSTM, reversed: boolean): OracleDirection {
  return {
    reversed,
    spec: {
      variant: variantOf(layer),
      inputSize: layer.inputSize,
      hiddenSize: layer.hiddenSize,
      params: cellParameters(layer.stateDict()),
    },
  };
}

function oracleLevels(network: LrpNetwork): OracleDirection[][] {
  const levels = network instanceof Stacked ? network.layers : [network];
  return levels.map((level) =>
    level instanceof Bidirectional
      ? [
        oracleDirection(level.forwardLayer as LSTM, false),
        oracleDirection(level.backwardLayer as LSTM, true),
      ]
      : [oracleDirection(level as LSTM, false)]
  );
}

/** Checks `lrp` against the oracle for every sequence, and conservation when `biasFactor` is 1. */
async function checkAgainstOracle(
  network: LrpNetwork,
  dense: Linear,
  x: Tensor,
  biasFactor: number,
  eps = 1e-3,
): Promise<void> {
  const [B, T, I] = x.shape;
  const result = await lrp(network, dense, x, { eps, biasFactor });
  const { weight, bias } = dense.stateDict();
  const C = dense.outFeatures, D = dense.inFeatures;
  const denseRows = {
    weight: Array.from(
      { length: C },
      (_, c) => Array.from(weight.data.subarray(c * D, (c + 1) * D)),
    ),
    bias: Array.from(bias.data),
  };
  for (let b = 0; b < B; b++) {
    const rows = Array.from(
      { length: T },
      (_, t) => Array.from(x.data.subarray((b * T + t) * I, (b * T + t + 1) * I)),
    );
    const expected = oracleLrp(
      oracleLevels(network),
      denseRows,
      rows,
      result.target[b],
      eps,
      biasFactor,
    );
    const flat = expected.relevance.flat();
    const scale = Math.max(...flat.map(Math.abs), Math.abs(expected.score));
    flat.forEach((value, i) => {
      const got = result.relevance.data[b * T * I + i];
      assert.ok(Math.abs(got - value) <= 1e-4 * scale, `relevance[${b}] #${i}: ${got} vs ${value}`);
    });
    assert.ok(Math.abs(result.rest.data[b] - expected.rest) <= 1e-4 * scale, `rest[${b}]`);
    const score = result.scores.data[b * C + result.target[b]];
    assert.ok(Math.abs(score - expected.score) <= 1e-5 * (1 + Math.abs(score)), `score[${b}]`);
    if (biasFactor === 1) {
      let total = result.rest.data[b];
      for (let i = 0; i < T * I; i++) total += result.relevance.data[b * T * I + i];
      assert.ok(
        Math.abs(total - score) <= 1e-5 * (1 + Math.abs(score)),
        `conservation[${b}]: ${total} vs ${score}`,
      );
    }
  }
}

const makers: [string, (backend: Backend, seed: number) => LSTM][] = [
  ["LSTM", (backend, seed) => new LSTM(3, 4, { backend, seed })],
  ["ArrayLSTM", (backend, seed) => new ArrayLSTM(3, 4, 3, { backend, seed })],
  ["AttentionArrayLSTM", (backend, seed) => new AttentionArrayLSTM(3, 4, 3, { backend, seed })],
  [
    "AttentionArrayLSTM (maxPooling)",
    (backend, seed) => new AttentionArrayLSTM(3, 4, 2, { backend, seed, maxPooling: true }),
  ],
  ["StochasticArrayLSTM", (backend, seed) => new StochasticArrayLSTM(3, 4, 3, { backend, seed })],
  [
    "StochasticArrayLSTM (hard_sigmoid)",
    (backend, seed) =>
      new StochasticArrayLSTM(3, 4, 3, { backend, seed, recurrentActivation: "hard_sigmoid" }),
  ],
  [
    "LSTM (hard_sigmoid)",
    (backend, seed) => new LSTM(3, 4, { backend, seed, recurrentActivation: "hard_sigmoid" }),
  ],
];

for (const backend of CPU_BACKENDS) {
  for (const [name, make] of makers) {
    for (const biasFactor of [0, 1]) {
      Deno.test(`lrp of ${name} matches the oracle, biasFactor ${biasFactor} (${backend})`, async () => {
        const x = randn([3, 6, 3], { seed: 7 });
        await checkAgainstOracle(make(backend, 1), new Linear(4, 3, { seed: 2 }), x, biasFactor);
        await checkAgainstOracle(
          new Bidirectional(make(backend, 3), make(backend, 4)),
          new Linear(8, 3, { seed: 5 }),
          x,
          biasFactor,
        );
      });
    }
  }
  Deno.test(`lrp through Stacked (bi)LSTM and array layers conserves relevance (${backend})`, async () => {
    const network = new Stacked([
      new Bidirectional(
        new LSTM(3, 4, { backend, seed: 1 }),
        new ArrayLSTM(3, 4, 2, { backend, seed: 2 }),
      ),
      new Bidirectional(
        new StochasticArrayLSTM(8, 5, 2, { backend, seed: 3 }),
        new AttentionArrayLSTM(8, 5, 2, { backend, seed: 4 }),
      ),
      new LSTM(10, 4, { backend, seed: 5 }),
    ]);
    const x = randn([2, 5, 3], { seed: 9 });
    for (const biasFactor of [0, 1]) {
      await checkAgainstOracle(network, new Linear(4, 2, { seed: 6 }), x, biasFactor);
    }
  });
}

Deno.test("ArrayLSTM with one lane explains exactly like the LSTM with its weights", async () => {
  const array = new ArrayLSTM(3, 4, 1, { backend: "js", seed: 1 });
  const lstm = new LSTM(3, 4, { backend: "js" });
  lstm.loadStateDict(array.stateDict());
  const dense = new Linear(4, 2, { seed: 2 });
  const x = randn([2, 5, 3], { seed: 3 });
  const a = await lrp(array, dense, x, { target: 1 });
  const b = await lrp(lstm, dense, x, { target: 1 });
  assert.deepEqual(a.relevance.data, b.relevance.data);
});

Deno.test("lrp explains the predicted class by default", async () => {
  const lstm = new LSTM(3, 4, { backend: "js", seed: 1 });
  const { scores, target } = await lrp(
    lstm,
    new Linear(4, 5, { seed: 2 }),
    randn([4, 3, 3], { seed: 3 }),
  );
  target.forEach((c, b) => {
    const row = Array.from(scores.data.subarray(b * 5, b * 5 + 5));
    assert.equal(c, row.indexOf(Math.max(...row)));
  });
});

Deno.test("lrp rejects bad calls with errors naming what was given", async () => {
  const lstm = new LSTM(3, 4, { backend: "js", seed: 1 });
  const dense = new Linear(4, 2, { seed: 2 });
  const x = randn([2, 5, 3], { seed: 3 });
  await assert.rejects(
    () => lrp(lstm, dense, x, { target: 2 }),
    /target must be a class in \[0, 2\).*got 2/,
  );
  await assert.rejects(() => lrp(lstm, dense, x, { target: [0, -1] }), /target\[1\].*got -1/);
  await assert.rejects(() => lrp(lstm, dense, x, { target: [0] }), /one class per sequence \(2\)/);
  await assert.rejects(
    () => lrp(lstm, new Linear(8, 2), x),
    /width 4, got a Linear with inFeatures 8/,
  );
  class Custom extends LSTM {
    override initHidden(input: Tensor) {
      return super.initHidden(input);
    }
  }
  await assert.rejects(
    () => lrp(new Custom(3, 4, { backend: "js" }), dense, x),
    /network has no LRP rule.*got Custom with overridden hooks/,
  );
  await assert.rejects(
    () =>
      lrp(
        new Stacked([
          lstm,
          {
            inputSize: 4,
            hiddenSize: 4,
            outputSize: 4,
            hiddenRows: 1,
            stateRows: 0,
            forward: () => null,
          } as never,
        ]),
        dense,
        x,
      ),
    /network.layers\[1\] has no LRP rule/,
  );
  await assert.rejects(() => lrp(lstm, dense, randn([2, 5, 4])), /x has the wrong shape/);
  await assert.rejects(
    () => lrp(new Bidirectional(lstm, new GRU(3, 4, { backend: "js" })), new Linear(8, 2), x),
    /network.backwardLayer has no LRP rule.*got GRU/,
  );
});
