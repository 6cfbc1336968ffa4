/**
 * The layers `loadKeras` returns, and how a layer's weights (read by their full paths) become
 * one: which Keras class they are (LSTM, GRU, SimpleRNN, Embedding, Dense, Bidirectional of a
 * recurrent layer) and whether their shapes fit it.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";
import { KerasLoadError } from "./keras_error.ts";

/** A layer without weights (Dropout, Activation, ...) as the model's config lists it. */
export interface KerasLayerInfo {
  /** Keras' class name (`"Dropout"`, `"Activation"`, ...). */
  readonly className: string;
  /** The layer's name in the config. */
  readonly name: string;
  /** The layer's Keras config. */
  readonly config: Record<string, unknown>;
}

/** What every layer `loadKeras` returns holds. */
export interface KerasLayerCommon {
  /** The layer's name: Keras 2's layer name, or Keras 3's weight-file path name (`lstm_1`). */
  readonly name: string;
  /** Keras' class name, when the file holds the model's config. */
  readonly className?: string;
  /** The layer's Keras config, when the file holds the model's. */
  readonly config?: Record<string, unknown>;
  /** The version of Keras that wrote the file (`"2.21.0"`, `"3.15.1"`), when the file says. */
  readonly kerasVersion?: string;
  /** Every weight of the layer by its full path in the file, in the file's order. */
  readonly weights: Readonly<Record<string, Tensor>>;
  /** The weightless layers between the previous layer with weights and this one. */
  readonly preceding?: readonly KerasLayerInfo[];
  /** The weightless layers after this one, on the model's last layer with weights. */
  readonly following?: readonly KerasLayerInfo[];
}

/** A Keras `LSTM` layer's weights, in Keras' layout. */
export interface KerasLSTMWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "lstm";
  /** The hidden size `H`. */
  readonly units: number;
  /** Input weights `(I, 4H)`, gate blocks in Keras' order i, f, c, o. */
  readonly kernel: Tensor;
  /** Recurrent weights `(H, 4H)`, gate blocks i, f, c, o. */
  readonly recurrentKernel: Tensor;
  /** Bias `(4H)`, absent when the layer was built with `use_bias=False`. */
  readonly bias?: Tensor;
}

/** A Keras `GRU` layer's weights, in Keras' layout. */
export interface KerasGRUWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "gru";
  /** The hidden size `H`. */
  readonly units: number;
  /** Input weights `(I, 3H)`, gate blocks z, r, h. */
  readonly kernel: Tensor;
  /** Recurrent weights `(H, 3H)`, gate blocks z, r, h. */
  readonly recurrentKernel: Tensor;
  /** `(2, 3H)` (input and recurrent biases: `reset_after=True`) or `(3H)`; absent without bias. */
  readonly bias?: Tensor;
}

/** A Keras `SimpleRNN` layer's weights, in Keras' layout. */
export interface KerasSimpleRNNWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "simple_rnn";
  /** The hidden size `H`. */
  readonly units: number;
  /** Input weights `(I, H)`. */
  readonly kernel: Tensor;
  /** Recurrent weights `(H, H)`. */
  readonly recurrentKernel: Tensor;
  /** Bias `(H)`, absent when the layer was built with `use_bias=False`. */
  readonly bias?: Tensor;
}

/** The recurrent layers Keras files hold. */
export type KerasRecurrentWeights = KerasLSTMWeights | KerasGRUWeights | KerasSimpleRNNWeights;

/** A Keras `Bidirectional` wrapper of a recurrent layer. */
export interface KerasBidirectionalWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "bidirectional";
  /** The hidden size of each direction. */
  readonly units: number;
  /** The forward layer (its `config` is the wrapped layer's). */
  readonly forward: KerasRecurrentWeights;
  /** The backward layer (its `config` is the backward layer's, `go_backwards` true). */
  readonly backward: KerasRecurrentWeights;
}

/** A Keras `Embedding` layer's table. */
export interface KerasEmbeddingWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "embedding";
  /** Floats per vector (`output_dim`). */
  readonly units: number;
  /** The table `(inputDim, outputDim)`. */
  readonly embeddings: Tensor;
}

/** A Keras `Dense` layer's weights, in Keras' layout. */
export interface KerasDenseWeights extends KerasLayerCommon {
  /** Discriminates the layer kinds. */
  readonly kind: "dense";
  /** The output size. */
  readonly units: number;
  /** Weights `(I, units)` (the transpose of torch's `Linear.weight`). */
  readonly kernel: Tensor;
  /** Bias `(units)`, absent when the layer was built with `use_bias=False`. */
  readonly bias?: Tensor;
}

