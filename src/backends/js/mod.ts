/**
 * The plain TypeScript backend: a thin adapter that runs the reference (`src/reference/`) as is
 * (GRU and RNN: `src/reference/gru_rnn.ts`).
 * It is the oracle the WASM and WebGPU backends are tested against, and it runs everywhere.
 *
 * @module
 */

import {
  type Backend,
  copySpec,
  defineBackend,
  RECURRENT_ACTIVATIONS,
  type SequenceOutput,
} from "../../contract/mod.ts";
import { runTorchSequence } from "../../reference/gru_rnn.ts";
import { runSequence } from "../../reference/sequence.ts";
import { VARIANTS } from "../../variants.ts";

/**
 * The TypeScript backend.
 *
 * @example
 * ```ts
 * import { jsBackend } from "./mod.ts";
 * import assert from "node:assert/strict";
 * using runner = await jsBackend.compile({
 *   variant: { kind: "array", k: 2, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(8), i2hBias: new Float32Array(8),
 *     h2hWeight: new Float32Array(8), h2hBias: new Float32Array(8),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * const { state } = await runner.run({
 *   batch: 1, seqLen: 1, x: new Float32Array(1),
 *   hidden: new Float32Array(1), state: new Float32Array(2),
 * });
 * assert.equal(state.length, 2);
 * ```
 */
export const jsBackend: Backend = defineBackend("js", (spec) => {
  const copy = copySpec(spec);
  return Promise.resolve({
    run: (input) =>
      Promise.resolve(
        VARIANTS[copy.variant.kind].cellStates
          // In float32 precision, runSequence returns Float32Arrays.
          ? runSequence(copy, input) as SequenceOutput
          : runTorchSequence(copy, input),
      ),
    dispose: () => {},
  });
}, RECURRENT_ACTIVATIONS);
