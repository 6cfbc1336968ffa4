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
      const disposed = new RegExp(`this ${name} was disposed: .*create a new one`);
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
      const lost =
        /the WebGPU device was lost \(destroyed[^)]*\) after training on it.*created again/;
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

/**
 * Runs a child `deno run` that makes one wasm forward large enough for Workers (B 64, T 100,
 * I 64, H 256: more than `COLD_CALL_FLOPS`), then `dispose()` or not (or, for `"none"`, loads
 * the module and runs nothing), and returns how long after its last line it exited, in ms.
 */
async function exitDelay(end: "dispose" | "forget" | "none"): Promise<number> {
  const mod = new URL("../mod.ts", import.meta.url).href;
  const path = await Deno.makeTempFile({ dir: "/tmp", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      path,
      `import { LSTM, randn } from ${JSON.stringify(mod)};
const lstm = new LSTM(64, 256, { backend: "wasm", seed: 1 });
if (${end !== "none"}) await lstm.forward(randn([64, 100, 64], { seed: 2 }));
if (${end === "dispose"}) lstm.dispose();
console.log("last line");
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-env", path],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let text = "", lastLine = 0;
    const killer = setTimeout(() => child.kill(), 30_000);
    try {
      for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
        text += chunk;
        if (lastLine === 0 && text.includes("last line")) lastLine = performance.now();
      }
      const status = await child.status;
      const exited = performance.now();
      assert.ok(status.success, `the child failed: ${text}`);
      assert.ok(lastLine > 0, `the child printed no last line: ${text}`);
      return exited - lastLine;
    } finally {
      clearTimeout(killer);
    }
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("a wasm forward without dispose() lets the process exit soon after its last line", async () => {
  const control = await exitDelay("none");
  const forgotten = await exitDelay("forget");
  const disposed = await exitDelay("dispose");
  // Idle workers stop after IDLE_WORKER_MS + POOLED_WORKER_MS (0.6 s), disposed ones after
  // POOLED_WORKER_MS; they used to hold the process for 2 s and 1 s. The bounds leave room for a
  // loaded machine.
  const times = `${forgotten.toFixed(0)} ms without dispose(), ${disposed.toFixed(0)} ms with ` +
    `it, ${control.toFixed(0)} ms without a forward`;
  assert.ok(forgotten - control < 1500, `exited ${times} after the last line`);
  assert.ok(disposed - control < 700, `exited ${times} after the last line`);
});
