/**
 * How a call is cut to fit the device: batch chunks so that no buffer outgrows
 * `maxStorageBufferBindingSize`, time chunks so that the projected gates of a chunk of steps fit
 * the workspace, and the entry point of the recurrent kernel that wastes the least work on padding
 * rows.
 *
 * @module
 */

import { PROJECTION_ROWS, roundUp } from "./layout.ts";

/** An entry point of `recurrent_step.wgsl` and the batch rows one of its workgroups covers. */
export interface RecurrentEntry {
  /** `step16` and `step4`: 8 × 16 or 8 × 4 rows per workgroup; `stepRow`: one row. */
  readonly entryPoint: "step16" | "step4" | "stepRow";
  /** Batch rows per workgroup; a chunk's rows are padded to a multiple of it. */
  readonly rowsPerWorkgroup: number;
  /** Relative cost per padded row, measured on lavapipe (H = 128, k = 4). */
  readonly cost: number;
}

/** The entry points, largest row block first: larger blocks reuse each loaded weight more. */
const RECURRENT_ENTRIES: readonly RecurrentEntry[] = [
  { entryPoint: "step16", rowsPerWorkgroup: 128, cost: 1 },
  { entryPoint: "step4", rowsPerWorkgroup: 32, cost: 1.8 },
  { entryPoint: "stepRow", rowsPerWorkgroup: 1, cost: 4.2 },
];

/** Unit groups (of four units) along the second axis of a workgroup in all kernels. */
export const UNIT_GROUPS = 8;

/** The gates of one projected row are kept for at most this many bytes per time chunk. */
const MAX_WORKSPACE_BYTES = 128 * 1024 * 1024;

/** The sizes of one call. */
export interface CallShape {
  /** `B`. */
  readonly batch: number;
  /** `T`. */
  readonly seqLen: number;
  /** `I`. */
  readonly inputSize: number;
  /** `H`. */
  readonly hiddenSize: number;
  /** `k`. */
  readonly lanes: number;
  /** Whether the output buffer also holds the chosen lanes, `(B, T, H)` after the outputs. */
  readonly withLanes?: boolean;
}

/** A run of batch rows processed together. */
export interface BatchChunk {
  /** First batch row. */
  readonly start: number;
  /** Real rows. */
  readonly size: number;
  /** Rows after padding to a whole number of recurrent workgroups. */
  readonly padded: number;
}

/** A run of time steps whose input projection is computed by one dispatch. */
export interface TimeChunk {
  /** First step. */
  readonly start: number;
  /** Steps. */
  readonly length: number;
}

/** The cut of one call and the byte sizes of its buffers (largest chunk). */
export interface ChunkPlan {
  /** The recurrent kernel's entry point for these batch chunks. */
  readonly recurrent: RecurrentEntry;
  /** Batch chunks, in order. */
  readonly batchChunks: readonly BatchChunk[];
  /** Time chunks, in order; the same for every batch chunk. */
  readonly timeChunks: readonly TimeChunk[];
  /** Rows of one plane of the packed input: `T · padded + PROJECTION_ROWS`, per batch chunk. */
  readonly inputPlaneRows: (chunk: BatchChunk) => number;
  /** Byte sizes of the per-call buffers. */
  readonly bytes: {
    readonly input: number;
    readonly inputGates: number;
    readonly laneWeights: number;
    readonly hidden: number;
    readonly cells: number;
    readonly output: number;
  };
}

/**
 * Cuts a call into batch and time chunks that fit `maxBindingBytes` per buffer.
 *
 * @throws {RangeError} If a single sequence does not fit (the message says which buffer).
 *
 * @example
 * ```ts
 * import { planChunks } from "./plan.ts";
 * const plan = planChunks(
 *   { batch: 1024, seqLen: 10, inputSize: 10, hiddenSize: 128, lanes: 4 },
 *   128 * 1024 * 1024,
 * );
 * plan.batchChunks.length; // 1
 * ```
 */
