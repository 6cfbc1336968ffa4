/**
 * Creating and owning device buffers: every buffer is at least a small placeholder, so that
 * variants without attention can bind something in the attention slots; a trainer's buffers
 * ({@linkcode TrainingBuffers}) belong to one owner that frees them together.
 *
 * @module
 */

import { roundUp } from "./layout.ts";

/** Storage buffers bound in place of attention buffers by the other variants. */
const PLACEHOLDER_BYTES = 64;

/**
 * An uninitialised buffer of at least `bytes` bytes.
 *
 * @example
 * ```ts ignore
 * import { createBuffer } from "./buffers.ts";
 * const output = createBuffer(device, "output", 1024, GPUBufferUsage.STORAGE);
 * ```
 */
export function createBuffer(
  device: GPUDevice,
  label: string,
  bytes: number,
  usage: number,
): GPUBuffer {
  return device.createBuffer({
    label,
    size: roundUp(Math.max(bytes, PLACEHOLDER_BYTES), 4),
    usage,
  });
}

/**
 * A storage buffer holding `data` (a placeholder when `data` is `null`).
 *
 * @example
 * ```ts ignore
 * import { upload } from "./buffers.ts";
 * const bias = upload(device, "gate bias", new Float32Array(16));
 * ```
 */
export function upload(device: GPUDevice, label: string, data: Float32Array | null): GPUBuffer {
  const buffer = device.createBuffer({
    label,
    size: roundUp(Math.max(data?.byteLength ?? 0, PLACEHOLDER_BYTES), 4),
    usage: GPUBufferUsage.STORAGE,
    mappedAtCreation: true,
  });
  if (data !== null) new Float32Array(buffer.getMappedRange()).set(data);
  buffer.unmap();
  return buffer;
}

/** The sizes of a trained cell that its activation buffers depend on. */
export interface TrainingSizes {
  /** `I`. */
  readonly inputSize: number;
  /** `H`. */
  readonly hiddenSize: number;
  /** `k`: lanes per unit. */
  readonly k: number;
  /** Whether the cell has the attention projection. */
  readonly attention: boolean;
}

/** The activation buffers of one call shape `(batch, seqLen)`. */
export interface ShapeBuffers {
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

/**
 * A trainer's device buffers: the flat parameters, their gradients, one squared norm per
 * parameter, the optimizer state (made on first use) and the activations of the latest call
 * shape. Everything is freed by {@linkcode TrainingBuffers.dispose}.
 *
 * @example
 * ```ts ignore
 * import { TrainingBuffers } from "./buffers.ts";
 * const buffers = new TrainingBuffers(device, sizes, flatParameters, parameterCount);
 * const shape = buffers.shape(2, 10);
 * buffers.dispose();
 * ```
 */
export class TrainingBuffers {
  /** The parameters, flat in layout order. */
  readonly params: GPUBuffer;
  /** Their accumulated gradients, in the same order. */
  readonly grads: GPUBuffer;
  /** One `Σ g²` per parameter (each parameter's share of `clipGradNorm`'s total). */
  readonly norms: GPUBuffer;
  readonly #device: GPUDevice;
  readonly #sizes: TrainingSizes;
  readonly #floats: number;
  #state: [GPUBuffer, GPUBuffer, GPUBuffer] | null = null;
  #shape: ShapeBuffers | null = null;

  /**
   * Uploads `params` (flat, layout order) to `device`; gradients start at zero.
   *
   * @param slots The number of parameters (the norms' length).
   */
  constructor(
    device: GPUDevice,
    sizes: TrainingSizes,
    params: Float32Array<ArrayBuffer>,
    slots: number,
  ) {
    const { STORAGE, COPY_DST, COPY_SRC } = GPUBufferUsage;
    this.#device = device;
    this.#sizes = { ...sizes };
    this.#floats = params.length;
    this.params = createBuffer(
      device,
      "parameters",
      params.length * 4,
      STORAGE | COPY_DST | COPY_SRC,
    );
    device.queue.writeBuffer(this.params, 0, params);
    this.grads = createBuffer(
      device,
      "gradients",
      params.length * 4,
      STORAGE | COPY_DST | COPY_SRC,
    );
    this.norms = createBuffer(device, "gradient norms", slots * 4, STORAGE | COPY_SRC);
  }

  /** The optimizer's three state vectors, made (zero) on first use. */
  state(): readonly [GPUBuffer, GPUBuffer, GPUBuffer] {
    const bytes = this.#floats * 4;
    const { STORAGE, COPY_DST, COPY_SRC } = GPUBufferUsage;
    const make = (label: string) =>
      createBuffer(this.#device, label, bytes, STORAGE | COPY_DST | COPY_SRC);
    return this.#state ??= [
      make("first moment"),
      make("second moment"),
      make("max second moment"),
    ];
  }

  /**
   * The activation buffers of `(batch, seqLen)`, made anew when the shape changes.
   *
   * @throws {RangeError} If one exceeds the device's `maxStorageBufferBindingSize` (named).
   */
  shape(B: number, T: number): ShapeBuffers {
    if (this.#shape?.batch === B && this.#shape.seqLen === T) return this.#shape;
    for (const buffer of this.#shape?.all ?? []) buffer.destroy();
    this.#shape = null;
    const { inputSize: I, hiddenSize: H, k, attention } = this.#sizes;
    const G = 4 * k * H;
    const device = this.#device;
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
    this.#shape = {
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
    return this.#shape;
  }

  /** The activation buffers of the latest shape, if any. */
  get currentShape(): ShapeBuffers | null {
    return this.#shape;
  }

  /** Frees every buffer. Idempotent. */
  dispose(): void {
    for (const buffer of [this.params, this.grads, this.norms]) buffer.destroy();
    for (const buffer of this.#state ?? []) buffer.destroy();
    for (const buffer of this.#shape?.all ?? []) buffer.destroy();
    this.#state = null;
    this.#shape = null;
  }
}
