// The input projection of a chunk of time steps at once: `x · i2hᵀ + i2h.bias + h2h.bias` for all
// gates, and for the attention cell also its lane weights `softmax over lanes(σ(x · i2aᵀ + b))`
// (with max pooling, the largest weight of each unit broadcast to all lanes). Nothing here depends
// on the hidden state, so one dispatch covers every row of every step of the chunk and the time
// loop only runs the recurrent GEMM (recurrent_step.wgsl).
//
// An invocation owns 16 rows (strided by BATCH_LANES) and four hidden units and walks the k lanes,
// so it sees every lane of its units and can normalise the attention weights over lanes itself.
// The rows are written out for the reason given in recurrent_step.wgsl.
//
// Layouts (vec4 = four consecutive hidden units, mat4x4 column = one gate of those units; a row is
// `time · batch + batch row`, the rows of one time step being contiguous):
//   input             [inputVec][row]: vec4 of four consecutive input features (K-major)
//   inputWeights      [lane][input index][unitVec]: mat4x4
//   gateBias          [lane][unitVec]: mat4x4, i2h.bias + h2h.bias
//   attentionWeights  [lane][inputVec][unitVec]: mat4x4, column c = input 4·inputVec + c
//   attentionBias     [lane][unitVec]: vec4
//   inputGates        [chunk row][lane][unitVec]: mat4x4 (output)
//   laneWeights       [chunk row][lane][unitVec]: vec4 (output, attention only)

// AttentionArrayLSTM: also compute the lane weights; with maxPooling broadcast the largest one.
override attention: bool;
override maxPooling: bool;

const ROWS = 16u;

// One row's running sums: four gates of four units, and the attention pre-activation.
struct Projection {
  gates: mat4x4<f32>,
  attention: vec4<f32>,
}

// The weights of four consecutive inputs for one lane and unitVec.
struct InputWeights {
  gates: array<mat4x4<f32>, 4>,
  attention: mat4x4<f32>,
}

// Attention: one row's Σ over lanes of e^σ(a), and the largest term. σ(a) ∈ (0, 1), so e^σ(a)
// needs no max subtraction to stay finite.
struct LaneSum {
  total: vec4<f32>,
  largest: vec4<f32>,
}

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> inputWeights: array<mat4x4<f32>>;
@group(0) @binding(2) var<storage, read> gateBias: array<mat4x4<f32>>;
@group(0) @binding(3) var<storage, read> attentionWeights: array<mat4x4<f32>>;
@group(0) @binding(4) var<storage, read> attentionBias: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> inputGates: array<mat4x4<f32>>;
@group(0) @binding(7) var<storage, read_write> laneWeights: array<vec4<f32>>;

fn weightsAt(lane: u32, inputVec: u32, unitVec: u32) -> InputWeights {
  let unitVecs = step.paddedUnits / 4u;
  let first = (lane * step.paddedInputs + inputVec * 4u) * unitVecs + unitVec;
  var w: InputWeights;
  w.gates = array<mat4x4<f32>, 4>(
    inputWeights[first],
    inputWeights[first + unitVecs],
    inputWeights[first + 2u * unitVecs],
    inputWeights[first + 3u * unitVecs],
  );
  if (attention) {
    w.attention = attentionWeights[(lane * step.paddedInputs / 4u + inputVec) * unitVecs + unitVec];
  }
  return w;
}

fn accumulate(acc: Projection, x: vec4<f32>, w: InputWeights) -> Projection {
  var next: Projection;
  next.gates = acc.gates + w.gates[0] * x.x + w.gates[1] * x.y + w.gates[2] * x.z +
    w.gates[3] * x.w;
  if (attention) {
    next.attention = acc.attention + w.attention * x;
  }
  return next;
}

// Stores one row's gates for one lane and, for attention, e^σ(a) (normalised by `normalize`).
fn finishRow(lane: u32, unitVec: u32, row: u32, acc: Projection, sum: LaneSum) -> LaneSum {
  let unitVecs = step.paddedUnits / 4u;
  let out = (row * step.lanes + lane) * unitVecs + unitVec;
  inputGates[out] = acc.gates + gateBias[lane * unitVecs + unitVec];
  if (!attention) {
    return sum;
  }
  let e = exp(1.0 / (1.0 + exp(-acc.attention - attentionBias[lane * unitVecs + unitVec])));
  laneWeights[out] = e;
  return LaneSum(sum.total + e, max(sum.largest, e));
}

