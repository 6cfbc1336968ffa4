/**
 * A table of the WASM backend's speed: ms per timestep and GFLOP/s for every model and benchmark
 * configuration, on two threads and one, with the relaxed-SIMD build (the default
 * where the runtime has it) and the plain SIMD one, beside the TypeScript backend (estimated from
 * one time step) and the bare GEMM micro-kernel's rate on this machine:
 *
 * ```sh
 * deno run --allow-read --allow-env bench/wasm_report.ts [doc,big,latency]
 * ```
 *
 * FLOPs per step = 2·B·(I+H)·4kH, plus 2·B·I·kH for the attention projection.
 *
 * @module
 */

import type { CellSpec, SequenceInput, VariantKind } from "../src/contract/mod.ts";
import { jsBackend } from "../src/backends/js/mod.ts";
import { cellParameters } from "../src/models/lstm.ts";
import { createWasmBackend, type WasmBackendOptions } from "../src/backends/wasm/mod.ts";
import { instantiate } from "../src/backends/wasm/bindings.ts";
import {
  type BenchConfig,
  CONFIGS,
  flopsPerStep,
  makeInput,
  makeModel,
  MODELS,
} from "./_configs.ts";

const KINDS: Record<typeof MODELS[number], VariantKind> = {
  LSTM: "lstm",
  ArrayLSTM: "array",
  AttentionArrayLSTM: "attention",
  StochasticArrayLSTM: "stochastic",
};

/** Runs per measurement; the median is reported (the machine is noisy). */
const RUNS: Record<string, number> = { doc: 7, big: 3, latency: 21 };

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The cell of a benchmark model, as the backends see it. */
function specOf(kind: typeof MODELS[number], config: BenchConfig): CellSpec {
  using model = makeModel(kind, config, "js");
  return {
    variant: { kind: KINDS[kind], k: kind === "LSTM" ? 1 : config.k, maxPooling: false },
    inputSize: config.inputSize,
    hiddenSize: config.hiddenSize,
    params: cellParameters(model.stateDict()),
  };
}

function inputOf(spec: CellSpec, config: BenchConfig): SequenceInput {
  const { batch: B, seqLen: T, hiddenSize: H } = config;
  return {
    batch: B,
    seqLen: T,
    x: makeInput(config).data,
    hidden: new Float32Array(B * H),
    state: new Float32Array(spec.variant.k * B * H),
  };
}

/**
 * Median ms per timestep of `runs` forwards on each of `backends` (after a warm-up), taking turns
 * so that a slow spell of a noisy machine hits them all alike.
 */
async function wasmMsPerStep(
  spec: CellSpec,
  input: SequenceInput,
  backends: WasmBackendOptions[],
  runs: number,
): Promise<number[]> {
  const runners = await Promise.all(
    backends.map((options) => createWasmBackend(options).compile(spec)),
  );
  try {
    const times: number[][] = runners.map(() => []);
    for (const runner of runners) await runner.run(input);
    for (let i = 0; i < runs; i++) {
      for (const [r, runner] of runners.entries()) {
        const start = performance.now();
        await runner.run(input);
        times[r].push(performance.now() - start);
      }
    }
    return times.map((t) => median(t) / input.seqLen);
  } finally {
    for (const runner of runners) runner.dispose();
  }
}

/** TypeScript ms per timestep, from one step (after a warm-up step). */
async function jsMsPerStep(spec: CellSpec, input: SequenceInput): Promise<number> {
  const { batch: B } = input;
  const I = spec.inputSize;
  const step = { ...input, seqLen: 1, x: input.x.filter((_, i) => i % (input.seqLen * I) < I) };
  if (step.x.length !== B * I) throw new Error("bad step slice");
  const runner = await jsBackend.compile(spec);
  await runner.run(step);
  const start = performance.now();
  await runner.run(step);
  return performance.now() - start;
}

/** GFLOP/s of the bare micro-kernel on one thread for this shape's GEMM (`rows` batch rows). */
function gemmGflops(config: BenchConfig, k: number, rows: number): number {
  const { calibrateGemm } = instantiate();
  const { inputSize: I, hiddenSize: H } = config;
  const depth = Math.ceil(I / 4) * 4 + Math.ceil(H / 4) * 4;
  const blocks = Math.ceil(H / 4) * k;
  const repeats = Math.max(1, Math.round(3e8 / (2 * rows * depth * blocks * 16)));
  calibrateGemm(rows, depth, blocks, 1);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const start = performance.now();
    calibrateGemm(rows, depth, blocks, repeats);
    times.push(performance.now() - start);
  }
  return (2 * rows * depth * blocks * 16 * repeats) / median(times) / 1e6;
}

const names = (Deno.args[0] ?? "doc,big,latency").split(",") as (keyof typeof CONFIGS)[];
const gflops = (flops: number, ms: number) => (flops / ms / 1e6).toFixed(1);
console.log(`The default build here: ${instantiate().flavor} SIMD.\n`);
console.log(
  "| config | model | wasm 2 threads ms/step | GFLOP/s | wasm 1 thread ms/step | GFLOP/s | " +
    "plain SIMD 2 threads ms/step | relaxed vs plain | GEMM 1 thread GFLOP/s | " +
    "forward/GEMM (1 thread) | js ms/step | wasm vs js |",
);
console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
for (const name of names) {
  const config = CONFIGS[name];
  const runs = RUNS[name];
  for (const kind of MODELS) {
    const spec = specOf(kind, config);
    const input = inputOf(spec, config);
    const flops = flopsPerStep(kind, config);
    const [two, one, plain] = await wasmMsPerStep(spec, input, [
      { threads: 2 },
      { threads: 1 },
      { threads: 2, relaxedSimd: false },
    ], runs);
    // The calibration kernel takes rows in pairs, as the forward does for batches above one.
    const gemm = gemmGflops(config, spec.variant.k, Math.max(2, Math.min(config.batch, 512)));
    const js = await jsMsPerStep(spec, input);
    console.log(
      `| ${name} | ${kind} | ${two.toFixed(3)} | ${gflops(flops, two)} | ${one.toFixed(3)} | ${
        gflops(flops, one)
      } | ${plain.toFixed(3)} | ${(plain / two).toFixed(2)}× | ${gemm.toFixed(1)} | ${
        Math.round((100 * flops) / one / 1e6 / gemm)
      }% | ${js.toFixed(1)} | ${(js / two).toFixed(0)}× |`,
    );
  }
}
