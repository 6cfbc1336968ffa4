/**
 * Side-by-side speed of this package and its yardsticks, in one run, as ratios: the reference
 * package (array-lstm from PyPI) and `torch.nn.LSTM` under PyTorch, and the peers of the shared
 * reference data (`shared/peers`: onnxruntime-web WASM under Deno and under Node, tfjs-wasm). The
 * machine is shared and noisy, so the candidates take turns for `--rounds` rounds and each keeps
 * its median.
 *
 * Each row compares two things in one runtime: ours runs in this Deno process for the PyTorch and
 * Deno rows, and under Node for the Node rows (`bench/node_forward.ts`, bundled here with
 * `deno bundle`, the same timing code), because the runtime changes the wasm code V8 makes: Node
 * enables V8's wasm trap handler (no bounds check per memory access), Deno does not, and Node 20
 * has no relaxed SIMD by default. Ours warms up (and the Deno process once more, before the
 * first round) and is timed by time as well as by count, like the peers (`bench/_time_ours.ts`).
 *
 * ```sh
 * deno run -A bench/compare.ts [--configs doc,latency] [--rounds 3] [--python python3] \
 *   [--peers DIR]   # a copy of shared/peers after `npm install` (skipped when absent)
 * deno run -A bench/compare.ts --train [--configs doc]   # training steps instead of forwards
 * deno run -A bench/compare.ts --webgpu --peers DIR       # ours on WebGPU against the peers' WebGPU
 * deno run -A bench/compare.ts --backend native,wasm      # ours on each backend, side by side
 * ```
 *
 * `--backend` names the backends ours runs on (comma-separated, default `wasm`; `--webgpu` is
 * `--backend webgpu` with the WebGPU peers); each gets its own rows. The native backend needs
 * `--allow-ffi` (in `-A`).
 *
 * `--train` times a training step: the forward in training mode and `sum(output).backward()`,
 * on our backends and (`"train": true` in `compare_torch.py`) the reference package's
 * forward and `output.sum().backward()` under PyTorch; and one more row, the documentation's
 * network trained as a user trains it (`docTraining`: ArrayLSTM -> Linear -> `nllLoss`, backward,
 * Adam; in PyTorch the reference's ArrayLSTM -> `nn.Linear` -> `nll_loss`, `torch.optim.Adam`).
 * The peers (inference only) are skipped.
 *
 * `--webgpu` times our forward on the WebGPU backend (whatever adapter `navigator.gpu` gives: Mesa's
 * lavapipe on a machine without a GPU) against onnxruntime-web's and tfjs's WebGPU backends, in
 * Deno; PyTorch (CPU) is skipped.
 *
 * Prints the machine's CPU model and a Markdown table: the runtime ours ran in, ms per timestep and
 * each yardstick's time and ours divided by it (below 1: we are faster).
 *
 * @module
 */

import { benchArgs } from "./_args.ts";
import { type BenchConfig, CONFIGS, docTraining, MODELS } from "./_configs.ts";
import { median, timeCalls, timeOurs } from "./_time_ours.ts";
import type { ResolvedBackendName } from "../mod.ts";
import { registeredBackends } from "../src/backends/registry.ts";
import "../src/backends/builtin.ts";

const USAGE = `Side-by-side speed of this package and its yardsticks, as ratios.

deno run -A bench/compare.ts [options]
  --configs doc,latency   configurations of bench/_configs.ts (default doc,latency)
  --backend wasm          backends ours runs on, comma-separated (wasm, native, webgpu)
  --rounds 3              rounds the candidates take turns for; each keeps its median
  --runs 5                calls timed at least, per candidate and round
  --python python3        a Python with torch and array-lstm (PyTorch rows; skipped without)
  --peers DIR             a copy of shared/peers after npm install (peer rows; skipped without)
  --train                 training steps instead of forwards (and the docs network)
  --webgpu                ours on WebGPU against the peers' WebGPU backends`;

const { values } = benchArgs({
  options: {
    configs: { type: "string", default: "doc,latency" },
    rounds: { type: "string", default: "3" },
    runs: { type: "string", default: "5" },
    python: { type: "string", default: "python3" },
    peers: { type: "string" },
    train: { type: "boolean", default: false },
    webgpu: { type: "boolean", default: false },
    backend: { type: "string" },
  },
}, USAGE);
const train = values.train;
const backends = (values.backend ?? (values.webgpu ? "webgpu" : "wasm")).split(",").map((name) => {
  if (!registeredBackends().includes(name as ResolvedBackendName)) {
    throw new RangeError(
      `--backend: unknown backend "${name}"; expected some of ${registeredBackends().join(", ")}`,
    );
  }
  return name as ResolvedBackendName;
});
if (train && values.webgpu) throw new TypeError("--train and --webgpu: pick one");
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

/** The row of `--train`'s whole training step of the documentation's network. */
const DOCS_NETWORK = "docs network";

