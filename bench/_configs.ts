/**
 * The shapes every benchmark uses, and the arithmetic of a forward step.
 *
 * @module
 */

import {
  Adam,
  ArrayLSTM,
  AttentionArrayLSTM,
  type BackendName,
  Linear,
  logSoftmax,
  LSTM,
  nllLoss,
  oneHot,
  randn,
  Random,
  reshape,
  StochasticArrayLSTM,
  type Tensor,
} from "../mod.ts";

/** A benchmark shape: batch, sequence length, input and hidden sizes, lanes. */
export interface BenchConfig {
  name: string;
  batch: number;
  seqLen: number;
  inputSize: number;
  hiddenSize: number;
  k: number;
}

/** The documentation's configuration, a large one, and a batch-1 latency case. */
export const CONFIGS: Record<"doc" | "big" | "latency", BenchConfig> = {
  doc: { name: "doc", batch: 1024, seqLen: 10, inputSize: 10, hiddenSize: 128, k: 4 },
  big: { name: "big", batch: 256, seqLen: 100, inputSize: 64, hiddenSize: 256, k: 4 },
  latency: { name: "latency", batch: 1, seqLen: 100, inputSize: 64, hiddenSize: 256, k: 4 },
};

/** The model classes, by the name benchmarks print. */
export const MODELS = ["LSTM", "ArrayLSTM", "AttentionArrayLSTM", "StochasticArrayLSTM"] as const;

/** Builds a model of `kind` for `config` on `backend`, with fixed weights. */
export function makeModel(
  kind: typeof MODELS[number],
  config: BenchConfig,
  backend: BackendName,
): LSTM {
  const { inputSize: I, hiddenSize: H, k } = config;
  const options = { backend, seed: 1 };
  switch (kind) {
    case "LSTM":
      return new LSTM(I, H, options);
    case "ArrayLSTM":
      return new ArrayLSTM(I, H, k, options);
    case "AttentionArrayLSTM":
      return new AttentionArrayLSTM(I, H, k, options);
    case "StochasticArrayLSTM":
      return new StochasticArrayLSTM(I, H, k, options);
  }
}

/** A fixed random input for `config`. */
export function makeInput(config: BenchConfig): Tensor {
  return randn([config.batch, config.seqLen, config.inputSize], { seed: 2 });
}

/** Floating-point operations of one time step (the GEMMs: 2 per multiply-add). */
export function flopsPerStep(kind: typeof MODELS[number], config: BenchConfig): number {
  const { batch: B, inputSize: I, hiddenSize: H } = config;
  const k = kind === "LSTM" ? 1 : config.k;
  const gemm = 2 * B * (I + H) * 4 * k * H;
  return kind === "AttentionArrayLSTM" ? gemm + 2 * B * I * k * H : gemm;
}

/**
 * The documentation's network for training benchmarks: `ArrayLSTM(10, 128, 4) -> Linear(128, 10)`
 * at the `doc` configuration, with one-hot input of seeded tokens, class targets and an Adam
 * optimizer. `step()` is one training step: forward, loss, backward, Adam.
 */
export interface DocTraining extends Disposable {
  /** One step: `zeroGrad`, forward, `nllLoss(logSoftmax(linear(hidden)))`, backward, Adam. */
  step(): Promise<number>;
}

/** Builds {@linkcode DocTraining} on `backend`, for a config shaped like `CONFIGS.doc`. */
export function docTraining(backend: BackendName, config: BenchConfig = CONFIGS.doc): DocTraining {
  const { batch: B, seqLen: T, inputSize: I, hiddenSize: H, k } = config;
  const random = new Random(3);
  const rows = Array.from(
    { length: B },
    () => Array.from({ length: T }, () => Math.floor(random.uniform() * I)),
  );
  const x = oneHot(rows, I);
  const y = rows.map((row) => row[0]);
  const lstm = new ArrayLSTM(I, H, k, { backend, seed: 1 }).train();
  const linear = new Linear(H, I, { seed: 2 }).train();
  const opt = new Adam([...lstm.parameters(), ...linear.parameters()], { lr: 1e-3 });
  return {
    async step() {
      opt.zeroGrad();
      const { hidden } = await lstm.forward(x);
      const logits = await linear.forward(reshape(hidden, [B, H]));
      const loss = nllLoss(logSoftmax(logits), y);
      await loss.backward();
      opt.step();
      return loss.data[0];
    },
    [Symbol.dispose]() {
      opt.dispose();
      lstm.dispose();
    },
  };
}
