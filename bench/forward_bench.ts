/**
 * Every backend side by side: each model's forward on WebGPU (when an adapter exists), WASM and
 * TypeScript, at the documentation's configuration, a large one and a batch-1 latency case. In each
 * group the TypeScript backend is the baseline, so `deno bench` prints the speed-ups; where one
 * TypeScript iteration would take over 20 s it is skipped (with a note) and WASM is the baseline.
 * Time per step is the reported time divided by `T`; for GFLOP/s see `bench/wasm_report.ts`.
 *
 * ```sh
 * deno task bench
 * ```
 *
 * @module
 */

import type { ResolvedBackendName } from "../mod.ts";
import { concreteBackendNames, selectBackend } from "../src/backends/select.ts";
import { type BenchConfig, CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

/** Longest TypeScript iteration worth waiting for. */
const JS_LIMIT_MS = 20_000;

/**
 * Timed iterations per configuration and backend (after warm-ups that compile and JIT); a
 * backend not listed gets the WASM backend's count.
 */
const ITERATIONS: Record<BenchConfig["name"], Partial<Record<ResolvedBackendName, number>>> = {
  doc: { webgpu: 5, wasm: 10, js: 2 },
  big: { webgpu: 2, wasm: 3, js: 1 },
  latency: { webgpu: 5, wasm: 30, js: 3 },
};

/** Every registered backend, with whether it can run here. */
const BACKENDS: { name: ResolvedBackendName; available: boolean }[] = [];
for (const name of concreteBackendNames()) {
  const available = await selectBackend(name).then(() => true, (error: Error) => {
    console.log(`${name} skipped: ${error.message.split(". ")[0]}`);
    return false;
  });
  BACKENDS.push({ name, available });
}

/** TypeScript time of one full forward, estimated from one time step. */
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
  const x = makeInput(config);
  for (const kind of MODELS) {
    const group = `${config.name} ${kind} (B=${B} T=${T} I=${I} H=${H}${
      kind === "LSTM" ? "" : ` k=${k}`
    })`;
    const estimate = await estimateJsMs(kind, config);
    const runJs = estimate <= JS_LIMIT_MS;
    if (!runJs) {
      console.log(
        `${group}: js skipped, one iteration would take ~${Math.round(estimate / 1000)} s`,
      );
    }
    for (const { name: backend, available } of BACKENDS) {
      const ignore = backend === "js" ? !runJs : !available;
      const model = ignore ? null : makeModel(kind, config, backend);
      Deno.bench({
        name: `${kind} ${backend}`,
        group,
        baseline: backend === (runJs ? "js" : "wasm"),
        ignore,
        n: ITERATIONS[config.name][backend] ?? ITERATIONS[config.name].wasm,
        warmup: backend === "js" ? 1 : 2,
        async fn() {
          await model!.forward(x);
        },
      });
    }
  }
}
