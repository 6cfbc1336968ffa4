/**
 * A compiled cell on the WebGPU device. Weights are packed once (and kept in CPU memory, so that a
 * lost device can be replaced); buffers, bind groups and step records are made once per call shape
 * and reused. A call uploads the input and initial state, encodes the projection and all time
 * steps of a batch chunk into one command buffer, copies the results into one staging buffer and
 * reads it back once.
 *
 * Training runs on a `WebGpuTrainer` made on the first training call; its flat weight, gradient
 * and optimizer buffers are the runner's `device` weights, which an optimizer steps in place (see
 * `src/nn/device_group.ts`). The next inference call packs the stepped weights into its own
 * layouts on the device (`repack.ts`); the CPU copy is then older than the device's.
 *
 * This file holds the runner's life cycle (one call at a time, device loss, disposal); the pieces
 * are `packed_cell.ts` (packing), `resident.ts` (weights on a device, with the cache of call
 * shapes), `call_buffers.ts` (buffers per call shape), `dispatch.ts` (encoding) and `readback.ts`
 * (results).
 *
 * @module
 */

import {
  type BackwardOptions,
  type CellSpec,
  type CompiledCell,
  copyInput,
  copySpec,
  type DeviceWeights,
  type InputGradients,
  type OutputGradients,
  requestedExtras,
  type SequenceInput,
  type SequenceOutput,
  type TrainingStep,
} from "../../contract/mod.ts";
import { type CallBuffers, callBuffers } from "./call_buffers.ts";
import {
  acquireGpuContext,
  forgetGpuContext,
  type GpuContext,
  lossOf,
  lostTrainedWeights,
} from "./device.ts";
import { submitCall } from "./dispatch.ts";
import { packCell, type PackedCell } from "./packed_cell.ts";
import { DeviceLost, readResults } from "./readback.ts";
import { makeResident, releaseResident, type Resident } from "./resident.ts";
import { repackOnDevice } from "./repack.ts";
import { WebGpuTrainer } from "./trainer.ts";

/**
 * Runs sequences of one compiled cell on the shared WebGPU device.
 *
 * @example
 * ```ts ignore
 * import { WebGpuRunner } from "./runner.ts";
 * const runner = await WebGpuRunner.create(spec);
 * const { output } = await runner.run(input);
 * runner.dispose();
 * ```
 */
export class WebGpuRunner implements CompiledCell {
  #cell: PackedCell | null;
  #resident: Resident<CallBuffers> | null = null;
  #bindingLimit: number;
  /** Calls run one at a time: they share the call buffers (and the trainer). */
  #queue: Promise<unknown> = Promise.resolve();
  /** The weights in the reference's layouts, for the trainer; `null` once disposed. */
  #spec: CellSpec | null;
  /** Made on the first training call: a runner that only infers never holds one. */
  #trainer: Promise<WebGpuTrainer> | null = null;
  /** The trainer once made: the device weights' synchronous changes need it at hand. */
  #madeTrainer: WebGpuTrainer | null = null;
  /** Whether an optimizer step changed the trainer's weights since inference packed them. */
  #trainerAhead = false;
  /** Whether inference packed them on the device since `#cell`: a lost device loses them. */
  #cellBehind = false;
  #trainingSteps = 0;
  /** The training step whose activations the trainer holds. */
  #recorded: number | null = null;
  /** Why the last device this runner used was lost, or `null`. */
  #lossReason: string | null = null;

  private constructor(spec: CellSpec, bindingLimit: number) {
    this.#cell = packCell(spec);
    this.#spec = copySpec(spec);
    this.#bindingLimit = bindingLimit;
  }

  /**
   * Packs `spec` (checked by the contract), uploads it to the device and compiles the projection
   * pipeline. `maxBindingBytes` caps the bytes bound per storage buffer below the device's limit.
   */
  static async create(spec: CellSpec, maxBindingBytes = Infinity): Promise<WebGpuRunner> {
    const runner = new WebGpuRunner(spec, maxBindingBytes);
    await runner.#onWorkingDevice((context) => runner.#ensureResident(context));
    return runner;
  }