/** One layer with weights of a Keras Sequential model. */
export type KerasLayerWeights =
  | KerasRecurrentWeights
  | KerasBidirectionalWeights
  | KerasEmbeddingWeights
  | KerasDenseWeights;

/** One weight as read: its full path, its direction in a Bidirectional, and its own name. */
export interface KerasVariable {
  readonly path: string;
  readonly direction: "forward" | "backward" | null;
  /** `kernel`, `recurrent_kernel`, `bias`, `embeddings`. */
  readonly name: string;
  readonly tensor: Tensor;
}

/** What the reader knows of a layer before classifying it. */
export interface KerasLayerSource {
  readonly name: string;
  readonly className?: string;
  readonly config?: Record<string, unknown>;
  readonly kerasVersion?: string;
  readonly variables: readonly KerasVariable[];
}

// Keras class -> the kind, and the recurrent kernel's columns per unit.
const RECURRENT: Record<string, { kind: KerasRecurrentWeights["kind"]; gates: number }> = {
  LSTM: { kind: "lstm", gates: 4 },
  GRU: { kind: "gru", gates: 3 },
  SimpleRNN: { kind: "simple_rnn", gates: 1 },
};

/** The layer classes read here; each has weights once built. */
export const WEIGHTED_CLASSES: ReadonlySet<string> = new Set([
  ...Object.keys(RECURRENT),
  "Bidirectional",
  "Embedding",
  "Dense",
]);

/** Keras' default layer names of those classes (as groups of a Keras 3 `.weights.h5`). */
const DEFAULT_NAMES: Record<string, string> = {
  lstm: "LSTM",
  gru: "GRU",
  simple_rnn: "SimpleRNN",
  bidirectional: "Bidirectional",
  embedding: "Embedding",
  dense: "Dense",
};

/** The class a default layer name means (`lstm_2` -> `LSTM`), if it is one. */
export function classOfDefaultName(name: string): string | undefined {
  return DEFAULT_NAMES[name.replace(/_\d+$/, "")];
}

/** `[a, b], [c]` */
export function shapes(tensors: Iterable<Tensor>): string {
  return [...tensors].map((t) => `[${t.shape.join(", ")}]`).join(", ");
}

function innerConfig(value: unknown): { className?: string; config?: Record<string, unknown> } {
  const layer = value as { class_name?: unknown; config?: unknown } | undefined;
  if (typeof layer !== "object" || layer === null) return {};
  return {
    className: typeof layer.class_name === "string" ? layer.class_name : undefined,
    config: (layer.config ?? undefined) as Record<string, unknown> | undefined,
  };
}

/**
 * The layer a source's weights make, or `undefined` for one without weights.
 *
 * @throws {KerasLoadError} If the weights fit no layer class read here, or not the config's.
 */
export function classify(source: KerasLayerSource): KerasLayerWeights | undefined {
  const { name, variables, kerasVersion } = source;
  if (variables.length === 0) return undefined;
  const common: Extra = {
    ...(source.className === undefined ? {} : { className: source.className }),
    ...(source.config === undefined ? {} : { config: source.config }),
    ...(kerasVersion === undefined ? {} : { kerasVersion }),
  };
  const className = source.className ?? classOfDefaultName(name);
  const directions = new Set(variables.map((v) => v.direction));
  if (className === "Bidirectional" || directions.has("forward") || directions.has("backward")) {
    const forwardConfig = innerConfig(source.config?.layer);
    const backwardConfig = innerConfig(source.config?.backward_layer);
    const part = (direction: "forward" | "backward", inner: typeof forwardConfig) => {
      const own = variables.filter((v) => v.direction === direction);
      if (own.length === 0) {
        throw new KerasLoadError(
          `layer ${name} is a Bidirectional wrapper without the ${direction} layer's weights ` +
            `(it holds ${variables.map((v) => v.path).join(", ")})`,
        );
      }
      const config = inner.config ??
        (direction === "backward" && forwardConfig.config !== undefined
          ? { ...forwardConfig.config, go_backwards: !forwardConfig.config.go_backwards }
          : undefined);
      const layer = single(
        `${name}/${direction}`,
        own,
        inner.className ?? forwardConfig.className,
        { ...(config === undefined ? {} : { config }), ...(kerasVersion ? { kerasVersion } : {}) },
      );
      if (layer.kind !== "lstm" && layer.kind !== "gru" && layer.kind !== "simple_rnn") {
        throw new KerasLoadError(
          `layer ${name} wraps a ${layer.kind} in Bidirectional; only LSTM, GRU and SimpleRNN are read`,
        );
      }
      return layer;
    };
    const forward = part("forward", forwardConfig);
    const backward = part("backward", backwardConfig.className ? backwardConfig : forwardConfig);
    if (forward.kind !== backward.kind || forward.units !== backward.units) {
      throw new KerasLoadError(
        `layer ${name}: its forward ${forward.kind} of ${forward.units} units and backward ` +
          `${backward.kind} of ${backward.units} units differ; only equal directions are read`,
      );
    }
    return {
      kind: "bidirectional",
      units: forward.units,
      forward,
      backward,
      name,
      weights: weightsOf(variables),
      ...common,
    };
  }
  return single(name, variables, className, common);
}

