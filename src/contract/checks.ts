/**
 * The contract's checks, and the helpers that read a spec: every spec, input and gradient a
 * backend gets passed these first ({@linkcode checkSpec}, {@linkcode checkInput},
 * {@linkcode checkOutputGradients}, {@linkcode checkEpsilonRule}), so no backend re-implements
 * them. The rules are listed in `mod.ts`.
 *
 * @module
 */

import { checkSize, describe } from "../errors.ts";
import { type VariantKind, VARIANTS } from "../variants.ts";
import { RECURRENT_ACTIVATIONS } from "./activation.ts";
import { checkExtras } from "./extras.ts";
import type {
  CellParameters,
  CellSpec,
  CellVariant,
  EpsilonRule,
  OutputGradients,
  SequenceInput,
} from "./types.ts";

/**
 * A deep copy of a cell spec, for runners that keep the weights: the caller may change its arrays
 * after `compile` without affecting the runner.
 *
 * @example
 * ```ts
 * import { copySpec } from "./checks.ts";
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

/**
 * A copy of an input's arrays (and opt-in outputs): for a call that waits in a queue, or a
 * training step that keeps its input, after the caller may have reused its arrays. An initial
 * state the input owns ({@linkcode SequenceInput.ownsState}) is kept, not copied.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyInput } from "./checks.ts";
 * const x = new Float32Array([1, 2]);
 * const copy = copyInput({ batch: 1, seqLen: 2, x, hidden: new Float32Array(1), state: new Float32Array(1) });
 * x[0] = 5;
 * assert.equal(copy.x[0], 1);
 * // A default initial state made for the call is kept as it is.
 * const zeros = { hidden: new Float32Array(1), state: new Float32Array(1) };
 * const kept = copyInput({ batch: 1, seqLen: 2, x, ...zeros, ownsState: true });
 * assert.equal(kept.hidden, zeros.hidden);
 * assert.notEqual(kept.x, x);
 * ```
 */
export function copyInput(input: SequenceInput): SequenceInput {
  const owned = input.ownsState === true;
  return {
    batch: input.batch,
    seqLen: input.seqLen,
    x: input.x.slice(),
    hidden: owned ? input.hidden : input.hidden.slice(),
    state: owned ? input.state : input.state.slice(),
    ...(owned ? { ownsState: true } : {}),
    ...(input.outputs === undefined ? {} : { outputs: { ...input.outputs } }),
  };
}

/** Every {@linkcode VariantKind}, in the order error messages list them. */
const VARIANT_KINDS = Object.keys(VARIANTS) as VariantKind[];

function checkArray(name: string, value: unknown, length: number, meaning: string): void {
  if (!(value instanceof Float32Array)) {
    const got = value === null || typeof value !== "object"
      ? describe(value)
      : value.constructor?.name ?? "an object";
    throw new TypeError(
      `${name} must be a Float32Array of ${meaning} = ${length} floats, got ${got}`,
    );
  }
  if (value.length !== length) {
    throw new RangeError(
      `${name} must be a Float32Array of ${meaning} = ${length} floats, got ${value.length} floats`,
    );
  }
}

