/**
 * The parts of a `Sequential` that `lrp` explains: an optional `Embedding` first, recurrent layers
 * (with `Dropout` between them, the identity at evaluation), then `LastStep` and the `Linear` that
 * gives the scores (an activation after it is left out: the scores are the `Linear`'s). The
 * recurrent layers of `fromKeras` (`KerasRecurrent`) are read as the layers they wrap, the last
 * one giving its final states in place of `LastStep`.
 *
 * @module
 */

import { Bidirectional } from "../models/bidirectional.ts";
import { describeLayer } from "../models/describe_layer.ts";
import { LastStep } from "../models/last_step.ts";
import type { Sequential } from "../models/sequential.ts";
import { Stacked } from "../models/stacked.ts";
import { LogSoftmax, Softmax } from "../nn/activations.ts";
import { Dropout } from "../nn/dropout.ts";
import { Embedding } from "../nn/embedding.ts";
import { KerasRecurrent } from "../interop/keras_recurrent.ts";
import { Linear } from "../nn/linear.ts";
import type { Module } from "../nn/module.ts";

/** A `Sequential` as `lrp` reads it. */
export interface SequentialParts {
  /** The `Embedding` of `layers[0]`, or `null` when the model reads features. */
  readonly embedding: Embedding | null;
  /** Every recurrent level in order (a `Stacked`'s layers one by one), with its name. */
  readonly recurrent: readonly { readonly layer: unknown; readonly name: string }[];
  /** The `Linear` after the `LastStep`. */
  readonly dense: Linear;
  /**
   * Whether the `Linear` reads the final states of the last recurrent layer (a Keras layer
   * without `return_sequences`: a backward direction's after reading step 0), not a `LastStep`.
   */
  readonly finalStates: boolean;
}

const SHAPE = "lrp explains a Sequential of an optional Embedding, recurrent layers (the LSTM " +
  "family, alone, in a Bidirectional or a Stacked) with Dropout between them, then LastStep and " +
  "Linear (and optionally Softmax or LogSoftmax); from fromKeras, the Keras layers without " +
  "go_backwards and with merge_mode concat, the last one without return_sequences, then Dense";

/**
 * Splits `model` into what `lrp` explains; the recurrent layers' own rules are checked by `lrp`.
 *
 * @throws {TypeError} For a layer in a place LRP has no rule for, naming it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequentialParts } from "./lrp_sequential.ts";
 * import { Dropout, Embedding, LastStep, Linear, LSTM, Sequential } from "../../mod.ts";
 * const parts = sequentialParts(new Sequential([
 *   new Embedding(5, 3),
 *   new LSTM(3, 4),
 *   new Dropout(0.2),
 *   new LastStep(),
 *   new Linear(4, 2),
 * ]));
 * assert.equal(parts.recurrent.length, 1);
 * assert.equal(parts.dense.outFeatures, 2);
 * ```
 */
export function sequentialParts(model: Sequential): SequentialParts {
  const layers: readonly Module[] = model.layers;
  let end = layers.length;
  while (end > 0 && (layers[end - 1] instanceof Softmax || layers[end - 1] instanceof LogSoftmax)) {
    end--;
  }
  const refuse = (i: number, why: string): never => {
    throw new TypeError(
      `model.layers[${i}] (${describeLayer(layers[i])}) ${why}: ${SHAPE}`,
    );
  };
  const dense = layers[end - 1];
  if (!(dense instanceof Linear)) {
    return refuse(Math.max(end - 1, 0), "is where the scores' Linear must be");
  }
  let last = end - 2;
  while (last >= 0 && layers[last] instanceof Dropout) last--;
  // A Keras layer giving its final states stands where the LastStep would, and is recurrent.
  const finalStates = layers[last] instanceof KerasRecurrent;
  if (!(layers[last] instanceof LastStep) && !finalStates) {
    return refuse(Math.max(last, 0), "is where the LastStep before the Linear must be");
  }
  const embedding = layers[0] instanceof Embedding ? layers[0] : null;
  const recurrent: { layer: unknown; name: string }[] = [];
  for (let i = embedding === null ? 0 : 1; i < last + (finalStates ? 1 : 0); i++) {
    const layer = layers[i];
    if (layer instanceof Dropout) continue;
    if (layer instanceof KerasRecurrent) {
      if (
        layer.goBackwards || layer.mergeMode !== "concat" || layer.returnSequences !== (i < last)
      ) {
        refuse(
          i,
          `has ${
            layer.goBackwards
              ? "go_backwards"
              : layer.mergeMode !== "concat"
              ? `merge_mode ${layer.mergeMode}`
              : `return_sequences ${layer.returnSequences}`
          }, which has no LRP rule here`,
        );
      }
      recurrent.push({ layer: layer.layer, name: `model.layers[${i}].layer` });
    } else if (layer instanceof Stacked) {
      layer.layers.forEach((inner, j) =>
        recurrent.push({ layer: inner, name: `model.layers[${i}].layers[${j}]` })
      );
    } else if (layer instanceof Bidirectional || "inputSize" in layer) {
      recurrent.push({ layer, name: `model.layers[${i}]` });
    } else {
      refuse(i, "has no LRP rule");
    }
  }
  if (recurrent.length === 0) return refuse(last, "has no recurrent layer before it");
  return { embedding, recurrent, dense, finalStates };
}
