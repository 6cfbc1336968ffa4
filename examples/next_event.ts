/**
 * Next-event prediction on a real event log, the task DeepCASE and Tiresias solve on security
 * events, driven through the command line in-process. What it teaches: turning a log into one
 * sequence of event names a line, `train --format events` with its top-1/top-5 validation
 * accuracy, and `predict` answering the likeliest next events as JSON lines.
 *
 * The log is Debian's package manager log, `/var/log/dpkg.log` (`--log FILE` for another one);
 * where it is absent, the committed sample `examples/data/dpkg.log.sample` (its first 1 200 lines
 * on the machine this was written on). Every package's actions within one dpkg run (`install`,
 * `status unpacked`, `configure`, `status installed`, `trigproc`, ...) become one sequence.
 *
 * Run it with `deno task example:next_event`; `--size small` (CI) trains briefly on the sample.
 *
 * @module
 */

import { exampleFlags } from "./_sizes.ts";
import { main } from "../src/cli/main.ts";

const SIZES = {
  full: { lines: Infinity, epochs: 8, hidden: 32 },
  small: { lines: 1200, epochs: 2, hidden: 16 },
};
const { size, small, backend, extra } = exampleFlags(SIZES, ["log"]);

const SAMPLE = new URL("./data/dpkg.log.sample", import.meta.url);
let source = extra.log ?? (small ? SAMPLE.pathname : "/var/log/dpkg.log");
let log: string;
try {
  log = await Deno.readTextFile(source);
} catch {
  source = SAMPLE.pathname;
  log = await Deno.readTextFile(SAMPLE);
}

/**
 * One line of event names per package and dpkg run: a dpkg.log line is
 * `DATE TIME ACTION ...`; `startup` opens a run, `status STATE PACKAGE VERSION` and
 * `ACTION PACKAGE ...` (install, upgrade, configure, trigproc, remove, purge) belong to a package.
 */
function eventSequences(text: string): string[] {
  const sequences: string[] = [];
  let run = new Map<string, string[]>();
  const flush = () => sequences.push(...[...run.values()].map((events) => events.join(" ")));
  for (const line of text.split("\n").slice(0, size.lines)) {
    const [, , action, ...rest] = line.split(" ");
    if (action === undefined) continue;
    if (action === "startup") {
      flush();
      run = new Map();
      continue;
    }
    const [event, pkg] = action === "status" ? [`status-${rest[0]}`, rest[1]] : [action, rest[0]];
    if (pkg === undefined) continue;
    const name = pkg.split(":")[0];
    run.set(name, [...(run.get(name) ?? []), event]);
  }
  flush();
  return sequences.filter((s) => s.includes(" "));
}

const sequences = eventSequences(log);
const dir = await Deno.makeTempDir({ prefix: "next_event_" });
const data = `${dir}/events.txt`;
const model = `${dir}/events.safetensors`;
await Deno.writeTextFile(data, sequences.join("\n") + "\n");
console.log(`${source}: ${sequences.length} event sequences, e.g. "${sequences[0]}"`);

const status = await main([
  "train",
  "--data",
  data,
  "--format",
  "events",
  "--model",
  "ArrayLSTM",
  "--k",
  "2",
  "--hidden",
  String(size.hidden),
  "--embedding",
  "8",
  "--seq-len",
  "8",
  "--batch",
  "16",
  "--epochs",
  String(size.epochs),
  "--backend",
  backend,
  "--out",
  model,
]);
if (status !== 0) Deno.exit(status);

await Deno.writeTextFile(`${dir}/queries.txt`, "install status-half-installed\nconfigure\n");
console.log("\nthe likeliest next events after two prefixes:");
if (
  await main(["predict", "--model", model, "--input", `${dir}/queries.txt`, "--top", "3"]) !== 0
) {
  Deno.exit(1);
}
await Deno.remove(dir, { recursive: true });
