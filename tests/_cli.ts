/**
 * The command line run in-process for the CLI tests: `run` captures its status and output, `TEXT`
 * is the tiny corpus they train on, `trainArgs` a short run on js, and `assertRefused` checks a
 * one-line refusal.
 *
 * @module
 */

import assert from "node:assert/strict";
import { main } from "../src/cli/main.ts";

/** A tiny corpus that trains in a few steps. */
export const TEXT = "the cat sat on the mat. the dog sat on the log. a cat and a dog sat.\n"
  .repeat(6);

/** What a run of the command line gave: its exit status and everything it wrote. */
export interface Ran {
  /** The exit status. */
  status: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

/**
 * Runs the command line on `args` in-process; `interrupt` stands for a signal.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { run } from "./_cli.ts";
 * const { status, stdout } = await run(["--help"]);
 * assert.equal(status, 0);
 * assert.match(stdout, /Usage/);
 * ```
 */
export async function run(args: string[], interrupt?: AbortSignal): Promise<Ran> {
  let [stdout, stderr] = ["", ""];
  const status = await main(args, {
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
    isTerminal: false,
    interrupt,
  });
  return { status, stdout, stderr };
}

/**
 * The arguments of `train` on `data` into `out` on the js backend for `steps` steps, then `flags`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainArgs } from "./_cli.ts";
 * assert.equal(trainArgs("text.txt", "m.safetensors", 2, "--hidden", "4").at(-3), "2");
 * ```
 */
export function trainArgs(data: string, out: string, steps: number, ...flags: string[]): string[] {
  return [
    "train",
    "--data",
    data,
    "--out",
    out,
    "--backend",
    "js",
    "--max-steps",
    String(steps),
    ...flags,
  ];
}

/**
 * Asserts that `ran` exited 1 with one line on stderr that matches `pattern`; `label` names the case.
 *
 * @example
 * ```ts
 * import { assertRefused, run } from "./_cli.ts";
 * assertRefused(await run(["nonsense"]), /unknown command/, "nonsense");
 * ```
 */
export function assertRefused(ran: Ran, pattern: RegExp, label: string): void {
  assert.equal(ran.status, 1, label);
  assert.match(ran.stderr, pattern, label);
  assert.equal(ran.stderr.trim().split("\n").length, 1, `one line for ${label}: ${ran.stderr}`);
}
