/**
 * The loss the training tests take their steps on: a linear head over a recurrent layer's final
 * hidden state, classified with `nllLoss(logSoftmax(·))`.
 *
 * @module
 */

import {
  type Linear,
  logSoftmax,
  nllLoss,
  type RecurrentLayer,
  reshape,
  type Tensor,
  type TrackedTensor,
} from "../mod.ts";

/** `nllLoss(logSoftmax(head(h_T)), targets)` for the batch `x`, `h_T` read as `(B, H)`. */
export async function classifierLoss(
  layer: Pick<RecurrentLayer, "forward" | "hiddenSize">,
  head: Linear,
  x: Tensor,
  targets: Parameters<typeof nllLoss>[1],
): Promise<TrackedTensor> {
  const { hidden } = await layer.forward(x);
  const logits = await head.forward(reshape(hidden, [x.shape[0], layer.hiddenSize]));
  return nllLoss(logSoftmax(logits), targets);
}
