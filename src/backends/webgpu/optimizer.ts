/**
 * Optimizer steps on the device (`kernels/train_optimizer.wgsl`, one entry point per kind of
 * `src/optimizer_kinds.ts`, named after it): the uniform record of each kind, with the
 * step-dependent scalars (Adam's bias corrections) computed here in float64, and its dispatch.
 * The update comes from an optimizer that checked its options (`src/optim`).
 *
 * @module
 */

import type { OptimizerUpdate, ResidentOptimizerState } from "../../contract/mod.ts";
import {
  dispatchOptimizer,
  OPTIMIZER_KINDS,
  type OptimizerKind,
  type UpdateOf,
} from "../../optimizer_kinds.ts";
import { type GpuContext, pipeline } from "./device.ts";
import { type Binding, f32Bits, type TrainOps } from "./ops.ts";

/** The compiled entry point of each optimizer kind. */
type OptimizerPipelines = { readonly [K in OptimizerKind]: GPUComputePipeline };

/** What one optimizer step reads and writes. */
export interface OptimizerBuffers {
  /** The flat parameters. */
  readonly params: GPUBuffer;
  /** Their gradients. */
  readonly grads: GPUBuffer;
  /** The three state vectors; a kind binds the first `stateSlots` of them. */
  readonly state: readonly [GPUBuffer, GPUBuffer, GPUBuffer];
}

/** Flags of the `Optimizer` record (see `kernels/train_optimizer.wgsl`). */
const NESTEROV = 1, FIRST_STEP = 2, DECOUPLED = 4, AMSGRAD = 8;

/** Compiles the entry point of every optimizer kind. */
async function optimizerPipelines(context: GpuContext): Promise<OptimizerPipelines> {
  const kinds = Object.keys(OPTIMIZER_KINDS) as OptimizerKind[];
  const compiled = await Promise.all(
    kinds.map((kind) => pipeline(context, "trainOptimizer", kind, {})),
  );
  return Object.fromEntries(
    kinds.map((kind, index) => [kind, compiled[index]]),
  ) as OptimizerPipelines;
}

function sgdRecord(update: UpdateOf<"sgd">, step: number, count: number): number[] {
  const { lr, momentum, dampening, nesterov, weightDecay } = update;
  const flags = (nesterov ? NESTEROV : 0) | (step === 1 ? FIRST_STEP : 0);
  return [count, flags, ...[lr, weightDecay, momentum, dampening, 0, 0, 0, 0, 0].map(f32Bits)];
}

function adamRecord(update: UpdateOf<"adam">, step: number, count: number): number[] {
  const { lr, beta1, beta2, eps, weightDecay, amsgrad, decoupled } = update;
  const flags = (decoupled ? DECOUPLED : 0) | (amsgrad ? AMSGRAD : 0);
  const stepSize = lr / (1 - beta1 ** step);
  const correction2Sqrt = Math.sqrt(1 - beta2 ** step);
  return [
    count,
    flags,
    ...[lr, weightDecay, 0, 0, beta1, beta2, eps, stepSize, correction2Sqrt].map(f32Bits),
  ];
}

/**
 * The uniform record of one optimizer step over `count` floats: `step` is the 1-based step number
 * (Adam's bias corrections; SGD's first step starts the momentum buffer).
 *
 * @throws {TypeError} For an unknown kind (named).
 *
 * @example
 * ```ts
 * import { optimizerRecord } from "./optimizer.ts";
 * const update = {
 *   kind: "adam", lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0,
 *   amsgrad: false, decoupled: false,
 * } as const;
 * const words = optimizerRecord(update, 1, 100);
 * ```
 */
export function optimizerRecord(update: OptimizerUpdate, step: number, count: number): number[] {
  return dispatchOptimizer(update, {
    sgd: (sgd) => sgdRecord(sgd, step, count),
    adam: (adam) => adamRecord(adam, step, count),
  });
}

/**
 * The optimizer of one trainer on the device: its compiled kernels and its step count; the state
 * vectors are the trainer's buffers ({@linkcode OptimizerBuffers}).
 *
 * @example
 * ```ts ignore
 * import { DeviceOptimizer } from "./optimizer.ts";
 * const optimizer = await DeviceOptimizer.create(context);
 * optimizer.step(ops, update, { params, grads, state }, count);
 * ```
 */
export class DeviceOptimizer {
  readonly #pipelines: OptimizerPipelines;
  #steps = 0;

  private constructor(pipelines: OptimizerPipelines) {
    this.#pipelines = pipelines;
  }

  /** Compiles the entry point of every optimizer kind on `context`'s device. */
  static async create(context: GpuContext): Promise<DeviceOptimizer> {
    return new DeviceOptimizer(await optimizerPipelines(context));
  }

  /** Steps taken (or written by {@linkcode DeviceOptimizer.writeState}). */
  get steps(): number {
    return this.#steps;
  }

  /**
   * Submits (on `ops`) one step of `update` over the `count` parameters of `buffers`, from the state the
   * steps before left there (zero at first).
   *
   * @throws {TypeError} For an unknown kind (named).
   */
  step(ops: TrainOps, update: OptimizerUpdate, buffers: OptimizerBuffers, count: number): void {
    const record = optimizerRecord(update, this.#steps + 1, count);
    const { stateSlots } = OPTIMIZER_KINDS[update.kind];
    const state = buffers.state.slice(0, stateSlots).map((buffer, index): Binding => [
      3 + index,
      buffer,
    ]);
    const dispatch = ops.linear(
      this.#pipelines[update.kind],
      record,
      [[1, buffers.params], [2, buffers.grads], ...state],
      count,
    );
    this.#steps++;
    ops.submit([dispatch]);
  }

  /**
   * Writes `state` (each vector `count` long) into `buffers` and takes its step count.
   *
   * @throws {RangeError} If a vector has the wrong length.
   */
  writeState(
    ops: TrainOps,
    state: ResidentOptimizerState,
    buffers: OptimizerBuffers["state"],
    count: number,
  ): void {
    state.slots.forEach((slot, index) => {
      if (slot.length !== count) {
        throw new RangeError(
          `state.slots[${index}] must have ${count} elements, got ${slot.length}`,
        );
      }
    });
    for (const [index, slot] of state.slots.entries()) {
      ops.context.device.queue.writeBuffer(buffers[index], 0, Float32Array.from(slot));
    }
    this.#steps = state.steps;
  }
}
