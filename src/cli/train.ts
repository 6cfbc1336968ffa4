/**
 * `train`: fits a `Sequential` of Embedding → recurrent model → Linear with `fit` to a text (a
 * causal language model) or to event sequences (next-event prediction), holds out a validation
 * split, reports bits per token or top-1/top-5 accuracy, and keeps its work: every output is
 * checked before training, checkpoints are written atomically every `--save-every`, on SIGINT
 * and SIGTERM and at the end, and `--resume` continues a run exactly.
 *
 * @module
 */

import { resolve } from "node:path";
import {
  accuracy,
  Adam,
  type Batch,
  bitsPerToken,
  type Callback,
  fit,
  GRU,
  loadSafetensors,
  type Metric,
  progress,
  topKAccuracy,
} from "../../mod.ts";
import { optimizerDict, saveCheckpoint, sha256, stopRequests } from "./checkpoint.ts";
import { batchAt, buildVocabulary, encode, split, tokenize, type Window, windows } from "./data.ts";
import { decodeData, ENCODINGS, rawLogWarning } from "./data_checks.ts";
import { checkOutputs, type OutputFile, siblingPath, writeOutput } from "./files.ts";
import {
  backendFlag,
  choiceFlag,
  CliError,
  type CliIO,
  numberFlag,
  parseFlags,
  readInput,
  seedFlag,
  stringFlag,
} from "./io.ts";
import {
  MODEL_CLASSES,
  type ModelClass,
  type ModelSpec,
  newTaskModel,
  nonFinite,
  readTask,
  readTaskModel,
  type TaskMetadata,
  type TokenMode,
  type TrainingState,
} from "./model_file.ts";
import { takesK } from "../models/registry.ts";
import { lossPlot } from "./plot.ts";
import {
  recordedFlags,
  resumedFlags,
  saveEveryFlag,
  TRAIN_FLAGS,
  TRAIN_HELP,
} from "./train_flags.ts";

export { TRAIN_HELP };

