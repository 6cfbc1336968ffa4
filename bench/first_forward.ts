/**
 * The first forward of a fresh process: import, backend choice, instantiation and one forward of
 * batch 64 (the documentation's sizes: 10 steps, 10 inputs, 128 hidden units, k = 4), timed in new
 * Deno processes, one per run. Prints the median and range of the time from the script's first
 * line to the forward's result, and of the time since the process started (`performance.now()`,
 * which includes Deno's own start). A script:
 * `deno run --allow-read --allow-env --allow-run [--allow-ffi] bench/first_forward.ts [--runs 7] [--backend auto]`.
 *
 * @module
 */

import { benchArgs } from "./_args.ts";

const USAGE = `The first forward of fresh processes: from the process start and from the import.

deno run --allow-read --allow-env --allow-run --allow-ffi bench/first_forward.ts [options]
  --runs 7                fresh processes
  --backend auto          the backend each process asks for
  --model ArrayLSTM       ArrayLSTM or LSTM`;

const { values } = benchArgs({
  options: {
    runs: { type: "string", default: "7" },
    backend: { type: "string", default: "auto" },
    model: { type: "string", default: "ArrayLSTM" },
    child: { type: "boolean", default: false },
  },
}, USAGE);

if (values.child) {
  const start = performance.now();
  const arraylstm = await import("../mod.ts");
  const options = { backend: values.backend as "auto", seed: 1 };
  const model = values.model === "LSTM"
    ? new arraylstm.LSTM(10, 128, options)
    : new arraylstm.ArrayLSTM(10, 128, 4, options);
  await model.forward(arraylstm.randn([64, 10, 10], { seed: 2 }));
  const end = performance.now();
  console.log(JSON.stringify({ script: end - start, process: end }));
  model.dispose();
} else {
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) {
    throw new RangeError(`--runs must be a positive integer, got ${values.runs}`);
  }
  const samples: { script: number; process: number }[] = [];
  for (let run = 0; run < runs; run++) {
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-env",
        // The native backend's FFI, where this process has it (never prompts).
        ...(Deno.permissions.querySync({ name: "ffi" }).state === "granted" ? ["--allow-ffi"] : []),
        new URL(import.meta.url).pathname,
        "--child",
        "--backend",
        values.backend,
        "--model",
        values.model,
      ],
    }).output();
    if (code !== 0) throw new Error(`run ${run} failed:\n${new TextDecoder().decode(stderr)}`);
    const lines = new TextDecoder().decode(stdout).trim().split("\n");
    samples.push(JSON.parse(lines[lines.length - 1]));
  }
  const summary = (key: "script" | "process"): string => {
    const sorted = samples.map((sample) => sample[key]).sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return `${median.toFixed(0)} ms (${sorted[0].toFixed(0)}–${
      sorted[sorted.length - 1].toFixed(0)
    })`;
  };
  console.log(
    `${values.model}, backend ${values.backend}, batch 64, ` +
      `${runs} fresh processes, median (range):`,
  );
  console.log(`  import to first result: ${summary("script")}`);
  console.log(`  process start to first result: ${summary("process")}`);
}
