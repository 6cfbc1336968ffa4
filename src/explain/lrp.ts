/**
 * `lrp`: layer-wise relevance propagation (LRP-ε) for recurrent classifiers, after Arras et al.,
 * *Explaining Recurrent Neural Network Predictions in Sentiment Analysis* (2017): how much every
 * input step and feature contributed to one class score.
 *
 * @module
 */

import { checkOptions, checkShape, describe } from "../errors.ts";
import { Bidirectional } from "../models/bidirectional.ts";
import { usesBuiltinHooks } from "../models/builtin.ts";
import { cellVariant, LSTM, runForRelevance } from "../models/lstm.ts";
import { Sequential } from "../models/sequential.ts";
import { Stacked } from "../models/stacked.ts";
import type { TokenIds } from "../nn/embedding.ts";
import { Linear } from "../nn/linear.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import { resolveTargets } from "./target.ts";
import { sumFeatures } from "./tokens.ts";
import { checkEpsilonRule, type EpsilonRule } from "../contract/mod.ts";
import { offersExtra, VARIANTS } from "../variants.ts";
import {
  type LayerRelevance,
  type LayerRelevanceOptions,
  type LayerWeights,
  relevanceOfLayer,
  traceLayer,
} from "./lrp_layer.ts";
import { sequentialParts } from "./lrp_sequential.ts";
import { joinDirections, readPosition, reverseWithin } from "./lrp_steps.ts";
import { checkLengths } from "../models/packed.ts";

/** Options of {@linkcode lrp}. */
export interface LrpOptions {
  /**
   * The class to explain: one for every sequence, or one per sequence. Default: the class with
   * the largest score of each sequence.
   */
  target?: number | readonly number[];
  /** The ε stabiliser (default `0.001`, the original's). */
  eps?: number;
  /**
   * `0` (default, the original's recommendation): biases and stabilisers absorb their share of
   * relevance. `1`: they are redistributed to the inputs, and relevance is conserved exactly.
   */
  biasFactor?: number;
  /**
   * Steps of each sequence of a padded batch, integers in `[1, seqLen]`: every direction reads
   * sequence `b` within its first `lengths[b]` steps (a backward one from step `lengths[b] − 1`
   * down to 0, as `Bidirectional` does with lengths), the dense layer reads the states there
   * (for a `Sequential` with `LastStep`, what `LastStep` picks with these lengths), and the
   * padded steps, their states and inputs get no relevance: each sequence is explained as if
   * alone. Default: every sequence has `seqLen` steps.
   */
  lengths?: readonly number[] | Int32Array;
  /**
   * Also return {@linkcode LrpResult.states}, the relevance of every step's hidden and cell
   * states (default `false`).
   */
  returnStates?: boolean;
}

/** The relevance of one direction's states at every step, at the positions it read them. */
export interface LrpDirectionStates {
  /**
   * The relevance arriving at the hidden state of every position (from the dense layer or the
   * level above, and from the next step it read), `(batch, seqLen, hiddenSize)`.
   */
  readonly hidden: Tensor;
  /**
   * The total relevance of the cell state at every position (the kept part of the next step's
   * cell, and all of its own hidden state's: the output gate passes no relevance),
   * `(batch, seqLen, hiddenSize)`; `(batch, seqLen, k, hiddenSize)` for the array variants'
   * `k` lanes.
   */
  readonly cell: Tensor;
}

/** The relevance of the states of one recurrent level. */
export interface LrpLevelStates {
  /** The direction that reads the steps first to last. */
  readonly forward: LrpDirectionStates;
  /**
   * A `Bidirectional`'s backward direction, at the positions it read: position `t` holds its
   * state after reading step `t`, as `Bidirectional` lays out its output.
   */
  readonly backward?: LrpDirectionStates;
}

