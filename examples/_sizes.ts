/**
 * The flags every example takes: `--size full|small` (CI runs the small one) and `--backend`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { BackendName } from "../mod.ts";

/** An example's parsed flags: the chosen size's settings, the backend and any extra flags. */
export interface ExampleFlags<S> {
  /** The settings of `--size` (default `full`). */
  readonly size: S;
  /** Whether `--size small` was asked for. */
  readonly small: boolean;
  /** `--backend` (default `auto`). */
  readonly backend: BackendName;
  /** The extra string flags the example declared. */
  readonly extra: Record<string, string | undefined>;
}

/**
 * Parses the command line of an example with `full` and `small` settings in `sizes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exampleFlags } from "./_sizes.ts";
 * const flags = exampleFlags({ full: { steps: 100 }, small: { steps: 5 } }, [], ["--size", "small"]);
 * assert.deepEqual([flags.size, flags.backend], [{ steps: 5 }, "auto"]);
 * ```
 */
export function exampleFlags<S>(
  sizes: { full: S; small: S },
  extra: readonly string[] = [],
  args: string[] = Deno.args,
): ExampleFlags<S> {
  const { values } = parseArgs({
    args,
    options: {
      backend: { type: "string", default: "auto" },
      size: { type: "string", default: "full" },
      ...Object.fromEntries(extra.map((name) => [name, { type: "string" as const }])),
    },
  });
  if (values.size !== "full" && values.size !== "small") {
    throw new TypeError(`--size must be "full" or "small", got ${JSON.stringify(values.size)}`);
  }
  return {
    size: sizes[values.size],
    small: values.size === "small",
    backend: values.backend as BackendName,
    extra: Object.fromEntries(
      extra.map((name) => [name, (values as Record<string, unknown>)[name] as string | undefined]),
    ),
  };
}
