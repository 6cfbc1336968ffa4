/**
 * This package's side of `bench/compare.ts`'s Node rows: the same timing as the Deno run
 * (`bench/_time_ours.ts`), bundled by `compare.ts` and run under Node, so that a yardstick timed
 * under Node is compared with our module under Node too (Node enables V8's wasm trap handler, which
 * drops a bounds check from every wasm memory access; Deno does not).
 *
 * ```sh
 * node node_forward.mjs '{"name":"doc","batch":1024,"seqLen":10,"inputSize":10,"hiddenSize":128,"k":4,"runs":5}'
 * ```
 *
 * Times `LSTM` only (the only class the peers run); prints `RESULT {"model":"LSTM","msPerStep":…}`
 * and a `# ` line with Node's version and whether it has relaxed SIMD (Node 20 has it only behind
 * `--experimental-wasm-relaxed-simd`, so there the plain SIMD build runs).
 *
 * @module
 */

import "./_node_globals.ts";
import process from "node:process";
import type { BenchConfig } from "./_configs.ts";
import { timeOurs } from "./_time_ours.ts";
import { supportsRelaxedSimd } from "../src/backends/wasm/bindings.ts";

const { runs, ...config }: BenchConfig & { runs: number } = JSON.parse(process.argv[2]);
const simd = supportsRelaxedSimd() ? "relaxed SIMD build" : "plain SIMD build (no relaxed SIMD)";
console.log(`# Node ${process.version}, V8 ${process.versions.v8}: our ${simd}`);
for (const [model, msPerStep] of await timeOurs(config, { runs, train: false, models: ["LSTM"] })) {
  console.log(`RESULT ${JSON.stringify({ model, msPerStep })}`);
}
process.exit(0);
