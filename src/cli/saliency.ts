/**
 * Relevance of every input token for one prediction. A method takes the network, the token ids
 * and the target id and returns one score per token; `explain` renders them. Gradient x input is
 * built on the public training API; layer-wise relevance propagation (issue 10) plugs in as
 * another entry of {@linkcode METHODS} once it lands.
 *
 * @module
 */

import { detach, logSoftmax, nllLoss, requiresGrad } from "../../mod.ts";
import { IGNORE } from "./data.ts";
import type { Network } from "./model_file.ts";

/** Scores one token each, positive where a token raised the target's log-probability. */
export type RelevanceMethod = (
  network: Network,
  ids: number[],
  target: number,
) => Promise<number[]>;

/**
 * Gradient x input: `Σ_d e_td · ∂ log p(target) / ∂ e_td` over the embedding `e_t` of every token,
 * with the network in evaluation mode (its weights get no gradient).
 */
export async function gradientTimesInput(
  network: Network,
  ids: number[],
  target: number,
): Promise<number[]> {
  network.train(false);
  const embedded = requiresGrad(detach(await network.embedding.forward([ids])));
  const { output } = await network.rnn.forward(embedded);
  const logp = logSoftmax(await network.head.forward(output));
  // Only the last step is scored: the loss is -log p(target) after the whole input.
  const targets = ids.map((_, t) => t === ids.length - 1 ? target : IGNORE);
  await nllLoss(logp, targets).backward();
  const D = embedded.shape[2];
  const grad = embedded.grad!.data;
  return ids.map((_, t) => {
    let score = 0;
    for (let d = 0; d < D; d++) score -= embedded.data[t * D + d] * grad[t * D + d];
    return score;
  });
}

/** The relevance methods by name; `explain --method` picks one. */
export const METHODS: Record<string, RelevanceMethod | string> = {
  "gradient-x-input": gradientTimesInput,
  lrp: "layer-wise relevance propagation needs issue 10 (lrp); not available yet",
};
