/**
 * Side-by-side speed of this package and its yardsticks, in one run, as ratios: the reference
 * package (array-lstm from PyPI) and `torch.nn.LSTM` under PyTorch, and the peers of
 * the peers of the shared reference data (`shared/peers`) (onnxruntime-web WASM under Deno and Node, tfjs-wasm). The machine is shared
 * and noisy, so the candidates take turns for `--rounds` rounds and each keeps its median.
 *
 * ```sh
 * deno run -A bench/compare.ts [--configs doc,latency] [--rounds 3] [--python python3] \
 *   [--peers DIR]   # a copy of shared/peers after `npm install` (skipped when absent)
 * deno run -A bench/compare.ts --train [--configs doc]   # training steps instead of forwards
 * ```
 *
 * `--train` times a training step: the forward in training mode and `sum(output).backward()`,
 * on our WASM backend and (`"train": true` in `compare_torch.py`) the reference package's
 * forward and `output.sum().backward()` under PyTorch; the peers (inference only) are skipped.
 *
 * Prints the machine's CPU model and a Markdown table: ms per timestep and each yardstick's time
 * and ours divided by it (below 1: we are faster).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { sum } from "../mod.ts";
import type { LSTM, Tensor } from "../mod.ts";
import { type BenchConfig, CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

const { values } = parseArgs({
  options: {
    configs: { type: "string", default: "doc,latency" },
    rounds: { type: "string", default: "3" },
    runs: { type: "string", default: "5" },
    python: { type: "string", default: "python3" },
    peers: { type: "string" },
    train: { type: "boolean", default: false },
  },
});
const train = values.train;
const rounds = Number(values.rounds);
const runs = Number(values.runs);
const configs = values.configs.split(",").map((name) => {
  const config = CONFIGS[name as keyof typeof CONFIGS];
  if (config === undefined) {
    throw new RangeError(
      `--configs: unknown config "${name}"; expected some of ${Object.keys(CONFIGS).join(", ")}`,
    );
  }
  return config;
});

/** Milliseconds per timestep, by config, then by candidate ("ours LSTM", "PyTorch ArrayLSTM", ...). */
const samples = new Map<string, Map<string, number[]>>();
function record(config: BenchConfig, candidate: string, msPerStep: number): void {
  const byCandidate = samples.get(config.name) ?? new Map<string, number[]>();
  samples.set(config.name, byCandidate);
  byCandidate.set(candidate, [...(byCandidate.get(candidate) ?? []), msPerStep]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One forward, or with `--train` a training step as the yardstick's: forward, sum, backward. */
async function callOnce(model: LSTM, x: Tensor): Promise<void> {
  if (!train) {
    await model.forward(x);
    return;
  }
  const { output } = await model.forward(x);
  await sum(output).backward();
  for (const parameter of model.parameters()) parameter.grad = null;
}

async function timeOurs(config: BenchConfig): Promise<void> {
  const x = makeInput(config);
  for (const kind of MODELS) {
    using model = makeModel(kind, config, "wasm");
    if (train) model.train();
    await callOnce(model, x);
    const times: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      await callOnce(model, x);
      times.push(performance.now() - started);
    }
    record(config, `ours ${kind}`, median(times) / config.seqLen);
  }
}

async function output(command: string, args: string[], cwd?: string): Promise<string | null> {
  try {
    const result = await new Deno.Command(command, { args, cwd, stderr: "null" }).output();
    return result.success ? new TextDecoder().decode(result.stdout) : null;
  } catch {
    return null;
  }
}

async function timePyTorch(config: BenchConfig): Promise<boolean> {
  const script = new URL("./compare_torch.py", import.meta.url).pathname;
  const text = await output(values.python, [
    script,
    JSON.stringify({ ...config, runs, train }),
  ]);
  if (text === null) return false;
  for (const line of text.trim().split("\n")) {
    const { model, msPerStep } = JSON.parse(line);
    record(config, model === "torch.nn.LSTM" ? "torch.nn.LSTM" : `PyTorch ${model}`, msPerStep);
  }
  return true;
}

const PEER_RUNS: { name: string; command: string; args: string[] }[] = [
  {
    name: "ort-web wasm 2thr (Deno)",
    command: "deno",
    args: ["run", "-A", "bench_ort.mjs", "--pkg=web", "--threads=2"],
  },
  {
    name: "ort-web wasm 2thr (Node)",
    command: "node",
    args: ["bench_ort.mjs", "--pkg=web", "--threads=2"],
  },
  {
    name: "tfjs-wasm (Deno)",
    command: "deno",
    args: ["run", "-A", "bench_tfjs.mjs", "--backend=wasm", "--impl=layers"],
  },
];
const PEER_CONFIG_NAMES: Record<string, string> = { doc: "doc", big: "big", latency: "lat" };

async function timePeers(dir: string): Promise<void> {
  const peerConfigs = configs.map((config) => PEER_CONFIG_NAMES[config.name]).join(",");
  for (const peer of PEER_RUNS) {
    const text = await output(peer.command, [...peer.args, `--configs=${peerConfigs}`], dir);
    for (const line of text?.split("\n") ?? []) {
      if (!line.startsWith("RESULT ")) continue;
      const result = JSON.parse(line.slice("RESULT ".length));
      const config = configs.find((c) => PEER_CONFIG_NAMES[c.name] === result.config);
      if (config && typeof result.ms_per_timestep === "number") {
        record(config, peer.name, result.ms_per_timestep);
      }
    }
  }
}

async function cpuModel(): Promise<string> {
  const info = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = info.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  return `${model}, ${navigator.hardwareConcurrency} logical cores`;
}

let havePyTorch = true;
for (let round = 0; round < rounds; round++) {
  for (const config of configs) {
    await timeOurs(config);
    if (havePyTorch) havePyTorch = await timePyTorch(config);
  }
  if (values.peers && !train) await timePeers(values.peers);
}

console.log(`# ${await cpuModel()}; ${rounds} rounds, medians; Deno ${Deno.version.deno}`);
if (!havePyTorch) {
  console.log(
    `# PyTorch skipped: \`${values.python} bench/compare_torch.py\` failed (needs torch and array-lstm)`,
  );
}
if (train) {
  console.log("# training steps: forward + sum(output).backward(); peers skipped (inference only)");
} else if (!values.peers) {
  console.log("# peers skipped: pass --peers DIR (a copy of shared/peers after npm install)");
}

/** The yardstick each of our models is compared with, per candidate family. */
function yardsticks(kind: string): string[] {
  const pytorch = kind === "LSTM" ? ["torch.nn.LSTM", "PyTorch LSTM"] : [`PyTorch ${kind}`];
  return kind === "LSTM" ? [...pytorch, ...PEER_RUNS.map((peer) => peer.name)] : pytorch;
}

const what = train ? "training step" : "forward";
console.log(
  `\n| config | model | ours wasm ${what} ms/step | yardstick | its ms/step | ours/theirs |`,
);
console.log("|---|---|---|---|---|---|");
for (const config of configs) {
  const byCandidate = samples.get(config.name)!;
  for (const kind of MODELS) {
    const ours = median(byCandidate.get(`ours ${kind}`)!);
    const present = yardsticks(kind).filter((name) => byCandidate.has(name));
    if (present.length === 0) {
      console.log(`| ${config.name} | ${kind} | ${ours.toFixed(3)} | - | - | - |`);
    }
    for (const name of present) {
      const theirs = median(byCandidate.get(name)!);
      console.log(
        `| ${config.name} | ${kind} | ${ours.toFixed(3)} | ${name} | ${theirs.toFixed(3)} | ${
          (ours / theirs).toFixed(2)
        } |`,
      );
    }
  }
}
