/**
 * Training one cell on the WebGPU device: a forward that records what the backward needs,
 * backpropagation through time in fused kernels, and optimizer updates, with the weights, their
 * gradients and the optimizer state staying on the device. Only what the caller asks for is read
 * back: the forward's results (which the loss needs), and gradients or weights on request.
 *
 * The kernels are `kernels/train_*.wgsl`: `train_gemm` (input projections of all steps, weight and
 * input gradients as one GEMM each over all steps), `train_cell` (one dispatch per step, forward
 * and backward, each fusing the recurrent GEMM with the cell equations), `train_reduce` (bias
 * gradients, the gradient norm, scaling) and `train_optimizer`. This file orchestrates them over
 * `buffers.ts` (the buffers it owns), `ops.ts` (dispatch, submission, read-back) and `optimizer.ts`
 * (each kind's step); the contract (`src/contract/`) checked inputs and gradients before.
 *
 * @module
 */

import type {
  CellSpec,
  CellVariant,
  DeviceSnapshot,
  OptimizerUpdate,
  ResidentOptimizerState,
  SequenceInput,
  SequenceOutput,
} from "../../contract/mod.ts";
import { hardSigmoidSlope } from "../../contract/mod.ts";
import { describe } from "../../errors.ts";
import { VARIANTS } from "../../variants.ts";
import { type ShapeBuffers, TrainingBuffers } from "./buffers.ts";
import { acquireGpuContext, type GpuContext } from "./device.ts";
import { DeviceOptimizer } from "./optimizer.ts";
import { type Binding, type Region, type TrainDispatch, TrainOps } from "./ops.ts";
import {
  flattenParameters,
  type ParameterLayout,
  parameterLayout,
  splitParameters,
  swapLeadingAxes,
} from "./train_layout.ts";

/** dLoss/d the results of the last {@linkcode WebGpuTrainer.forward}. */
export interface TrainerOutputGradients {
  /** dLoss/d`output`, shape `(B, T, H)`. */
  readonly output: Float32Array | Float64Array;
  /** dLoss/d final `hidden`, shape `(B, H)`; omitted: zero. */
  readonly hidden?: Float32Array | Float64Array;
  /** dLoss/d final `state`, shape `(k, B, H)`; omitted: zero. */
  readonly state?: Float32Array | Float64Array;
}

/** What {@linkcode WebGpuTrainer.backward} can read back. */
export type GradientName = "params" | "x" | "hidden" | "state";

/** Options of {@linkcode WebGpuTrainer.backward}. */
export interface BackwardOptions {
  /** The gradients to read back (one mapping for all of them); default none. */
  readonly read?: readonly GradientName[];
  /** Also read back each parameter's `Σ g²` (after accumulating), in the same mapping. */
  readonly squaredNorms?: boolean;
}

/** The gradients {@linkcode WebGpuTrainer.backward} read back; `null` where not asked for. */
export interface TrainerGradients {
  /**
   * The accumulated parameter gradients (since the last {@linkcode WebGpuTrainer.zeroGrad}) by
   * PyTorch name: `i2h.weight (4kH, I)`, `i2h.bias`, `h2h.weight (4kH, H)`, `h2h.bias`, and for
   * attention `i2a.weight (kH, I)`, `i2a.bias`.
   */
  readonly params: Record<string, Float32Array> | null;
  /** dLoss/d`x` of this backward, shape `(B, T, I)`. */
  readonly x: Float32Array | null;
  /** dLoss/d the initial hidden state, shape `(B, H)`. */
  readonly hidden: Float32Array | null;
  /** dLoss/d the initial cell states, shape `(k, B, H)`. */
  readonly state: Float32Array | null;
  /** `Σ g²` of each accumulated parameter gradient, in layout order, when asked for. */
  readonly squaredNorms: Float32Array | null;
}