/** Milliseconds per timestep, by config, then by candidate ("ours LSTM", "PyTorch ArrayLSTM", ...). */
const samples = new Map<string, Map<string, number[]>>();
function record(config: BenchConfig, candidate: string, msPerStep: number): void {
  const byCandidate = samples.get(config.name) ?? new Map<string, number[]>();
  samples.set(config.name, byCandidate);
  byCandidate.set(candidate, [...(byCandidate.get(candidate) ?? []), msPerStep]);
}

async function timeOursInDeno(config: BenchConfig): Promise<void> {
  for (const backend of backends) {
    for (const [kind, msPerStep] of await timeOurs(config, { runs, train, backend })) {
      record(config, `ours ${backend} ${kind}`, msPerStep);
    }
    if (train) {
      using network = docTraining(backend, config);
      record(
        config,
        `ours ${backend} ${DOCS_NETWORK}`,
        await timeCalls(() => network.step(), config.seqLen, runs),
      );
    }
  }
}

/**
 * `bench/node_forward.ts` and the backend's worker, bundled for Node into a fresh folder, or null
 * (with the reason printed) where `deno bundle` fails.
 */
async function bundleForNode(): Promise<string | null> {
  const dir = await Deno.makeTempDir({ prefix: "arraylstm_node_" });
  const here = (path: string) => new URL(path, import.meta.url).pathname;
  for (
    const [source, target] of [
      [here("./node_forward.ts"), `${dir}/node_forward.mjs`],
      [here("../src/backends/wasm/worker.ts"), `${dir}/worker.js`],
    ]
  ) {
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "-o", target, source],
      stdout: "null",
    }).output();
    if (!result.success) {
      console.error(`# deno bundle ${source} failed:\n${new TextDecoder().decode(result.stderr)}`);
      return null;
    }
  }
  return `${dir}/node_forward.mjs`;
}

/** What `node_forward.ts` said about Node (its version, the build it ran). */
let nodeNote = "# ours under Node: not run (needs `node` on PATH and --peers)";

/** Our `LSTM` under Node (the bundle of `bench/node_forward.ts`): the "(Node)" rows' side. */
async function timeOursInNode(bundle: string, config: BenchConfig): Promise<boolean> {
  const text = await output("node", [bundle, JSON.stringify({ ...config, runs })]);
  if (text === null) return false;
  for (const line of text.split("\n")) {
    if (line.startsWith("# ")) nodeNote = line;
    if (!line.startsWith("RESULT ")) continue;
    const { model, msPerStep } = JSON.parse(line.slice("RESULT ".length));
    record(config, `ours ${model} (Node)`, msPerStep);
  }
  return true;
}

async function output(command: string, args: string[], cwd?: string): Promise<string | null> {
  try {
    const result = await new Deno.Command(command, { args, cwd, stderr: "null" }).output();
    return result.success ? new TextDecoder().decode(result.stdout) : null;
  } catch {
    return null;
  }
}

/** The PyTorch version `compare_torch.py` ran under, once it has run. */
let torchVersion = "";

async function timePyTorch(config: BenchConfig): Promise<boolean> {
  const script = new URL("./compare_torch.py", import.meta.url).pathname;
  const text = await output(values.python, [
    script,
    JSON.stringify({ ...config, runs, train }),
  ]);
  if (text === null) return false;
  for (const line of text.trim().split("\n")) {
    const { model, msPerStep, torch } = JSON.parse(line);
    torchVersion = torch;
    record(config, model === "torch.nn.LSTM" ? "torch.nn.LSTM" : `PyTorch ${model}`, msPerStep);
  }
  return true;
}

/** A peer's benchmark, and the runtime it (and so the ours it is compared with) runs in. */
interface PeerRun {
  name: string;
  runtime: "Deno" | "Node";
  command: string;
  args: string[];
}

/** A peer's `script` run by Deno with `flags`. */
function denoPeer(name: string, script: string, ...flags: string[]): PeerRun {
  return { name, runtime: "Deno", command: "deno", args: ["run", "-A", script, ...flags] };
}

const PEER_RUNS: PeerRun[] = [
  denoPeer("ort-web wasm 2thr (Deno)", "bench_ort.mjs", "--pkg=web", "--threads=2"),
  {
    name: "ort-web wasm 2thr (Node)",
    runtime: "Node",
    command: "node",
    args: ["bench_ort.mjs", "--pkg=web", "--threads=2"],
  },
  denoPeer("ort-node 2thr (Deno)", "bench_ort.mjs", "--pkg=node", "--threads=2"),
  denoPeer("tfjs-wasm (Deno)", "bench_tfjs.mjs", "--backend=wasm", "--impl=layers"),
];
const WEBGPU_PEER_RUNS: PeerRun[] = [
  denoPeer("ort-web webgpu (Deno)", "bench_ort.mjs", "--pkg=webgpu", "--threads=1"),
  denoPeer("tfjs-webgpu (Deno)", "bench_tfjs.mjs", "--backend=webgpu", "--impl=layers"),
];
const peerRuns = values.webgpu ? WEBGPU_PEER_RUNS : PEER_RUNS;
const PEER_CONFIG_NAMES: Record<string, string> = { doc: "doc", big: "big", latency: "lat" };