/** What {@linkcode lrp} resolves to. */
export interface LrpResult {
  /**
   * Relevance of every input feature at every step, `(batch, seqLen, inputSize)`; of every token,
   * `(batch, seqLen)`, for a `Sequential` that starts with an `Embedding`.
   */
  readonly relevance: Tensor;
  /** Relevance left at the initial hidden and cell states, `(batch)`. */
  readonly rest: Tensor;
  /** The dense layer's scores, `(batch, classes)`. */
  readonly scores: Tensor;
  /** The class explained for each sequence. */
  readonly target: readonly number[];
  /**
   * With `returnStates`: the relevance of every step's hidden and cell states, one entry per
   * recurrent level, the first layer's first. What is left at the initial states is `rest`.
   */
  readonly states?: readonly LrpLevelStates[];
}

/** A recurrent layer LRP can explain, or a composition of them. */
export type LrpNetwork = LSTM | Bidirectional | Stacked;

/** One direction of one level of the network: a layer, and whether it reads steps backwards. */
interface Direction {
  readonly layer: LSTM;
  readonly weights: LayerWeights;
  readonly reversed: boolean;
}

/** One direction's forward, and the relevance pass back through it. */
interface Traced {
  readonly hiddenSize: number;
  /** The hidden states `(B, T, H)`, in the order the layer read the steps. */
  readonly hidden: Float32Array | Float64Array;
  /**
   * From the relevance `(B, T, H)` arriving at the hidden states to the input and the rest (and
   * the states' relevance, when asked: then the pass is the float64 one here).
   */
  relevance(outputRelevance: Float64Array, wanted: LayerRelevanceOptions): Promise<{
    input: Float32Array | Float64Array;
    rest: Float32Array | Float64Array;
    hidden?: Float64Array;
    cell?: Float64Array;
  }>;
}

/**
 * Explains the class scores of `dense` on the final hidden state(s) of `network`: LRP-ε as in
 * Arras et al. (the ε-rule through the dense layer and the candidate's pre-activation, the cell
 * split between `f·c_{t−1}` and `i·g` by the ε-rule, gates passing no relevance), batched. The
 * forward runs on the network's backend. A backend with a relevance pass for the cell (wasm, for
 * one-lane cells) runs it on the activations its forward kept, in float32; otherwise the pass here
 * recomputes the gates from the hidden states in float64 (the stochastic lanes are the ones the
 * forward read out, from `returnLanes`).
 *
 * `network` is an `LSTM` (any ArrayLSTM variant: see docs/guide/explanations.md for their rules),
 * a `Bidirectional` of two of them (the dense layer reads `[h_forward(T−1), h_backward(0)]`), or a
 * `Stacked` of either, relevance flowing down through every level. Each layer starts from zeros.
 *
 * With `biasFactor: 1`, `Σ relevance + rest = scores[target]` for every sequence.
 *
 * A `Sequential` ending in `LastStep` + `Linear` is explained as `lrp(model, x, options)`.
 *
 * @param network The recurrent layers.
 * @param dense A `Linear` from the final hidden state(s) to the class scores.
 * @param x Input, `(batch, seqLen, inputSize)`.
 * @param options `target`, `eps`, `biasFactor`, `lengths`, `returnStates`.
 * @returns Relevance `(B, T, I)`, rest `(B)`, scores `(B, C)` and the targets.
 * @throws {TypeError} For a layer kind with no LRP rule.
 * @throws {RangeError} For a target outside the classes or a dense layer of the wrong width.
 *
 * @example Relevance is conserved with `biasFactor: 1`
 * ```ts
 * import assert from "node:assert/strict";
 * import { Bidirectional, Linear, lrp, LSTM, randn } from "../../mod.ts";
 * const network = new Bidirectional(
 *   new LSTM(3, 4, { backend: "js", seed: 1 }),
 *   new LSTM(3, 4, { backend: "js", seed: 2 }),
 * );
 * const dense = new Linear(8, 2, { seed: 3 });
 * const { relevance, rest, scores, target } = await lrp(network, dense, randn([2, 5, 3], { seed: 4 }), {
 *   biasFactor: 1,
 * });
 * const total = relevance.data.slice(0, 15).reduce((a, b) => a + b, 0) + rest.data[0];
 * assert.ok(Math.abs(total - scores.data[target[0]]) < 1e-5);
 * ```
 */