// Turns one row's e^σ(a) into the softmax over lanes (or its maximum, with max pooling).
fn normalize(unitVec: u32, row: u32, sum: LaneSum) {
  let unitVecs = step.paddedUnits / 4u;
  for (var lane = 0u; lane < step.lanes; lane++) {
    let out = (row * step.lanes + lane) * unitVecs + unitVec;
    laneWeights[out] = select(laneWeights[out], sum.largest, maxPooling) / sum.total;
  }
}

@compute @workgroup_size(BATCH_LANES, UNIT_GROUPS)
fn project(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let unitVec = group.y * UNIT_GROUPS + local.y;
  if (unitVec >= step.paddedUnits / 4u) {
    return;
  }
  let row = group.x * BATCH_LANES * ROWS + local.x;
  let firstInput = step.chunkStart * step.batch + row;
  var s0 = LaneSum();
  var s1 = s0; var s2 = s0; var s3 = s0; var s4 = s0; var s5 = s0; var s6 = s0; var s7 = s0;
  var s8 = s0; var s9 = s0; var s10 = s0; var s11 = s0; var s12 = s0; var s13 = s0;
  var s14 = s0; var s15 = s0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    // Explicitly initialised: naga zeroes uninitialised locals only once per invocation, not on
    // every iteration of the lane loop.
    var a0 = Projection();
    var a1 = a0; var a2 = a0; var a3 = a0; var a4 = a0; var a5 = a0; var a6 = a0; var a7 = a0;
    var a8 = a0; var a9 = a0; var a10 = a0; var a11 = a0; var a12 = a0; var a13 = a0; var a14 = a0;
    var a15 = a0;
    for (var inputVec = 0u; inputVec < step.paddedInputs / 4u; inputVec++) {
      let w = weightsAt(lane, inputVec, unitVec);
      let x = inputVec * step.inputRows + firstInput;
      a0 = accumulate(a0, input[x], w);
      a1 = accumulate(a1, input[x + 8u], w);
      a2 = accumulate(a2, input[x + 16u], w);
      a3 = accumulate(a3, input[x + 24u], w);
      a4 = accumulate(a4, input[x + 32u], w);
      a5 = accumulate(a5, input[x + 40u], w);
      a6 = accumulate(a6, input[x + 48u], w);
      a7 = accumulate(a7, input[x + 56u], w);
      a8 = accumulate(a8, input[x + 64u], w);
      a9 = accumulate(a9, input[x + 72u], w);
      a10 = accumulate(a10, input[x + 80u], w);
      a11 = accumulate(a11, input[x + 88u], w);
      a12 = accumulate(a12, input[x + 96u], w);
      a13 = accumulate(a13, input[x + 104u], w);
      a14 = accumulate(a14, input[x + 112u], w);
      a15 = accumulate(a15, input[x + 120u], w);
    }
    s0 = finishRow(lane, unitVec, row, a0, s0);
    s1 = finishRow(lane, unitVec, row + 8u, a1, s1);
    s2 = finishRow(lane, unitVec, row + 16u, a2, s2);
    s3 = finishRow(lane, unitVec, row + 24u, a3, s3);
    s4 = finishRow(lane, unitVec, row + 32u, a4, s4);
    s5 = finishRow(lane, unitVec, row + 40u, a5, s5);
    s6 = finishRow(lane, unitVec, row + 48u, a6, s6);
    s7 = finishRow(lane, unitVec, row + 56u, a7, s7);
    s8 = finishRow(lane, unitVec, row + 64u, a8, s8);
    s9 = finishRow(lane, unitVec, row + 72u, a9, s9);
    s10 = finishRow(lane, unitVec, row + 80u, a10, s10);
    s11 = finishRow(lane, unitVec, row + 88u, a11, s11);
    s12 = finishRow(lane, unitVec, row + 96u, a12, s12);
    s13 = finishRow(lane, unitVec, row + 104u, a13, s13);
    s14 = finishRow(lane, unitVec, row + 112u, a14, s14);
    s15 = finishRow(lane, unitVec, row + 120u, a15, s15);
  }
  if (attention) {
    normalize(unitVec, row, s0);
    normalize(unitVec, row + 8u, s1);
    normalize(unitVec, row + 16u, s2);
    normalize(unitVec, row + 24u, s3);
    normalize(unitVec, row + 32u, s4);
    normalize(unitVec, row + 40u, s5);
    normalize(unitVec, row + 48u, s6);
    normalize(unitVec, row + 56u, s7);
    normalize(unitVec, row + 64u, s8);
    normalize(unitVec, row + 72u, s9);
    normalize(unitVec, row + 80u, s10);
    normalize(unitVec, row + 88u, s11);
    normalize(unitVec, row + 96u, s12);
    normalize(unitVec, row + 104u, s13);
    normalize(unitVec, row + 112u, s14);
    normalize(unitVec, row + 120u, s15);
  }
}
