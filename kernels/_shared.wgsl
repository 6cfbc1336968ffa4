// Declarations shared by every kernel; kernels/generate.ts puts this file in front of each of them.

// Neighbouring invocations take neighbouring batch rows and the same units: they read the same
// weights and contiguous hidden states.
const BATCH_LANES = 8u;
const UNIT_GROUPS = 8u;

// The per-step uniform record: one record serves both kernels, chosen by a dynamic offset.
struct Step {
  // Rows of this batch chunk, padded to whole workgroups of the entry point.
  batch: u32,
  // The time step, and its index inside the projected time chunk.
  time: u32,
  chunkStep: u32,
  chunkStart: u32,
  seqLen: u32,
  // Rows that hold real sequences; the others are padding and are not written to `output`.
  validBatch: u32,
  // Rows of one plane of the projection's input (read by the projection only).
  inputRows: u32,
  // k: memory cells (lanes) per hidden unit.
  lanes: u32,
  // H, H rounded up to a multiple of four, and I rounded up likewise (zero-padded).
  hiddenSize: u32,
  paddedUnits: u32,
  paddedInputs: u32,
}