/** A trainer's flat parameter buffer where it lives, for kernels that read the weights there. */
export interface TrainerParameters {
  /** The device that holds it. */
  readonly context: GpuContext;
  /** The parameters, flat in layout order. */
  readonly buffer: GPUBuffer;
  /** Where each parameter lies in it. */
  readonly layout: ParameterLayout;
}

/** Rows and units one workgroup of `train_cell.wgsl` covers. */
const CELL_ROWS = 64, CELL_UNITS = 16;

/**
 * A cell being trained on the shared WebGPU device.
 *
 * One training step is `forward` (reads back the results the loss needs), `backward` (adds this
 * step's parameter gradients to the device's gradient buffer; reads back nothing unless asked),
 * optionally `clipGradNorm`, then `step` (updates the weights on the device) and `zeroGrad`. All
 * work is submitted in call order as the methods are called (each encodes and submits before it
 * returns or awaits), so calls need not be awaited one by one; only read-backs wait.
 *
 * Not handled yet: batches whose recorded activations exceed `maxStorageBufferBindingSize` (a
 * `RangeError` says so; train on smaller batches). A lost device takes the trainer's weights with
 * it: its runner's training calls then fail with `lostTrainedWeights` (`device.ts`).
 *
 * @example Two SGD steps of a one-unit LSTM on the sum of its outputs
 * ```ts ignore
 * import { WebGpuTrainer } from "./trainer.ts";
 * using trainer = await WebGpuTrainer.create(spec);
 * for (let step = 0; step < 2; step++) {
 *   trainer.zeroGrad();
 *   const { output } = await trainer.forward(input);
 *   await trainer.backward({ output: new Float32Array(output.length).fill(1) });
 *   trainer.step({ kind: "sgd", lr: 0.1, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 });
 * }
 * const weights = await trainer.readParameters();
 * ```
 */
export class WebGpuTrainer implements Disposable {
  readonly #ops: TrainOps;
  readonly #optimizer: DeviceOptimizer;
  readonly #buffers: TrainingBuffers;
  readonly #variant: CellVariant;
  readonly #inputSize: number;
  readonly #hiddenSize: number;
  readonly #layout: ParameterLayout;
  /** Whether the shape buffers hold a forward that `backward` has not used yet. */
  #recorded = false;
  #disposed = false;

