/**
 * The CLI's model file: a safetensors file whose tensors are the network's parameters and whose
 * metadata key `"arraylstm"` holds one JSON document, {@linkcode ModelFileMeta}:
 *
 * ```json
 * {
 *   "version": 1,
 *   "model": { "class": "ArrayLSTM", "args": { "inputSize": 32, "hiddenSize": 64, "k": 4 } },
 *   "task": { "format": "text", "tokens": "chars", "vocabulary": ["", "a", "b"], "embeddingSize": 32 },
 *   "training": { "step": 120, "seed": 1, "...": "..." }
 * }
 * ```
 *
 * - `model` names one of the recurrent classes (the four LSTM variants, or `GRU`) and its
 *   constructor arguments.
 * - `task` says how text becomes token ids:
 *   `format` `"text"` (a causal language model over `tokens` `"chars"` or `"words"`) or
 *   `"events"` (one sequence of event names a line); `vocabulary[id]` is the token, and id 0 is the
 *   padding token `""`, never a prediction. The network is `Embedding(vocabulary.length,
 *   embeddingSize)` → the recurrent model → `Linear(hiddenSize, vocabulary.length)` at every step.
 * - Tensors: `embedding.*`, `rnn.*` (the model's PyTorch names: `rnn.i2h.weight`, ...) and `head.*`.
 * - `training` (present after `train`) is what `train --resume` needs to continue exactly: the step,
 *   the flags, the optimizer's options and counters and the loss history; the optimizer's buffers
 *   are tensors named `optimizer.<parameter index>.<buffer>`.
 *
 * `convert` writes bare layers with the library's `saveModel` instead (metadata key
 * `arraylstm.model`); they have no vocabulary or head, so `sample`, `predict` and `explain` refuse
 * them by name.
 *
 * @module
 */

import {
  type BackendName,
  Embedding,
  type GRU,
  Linear,
  loadSafetensors,
  type LSTM,
  MODEL_METADATA_KEY,
  type OptimizerStateDict,
  type Parameter,
  readSafetensors,
  type RecurrentInit,
  type RecurrentLayer,
  saveSafetensors,
  Sequential,
  type Tensor,
  type TrackedTensor,
} from "../../mod.ts";
import { buildModel } from "../models/registry.ts";
import { type VariantKind, VARIANTS } from "../variants.ts";
import { CliError, reason } from "./io.ts";
import { notAModel } from "./weights.ts";
import { readSequentialFile } from "./sequential_file.ts";

/** A variant with cell states: the LSTM family. */
type FamilyVariant = Extract<typeof VARIANTS[VariantKind], { cellStates: true }>;

/**
 * The LSTM family (the variants with cell states), from the variant table: the classes with a
 * kernel on every backend, and an LRP rule.
 */
export const LSTM_CLASSES: readonly FamilyVariant["model"][] = [
  ...new Set(
    Object.values(VARIANTS).filter((v): v is FamilyVariant => v.cellStates).map((v) => v.model),
  ),
];

/** The recurrent classes a model file can hold: the LSTM family and `GRU`. */
export const MODEL_CLASSES: readonly ModelClass[] = [...LSTM_CLASSES, "GRU"];

/** One of {@linkcode MODEL_CLASSES}. */
export type ModelClass = FamilyVariant["model"] | "GRU";

/** A recurrent model's class and constructor arguments. */
export interface ModelSpec {
  /** The class. */
  class: ModelClass;
  /** Its constructor arguments (`k` for the array variants, `maxPooling` for attention). */
  args: { inputSize: number; hiddenSize: number; k?: number; maxPooling?: boolean };
}

/** How text becomes token ids, and the layers around the recurrent model. */
export interface TaskSpec {
  /** `"text"`: a causal language model; `"events"`: next-event prediction, a sequence a line. */
  format: "text" | "events";
  /** How text splits into tokens: characters, whitespace-separated words, or event names. */
  tokens: "chars" | "words" | "events";
  /** `vocabulary[id]` is the token; id 0 is the padding token `""`. */
  vocabulary: string[];
  /** Floats per token of the `Embedding`. */
  embeddingSize: number;
}

