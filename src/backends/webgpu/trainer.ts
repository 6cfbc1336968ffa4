/**
 * Training one cell on the WebGPU device: a forward that records what the backward needs,
 * backpropagation through time in fused kernels, and optimizer updates, with the weights, their
 * gradients and the optimizer state staying on the device. Only what the caller asks for is read
 * back: the forward's results (which the loss needs), and gradients or weights on request.
 *
 * The kernels are `kernels/train_*.wgsl`: `train_gemm` (input projections of all steps, weight and
 * input gradients as one GEMM each over all steps), `train_cell` (one dispatch per step, forward
 * and backward, each fusing the recurrent GEMM with the cell equations), `train_reduce` (bias
 * gradients, the gradient norm, scaling) and `train_optimizer`.
 *
 * @module
 */

import { checkInput, sizesOf } from "../../contract/mod.ts";
import type {
  CellParameters,
  CellSpec,
  CellVariant,
  DeviceSnapshot,
  OptimizerUpdate,
  ResidentOptimizerState,
  SequenceInput,
} from "../../contract/mod.ts";
import { checkSpec, hardSigmoidSlope, type SequenceOutput } from "../../contract/mod.ts";
import { describe } from "../../errors.ts";
import { createBuffer } from "./buffers.ts";
import { acquireGpuContext, type GpuContext, pipeline } from "./device.ts";
import { mapForReading } from "./readback.ts";
import {
  encodeDispatches,
  f32Bits,
  type RecordBuffer,
  type TrainDispatch,
} from "./train_encode.ts";
import {
  flattenParameters,
  type ParameterLayout,
  parameterLayout,
  splitParameters,
  swapLeadingAxes,
} from "./train_layout.ts";
import { type OptimizerConfig, optimizerRecord } from "./train_optimizer.ts";
import { VARIANTS } from "../../variants.ts";

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

/** Offsets of `train_gemm.wgsl`'s record meaning "no bias". */
const NO_BIAS = 0xffffffff;

/** Rows and units one workgroup of `train_cell.wgsl` covers; `train_gemm.wgsl`'s tile. */
const CELL_ROWS = 64, CELL_UNITS = 16, GEMM_TILE = 64;

/** Invocations per workgroup of the 1-D kernels (reduce, optimizer). */
const LINEAR_GROUP = 64;

/** The pipelines of one trainer. */
interface Pipelines {
  readonly forwardStep: GPUComputePipeline;
  readonly backwardStep: GPUComputePipeline;
  readonly gemm: GPUComputePipeline;
  readonly columnSums: GPUComputePipeline;
  readonly sumSquares: GPUComputePipeline;
  readonly scale: GPUComputePipeline;
  readonly sgd: GPUComputePipeline;
  readonly adam: GPUComputePipeline;
}

/** The buffers of one call shape `(batch, seqLen)`. */
interface ShapeBuffers {
  readonly batch: number;
  readonly seqLen: number;
  /** `(T, B, I)`. */
  readonly x: GPUBuffer;
  /** `(T, B, 4kH)`: pre-activations; the backward replaces them with their gradients. */
  readonly gates: GPUBuffer;
  /** `(T, B, kH)`: attention pre-activations, or a placeholder. */
  readonly attention: GPUBuffer;
  /** `(T + 1, B, H)`. */
  readonly hiddens: GPUBuffer;
  /** `(T + 1, k, B, H)`. */
  readonly cells: GPUBuffer;
  /** `(T, B, H)` lane indices. */
  readonly choice: GPUBuffer;
  /** `(B, T, H)`, the last step's plus dLoss/d final hidden state. */
  readonly dOutput: GPUBuffer;
  /** `(T, B, kH)`, or a placeholder. */
  readonly dAttention: GPUBuffer;
  /** `(k, B, H)`: carried from step to step; after the backward, dLoss/d initial cells. */
  readonly dCells: GPUBuffer;
  /** `(T, B, I)`. */
  readonly dx: GPUBuffer;
  /** `(B, H)`: dLoss/d initial hidden state. */
  readonly dHidden0: GPUBuffer;
  /** All of the above, to free them. */
  readonly all: readonly GPUBuffer[];
}

