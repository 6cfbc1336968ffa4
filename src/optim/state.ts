/**
 * The types of an optimizer's state: hyper-parameters, per-parameter state (in TypeScript and in
 * a backend's layout) and the `stateDict()` that holds them.
 *
 * @module
 */

import type { Tensor } from "../tensor.ts";

/** A hyper-parameter value. */
export type OptionValue = number | boolean | readonly number[];

/** What `stateDict()` returns and `loadStateDict()` takes; tensors are copies. */
export interface OptimizerStateDict {
  /** Per parameter, in order: its buffers and counters, `null` before its first update. */
  readonly state: readonly (Readonly<Record<string, Tensor | number>> | null)[];
  /** The hyper-parameters, `lr` included (schedules change it). */
  readonly options: Readonly<Record<string, OptionValue>>;
}

/** One parameter's optimizer state: buffers shaped like it, and counters. */
export type ParameterState = Record<string, Float32Array | number>;

/**
 * One parameter's optimizer state in a backend's layout (`ResidentOptimizerState` of
 * `src/contract/types.ts`): the step count and up to three vectors, `null` for zeros.
 */
export interface ResidentParameterState {
  /** Steps taken (for SGD, 0 means no momentum buffer yet). */
  readonly steps: number;
  /** SGD's momentum buffer or Adam's `exp_avg`; `exp_avg_sq`; `max_exp_avg_sq`. */
  readonly slots: readonly (Float32Array | null)[];
}