function checkCount(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * Checks a cell spec against the contract: a known variant, positive integer sizes, `k = 1` for
 * `"lstm"`, and parameters of the right lengths (`i2a` only for attention).
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong, with the expected and the
 * actual value.
 *
 * @example
 * ```ts
 * import { checkSpec } from "./checks.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const params = { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null };
 * checkSpec({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 1, params });
 * assert.throws(() =>
 *   checkSpec({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 1, params })
 * );
 * ```
 */
export function checkSpec(spec: CellSpec): void {
  if (typeof spec !== "object" || spec === null) {
    throw new TypeError(`spec must be a cell spec object, got ${describe(spec)}`);
  }
  const { variant, params } = spec;
  if (!VARIANT_KINDS.includes(variant?.kind)) {
    throw new TypeError(
      `spec.variant.kind must be one of ${VARIANT_KINDS.map(describe).join(", ")}, got ${
        describe(variant?.kind)
      }`,
    );
  }
  const k = checkSize("spec.variant.k", variant.k);
  if (VARIANTS[variant.kind].lanes === "one" && k !== 1) {
    throw new RangeError(`spec.variant.k must be 1 for an "${variant.kind}" cell, got ${k}`);
  }
  if (
    variant.recurrentActivation !== undefined &&
    !RECURRENT_ACTIVATIONS.includes(variant.recurrentActivation)
  ) {
    throw new TypeError(
      `spec.variant.recurrentActivation must be one of ${
        RECURRENT_ACTIVATIONS.map(describe).join(", ")
      }, got ${describe(variant.recurrentActivation)}`,
    );
  }
  const { gates } = VARIANTS[variant.kind];
  if (gates !== 4 && (variant.recurrentActivation ?? "sigmoid") !== "sigmoid") {
    throw new RangeError(
      `spec.variant.recurrentActivation must be "sigmoid" (or absent) for a ${
        describe(variant.kind)
      } cell, got ${describe(variant.recurrentActivation)}: only the LSTM family has a choice`,
    );
  }
  if (typeof variant.maxPooling !== "boolean") {
    throw new TypeError(
      `spec.variant.maxPooling must be a boolean, got ${describe(variant.maxPooling)}`,
    );
  }
  const I = checkSize("spec.inputSize", spec.inputSize);
  const H = checkSize("spec.hiddenSize", spec.hiddenSize);
  const rows = gates * k * H;
  checkArray("spec.params.i2hWeight", params.i2hWeight, rows * I, `(${gates}kH, I)`);
  checkArray("spec.params.i2hBias", params.i2hBias, rows, `(${gates}kH)`);
  checkArray("spec.params.h2hWeight", params.h2hWeight, rows * H, `(${gates}kH, H)`);
  checkArray("spec.params.h2hBias", params.h2hBias, rows, `(${gates}kH)`);
  if (VARIANTS[variant.kind].attention) {
    checkArray("spec.params.i2aWeight", params.i2aWeight, k * H * I, "(kH, I)");
    checkArray("spec.params.i2aBias", params.i2aBias, k * H, "(kH)");
    return;
  }
  for (const name of ["i2aWeight", "i2aBias"] as const) {
    if (params[name] !== null) {
      throw new TypeError(
        `spec.params.${name} must be null unless the kind is "attention" (only attention has i2a ` +
          `parameters), got a ${params[name]?.constructor?.name} for kind ${
            describe(variant.kind)
          }`,
      );
    }
  }
}

/**
 * Checks one call's input against a spec that passed {@linkcode checkSpec}: non-negative integer
 * `batch` and `seqLen`, and arrays of the lengths they imply.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong, with the expected and the
 * actual value.
 *
 * @example
 * ```ts
 * import { checkInput } from "./checks.ts";
 * import assert from "node:assert/strict";
 * const z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * } as const;
 * checkInput(spec, { batch: 1, seqLen: 2, x: z(2), hidden: z(1), state: z(1) });
 * assert.throws(() => checkInput(spec, { batch: 1, seqLen: 3, x: z(2), hidden: z(1), state: z(1) }));
 * ```
 */
export function checkInput(spec: CellSpec, input: SequenceInput): void {
  if (typeof input !== "object" || input === null) {
    throw new TypeError(`input must be a sequence input object, got ${describe(input)}`);
  }
  const B = checkCount("input.batch", input.batch);
  const T = checkCount("input.seqLen", input.seqLen);
  const { inputSize: I, hiddenSize: H, variant: { k, kind } } = spec;
  checkArray("input.x", input.x, B * T * I, `(batch, seqLen, inputSize) = (${B}, ${T}, ${I})`);
  checkArray("input.hidden", input.hidden, B * H, `(batch, hiddenSize) = (${B}, ${H})`);
  checkArray(
    "input.state",
    input.state,
    stateRows(spec.variant) * B * H,
    VARIANTS[kind].cellStates
      ? `(k, batch, hiddenSize) = (${k}, ${B}, ${H})`
      : `nothing (a ${describe(kind)} cell keeps no cell states)`,
  );
  if (input.ownsState !== undefined && typeof input.ownsState !== "boolean") {
    throw new TypeError(`input.ownsState must be a boolean, got ${describe(input.ownsState)}`);
  }
  if (input.outputs !== undefined) checkExtras(spec.variant.kind, input.outputs);
}

/**
 * Rows of cell states `(rows, B, H)` a variant keeps: `k`, or 0 for GRU and RNN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stateRows } from "./checks.ts";
 * assert.equal(stateRows({ kind: "array", k: 3, maxPooling: false }), 3);
 * assert.equal(stateRows({ kind: "gru", k: 1, maxPooling: false }), 0);
 * ```
 */
export function stateRows(variant: CellVariant): number {
  return VARIANTS[variant.kind].cellStates ? variant.k : 0;
}

/**
 * The parameters of a cell as PyTorch names them, with their sizes in floats, in the order of
 * {@linkcode CellParameters} (`i2a` only for attention cells; torch's `weight_ih`, `bias_ih`,
 * `weight_hh`, `bias_hh` for GRU and RNN).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parameterSizes } from "./checks.ts";
 * const sizes = parameterSizes({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 1 });
 * assert.deepEqual(sizes, [["i2h.weight", 8], ["i2h.bias", 4], ["h2h.weight", 4], ["h2h.bias", 4]]);
 * ```
 */
export function parameterSizes(
  cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
): [string, number][] {
  const { variant: { k, kind }, inputSize: I, hiddenSize: H } = cell;
  const rows = VARIANTS[kind].gates * k * H;
  const [weightIh, biasIh, weightHh, biasHh] = VARIANTS[kind].cellStates
    ? ["i2h.weight", "i2h.bias", "h2h.weight", "h2h.bias"]
    : ["weight_ih", "bias_ih", "weight_hh", "bias_hh"];
  const sizes: [string, number][] = [
    [weightIh, rows * I],
    [biasIh, rows],
    [weightHh, rows * H],
    [biasHh, rows],
  ];
  if (VARIANTS[kind].attention) sizes.push(["i2a.weight", k * H * I], ["i2a.bias", k * H]);
  return sizes;
}

/**
 * Checks one gradient (or relevance) array: a `Float32Array` or `Float64Array` of `length`
 * floats, `meaning` saying which shape that is.
 *
 * @throws {TypeError | RangeError} Naming `name`, the expected and the actual value.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkGradient } from "./checks.ts";
 * checkGradient("grads.hidden", new Float64Array(6), 6, "(batch, hiddenSize) = (2, 3)");
 * assert.throws(() => checkGradient("grads.hidden", new Float32Array(5), 6, "(batch, hiddenSize) = (2, 3)"), RangeError);
 * ```
 */
export function checkGradient(
  name: string,
  value: unknown,
  length: number,
  meaning: string,
): void {
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new TypeError(
      `${name} must be a Float32Array or Float64Array of ${meaning} = ${length} floats, got ${
        describe(value)
      }`,
    );
  }
  if (value.length !== length) {
    throw new RangeError(
      `${name} must have ${meaning} = ${length} floats, got ${value.length} floats`,
    );
  }
}

