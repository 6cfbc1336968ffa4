/**
 * The bench scripts' command lines: `node:util`'s `parseArgs`, plus `--help` (`-h`), and a bad
 * option reported as one line and the usage rather than a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";

/**
 * `parseArgs(config)` of `config.args` (default `Deno.args`); prints `usage` and exits 0 on
 * `--help` or `-h`, and exits 2 with the parser's message and `usage` on an argument it refuses.
 *
 * @example
 * ```ts ignore
 * const { values } = benchArgs({ options: { runs: { type: "string", default: "7" } } }, USAGE);
 * ```
 */
export function benchArgs<T extends ParseArgsConfig>(
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T>> {
  const args = config.args ?? Deno.args;
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage);
    Deno.exit(0);
  }
  try {
    return parseArgs<T>({ ...config, args });
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${usage}`);
    Deno.exit(2);
  }
}