export function lrp(
  network: LrpNetwork,
  dense: Linear,
  x: Tensor,
  options?: LrpOptions,
): Promise<LrpResult>;
/**
 * Explains the class scores of a `Sequential`: an optional `Embedding`, recurrent layers (with
 * `Dropout` between them, the identity), `LastStep` and the `Linear` of the scores (optionally
 * followed by `Softmax` or `LogSoftmax`: the scores explained are the `Linear`'s), as
 * `lrp(network, dense, x)` explains its parts; `Dropout` is the identity, as at evaluation. After
 * an `Embedding`, the relevance of a token is that of its embedded vector, summed over the
 * features. The dense layer reads what the `LastStep` gives: for a `Bidirectional` just before it,
 * the backward direction's output at the last position (it has read that one step), as the model
 * computes it. The `model` of `fromKeras` is read likewise: its last recurrent layer (without
 * `return_sequences`) gives its final states, a `Bidirectional`'s backward one after reading
 * step 0, as Keras computes them.
 *
 * @param model The model.
 * @param x Token ids `(batch, seqLen)` after an `Embedding` (relevance `(batch, seqLen)`, per
 *   token), else features `(batch, seqLen, inputSize)`.
 * @param options `target`, `eps`, `biasFactor`, `lengths`, `returnStates`.
 * @returns Relevance, rest `(B)`, scores `(B, C)` and the targets.
 * @throws {TypeError} For a layer in a place LRP has no rule for, naming it.
 *
 * @example A Sequential classifier of token ids: relevance per token
 * ```ts
 * import assert from "node:assert/strict";
 * import { Embedding, LastStep, Linear, lrp, LSTM, Sequential } from "../../mod.ts";
 * const model = new Sequential([
 *   new Embedding(10, 3, { seed: 1 }),
 *   new LSTM(3, 4, { backend: "js", seed: 2 }),
 *   new LastStep(),
 *   new Linear(4, 2, { seed: 3 }),
 * ]);
 * const { relevance, rest, scores, target } = await lrp(model, [[1, 5, 7]], { biasFactor: 1 });
 * assert.deepEqual(relevance.shape, [1, 3]); // one value per token
 * const total = relevance.data.reduce((a, b) => a + b, 0) + rest.data[0];
 * assert.ok(Math.abs(total - scores.data[target[0]]) < 1e-5);
 * ```
 */
export function lrp(
  model: Sequential,
  x: TokenIds | Tensor,
  options?: LrpOptions,
): Promise<LrpResult>;
export async function lrp(
  network: LrpNetwork | Sequential,
  dense: Linear | TokenIds | Tensor,
  x?: Tensor | LrpOptions,
  options?: LrpOptions,
): Promise<LrpResult> {
  if (network instanceof Sequential) {
    return await lrpSequential(network, dense as TokenIds | Tensor, (x ?? {}) as LrpOptions);
  }
  return await explain(levelsOf(network), dense as Linear, x as Tensor, options ?? {});
}

async function lrpSequential(
  model: Sequential,
  x: TokenIds | Tensor,
  options: LrpOptions,
): Promise<LrpResult> {
  const { embedding, recurrent, dense, finalStates } = sequentialParts(model);
  const levels = recurrent.map(({ layer, name }) => levelOf(layer, name));
  const reading = { lastPosition: !finalStates, perStep: embedding !== null };
  if (embedding === null) return await explain(levels, dense, x as Tensor, options, reading);
  const embedded = await embedding.forward(x);
  if (embedded.shape.length !== 3) {
    throw new RangeError(
      `x must be token ids (batch, seqLen), got ids of shape ${
        describe(embedded.shape.slice(0, -1))
      }`,
    );
  }
  return await explain(levels, dense, embedded, options, reading);
}

