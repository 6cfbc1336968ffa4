/**
 * Text to token ids and training windows: tokenising (characters, words, event lines), the
 * vocabulary, the validation split and the seeded order of the batches.
 *
 * @module
 */

import { Random } from "../../mod.ts";
import type { TokenMode } from "./model_file.ts";
import { CliError } from "./io.ts";

/** The id of the padding token `""`; a target of `IGNORE` is not scored. */
export const PAD = 0;
/** The token that stands for every token never seen in training (id 1 of a vocabulary). */
export const UNK = "<unk>";
/** The target id the losses skip (`ignoreIndex`). */
export const IGNORE = -100;

/** Splits `text` into sequences of tokens: one sequence for text, one a line for events. */
export function tokenize(text: string, tokens: TokenMode): string[][] {
  if (tokens === "chars") return [Array.from(text)];
  if (tokens === "words") return [text.split(/\s+/).filter((word) => word !== "")];
  return text.split("\n").map((line) => line.split(/\s+/).filter((e) => e !== "")).filter((
    line,
  ) => line.length > 0);
}

/**
 * The vocabulary of `sequences`: the padding token, `<unk>` (for tokens never seen in training),
 * then every token in first-seen order.
 */
export function buildVocabulary(sequences: string[][]): string[] {
  return ["", ...new Set([UNK, ...sequences.flat()])];
}

/** Token ids of `tokens` and the tokens never seen in training. */
export interface Encoded {
  /** One id a token; unseen tokens are `<unk>`'s id. */
  ids: number[];
  /** The unseen tokens, in order. */
  unknown: string[];
}

/**
 * Token ids of `tokens`. A token outside the vocabulary becomes `<unk>`; a vocabulary without
 * `<unk>` (a file of an older `train`) makes it an error naming the token and `where`.
 */
export function encode(tokens: string[], vocabulary: string[], where: string): Encoded {
  const index = new Map(vocabulary.map((token, id) => [token, id]));
  const unk = index.get(UNK);
  const unknown: string[] = [];
  const ids = tokens.map((token) => {
    const id = index.get(token);
    if (id !== undefined && id !== PAD) return id;
    if (unk === undefined) {
      throw new CliError(
        `${where}: ${JSON.stringify(token)} is not in the model's vocabulary of ` +
          `${vocabulary.length - 1} tokens (the model has no <unk>: train it again to accept ` +
          "unseen tokens)",
      );
    }
    unknown.push(token);
    return unk;
  });
  return { ids, unknown };
}

/** The ids no prediction may be: padding, and `<unk>` when the vocabulary has it. */
export function unpredictable(vocabulary: readonly string[]): number[] {
  const unk = vocabulary.indexOf(UNK);
  return unk > 0 ? [PAD, unk] : [PAD];
}

/** Joins tokens back into text. */
export function decode(tokens: string[], mode: TokenMode): string {
  return tokens.join(mode === "chars" ? "" : " ");
}

/** One training example: `seqLen` input ids and the `seqLen` next ids (`IGNORE` past the end). */
export interface Window {
  /** Input ids, `PAD` past the end of the sequence. */
  input: number[];
  /** Target ids, `IGNORE` past the end. */
  target: number[];
}

/** Cuts every sequence into windows of `seqLen` steps (stride `seqLen`), padding the last. */
export function windows(sequences: number[][], seqLen: number): Window[] {
  const result: Window[] = [];
  for (const ids of sequences) {
    for (let start = 0; start + 1 < ids.length; start += seqLen) {
      const input = ids.slice(start, start + seqLen);
      const target = ids.slice(start + 1, start + seqLen + 1);
      while (target.length < seqLen) target.push(IGNORE);
      while (input.length < seqLen) input.push(PAD);
      result.push({ input, target });
    }
  }
  return result;
}

/**
 * Splits `sequences` into training and validation parts: text (one sequence) at the last
 * `fraction` of its tokens; events at the last `fraction` of the lines.
 */
export function split(
  sequences: number[][],
  fraction: number,
): { train: number[][]; validation: number[][] } {
  if (sequences.length === 1) {
    const [ids] = sequences;
    const cut = Math.round(ids.length * (1 - fraction));
    return { train: [ids.slice(0, cut)], validation: [ids.slice(cut)] };
  }
  const cut = Math.round(sequences.length * (1 - fraction));
  return { train: sequences.slice(0, cut), validation: sequences.slice(cut) };
}

/**
 * The window indices of batch `step` (0-based): each epoch visits every window once in an order
 * drawn from `(seed, epoch)`, so step `n` is the same batch whether or not the run was resumed.
 */
export function batchAt(step: number, count: number, batch: number, seed: number): number[] {
  const perEpoch = Math.max(1, Math.floor(count / batch));
  const epoch = Math.floor(step / perEpoch);
  const order = permutation(count, new Random(seed * 1_000_003 + epoch));
  const start = (step % perEpoch) * batch;
  return Array.from({ length: Math.min(batch, count) }, (_, i) => order[(start + i) % count]);
}

function permutation(count: number, random: Random): number[] {
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = random.nextUint32() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
