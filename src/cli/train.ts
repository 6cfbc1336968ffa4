/**
 * `train`: fits an Embedding → recurrent model → Linear network to a text (a causal language
 * model) or to event sequences (next-event prediction), holds out a validation split, reports bits
 * per token or top-1/top-5 accuracy, saves a checkpoint on Ctrl-C and resumes it exactly.
 *
 * @module
 */

import {
  Adam,
  type BackendName,
  clipGradNorm,
  crossEntropy,
  GRU,
  logSoftmax,
  type OptimizerStateDict,
  type Tensor,
} from "../../mod.ts";
import {
  batchAt,
  buildVocabulary,
  encode,
  IGNORE,
  split,
  tokenize,
  type Window,
  windows,
} from "./data.ts";
import {
  BACKEND_CHOICES,
  backendFlag,
  choiceFlag,
  CliError,
  type CliIO,
  numberFlag,
  parseFlags,
  readInput,
  readText,
  reason,
  stringFlag,
  writeOutput,
} from "./io.ts";
import {
  decodeModelFile,
  encodeModelFile,
  MODEL_CLASSES,
  type ModelClass,
  type ModelFileMeta,
  Network,
  type TaskSpec,
  type TrainingState,
  unprefixed,
} from "./model_file.ts";
import { takesK } from "../models/registry.ts";
import { lossPlot } from "./plot.ts";
import { Progress } from "./progress.ts";

/** `train --help`. */
export const TRAIN_HELP = `Usage: train --data FILE --out MODEL.safetensors [options]

Trains Embedding -> recurrent model -> Linear to predict the next token at every step.

  --data FILE          training data (UTF-8)
  --format F           text (a causal language model) | events (one sequence of event names a line); default text
  --tokens T           text only: chars | words; default chars
  --model M            ${MODEL_CLASSES.join(" | ")}; default ArrayLSTM (GRU runs on the
                       TypeScript reference on every backend)
  --hidden N           hidden units; default 64
  --k N                lanes of the array variants; default 4
  --embedding N        embedding size; default 32
  --seq-len N          steps per training window; default 32
  --batch N            windows per step; default 16
  --epochs N           passes over the training windows; default 1
  --max-steps N        stop after N steps in all (resumed steps count); default: no limit
  --lr X               Adam learning rate; default 0.01
  --clip X             gradient norm clip; default 1
  --seed N             weights and batch order; default 1
  --validation X       held-out fraction (text: the tail; events: the last lines); default 0.1
  --eval-every N       steps between validation losses; default: 10 evaluations a run
  --backend B          ${BACKEND_CHOICES}; default auto
  --out FILE           the model file (a checkpoint: training continues from it with --resume)
  --plot FILE.svg      train and validation loss curves
  --resume FILE        continue a run exactly from its model file (Ctrl-C saves one to --out)
`;

const FLAGS = {
  data: { type: "string" },
  format: { type: "string" },
  tokens: { type: "string" },
  model: { type: "string" },
  hidden: { type: "string" },
  k: { type: "string" },
  embedding: { type: "string" },
  "seq-len": { type: "string" },
  batch: { type: "string" },
  epochs: { type: "string" },
  "max-steps": { type: "string" },
  lr: { type: "string" },
  clip: { type: "string" },
  seed: { type: "string" },
  validation: { type: "string" },
  "eval-every": { type: "string" },
  backend: { type: "string" },
  out: { type: "string" },
  plot: { type: "string" },
  resume: { type: "string" },
} as const;

// Flags that shape the run; a resumed run takes them from its checkpoint.
const RUN_FLAGS = ["format", "tokens", "seq-len", "batch", "lr", "clip", "seed", "validation"];