/**
 * `spec` with the flat parameters `flat` (`parameterSizes` order, copied) as its weights.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { specWithParameters } from "./checks.ts";
 * const z = (n: number) => new Float32Array(n);
 * const spec = {
 *   variant: { kind: "lstm", k: 1, maxPooling: false },
 *   inputSize: 1,
 *   hiddenSize: 1,
 *   params: { i2hWeight: z(4), i2hBias: z(4), h2hWeight: z(4), h2hBias: z(4), i2aWeight: null, i2aBias: null },
 * } as const;
 * const next = specWithParameters(spec, Float32Array.from({ length: 16 }, (_, i) => i));
 * assert.deepEqual([...next.params.h2hBias], [12, 13, 14, 15]);
 * ```
 */
export function specWithParameters(spec: CellSpec, flat: Float32Array): CellSpec {
  let start = 0;
  const [i2hWeight, i2hBias, h2hWeight, h2hBias, i2aWeight = null, i2aBias = null] = parameterSizes(
    spec,
  ).map(([, size]) => flat.slice(start, start += size));
  return { ...spec, params: { i2hWeight, i2hBias, h2hWeight, h2hBias, i2aWeight, i2aBias } };
}

/**
 * Checks the gradients given to a training step's `backward` against the spec and the step's
 * input: `output` `(B, T, H)`, and `hidden` `(B, H)` and `state` `(k, B, H)` when present.
 *
 * @throws {TypeError | RangeError} Naming the first field that is wrong.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkOutputGradients } from "./checks.ts";
 * const cell = { variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 1, hiddenSize: 2 } as const;
 * checkOutputGradients(cell, 1, 3, { output: new Float32Array(6) });
 * assert.throws(() => checkOutputGradients(cell, 1, 3, { output: new Float32Array(5) }), RangeError);
 * ```
 */
