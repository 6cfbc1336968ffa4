/**
 * A character language model, written with the public API, and the four recurrent variants
 * compared on it. What it teaches: the causal language-model loop (`Embedding` → recurrent model →
 * `Linear` at every step, `crossEntropy` against the next character, `Adam`, `clipGradNorm`),
 * evaluation in `eval()` mode, and how to read bits per character.
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
  clipGradNorm,
  crossEntropy,
  Embedding,
  Linear,
  LSTM,
  Random,
  StochasticArrayLSTM,
} from "../mod.ts";

const SIZES = {
  // characters of text, hidden units, embedding size, window length, batch, steps, learning rate
  full: { chars: 40_000, hidden: 128, embedding: 32, seqLen: 64, batch: 32, steps: 300, lr: 5e-3 },
  small: { chars: 4_000, hidden: 16, embedding: 8, seqLen: 16, batch: 8, steps: 15, lr: 1e-2 },
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
function windowsOf(sequence: number[]): { input: number[]; target: number[] }[] {
  const result = [];
  for (let start = 0; start + size.seqLen < sequence.length; start += size.seqLen) {
    result.push({
      input: sequence.slice(start, start + size.seqLen),
      target: sequence.slice(start + 1, start + size.seqLen + 1),
    });
  }
  return result;
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
  `${source}: ${chars.length} characters, ${V} distinct; ${trainWindows.length} training and ` +
    `${validationWindows.length} validation windows of ${size.seqLen}; ${size.steps} steps of ` +
    `${size.batch}; hidden ${size.hidden}`,
);
console.log(`uniform guessing: ${Math.log2(V).toFixed(3)} bits per character\n`);
console.log("model                     validation bits/char   train time");
for (const [name, make] of VARIANTS) {
  const embedding = new Embedding(V, size.embedding, { seed: 2 });
  using rnn = make(size.embedding, size.hidden);
  const head = new Linear(size.hidden, V, { seed: 3 });
  const params = [...embedding.parameters(), ...rnn.parameters(), ...head.parameters()];
  using optimizer = new Adam(params, { lr: size.lr });

  /** Logits `(B, T, V)` of a batch of windows. */
  const logitsOf = async (batch: { input: number[] }[]) => {
    const { output } = await rnn.forward(await embedding.forward(batch.map((w) => w.input)));
    return await head.forward(output);
  };

  const random = new Random(4); // the same batches for every variant
  const started = performance.now();
  for (const layer of [embedding, rnn, head]) layer.train();
  for (let step = 0; step < size.steps; step++) {
    const batch = Array.from(
      { length: size.batch },
      () => trainWindows[random.nextUint32() % trainWindows.length],
    );
    optimizer.zeroGrad();
    const loss = crossEntropy(await logitsOf(batch), batch.flatMap((w) => w.target));
    await loss.backward();
    clipGradNorm(params, 1.0);
    optimizer.step();
  }
  const seconds = (performance.now() - started) / 1000;

  for (const layer of [embedding, rnn, head]) layer.eval();
  let nats = 0;
  for (let start = 0; start < validationWindows.length; start += size.batch) {
    const batch = validationWindows.slice(start, start + size.batch);
    const loss = crossEntropy(await logitsOf(batch), batch.flatMap((w) => w.target), {
      reduction: "sum",
    });
    nats += loss.data[0];
  }
  const bits = nats / (validationWindows.length * size.seqLen) / Math.LN2;
  if (!Number.isFinite(bits)) throw new Error(`${name}: the validation loss is ${bits}`);
  console.log(
    `${name.padEnd(26)}${bits.toFixed(3).padStart(12)}   ${seconds.toFixed(1).padStart(14)} s`,
  );
}