/** How {@linkcode explain} reads the top level and gives the relevance. */
interface Reading {
  /**
   * `true`: the dense layer reads every direction's output at the last position, as `LastStep`
   * does (a backward direction's output there has read one step); `false`: every direction's
   * final hidden state (a backward direction's after reading step 0).
   */
  readonly lastPosition: boolean;
  /** Whether to sum the relevance over the input features, per step. */
  readonly perStep: boolean;
}

/** LRP through `levels` and `dense` on `x`. */
async function explain(
  levels: Direction[][],
  dense: Linear,
  x: Tensor,
  options: LrpOptions,
  reading: Reading = { lastPosition: false, perStep: false },
): Promise<LrpResult> {
  if (!(dense instanceof Linear)) {
    throw new TypeError(`dense must be a Linear layer, got ${nameOf(dense)}`);
  }
  const top = levels[levels.length - 1];
  const width = top.reduce((sum, { weights }) => sum + weights.hiddenSize, 0);
  if (dense.inFeatures !== width) {
    throw new RangeError(
      `dense must read the final hidden state(s) of width ${width}, got a Linear with ` +
        `inFeatures ${dense.inFeatures}: make it Linear(${width}, classes)`,
    );
  }
  checkTensor("x", x);
  const inputSize = levels[0][0].weights.inputSize;
  checkShape("x", x.shape, [-1, -1, inputSize], "(batch, seqLen, inputSize)");
  const [B, T] = x.shape;
  if (B === 0 || T === 0) {
    throw new RangeError(
      `x must have at least one sequence and one step, got ${describe(x.shape)}`,
    );
  }
  const rule = checkRule(options);
  const lengths = options.lengths === undefined
    ? new Int32Array(B).fill(T)
    : checkLengths(options.lengths, B, T);
  if (options.returnStates !== undefined && typeof options.returnStates !== "boolean") {
    throw new TypeError(
      `options.returnStates must be a boolean, got ${describe(options.returnStates)}`,
    );
  }
  const returnStates = options.returnStates === true;
  // The states' relevance and padded batches take the float64 pass here, never a backend's.
  const wanted: LayerRelevanceOptions = {
    states: returnStates,
    ...(lengths.some((length) => length < T) ? { lengths } : {}),
  };
  const fast = !returnStates && wanted.lengths === undefined;

  // Forward, level by level, on the layers' backends: with the backend's relevance pass where it
  // has one (the activations stay on the device), else traced in float64 for the pass here. A
  // backward direction reads each sequence reversed within its length; the steps are causal, so
  // the padded steps after it change nothing that is read.
  const traces: Traced[][] = [];
  let input = x.data;
  for (const level of levels) {
    const I = level[0].weights.inputSize;
    const traced: Traced[] = [];
    for (const { layer, weights, reversed } of level) {
      const seen = reversed ? reverseWithin(input, B, T, I, lengths) : input;
      const xs = { shape: [B, T, I], data: seen };
      traced.push(await traceDirection(layer, weights, xs, rule, fast));
    }
    traces.push(traced);
    // The next level's input; the top level's hidden states are read at their last step only.
    if (traces.length < levels.length) {
      input = joinDirections(traced, level.map((d) => d.reversed), B, T, lengths);
    }
  }

  // The dense layer's ε-rule on the final hidden states.
  const C = dense.outFeatures;
  const final = new Float64Array(B * width);
  let offset = 0;
  // The step (in the order a direction read them) whose hidden state the dense layer reads.
  const readStep = (direction: Direction, b: number): number =>
    reading.lastPosition && direction.reversed ? 0 : lengths[b] - 1;
  traces[traces.length - 1].forEach((trace, d) => {
    const H = trace.hiddenSize;
    for (let b = 0; b < B; b++) {
      const step = readStep(top[d], b);
      final.set(
        trace.hidden.subarray((b * T + step) * H, (b * T + step + 1) * H),
        b * width + offset,
      );
    }
    offset += H;
  });
  const [weight, bias] = dense.parameters().map((p) => p.value.data);
  const scores = new Float64Array(B * C);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      let sum = dense.hasBias ? bias[c] : 0;
      for (let i = 0; i < width; i++) sum += final[b * width + i] * weight[c * width + i];
      scores[b * C + c] = sum;
    }
  }
  const target = resolveTargets(options.target, scores, B, C, "the dense layer");
  const finalRelevance = new Float64Array(B * width);
  for (let b = 0; b < B; b++) {
    const score = scores[b * C + target[b]], s = score >= 0 ? 1 : -1;
    const ratio = score / (score + rule.eps * s);
    const share = rule.biasFactor * ((dense.hasBias ? bias[target[b]] : 0) + rule.eps * s) *
      ratio / width;
    for (let i = 0; i < width; i++) {
      finalRelevance[b * width + i] = final[b * width + i] * weight[target[b] * width + i] * ratio +
        share;
    }
  }

  // Backward, level by level: the top level's relevance arrives at the step the dense layer read.
  const rest = new Float64Array(B);
  const states: LrpLevelStates[] = [];
  let arriving: Float64Array | null = null;
  let relevance = new Float64Array(0);
  for (let l = levels.length - 1; l >= 0; l--) {
    const level = levels[l];
    const I = level[0].weights.inputSize;
    relevance = new Float64Array(B * T * I);
    let from = 0;
    for (let d = 0; d < level.length; d++) {
      const trace = traces[l][d], H = trace.hiddenSize;
      const outputRelevance = new Float64Array(B * T * H);
      for (let b = 0; b < B; b++) {
        if (arriving === null) {
          outputRelevance.set(
            finalRelevance.subarray(b * width + from, b * width + from + H),
            (b * T + readStep(level[d], b)) * H,
          );
        } else {
          const outer = arriving.length / (B * T);
          for (let t = 0; t < T; t++) {
            const step = readPosition(t, lengths[b], level[d].reversed);
            outputRelevance.set(
              arriving.subarray((b * T + step) * outer + from, (b * T + step) * outer + from + H),
              (b * T + t) * H,
            );
          }
        }
      }
      from += H;
      const result = await trace.relevance(outputRelevance, wanted);
      const own = level[d].reversed ? reverseWithin(result.input, B, T, I, lengths) : result.input;
      for (let i = 0; i < own.length; i++) relevance[i] += own[i];
      for (let b = 0; b < B; b++) rest[b] += result.rest[b];
      if (returnStates) {
        const at = level[d].reversed ? "backward" : "forward";
        states[l] = { ...states[l], [at]: statesOf(result, level[d], B, T, lengths) };
      }
    }
    arriving = relevance;
  }
  return {
    relevance: reading.perStep
      ? { shape: [B, T], data: Float32Array.from(sumFeatures(relevance, B * T, inputSize)) }
      : { shape: [B, T, inputSize], data: Float32Array.from(relevance) },
    rest: { shape: [B], data: Float32Array.from(rest) },
    scores: { shape: [B, C], data: Float32Array.from(scores) },
    target,
    ...(returnStates ? { states } : {}),
  };
}

