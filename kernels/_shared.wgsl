// Declarations shared by every kernel; kernels/generate.ts puts this file in front of each of them,
// after the declarations it generates (the `VARIANT_*` codes and `struct Step`).

// Neighbouring invocations take neighbouring batch rows and the same units: they read the same
// weights and contiguous hidden states.
const BATCH_LANES = 8u;
const UNIT_GROUPS = 8u;
