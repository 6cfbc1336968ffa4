/**
 * One training step of the documentation's network per backend: `ArrayLSTM(10, 128, 4) ->
 * Linear(128, 10)`, batch 1024, 10 steps, one-hot input; forward, `nllLoss`, backward and an Adam
 * step (`docTraining` in `_configs.ts`). WASM is the baseline. The TypeScript backend is skipped: it
 * trains through the float64 oracle, about a minute per step at this size (see
 * `bench/compare.ts --train` for the comparison with the reference package under PyTorch).
 *
 * ```sh
 * deno bench --allow-read --allow-env bench/train_bench.ts
 * ```
 *
 * @module
 */

import { concreteBackendNames, selectBackend } from "../src/backends/select.ts";
import { docTraining } from "./_configs.ts";

const group = "doc training step (ArrayLSTM(10, 128, 4) -> Linear(128, 10), B=1024 T=10)";
// Every registered backend but the TypeScript one (see above).
for (const backend of concreteBackendNames().filter((name) => name !== "js")) {
  const ignore = await selectBackend(backend).then(() => false, (error: Error) => {
    console.log(`${backend} skipped: ${error.message.split(". ")[0]}`);
    return true;
  });
  const training = ignore ? null : docTraining(backend);
  Deno.bench({
    name: `train step ${backend}`,
    group,
    baseline: backend === "wasm",
    ignore,
    n: backend === "wasm" ? 5 : 2,
    warmup: 1,
    async fn() {
      await training!.step();
    },
  });
}
