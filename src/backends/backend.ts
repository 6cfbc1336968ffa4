/**
 * The contract between models and backends. Models describe *what* to compute (a cell variant, its
 * parameters, an input sequence and an initial state); a backend decides *where* it runs. Backends
 * never see model classes, and models never touch devices.
 *
 * All arrays are row-major `Float32Array`s in the reference's layouts. A backend must not mutate
 * any array it is given and must return fresh arrays.
 *
 * @module
 */

/** The backends a model can ask for. `"auto"` picks the fastest one available. */
export type BackendName = "auto" | "webgpu" | "wasm" | "js";

/** A concrete backend, as resolved from a {@linkcode BackendName}. */
export type ResolvedBackendName = Exclude<BackendName, "auto">;

import type { VariantKind } from "../variants.ts";

export type { VariantKind };

/**
 * Describes the cell of a model: everything a kernel needs to know besides sizes and parameters.
 *
 * @example Describe a `StochasticArrayLSTM` with four lanes
 * ```ts
 * import type { CellVariant } from "./backend.ts";
 * const variant: CellVariant = { kind: "stochastic", k: 4, maxPooling: false };
 * ```
 */
export interface CellVariant {
  /** The cell's equations (see the README's "Exact semantics"). */
  readonly kind: VariantKind;
  /** Memory cells (lanes) per hidden unit; 1 for `"lstm"`. */
  readonly k: number;
  /** Attention only: broadcast the largest lane weight to every lane. */
  readonly maxPooling: boolean;
}

/**
 * The parameters of a cell, in the PyTorch reference's layouts.
 *
 * Gate rows: lane `j` owns rows `[4H·j, 4H·(j+1))` of `i2h`/`h2h`; inside a lane the order is
 * forget `[0,H)`, input `[H,2H)`, output `[2H,3H)`, candidate `[3H,4H)`.
 */
export interface CellParameters {
  /** `i2h.weight`, shape `(4kH, I)`. */
  readonly i2hWeight: Float32Array;
  /** `i2h.bias`, shape `(4kH)`. */
  readonly i2hBias: Float32Array;
  /** `h2h.weight`, shape `(4kH, H)`. */
  readonly h2hWeight: Float32Array;
  /** `h2h.bias`, shape `(4kH)`. */
  readonly h2hBias: Float32Array;
  /** `i2a.weight`, shape `(kH, I)`: attention only, else `null`. */
  readonly i2aWeight: Float32Array | null;
  /** `i2a.bias`, shape `(kH)`: attention only, else `null`. */
  readonly i2aBias: Float32Array | null;
}

/** A cell to compile: its variant, sizes and parameters. */
export interface CellSpec {
  /** The variant's equations. */
  readonly variant: CellVariant;
  /** `I`: features per input step. */
  readonly inputSize: number;
  /** `H`: hidden units. */
  readonly hiddenSize: number;
  /** The weights; the backend copies or packs them and keeps no reference. */
  readonly params: CellParameters;
}

/** One call's input: a batch of sequences and its initial state. */
export interface SequenceInput {
  /** `B`: sequences in the batch. */
  readonly batch: number;
  /** `T`: time steps. */
  readonly seqLen: number;
  /** Input, shape `(B, T, I)`. */
  readonly x: Float32Array;
  /** Initial hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array;
  /** Initial cell states, shape `(k, B, H)`. */
  readonly state: Float32Array;
}

/** One call's result: fresh arrays, never views of the input. */
export interface SequenceOutput {
  /** Hidden state after every step, shape `(B, T, H)`. */
  readonly output: Float32Array;
  /** Final hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array;
  /** Final cell states, shape `(k, B, H)`. */
  readonly state: Float32Array;
}

/**
 * A compiled cell on one backend: weights packed and resident, ready to run whole sequences.
 *
 * @example Run a sequence on the TypeScript backend
 * ```ts
 * import { jsBackend } from "./js.ts";
 * const runner = await jsBackend.compile({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * const out = await runner.run({
 *   batch: 1, seqLen: 2, x: new Float32Array(2),
 *   hidden: new Float32Array(1), state: new Float32Array(1),
 * });
 * runner.dispose();
 * ```
 */
export interface SequenceRunner {
  /** The backend this runner belongs to. */
  readonly backend: ResolvedBackendName;
  /** Runs all `T` steps; the input arrays are left untouched. */
  run(input: SequenceInput): Promise<SequenceOutput>;
  /** Frees device or wasm memory. Calling `run` afterwards throws. */
  dispose(): void;
}

/** A place to run cells. */
export interface Backend {
  /** The backend's name. */
  readonly name: ResolvedBackendName;
  /** Packs the weights of `spec` for this backend. */
  compile(spec: CellSpec): Promise<SequenceRunner>;
}

/**
 * A deep copy of a cell spec, for runners that keep the weights: the caller may change its arrays
 * after `compile` without affecting the runner.
 *
 * @example
 * ```ts
 * import { copySpec } from "./backend.ts";
 * const spec = copySpec({
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: {
 *     i2hWeight: new Float32Array(4), i2hBias: new Float32Array(4),
 *     h2hWeight: new Float32Array(4), h2hBias: new Float32Array(4),
 *     i2aWeight: null, i2aBias: null,
 *   },
 * });
 * ```
 */
export function copySpec(spec: CellSpec): CellSpec {
  const { params } = spec;
  return {
    variant: { ...spec.variant },
    inputSize: spec.inputSize,
    hiddenSize: spec.hiddenSize,
    params: {
      i2hWeight: params.i2hWeight.slice(),
      i2hBias: params.i2hBias.slice(),
      h2hWeight: params.h2hWeight.slice(),
      h2hBias: params.h2hBias.slice(),
      i2aWeight: params.i2aWeight?.slice() ?? null,
      i2aBias: params.i2aBias?.slice() ?? null,
    },
  };
}
