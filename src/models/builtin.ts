/**
 * Tracks the built-in model classes, so a model can tell whether its hooks are the built-in ones
 * (and may run fused whole-sequence kernels) or a user's overrides (and must run step by step).
 *
 * @module
 */

const builtinPrototypes = new WeakSet<object>();

/** The hooks a model exposes, by name. */
export const HOOKS = ["forwardCell", "updateHidden", "initHidden"] as const;

/** Records a built-in model class. */
export function registerBuiltin(model: { prototype: object }): void {
  builtinPrototypes.add(model.prototype);
}

/**
 * Whether every hook of `model` is the one its nearest built-in class defines.
 *
 * @example
 * ```ts
 * import { usesBuiltinHooks } from "./builtin.ts";
 * usesBuiltinHooks({}); // false: not a model
 * ```
 */
export function usesBuiltinHooks(model: object): boolean {
  let prototype = Object.getPrototypeOf(model);
  while (prototype !== null && !builtinPrototypes.has(prototype)) {
    prototype = Object.getPrototypeOf(prototype);
  }
  if (prototype === null) return false;
  const hooks = model as Record<string, unknown>;
  return HOOKS.every((hook) => hooks[hook] === prototype[hook]);
}
