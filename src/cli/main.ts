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

interface Command {
  run: (args: string[], io: CliIO) => Promise<number>;
  summary: string;
  help: string;
}

const COMMANDS: Record<string, Command> = {
  train: {
    run: train,
    help: TRAIN_HELP,
    summary: "train a language or next-event model on a file",
  },
  sample: {
    run: sample,
    help: SAMPLE_HELP,
    summary: "generate text from a model (one seed, one text, any backend)",
  },
  predict: {
    run: predict,
    help: PREDICT_HELP,
    summary: "top-k next tokens for every input line, as JSON lines",
  },
  inspect: {
    run: inspect,
    help: INSPECT_HELP,
    summary: "describe a model file, or list a weight file's tensors",
  },
  convert: {
    run: convert,
    help: CONVERT_HELP,
    summary: "torch LSTM/GRU/RNN or Keras LSTM weights to a saveModel file",
  },
  explain: {
    run: explain,
    help: EXPLAIN_HELP,
    summary: "an HTML heatmap of each input token's relevance",
  },
  bench: {
    run: bench,
    help: BENCH_HELP,
    summary: "warm ms per time step of every model on every backend",
  },
};

/** The top-level `--help`: every command and its summary. */
export const HELP = `Usage: arraylstm <command> [options]   (each command takes --help)

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(9)}${summary}`).join("\n")}
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
  if (rest.includes("--help") || rest.includes("-h")) {
    full.stdout(command.help);
    return 0;
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

/**
 * The caller's folder when run by `deno task cli` (which runs in the repository and sets
 * `INIT_CWD` to where it was called, as `npm run` does), so that relative paths are the caller's.
 */
function callerFolder(): string | undefined {
  const allowed = Deno.permissions.querySync({ name: "env", variable: "INIT_CWD" });
  return allowed.state === "granted" ? Deno.env.get("INIT_CWD") : undefined;
}

if (import.meta.main) {
  const folder = callerFolder();
  if (folder !== undefined) Deno.chdir(folder);
  Deno.exitCode = await main(Deno.args);
}
