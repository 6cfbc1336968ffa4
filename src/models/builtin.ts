/**
 * Tracks the built-in model classes, so a model can tell whether its hooks are the built-in ones
 * (and may run fused whole-sequence kernels) or a user's overrides (and must run step by step).
 *
 * @module
 */

const builtinPrototypes = new WeakSet<object>();

/** The hooks a model exposes, by name. */
export const HOOKS = ["forwardCell", "updateHidden", "initHidden"] as const;

/**
 * The hooks inside the time loop: overriding one makes a model run step by step. `initHidden`
 * only gives the initial state, which the fused kernels take as it is.
 */
export const STEP_HOOKS = ["forwardCell", "updateHidden"] as const;

/** Records a built-in model class. */
export function registerBuiltin(model: { prototype: object }): void {
  builtinPrototypes.add(model.prototype);
}

/**
 * Whether each of `hooks` (default: every hook) of `model` is the one its nearest built-in class
 * defines.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { STEP_HOOKS, usesBuiltinHooks } from "./builtin.ts";
 * import { LSTM, type RecurrentState, type Tensor } from "../../mod.ts";
 * class WarmStart extends LSTM {
 *   override initHidden(x: Tensor): RecurrentState {
 *     return super.initHidden(x);
 *   }
 * }
 * assert.equal(usesBuiltinHooks({}), false); // not a model
 * assert.equal(usesBuiltinHooks(new WarmStart(1, 1)), false);
 * assert.equal(usesBuiltinHooks(new WarmStart(1, 1), STEP_HOOKS), true);
 * ```
 */
export function usesBuiltinHooks(
  model: object,
  hooks: readonly (typeof HOOKS)[number][] = HOOKS,
): boolean {
  let prototype = Object.getPrototypeOf(model);
  while (prototype !== null && !builtinPrototypes.has(prototype)) {
    prototype = Object.getPrototypeOf(prototype);
  }
  if (prototype === null) return false;
  const own = model as Record<string, unknown>;
  return hooks.every((hook) => own[hook] === prototype[hook]);
}
