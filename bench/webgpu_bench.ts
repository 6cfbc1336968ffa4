/**
 * The WebGPU backend beside the WASM (when `src/backends/wasm.ts` exists) and TypeScript backends,
 * through the public model API, at the documentation's configuration for every model, at a large
 * configuration and at batch 1. Per-timestep time is the reported time divided by `seqLen`.
 *
 * ```sh
 * deno bench --allow-read --allow-env bench/webgpu_bench.ts
 * ```
 *
 * Iteration counts are small because a software adapter (lavapipe) takes seconds per call at the
 * large configuration; the TypeScript backend is left out there (minutes per call).
 *
 * @module
 */

import type { BackendName } from "../mod.ts";
import { requestWebGpuBackend } from "../src/backends/webgpu.ts";
import { type BenchConfig, CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

const webgpu = await requestWebGpuBackend();
if (webgpu === null) console.log("webgpu bench skipped: navigator.gpu found no WebGPU adapter");
const wasmExists = await Deno.stat(new URL("../src/backends/wasm.ts", import.meta.url)).then(
  () => true,
  () => false,
);
if (!wasmExists) console.log("wasm bench skipped: src/backends/wasm.ts does not exist");

/** Timed iterations per backend and configuration (after one warm-up that compiles pipelines). */
const ITERATIONS: Record<BenchConfig["name"], Partial<Record<BackendName, number>>> = {
  doc: { webgpu: 5, wasm: 3, js: 2 },
  big: { webgpu: 2, wasm: 2 },
  latency: { webgpu: 5, wasm: 5, js: 3 },
};

for (const config of [CONFIGS.doc, CONFIGS.big, CONFIGS.latency]) {
  const x = makeInput(config);
  const { batch, seqLen, inputSize, hiddenSize, k } = config;
  const shape = `B=${batch} T=${seqLen} I=${inputSize} H=${hiddenSize} k=${k}`;
  for (const kind of MODELS) {
    for (const backend of ["webgpu", "wasm", "js"] as const) {
      const n = ITERATIONS[config.name][backend];
      if (n === undefined) continue;
      const ignore = backend === "webgpu" ? webgpu === null : backend === "wasm" && !wasmExists;
      const model = ignore ? null : makeModel(kind, config, backend);
      Deno.bench({
        name: `${kind} ${backend}, ${config.name} (${shape})`,
        group: `${config.name} ${kind}`,
        baseline: backend === "webgpu",
        ignore,
        n,
        warmup: 1,
        async fn() {
          await model!.forward(x);
        },
      });
    }
  }
}
