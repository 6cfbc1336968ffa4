/**
 * The cost of LRP against the network's own forward: a bidirectional LSTM (B 256, T 50, I 32,
 * H 64) and a dense layer, on wasm by default (`--backend js|wasm|webgpu`). Prints milliseconds
 * per forward, per LRP call, and their ratio. A script, run once:
 * `deno run --allow-read --allow-env bench/lrp_bench.ts`.
 *
 * @module
 */

import { type BackendName, Bidirectional, Linear, lrp, LSTM, randn } from "../mod.ts";

const backendFlag = Deno.args.indexOf("--backend");
const backend = (backendFlag >= 0 ? Deno.args[backendFlag + 1] : "wasm") as BackendName;
const [B, T, I, H, C] = [256, 50, 32, 64, 5];
const network = new Bidirectional(
  new LSTM(I, H, { backend, seed: 1 }),
  new LSTM(I, H, { backend, seed: 2 }),
);
const dense = new Linear(2 * H, C, { seed: 3 });
const x = randn([B, T, I], { seed: 4 });

async function time(label: string, run: () => Promise<unknown>, repeats: number): Promise<number> {
  await run(); // warm-up: compile, allocate
  const start = performance.now();
  for (let i = 0; i < repeats; i++) await run();
  const ms = (performance.now() - start) / repeats;
  console.log(`${label}: ${ms.toFixed(1)} ms`);
  return ms;
}

const forward = await time(`forward (${backend})`, async () => {
  const { output } = await network.forward(x);
  await dense.forward({ shape: [B, 2 * H], data: output.data.subarray(0, B * 2 * H) });
}, 5);
const explain = await time(`lrp (${backend})`, () => lrp(network, dense, x), 3);
console.log(`lrp / forward: ${(explain / forward).toFixed(2)}`);
network.dispose();