/** Runs `train` with `args`; resolves to the exit status. */
export async function train(args: string[], io: CliIO): Promise<number> {
  const { values } = parseFlags("train", args, FLAGS);
  const resumeFrom = values.resume as string | undefined;
  const resumed = resumeFrom === undefined
    ? undefined
    : decodeModelFile(await readInput(resumeFrom, "checkpoint"), resumeFrom);
  if (resumed !== undefined && resumed.meta.training === undefined) {
    throw new CliError(
      `${resumeFrom} holds no training state to resume; it was not written by train`,
    );
  }
  for (const name of [...RUN_FLAGS, "model", "hidden", "k", "embedding"]) {
    if (resumed !== undefined && values[name] !== undefined) {
      throw new CliError(`--${name} is fixed by the checkpoint ${resumeFrom}; leave it out`);
    }
  }
  const saved = resumed?.meta.training?.flags ?? {};
  for (const name of RUN_FLAGS) {
    if (saved[name] !== undefined) values[name] = String(saved[name]);
  }
  const dataPath = stringFlag(values, "data");
  const out = stringFlag(values, "out");
  const format = choiceFlag(values, "format", ["text", "events"] as const, "text");
  const tokens: TaskSpec["tokens"] = format === "events"
    ? "events"
    : choiceFlag(values, "tokens", ["chars", "words"] as const, "chars");
  const seqLen = numberFlag(values, "seq-len", 32, { min: 1, max: 4096, integer: true });
  const batch = numberFlag(values, "batch", 16, { min: 1, max: 65536, integer: true });
  const epochs = numberFlag(values, "epochs", 1, { min: 1, max: 1e6, integer: true });
  const maxSteps = numberFlag(values, "max-steps", Infinity, { min: 1, integer: true });
  const lr = numberFlag(values, "lr", 0.01, { min: 0 });
  const clip = numberFlag(values, "clip", 1, { min: 0 });
  const seed = numberFlag(values, "seed", 1, { min: 0, max: 2 ** 31, integer: true });
  const fraction = numberFlag(values, "validation", 0.1, { min: 0, max: 0.9 });
  const backend = backendFlag(values);

  const sequences = tokenize(await readText(dataPath, "data"), tokens);
  if (sequences.flat().length < 2) {
    throw new CliError(`${dataPath} holds fewer than 2 tokens; nothing to learn from`);
  }
  const embeddingSize = numberFlag(values, "embedding", 32, { min: 1, max: 65536, integer: true });
  const meta: ModelFileMeta = resumed?.meta ?? {
    version: 1,
    model: modelSpec(values, embeddingSize),
    task: { format, tokens, vocabulary: buildVocabulary(sequences), embeddingSize },
  };
  const vocabulary = meta.task!.vocabulary;
  const ids = sequences.map((s, line) => encode(s, vocabulary, `${dataPath} line ${line + 1}`));
  const parts = split(ids, fraction);
  const trainWindows = windows(parts.train, seqLen);
  const validationWindows = windows(parts.validation, seqLen);
  if (trainWindows.length === 0) {
    throw new CliError(`${dataPath} leaves no training window of --seq-len ${seqLen}`);
  }

  const network = new Network(meta, backend as BackendName, seed);
  try {
    const params = network.parameters();
    using optimizer = new Adam(params, { lr });
    const state: TrainingState = resumed?.meta.training ?? {
      step: 0,
      flags: { format, tokens, "seq-len": seqLen, batch, lr, clip, seed, validation: fraction },
      optimizer: { counters: [], options: {} },
      history: { train: [], validation: [] },
    };
    if (resumed !== undefined) {
      network.loadStateDict(resumed.tensors);
      optimizer.loadStateDict(optimizerDict(state, resumed.tensors));
    }
    const perEpoch = Math.max(1, Math.floor(trainWindows.length / batch));
    const total = Math.min(maxSteps, epochs * perEpoch);
    if (state.step >= total) {
      throw new CliError(
        `the checkpoint is at step ${state.step}, not before the end (${total}); ` +
          "raise --epochs or --max-steps",
      );
    }
    const evalEvery = numberFlag(values, "eval-every", Math.max(1, Math.round(total / 10)), {
      min: 1,
      integer: true,
    });
    const modelName = `${meta.model.class}(${Object.values(meta.model.args).join(", ")})`;
    io.stderr(
      `${modelName} on ${
        network.rnn instanceof GRU ? "the TypeScript reference" : await network.rnn.resolveBackend()
      }: ${vocabulary.length - 1} ` +
        `${tokens}, ${trainWindows.length} training and ${validationWindows.length} validation ` +
        `windows of ${seqLen}; steps ${state.step + 1}..${total}\n`,
    );
    const progress = new Progress(io, total, state.step);
    let report = "";
    const listener = interruptSignal(io);
    try {
      while (state.step < total) {
        const chosen = batchAt(state.step, trainWindows.length, batch, seed)
          .map((i) => trainWindows[i]);
        network.train(true);
        optimizer.zeroGrad();
        const { logits } = await network.forward(chosen.map((w) => w.input));
        const loss = crossEntropy(logits, chosen.flatMap((w) => w.target));
        const value = loss.data[0];
        if (!Number.isFinite(value)) {
          throw new CliError(`step ${state.step + 1}: the loss is ${value}; lower --lr`);
        }
        await loss.backward();
        if (clip > 0) clipGradNorm(params, clip);
        optimizer.step();
        state.step++;
        state.history.train.push([state.step, value]);
        progress.update(state.step, value);
        if (
          validationWindows.length > 0 && (state.step % evalEvery === 0 || state.step === total)
        ) {
          const metrics = await evaluate(network, validationWindows, batch);
          state.history.validation.push([state.step, metrics.loss]);
          report = `validation ${describeMetrics(metrics, tokens)} at step ${state.step}`;
          progress.line(`step ${state.step}  ${report}`);
        }
        if (listener.signal.aborted && state.step < total) {
          await optimizer.sync(); // webgpu keeps weights and state on the device
          await save(out, meta, state, network, optimizer.stateDict());
          progress.line(
            `interrupted at step ${state.step}: checkpoint saved to ${out}; continue with ` +
              `--resume ${out}`,
          );
          return 130;
        }
      }
    } finally {
      listener.dispose();
    }
    await optimizer.sync();
    await save(out, meta, state, network, optimizer.stateDict());
    if (typeof values.plot === "string") {
      await writeOutput(
        values.plot,
        lossPlot([
          { label: "train", color: "#1f77b4", points: state.history.train },
          { label: "validation", color: "#d62728", points: state.history.validation },
        ], `${modelName}: cross-entropy (nats)`),
      );
    }
    io.stdout(`saved ${out}${report ? `; ${report}` : ""}\n`);
    return 0;
  } finally {
    network.dispose();
  }
}