type Extra = Pick<KerasLayerCommon, "className" | "config" | "kerasVersion">;

function weightsOf(variables: readonly KerasVariable[]): Record<string, Tensor> {
  return Object.fromEntries(variables.map((v) => [v.path, v.tensor]));
}

function single(
  name: string,
  variables: readonly KerasVariable[],
  className: string | undefined,
  extra: Extra,
): KerasLayerWeights {
  const common = { name, weights: weightsOf(variables), ...extra };
  const byName = new Map(variables.map((v) => [v.name, v.tensor]));
  const unsupported = (why: string) =>
    new KerasLoadError(
      `layer ${name}${className ? ` (${className})` : ""} has weights ${
        variables.map((v) => `${v.path} [${v.tensor.shape.join(", ")}]`).join(", ")
      }: ${why}; read are LSTM, GRU, SimpleRNN (kernel (I, gates·H), recurrent_kernel ` +
        `(H, gates·H), bias), Bidirectional of those, Embedding (embeddings (V, D)) and Dense ` +
        `(kernel (I, units), bias (units))`,
    );
  const known = ["kernel", "recurrent_kernel", "bias", "embeddings"];
  const odd = [...byName.keys()].filter((key) => !known.includes(key));
  if (odd.length > 0 || byName.size !== variables.length) {
    throw unsupported(`unexpected weights ${odd.join(", ") || "(repeated names)"}`);
  }
  const embeddings = byName.get("embeddings") ??
    (className === "Embedding" ? byName.get("kernel") : undefined);
  if (embeddings !== undefined) {
    if (byName.size !== 1 || embeddings.shape.length !== 2) throw unsupported("not an Embedding");
    return { kind: "embedding", units: embeddings.shape[1], embeddings, ...common };
  }
  const kernel = byName.get("kernel"), recurrentKernel = byName.get("recurrent_kernel");
  const bias = byName.get("bias");
  if (kernel === undefined || kernel.shape.length !== 2) throw unsupported("no 2-D kernel");
  const [inputs, columns] = kernel.shape;
  const withBias = bias === undefined ? {} : { bias };
  if (recurrentKernel === undefined) {
    if (className !== undefined && className !== "Dense") {
      throw unsupported("no recurrent_kernel");
    }
    if (bias !== undefined && (bias.shape.length !== 1 || bias.shape[0] !== columns)) {
      throw unsupported("the bias does not fit the kernel");
    }
    return { kind: "dense", units: columns, kernel, ...withBias, ...common };
  }
  const units = recurrentKernel.shape[0];
  const gates = columns / units;
  const expected = className === undefined
    ? Object.values(RECURRENT).find((entry) => entry.gates === gates)
    : RECURRENT[className];
  if (expected === undefined) {
    throw unsupported(
      className === undefined ? `${columns} columns for ${units} units` : "not a recurrent class",
    );
  }
  const fits = columns === expected.gates * units && inputs > 0 &&
    recurrentKernel.shape.length === 2 && recurrentKernel.shape[1] === columns &&
    (bias === undefined || bias.data.length === columns ||
      (expected.kind === "gru" && bias.shape.length === 2 && bias.shape[0] === 2 &&
        bias.shape[1] === columns)) &&
    (bias === undefined || expected.kind === "gru" || bias.shape.length === 1);
  if (!fits) throw unsupported(`the shapes do not fit a ${expected.kind}`);
  return {
    kind: expected.kind,
    units,
    kernel,
    recurrentKernel,
    ...withBias,
    ...common,
  } as KerasLayerWeights;
}
