/**
 * What composed recurrent layers (`Stacked`, `Bidirectional`) need from a layer, and how their
 * results join the parts' states in torch's `(L·D, B, H)` layout.
 *
 * @module
 */

import { describe, describeKind } from "../errors.ts";
import { concat, split } from "../nn/layout.ts";
import type { Module } from "../nn/module.ts";
import type { TrackedTensor } from "../nn/tape.ts";
import { checkTensor, type Tensor } from "../tensor.ts";

/** An initial state: `hidden` `(rows, B, H)`, and `state` for layers with cell states. */
export interface RecurrentInit {
  /** Initial hidden state, `(hiddenRows, batch, hiddenSize)`. */
  readonly hidden: Tensor;
  /** Initial cell states, `(stateRows, batch, hiddenSize)`; absent for GRU and RNN layers. */
  readonly state?: Tensor;
}

/** What a recurrent layer's `forward` resolves to. */
export interface RecurrentResult {
  /** Every step's output, `(batch, seqLen, outputSize)`. */
  readonly output: TrackedTensor;
  /** Final hidden states, `(hiddenRows, batch, hiddenSize)`. */
  readonly hidden: TrackedTensor;
  /** Final cell states, `(stateRows, batch, hiddenSize)`; absent for GRU and RNN layers. */
  readonly state?: TrackedTensor;
  /** A composed layer's parts' own results, in order (forward before backward). */
  readonly layers?: readonly RecurrentResult[];
}

/**
 * A recurrent layer that `Stacked` and `Bidirectional` compose: this package's `LSTM` and
 * ArrayLSTM variants, `GRU`, `RNN`, and the composites themselves.
 */
export interface RecurrentLayer extends Module {
  /** Features per input step. */
  readonly inputSize: number;
  /** Width of the hidden and cell states. */
  readonly hiddenSize: number;
  /** Features per output step (`2·hiddenSize` for a `Bidirectional` pair). */
  readonly outputSize: number;
  /** Rows of `hidden` (`L·D` for a stack of `L` layers of `D` directions). */
  readonly hiddenRows: number;
  /** Rows of `state` (`k` per ArrayLSTM layer; 0 for GRU and RNN). */
  readonly stateRows: number;
  /** Runs a batch of sequences `(batch, seqLen, inputSize)` from `init` (zeros when absent). */
  forward(x: Tensor, init?: RecurrentInit): Promise<RecurrentResult>;
  /** Frees backend memory (optional). */
  dispose?(): void;
}

/** Whether `value` can be composed: a layer with `forward` and its sizes. */
export function isRecurrentLayer(value: unknown): value is RecurrentLayer {
  const layer = value as RecurrentLayer;
  return typeof value === "object" && value !== null &&
    typeof layer.forward === "function" &&
    ["inputSize", "hiddenSize", "outputSize", "hiddenRows", "stateRows"].every((key) =>
      Number.isInteger((layer as unknown as Record<string, unknown>)[key])
    );
}

/** Checks that `value` can be composed: a layer with `forward` and its sizes. */
export function checkRecurrentLayer(name: string, value: unknown): RecurrentLayer {
  if (!isRecurrentLayer(value)) {
    throw new TypeError(
      `${name} must be a recurrent layer (LSTM, an ArrayLSTM variant, GRU, RNN, Stacked or ` +
        `Bidirectional), got ${describeKind(value)}; Sequential composes other layers`,
    );
  }
  return value;
}

/** The common state width of `layers`, or `null` when they differ. */
function commonWidth(layers: readonly RecurrentLayer[]): number | null {
  const width = layers[0].hiddenSize;
  return layers.every((layer) => layer.hiddenSize === width) ? width : null;
}

function widthsError(what: string, layers: readonly RecurrentLayer[]): RangeError {
  return new RangeError(
    `${what} needs layers of one hiddenSize to use torch's (layers·directions, batch, ` +
      `hiddenSize) layout, got hiddenSize ${layers.map((l) => l.hiddenSize).join(", ")}: read ` +
      "each layer's own hidden and state from result.layers instead",
  );
}

/**
 * Cuts a composite's initial state into its parts' (rows `hiddenRows`/`stateRows` each), with
 * recorded splits so gradients reach the caller's tensors.
 */
export function splitInit(
  layers: readonly RecurrentLayer[],
  init: RecurrentInit | undefined,
): (RecurrentInit | undefined)[] {
  if (init === undefined) return layers.map(() => undefined);
  if (typeof init !== "object" || init === null) {
    throw new TypeError(`init must be { hidden, state? }, got ${describe(init)}`);
  }
  if (commonWidth(layers) === null) throw widthsError("an initial state", layers);
  checkTensor("init.hidden", init.hidden);
  const hiddenRows = layers.map((layer) => layer.hiddenRows);
  const stateRows = layers.map((layer) => layer.stateRows);
  const hidden = split(init.hidden, hiddenRows, 0);
  const withState = stateRows.some((rows) => rows > 0);
  if (withState && init.state === undefined) {
    throw new TypeError(
      `init.state is missing: these layers keep ${
        stateRows.reduce((a, b) => a + b, 0)
      } rows of cell states; pass { hidden, state } (as torch's (h0, c0))`,
    );
  }
  if (!withState && init.state !== undefined) {
    throw new TypeError("init.state must be absent: these layers keep no cell states");
  }
  const state = withState ? split(init.state!, stateRows, 0) : [];
  return layers.map((_, i) =>
    stateRows[i] > 0 ? { hidden: hidden[i], state: state[i] } : { hidden: hidden[i] }
  );
}

/**
 * A composite's result: `output`, its parts' results in `layers`, and `hidden`/`state` joined
 * on the first axis when first read (an error when the parts' widths differ).
 */
export function joinResults(
  output: TrackedTensor,
  layers: readonly RecurrentLayer[],
  results: readonly RecurrentResult[],
): RecurrentResult {
  const join = (what: "hidden" | "state"): TrackedTensor | undefined => {
    const parts = results.flatMap((result) => result[what] === undefined ? [] : [result[what]!]);
    if (parts.length === 0) return undefined;
    if (commonWidth(layers) === null) throw widthsError(`result.${what}`, layers);
    return concat(parts, 0);
  };
  let hidden: TrackedTensor | undefined, state: TrackedTensor | undefined | null = null;
  const withState = layers.some((layer) => layer.stateRows > 0);
  const result = {
    output,
    layers: results,
    get hidden(): TrackedTensor {
      return hidden ??= join("hidden")!;
    },
  };
  if (!withState) return result;
  return Object.defineProperty(result, "state", {
    enumerable: true,
    get(): TrackedTensor | undefined {
      if (state === null) state = join("state");
      return state;
    },
  }) as RecurrentResult;
}