/** Validation metrics: mean loss (nats), bits per token, top-1 and top-5 accuracy. */
export interface Metrics {
  /** Mean cross-entropy over the scored targets, in nats. */
  loss: number;
  /** `loss / ln 2`: bits per character (or word, or event). */
  bits: number;
  /** Fraction of targets that are the most likely prediction. */
  top1: number;
  /** Fraction of targets among the five most likely predictions. */
  top5: number;
}

/** The metrics of `network` on `data`, in evaluation mode, `batch` windows at a time. */
export async function evaluate(
  network: Network,
  data: Window[],
  batch: number,
): Promise<Metrics> {
  network.train(false);
  let [nats, count, top1, top5] = [0, 0, 0, 0];
  for (let start = 0; start < data.length; start += batch) {
    const chunk = data.slice(start, start + batch);
    const { logits } = await network.forward(chunk.map((w) => w.input));
    const logp = logSoftmax(logits);
    const V = logp.shape[logp.shape.length - 1];
    chunk.flatMap((w) => w.target).forEach((target, row) => {
      if (target === IGNORE) return;
      const scores = logp.data.subarray(row * V, (row + 1) * V);
      const better = scores.reduce((n, s) => n + (s > scores[target] ? 1 : 0), 0);
      nats -= scores[target];
      count++;
      if (better < 1) top1++;
      if (better < 5) top5++;
    });
  }
  const loss = nats / Math.max(1, count);
  return { loss, bits: loss / Math.LN2, top1: top1 / count, top5: top5 / count };
}

/** The metrics as one line: bits per character or word for text, accuracies for events. */
export function describeMetrics(m: Metrics, tokens: TaskSpec["tokens"]): string {
  return tokens !== "events"
    ? `loss ${m.loss.toFixed(4)}  ${m.bits.toFixed(3)} bits per ${tokens.slice(0, -1)}`
    : `loss ${m.loss.toFixed(4)}  top-1 ${(100 * m.top1).toFixed(1)} %  top-5 ${
      (100 * m.top5).toFixed(1)
    } %`;
}

function modelSpec(values: Record<string, unknown>, embedding: number): ModelFileMeta["model"] {
  const cls = choiceFlag(values, "model", MODEL_CLASSES, "ArrayLSTM") as ModelClass;
  const hiddenSize = numberFlag(values, "hidden", 64, { min: 1, max: 65536, integer: true });
  const args: ModelFileMeta["model"]["args"] = { inputSize: embedding, hiddenSize };
  if (takesK(cls)) {
    args.k = numberFlag(values, "k", 4, { min: 1, max: 64, integer: true });
  } else if (values.k !== undefined) {
    throw new CliError(`--k applies to the array variants, not ${cls}`);
  }
  return { class: cls, args };
}

/** The optimizer's `stateDict` from a checkpoint's counters, options and buffers. */
function optimizerDict(state: TrainingState, tensors: Record<string, Tensor>): OptimizerStateDict {
  return {
    options: state.optimizer.options,
    state: state.optimizer.counters.map((counters, index) =>
      counters === null ? null : { ...counters, ...unprefixed(`optimizer.${index}.`, tensors) }
    ),
  };
}

/** Writes the model file with the training state: parameters, optimizer buffers, metadata. */
async function save(
  path: string,
  meta: ModelFileMeta,
  state: TrainingState,
  network: Network,
  optimizer: OptimizerStateDict,
): Promise<void> {
  const tensors: Record<string, Tensor> = network.stateDict();
  const counters = optimizer.state.map((entry, index) => {
    if (entry === null) return null;
    const numbers: Record<string, number> = {};
    for (const [name, value] of Object.entries(entry)) {
      if (typeof value === "number") numbers[name] = value;
      else tensors[`optimizer.${index}.${name}`] = value;
    }
    return numbers;
  });
  state.optimizer = { counters, options: optimizer.options };
  try {
    await writeOutput(path, encodeModelFile({ meta: { ...meta, training: state }, tensors }));
  } catch (error) {
    throw error instanceof CliError ? error : new CliError(`cannot save ${path}: ${reason(error)}`);
  }
}

/** `io.interrupt`, or Ctrl-C (SIGINT) while training runs. */
function interruptSignal(io: CliIO): { signal: AbortSignal; dispose(): void } {
  if (io.interrupt !== undefined) return { signal: io.interrupt, dispose() {} };
  const controller = new AbortController();
  const onInterrupt = () => controller.abort();
  Deno.addSignalListener("SIGINT", onInterrupt);
  return {
    signal: controller.signal,
    dispose: () => Deno.removeSignalListener("SIGINT", onInterrupt),
  };
}
