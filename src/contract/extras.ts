/**
 * The opt-in outputs of a run (`input.outputs`): which variants may ask for which, decided once
 * here from the variant table's flags, and what an input asks for.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { type VariantKind, VARIANTS } from "../variants.ts";
import type { SequenceExtras, SequenceInput } from "./types.ts";

/** The name of an opt-in output: `"attention"` or `"lanes"`. */
export type ExtraOutput = keyof SequenceExtras;

/**
 * The variant flag that gives each opt-in output: the attention weights come from the attention
 * projection, the lanes from the stochastic variant's argmax readout.
 */
const EXTRA_FLAGS: { readonly [output in ExtraOutput]-?: "attention" | "argmax" } = {
  attention: "attention",
  lanes: "argmax",
};

/** Every opt-in output, in the order error messages list them. */
export const EXTRA_OUTPUTS: readonly ExtraOutput[] = Object.keys(EXTRA_FLAGS) as ExtraOutput[];

/**
 * Whether a variant can return an opt-in output: the one rule for which cells may ask for what
 * (the model classes' `returnAttention` / `returnLanes` and the backends follow it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offersExtra } from "./extras.ts";
 * assert.equal(offersExtra("attention", "attention"), true);
 * assert.equal(offersExtra("array", "lanes"), false);
 * ```
 */
export function offersExtra(kind: VariantKind, output: ExtraOutput): boolean {
  return VARIANTS[kind][EXTRA_FLAGS[output]];
}

/**
 * The variant that offers an opt-in output (the first in the table), for error messages that name
 * the class to use instead (`VARIANTS[extraOwner(output)].model`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { extraOwner } from "./extras.ts";
 * assert.equal(extraOwner("lanes"), "stochastic");
 * ```
 */
export function extraOwner(output: ExtraOutput): VariantKind {
  const kinds = Object.keys(VARIANTS) as VariantKind[];
  return kinds.find((kind) => offersExtra(kind, output))!;
}

/**
 * Checks a request for opt-in outputs against a variant: an object of booleans, each output only
 * for a variant that {@linkcode offersExtra offers} it, naming the model class that has it.
 *
 * @throws {TypeError} Naming the first output that is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkExtras } from "./extras.ts";
 * checkExtras("stochastic", { lanes: true });
 * assert.throws(() => checkExtras("array", { lanes: true }), /only for the StochasticArrayLSTM cell/);
 * ```
 */
export function checkExtras(kind: VariantKind, outputs: SequenceExtras): void {
  if (typeof outputs !== "object" || outputs === null) {
    throw new TypeError(
      `input.outputs must be an object { attention?, lanes? }, got ${describe(outputs)}`,
    );
  }
  for (const name of EXTRA_OUTPUTS) {
    const value = outputs[name];
    if (value === undefined || value === false) continue;
    if (value !== true) {
      throw new TypeError(`input.outputs.${name} must be a boolean, got ${describe(value)}`);
    }
    if (!offersExtra(kind, name)) {
      const owner = extraOwner(name);
      throw new TypeError(
        `input.outputs.${name} is only for the ${VARIANTS[owner].model} cell (kind ${
          describe(owner)
        }), got kind ${describe(kind)} (${VARIANTS[kind].model}): leave it out`,
      );
    }
  }
}

/**
 * The opt-in outputs an input asks for, as two booleans (both `false` when `outputs` is absent).
 * Backends read a checked input's request with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { requestedExtras } from "./extras.ts";
 * const z = new Float32Array(0);
 * const input = { batch: 0, seqLen: 0, x: z, hidden: z, state: z, outputs: { lanes: true } };
 * assert.deepEqual(requestedExtras(input), { attention: false, lanes: true });
 * ```
 */
export function requestedExtras(
  input: SequenceInput,
): { attention: boolean; lanes: boolean } {
  return {
    attention: input.outputs?.attention === true,
    lanes: input.outputs?.lanes === true,
  };
}
