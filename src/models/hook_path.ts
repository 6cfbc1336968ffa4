/**
 * The step-by-step path of the LSTM family: a model whose time-loop hooks (`forwardCell`,
 * `updateHidden`) are not its built-in class's runs every step through them in TypeScript,
 * recorded op by op when something records, instead of the backend's fused kernels.
 *
 * @module
 */

import { checkShape, describe } from "../errors.ts";
import { reshape } from "../nn/functional.ts";
import { concat, split } from "../nn/layout.ts";
import { hasHistory, type TrackedTensor, untracked } from "../nn/tape.ts";
import { checkTensor, type Tensor } from "../tensor.ts";
import type { RecurrentState } from "./forward_options.ts";
import { type PackedResult, PackedRun } from "./packed.ts";

/** What the step path reads of a model. */
export interface StepModel {
  /** `H`. */
  readonly hiddenSize: number;
  /** Cell states per hidden unit. */
  readonly k: number;
  /** Whether the model records its parameters' ops. */
  readonly training: boolean;
  /** One step of the cell. */
  forwardCell(x: Tensor, hidden: Tensor, state: Tensor): RecurrentState;
}

/**
 * Runs `x` `(B, T, I)` from `start` step by step through `model.forwardCell`, each sequence up to
 * its `lengths` when given (`null`: all `T` steps). Every step is recorded when something records
 * (the hooks' ops with the parameters in training mode, or inputs with history): the step inputs
 * are split from `x` and the outputs joined with the tape's ops, so the gradient reaches `x`, the
 * initial state and the parameters through every step.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { forwardByHooks } from "./hook_path.ts";
 * import { LSTM, zeros } from "../../mod.ts";
 * const lstm = new LSTM(2, 3, { backend: "js", seed: 1 });
 * const x = zeros([2, 4, 2]);
 * const { output } = forwardByHooks(lstm, x, lstm.initHidden(x), Int32Array.of(4, 2));
 * assert.deepEqual(output.shape, [2, 4, 3]);
 * ```
 */
export function forwardByHooks(
  model: StepModel,
  x: Tensor,
  start: RecurrentState,
  lengths: Int32Array | null,
): PackedResult {
  const seqLen = x.shape[1];
  if (lengths === null || lengths.every((length) => length === seqLen)) {
    return stepThrough(model, x, start);
  }
  const packed = new PackedRun(x, start, lengths);
  for (let chunk = packed.next(); chunk !== null; chunk = packed.next()) {
    packed.accept(stepThrough(model, chunk.x, chunk.start));
  }
  return packed.result();
}

function stepThrough(model: StepModel, x: Tensor, start: RecurrentState): PackedResult {
  const [batch, seqLen, I] = x.shape;
  const H = model.hiddenSize;
  const steps = split(x, new Array(seqLen).fill(1), 1);
  const outputs: Tensor[] = [];
  let current = start;
  for (let t = 0; t < seqLen; t++) {
    const step = reshape(steps[t], [batch, I]);
    const next = model.forwardCell(step, current.hidden, current.state);
    const source = `${model.constructor.name}.forwardCell at step ${t}`;
    checkState(model, source, next, batch);
    const inputs = [step, current.hidden, current.state];
    checkHookHistory(`${source} (its hidden)`, next.hidden, inputs, model.training);
    checkHookHistory(`${source} (its state)`, next.state, inputs, model.training);
    outputs.push(reshape(next.hidden, [batch, 1, H]));
    current = next;
  }
  return {
    output: concat(outputs, 1),
    hidden: withHistory(current.hidden),
    state: withHistory(current.state),
  };
}

/**
 * Checks a recurrent state of `batch` sequences against `model`: `hidden` `(1, batch, H)`,
 * `state` `(k, batch, H)`.
 *
 * @param source What gave the state, as the error names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkState } from "./hook_path.ts";
 * import { zeros } from "../tensor.ts";
 * const model = { hiddenSize: 2, k: 1 };
 * checkState(model, "init", { hidden: zeros([1, 3, 2]), state: zeros([1, 3, 2]) }, 3);
 * assert.throws(() => checkState(model, "init", { hidden: zeros([1, 3, 2]), state: zeros([2, 3, 2]) }, 3));
 * ```
 */
export function checkState(
  model: Pick<StepModel, "hiddenSize" | "k">,
  source: string,
  value: RecurrentState,
  batch: number,
): void {
  if (typeof value !== "object" || value === null) {
    throw new TypeError(`${source} must be { hidden, state }, got ${describe(value)}`);
  }
  checkTensor(`${source}.hidden`, value.hidden);
  checkShape(
    `${source}.hidden`,
    value.hidden.shape,
    [1, batch, model.hiddenSize],
    "(1, batch, hiddenSize)",
  );
  checkTensor(`${source}.state`, value.state);
  checkShape(
    `${source}.state`,
    value.state.shape,
    [model.k, batch, model.hiddenSize],
    "(k, batch, hiddenSize)",
  );
}

/** A tensor as a `TrackedTensor`: itself when it carries history, else a plain wrapper. */
function withHistory(value: Tensor): TrackedTensor {
  return hasHistory(value) ? value as TrackedTensor : untracked(value);
}

/**
 * Refuses a hook's `result` computed on raw arrays while recording: when `training` or one of
 * the hook's `inputs` carries history, the result must carry history too (or be one of the inputs,
 * passed on as it is), else the gradient would silently stop at it.
 *
 * @param source The hook, as the error names it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHookHistory } from "./hook_path.ts";
 * import { requiresGrad, tensor } from "../../mod.ts";
 * const input = requiresGrad(tensor([1], [1]));
 * checkHookHistory("hook", input, [input], true); // passed on as it is
 * assert.throws(() => checkHookHistory("hook", tensor([2], [1]), [input], false), /hook returned/);
 * ```
 */
export function checkHookHistory(
  source: string,
  result: Tensor,
  inputs: readonly Tensor[],
  training: boolean,
): void {
  if (hasHistory(result) || inputs.includes(result)) return;
  if (!training && !inputs.some(hasHistory)) return;
  throw new Error(
    `${source} returned a tensor without history while recording (the layer is training, or ` +
      "its inputs carry history): it was computed on raw arrays, which backward() cannot " +
      "follow. Build it from the model's differentiable ops (super's hooks, this.stepCells, and " +
      "add, mul, tanh, sum, reshape, split, concat, softmax from the package), or call eval() " +
      "and pass inputs without history",
  );
}
