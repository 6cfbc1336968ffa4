/**
 * Issue 21, life cycle: `dispose()` is final for every model class, a lost WebGPU device is named
 * in the error with what to do, and nothing keeps a process alive after its last call.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  ArrayLSTM,
  AttentionArrayLSTM,
  Bidirectional,
  GRU,
  LastStep,
  Linear,
  LSTM,
  randn,
  RNN,
  Sequential,
  SGD,
  Stacked,
  StochasticArrayLSTM,
  sum,
  tensor,
} from "../mod.ts";
import type { ResolvedBackendName } from "../src/contract/mod.ts";
import { acquireGpuContext } from "../src/backends/webgpu/device.ts";
import { CPU_BACKENDS, hasWebGpu } from "./_backends.ts";

interface Disposable {
  forward(x: ReturnType<typeof randn>): Promise<unknown>;
  train(mode?: boolean): unknown;
  dispose(): void;
}

/** Every model class, with inputs of size 3, on `backend`. */
function everyModel(backend: ResolvedBackendName): [string, () => Disposable][] {
  const options = { backend, seed: 1 } as const;
  return [
    ["LSTM", () => new LSTM(3, 4, options)],
    ["ArrayLSTM", () => new ArrayLSTM(3, 4, 2, options)],
    ["AttentionArrayLSTM", () => new AttentionArrayLSTM(3, 4, 2, options)],
    ["StochasticArrayLSTM", () => new StochasticArrayLSTM(3, 4, 2, options)],
    ["GRU", () => new GRU(3, 4, options)],
    ["RNN", () => new RNN(3, 4, options)],
    ["Stacked", () => new Stacked([new GRU(3, 4, options), new LSTM(4, 4, options)])],
    ["Bidirectional", () => new Bidirectional(new LSTM(3, 4, options), new RNN(3, 4, options))],
    [
      "Sequential",
      () => new Sequential([new LSTM(3, 4, options), new LastStep(), new Linear(4, 2)]),
    ],
  ];
}

for (const backend of CPU_BACKENDS) {
  Deno.test(`${backend}: dispose() is final for every model class, twice is a no-op`, async () => {
    const x = randn([2, 3, 3], { seed: 2 });
    for (const [name, make] of everyModel(backend)) {
      const model = make();
      await model.forward(x);
      model.dispose();
      model.dispose();
      // Sequential names its first recurrent layer.
      const owner = name === "Sequential" ? "LSTM" : name;
      const disposed = new RegExp(`this ${owner} was disposed: .*create a new one`);
      await assert.rejects(model.forward(x), disposed, `${name}: forward after dispose`);
      model.train();
      await assert.rejects(model.forward(x), disposed, `${name}: training forward`);
    }
  });

  Deno.test(`${backend}: a model declared with using is disposed at the end of its block`, async () => {
    const x = randn([1, 2, 3], { seed: 3 });
    let kept: LSTM;
    {
      using lstm = new LSTM(3, 4, { backend, seed: 1 });
      kept = lstm;
      await lstm.forward(x);
    }
    await assert.rejects(kept.forward(x), /this LSTM was disposed/);
  });
}

Deno.test({
  name: "webgpu: training after the device is lost says so, with the reason and what to do",
  ignore: !hasWebGpu,
  async fn() {
    const lstm = new LSTM(2, 3, { backend: "webgpu", seed: 1 }).train();
    const opt = new SGD(lstm.parameters(), { lr: 0.1 });
    const x = tensor([1, 2, 3, 4], [1, 2, 2]);
    const step = async () => {
      opt.zeroGrad();
      await sum((await lstm.forward(x)).output).backward();
      opt.step();
      await opt.sync();
    };
    try {
      await step();
      (await acquireGpuContext()).device.destroy();
      const lost = /the WebGPU device was lost \(destroyed[^)]*\) after training on it.*created again/;
      for (let i = 0; i < 3; i++) {
        const failure = await step().then(() => null, (error: Error) => error);
        assert.ok(failure !== null, `step ${i} after the loss should fail`);
        assert.match(failure.message, lost);
        assert.doesNotMatch(failure.message, /validation error/);
      }
      lstm.train(false);
      await assert.rejects(lstm.forward(x), lost);
    } finally {
      lstm.dispose();
    }
  },
});
