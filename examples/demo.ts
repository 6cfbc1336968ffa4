/**
 * The ArrayLSTM documentation's example as a program: 1024 random token sequences (length 10,
 * 10 classes), one-hot encoded, through a `StochasticArrayLSTM(10, 128, 4)`, a linear layer on the
 * last hidden state and a log-softmax over the 10 classes.
 *
 * Run it with `deno task demo` (add `--backend js|wasm|webgpu` to pick a backend).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type BackendName,
  oneHot,
  Random,
  StochasticArrayLSTM,
  type Tensor,
  uniform,
} from "../mod.ts";

const { values } = parseArgs({
  options: { backend: { type: "string", default: "auto" }, runs: { type: "string", default: "5" } },
});
const [batch, seqLen, classes, hiddenSize, k] = [1024, 10, 10, 128, 4];

const random = new Random(0);
const tokens = Array.from(
  { length: batch },
  () => Array.from({ length: seqLen }, () => Math.floor(random.uniform() * classes)),
);
const x = oneHot(tokens, classes);

using lstm = new StochasticArrayLSTM(classes, hiddenSize, k, {
  backend: values.backend as BackendName,
  seed: 42,
});
// The decoder, like PyTorch's nn.Linear(128, 10): weight and bias ~ U(±1/√128).
const bound = 1 / Math.sqrt(hiddenSize);
const weight = uniform([classes, hiddenSize], { low: -bound, high: bound, seed: 43 });
const bias = uniform([classes], { low: -bound, high: bound, seed: 44 });

/** log_softmax(h_T · Wᵀ + b) for every sequence: `(batch, classes)`. */
function decode(output: Tensor): Tensor {
  const logits = new Float32Array(batch * classes);
  for (let b = 0; b < batch; b++) {
    const last = output.data.subarray(
      ((b + 1) * seqLen - 1) * hiddenSize,
      (b + 1) * seqLen * hiddenSize,
    );
    let largest = -Infinity;
    for (let c = 0; c < classes; c++) {
      let sum = bias.data[c];
      for (let u = 0; u < hiddenSize; u++) sum += last[u] * weight.data[c * hiddenSize + u];
      logits[b * classes + c] = sum;
      largest = Math.max(largest, sum);
    }
    let total = 0;
    for (let c = 0; c < classes; c++) total += Math.exp(logits[b * classes + c] - largest);
    const logTotal = largest + Math.log(total);
    for (let c = 0; c < classes; c++) logits[b * classes + c] -= logTotal;
  }
  return { shape: [batch, classes], data: logits };
}

const backend = await lstm.resolveBackend();
const first = await lstm.forward(x); // compiles kernels, allocates, starts the Workers
// One more untimed call: the JIT's optimised code and the Workers' first full run are still
// warming up after the first call (about twice as slow as the calls after it).
await lstm.forward(x);
const runs = Number(values.runs);
if (!(Number.isInteger(runs) && runs >= 1)) {
  throw new TypeError(`--runs must be a positive integer, got ${JSON.stringify(values.runs)}`);
}
const times: number[] = [];
for (let run = 0; run < runs; run++) {
  const started = performance.now();
  await lstm.forward(x);
  times.push(performance.now() - started);
}
const msPerStep = times.sort((a, b) => a - b)[Math.floor(runs / 2)] / seqLen;
const logProbabilities = decode(first.output);

console.log(`backend        ${backend}`);
console.log(`input          [${x.shape}]  (batch, seq_len, classes), one-hot tokens`);
console.log(`output         [${first.output.shape}]`);
console.log(`hidden         [${first.hidden.shape}]`);
console.log(`state          [${first.state.shape}]`);
console.log(`log-softmax    [${logProbabilities.shape}]`);
console.log(
  `first row      ${
    Array.from(logProbabilities.data.subarray(0, classes), (v) => v.toFixed(3)).join(" ")
  }`,
);
console.log(
  `speed          ${
    msPerStep.toFixed(3)
  } ms per timestep, warm (batch ${batch}, median of ${runs} runs after 2 warm-ups)`,
);
