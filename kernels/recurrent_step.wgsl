// One time step of every cell variant: the recurrent GEMM `h · h2hᵀ` fused with the cell update.
//
// An invocation owns a block of batch rows (16 or 4, one entry point each, strided by BATCH_LANES
// so that neighbouring invocations read neighbouring rows; or one, see `stepRow`) and four hidden
// units, and walks the k lanes one after the other. For each lane it accumulates the four gates
// of its rows and units in registers, adds this step's input projection (which already holds both
// biases) and updates that lane's cells at once. A lane's update never needs another lane's gates,
// so the (B, 4kH) pre-activations are never written to memory; only the lane reduction (a sum, or
// the argmax for the stochastic cell) is carried from lane to lane.
//
// Why the row blocks are written out: on SIMD software rasterisers (llvmpipe) accumulators only
// stay in registers when they are named values; a loop over an array of accumulators, even with a
// constant trip count, runs 2-3 times slower, and so does any dynamically indexed local array.
// 16 rows reuse each loaded weight 16 times. The weights are read through a texture because
// llvmpipe fetches texels with vector gathers but loads storage buffers lane by lane (a quarter
// faster GEMM); on GPUs the texture cache serves the same purpose.
//
// Layouts. A vec4 holds four consecutive hidden units (`unitVecs = paddedUnits / 4`); a mat4x4
// holds, per column, one gate (forget, input, output, candidate) of those four units.
//   recurrentWeights texture, texel (x = 4·unitVec + gate, y = lane·paddedUnits + inner index):
//                    the h2h weights of one gate of four units for one inner unit
//   inputGates       [chunk step][row][lane][unitVec]: mat4x4, x · i2hᵀ + i2h.bias + h2h.bias
//   laneWeights      [chunk step][row][lane][unitVec]: vec4, attention's softmax over lanes
//   hiddenPrevious, hiddenNext [unitVec][row]: vec4 (K-major: a row block's loads are contiguous)
//   cells            [lane][row][unitVec]: vec4
//   output           [row][time][unit]: f32, the caller's (B, T, H) layout, unpadded; with
//                    `writeLanes`, followed by the chosen lanes in the same layout

// The cell equations: a generated `VARIANT_*` code (`VARIANT_ARRAY` for LSTM too, its k = 1 case).
// Sizes are uniforms rather than overrides: llvmpipe takes seconds to compile a 16-row entry point,
// so one pipeline per variant and row block serves every shape.
override variant: u32;
// Stochastic only, when the caller asks for them: also write each unit's chosen lane (as a float)
// after the outputs, as the lanes go by. A separate pipeline: the default one never touches them.
override writeLanes: bool = false;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var recurrentWeights: texture_2d<f32>;
@group(0) @binding(2) var<storage, read> inputGates: array<mat4x4<f32>>;
@group(0) @binding(3) var<storage, read> laneWeights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> hiddenPrevious: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> hiddenNext: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> cells: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> output: array<f32>;

// The four gates of four units for one lane and inner index, as the columns of a mat4x4.
fn gatesAt(x: u32, y: u32) -> mat4x4<f32> {
  return mat4x4<f32>(
    textureLoad(recurrentWeights, vec2<u32>(x, y), 0),
    textureLoad(recurrentWeights, vec2<u32>(x + 1u, y), 0),
    textureLoad(recurrentWeights, vec2<u32>(x + 2u, y), 0),
    textureLoad(recurrentWeights, vec2<u32>(x + 3u, y), 0),
  );
}

// The weights of inner indices 4·innerVec .. 4·innerVec + 3 for one lane and unitVec.
fn weightsAt(lane: u32, innerVec: u32, unitVec: u32) -> array<mat4x4<f32>, 4> {
  let x = unitVec * 4u;
  let y = lane * step.paddedUnits + innerVec * 4u;
  return array<mat4x4<f32>, 4>(
    gatesAt(x, y),
    gatesAt(x, y + 1u),
    gatesAt(x, y + 2u),
    gatesAt(x, y + 3u),
  );
}

// acc + Σ_c h[c] · w[c]: one row's four gates of four units, four inner indices further.
fn accumulate(acc: mat4x4<f32>, h: vec4<f32>, w: array<mat4x4<f32>, 4>) -> mat4x4<f32> {
  return acc + w[0] * h.x + w[1] * h.y + w[2] * h.z + w[3] * h.w;
}

