/**
 * The WASM backend beside the TypeScript one (the baseline of each group, so `deno bench` prints
 * the ratio) for every model at the documentation's configuration, a large one and a batch-1
 * latency case:
 *
 * ```sh
 * deno bench --allow-read --allow-env bench/wasm_bench.ts
 * ```
 *
 * The TypeScript backend needs minutes per iteration on the large configuration: where one
 * iteration would take over 20 s (estimated from one time step) its bench is skipped, with a
 * note, and the WASM result stands alone. Per-timestep time and GFLOP/s: `bench/wasm_report.ts`.
 *
 * @module
 */

import { type BenchConfig, CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

/** Longest TypeScript iteration worth waiting for. */
const JS_LIMIT_MS = 20_000;

/** Iterations per bench: enough for a stable mean, few enough for the slow baselines. */
const ITERATIONS: Record<string, { wasm: number; js: number }> = {
  doc: { wasm: 10, js: 2 },
  big: { wasm: 3, js: 1 },
  latency: { wasm: 30, js: 3 },
};

/** Estimated TypeScript time of one full forward: one time step, times `seqLen`. */
async function estimateJsMs(kind: typeof MODELS[number], config: BenchConfig): Promise<number> {
  const step = { ...config, seqLen: 1 };
  using model = makeModel(kind, step, "js");
  const x = makeInput(step);
  await model.forward(x); // warm up the JIT
  const start = performance.now();
  await model.forward(x);
  return (performance.now() - start) * config.seqLen;
}

for (const config of [CONFIGS.doc, CONFIGS.big, CONFIGS.latency]) {
  const { batch: B, seqLen: T, inputSize: I, hiddenSize: H, k } = config;
  const shape = `B=${B} T=${T} I=${I} H=${H}${config.name === "latency" ? "" : ` k=${k}`}`;
  const x = makeInput(config);
  const iterations = ITERATIONS[config.name];
  for (const kind of MODELS) {
    const group = `${config.name} ${kind} (${shape})`;
    const estimate = await estimateJsMs(kind, config);
    const runJs = estimate <= JS_LIMIT_MS;
    if (runJs) {
      const js = makeModel(kind, config, "js");
      Deno.bench({
        name: `${kind} js`,
        group,
        baseline: true,
        n: iterations.js,
        warmup: 1,
        async fn() {
          await js.forward(x);
        },
      });
    } else {
      console.log(
        `${group}: js skipped, one iteration would take ~${Math.round(estimate / 1000)} s`,
      );
    }
    const wasm = makeModel(kind, config, "wasm");
    Deno.bench({
      name: `${kind} wasm`,
      group,
      baseline: !runJs,
      n: iterations.wasm,
      warmup: 2,
      async fn() {
        await wasm.forward(x);
      },
    });
  }
}