/** A region of a buffer to read back. */
type Region = readonly [buffer: GPUBuffer, offsetBytes: number, bytes: number];

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
 * `RangeError` says so; train on smaller batches), and device loss (the trainer then fails; its
 * weights are gone unless read back with {@linkcode WebGpuTrainer.readParameters}).
 *
 * @example Two SGD steps of a one-unit LSTM on the sum of its outputs
 * ```ts ignore
 * import { WebGpuTrainer } from "./trainer.ts";
 * using trainer = await WebGpuTrainer.create(spec);
 * for (let step = 0; step < 2; step++) {
 *   trainer.zeroGrad();
 *   const { output } = await trainer.forward(input);
 *   await trainer.backward({ output: new Float32Array(output.length).fill(1) });
 *   trainer.step({ kind: "sgd", lr: 0.1 });
 * }
 * const weights = await trainer.readParameters();
 * ```
 */
export class WebGpuTrainer implements Disposable {
  readonly #context: GpuContext;
  readonly #variant: CellVariant;
  readonly #inputSize: number;
  readonly #hiddenSize: number;
  readonly #layout: ParameterLayout;
  readonly #pipelines: Pipelines;
  readonly #params: GPUBuffer;
  readonly #grads: GPUBuffer;
  readonly #total: GPUBuffer;
  readonly #records: RecordBuffer = { buffer: null };
  #moments: GPUBuffer[] | null = null;
  #optimizerKind: OptimizerConfig["kind"] | null = null;
  #optimizerSteps = 0;
  #shape: ShapeBuffers | null = null;
  /** Whether the shape buffers hold a forward that `backward` has not used yet. */
  #recorded = false;
  #disposed = false;

