/**
 * Times this package's models on the WASM backend, the way `bench/compare.ts` reports them: calls
 * to warm up for at least {@linkcode WARM_UP_MS}, then the median of at least `runs` calls that
 * take at least {@linkcode TIMED_MS} together, in ms per time step. Shared by the Deno run
 * (in `compare.ts`'s own process) and the Node run (`bench/node_forward.ts`, bundled), so both
 * runtimes time exactly the same code.
 *
 * @module
 */

import { sum } from "../mod.ts";
import type { BackendName, LSTM, Tensor } from "../mod.ts";
import { type BenchConfig, makeInput, makeModel, MODELS } from "./_configs.ts";

/**
 * V8 runs a wasm function as baseline code until its optimized code is ready, and uses that only
 * from the function's next call: under Node 20 the latency config's first 5 calls ran 1.5× slower
 * than calls 40 to 200 (under Deno 1.1×). So every model warms up this long before it is timed.
 */
export const WARM_UP_MS = 500;
/** Calls are timed for at least this long (short calls are many, as the peers' `timeRuns` does). */
export const TIMED_MS = 1000;
/** Most timed calls per model. */
const MAX_RUNS = 200;

/** What to time: at least `runs` calls, of forwards or of training steps. */
export interface TimingOptions {
  runs: number;
  train: boolean;
  /** Where ours runs (default `"wasm"`). */
  backend?: BackendName;
  /** The model classes to time (default: all). */
  models?: readonly typeof MODELS[number][];
}

/** The middle of `values` (the upper one of the two for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One forward, or with `train` a training step as the yardstick's: forward, sum, backward. */
async function callOnce(model: LSTM, x: Tensor, train: boolean): Promise<void> {
  if (!train) {
    await model.forward(x);
    return;
  }
  const { output } = await model.forward(x);
  await sum(output).backward();
  for (const parameter of model.parameters()) parameter.grad = null;
}

/**
 * Milliseconds per time step of `call` over `seqLen` steps: warmed up for {@linkcode WARM_UP_MS},
 * then the median of at least `runs` calls that take {@linkcode TIMED_MS} together.
 */
export async function timeCalls(
  call: () => Promise<unknown>,
  seqLen: number,
  runs: number,
): Promise<number> {
  const warmUpStarted = performance.now();
  for (let done = 0; done < 2 || performance.now() - warmUpStarted < WARM_UP_MS; done++) {
    await call();
  }
  const times: number[] = [];
  const timingStarted = performance.now();
  while (
    times.length < runs ||
    (times.length < MAX_RUNS && performance.now() - timingStarted < TIMED_MS)
  ) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  return median(times) / seqLen;
}

/** Milliseconds per time step of the model classes at `config`, by class name. */
export async function timeOurs(
  config: BenchConfig,
  { runs, train, models = MODELS, backend = "wasm" }: TimingOptions,
): Promise<Map<typeof MODELS[number], number>> {
  const x = makeInput(config);
  const result = new Map<typeof MODELS[number], number>();
  for (const kind of models) {
    // Not `using`: Node 20 cannot parse it, and this module runs there too.
    const model = makeModel(kind, config, backend);
    try {
      if (train) model.train();
      result.set(kind, await timeCalls(() => callOnce(model, x, train), config.seqLen, runs));
    } finally {
      model.dispose();
    }
  }
  return result;
}
