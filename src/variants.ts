/**
 * The cell variants, written once. Everything else derives from this table: the TypeScript code
 * imports it, and `kernels/generate.ts` (`deno task build:kernels`) writes its numeric codes into
 * the WGSL kernels (`VARIANT_*` constants) and the Rust crate (`wasm/src/variants.rs`), so that
 * every language uses one numbering.
 *
 * @module
 */

/** What the kernels need to know about one cell variant. */
export interface VariantInfo {
  /** The variant's code in every kernel (WGSL override, Rust constant, WASM constructor). */
  readonly code: number;
  /** The model class that runs it (its entry in `src/models/registry.ts`). */
  readonly model: ModelName;
  /**
   * The variant whose cell equations it runs: itself, except `"lstm"`, which is `"array"` with
   * one lane (so the kernels share one compiled pipeline for the two).
   */
  readonly equations: VariantKind;
  /** `"one"`: `k` is always 1; `"k"`: `k` lanes per hidden unit, chosen by the model. */
  readonly lanes: "one" | "k";
  /** Whether the cell has the attention projection `i2a` (lane weights `softmax_k σ(x·i2aᵀ + b)`). */
  readonly attention: boolean;
  /** Whether the `maxPooling` option applies (broadcast the largest lane weight). */
  readonly maxPooling: boolean;
  /** Whether the hidden state reads the lane with the largest output gate (else the lane sum). */
  readonly argmax: boolean;
  /**
   * Gate blocks of `H` rows per lane in `i2h`/`h2h`: 4 for the LSTM family (f, i, o, g), 3 for
   * torch's GRU (r, z, n), 1 for torch's RNN.
   */
  readonly gates: 4 | 3 | 1;
  /** Whether the cell keeps cell states `(k, B, H)` besides the hidden state (not GRU and RNN). */
  readonly cellStates: boolean;
  /**
   * Whether `lrp` (`src/explain/`) has a relevance rule for the cell's equations and readout; a
   * variant without one is refused by name, never explained as another.
   */
  readonly lrp: boolean;
}

/**
 * Which cell a model runs: a name of {@linkcode VARIANTS} (the compiler holds the two to the same
 * names).
 */
export type VariantKind =
  | "lstm"
  | "array"
  | "attention"
  | "stochastic"
  | "gru"
  | "rnn_tanh"
  | "rnn_relu";

/**
 * Every cell variant by name, in code order.
 *
 * @example
 * ```ts
 * import { VARIANTS } from "./variants.ts";
 * import assert from "node:assert/strict";
 * assert.equal(VARIANTS.attention.code, 2);
 * assert.equal(VARIANTS.lstm.lanes, "one");
 * ```
 */
export const VARIANTS = {
  lstm: {
    equations: "array",
    code: 0,
    model: "LSTM",
    lanes: "one",
    attention: false,
    maxPooling: false,
    argmax: false,
    gates: 4,
    cellStates: true,
    lrp: true,
  },
  array: {
    equations: "array",
    code: 1,
    model: "ArrayLSTM",
    lanes: "k",
    attention: false,
    maxPooling: false,
    argmax: false,
    gates: 4,
    cellStates: true,
    lrp: true,
  },
  attention: {
    equations: "attention",
    code: 2,
    model: "AttentionArrayLSTM",
    lanes: "k",
    attention: true,
    maxPooling: true,
    argmax: false,
    gates: 4,
    cellStates: true,
    lrp: true,
  },
  stochastic: {
    equations: "stochastic",
    code: 3,
    model: "StochasticArrayLSTM",
    lanes: "k",
    attention: false,
    maxPooling: false,
    argmax: true,
    gates: 4,
    cellStates: true,
    lrp: true,
  },
  gru: {
    equations: "gru",
    code: 4,
    model: "GRU",
    lanes: "one",
    attention: false,
    maxPooling: false,
    argmax: false,
    gates: 3,
    cellStates: false,
    lrp: false,
  },
  rnn_tanh: {
    equations: "rnn_tanh",
    code: 5,
    model: "RNN",
    lanes: "one",
    attention: false,
    maxPooling: false,
    argmax: false,
    gates: 1,
    cellStates: false,
    lrp: false,
  },
  rnn_relu: {
    equations: "rnn_relu",
    code: 6,
    model: "RNN",
    lanes: "one",
    attention: false,
    maxPooling: false,
    argmax: false,
    gates: 1,
    cellStates: false,
    lrp: false,
  },
} as const satisfies { readonly [kind in VariantKind]: VariantInfo };