/** What `train --resume` needs, besides the parameters and the optimizer's buffers. */
export interface TrainingState {
  /** Optimizer steps taken. */
  step: number;
  /** The training flags the run started with (seed, batch, seq-len, lr, ...). */
  flags: Record<string, string | number>;
  /** The optimizer's per-parameter counters (`null` before its first update) and options. */
  optimizer: {
    counters: (Record<string, number> | null)[];
    options: OptimizerStateDict["options"];
  };
  /** Training loss after every step, and validation loss after every evaluation. */
  history: { train: [number, number][]; validation: [number, number][] };
  /** SHA-256 of the data file's bytes (hex): a resumed run refuses other data unless asked. */
  dataSha256?: string;
  /** The lowest validation loss so far (what `--keep best` compares with). */
  bestValidation?: number;
}

/** The JSON document under the metadata key `"arraylstm"`. */
export interface ModelFileMeta {
  /** The schema version, 1. */
  version: 1;
  /** The recurrent model. */
  model: ModelSpec;
  /** How text becomes token ids. */
  task: TaskSpec;
  /** Present once `train` wrote the file. */
  training?: TrainingState;
}

/** A model file's contents. */
export interface ModelFile {
  /** The metadata document. */
  meta: ModelFileMeta;
  /** Every tensor, by name. */
  tensors: Record<string, Tensor>;
}

/** The metadata key holding {@linkcode ModelFileMeta}. */
export const META_KEY = "arraylstm";

/** Serialises a model file. */
export function encodeModelFile(file: ModelFile): Uint8Array {
  return saveSafetensors(file.tensors, { [META_KEY]: JSON.stringify(file.meta) });
}

/** Whether safetensors bytes carry this CLI's metadata. */
export function isModelFile(bytes: Uint8Array): boolean {
  try {
    return META_KEY in readSafetensors(bytes).metadata;
  } catch {
    return false;
  }
}

/** Parses a model file, with a one-line error naming `path` when it is not one. */
export function decodeModelFile(bytes: Uint8Array, path: string): ModelFile {
  let metadata: Record<string, string>;
  try {
    metadata = readSafetensors(bytes).metadata;
  } catch (error) {
    throw new CliError(notAModel(path, bytes, reason(error)));
  }
  const raw = metadata[META_KEY];
  const bare = new CliError(
    `${path} holds a bare layer without vocabulary or head (written by \`convert\` or ` +
      "saveModel); train a model with `train` first, or see `inspect` for its layers",
  );
  // A saveModel file: the CLI runs a Sequential(Embedding, recurrent, Linear) with a vocabulary.
  if (raw === undefined && MODEL_METADATA_KEY in metadata) {
    return readSequentialFile(bytes, path, MODEL_CLASSES);
  }
  if (raw === undefined) {
    throw new CliError(
      `${path} has no "${META_KEY}" metadata: it is a plain weight file, not a model written by ` +
        "`train`; see `inspect` for its tensors",
    );
  }
  let meta: ModelFileMeta;
  try {
    meta = JSON.parse(raw);
  } catch (error) {
    throw new CliError(`${path}: the "${META_KEY}" metadata is not JSON: ${reason(error)}`);
  }
  if (meta?.version !== 1 || !MODEL_CLASSES.includes(meta.model?.class)) {
    throw new CliError(
      `${path}: unsupported "${META_KEY}" metadata (version ${meta?.version}, class ` +
        `${meta?.model?.class}); expected version 1 and one of ${MODEL_CLASSES.join(", ")}`,
    );
  }
  if (meta.task === undefined) throw bare;
  return { meta, tensors: loadSafetensors(bytes) };
}

/** Makes the recurrent model `spec` describes. */
export function makeRecurrent(spec: ModelSpec, backend: BackendName, seed: number): LSTM | GRU {
  const { inputSize, hiddenSize, k = 1, maxPooling = false } = spec.args;
  // A class without `k` or `maxPooling` ignores them.
  const options = { backend, seed, maxPooling };
  return buildModel(spec.class, { inputSize, hiddenSize, k }, options) as LSTM | GRU;
}

/** Embedding → recurrent model → per-step Linear head: the network of a task model. */
export class Network {
  /** Token ids to vectors. */
  readonly embedding: Embedding;
  /** The recurrent model. */
  readonly rnn: LSTM | GRU;
  /** Hidden states to logits over the vocabulary. */
  readonly head: Linear;
  /** The three layers as one `Sequential`: what `fit` trains. */
  readonly model: Sequential;

