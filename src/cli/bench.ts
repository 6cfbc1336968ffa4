/**
 * `bench`: milliseconds per time step of the four models on every backend asked for, warm (the
 * first call, which compiles and allocates, is not timed), with each backend's ratio to the first.
 *
 * @module
 */

import { type BackendName, randn } from "../../mod.ts";
import { concreteBackendNames } from "../backends/select.ts";
import {
  CliError,
  type CliIO,
  type FlagSpec,
  numberFlag,
  parseFlags,
  reason,
  stringFlag,
  stringFlags,
} from "./io.ts";
import { LSTM_CLASSES, makeRecurrent } from "./model_file.ts";

/** `bench --help`. */
export const BENCH_HELP = `Usage: bench [options]

Prints a table of warm milliseconds per time step for every model on every backend, with ratios.

  --backend LIST   comma-separated backends; default ${concreteBackendNames().join(",")}
                   (unavailable ones are marked)
  --batch N        default 64
  --seq-len N      default 10
  --input N        default 10
  --hidden N       default 128
  --k N            default 4
  --runs N         timed calls after one warm-up call; default 3
`;

const FLAGS: Record<string, FlagSpec> = stringFlags(
  "backend",
  "batch",
  "seq-len",
  "input",
  "hidden",
  "k",
  "runs",
);

/** Runs `bench` with `args`; resolves to the exit status. */
export async function bench(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("bench", args, FLAGS);
  const names: string[] = concreteBackendNames();
  const backends = stringFlag(values, "backend", names.join(",")).split(",");
  for (const backend of backends) {
    if (!names.includes(backend)) {
      throw new CliError(
        `--backend lists ${names.join(", ")}, got ${JSON.stringify(backend)}`,
      );
    }
  }
  const size = (name: string, fallback: number) =>
    numberFlag(values, name, fallback, { min: 1, max: 1 << 16, integer: true });
  const [B, T, I, H, k] = [
    size("batch", 64),
    size("seq-len", 10),
    size("input", 10),
    size("hidden", 128),
    size("k", 4),
  ];
  const runs = size("runs", 3);
  const x = randn([B, T, I], { seed: 1 });
  io.stdout(`ms per time step, warm, batch ${B}, ${T} steps, input ${I}, hidden ${H}, k ${k}\n`);
  const header = ["model", ...backends, ...backends.slice(1).map((b) => `${b}/${backends[0]}`)];
  const rows: string[][] = [];
  const unavailable = new Map<string, string>();
  for (const cls of LSTM_CLASSES) {
    const times: number[] = [];
    for (const backend of backends) {
      if (unavailable.has(backend)) {
        times.push(NaN);
        continue;
      }
      const args = { inputSize: I, hiddenSize: H, k };
      const model = makeRecurrent({ class: cls, args }, backend as BackendName, 1);
      try {
        await model.forward(x);
        const started = performance.now();
        for (let run = 0; run < runs; run++) await model.forward(x);
        times.push((performance.now() - started) / runs / T);
      } catch (error) {
        unavailable.set(backend, reason(error));
        times.push(NaN);
      } finally {
        model.dispose();
      }
    }
    rows.push([
      cls,
      ...times.map((t) => Number.isNaN(t) ? "—" : t.toFixed(3)),
      ...times.slice(1).map((t) =>
        Number.isNaN(t) || Number.isNaN(times[0]) ? "—" : (t / times[0]).toFixed(2)
      ),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  io.stdout([line(header), ...rows.map(line)].join("\n") + "\n");
  for (const [backend, why] of unavailable) io.stdout(`${backend}: unavailable (${why})\n`);
  return 0;
}