export function checkOutputGradients(
  cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">,
  batch: number,
  seqLen: number,
  grads: OutputGradients,
): void {
  if (typeof grads !== "object" || grads === null) {
    throw new TypeError(
      `grads must be an object { output, hidden?, state? }, got ${describe(grads)}`,
    );
  }
  const { hiddenSize: H } = cell;
  const B = batch, T = seqLen;
  checkGradient(
    "grads.output",
    grads.output,
    B * T * H,
    `(batch, seqLen, hiddenSize) = (${B}, ${T}, ${H})`,
  );
  if (grads.hidden !== undefined) {
    checkGradient("grads.hidden", grads.hidden, B * H, `(batch, hiddenSize) = (${B}, ${H})`);
  }
  if (grads.state !== undefined) {
    checkGradient(
      "grads.state",
      grads.state,
      stateRows(cell.variant) * B * H,
      `(k, batch, hiddenSize) = (${stateRows(cell.variant)}, ${B}, ${H})`,
    );
  }
}

/**
 * Checks LRP's stabilisers: `eps` a finite number `>= 0`, `biasFactor` a finite number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEpsilonRule } from "./checks.ts";
 * checkEpsilonRule({ eps: 0.001, biasFactor: 1 });
 * assert.throws(() => checkEpsilonRule({ eps: -1, biasFactor: 0 }), /options.eps must be .* got -1/);
 * ```
 */
export function checkEpsilonRule(rule: EpsilonRule, name = "options"): void {
  const { eps, biasFactor } = rule;
  if (typeof eps !== "number" || !(eps >= 0) || !Number.isFinite(eps)) {
    throw new RangeError(`${name}.eps must be a finite number >= 0, got ${describe(eps)}`);
  }
  if (typeof biasFactor !== "number" || !Number.isFinite(biasFactor)) {
    throw new RangeError(
      `${name}.biasFactor must be a finite number (0 or 1), got ${describe(biasFactor)}`,
    );
  }
}

/**
 * `array` itself when it is a `Float32Array`, else a `Float32Array` copy of it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toFloat32 } from "./checks.ts";
 * const single = new Float32Array([1, 2]);
 * assert.equal(toFloat32(single), single);
 * assert.deepEqual(toFloat32(new Float64Array([0.5])), new Float32Array([0.5]));
 * ```
 */
export function toFloat32(array: Float32Array | Float64Array): Float32Array {
  return array instanceof Float32Array ? array : Float32Array.from(array);
}

const EMPTY_PARAMETERS: CellParameters = {
  i2hWeight: new Float32Array(0),
  i2hBias: new Float32Array(0),
  h2hWeight: new Float32Array(0),
  h2hBias: new Float32Array(0),
  i2aWeight: null,
  i2aBias: null,
};

/**
 * A cell's sizes with empty weights: all {@linkcode checkInput} needs, without keeping the
 * weights alive.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sizesOf } from "./checks.ts";
 * const sizes = sizesOf({ variant: { kind: "lstm", k: 1, maxPooling: false }, inputSize: 2, hiddenSize: 3 });
 * assert.equal(sizes.params.i2hWeight.length, 0);
 * ```
 */
export function sizesOf(cell: Pick<CellSpec, "variant" | "inputSize" | "hiddenSize">): CellSpec {
  return {
    variant: { ...cell.variant },
    inputSize: cell.inputSize,
    hiddenSize: cell.hiddenSize,
    params: EMPTY_PARAMETERS,
  };
}
