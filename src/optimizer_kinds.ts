/**
 * The optimizer kinds a backend applies fused, where the weights live: their update records
 * ({@linkcode OptimizerUpdate}, which the contract re-exports) and one table that every backend's
 * dispatch covers exhaustively. A kind added to `OptimizerUpdate` fails type-checking here and in
 * each backend's {@linkcode OptimizerDispatch} until it has an entry; a kind unknown at run time
 * throws, naming it, rather than running another kind's rule.
 *
 * It sits beside `variants.ts`, below the backends: they and `src/optim` both import it.
 *
 * @module
 */

import { describe } from "./errors.ts";

/**
 * One optimizer update with PyTorch's hyper-parameters (`torch.optim.SGD`, `Adam`, `AdamW`), for
 * a backend to apply where the weights live (`ResidentWeights.step` of the contract).
 */
export type OptimizerUpdate =
  | {
    readonly kind: "sgd";
    readonly lr: number;
    readonly momentum: number;
    readonly dampening: number;
    readonly nesterov: boolean;
    readonly weightDecay: number;
  }
  | {
    readonly kind: "adam";
    readonly lr: number;
    readonly beta1: number;
    readonly beta2: number;
    readonly eps: number;
    readonly weightDecay: number;
    readonly amsgrad: boolean;
    /** `AdamW`'s decoupled weight decay. */
    readonly decoupled: boolean;
  };

/** The name of a fused optimizer update (`OptimizerUpdate["kind"]`). */
export type OptimizerKind = OptimizerUpdate["kind"];

/** The update of one kind. */
export type UpdateOf<K extends OptimizerKind> = Extract<OptimizerUpdate, { readonly kind: K }>;

/** What every backend needs to know about one optimizer kind. */
export interface OptimizerKindInfo {
  /** The PyTorch optimizers whose update rule it follows. */
  readonly torch: string;
  /**
   * How many of `ResidentOptimizerState`'s three state vectors it uses, from the first (SGD: the
   * momentum buffer; Adam: `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`).
   */
  readonly stateSlots: 1 | 2 | 3;
}

/**
 * Every fused optimizer kind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OPTIMIZER_KINDS } from "./optimizer_kinds.ts";
 * assert.deepEqual(Object.keys(OPTIMIZER_KINDS), ["sgd", "adam"]);
 * assert.equal(OPTIMIZER_KINDS.adam.stateSlots, 3);
 * ```
 */
export const OPTIMIZER_KINDS: { readonly [K in OptimizerKind]: OptimizerKindInfo } = {
  sgd: { torch: "torch.optim.SGD", stateSlots: 1 },
  adam: { torch: "torch.optim.Adam, torch.optim.AdamW (decoupled weight decay)", stateSlots: 3 },
};

/** A backend's handler of each kind: the type requires one for every kind. */
export type OptimizerDispatch<R> = {
  readonly [K in OptimizerKind]: (update: UpdateOf<K>) => R;
};

/**
 * Calls the handler of `update.kind`.
 *
 * @throws {TypeError} For a kind that is not in {@linkcode OPTIMIZER_KINDS} (named).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dispatchOptimizer } from "./optimizer_kinds.ts";
 * const handlers = { sgd: () => "momentum buffer", adam: () => "moments" };
 * const update = { kind: "sgd", lr: 1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 } as const;
 * assert.equal(dispatchOptimizer(update, handlers), "momentum buffer");
 * assert.throws(() => dispatchOptimizer({ kind: "rmsprop" } as never, handlers), /"rmsprop"/);
 * ```
 */
export function dispatchOptimizer<R>(update: OptimizerUpdate, handlers: OptimizerDispatch<R>): R {
  const kind: unknown = update?.kind;
  if (typeof kind !== "string" || !Object.hasOwn(OPTIMIZER_KINDS, kind)) {
    const known = Object.keys(OPTIMIZER_KINDS).map((name) => `"${name}"`).join(", ");
    throw new TypeError(
      `update.kind must be one of ${known}, got ${describe(kind)}; an optimizer without a fused ` +
        "update returns null from residentUpdate()",
    );
  }
  return (handlers[kind as OptimizerKind] as (update: OptimizerUpdate) => R)(update);
}
