/**
 * What every command shares: where its output goes, the error that ends a command with one line,
 * and strict flag parsing on top of `node:util`'s `parseArgs`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { BackendName } from "../contract/mod.ts";
import { backendNames } from "../backends/select.ts";

/** Where a command writes, and how it learns of Ctrl-C; injectable so tests run commands in-process. */
export interface CliIO {
  /** Writes to standard output. */
  stdout(text: string): void;
  /** Writes to standard error. */
  stderr(text: string): void;
  /** Whether standard error is a terminal (a redrawn progress bar instead of periodic lines). */
  isTerminal: boolean;
  /** Aborted when the user asks to stop (Ctrl-C); `train` then saves a checkpoint. */
  interrupt?: AbortSignal;
}

/** A user error: the command prints its message on one line and exits with status 1. */
export class CliError extends Error {
  /** Makes the error; `message` names the problem and what to do. */
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** A flag's declaration for `parseArgs`. */
export type FlagSpec = { type: "string" | "boolean"; short?: string; multiple?: boolean };

/**
 * Declarations of string flags for {@linkcode parseFlags}, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stringFlags } from "./io.ts";
 * assert.deepEqual(stringFlags("out"), { out: { type: "string" } });
 * ```
 */
export function stringFlags(...names: string[]): Record<string, FlagSpec> {
  return Object.fromEntries(names.map((name) => [name, { type: "string" }]));
}

/**
 * Parses `args` against `options`, turning `parseArgs`'s errors (unknown flag, missing value) into
 * a `CliError` that names the command.
 */
export function parseFlags<T extends Record<string, FlagSpec>>(
  command: string,
  args: string[],
  options: T,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: joinDashValues(args, options),
      options,
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (error) {
    // parseArgs adds a sentence on positionals starting with "-"; the first one names the flag.
    const message = reason(error).split(". ")[0];
    throw new CliError(`${command}: ${message}; see \`${command} --help\``);
  }
}

/**
 * `--k -1` as `--k=-1`: `parseArgs` takes a value starting with "-" only after "=", and calls
 * `--k -1` ambiguous; a string flag followed by anything that is not one of the flags takes it.
 */
function joinDashValues(args: string[], options: Record<string, FlagSpec>): string[] {
  const isFlag = (arg: string): boolean => {
    const name = arg.replace(/^--?/, "").split("=")[0];
    return name in options || arg === "-h" || arg === "--help" || arg === "--";
  };
  const result: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const [arg, next] = [args[i], args[i + 1]];
    const spec = arg.startsWith("--") && !arg.includes("=") ? options[arg.slice(2)] : undefined;
    if (spec?.type === "string" && next?.startsWith("-") && !isFlag(next)) {
      result.push(`${arg}=${next}`);
      i++;
    } else {
      result.push(arg);
    }
    if (arg === "--") return [...result, ...args.slice(i + 1)];
  }
  return result;
}

/** The string value of `--name`, or `fallback`; a `CliError` when required and missing. */
export function stringFlag(
  values: Record<string, unknown>,
  name: string,
  fallback?: string,
): string {
  const value = values[name];
  if (typeof value === "string") return value;
  if (fallback !== undefined) return fallback;
  throw new CliError(`--${name} is required`);
}

/** The value of `--name` as a number in `[min, max]` (an integer when `integer`). */
export function numberFlag(
  values: Record<string, unknown>,
  name: string,
  fallback: number,
  { min = -Infinity, max = Infinity, integer = false } = {},
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (
    typeof raw !== "string" || raw.trim() === "" || !Number.isFinite(value) ||
    (integer && !Number.isInteger(value)) || value < min || value > max
  ) {
    const kind = integer ? "an integer" : "a number";
    throw new CliError(`--${name} must be ${kind} in [${min}, ${max}], got ${JSON.stringify(raw)}`);
  }
  return value;
}

/** The value of `--seed` (an integer in `[0, 2^31]`), or `fallback`. */
export function seedFlag(values: Record<string, unknown>, fallback: number): number {
  return numberFlag(values, "seed", fallback, { min: 0, max: 2 ** 31, integer: true });
}

/** `value` when it is one of `choices`, else a `CliError` naming the flag and the choices. */
export function choiceFlag<T extends string>(
  values: Record<string, unknown>,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const value = values[name] ?? fallback;
  if (!choices.includes(value as T)) {
    throw new CliError(
      `--${name} must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Reads a file, with a one-line error naming it when it cannot be read. */
export async function readInput(path: string, what = "file"): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    throw new CliError(`cannot read ${what} ${path}: ${reason(error)}`);
  }
}

/** Reads a UTF-8 text file, with a one-line error naming it when it cannot be read. */
export async function readText(path: string, what = "file"): Promise<string> {
  return new TextDecoder().decode(await readInput(path, what));
}

/** The first line of an error's message. */
export function reason(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0];
}

/** The choices of `--backend` for a command's help: `auto | webgpu | wasm | js`. */
export const BACKEND_CHOICES: string = backendNames().join(" | ");

/** The value of `--backend` (default `"auto"`): `"auto"` or a registered backend. */
export function backendFlag(values: Record<string, unknown>): BackendName {
  return choiceFlag(values, "backend", backendNames(), "auto");
}
