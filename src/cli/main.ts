/**
 * The `arraylstm` command line: train, sample, predict, inspect, convert, explain and bench.
 *
 * ```sh
 * deno run -A jsr:@arraylstm/core/cli train --data book.txt --out book.safetensors
 * deno run -A ./src/cli/main.ts sample --model book.safetensors --prime "The " --length 200
 * ```
 *
 * @example Run a command in-process, capturing its output
 * ```ts
 * import { main } from "./main.ts";
 * let text = "";
 * const status = await main(["--help"], { stdout: (s) => (text += s) });
 * ```
 *
 * @module
 */

import { bench, BENCH_HELP } from "./bench.ts";
import { convert, CONVERT_HELP } from "./convert.ts";
import { explain, EXPLAIN_HELP } from "./explain.ts";
import { inspect, INSPECT_HELP } from "./inspect.ts";
import { CliError, type CliIO } from "./io.ts";
import { predict, PREDICT_HELP } from "./predict.ts";
import { sample, SAMPLE_HELP } from "./sample.ts";
import { train, TRAIN_HELP } from "./train.ts";

export type { CliIO } from "./io.ts";

const COMMANDS: Record<
  string,
  { run: (args: string[], io: CliIO) => Promise<number>; help: string }
> = {
  train: { run: train, help: TRAIN_HELP },
  sample: { run: sample, help: SAMPLE_HELP },
  predict: { run: predict, help: PREDICT_HELP },
  inspect: { run: inspect, help: INSPECT_HELP },
  convert: { run: convert, help: CONVERT_HELP },
  explain: { run: explain, help: EXPLAIN_HELP },
  bench: { run: bench, help: BENCH_HELP },
};

/** The top-level `--help`: every command and its summary line. */
export const HELP = `Usage: arraylstm <command> [options]   (each command takes --help)

Commands:
${
  Object.entries(COMMANDS).map(([name, { help }]) =>
    `  ${name.padEnd(9)}${help.split("\n").find((line, i) => i > 0 && line.trim() !== "")}`
  ).join("\n")
}
`;

/**
 * Runs the command line `args` (the command, then its flags); resolves to the exit status. Errors
 * the user can fix print one line on stderr and give status 1; `io` defaults to the process's
 * streams.
 *
 * @example Print the list of commands
 * ```ts
 * import { main } from "./main.ts";
 * let text = "";
 * await main(["--help"], { stdout: (s) => (text += s) });
 * ```
 */
export async function main(args: string[], io: Partial<CliIO> = {}): Promise<number> {
  const encoder = new TextEncoder();
  const full: CliIO = {
    stdout: io.stdout ?? ((text) => Deno.stdout.writeSync(encoder.encode(text))),
    stderr: io.stderr ?? ((text) => Deno.stderr.writeSync(encoder.encode(text))),
    isTerminal: io.isTerminal ?? (io.stderr === undefined && Deno.stderr.isTerminal()),
    interrupt: io.interrupt,
  };
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? full.stderr : full.stdout)(HELP);
    return name === undefined ? 1 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    full.stderr(
      `unknown command ${JSON.stringify(name)}; one of ${Object.keys(COMMANDS).join(", ")}\n`,
    );
    return 1;
  }
  try {
    return await command.run(rest, full);
  } catch (error) {
    if (error instanceof CliError) {
      full.stderr(`error: ${error.message}\n`);
      return 1;
    }
    // Errors of the library (bad shapes, unavailable backends) are user-facing too: one line.
    full.stderr(
      `error: ${name}: ${error instanceof Error ? error.message.split("\n")[0] : error}\n`,
    );
    return 1;
  }
}

if (import.meta.main) {
  Deno.exitCode = await main(Deno.args);
}
