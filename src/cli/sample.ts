/**
 * `sample`: generates text from a trained model. Tokens are drawn on the CPU from the logits with
 * the package's seeded `Random`, so one seed gives one text on every backend (up to float32
 * rounding of the logits deciding a draw that falls on a boundary).
 *
 * @module
 */

import { Random, type Tensor } from "../../mod.ts";
import { decode, encode, tokenize, unpredictable } from "./data.ts";
import {
  CliError,
  type CliIO,
  numberFlag,
  parseFlags,
  seedFlag,
  stringFlag,
  stringFlags,
} from "./io.ts";
import { forwardFrom, MODEL_FLAGS, MODEL_FLAGS_HELP, openModel } from "./model_file.ts";

/** `sample --help`. */
export const SAMPLE_HELP = `Usage: sample --model MODEL.safetensors [options]

Generates text from a trained model; the same seed gives the same text on every backend.

${MODEL_FLAGS_HELP}  --prime TEXT       the text to continue; default: the first token of the vocabulary
  --length N         tokens to generate; default 200
  --temperature T    > 0; lower is more conservative; default 1
  --seed N           seed of the draws; default 0
`;

const FLAGS = { ...MODEL_FLAGS, ...stringFlags("prime", "length", "temperature", "seed") };

/** Runs `sample` with `args`; resolves to the exit status. */
export async function sample(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("sample", args, FLAGS);
  const length = numberFlag(values, "length", 200, { min: 0, max: 1e6, integer: true });
  const temperature = numberFlag(values, "temperature", 1, { min: 1e-6 });
  const seed = seedFlag(values, 0);
  const network = await openModel(values);
  try {
    const task = network.task;
    const never = unpredictable(task.vocabulary);
    const first = task.vocabulary.find((_, id) => !never.includes(id)) ?? "";
    const primeText = stringFlag(values, "prime", first);
    const primeTokens = tokenize(primeText, task.tokens).flat();
    if (primeTokens.length === 0) throw new CliError("--prime holds no token");
    const { ids, unknown } = encode(primeTokens, task.vocabulary, "--prime");
    if (unknown.length > 0) io.stderr(`${unseen("--prime", unknown)}\n`);
    const random = new Random(seed);
    const generated: string[] = [];
    let { logits, hidden, state } = await forwardFrom(network, [ids]);
    for (let n = 0; n < length; n++) {
      const next = draw(lastRow(logits), temperature, random, never);
      generated.push(task.vocabulary[next]);
      ({ logits, hidden, state } = await forwardFrom(network, [[next]], { hidden, state }));
    }
    io.stdout(decode([...primeTokens, ...generated], task.tokens) + "\n");
    return 0;
  } finally {
    network.model.dispose();
  }
}

/** The logits of the last step of a `(1, T, V)` tensor. */
export function lastRow(logits: Tensor): Float32Array {
  const V = logits.shape[logits.shape.length - 1];
  return logits.data.subarray(logits.data.length - V);
}

/** A note that `tokens` of `where` were never seen in training and read as `<unk>`. */
export function unseen(where: string, tokens: readonly string[]): string {
  const shown = [...new Set(tokens)].slice(0, 5).map((t) => JSON.stringify(t)).join(", ");
  return `note: ${where}: ${shown}${
    new Set(tokens).size > 5 ? ", ..." : ""
  } never seen in training, read as <unk>`;
}

/** Draws an id from `softmax(logits / temperature)`, never one of `never` (padding, `<unk>`). */
export function draw(
  logits: Float32Array,
  temperature: number,
  random: Random,
  never: readonly number[],
): number {
  let largest = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    if (!never.includes(id)) largest = Math.max(largest, logits[id]);
  }
  const weights = Array.from(
    logits,
    (value, id) => never.includes(id) ? 0 : Math.exp((value - largest) / temperature),
  );
  let threshold = random.uniform() * weights.reduce((a, b) => a + b, 0);
  for (let id = 0; id < weights.length; id++) {
    threshold -= weights[id];
    if (threshold < 0 && weights[id] > 0) return id;
  }
  return weights.findLastIndex((w) => w > 0);
}
