/**
 * The opt-in outputs of a run (`input.outputs`): a request checked against the variant table's
 * rule ({@linkcode offersExtra} in `src/variants.ts`), and what an input asks for.
 *
 * @module
 */

import { describe } from "../errors.ts";
import {
  EXTRA_OUTPUTS,
  type ExtraOutput,
  offersExtra,
  outputOwner,
  type VariantKind,
  VARIANTS,
} from "../variants.ts";
import type { SequenceExtras, SequenceInput } from "./types.ts";

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
  for (const name of Object.keys(EXTRA_OUTPUTS) as ExtraOutput[]) {
    const value = outputs[name];
    if (value === undefined || value === false) continue;
    if (value !== true) {
      throw new TypeError(`input.outputs.${name} must be a boolean, got ${describe(value)}`);
    }
    if (!offersExtra(kind, name)) {
      const owner = outputOwner(name);
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