  private constructor(
    context: GpuContext,
    spec: CellSpec,
    layout: ParameterLayout,
    pipelines: Pipelines,
  ) {
    const { device } = context;
    const { STORAGE, COPY_DST, COPY_SRC } = GPUBufferUsage;
    this.#context = context;
    this.#variant = { ...spec.variant };
    this.#inputSize = spec.inputSize;
    this.#hiddenSize = spec.hiddenSize;
    this.#layout = layout;
    this.#pipelines = pipelines;
    this.#params = createBuffer(
      device,
      "parameters",
      layout.length * 4,
      STORAGE | COPY_DST | COPY_SRC,
    );
    device.queue.writeBuffer(this.#params, 0, flattenParameters(layout, spec.params));
    this.#grads = createBuffer(
      device,
      "gradients",
      layout.length * 4,
      STORAGE | COPY_DST | COPY_SRC,
    );
    // One squared norm per parameter (each parameter's share of clipGradNorm's total).
    this.#total = createBuffer(
      device,
      "gradient norms",
      layout.slots.length * 4,
      STORAGE | COPY_SRC,
    );
  }

  /**
   * Uploads the weights of `spec` (checked as the backends' contract says) to the shared device
   * and compiles the training pipelines of its variant. Gradients start at zero.
   *
   * @throws {Error} Without a WebGPU adapter.
   * @throws {TypeError | RangeError} For a spec the contract rejects.
   */
  static async create(spec: CellSpec): Promise<WebGpuTrainer> {
    checkSpec(spec);
    const context = await acquireGpuContext();
    const layout = parameterLayout(spec.variant, spec.inputSize, spec.hiddenSize);
    const { kind, maxPooling, recurrentActivation } = spec.variant;
    const cell = {
      variant: VARIANTS[VARIANTS[kind].equations].code,
      maxPooling: kind === "attention" && maxPooling ? 1 : 0,
      gateSlope: hardSigmoidSlope(recurrentActivation),
    };
    const [forwardStep, backwardStep, gemm, columnSums, sumSquares, scale, sgd, adam] =
      await Promise
        .all([
          pipeline(context, "trainCell", "forwardStep", cell),
          pipeline(context, "trainCell", "backwardStep", cell),
          pipeline(context, "trainGemm", "multiply", {}),
          pipeline(context, "trainReduce", "columnSums", {}),
          pipeline(context, "trainReduce", "sumSquares", {}),
          pipeline(context, "trainReduce", "scale", {}),
          pipeline(context, "trainOptimizer", "sgd", {}),
          pipeline(context, "trainOptimizer", "adam", {}),
        ]);
    const pipelines = { forwardStep, backwardStep, gemm, columnSums, sumSquares, scale, sgd, adam };
    return new WebGpuTrainer(context, spec, layout, pipelines);
  }

  /**
   * Runs all steps of `input` with the current weights, records the activations the backward
   * needs (replacing any earlier recording), and reads back the results.
   *
   * @throws {TypeError | RangeError} For an input the contract rejects, or an empty one.
   */
  async forward(input: SequenceInput): Promise<SequenceOutput> {
    this.#checkAlive();
    checkInput(this.#specSizes(), input);
    if (input.batch === 0 || input.seqLen === 0) {
      throw new RangeError(
        `training needs at least one sequence and one step, got batch ${input.batch} and ` +
          `seqLen ${input.seqLen}`,
      );
    }
    const { batch: B, seqLen: T } = input;
    const I = this.#inputSize, H = this.#hiddenSize, { k, kind } = this.#variant;
    const G = 4 * k * H;
    const shape = this.#shapeBuffers(B, T);
    const { device } = this.#context;
    device.queue.writeBuffer(shape.x, 0, swapLeadingAxes(input.x, B, T, I));
    device.queue.writeBuffer(shape.hiddens, 0, Float32Array.from(input.hidden));
    device.queue.writeBuffer(shape.cells, 0, Float32Array.from(input.state));
    const slot = this.#layout.byName;
    const dispatches: TrainDispatch[] = [
      this.#gemm({
        m: T * B,
        n: G,
        inner: I,
        a: [shape.x, 0, I, 1],
        b: [this.#params, slot["i2h.weight"].offset, 1, I],
        c: [shape.gates, 0, G],
        accumulate: false,
        bias: [slot["i2h.bias"].offset, slot["h2h.bias"].offset],
      }),
    ];
    if (kind === "attention") {
      dispatches.push(this.#gemm({
        m: T * B,
        n: k * H,
        inner: I,
        a: [shape.x, 0, I, 1],
        b: [this.#params, slot["i2a.weight"].offset, 1, I],
        c: [shape.attention, 0, k * H],
        accumulate: false,
        bias: [slot["i2a.bias"].offset, NO_BIAS],
      }));
    }
    for (let t = 0; t < T; t++) {
      dispatches.push({
        pipeline: this.#pipelines.forwardStep,
        record: this.#stepRecord(B, T, t, false),
        bindings: [
          [1, this.#params],
          [2, shape.attention],
          [3, shape.hiddens],
          [4, shape.cells],
          [5, shape.gates],
          [6, shape.choice],
        ],
        groups: [Math.ceil(B / CELL_ROWS), Math.ceil(H / CELL_UNITS)],
      });
    }
    this.#recorded = true;
    const results = this.#submitAndRead(dispatches, [
      [shape.hiddens, B * H * 4, T * B * H * 4],
      [shape.cells, T * k * B * H * 4, k * B * H * 4],
    ]);
    const [hiddens, state] = await results;
    return {
      output: swapLeadingAxes(hiddens, T, B, H),
      hidden: hiddens.slice((T - 1) * B * H),
      state,
    };
  }

  /**
   * Back-propagates `grads` through every step of the last forward (once per forward): adds the
   * parameter gradients to the device's gradient buffer, as PyTorch accumulates `.grad`, and
   * computes dLoss/d the input and the initial state. Reads back only what `options.read` names.
   *
   * @throws {Error} Without a forward to go back through.
   * @throws {RangeError} If a gradient has the wrong length (named).
   */
  async backward(
    grads: TrainerOutputGradients,
    options: BackwardOptions = {},
  ): Promise<TrainerGradients> {
    this.#checkAlive();
    const shape = this.#shape;
    if (!this.#recorded || shape === null) {
      throw new Error(
        "backward() needs a forward() to go back through, and each forward() serves one " +
          "backward(): call forward() first",
      );
    }
    const { batch: B, seqLen: T } = shape;
    const I = this.#inputSize, H = this.#hiddenSize, { k, kind } = this.#variant;
    const G = 4 * k * H;
    const { device } = this.#context;
    device.queue.writeBuffer(shape.dOutput, 0, outputGradients(grads, B, T, H));
    device.queue.writeBuffer(shape.dCells, 0, checked("grads.state", grads.state, k * B * H));
    this.#recorded = false;
    const slot = this.#layout.byName;
    const dispatches: TrainDispatch[] = [];
    for (let t = T - 1; t >= 0; t--) {
      dispatches.push({
        pipeline: this.#pipelines.backwardStep,
        record: this.#stepRecord(B, T, t, t < T - 1),
        bindings: [
          [1, this.#params],
          [2, shape.attention],
          [4, shape.cells],
          [5, shape.gates],
          [6, shape.choice],
          [7, shape.dOutput],
          [8, shape.dAttention],
          [9, shape.dCells],
        ],
        groups: [Math.ceil(B / CELL_ROWS), Math.ceil(H / CELL_UNITS)],
      });
    }
    // Everything below reads dgates of all steps: one GEMM (or sum) each over all T·B rows.
    const dGatesTransposed = [shape.gates, 0, 1, G] as const;
    dispatches.push(
      this.#gemm({
        m: B,
        n: H,
        inner: G,
        a: [shape.gates, 0, G, 1],
        b: [this.#params, slot["h2h.weight"].offset, H, 1],
        c: [shape.dHidden0, 0, H],
        accumulate: false,
      }),
      this.#gemm({
        m: G,
        n: I,
        inner: T * B,
        a: dGatesTransposed,
        b: [shape.x, 0, I, 1],
        c: [this.#grads, slot["i2h.weight"].offset, I],
        accumulate: true,
      }),
      this.#gemm({
        m: G,
        n: H,
        inner: T * B,
        a: dGatesTransposed,
        b: [shape.hiddens, 0, H, 1],
        c: [this.#grads, slot["h2h.weight"].offset, H],
        accumulate: true,
      }),
      this.#columnSums(shape.gates, T * B, G, slot["i2h.bias"].offset, slot["h2h.bias"].offset),
      this.#gemm({
        m: T * B,
        n: I,
        inner: G,
        a: [shape.gates, 0, G, 1],
        b: [this.#params, slot["i2h.weight"].offset, I, 1],
        c: [shape.dx, 0, I],
        accumulate: false,
      }),
    );
    if (kind === "attention") {
      dispatches.push(
        this.#gemm({
          m: k * H,
          n: I,
          inner: T * B,
          a: [shape.dAttention, 0, 1, k * H],
          b: [shape.x, 0, I, 1],
          c: [this.#grads, slot["i2a.weight"].offset, I],
          accumulate: true,
        }),
        this.#columnSums(
          shape.dAttention,
          T * B,
          k * H,
          slot["i2a.bias"].offset,
          slot["i2a.bias"].offset,
        ),
        this.#gemm({
          m: T * B,
          n: I,
          inner: k * H,
          a: [shape.dAttention, 0, k * H, 1],
          b: [this.#params, slot["i2a.weight"].offset, I, 1],
          c: [shape.dx, 0, I],
          accumulate: true,
        }),
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
    if (options.squaredNorms) {
      for (const [index, slot] of this.#layout.slots.entries()) {
        dispatches.push(this.#sumSquares(slot.offset, slot.length, index));
      }
    }
    const regions: Region[] = [];
    if (options.squaredNorms) regions.push([this.#total, 0, this.#layout.slots.length * 4]);
    if (read.has("params")) regions.push([this.#grads, 0, this.#layout.length * 4]);
    if (read.has("x")) regions.push([shape.dx, 0, T * B * I * 4]);
    if (read.has("hidden")) regions.push([shape.dHidden0, 0, B * H * 4]);
    if (read.has("state")) regions.push([shape.dCells, 0, k * B * H * 4]);
    const arrays = await this.#submitAndRead(dispatches, regions);
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
    const encoder = this.#context.device.createCommandEncoder();
    encoder.clearBuffer(this.#grads);
    this.#context.device.queue.submit([encoder.finish()]);
  }

  /**
   * `Σ g²` over every parameter gradient, summed on the device (one float read back): the share of
   * this cell in `clipGradNorm`'s total norm when other parameters live elsewhere.
   */
  async gradSquaredNorm(): Promise<number> {
    this.#checkAlive();
    const [total] = await this.#submitAndRead(
      [this.#sumSquares(0, this.#layout.length, 0)],
      [[this.#total, 0, 4]],
    );
    return total[0];
  }

  /** Multiplies every parameter gradient by `factor` on the device (clipping by a known norm). */
  scaleGradients(factor: number): void {
    this.#checkAlive();
    if (typeof factor !== "number" || !Number.isFinite(factor)) {
      throw new RangeError(`factor must be a finite number, got ${describe(factor)}`);
    }
    this.#submit([this.#scale(0, this.#layout.length, factor)]);
  }

  /**
   * Multiplies each parameter's gradient by its factor (layout order) on the device; factors of 1
   * cost nothing.
   */
  scaleParameterGradients(factors: readonly number[]): void {
    this.#checkAlive();
    const dispatches = this.#layout.slots.flatMap((slot, index) => {
      const factor = factors[index];
      if (typeof factor !== "number" || !Number.isFinite(factor)) {
        throw new RangeError(`factors[${index}] must be a finite number, got ${describe(factor)}`);
      }
      return factor === 1 ? [] : [this.#scale(slot.offset, slot.length, factor)];
    });
    if (dispatches.length > 0) this.#submit(dispatches);
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
   * One optimizer step over every parameter, on the device, with PyTorch's update rule. The
   * optimizer state (momentum buffers, moments, step count) belongs to the trainer; switching to
   * another `kind` starts it afresh.
   *
   * @throws {TypeError | RangeError} For an unknown kind or an option out of range (named).
   */
  step(config: OptimizerConfig): void {
    this.#checkAlive();
    const continues = config?.kind === this.#optimizerKind;
    const record = optimizerRecord(
      config,
      continues ? this.#optimizerSteps + 1 : 1,
      this.#layout.length,
    );
    if (!continues) this.#resetOptimizer();
    this.#optimizerKind = config.kind;
    this.#encodeStep(config.kind === "sgd", record);
  }

  /**
   * One optimizer step from the state the optimizer wrote last ({@linkcode WebGpuTrainer.writeState}),
   * or from none: a resident layer's step, whose optimizer owns the state.
   *
   * @throws {TypeError | RangeError} For an option out of range (named).
   */
  applyUpdate(update: OptimizerUpdate): void {
    this.#checkAlive();
    const config: OptimizerConfig = update.kind === "sgd" ? update : {
      kind: update.decoupled ? "adamw" : "adam",
      lr: update.lr,
      betas: [update.beta1, update.beta2],
      eps: update.eps,
      weightDecay: update.weightDecay,
      amsgrad: update.amsgrad,
    };
    const record = optimizerRecord(config, this.#optimizerSteps + 1, this.#layout.length);
    this.#optimizerKind = config.kind;
    this.#encodeStep(config.kind === "sgd", record);
  }

  /**
   * Replaces the optimizer state: the step count and the three state vectors (SGD's momentum
   * buffer or Adam's moments, flat in layout order).
   *
   * @throws {RangeError} If a vector has the wrong length.
   */
  writeState(state: ResidentOptimizerState): void {
    this.#checkAlive();
    const { length } = this.#layout;
    state.slots.forEach((slot, index) => {
      if (slot.length !== length) {
        throw new RangeError(
          `state.slots[${index}] must have ${length} elements, got ${slot.length}`,
        );
      }
    });
    const moments = this.#momentBuffers();
    for (const [index, slot] of state.slots.entries()) {
      this.#context.device.queue.writeBuffer(moments[index], 0, Float32Array.from(slot));
    }
    this.#optimizerSteps = state.steps;
  }

  /** Replaces the accumulated gradients (flat, layout order). */
  writeGradients(flat: Float32Array): void {
    this.#checkAlive();
    if (flat.length !== this.#layout.length) {
      throw new RangeError(`flat must have ${this.#layout.length} elements, got ${flat.length}`);
    }
    this.#context.device.queue.writeBuffer(this.#grads, 0, Float32Array.from(flat));
  }

  /** Weights, gradients and optimizer state, flat in layout order, in one read-back. */
  async readAll(): Promise<DeviceSnapshot> {
    this.#checkAlive();
    const bytes = this.#layout.length * 4;
    const [parameters, gradients, first, second, max] = await this.#submitAndRead(
      [],
      [this.#params, this.#grads, ...this.#momentBuffers()].map((buffer) => [buffer, 0, bytes]),
    );
    return {
      parameters,
      gradients,
      state: { steps: this.#optimizerSteps, slots: [first, second, max] },
    };
  }

  /** Encodes one optimizer step with `record` and counts it. */
  #encodeStep(sgd: boolean, record: number[]): void {
    this.#optimizerSteps++;
    const [first, second, max] = this.#momentBuffers();
    // SGD uses the first moment buffer alone (as its momentum buffer).
    const bindings: TrainDispatch["bindings"] = sgd
      ? [[1, this.#params], [2, this.#grads], [3, first]]
      : [[1, this.#params], [2, this.#grads], [3, first], [4, second], [5, max]];
    this.#submit([
      this.#linear(sgd ? this.#pipelines.sgd : this.#pipelines.adam, record, bindings),
    ]);
  }

  /** The optimizer's state buffers, made (zero) on first use. */
  #momentBuffers(): GPUBuffer[] {
    const bytes = this.#layout.length * 4;
    const { STORAGE, COPY_DST, COPY_SRC } = GPUBufferUsage;
    return this.#moments ??= ["first moment", "second moment", "max second moment"].map((label) =>
      createBuffer(this.#context.device, label, bytes, STORAGE | COPY_DST | COPY_SRC)
    );
  }

  /** The current weights, by PyTorch name (one read-back). */
  async readParameters(): Promise<Record<string, Float32Array>> {
    this.#checkAlive();
    const [flat] = await this.#submitAndRead([], [[this.#params, 0, this.#layout.length * 4]]);
    return splitParameters(this.#layout, flat);
  }

  /** The parameter buffer itself (no read-back): what the optimizer steps leave is read there. */
  parameterBuffer(): TrainerParameters {
    this.#checkAlive();
    return { context: this.#context, buffer: this.#params, layout: this.#layout };
  }

  /** The accumulated gradients, by PyTorch name (one read-back). */
  async readGradients(): Promise<Record<string, Float32Array>> {
    this.#checkAlive();
    const [flat] = await this.#submitAndRead([], [[this.#grads, 0, this.#layout.length * 4]]);
    return splitParameters(this.#layout, flat);
  }

  /**
   * Replaces the weights (as a model's `loadStateDict` would); gradients and optimizer state stay.
   *
   * @throws {RangeError} If a parameter has the wrong length (named).
   */
  writeParameters(params: CellParameters): void {
    this.#checkAlive();
    checkSpec({ ...this.#specSizes(), params });
    this.#context.device.queue.writeBuffer(
      this.#params,
      0,
      flattenParameters(this.#layout, params),
    );
  }

  /** Frees every device buffer of the trainer. Idempotent; any later call throws. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const buffer of [this.#params, this.#grads, this.#total]) {
      buffer.destroy();
    }
    for (const buffer of this.#moments ?? []) buffer.destroy();
    this.#records.buffer?.destroy();
    for (const buffer of this.#shape?.all ?? []) buffer.destroy();
    this.#moments = null;
    this.#records.buffer = null;
    this.#shape = null;
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

  #resetOptimizer(): void {
    for (const buffer of this.#moments ?? []) buffer.destroy();
    this.#moments = null;
    this.#optimizerKind = null;
    this.#optimizerSteps = 0;
  }

  /** The spec's sizes with empty weights: what `checkInput` needs. */
  #specSizes(): CellSpec {
    return sizesOf({
      variant: this.#variant,
      inputSize: this.#inputSize,
      hiddenSize: this.#hiddenSize,
    });
  }

  #stepRecord(B: number, T: number, t: number, hasNext: boolean): number[] {
    const recurrent = this.#layout.byName["h2h.weight"].offset;
    return [B, T, this.#variant.k, this.#hiddenSize, t, hasNext ? 1 : 0, recurrent];
  }

  /**
   * A GEMM dispatch: `a` and `b` are `[buffer, offset, row or inner stride, inner or column
   * stride]` views, `c` is `[buffer, offset, row stride]` (see `train_gemm.wgsl`).
   */
  #gemm(g: {
    m: number;
    n: number;
    inner: number;
    a: readonly [GPUBuffer, number, number, number];
    b: readonly [GPUBuffer, number, number, number];
    c: readonly [GPUBuffer, number, number];
    accumulate: boolean;
    bias?: readonly [number, number];
  }): TrainDispatch {
    const [bias, extraBias] = g.bias ?? [NO_BIAS, NO_BIAS];
    return {
      pipeline: this.#pipelines.gemm,
      record: [
        g.m,
        g.n,
        g.inner,
        ...g.a.slice(1) as number[],
        ...g.b.slice(1) as number[],
        ...g.c.slice(1) as number[],
        g.accumulate ? 1 : 0,
        bias,
        extraBias,
      ],
      bindings: [[1, g.a[0]], [2, g.b[0]], [3, g.c[0]]],
      groups: [Math.ceil(g.n / GEMM_TILE), Math.ceil(g.m / GEMM_TILE)],
    };
  }

  /** `total[index] = Σ g²` over `count` gradients from `offset`. */
  #sumSquares(offset: number, count: number, index: number): TrainDispatch {
    return {
      pipeline: this.#pipelines.sumSquares,
      record: [0, 0, offset, index, count],
      bindings: [[2, this.#grads], [3, this.#total]],
      groups: [1, 1],
    };
  }

  /** Multiplies `count` gradients from `offset` by `factor`. */
  #scale(offset: number, count: number, factor: number): TrainDispatch {
    return this.#linear(
      this.#pipelines.scale,
      [0, 0, offset, 0, count, f32Bits(factor)],
      [[2, this.#grads]],
      count,
    );
  }

  #columnSums(
    input: GPUBuffer,
    rows: number,
    columns: number,
    offset: number,
    extraOffset: number,
  ): TrainDispatch {
    return this.#linear(this.#pipelines.columnSums, [rows, columns, offset, extraOffset], [
      [1, input],
      [2, this.#grads],
    ], columns);
  }

  /** A dispatch of a 1-D kernel over `count` elements (default: every parameter). */
  #linear(
    kernel: GPUComputePipeline,
    record: number[],
    bindings: TrainDispatch["bindings"],
    count = this.#layout.length,
  ): TrainDispatch {
    const groups = Math.ceil(count / LINEAR_GROUP);
    const limit = this.#context.device.limits.maxComputeWorkgroupsPerDimension;
    if (groups > limit) {
      throw new RangeError(
        `the cell has ${count} parameters, more than this WebGPU device's training kernels ` +
          `handle (${limit * LINEAR_GROUP}); use the wasm backend`,
      );
    }
    return { pipeline: kernel, record, bindings, groups: [groups, 1] };
  }

  #submit(dispatches: readonly TrainDispatch[]): void {
    const { device } = this.#context;
    const encoder = device.createCommandEncoder();
    encodeDispatches(device, encoder, this.#records, dispatches);
    device.queue.submit([encoder.finish()]);
  }

  /**
   * Submits `dispatches`, then copies `regions` into one staging buffer in the same submission,
   * and resolves to fresh copies of them.
   */
  async #submitAndRead(
    dispatches: readonly TrainDispatch[],
    regions: readonly Region[],
  ): Promise<Float32Array<ArrayBuffer>[]> {
    const { device } = this.#context;
    const encoder = device.createCommandEncoder();
    encodeDispatches(device, encoder, this.#records, dispatches);
    const bytes = regions.reduce((sum, [, , size]) => sum + size, 0);
    if (bytes === 0) {
      device.queue.submit([encoder.finish()]);
      return [];
    }
    const staging = createBuffer(
      device,
      "training staging",
      bytes,
      GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    );
    let at = 0;
    for (const [buffer, offset, size] of regions) {
      encoder.copyBufferToBuffer(buffer, offset, staging, at, size);
      at += size;
    }
    device.queue.submit([encoder.finish()]);
    try {
      await mapForReading(this.#context, staging);
      const all = new Float32Array(staging.getMappedRange(0, bytes)).slice();
      staging.unmap();
      const arrays: Float32Array<ArrayBuffer>[] = [];
      at = 0;
      for (const [, , size] of regions) {
        arrays.push(all.slice(at / 4, (at + size) / 4));
        at += size;
      }
      return arrays;
    } finally {
      staging.destroy();
    }
  }

  /** The buffers of `(batch, seqLen)`, made anew when the shape changes. */
  #shapeBuffers(B: number, T: number): ShapeBuffers {
    if (this.#shape?.batch === B && this.#shape.seqLen === T) return this.#shape;
    for (const buffer of this.#shape?.all ?? []) buffer.destroy();
    this.#shape = null;
    const I = this.#inputSize, H = this.#hiddenSize, { k, kind } = this.#variant;
    const G = 4 * k * H, attention = kind === "attention";
    const { device } = this.#context;
    const limit = device.limits.maxStorageBufferBindingSize;
    const { STORAGE, COPY_DST, COPY_SRC } = GPUBufferUsage;
    const all: GPUBuffer[] = [];
    const make = (label: string, floats: number, usage: number = STORAGE): GPUBuffer => {
      if (floats * 4 > limit) {
        for (const buffer of all) buffer.destroy();
        throw new RangeError(
          `training ${B} sequences of ${T} steps needs ${floats * 4} bytes for ${label}, more ` +
            `than this WebGPU device binds (maxStorageBufferBindingSize ${limit}); train on ` +
            "smaller batches or shorter sequences",
        );
      }
      // Empty ones (attention's, for the other variants) are small placeholders of their own:
      // one buffer bound read-only and writable in one dispatch would be a usage conflict.
      const buffer = createBuffer(device, label, floats * 4, usage);
      all.push(buffer);
      return buffer;
    };
    const shape: ShapeBuffers = {
      batch: B,
      seqLen: T,
      x: make("the inputs", T * B * I, STORAGE | COPY_DST),
      gates: make("the recorded gates", T * B * G),
      attention: make("the attention pre-activations", attention ? T * B * k * H : 0),
      hiddens: make("the hidden states", (T + 1) * B * H, STORAGE | COPY_DST | COPY_SRC),
      cells: make("the cell states", (T + 1) * k * B * H, STORAGE | COPY_DST | COPY_SRC),
      choice: make("the chosen lanes", T * B * H),
      dOutput: make("dLoss/d output", B * T * H, STORAGE | COPY_DST),
      dAttention: make("the attention gradients", attention ? T * B * k * H : 0),
      dCells: make("dLoss/d state", k * B * H, STORAGE | COPY_DST | COPY_SRC),
      dx: make("dLoss/d x", T * B * I, STORAGE | COPY_SRC),
      dHidden0: make("dLoss/d initial hidden", B * H, STORAGE | COPY_SRC),
      all,
    };
    this.#shape = shape;
    return shape;
  }
}

/** `value` as float32 for the device, or zeros when it is omitted; checks its length. */
function checked(
  name: string,
  value: Float32Array | Float64Array | undefined,
  length: number,
): Float32Array<ArrayBuffer> {
  if (value === undefined) return new Float32Array(length);
  if (!(value instanceof Float32Array || value instanceof Float64Array)) {
    throw new TypeError(`${name} must be a Float32Array or Float64Array, got ${describe(value)}`);
  }
  if (value.length !== length) {
    throw new RangeError(`${name} must have ${length} elements, got ${value.length}`);
  }
  return Float32Array.from(value);
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
  const output = checked("grads.output", grads.output, B * T * H);
  if (grads.hidden === undefined) return output;
  const hidden = checked("grads.hidden", grads.hidden, B * H);
  for (let b = 0; b < B; b++) {
    for (let u = 0; u < H; u++) {
      const at = (b * T + T - 1) * H + u;
      output[at] = grads.output[at] + hidden[b * H + u];
    }
  }
  return output;
}
