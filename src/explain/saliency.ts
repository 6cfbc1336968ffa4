/**
 * Gradient saliency: the baselines LRP is compared with, from the training API's backward.
 *
 * @module
 */

import { describe } from "../errors.ts";
import { Stacked } from "../models/stacked.ts";
import type { RecurrentLayer, RecurrentResult } from "../models/recurrent.ts";
import { mul, reshape, sum } from "../nn/functional.ts";
import { concat, split } from "../nn/layout.ts";
import type { Module } from "../nn/module.ts";
import { requiresGrad, type TrackedTensor } from "../nn/tape.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { resolveTargets } from "./target.ts";

/** Options of {@linkcode saliency}. */
export interface SaliencyOptions {
  /**
   * `"gradient"` (default): `∂score/∂x`. `"gradientXInput"`: `x ⊙ ∂score/∂x`.
   * `"integratedGradients"`: `x ⊙` the mean gradient at `(m/steps)·x`, `m = 1 … steps` (a zero
   * baseline; the attributions sum to about `score(x) − score(0)`).
   */
  method?: "gradient" | "gradientXInput" | "integratedGradients";
  /** Integration steps of `"integratedGradients"` (default 50). */
  steps?: number;
  /** The class explained: one for all sequences, or one per sequence; default the predicted one. */
  target?: number | readonly number[];
}

/** What {@linkcode saliency} resolves to. */
export interface SaliencyResult {
  /** Attribution of every input feature at every step, `(batch, seqLen, inputSize)`. */
  readonly saliency: Tensor;
  /** The head's scores for `x`, `(batch, classes)`. */
  readonly scores: Tensor;
  /** The class explained for each sequence. */
  readonly target: readonly number[];
}

/** A head on the final hidden state(s): a `Linear`, or any layer of `(B, D) → (B, C)`. */
export interface SaliencyHead extends Module {
  /** Class scores `(B, C)` from features `(B, D)`, recorded on the tape. */
  forward(x: Tensor): Promise<TrackedTensor>;
}

/**
 * Gradient saliency of `head` on the final hidden state(s) of `model` (any recurrent layer: every
 * LSTM variant, `Bidirectional`, `Stacked`, and other recurrent layers with a backward): the same
 * features {@linkcode lrp} reads, `[h_forward(T−1), h_backward(0)]` for a bidirectional top layer.
 * Runs `model` and `head` in evaluation mode (restored afterwards), so no parameter gradient is
 * touched.
 *
 * @param model The recurrent layers.
 * @param head Class scores from the final hidden state(s).
 * @param x Input `(batch, seqLen, inputSize)`.
 * @param options `method`, `steps`, `target`.
 *
 * @example Gradient × input of an LSTM classifier
 * ```ts
 * import assert from "node:assert/strict";
 * import { Linear, LSTM, randn, saliency } from "../../mod.ts";
 * const lstm = new LSTM(3, 4, { backend: "js", seed: 1 });
 * const head = new Linear(4, 2, { seed: 2 });
 * const result = await saliency(lstm, head, randn([2, 5, 3], { seed: 3 }), {
 *   method: "gradientXInput",
 * });
 * assert.deepEqual(result.saliency.shape, [2, 5, 3]);
 * ```
 */
export async function saliency(
  model: RecurrentLayer,
  head: SaliencyHead,
  x: Tensor,
  options: SaliencyOptions = {},
): Promise<SaliencyResult> {
  checkTensor("x", x);
  if (x.shape.length !== 3) {
    throw new RangeError(
      `x must be (batch, seqLen, inputSize), got shape ${describe(x.shape)}`,
    );
  }
  const method = options.method ?? "gradient";
  if (!["gradient", "gradientXInput", "integratedGradients"].includes(method)) {
    throw new RangeError(
      `options.method must be "gradient", "gradientXInput" or "integratedGradients", got ${
        describe(method)
      }`,
    );
  }
  const steps = options.steps ?? 50;
  if (!Number.isInteger(steps) || steps < 1) {
    throw new RangeError(`options.steps must be a positive integer, got ${describe(steps)}`);
  }
  const modes = [model.training, head.training];
  model.eval();
  head.eval();
  try {
    const B = x.shape[0];
    const scores = await scoresOf(model, head, x);
    const C = scores.shape[1];
    const target = resolveTargets(options.target, scores.data, B, C, "the head");
    const mask = new Float32Array(B * C);
    target.forEach((c, b) => (mask[b * C + c] = 1));
    const gradientAt = async (scale: number): Promise<Float32Array> => {
      const input = requiresGrad({ shape: x.shape, data: x.data.map((v) => v * scale) });
      const out = await scoresOf(model, head, input);
      await sum(mul(out, { shape: [B, C], data: mask })).backward();
      return input.grad?.data ?? new Float32Array(x.data.length);
    };
    let values: Float32Array;
    if (method === "integratedGradients") {
      const total = new Float64Array(x.data.length);
      for (let m = 1; m <= steps; m++) {
        const grad = await gradientAt(m / steps);
        for (let i = 0; i < total.length; i++) total[i] += grad[i];
      }
      values = Float32Array.from(total, (g, i) => x.data[i] * g / steps);
    } else {
      const grad = await gradientAt(1);
      values = method === "gradient" ? grad : grad.map((g, i) => g * x.data[i]);
    }
    return {
      saliency: { shape: [...x.shape], data: values },
      scores: { shape: [B, C], data: scores.data.slice() },
      target,
    };
  } finally {
    model.train(modes[0]);
    head.train(modes[1]);
  }
}

/** The head's scores on the final hidden state(s) of the top level, `(B, C)`. */
async function scoresOf(
  model: RecurrentLayer,
  head: SaliencyHead,
  x: Tensor,
): Promise<TrackedTensor> {
  const result = await model.forward(x);
  const top: RecurrentResult = model instanceof Stacked ? result.layers!.at(-1)! : result;
  const [rows, B, H] = top.hidden.shape;
  const parts = rows === 1 ? [top.hidden] : split(top.hidden, Array(rows).fill(1), 0);
  const features = parts.map((part) => reshape(part, [B, H]));
  const scores = await head.forward(features.length === 1 ? features[0] : concat(features, 1));
  if (scores.shape.length !== 2 || scores.shape[0] !== B) {
    throw new RangeError(
      `head must map (batch, features) to (batch, classes), got shape ${describe(scores.shape)}`,
    );
  }
  return scores;
}