/** One direction's states' relevance, from the order it read the steps to their positions. */
function statesOf(
  result: Pick<LayerRelevance, "hidden" | "cell">,
  direction: Direction,
  B: number,
  T: number,
  lengths: Int32Array,
): LrpDirectionStates {
  const { k, hiddenSize: H } = direction.weights;
  const place = (data: Float64Array, F: number): Float32Array =>
    Float32Array.from(direction.reversed ? reverseWithin(data, B, T, F, lengths) : data);
  return {
    hidden: { shape: [B, T, H], data: place(result.hidden!, H) },
    cell: { shape: k === 1 ? [B, T, H] : [B, T, k, H], data: place(result.cell!, k * H) },
  };
}

/**
 * Runs one direction on `x` (as the layer reads it): on its backend's relevance forward when the
 * backend has a relevance pass for the cell and `fast`, else its forward, traced in float64 for
 * {@linkcode relevanceOfLayer}.
 */
async function traceDirection(
  layer: LSTM,
  weights: LayerWeights,
  x: Tensor,
  rule: EpsilonRule,
  fast: boolean,
): Promise<Traced> {
  const [B, T] = x.shape;
  const step = fast ? await runForRelevance(layer, x) : null;
  if (step !== null) {
    return {
      hiddenSize: weights.hiddenSize,
      hidden: step.output,
      relevance: (outputRelevance) => step.relevance(Float32Array.from(outputRelevance), rule),
    };
  }
  // The stochastic lanes as the backend chose them, so relevance follows what was read out.
  const { output, lanes } = await layer.forward(x, {
    returnLanes: offersExtra(weights.kind, "lanes"),
  });
  const trace = traceLayer(
    weights,
    B,
    T,
    Float64Array.from(x.data),
    Float64Array.from(output.data),
    lanes?.data ?? null,
  );
  return {
    hiddenSize: weights.hiddenSize,
    hidden: trace.hidden,
    relevance: (outputRelevance, wanted) =>
      Promise.resolve(relevanceOfLayer(trace, outputRelevance, rule, wanted)),
  };
}