  private constructor(
    ops: TrainOps,
    optimizer: DeviceOptimizer,
    spec: CellSpec,
    layout: ParameterLayout,
  ) {
    this.#ops = ops;
    this.#optimizer = optimizer;
    this.#variant = { ...spec.variant };
    this.#inputSize = spec.inputSize;
    this.#hiddenSize = spec.hiddenSize;
    this.#layout = layout;
    this.#buffers = new TrainingBuffers(
      ops.context.device,
      {
        inputSize: spec.inputSize,
        hiddenSize: spec.hiddenSize,
        k: spec.variant.k,
        attention: spec.variant.kind === "attention",
      },
      flattenParameters(layout, spec.params),
      layout.slots.length,
    );
  }

  /**
   * Uploads the weights of `spec` (which passed the contract's checks) to the shared device and
   * compiles the training pipelines of its variant. Gradients start at zero.
   *
   * @throws {Error} Without a WebGPU adapter.
   */
  static async create(spec: CellSpec): Promise<WebGpuTrainer> {
    const context = await acquireGpuContext();
    const layout = parameterLayout(spec.variant, spec.inputSize, spec.hiddenSize);
    const { kind, maxPooling, recurrentActivation } = spec.variant;
    const [ops, optimizer] = await Promise.all([
      TrainOps.create(context, {
        variant: VARIANTS[VARIANTS[kind].equations].code,
        maxPooling: kind === "attention" && maxPooling ? 1 : 0,
        gateSlope: hardSigmoidSlope(recurrentActivation),
      }),
      DeviceOptimizer.create(context),
    ]);
    return new WebGpuTrainer(ops, optimizer, spec, layout);
  }

  /**
   * Runs all steps of `input` (checked by the contract, not empty) with the current weights,
   * records the activations the backward needs (replacing any earlier recording), and reads back
   * the results.
   */
  async forward(input: SequenceInput): Promise<SequenceOutput> {
    this.#checkAlive();
    const { batch: B, seqLen: T } = input;
    const I = this.#inputSize, H = this.#hiddenSize, { k, kind } = this.#variant;
    const G = 4 * k * H;
    const shape = this.#buffers.shape(B, T);
    const { params } = this.#buffers;
    const ops = this.#ops;
    const { device } = ops.context;
    device.queue.writeBuffer(shape.x, 0, swapLeadingAxes(input.x, B, T, I));
    device.queue.writeBuffer(shape.hiddens, 0, Float32Array.from(input.hidden));
    device.queue.writeBuffer(shape.cells, 0, Float32Array.from(input.state));
    const slot = this.#layout.byName;
    const dispatches: TrainDispatch[] = [
      ops.gemm({
        m: T * B,
        n: G,
        inner: I,
        a: [shape.x, 0, I, 1],
        b: [params, slot["i2h.weight"].offset, 1, I],
        c: [shape.gates, 0, G],
        accumulate: false,
        bias: [slot["i2h.bias"].offset, slot["h2h.bias"].offset],
      }),
    ];
    if (kind === "attention") {
      dispatches.push(ops.gemm({
        m: T * B,
        n: k * H,
        inner: I,
        a: [shape.x, 0, I, 1],
        b: [params, slot["i2a.weight"].offset, 1, I],
        c: [shape.attention, 0, k * H],
        accumulate: false,
        bias: [slot["i2a.bias"].offset],
      }));
    }
    for (let t = 0; t < T; t++) {
      dispatches.push(this.#cellStep(ops.pipelines.forwardStep, B, T, t, false, [
        [1, params],
        [2, shape.attention],
        [3, shape.hiddens],
        [4, shape.cells],
        [5, shape.gates],
        [6, shape.choice],
      ]));
    }
    this.#recorded = true;
    const [hiddens, state] = await ops.submitAndRead(dispatches, [
      [shape.hiddens, B * H * 4, T * B * H * 4],
      [shape.cells, T * k * B * H * 4, k * B * H * 4],
    ]);
    return {
      output: swapLeadingAxes(hiddens, T, B, H),
      hidden: hiddens.slice((T - 1) * B * H),
      state,
    };
  }

  /**
   * Back-propagates `grads` (checked by the contract) through every step of the last forward
   * (once per forward): adds the parameter gradients to the device's gradient buffer, as PyTorch
   * accumulates `.grad`, and computes dLoss/d the input and the initial state. Reads back only
   * what `options.read` names.
   *
   * @throws {Error} Without a forward to go back through.
   */
  async backward(
    grads: TrainerOutputGradients,
    options: BackwardOptions = {},
  ): Promise<TrainerGradients> {
    this.#checkAlive();
    const shape = this.#buffers.currentShape;
    if (!this.#recorded || shape === null) {
      throw new Error(
        "backward() needs a forward() to go back through, and each forward() serves one " +
          "backward(): call forward() first",
      );
    }
    const read = new Set(options.read ?? []);
    for (const name of read) {
      if (!["params", "x", "hidden", "state"].includes(name)) {
        throw new TypeError(
          `options.read may name "params", "x", "hidden" and "state", got ${describe(name)}`,
        );
      }
    }
    const { batch: B, seqLen: T } = shape;
    const I = this.#inputSize, H = this.#hiddenSize, { k } = this.#variant;
    const { device } = this.#ops.context;
    device.queue.writeBuffer(shape.dOutput, 0, outputGradients(grads, B, T, H));
    const dState = grads.state ?? new Float32Array(k * B * H);
    device.queue.writeBuffer(shape.dCells, 0, Float32Array.from(dState));
    this.#recorded = false;
    const dispatches = [...this.#backThroughTime(shape), ...this.#parameterGradients(shape)];
    const { grads: gradients, norms } = this.#buffers;
    if (options.squaredNorms) {
      for (const [index, slot] of this.#layout.slots.entries()) {
        dispatches.push(this.#ops.sumSquares(gradients, norms, slot.offset, slot.length, index));
      }
    }
    const regions: Region[] = [];
    if (options.squaredNorms) regions.push([norms, 0, this.#layout.slots.length * 4]);
    if (read.has("params")) regions.push([gradients, 0, this.#layout.length * 4]);
    if (read.has("x")) regions.push([shape.dx, 0, T * B * I * 4]);
    if (read.has("hidden")) regions.push([shape.dHidden0, 0, B * H * 4]);
    if (read.has("state")) regions.push([shape.dCells, 0, k * B * H * 4]);
    const arrays = await this.#ops.submitAndRead(dispatches, regions);
    const squaredNorms = options.squaredNorms ? arrays.shift()! : null;
    return {
      squaredNorms,
      params: read.has("params") ? splitParameters(this.#layout, arrays.shift()!) : null,
      x: read.has("x") ? swapLeadingAxes(arrays.shift()!, T, B, I) : null,
      hidden: read.has("hidden") ? arrays.shift()! : null,
      state: read.has("state") ? arrays.shift()! : null,
    };
  }

  /** Sets every parameter gradient to zero (on the device). */
  zeroGrad(): void {
    this.#checkAlive();
    this.#ops.clear(this.#buffers.grads);
  }

  /**
   * `Σ g²` over every parameter gradient, summed on the device (one float read back): the share of
   * this cell in `clipGradNorm`'s total norm when other parameters live elsewhere.
   */
  async gradSquaredNorm(): Promise<number> {
    this.#checkAlive();
    const { grads, norms } = this.#buffers;
    const [total] = await this.#ops.submitAndRead(
      [this.#ops.sumSquares(grads, norms, 0, this.#layout.length, 0)],
      [[norms, 0, 4]],
    );
    return total[0];
  }

  /** Multiplies every parameter gradient by `factor` on the device (clipping by a known norm). */
  scaleGradients(factor: number): void {
    this.#checkAlive();
    if (typeof factor !== "number" || !Number.isFinite(factor)) {
      throw new RangeError(`factor must be a finite number, got ${describe(factor)}`);
    }
    this.#ops.submit([this.#ops.scale(this.#buffers.grads, 0, this.#layout.length, factor)]);
  }

  /**
   * Multiplies each parameter's gradient by its factor (layout order) on the device; factors of 1
   * cost nothing, and a NaN one (torch's clipping by a NaN norm) makes the gradient NaN.
   */
  scaleParameterGradients(factors: readonly number[]): void {
    this.#checkAlive();
    const dispatches = this.#layout.slots.flatMap((slot, index) => {
      const factor = factors[index];
      if (typeof factor !== "number" || factor === Infinity || factor === -Infinity) {
        throw new RangeError(`factors[${index}] must be finite (or NaN), got ${describe(factor)}`);
      }
      return factor === 1
        ? []
        : [this.#ops.scale(this.#buffers.grads, slot.offset, slot.length, factor)];
    });
    if (dispatches.length > 0) this.#ops.submit(dispatches);
  }

  /**
   * `torch.nn.utils.clip_grad_norm_` over this cell's parameters alone: scales the gradients by
   * `min(1, maxNorm / (norm + 1e-6))` and resolves to the norm before clipping.
   */
  async clipGradNorm(maxNorm: number): Promise<number> {
    if (typeof maxNorm !== "number" || !(maxNorm >= 0)) {
      throw new RangeError(`maxNorm must be a number ≥ 0, got ${describe(maxNorm)}`);
    }
    const norm = Math.sqrt(await this.gradSquaredNorm());
    this.scaleGradients(Math.min(1, maxNorm / (norm + 1e-6)));
    return norm;
  }

  /**
   * One optimizer step over every parameter, on the device, with PyTorch's update rule, from the
   * state the steps before left or {@linkcode WebGpuTrainer.writeState} wrote (zero at first).
   *
   * @throws {TypeError} For a kind that is not in `src/optimizer_kinds.ts` (named).
   */
  step(update: OptimizerUpdate): void {
    this.#checkAlive();
    const { params, grads } = this.#buffers;
    const buffers = { params, grads, state: this.#buffers.state() };
    this.#optimizer.step(this.#ops, update, buffers, this.#layout.length);
  }

  /**
   * Replaces the optimizer state: the step count and the three state vectors (SGD's momentum
   * buffer or Adam's moments, flat in layout order).
   *
   * @throws {RangeError} If a vector has the wrong length.
   */
  writeState(state: ResidentOptimizerState): void {
    this.#checkAlive();
    this.#optimizer.writeState(this.#ops, state, this.#buffers.state(), this.#layout.length);
  }

  /** Replaces the accumulated gradients (flat, layout order). */
  writeGradients(flat: Float32Array): void {
    this.#checkAlive();
    if (flat.length !== this.#layout.length) {
      throw new RangeError(`flat must have ${this.#layout.length} elements, got ${flat.length}`);
    }
    this.#ops.context.device.queue.writeBuffer(this.#buffers.grads, 0, Float32Array.from(flat));
  }

  /** Weights, gradients and optimizer state, flat in layout order, in one read-back. */
  async readAll(): Promise<DeviceSnapshot> {
    this.#checkAlive();
    const bytes = this.#layout.length * 4;
    const { params, grads } = this.#buffers;
    const [parameters, gradients, first, second, max] = await this.#ops.submitAndRead(
      [],
      [params, grads, ...this.#buffers.state()].map((buffer) => [buffer, 0, bytes]),
    );
    return {
      parameters,
      gradients,
      state: { steps: this.#optimizer.steps, slots: [first, second, max] },
    };
  }

  /** The current weights, by PyTorch name (one read-back). */
  async readParameters(): Promise<Record<string, Float32Array>> {
    this.#checkAlive();
    return await this.#readFlat(this.#buffers.params);
  }

  /** The parameter buffer itself (no read-back): what the optimizer steps leave is read there. */
  parameterBuffer(): TrainerParameters {
    this.#checkAlive();
    return { context: this.#ops.context, buffer: this.#buffers.params, layout: this.#layout };
  }

  /** The accumulated gradients, by PyTorch name (one read-back). */
  async readGradients(): Promise<Record<string, Float32Array>> {
    this.#checkAlive();
    return await this.#readFlat(this.#buffers.grads);
  }

  /** Frees every device buffer of the trainer. Idempotent; any later call throws. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#buffers.dispose();
    this.#ops.dispose();
  }

  /** Same as {@linkcode WebGpuTrainer.dispose}. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkAlive(): void {
    if (this.#disposed) {
      throw new Error("this WebGpuTrainer was disposed; create a new one to keep training");
    }
  }

  async #readFlat(buffer: GPUBuffer): Promise<Record<string, Float32Array>> {
    const [flat] = await this.#ops.submitAndRead([], [[buffer, 0, this.#layout.length * 4]]);
    return splitParameters(this.#layout, flat);
  }

  /** The dispatch of one cell step `t` (forward or backward by `pipeline`) over `bindings`. */
  #cellStep(
    pipeline: GPUComputePipeline,
    B: number,
    T: number,
    t: number,
    hasNext: boolean,
    bindings: readonly Binding[],
  ): TrainDispatch {
    const H = this.#hiddenSize, recurrent = this.#layout.byName["h2h.weight"].offset;
    return {
      pipeline,
      record: [B, T, this.#variant.k, H, t, hasNext ? 1 : 0, recurrent],
      bindings,
      groups: [Math.ceil(B / CELL_ROWS), Math.ceil(H / CELL_UNITS)],
    };
  }

  /** The backward cell steps, last to first: they leave dLoss/d the gates of every step. */
  #backThroughTime(shape: ShapeBuffers): TrainDispatch[] {
    const { batch: B, seqLen: T } = shape;
    const dispatches: TrainDispatch[] = [];
    for (let t = T - 1; t >= 0; t--) {
      dispatches.push(this.#cellStep(this.#ops.pipelines.backwardStep, B, T, t, t < T - 1, [
        [1, this.#buffers.params],
        [2, shape.attention],
        [4, shape.cells],
        [5, shape.gates],
        [6, shape.choice],
        [7, shape.dOutput],
        [8, shape.dAttention],
        [9, shape.dCells],
      ]));
    }
    return dispatches;
  }

  /**
   * From dLoss/d the gates of all steps: the weight and bias gradients (added to the gradient
   * buffer), dLoss/d x and dLoss/d the initial hidden state, one GEMM (or sum) each over all
   * `T·B` rows.
   */
  #parameterGradients(shape: ShapeBuffers): TrainDispatch[] {
    const { batch: B, seqLen: T } = shape;
    const I = this.#inputSize, H = this.#hiddenSize, { k, kind } = this.#variant;
    const G = 4 * k * H;
    const ops = this.#ops;
    const { params, grads } = this.#buffers;
    const slot = this.#layout.byName;
    const dGatesTransposed = [shape.gates, 0, 1, G] as const;
    const dispatches = [
      ops.gemm({
        m: B,
        n: H,
        inner: G,
        a: [shape.gates, 0, G, 1],
        b: [params, slot["h2h.weight"].offset, H, 1],
        c: [shape.dHidden0, 0, H],
        accumulate: false,
      }),
      ops.gemm({
        m: G,
        n: I,
        inner: T * B,
        a: dGatesTransposed,
        b: [shape.x, 0, I, 1],
        c: [grads, slot["i2h.weight"].offset, I],
        accumulate: true,
      }),
      ops.gemm({
        m: G,
        n: H,
        inner: T * B,
        a: dGatesTransposed,
        b: [shape.hiddens, 0, H, 1],
        c: [grads, slot["h2h.weight"].offset, H],
        accumulate: true,
      }),
      ops.columnSums(
        shape.gates,
        grads,
        T * B,
        G,
        slot["i2h.bias"].offset,
        slot["h2h.bias"].offset,
      ),
      ops.gemm({
        m: T * B,
        n: I,
        inner: G,
        a: [shape.gates, 0, G, 1],
        b: [params, slot["i2h.weight"].offset, I, 1],
        c: [shape.dx, 0, I],
        accumulate: false,
      }),
    ];
    if (kind === "attention") {
      dispatches.push(
        ops.gemm({
          m: k * H,
          n: I,
          inner: T * B,
          a: [shape.dAttention, 0, 1, k * H],
          b: [shape.x, 0, I, 1],
          c: [grads, slot["i2a.weight"].offset, I],
          accumulate: true,
        }),
        ops.columnSums(
          shape.dAttention,
          grads,
          T * B,
          k * H,
          slot["i2a.bias"].offset,
          slot["i2a.bias"].offset,
        ),
        ops.gemm({
          m: T * B,
          n: I,
          inner: k * H,
          a: [shape.dAttention, 0, k * H, 1],
          b: [params, slot["i2a.weight"].offset, I, 1],
          c: [shape.dx, 0, I],
          accumulate: true,
        }),
      );
    }
    return dispatches;
  }
}

/**
 * dLoss/d output as float32 `(B, T, H)`, with dLoss/d the final hidden state (the last step's
 * output) added to the last step: the backward kernel then needs no buffer for it.
 */
function outputGradients(
  grads: TrainerOutputGradients,
  B: number,
  T: number,
  H: number,
): Float32Array<ArrayBuffer> {
  const output = Float32Array.from(grads.output);
  if (grads.hidden === undefined) return output;
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < H; u++) {
      const at = (b * T + T - 1) * H + u;
      output[at] = grads.output[at] + grads.hidden[b * H + u];
    }
  }
  return output;
}