/** Runs `train` with `args`; resolves to the exit status. */
export async function train(args: string[], io: CliIO): Promise<number> {
  const { values: given } = parseFlags("train", args, TRAIN_FLAGS);
  const resumeFrom = given.resume as string | undefined;
  let checkpointBytes: Uint8Array | undefined;
  let resumed: { spec: ModelSpec; task: TaskMetadata; training: TrainingState } | undefined;
  let recorded: Record<string, string | number> = {};
  if (resumeFrom !== undefined) {
    checkpointBytes = await readInput(resumeFrom, "checkpoint");
    const { spec, task } = readTask(checkpointBytes, resumeFrom);
    if (task.training === undefined) {
      throw new CliError(
        `${resumeFrom} holds no training state to resume; it was not written by train`,
      );
    }
    resumed = { spec, task, training: task.training };
    recorded = recordedFlags(spec, task, task.training);
  }
  const values = resumeFrom === undefined ? given : resumedFlags(given, recorded, resumeFrom);
  const keep = choiceFlag(values, "keep", ["last", "best"] as const, "last");
  if (resumeFrom !== undefined && values.out === undefined) {
    values.out = keep === "best" && typeof recorded.out === "string" ? recorded.out : resumeFrom;
  }
  const dataPath = stringFlag(values, "data");
  const out = stringFlag(values, "out");
  const plot = typeof values.plot === "string" ? values.plot : undefined;
  const format = choiceFlag(values, "format", ["text", "events"] as const, "text");
  const tokens: TokenMode = format === "events"
    ? "events"
    : choiceFlag(values, "tokens", ["chars", "words"] as const, "chars");
  const encoding = choiceFlag(values, "encoding", ENCODINGS, "utf-8");
  const seqLen = numberFlag(values, "seq-len", 32, { min: 1, max: 4096, integer: true });
  const batch = numberFlag(values, "batch", 16, { min: 1, max: 65536, integer: true });
  const epochs = numberFlag(values, "epochs", 1, { min: 1, max: 1e6, integer: true });
  const maxSteps = numberFlag(values, "max-steps", Infinity, { min: 1, integer: true });
  const lr = numberFlag(values, "lr", 0.01, { min: 0 });
  const clip = numberFlag(values, "clip", 1, { min: 0 });
  const seed = seedFlag(values, 1);
  const fraction = numberFlag(values, "validation", 0.1, { min: 0, max: 0.9 });
  const valBatches = numberFlag(values, "val-batches", 20, { min: 1, integer: true });
  const saveEvery = saveEveryFlag(values["save-every"]);
  const backend = backendFlag(values);
  const embeddingSize = numberFlag(values, "embedding", 32, { min: 1, max: 65536, integer: true });
  const model = modelSpec(values, embeddingSize);
  const dataChanged = values["data-changed"];
  if (dataChanged !== undefined && dataChanged !== "ok") {
    throw new CliError(`--data-changed takes ok, got ${JSON.stringify(dataChanged)}`);
  }
  if (keep === "best" && fraction === 0) {
    throw new CliError("--keep best keeps the best validation loss: it needs --validation > 0");
  }

  const bytes = await readInput(dataPath, "data");
  // Every output is checked before any work, so a bad path is not found after hours of training.
  const last = keep === "best" ? siblingPath(out, "last") : out;
  const outputs: OutputFile[] = [{ flag: "--out", path: out }];
  if (last !== out) outputs.push({ flag: "--out's last-step checkpoint", path: last });
  if (plot !== undefined) outputs.push({ flag: "--plot", path: plot });
  const ownFiles = [recorded.out, recorded.plot].filter((p) => typeof p === "string") as string[];
  if (typeof recorded.out === "string" && keep === "best") {
    ownFiles.push(siblingPath(recorded.out, "last"));
  }
  await checkOutputs(outputs, {
    inputs: [{ flag: "--data", path: dataPath }],
    overwrite: values.overwrite === true,
    replaceable: resumeFrom === undefined ? [] : [resumeFrom, ...ownFiles],
    existingHint: ", or --resume it to continue the run it holds",
  });

  const dataSha256 = await sha256(bytes);
  const previous = resumed?.training.dataSha256;
  if (previous !== undefined && previous !== dataSha256 && dataChanged !== "ok") {
    throw new CliError(
      `${dataPath} is not the data the run in ${resumeFrom} was trained on (its SHA-256 ` +
        "differs): pass --data-changed ok to continue that run on this data anyway",
    );
  }
  const text = decodeData(bytes, dataPath, encoding);
  const sequences = tokenize(text, tokens);
  if (format === "events") {
    const warning = rawLogWarning(text.split("\n"), dataPath);
    if (warning !== null) io.stderr(`warning: ${warning}\n`);
  }
  if (sequences.flat().length < 2) {
    throw new CliError(`${dataPath} holds fewer than 2 tokens; nothing to learn from`);
  }
  const task: TaskMetadata = resumed?.task ?? {
    format,
    tokens,
    vocabulary: buildVocabulary(sequences),
  };
  const vocabulary = task.vocabulary;
  const ids = sequences.map((s, line) => encode(s, vocabulary, `${dataPath} line ${line + 1}`).ids);
  const parts = split(ids, fraction);
  const trainWindows = windows(parts.train, seqLen);
  const validationWindows = windows(parts.validation, seqLen);
  if (trainWindows.length === 0) {
    throw new CliError(`${dataPath} leaves no training window of --seq-len ${seqLen}`);
  }
  if (fraction > 0 && validationWindows.length === 0) {
    throw new CliError(tooSmallForValidation(dataPath, ids, fraction, format));
  }

  const network = checkpointBytes === undefined
    ? newTaskModel(model, task, backend, seed)
    : readTaskModel(checkpointBytes, resumeFrom!, backend);
  try {
    using optimizer = new Adam(network.model.parameters(), { lr });
    const state: TrainingState = resumed?.training ?? {
      step: 0,
      flags: {},
      optimizer: { counters: [], options: {} },
      history: { train: [], validation: [] },
    };
    if (checkpointBytes !== undefined) {
      optimizer.loadStateDict(optimizerDict(state, loadSafetensors(checkpointBytes)));
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
    state.dataSha256 = dataSha256;
    state.flags = {
      ...state.flags,
      ...Object.fromEntries(
        Object.entries({
          format,
          tokens: format === "events" ? undefined : tokens,
          encoding,
          model: model.class,
          hidden: model.args.hiddenSize,
          k: model.args.k,
          embedding: embeddingSize,
          "seq-len": seqLen,
          batch,
          epochs,
          "max-steps": Number.isFinite(maxSteps) ? maxSteps : undefined,
          lr,
          clip,
          seed,
          validation: fraction,
          "eval-every": evalEvery,
          "val-batches": valBatches,
          "save-every": typeof values["save-every"] === "string" ? values["save-every"] : "5m",
          keep,
          backend,
          data: resolve(dataPath),
          out: resolve(out),
          plot: plot === undefined ? undefined : resolve(plot),
        }).filter(([, v]) => v !== undefined),
      ) as Record<string, string | number>,
    };
    const modelName = `${network.spec.class}(${Object.values(network.spec.args).join(", ")})`;
    const validation = toBatches(validationWindows, batch).slice(0, valBatches);
    io.stderr(
      `${modelName} on ${
        network.rnn instanceof GRU ? "the TypeScript reference" : await network.rnn.resolveBackend()
      }: ${vocabulary.length - 1} ` +
        `${tokens}, ${trainWindows.length} training and ${validationWindows.length} validation ` +
        `windows of ${seqLen} (validation reads ${validation.length} batches); steps ` +
        `${state.step + 1}..${total}\n`,
    );

    const diverged = (what: string): CliError =>
      new CliError(
        `step ${state.step}: ${what}, training diverged and stopped; ${
          savedStep === null
            ? "nothing was saved"
            : `${last} keeps the checkpoint of step ${savedStep}`
        }; train again with a lower --lr`,
      );
    const checkpoint = async (path: string): Promise<void> => {
      await optimizer.sync(); // webgpu keeps weights and state on the device
      // A checkpoint is only ever replaced by a good one.
      const bad = nonFinite(network.model.stateDict());
      if (bad !== null) throw diverged(`the weights are not finite (${bad})`);
      await saveCheckpoint(path, task, state, network.model, optimizer.stateDict());
      if (path === last) savedStep = state.step;
    };
    const writePlot = async (): Promise<void> => {
      if (plot === undefined) return;
      await writeOutput(
        plot,
        lossPlot([
          { label: "train", color: "#1f77b4", points: state.history.train },
          { label: "validation", color: "#d62728", points: state.history.validation },
        ], `${modelName}: cross-entropy (nats)`),
      );
    };
    let savedStep: number | null = resumeFrom !== undefined && resolve(resumeFrom) === resolve(last)
      ? state.step
      : null;
    const status = statusLines(io);
    const report = progress({
      write: status.progress,
      intervalSeconds: io.isTerminal ? 0.1 : 2,
      totalSteps: total,
    });
    const stops = stopRequests(io);
    let lastSave = performance.now();
    let chunkEnd = 0;
    let saveAfterValidation = false;
    const saveLast = async (): Promise<void> => {
      await checkpoint(last);
      lastSave = performance.now();
      saveAfterValidation = false;
    };
    const record: Callback = {
      onBatchEnd(log): void {
        state.step = log.globalStep;
        if (!Number.isFinite(log.loss)) throw diverged(`the loss is ${log.loss}`);
        state.history.train.push([state.step, log.loss]);
      },
    };
    const save: Callback = {
      async onBatchEnd(): Promise<void> {
        // fit validates at the end of a chunk, even when a stop came during its last step.
        if (state.step === chunkEnd && validation.length > 0) {
          status.line(`step ${state.step}: validating on ${validation.length} batches`);
        }
        const due = "steps" in saveEvery
          ? state.step % saveEvery.steps === 0
          : performance.now() - lastSave >= saveEvery.ms;
        // A stop saves anyway; at the end of a chunk, after validation: a diverged model is not saved.
        if (due && state.step < total && !stops.signal.aborted) {
          if (state.step === chunkEnd && validation.length > 0) saveAfterValidation = true;
          else await saveLast();
        }
      },
    };
    const metrics: Metric[] = tokens === "events"
      ? [accuracy(), topKAccuracy(5)]
      : [bitsPerToken()];
    let summary = "";
    try {
      while (state.step < total) {
        chunkEnd = Math.min(total, (Math.floor(state.step / evalEvery) + 1) * evalEvery);
        const chunk = Array.from({ length: chunkEnd - state.step }, (_, i) =>
          toBatches(
            batchAt(state.step + i, trainWindows.length, batch, seed).map((w) => trainWindows[w]),
            batch,
          )[0]);
        const history = await fit(network.model, chunk, {
          optimizer,
          epochs: 1,
          ...(clip > 0 ? { clipGradNorm: clip } : {}),
          ...(validation.length > 0 ? { validation, metrics } : {}),
          callbacks: [record, report, save],
          signal: stops.signal,
          initialStep: state.step,
        });
        const m = history.epochs[0]?.metrics;
        if (validation.length > 0 && m !== undefined) {
          if (!Number.isFinite(m.val_loss)) throw diverged(`the validation loss is ${m.val_loss}`);
          state.history.validation.push([state.step, m.val_loss]);
          summary = `validation ${describeMetrics(m, tokens)} at step ${state.step}`;
          status.line(`step ${state.step}  ${summary}`);
          if (keep === "best" && !(m.val_loss >= (state.bestValidation ?? Infinity))) {
            state.bestValidation = m.val_loss;
            await checkpoint(out);
          }
          if (saveAfterValidation) await saveLast();
        }
        const request = stops.requested();
        if (history.stopReason === "aborted" && request !== null && state.step < total) {
          await checkpoint(last);
          await writePlot();
          status.line(
            `interrupted (${request.signal}) at step ${state.step}: checkpoint saved to ${last}; ` +
              `continue with --resume ${last}`,
          );
          return request.status;
        }
      }
    } finally {
      stops.dispose();
    }
    status.end();
    await checkpoint(last);
    await writePlot();
    io.stdout(
      keep === "best"
        ? `saved ${out} (best validation loss ${state.bestValidation?.toFixed(4)}) and the last ` +
          `step to ${last}${summary ? `; ${summary}` : ""}\n`
        : `saved ${out}${summary ? `; ${summary}` : ""}\n`,
    );
    return 0;
  } finally {
    network.model.dispose();
  }
}

/** Windows as `fit` batches of `size` windows: ids `(B, T)`, next ids flat `(B·T)`. */
function toBatches(data: readonly Window[], size: number): Batch[] {
  const result: Batch[] = [];
  for (let start = 0; start < data.length; start += size) {
    const part = data.slice(start, start + size);
    result.push({ inputs: part.map((w) => w.input), targets: part.flatMap((w) => w.target) });
  }
  return result;
}

/**
 * Progress on stderr: `progress()`'s lines redrawn in place on a terminal, one a line otherwise;
 * `line` prints a message between them, `end` closes a line left open.
 */
function statusLines(
  io: CliIO,
): { progress(line: string): void; line(text: string): void; end(): void } {
  let open = false;
  return {
    progress(line: string): void {
      io.stderr(io.isTerminal ? `\r${line}\x1b[K` : `${line}\n`);
      open = io.isTerminal;
    },
    line(text: string): void {
      io.stderr(io.isTerminal ? `\r${text}\x1b[K\n` : `${text}\n`);
      open = false;
    },
    end(): void {
      if (open) io.stderr("\n");
      open = false;
    },
  };
}

/** The validation metrics as one line: bits per character or word for text, accuracies for events. */
function describeMetrics(m: Readonly<Record<string, number>>, tokens: TokenMode): string {
  return tokens !== "events"
    ? `loss ${m.val_loss.toFixed(4)}  ${m.val_bits_per_token.toFixed(3)} bits per ${
      tokens.slice(0, -1)
    }`
    : `loss ${m.val_loss.toFixed(4)}  top-1 ${(100 * m.val_accuracy).toFixed(1)} %  top-5 ${
      (100 * m.val_top5_accuracy).toFixed(1)
    } %`;
}

/** Why the data has no validation window, and how much it needs. */
function tooSmallForValidation(
  path: string,
  ids: number[][],
  fraction: number,
  format: TaskMetadata["format"],
): string {
  const what = format === "events"
    ? `its ${ids.length} lines leave no line of 2 or more events for validation; it needs at ` +
      `least ${Math.ceil(1 / fraction)} lines`
    : `its ${ids[0].length} tokens leave fewer than 2 for validation; it needs at least ${
      Math.ceil(2 / fraction)
    } tokens`;
  return `${path} is too small for --validation ${fraction}: ${what}; give more data, or ` +
    "--validation 0 to train without validation";
}

function modelSpec(values: Record<string, unknown>, embedding: number): ModelSpec {
  const cls = choiceFlag(values, "model", MODEL_CLASSES, "ArrayLSTM") as ModelClass;
  const hiddenSize = numberFlag(values, "hidden", 64, { min: 1, max: 65536, integer: true });
  const args: ModelSpec["args"] = { inputSize: embedding, hiddenSize };
  if (takesK(cls)) {
    args.k = numberFlag(values, "k", 4, { min: 1, max: 64, integer: true });
  } else if (values.k !== undefined) {
    throw new CliError(`--k applies to the array variants, not ${cls}`);
  }
  return { class: cls, args };
}