export function planChunks(shape: CallShape, maxBindingBytes: number): ChunkPlan {
  const { batch, seqLen, inputSize, hiddenSize, lanes } = shape;
  const outputCopies = shape.withLanes ? 2 : 1;
  const paddedUnits = roundUp(hiddenSize, 4);
  const paddedInputs = roundUp(inputSize, 4);
  const workspaceBytes = Math.min(maxBindingBytes, MAX_WORKSPACE_BYTES);
  const gateRowBytes = lanes * paddedUnits * 16;
  // Rows of projected gates the workspace holds, in whole projection blocks.
  const workspaceRows = Math.floor(workspaceBytes / gateRowBytes / PROJECTION_ROWS) *
    PROJECTION_ROWS;
  // The most padded rows a batch chunk may have, buffer by buffer.
  const limits: Array<[string, number]> = [
    ["the input", Math.floor((maxBindingBytes / (paddedInputs * 4) - PROJECTION_ROWS) / seqLen)],
    ["the output", Math.floor(maxBindingBytes / (outputCopies * seqLen * hiddenSize * 4))],
    ["the cell states", Math.floor(maxBindingBytes / (lanes * paddedUnits * 4))],
    ["the projected gates of one step", workspaceRows],
  ];
  const [tightest, maxRows] = limits.reduce((a, b) => (b[1] < a[1] ? b : a));
  if (maxRows < 1) {
    throw new RangeError(
      `a single sequence of ${seqLen} steps does not fit the WebGPU device: ` +
        `${tightest} would exceed maxStorageBufferBindingSize (${maxBindingBytes} bytes). ` +
        "Use shorter sequences (run them in parts, passing the state on) or a smaller model.",
    );
  }
  const chunkCount = Math.ceil(batch / maxRows);
  const chunkSize = Math.ceil(batch / chunkCount);
  const recurrent = chooseRecurrentEntry(chunkSize, maxRows);
  const batchChunks: BatchChunk[] = [];
  for (let start = 0; start < batch; start += chunkSize) {
    const size = Math.min(chunkSize, batch - start);
    batchChunks.push({ start, size, padded: roundUp(size, recurrent.rowsPerWorkgroup) });
  }
  const paddedBatch = batchChunks[0].padded;
  const maxSteps = Math.max(1, Math.floor(workspaceRows / paddedBatch));
  const timeChunkCount = Math.ceil(seqLen / maxSteps);
  const stepsPerChunk = Math.ceil(seqLen / timeChunkCount);
  const timeChunks: TimeChunk[] = [];
  for (let start = 0; start < seqLen; start += stepsPerChunk) {
    timeChunks.push({ start, length: Math.min(stepsPerChunk, seqLen - start) });
  }
  const projectedRows = roundUp(stepsPerChunk * paddedBatch, PROJECTION_ROWS);
  const inputPlaneRows = (chunk: BatchChunk) => seqLen * chunk.padded + PROJECTION_ROWS;
  return {
    recurrent,
    batchChunks,
    timeChunks,
    inputPlaneRows,
    bytes: {
      input: paddedInputs * 4 * inputPlaneRows(batchChunks[0]),
      inputGates: projectedRows * gateRowBytes,
      laneWeights: projectedRows * lanes * paddedUnits * 4,
      hidden: paddedUnits * paddedBatch * 4,
      cells: lanes * paddedBatch * paddedUnits * 4,
      output: outputCopies * chunkSize * seqLen * hiddenSize * 4,
    },
  };
}

/** The entry point with the least estimated work for `rows` rows that pads to at most `maxRows`. */
function chooseRecurrentEntry(rows: number, maxRows: number): RecurrentEntry {
  const fitting = RECURRENT_ENTRIES.filter((entry) =>
    roundUp(rows, entry.rowsPerWorkgroup) <= maxRows
  );
  const work = (entry: RecurrentEntry) => roundUp(rows, entry.rowsPerWorkgroup) * entry.cost;
  return fitting.reduce((best, entry) => (work(entry) < work(best) ? entry : best));
}