/** The levels of a network, each one or two directions. */
function levelsOf(network: unknown): Direction[][] {
  if (network instanceof Stacked) {
    return network.layers.map((layer, i) => levelOf(layer, `network.layers[${i}]`));
  }
  return [levelOf(network, "network")];
}

function levelOf(layer: unknown, name: string): Direction[] {
  if (layer instanceof Bidirectional) {
    return [
      direction(layer.forwardLayer, `${name}.forwardLayer`, false),
      direction(layer.backwardLayer, `${name}.backwardLayer`, true),
    ];
  }
  return [direction(layer, name, false)];
}

/** The classes with an LRP rule: those of the variants with the table's `lrp` flag. */
const EXPLAINED = [
  ...new Set(Object.values(VARIANTS).filter((v) => v.lrp).map((v) => v.model)),
];

function direction(layer: unknown, name: string, reversed: boolean): Direction {
  // The variant is the one the layer runs (set by its constructor), never guessed from its class;
  // a layer whose hooks differ from its built-in class's runs other equations and is refused.
  if (
    !(layer instanceof LSTM) || !VARIANTS[cellVariant(layer).kind].lrp ||
    !usesBuiltinHooks(layer)
  ) {
    throw new TypeError(
      `${name} has no LRP rule: LRP explains ${EXPLAINED.slice(0, -1).join(", ")} and ` +
        `${EXPLAINED.at(-1)} layers (alone, in a Bidirectional, or in a Stacked of those), got ` +
        `${nameOf(layer)}${
          layer instanceof LSTM && !usesBuiltinHooks(layer) ? " with overridden hooks" : ""
        }`,
    );
  }
  const variant = cellVariant(layer);
  const values = Object.fromEntries(layer.parameters().map((p) => [p.name, p.value.data]));
  return {
    layer,
    reversed,
    weights: {
      kind: variant.kind,
      k: variant.k,
      maxPooling: variant.maxPooling,
      activation: layer.recurrentActivation,
      inputSize: layer.inputSize,
      hiddenSize: layer.hiddenSize,
      i2hWeight: values["i2h.weight"],
      i2hBias: values["i2h.bias"],
      h2hWeight: values["h2h.weight"],
      h2hBias: values["h2h.bias"],
      i2aWeight: values["i2a.weight"] ?? null,
      i2aBias: values["i2a.bias"] ?? null,
    },
  };
}

function nameOf(value: unknown): string {
  if (typeof value === "object" && value !== null) return value.constructor?.name ?? "an object";
  return describe(value);
}

function checkRule(options: LrpOptions): EpsilonRule {
  checkOptions(options);
  const rule = { eps: options.eps ?? 0.001, biasFactor: options.biasFactor ?? 0 };
  checkEpsilonRule(rule);
  return rule;
}