/**
 * Every peer, once per config; before the first Node peer, our models under Node (from `bundle`,
 * when there is one), so that the two are timed close together.
 */
async function timePeers(dir: string, bundle: string | null): Promise<void> {
  const peerConfigs = configs.map((config) => PEER_CONFIG_NAMES[config.name]).join(",");
  let nodeTimed = false;
  for (const peer of peerRuns) {
    if (peer.runtime === "Node" && bundle !== null && !nodeTimed) {
      for (const config of configs) await timeOursInNode(bundle, config);
      nodeTimed = true;
    }
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

const peers = train ? undefined : values.peers;
const nodeBundle = peers === undefined || values.webgpu ? null : await bundleForNode();
let havePyTorch = !values.webgpu;
// One untimed pass first: the first model timed in this process ran 15–25 % slower than the same
// model timed again right after (LSTM training step: 6.9–7.5 against 6.0–6.1 ms per time step),
// however long it warmed up itself, and the median of two rounds is the slower one.
for (const backend of backends) {
  await timeOurs(configs[0], { runs: 1, train, backend, models: [MODELS[0]] });
}
for (let round = 0; round < rounds; round++) {
  for (const config of configs) {
    await timeOursInDeno(config);
    if (havePyTorch) havePyTorch = await timePyTorch(config);
  }
  if (peers !== undefined) await timePeers(peers, nodeBundle);
}
if (nodeBundle !== null) {
  await Deno.remove(nodeBundle.slice(0, nodeBundle.lastIndexOf("/")), { recursive: true });
}

console.log(`# ${await cpuModel()}; ${rounds} rounds, medians; Deno ${Deno.version.deno}`);
if (torchVersion !== "") console.log(`# PyTorch ${torchVersion} (best of 1 and 2 threads)`);
if (!havePyTorch && !values.webgpu) {
  console.log(
    `# PyTorch skipped: \`${values.python} bench/compare_torch.py\` failed (needs torch and array-lstm)`,
  );
}
if (nodeBundle !== null) console.log(nodeNote);
if (values.webgpu) console.log("# ours on WebGPU; PyTorch (CPU) skipped");
if (backends.includes("native")) {
  const { openNativeLibrary } = await import("../src/backends/native/mod.ts");
  const library = await openNativeLibrary();
  console.log(`# native: ${library.path.split("/").pop()} (${library.isa})`);
}
if (train) {
  console.log(
    "# training steps: forward + sum(output).backward(); docs network: forward, nllLoss, " +
      "backward, Adam; peers skipped (inference only)",
  );
} else if (!values.peers) {
  console.log("# peers skipped: pass --peers DIR (a copy of shared/peers after npm install)");
}

/**
 * The yardsticks each of our models is compared with, per candidate family, with the runtime ours
 * runs in for that row: the peer's own (PyTorch rows: Deno).
 */
function yardsticks(kind: string): { name: string; runtime: "Deno" | "Node" }[] {
  const pytorch = (kind === "LSTM" ? ["torch.nn.LSTM", "PyTorch LSTM"] : [`PyTorch ${kind}`])
    .map((name) => ({ name, runtime: "Deno" as const }));
  return kind === "LSTM" ? [...pytorch, ...peerRuns] : pytorch;
}

const what = train ? "training step" : "forward";
console.log(
  `\n| config | model | ours on | ours runs in | ours ${what} ms/step | yardstick | its ms/step | ours/theirs |`,
);
console.log("|---|---|---|---|---|---|---|---|");
for (const config of configs) {
  const byCandidate = samples.get(config.name)!;
  for (const kind of train ? [...MODELS, DOCS_NETWORK] : MODELS) {
    for (const backend of backends) {
      const deno = median(byCandidate.get(`ours ${backend} ${kind}`)!);
      // Ours under Node is the wasm backend's (bench/node_forward.ts).
      const present = yardsticks(kind).filter(({ name, runtime }) =>
        byCandidate.has(name) && (runtime === "Deno" || backend === "wasm")
      );
      if (present.length === 0) {
        console.log(
          `| ${config.name} | ${kind} | ${backend} | Deno | ${deno.toFixed(3)} | - | - | - |`,
        );
      }
      for (const { name, runtime } of present) {
        const oursSamples = byCandidate.get(
          runtime === "Deno" ? `ours ${backend} ${kind}` : `ours ${kind} (Node)`,
        );
        if (oursSamples === undefined) continue;
        const ours = median(oursSamples);
        const theirs = median(byCandidate.get(name)!);
        console.log(
          `| ${config.name} | ${kind} | ${backend} | ${runtime} | ${ours.toFixed(3)} | ${name} | ${
            theirs.toFixed(3)
          } | ${(ours / theirs).toFixed(2)} |`,
        );
      }
    }
  }
}
