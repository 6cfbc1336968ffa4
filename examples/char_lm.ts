/**
 * A character language model, written with the public API, and the four recurrent variants
 * compared on it. What it teaches: a causal language model as a `Sequential` (`Embedding` →
 * recurrent model → `Linear` at every step), trained by `fit` (cross-entropy against the next
 * character, `Adam`, gradient clipping, a validation pass per epoch), and how to read bits per
 * character (`bitsPerToken`).
 *
 * The text is the GNU GPL version 3 as Debian ships it in `base-files`
 * (`/usr/share/common-licenses/GPL-3`); where that file is absent, the committed excerpt
 * `examples/data/gpl3_excerpt.txt` (its first 12 000 characters). The last 10 % is held out.
 *
 * Run it with `deno task example:char_lm`; `--size small` (CI) trains smaller models for fewer
 * steps, `--backend js|wasm|webgpu` picks the backend. It prints one table: validation bits per
 * character (uniform guessing over the alphabet scores log2 of its size) and training time.
 *
 * @module
 */

import { exampleFlags } from "./_sizes.ts";
import {
  Adam,
  ArrayLSTM,
  AttentionArrayLSTM,
  bitsPerToken,
  Embedding,
  fit,
  Linear,
  LSTM,
  Sequential,
  StochasticArrayLSTM,
} from "../mod.ts";

const SIZES = {
  // characters of text, hidden units, embedding size, window length, batch, epochs, learning rate
  full: { chars: 40_000, hidden: 128, embedding: 32, seqLen: 64, batch: 32, epochs: 16, lr: 5e-3 },
  small: { chars: 4_000, hidden: 16, embedding: 8, seqLen: 16, batch: 8, epochs: 5, lr: 1e-2 },
};
const { size, backend } = exampleFlags(SIZES);

const DEBIAN_TEXT = "/usr/share/common-licenses/GPL-3";
let source = DEBIAN_TEXT;
let text: string;
try {
  text = await Deno.readTextFile(DEBIAN_TEXT);
} catch {
  source = "examples/data/gpl3_excerpt.txt";
  text = await Deno.readTextFile(new URL("./data/gpl3_excerpt.txt", import.meta.url));
}
const chars = Array.from(text.slice(0, size.chars));
const alphabet = [...new Set(chars)];
const ids = chars.map((c) => alphabet.indexOf(c));
const cut = Math.floor(ids.length * 0.9);
const [trainIds, validationIds] = [ids.slice(0, cut), ids.slice(cut)];
const V = alphabet.length;

/** Windows of `seqLen` inputs and their next characters, one every `seqLen` characters. */
function windowsOf(sequence: number[]): { inputs: number[][]; targets: number[][] } {
  const inputs = [], targets = [];
  for (let start = 0; start + size.seqLen < sequence.length; start += size.seqLen) {
    inputs.push(sequence.slice(start, start + size.seqLen));
    targets.push(sequence.slice(start + 1, start + size.seqLen + 1));
  }
  return { inputs, targets };
}
const trainWindows = windowsOf(trainIds);
const validationWindows = windowsOf(validationIds);

const VARIANTS: [string, (input: number, hidden: number) => LSTM][] = [
  ["LSTM", (i, h) => new LSTM(i, h, { backend, seed: 1 })],
  ["ArrayLSTM k=2", (i, h) => new ArrayLSTM(i, h, 2, { backend, seed: 1 })],
  ["ArrayLSTM k=4", (i, h) => new ArrayLSTM(i, h, 4, { backend, seed: 1 })],
  ["AttentionArrayLSTM k=4", (i, h) => new AttentionArrayLSTM(i, h, 4, { backend, seed: 1 })],
  ["StochasticArrayLSTM k=4", (i, h) => new StochasticArrayLSTM(i, h, 4, { backend, seed: 1 })],
];

console.log(
  `${source}: ${chars.length} characters, ${V} distinct; ${trainWindows.inputs.length} training ` +
    `and ${validationWindows.inputs.length} validation windows of ${size.seqLen}; ` +
    `${size.epochs} epochs in batches of ${size.batch}; hidden ${size.hidden}`,
);
console.log(`uniform guessing: ${Math.log2(V).toFixed(3)} bits per character\n`);
console.log("model                     validation bits/char   train time");
for (const [name, make] of VARIANTS) {
  // (B, T) character ids -> (B, T, V) logits of the next character.
  using model = new Sequential([
    new Embedding(V, size.embedding, { seed: 2 }),
    make(size.embedding, size.hidden),
    new Linear(size.hidden, V, { seed: 3 }),
  ]);
  using optimizer = new Adam(model.parameters(), { lr: size.lr });
  const started = performance.now();
  const history = await fit(model, trainWindows, {
    optimizer,
    epochs: size.epochs,
    batchSize: size.batch,
    seed: 4, // the same batches for every variant
    clipGradNorm: 1.0,
    validation: validationWindows,
    metrics: [bitsPerToken()],
  });
  const seconds = (performance.now() - started) / 1000;
  const bits = history.epochs.at(-1)!.metrics.val_bits_per_token;
  if (!Number.isFinite(bits)) throw new Error(`${name}: the validation loss is ${bits}`);
  console.log(
    `${name.padEnd(26)}${bits.toFixed(3).padStart(12)}   ${seconds.toFixed(1).padStart(14)} s`,
  );
}