// Finishes one lane of one row: adds the input projection, applies the variant's gate equations,
// updates the lane's cells and folds its output into the readout (_cell.wgsl).
fn updateLane(lane: u32, unitVec: u32, row: u32, acc: mat4x4<f32>, fold: Fold) -> Fold {
  let unitVecs = step.paddedUnits / 4u;
  let laneRow = ((step.chunkStep * step.batch + row) * step.lanes + lane) * unitVecs + unitVec;
  let z = acc + inputGates[laneRow];
  var forgetGate = gateActivation(z[0]);
  var inputGate = gateActivation(z[1]);
  var outputGate = gateActivation(z[2]);
  let candidate = stableTanh(z[3]);
  let cell = (lane * step.batch + row) * unitVecs + unitVec;
  if (variant == VARIANT_ATTENTION) {
    let s = laneWeights[laneRow];
    forgetGate *= s;
    inputGate *= s;
    outputGate *= s;
  }
  let c = keepFactor(variant, forgetGate) * cells[cell] + inputGate * candidate;
  cells[cell] = c;
  let laneOutput = outputGate * stableTanh(c);
  let chosen = choosesLane(variant, lane, fold, outputGate);
  if (writeLanes) {
    writeLane(unitVec, row, lane, chosen);
  }
  return foldLane(variant, fold, outputGate, laneOutput, chosen);
}

// `writeLanes`: lane `lane` is the best so far of the units where `better` holds (lane 0 always
// is, so every slot is written).
fn writeLane(unitVec: u32, row: u32, lane: u32, better: vec4<bool>) {
  if (row >= step.validBatch) {
    return;
  }
  let unit = unitVec * 4u;
  let at = step.validBatch * step.seqLen * step.hiddenSize +
    (row * step.seqLen + step.time) * step.hiddenSize + unit;
  for (var i = 0u; i < 4u; i++) {
    if (better[i] && unit + i < step.hiddenSize) {
      output[at + i] = f32(lane);
    }
  }
}

// Stores one row's new hidden state: for the next step, and into the output.
fn writeHidden(unitVec: u32, row: u32, fold: Fold) {
  let unit = unitVec * 4u;
  // Padding units must stay zero: they are inner indices of the next step's GEMM.
  let real = vec4<u32>(unit, unit + 1u, unit + 2u, unit + 3u) < vec4<u32>(step.hiddenSize);
  let h = select(vec4<f32>(0.0), fold.hidden, real);
  hiddenNext[unitVec * step.batch + row] = h;
  if (row < step.validBatch) {
    let out = (row * step.seqLen + step.time) * step.hiddenSize + unit;
    for (var i = 0u; i < 4u; i++) {
      if (real[i]) {
        output[out + i] = h[i];
      }
    }
  }
}

@compute @workgroup_size(BATCH_LANES, UNIT_GROUPS)
fn step16(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let unitVec = group.y * UNIT_GROUPS + local.y;
  if (unitVec >= step.paddedUnits / 4u) {
    return;
  }
  let row = group.x * BATCH_LANES * 16u + local.x;
  var r0 = Fold();
  var r1 = r0; var r2 = r0; var r3 = r0; var r4 = r0; var r5 = r0; var r6 = r0;
  var r7 = r0; var r8 = r0;
  var r9 = r0; var r10 = r0; var r11 = r0; var r12 = r0; var r13 = r0; var r14 = r0; var r15 = r0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    // Explicitly initialised: naga zeroes uninitialised locals only once per invocation, not on
    // every iteration of the lane loop.
    var a0 = mat4x4<f32>();
    var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0;
    var a7 = a0; var a8 = a0;
    var a9 = a0; var a10 = a0; var a11 = a0; var a12 = a0; var a13 = a0; var a14 = a0; var a15 = a0;
    for (var innerVec = 0u; innerVec < step.paddedUnits / 4u; innerVec++) {
      let w = weightsAt(lane, innerVec, unitVec);
      let h = innerVec * step.batch + row;
      a0 = accumulate(a0, hiddenPrevious[h], w);
      a1 = accumulate(a1, hiddenPrevious[h + 8u], w);
      a2 = accumulate(a2, hiddenPrevious[h + 16u], w);
      a3 = accumulate(a3, hiddenPrevious[h + 24u], w);
      a4 = accumulate(a4, hiddenPrevious[h + 32u], w);
      a5 = accumulate(a5, hiddenPrevious[h + 40u], w);
      a6 = accumulate(a6, hiddenPrevious[h + 48u], w);
      a7 = accumulate(a7, hiddenPrevious[h + 56u], w);
      a8 = accumulate(a8, hiddenPrevious[h + 64u], w);
      a9 = accumulate(a9, hiddenPrevious[h + 72u], w);
      a10 = accumulate(a10, hiddenPrevious[h + 80u], w);
      a11 = accumulate(a11, hiddenPrevious[h + 88u], w);
      a12 = accumulate(a12, hiddenPrevious[h + 96u], w);
      a13 = accumulate(a13, hiddenPrevious[h + 104u], w);
      a14 = accumulate(a14, hiddenPrevious[h + 112u], w);
      a15 = accumulate(a15, hiddenPrevious[h + 120u], w);
    }
    r0 = updateLane(lane, unitVec, row, a0, r0);
    r1 = updateLane(lane, unitVec, row + 8u, a1, r1);
    r2 = updateLane(lane, unitVec, row + 16u, a2, r2);
    r3 = updateLane(lane, unitVec, row + 24u, a3, r3);
    r4 = updateLane(lane, unitVec, row + 32u, a4, r4);
    r5 = updateLane(lane, unitVec, row + 40u, a5, r5);
    r6 = updateLane(lane, unitVec, row + 48u, a6, r6);
    r7 = updateLane(lane, unitVec, row + 56u, a7, r7);
    r8 = updateLane(lane, unitVec, row + 64u, a8, r8);
    r9 = updateLane(lane, unitVec, row + 72u, a9, r9);
    r10 = updateLane(lane, unitVec, row + 80u, a10, r10);
    r11 = updateLane(lane, unitVec, row + 88u, a11, r11);
    r12 = updateLane(lane, unitVec, row + 96u, a12, r12);
    r13 = updateLane(lane, unitVec, row + 104u, a13, r13);
    r14 = updateLane(lane, unitVec, row + 112u, a14, r14);
    r15 = updateLane(lane, unitVec, row + 120u, a15, r15);
  }
  writeHidden(unitVec, row, r0);
  writeHidden(unitVec, row + 8u, r1);
  writeHidden(unitVec, row + 16u, r2);
  writeHidden(unitVec, row + 24u, r3);
  writeHidden(unitVec, row + 32u, r4);
  writeHidden(unitVec, row + 40u, r5);
  writeHidden(unitVec, row + 48u, r6);
  writeHidden(unitVec, row + 56u, r7);
  writeHidden(unitVec, row + 64u, r8);
  writeHidden(unitVec, row + 72u, r9);
  writeHidden(unitVec, row + 80u, r10);
  writeHidden(unitVec, row + 88u, r11);
  writeHidden(unitVec, row + 96u, r12);
  writeHidden(unitVec, row + 104u, r13);
  writeHidden(unitVec, row + 112u, r14);
  writeHidden(unitVec, row + 120u, r15);
}

