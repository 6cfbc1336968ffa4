/**
 * The TypeScript backend's forward at the documentation's configuration: the baseline the fast
 * backends are compared with. Per-timestep time is the reported time divided by `seqLen` (10).
 *
 * @module
 */

import { CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

const config = CONFIGS.doc;
const x = makeInput(config);
for (const kind of MODELS) {
  const model = makeModel(kind, config, "js");
  Deno.bench({
    name: `${kind} js, doc config (B=1024 T=10 I=10 H=128 k=4)`,
    group: `doc ${kind}`,
    n: 3,
    warmup: 1,
    async fn() {
      await model.forward(x);
    },
  });
}
