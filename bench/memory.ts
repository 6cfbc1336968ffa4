/**
 * Peak memory of one model's forward per backend, next to the size of what it computes with: each
 * (model, backend) runs in a fresh Deno process (the WASM backend's Workers and the native
 * backend's threads are threads of that process), which reports its peak resident set (`VmHWM` of
 * `/proc/self/status`, Linux) after two forwards of the configuration, and its resident set before
 * the model was made.
 *
 * ```sh
 * deno run -A bench/memory.ts [doc|big|latency] [--backend wasm,native]   # default: wasm
 * ```
 *
 * `-A`: Deno reads `/proc/self` only with all access, and the native backend needs `--allow-ffi`.
 *
 * @module
 */

import { benchArgs } from "./_args.ts";
import type { ResolvedBackendName } from "../mod.ts";
import { registeredBackends } from "../src/backends/registry.ts";
import "../src/backends/builtin.ts";
import { CONFIGS, makeInput, makeModel, MODELS } from "./_configs.ts";

const USAGE = `Peak memory of one model's forward per backend, each in a fresh process.

deno run -A bench/memory.ts [doc|big|latency] [--backend wasm,native]   (default: doc, wasm)`;

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

/** Runs in the child process: two forwards of `kind` on `backend`; prints one JSON line. */
async function child(
  kind: Kind,
  configName: ConfigName,
  backend: ResolvedBackendName,
): Promise<void> {
  const config = CONFIGS[configName];
  const before = residentMiB().rss;
  const x = makeInput(config);
  using model = makeModel(kind, config, backend);
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
  const { values, positionals } = benchArgs({
    allowPositionals: true,
    options: { child: { type: "string" }, backend: { type: "string", default: "wasm" } },
  }, USAGE);
  const configName = (positionals[0] ?? "doc") as ConfigName;
  if (!(configName in CONFIGS)) {
    throw new RangeError(
      `config: expected one of ${Object.keys(CONFIGS).join(", ")}, got "${configName}"`,
    );
  }
  const backends = values.backend.split(",").map((name) => {
    if (!registeredBackends().includes(name as ResolvedBackendName)) {
      throw new RangeError(
        `--backend: unknown backend "${name}"; expected some of ${registeredBackends().join(", ")}`,
      );
    }
    return name as ResolvedBackendName;
  });
  if (values.child !== undefined) return child(values.child as Kind, configName, backends[0]);
  const script = new URL(import.meta.url).pathname;
  console.log(
    `| ${configName} config | backend | peak RSS MiB | RSS before the model MiB | inputs MiB | outputs MiB | weights MiB |`,
  );
  console.log("|---|---|---|---|---|---|---|");
  for (const kind of MODELS) {
    for (const backend of backends) {
      const { stdout, success } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script, configName, "--child", kind, "--backend", backend],
        stderr: "inherit",
      }).output();
      if (!success) throw new Error(`the ${kind} child process on ${backend} failed`);
      const r = JSON.parse(new TextDecoder().decode(stdout));
      const f = (value: number) => value.toFixed(1);
      console.log(
        `| ${kind} | ${backend} | ${f(r.peak)} | ${f(r.before)} | ${f(r.inputs)} | ${
          f(r.outputs)
        } | ${f(r.weights)} |`,
      );
    }
  }
}

if (import.meta.main) await main();