@compute @workgroup_size(BATCH_LANES, UNIT_GROUPS)
fn step4(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let unitVec = group.y * UNIT_GROUPS + local.y;
  if (unitVec >= step.paddedUnits / 4u) {
    return;
  }
  let row = group.x * BATCH_LANES * 4u + local.x;
  var r0 = Fold();
  var r1 = r0; var r2 = r0; var r3 = r0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    // Explicitly initialised: naga zeroes uninitialised locals only once per invocation, not on
    // every iteration of the lane loop.
    var a0 = mat4x4<f32>();
    var a1 = a0; var a2 = a0; var a3 = a0;
    for (var innerVec = 0u; innerVec < step.paddedUnits / 4u; innerVec++) {
      let w = weightsAt(lane, innerVec, unitVec);
      let h = innerVec * step.batch + row;
      a0 = accumulate(a0, hiddenPrevious[h], w);
      a1 = accumulate(a1, hiddenPrevious[h + 8u], w);
      a2 = accumulate(a2, hiddenPrevious[h + 16u], w);
      a3 = accumulate(a3, hiddenPrevious[h + 24u], w);
    }
    r0 = updateLane(lane, unitVec, row, a0, r0);
    r1 = updateLane(lane, unitVec, row + 8u, a1, r1);
    r2 = updateLane(lane, unitVec, row + 16u, a2, r2);
    r3 = updateLane(lane, unitVec, row + 24u, a3, r3);
  }
  writeHidden(unitVec, row, r0);
  writeHidden(unitVec, row + 8u, r1);
  writeHidden(unitVec, row + 16u, r2);
  writeHidden(unitVec, row + 24u, r3);
}

// Batches too small to fill a row block: neighbouring invocations take neighbouring units of one
// row instead, so no padding rows are computed (a batch of one costs an eighth of `step1` would).
@compute @workgroup_size(UNIT_GROUPS)
fn stepRow(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let unitVec = group.y * UNIT_GROUPS + local.x;
  if (unitVec >= step.paddedUnits / 4u) {
    return;
  }
  let row = group.x;
  var fold = Fold();
  for (var lane = 0u; lane < step.lanes; lane++) {
    var acc = mat4x4<f32>();
    for (var innerVec = 0u; innerVec < step.paddedUnits / 4u; innerVec++) {
      let h = hiddenPrevious[innerVec * step.batch + row];
      acc = accumulate(acc, h, weightsAt(lane, innerVec, unitVec));
    }
    fold = updateLane(lane, unitVec, row, acc, fold);
  }
  writeHidden(unitVec, row, fold);
}
