/**
 * Peak memory of one model's forward on the WASM backend, next to the size of what it computes
 * with: each model runs in a fresh Deno process (its Workers are threads of that process), which
 * reports its peak resident set (`VmHWM` of `/proc/self/status`, Linux) after two forwards of the
 * configuration, and its resident set before the model was made.
 *
 * ```sh
 * deno run -A bench/memory.ts [doc|big|latency]   # -A: Deno reads /proc/self only with all access
 * ```
 *
 * @module
 */

import { CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

type Kind = typeof MODELS[number];
type ConfigName = keyof typeof CONFIGS;

const MIB = 1024 * 1024;

/** Resident set and its peak so far, in MiB (Linux only). */
function residentMiB(): { rss: number; peak: number } {
  const status = Deno.readTextFileSync("/proc/self/status");
  const kib = (field: string) =>
    Number(status.match(new RegExp(`^${field}:\\s*(\\d+) kB`, "m"))![1]);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** Runs in the child process: two forwards of `kind`; prints one JSON line. */
async function child(kind: Kind, configName: ConfigName): Promise<void> {
  const config = CONFIGS[configName];
  const before = residentMiB().rss;
  const x = makeInput(config);
  using model = makeModel(kind, config, "wasm");
  const weights = Object.values(model.stateDict()).reduce((sum, t) => sum + t.data.byteLength, 0);
  let outputs = 0;
  for (let run = 0; run < 2; run++) {
    const { output, hidden, state } = await model.forward(x);
    outputs = output.data.byteLength + hidden.data.byteLength + state.data.byteLength;
  }
  const { peak } = residentMiB();
  console.log(JSON.stringify({
    kind,
    before,
    peak,
    inputs: x.data.byteLength / MIB,
    outputs: outputs / MIB,
    weights: weights / MIB,
  }));
}

async function main(): Promise<void> {
  const [first, second] = Deno.args;
  if (first === "--child") return child(second as Kind, Deno.args[2] as ConfigName);
  const configName = (first ?? "doc") as ConfigName;
  if (!(configName in CONFIGS)) {
    throw new RangeError(
      `config: expected one of ${Object.keys(CONFIGS).join(", ")}, got "${configName}"`,
    );
  }
  const script = new URL(import.meta.url).pathname;
  console.log(
    `| ${configName} config, wasm | peak RSS MiB | RSS before the model MiB | inputs MiB | outputs MiB | weights MiB |`,
  );
  console.log("|---|---|---|---|---|---|");
  for (const kind of MODELS) {
    const { stdout, success } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--child", kind, configName],
      stderr: "inherit",
    }).output();
    if (!success) throw new Error(`the ${kind} child process failed`);
    const r = JSON.parse(new TextDecoder().decode(stdout));
    const f = (value: number) => value.toFixed(1);
    console.log(
      `| ${kind} | ${f(r.peak)} | ${f(r.before)} | ${f(r.inputs)} | ${f(r.outputs)} | ${
        f(r.weights)
      } |`,
    );
  }
}

if (import.meta.main) await main();