  /** Makes the network of `meta` with fresh weights drawn from `seed`. */
  constructor(meta: ModelFileMeta, backend: BackendName, seed: number) {
    const vocabularySize = meta.task.vocabulary.length;
    this.embedding = new Embedding(vocabularySize, meta.task.embeddingSize, {
      seed,
      paddingIdx: 0,
    });
    this.rnn = makeRecurrent(meta.model, backend, seed + 1);
    this.head = new Linear(meta.model.args.hiddenSize, vocabularySize, { seed: seed + 2 });
    this.model = new Sequential([this.embedding, this.rnn, this.head]);
  }

  /**
   * Logits `(B, T, V)` for token ids `(B, T)`, and the recurrent state after the last step (no
   * `state` for a GRU); `init` continues from a state.
   */
  async forward(
    ids: number[][],
    init?: RecurrentInit,
  ): Promise<{ logits: TrackedTensor; hidden: Tensor; state?: Tensor }> {
    const embedded = await this.embedding.forward(ids);
    const rnn: RecurrentLayer = this.rnn;
    const { output, hidden, state } = await rnn.forward(embedded, init);
    return { logits: await this.head.forward(output), hidden, state };
  }

  /** Every parameter, in a fixed order: embedding, recurrent model, head. */
  parameters(): Parameter[] {
    return [
      ...this.embedding.parameters(),
      ...this.rnn.parameters(),
      ...this.head.parameters(),
    ];
  }

  /** The parameters by file name (`embedding.weight`, `rnn.i2h.weight`, `head.bias`, ...). */
  stateDict(): Record<string, Tensor> {
    return {
      ...prefixed("embedding.", this.embedding.stateDict()),
      ...prefixed("rnn.", this.rnn.stateDict()),
      ...prefixed("head.", this.head.stateDict()),
    };
  }

  /** Loads the parameters of a model file's tensors. */
  loadStateDict(tensors: Record<string, Tensor>): void {
    try {
      this.embedding.loadStateDict(unprefixed("embedding.", tensors));
      this.rnn.loadStateDict(unprefixed("rnn.", tensors));
      this.head.loadStateDict(unprefixed("head.", tensors));
    } catch (error) {
      throw new CliError(`the model file's tensors do not fit its metadata: ${reason(error)}`);
    }
  }

  /** Training mode (`true`) or evaluation mode for every layer. */
  train(mode: boolean): void {
    this.embedding.train(mode);
    this.rnn.train(mode);
    this.head.train(mode);
  }

  /** Frees the recurrent model's device memory. */
  dispose(): void {
    this.rnn.dispose();
  }
}

/** Loads a task model file into a network on `backend`. */
export async function loadNetwork(
  path: string,
  backend: BackendName,
): Promise<{ file: ModelFile; network: Network }> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    throw new CliError(`cannot read model ${path}: ${reason(error)}`);
  }
  const file = decodeModelFile(bytes, path);
  checkFinite(file.tensors, path);
  const network = new Network(file.meta, backend, 0);
  network.loadStateDict(file.tensors);
  return { file, network };
}

/** Refuses a model whose weights hold NaN or infinity (a run that diverged), naming the tensor. */
export function checkFinite(tensors: Record<string, Tensor>, path: string): void {
  const found = nonFinite(tensors);
  if (found !== null) {
    throw new CliError(
      `${path}: the model's weights are not finite (${found}): the run that wrote it ` +
        "diverged; train again with a lower --lr, or resume from an earlier checkpoint",
    );
  }
}

/** The first value of `tensors` that is NaN or infinite, as `NaN in name[i]`; `null` if none. */
export function nonFinite(tensors: Record<string, Tensor>): string | null {
  for (const [name, t] of Object.entries(tensors)) {
    const at = t.data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) return `${t.data[at]} in ${name}[${at}]`;
  }
  return null;
}

/** `record` with every name prefixed. */
export function prefixed(prefix: string, record: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(record).map(([name, t]) => [prefix + name, t]));
}

/** The entries of `record` whose names start with `prefix`, without it. */
export function unprefixed(prefix: string, record: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(record).filter(([name]) => name.startsWith(prefix)).map((
      [name, t],
    ) => [name.slice(prefix.length), t]),
  );
}
