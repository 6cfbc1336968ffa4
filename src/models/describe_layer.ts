/**
 * One-line descriptions of layers with their key arguments (`ArrayLSTM(32, 128, k=4)`,
 * `Linear(128, 65)`, `Dropout(p=0.1)`), and parameter counts, for `Sequential`'s `toString()` and
 * `summary()`.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { Dropout } from "../nn/dropout.ts";
import { Embedding } from "../nn/embedding.ts";
import { Linear } from "../nn/linear.ts";
import type { Module } from "../nn/module.ts";
import { sizeOf } from "../tensor.ts";
import { Bidirectional } from "./bidirectional.ts";
import { isRecurrentLayer } from "./recurrent.ts";
import { Stacked } from "./stacked.ts";

/** Reads a field that only some layer classes have. */
function field(layer: object, name: string): unknown {
  return (layer as Record<string, unknown>)[name];
}

/**
 * `Name(arguments)`: the class and the arguments that set its shape and behaviour.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeLayer } from "./describe_layer.ts";
 * import { ArrayLSTM, Linear } from "../../mod.ts";
 * assert.equal(describeLayer(new Linear(3, 2, { bias: false })), "Linear(3, 2, bias=false)");
 * assert.equal(describeLayer(new ArrayLSTM(3, 4, 2, { backend: "js" })), 'ArrayLSTM(3, 4, k=2, backend="js")');
 * ```
 */
export function describeLayer(layer: Module): string {
  const name = layer.constructor.name;
  if (layer instanceof Embedding) {
    const padding = layer.paddingIdx === null ? "" : `, paddingIdx=${layer.paddingIdx}`;
    return `${name}(${layer.numEmbeddings}, ${layer.embeddingDim}${padding})`;
  }
  if (layer instanceof Linear) {
    return `${name}(${layer.inFeatures}, ${layer.outFeatures}${
      layer.hasBias ? "" : ", bias=false"
    })`;
  }
  if (layer instanceof Dropout) return `${name}(p=${layer.p})`;
  if (layer instanceof Stacked) return `${name}(${layer.layers.map(describeLayer).join(", ")})`;
  if (layer instanceof Bidirectional) {
    return `${name}(${describeLayer(layer.forwardLayer)}, ${describeLayer(layer.backwardLayer)})`;
  }
  if (isRecurrentLayer(layer)) {
    const parts = [String(layer.inputSize), String(layer.hiddenSize)];
    const k = field(layer, "k");
    // Every ArrayLSTM variant shows its k; a plain LSTM (k = 1) does not need it.
    if (typeof k === "number" && name !== "LSTM") parts.push(`k=${k}`);
    const nonlinearity = field(layer, "nonlinearity");
    if (nonlinearity !== undefined && nonlinearity !== "tanh") {
      parts.push(`nonlinearity=${describe(nonlinearity)}`);
    }
    const backend = field(layer, "backend");
    if (typeof backend === "string") parts.push(`backend=${describe(backend)}`);
    return `${name}(${parts.join(", ")})`;
  }
  return `${name}()`;
}

/**
 * The number of trainable values of a layer and its children.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countParameters } from "./describe_layer.ts";
 * import { Linear } from "../../mod.ts";
 * assert.equal(countParameters(new Linear(3, 2)), 8);
 * ```
 */
export function countParameters(layer: Module): number {
  return layer.parameters().reduce((total, p) => total + sizeOf(p.value.shape), 0);
}

/**
 * A count with thousands separators: `1,234,567`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatCount } from "./describe_layer.ts";
 * assert.equal(formatCount(1234567), "1,234,567");
 * ```
 */
export function formatCount(count: number): string {
  return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