  /**
   * Runs all steps of `input`; the input arrays are left untouched. They are copied before this
   * returns (the call may wait for the one before it), so the caller may reuse them at once.
   */
  run(input: SequenceInput): Promise<SequenceOutput> {
    const snapshot = copyInput(input);
    return this.#exclusive(() => this.#runExclusive(snapshot));
  }

  /**
   * The recording forward on the fused training kernels (`WebGpuTrainer`). The trainer holds one
   * recording: the backward of an older step runs its forward again first (same kernels, same
   * weights, same activations).
   */
  async runTraining(input: SequenceInput): Promise<TrainingStep> {
    const snapshot = copyInput(input);
    const step = ++this.#trainingSteps;
    const output = await this.#exclusive(() =>
      this.#onTrainer(async (trainer) => {
        this.#recorded = null;
        const result = await trainer.forward(snapshot);
        this.#recorded = step;
        return result;
      })
    );
    return {
      ...output,
      backward: (grads, options) => this.#backward(snapshot, step, grads, options),
    };
  }

  /**
   * The weights on the device, as the trainer holds them: an optimizer steps them there, and the
   * next training forward uses them as they are. An inference `run` packs them into its layouts
   * first, on the device.
   */
  readonly device: DeviceWeights = {
    step: (update) => {
      this.#trainerAtHand().step(update);
      this.#trainerAhead = true;
    },
    scaleGradients: (factors) => this.#trainerAtHand().scaleParameterGradients(factors),
    writeGradients: (grads) => this.#trainerAtHand().writeGradients(grads),
    writeState: (state) => this.#trainerAtHand().writeState(state),
    read: () => this.#onTrainer((trainer) => trainer.readAll()),
  };

  /** Frees the runner's GPU memory; a call still running rejects. */
  dispose(): void {
    this.#cell = null;
    this.#spec = null;
    this.#release();
    const trainer = this.#trainer;
    this.#trainer = null;
    this.#madeTrainer = null;
    trainer?.then((made) => made.dispose(), () => {});
  }

  #exclusive<T>(call: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(call);
    this.#queue = result.catch(() => {});
    return result;
  }

  #backward(
    input: SequenceInput,
    step: number,
    grads: OutputGradients,
    options: BackwardOptions = {},
  ): Promise<InputGradients> {
    return this.#exclusive(() =>
      this.#onTrainer(async (trainer) => {
        if (this.#recorded !== step) await trainer.forward(input);
        this.#recorded = null;
        const keep = options.keepParameterGradients;
        // Without `keep`, the tape accumulates `grad`: return this call's gradients alone.
        if (keep !== "add") trainer.zeroGrad();
        const wanted = grads.wanted ?? { x: true, hidden: true, state: true };
        const inputs = (["x", "hidden", "state"] as const).filter((name) => wanted[name]);
        const read = await trainer.backward(grads, {
          read: keep === undefined ? ["params", ...inputs] : inputs,
          squaredNorms: keep !== undefined,
        });
        const none = new Float32Array(0);
        return {
          params: read.params ?? {},
          x: read.x ?? none,
          hidden: read.hidden ?? none,
          state: read.state ?? none,
          ...(read.squaredNorms === null ? {} : { squaredNorms: read.squaredNorms }),
        };
      })
    );
  }

  /**
   * Runs `work` on the trainer. Its weights live only on its device: once that device is lost,
   * this and every later training call fails with {@linkcode lostTrainedWeights}, which names
   * the loss and what to do (a failure is checked against the loss, which a device reports only
   * after its calls started failing).
   */
  async #onTrainer<T>(work: (trainer: WebGpuTrainer) => Promise<T>): Promise<T> {
    const trainer = await this.#trainerNow();
    const { context } = trainer.parameterBuffer();
    if (context.lostReason !== null) throw lostTrainedWeights(context.lostReason);
    try {
      return await work(trainer);
    } catch (error) {
      const loss = error instanceof DeviceLost
        ? error.message
        : error instanceof RangeError || this.#spec === null
        ? null
        : await lossOf(context);
      if (loss === null) throw error;
      forgetGpuContext(context, loss);
      throw lostTrainedWeights(context.lostReason ?? loss);
    }
  }

  /** The trainer, which exists once a training forward ran (device weights are bound after). */
  #trainerAtHand(): WebGpuTrainer {
    const trainer = this.#madeTrainer;
    if (trainer === null) {
      throw new Error(
        "this webgpu runner has no trainer yet (or was disposed): run a training forward first",
      );
    }
    const { lostReason } = trainer.parameterBuffer().context;
    if (lostReason !== null) throw lostTrainedWeights(lostReason);
    return trainer;
  }

  #trainerNow(): Promise<WebGpuTrainer> {
    const spec = this.#spec;
    if (spec === null) return Promise.reject(this.#disposedError());
    if (this.#trainer === null) {
      const made = WebGpuTrainer.create(spec);
      // A failed creation is not kept: the next training call tries again.
      made.then((trainer) => {
        if (this.#trainer === made) this.#madeTrainer = trainer;
      }, () => {
        if (this.#trainer === made) this.#trainer = null;
      });
      this.#trainer = made;
    }
    return this.#trainer;
  }

  #release(): void {
    const resident = this.#resident;
    this.#resident = null;
    if (resident !== null) releaseResident(resident);
  }

  #disposedError(): Error {
    return new Error("this webgpu runner was disposed during run; compile the cell again");
  }

  async #runExclusive(input: SequenceInput): Promise<SequenceOutput> {
    const cell = this.#cell;
    if (cell === null) throw this.#disposedError();
    return await this.#onWorkingDevice(async (context) => {
      const resident = await this.#ensureResident(context);
      if (this.#trainerAhead) {
        await repackOnDevice(resident, cell, this.#trainerAtHand().parameterBuffer());
        this.#trainerAhead = false;
        this.#cellBehind = true;
      }
      const call = await callBuffers(
        resident,
        cell,
        input.batch,
        input.seqLen,
        requestedExtras(input),
      );
      submitCall(resident, cell, call, input);
      return await readResults(resident.context, cell, call, input);
    });
  }

  /**
   * Runs `work` on the shared device. A device lost meanwhile (driver reset, `destroy()`) is
   * replaced and `work` retried once: losses surface as failing calls before `device.lost`
   * resolves, so failures are checked against it.
   */
  async #onWorkingDevice<T>(work: (context: GpuContext) => Promise<T>): Promise<T> {
    for (let attempt = 0;; attempt++) {
      const context = await acquireGpuContext();
      try {
        return await work(context);
      } catch (error) {
        if (this.#cell === null) throw this.#disposedError();
        // Our own RangeErrors are about sizes; anything else may be a symptom of a lost device.
        const loss = error instanceof DeviceLost
          ? error.message
          : error instanceof RangeError
          ? null
          : await lossOf(context);
        if (loss === null) throw error;
        forgetGpuContext(context, loss);
        this.#lossReason = loss;
        this.#release();
        if (attempt > 0) {
          throw new Error(
            `the WebGPU device was lost twice in a row (${loss}); the GPU driver seems to be ` +
              "failing: use the wasm or js backend",
          );
        }
      }
    }
  }

  /** The weights on `context`'s device, uploaded there unless they already are. */
  async #ensureResident(context: GpuContext): Promise<Resident<CallBuffers>> {
    if (this.#resident?.context === context) return this.#resident;
    this.#release();
    const cell = this.#cell;
    if (cell === null) throw this.#disposedError();
    if (this.#cellBehind) throw lostTrainedWeights(this.#lossReason);
    const resident = await makeResident<CallBuffers>(context, cell, this.#bindingLimit);
    // Disposed while waiting for the device: free what was just made.
    if (this.#cell === null) {
      releaseResident(resident);
      throw this.#disposedError();
    }
    this.#resident = resident;
    return resident;
  }
}