/**
 * The variants of the LSTM family (`cellStates: true`): `"lstm"`, `"array"`, `"attention"`,
 * `"stochastic"`, computed from {@linkcode VARIANTS}.
 *
 * @example
 * ```ts
 * import type { FamilyKind } from "./variants.ts";
 * const kind: FamilyKind = "stochastic";
 * ```
 */
export type FamilyKind = {
  [kind in VariantKind]: typeof VARIANTS[kind]["cellStates"] extends true ? kind : never;
}[VariantKind];

/**
 * The cell equations of the LSTM family (the `equations` of {@linkcode FamilyKind}): what the
 * reference, the WGSL kernels and the Rust crate each implement once (`"lstm"` runs `"array"`).
 *
 * @example
 * ```ts
 * import type { FamilyEquations } from "./variants.ts";
 * const equations: FamilyEquations = "attention";
 * ```
 */
export type FamilyEquations = typeof VARIANTS[FamilyKind]["equations"];

/**
 * The model classes of the variants (`VARIANTS[kind].model`): `src/models/registry.ts` holds one
 * entry for each, so a variant with a new class does not compile without one.
 *
 * @example
 * ```ts
 * import type { ModelName } from "./variants.ts";
 * const name: ModelName = "StochasticArrayLSTM";
 * ```
 */
export type ModelName =
  | "LSTM"
  | "ArrayLSTM"
  | "AttentionArrayLSTM"
  | "StochasticArrayLSTM"
  | "GRU"
  | "RNN";

/**
 * The opt-in outputs of a forward, each with the flag of {@linkcode VariantInfo} a variant needs
 * to return it: the attention weights need `attention`, the chosen lanes `argmax`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { EXTRA_OUTPUTS, VARIANTS } from "./variants.ts";
 * assert.equal(VARIANTS.stochastic[EXTRA_OUTPUTS.lanes], true);
 * ```
 */
export const EXTRA_OUTPUTS = {
  attention: "attention",
  lanes: "argmax",
} as const satisfies { readonly [output: string]: keyof VariantInfo };

/** The name of an opt-in output: `"attention"` or `"lanes"`. */
export type ExtraOutput = keyof typeof EXTRA_OUTPUTS;

/**
 * The variant that returns an opt-in output, for the errors that name it: the first (in code
 * order) with the output's flag.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outputOwner } from "./variants.ts";
 * assert.equal(outputOwner("lanes"), "stochastic");
 * ```
 */
export function outputOwner(output: ExtraOutput): VariantKind {
  const kinds = Object.keys(VARIANTS) as VariantKind[];
  const owner = kinds.find((kind) => offersExtra(kind, output));
  if (owner === undefined) {
    throw new Error(`no variant has the ${EXTRA_OUTPUTS[output]} flag for ${output}`);
  }
  return owner;
}

/**
 * Whether a variant can return an opt-in output: the one rule for which cells may ask for what
 * (the model classes' `returnAttention` / `returnLanes`, the contract's checks and the backends
 * follow it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offersExtra } from "./variants.ts";
 * assert.equal(offersExtra("attention", "attention"), true);
 * assert.equal(offersExtra("array", "lanes"), false);
 * ```
 */
export function offersExtra(kind: VariantKind, output: ExtraOutput): boolean {
  return VARIANTS[kind][EXTRA_OUTPUTS[output]];
}
