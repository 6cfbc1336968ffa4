/**
 * The ArrayLSTM documentation's example, trained: `StochasticArrayLSTM(10, 128, 4)` on one-hot
 * token sequences (length 10, 10 tokens), a `Linear(128, 10)` on the last hidden state, log-softmax,
 * NLL loss and Adam, full batch.
 *
 * The task: name the FIRST token of the sequence. The answer is nine steps back when the last
 * hidden state is read, so the network must learn to keep it in its memory cells; a model that
 * cannot remember scores 10 % (chance). Accuracy is measured on held-out sequences.
 *
 * Run it with `deno task train:docs`; `--size small` (CI) trains a smaller network on fewer
 * sequences, `--backend js|wasm|webgpu` picks the backend. It exits with an error if the
 * held-out accuracy stays below the stated target, or as soon as a loss is not finite.
 *
 * @module
 */

import { exampleFlags } from "./_sizes.ts";
import {
  Adam,
  clipGradNorm,
  Linear,
  logSoftmax,
  nllLoss,
  oneHot,
  Random,
  reshape,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";

const SIZES = {
  // hidden units, training sequences, epochs, learning rate, target held-out accuracy
  full: { hidden: 128, batch: 1024, epochs: 40, lr: 1e-2, target: 0.95 },
  small: { hidden: 32, batch: 512, epochs: 40, lr: 2e-2, target: 0.85 },
};
const { size: { hidden: H, batch: B, epochs, lr, target }, backend } = exampleFlags(SIZES);
const [seqLen, classes, k] = [10, 10, 4];

function dataset(seed: number, size: number): { x: Tensor; y: number[] } {
  const random = new Random(seed);
  const tokens = Array.from(
    { length: size },
    () => Array.from({ length: seqLen }, () => Math.floor(random.uniform() * classes)),
  );
  return { x: oneHot(tokens, classes), y: tokens.map((row) => row[0]) };
}
const train = dataset(1, B);
const test = dataset(2, 512);

using lstm = new StochasticArrayLSTM(classes, H, k, { backend, seed: 1 });
const linear = new Linear(H, classes, { seed: 2 });
const params = [...lstm.parameters(), ...linear.parameters()];
using opt = new Adam(params, { lr });

/** Log-probabilities of the classes for `x`. */
async function predict(x: Tensor): Promise<Tensor> {
  const { hidden } = await lstm.forward(x);
  return logSoftmax(await linear.forward(reshape(hidden, [x.shape[0], H])));
}

function accuracy(logp: Tensor, y: number[]): number {
  let correct = 0;
  y.forEach((label, b) => {
    const row = logp.data.subarray(b * classes, (b + 1) * classes);
    if (row.indexOf(Math.max(...row)) === label) correct++;
  });
  return correct / y.length;
}

console.log(
  `StochasticArrayLSTM(${classes}, ${H}, ${k}) -> Linear(${H}, ${classes}) on ${await lstm
    .resolveBackend()}: predict the first of ${seqLen} tokens, ${B} sequences, Adam lr ${lr}`,
);
let testAccuracy = 0;
for (let epoch = 1; epoch <= epochs; epoch++) {
  const started = performance.now();
  lstm.train();
  linear.train();
  opt.zeroGrad();
  const logp = await predict(train.x);
  const loss = nllLoss(logp, train.y);
  if (!Number.isFinite(loss.data[0])) {
    console.error(
      `epoch ${epoch}: the loss is ${loss.data[0]}; stopping instead of training on it`,
    );
    Deno.exit(1);
  }
  await loss.backward();
  const norm = clipGradNorm(params, 1.0);
  opt.step();
  lstm.eval();
  linear.eval();
  testAccuracy = accuracy(await predict(test.x), test.y);
  console.log(
    `epoch ${String(epoch).padStart(2)}  loss ${loss.data[0].toFixed(4)}  train acc ${
      accuracy(logp, train.y).toFixed(3)
    }  held-out acc ${testAccuracy.toFixed(3)}  grad norm ${norm.toFixed(3)}  ${
      Math.round(performance.now() - started)
    } ms`,
  );
}
if (testAccuracy < target) {
  console.error(`held-out accuracy ${testAccuracy.toFixed(3)} is below the target ${target}`);
  Deno.exit(1);
}
console.log(`held-out accuracy ${testAccuracy.toFixed(3)} ≥ target ${target}`);
