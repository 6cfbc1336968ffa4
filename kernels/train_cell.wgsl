// One time step of training, forward or backward, for every cell variant: the recurrent GEMM fused
// with the elementwise cell equations, as in recurrent_step.wgsl, but in the reference's plain
// layouts and keeping what the backward needs.
//
// `forwardStep` adds `h_{t-1} · h2hᵀ` to the step's input projection in `gates`, leaves the full
// pre-activations there (the backward's record of the gates), and writes the new cells, the new
// hidden state and, per unit, the lane the readout chose (stochastic: the largest output gate;
// attention with max pooling: the first maximal lane weight). `backwardStep` runs in reverse: it
// computes dLoss/d h_t = dLoss/d output_t + dgates_{t+1} · h2h (the recurrent GEMM) and, in the
// same invocation, the cell backward of its units: dgates_t, the carried dLoss/d cells and, for
// attention, dLoss/d the attention pre-activations. dgates_t overwrite the recorded gates of step
// t, which only this invocation reads: the recording serves one backward, and the storage of a
// second (T, B, 4kH) buffer is saved (and a binding: 8 storage buffers are all WebGPU promises). The first maximal lane receives the gradient of
// a maximum, as torch's max and argmax do.
//
// An invocation owns batch rows x + 16·r (r < 4) of a 64-row tile and one hidden unit; the GEMM
// runs through 16-deep slices in workgroup memory. Layouts (row-major, `G = 4kH`):
//   params      the flat parameter buffer; h2h.weight (4kH, H) starts at `recurrentOffset`
//   hiddens     (T + 1, B, H): the initial hidden state, then every step's
//   cells       (T + 1, k, B, H): the initial cells, then every step's
//   gates       (T, B, G): pre-activations, lane-major, gates forget, input, output, candidate
//   attention   (T, B, kH): attention pre-activations x · i2aᵀ + i2a.bias
//   choice      (T, B, H): the chosen lane (stochastic, max pooling)
//   dOutput     (B, T, H): dLoss/d output, the caller's layout, plus at the last step dLoss/d
//               the final hidden state
//   dAttention  (T, B, kH): result
//   dCells      (k, B, H): dLoss/d cells, carried from step to step

// The cell equations: a generated `VARIANT_*` code (`VARIANT_ARRAY` for LSTM too), as in
// recurrent_step.wgsl.
override variant: u32;
override maxPooling: bool;

struct TrainStep {
  batch: u32,
  seqLen: u32,
  lanes: u32,
  hiddenSize: u32,
  time: u32,
  // Backward: 1 when step time + 1 exists, so dLoss/d h_t gets dgates_{t+1} · h2h.
  hasNext: u32,
  recurrentOffset: u32,
}

@group(0) @binding(0) var<uniform> step: TrainStep;
@group(0) @binding(1) var<storage, read> params: array<f32>;
@group(0) @binding(2) var<storage, read> attention: array<f32>;
@group(0) @binding(3) var<storage, read_write> hiddens: array<f32>;
@group(0) @binding(4) var<storage, read_write> cells: array<f32>;
@group(0) @binding(5) var<storage, read_write> gates: array<f32>;
@group(0) @binding(6) var<storage, read_write> choice: array<u32>;
@group(0) @binding(7) var<storage, read> dOutput: array<f32>;
@group(0) @binding(8) var<storage, read_write> dAttention: array<f32>;
@group(0) @binding(9) var<storage, read_write> dCells: array<f32>;

// Forward: [inner][x] hidden states of rows x + 16·r; [inner][y] the four gates of unit y.
var<workgroup> hiddenTile: array<vec4<f32>, 256>;
var<workgroup> weightTile: array<vec4<f32>, 256>;
// Backward: [gate row][x] dgates of step t + 1 at rows x + 16·r; [gate row][y] h2h of unit y.
var<workgroup> dGateTile: array<vec4<f32>, 256>;
var<workgroup> recurrentTile: array<f32, 256>;

// What a unit carries from lane to lane in the forward: the readout so far (_cell.wgsl's `Fold`,
// in `.x`) and the chosen lane.
struct Readout {
  fold: Fold,
  lane: u32,
}

// Attention: one unit's Σ over lanes of e^σ(a), and its first maximal lane.
struct Softmax {
  total: f32,
  largest: u32,
}

fn isReal(row: u32, unit: u32) -> bool {
  return row < step.batch && unit < step.hiddenSize;
}

fn gateAt(time: u32, row: u32, lane: u32, unit: u32) -> u32 {
  let H = step.hiddenSize;
  return (time * step.batch + row) * 4u * step.lanes * H + lane * 4u * H + unit;
}

fn cellAt(time: u32, lane: u32, row: u32, unit: u32) -> u32 {
  return ((time * step.lanes + lane) * step.batch + row) * step.hiddenSize + unit;
}

fn attentionAt(row: u32, lane: u32, unit: u32) -> u32 {
  return (step.time * step.batch + row) * step.lanes * step.hiddenSize + lane * step.hiddenSize +
    unit;
}

fn laneExp(row: u32, lane: u32, unit: u32) -> f32 {
  return exp(sigmoid(vec4<f32>(attention[attentionAt(row, lane, unit)])).x);
}

// σ(a) ∈ (0, 1), so e^σ(a) needs no max subtraction. Lanes compare by their softmax values, as
// the reference does, so that rounding ties resolve alike.
fn softmaxOf(row: u32, unit: u32) -> Softmax {
  var total = 0.0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    total += laneExp(row, lane, unit);
  }
  var largest = 0u;
  for (var lane = 1u; lane < step.lanes; lane++) {
    if (laneExp(row, lane, unit) / total > laneExp(row, largest, unit) / total) {
      largest = lane;
    }
  }
  return Softmax(total, largest);
}

// The weight lane `lane` is scaled by: its softmax value, or with max pooling the largest one.
fn laneWeight(sm: Softmax, row: u32, lane: u32, unit: u32) -> f32 {
  return laneExp(row, select(lane, sm.largest, maxPooling), unit) / sm.total;
}

fn loadHidden(row: u32, inner: u32) -> f32 {
  if (row < step.batch && inner < step.hiddenSize) {
    return hiddens[(step.time * step.batch + row) * step.hiddenSize + inner];
  }
  return 0.0;
}

fn loadRecurrent(gateRow: u32, inner: u32) -> f32 {
  if (gateRow < 4u * step.lanes * step.hiddenSize && inner < step.hiddenSize) {
    return params[step.recurrentOffset + gateRow * step.hiddenSize + inner];
  }
  return 0.0;
}

// Finishes one lane of one row in the forward (see recurrent_step.wgsl's updateLane).
fn forwardLane(lane: u32, row: u32, unit: u32, acc: vec4<f32>, readout: Readout) -> Readout {
  if (!isReal(row, unit)) {
    return readout;
  }
  let H = step.hiddenSize;
  let at = gateAt(step.time, row, lane, unit);
  let z = acc + vec4<f32>(gates[at], gates[at + H], gates[at + 2u * H], gates[at + 3u * H]);
  gates[at] = z.x;
  gates[at + H] = z.y;
  gates[at + 2u * H] = z.z;
  gates[at + 3u * H] = z.w;
  var act = gateActivation(z);
  let candidate = stableTanh(z).w;
  let previous = cells[cellAt(step.time, lane, row, unit)];
  if (variant == VARIANT_ATTENTION) {
    act *= laneWeight(softmaxOf(row, unit), row, lane, unit);
  }
  let c = keepFactor(variant, vec4<f32>(act.x)).x * previous + act.y * candidate;
  cells[cellAt(step.time + 1u, lane, row, unit)] = c;
  let outputGate = vec4<f32>(act.z);
  let laneOutput = vec4<f32>(act.z * stableTanh(vec4<f32>(c)).x);
  let chosen = choosesLane(variant, lane, readout.fold, outputGate);
  return Readout(
    foldLane(variant, readout.fold, outputGate, laneOutput, chosen),
    select(readout.lane, lane, chosen.x),
  );
}

fn forwardFinish(row: u32, unit: u32, readout: Readout) {
  if (!isReal(row, unit)) {
    return;
  }
  hiddens[((step.time + 1u) * step.batch + row) * step.hiddenSize + unit] = readout.fold.hidden.x;
  var lane = readout.lane;
  if (variant == VARIANT_ATTENTION && maxPooling) {
    lane = softmaxOf(row, unit).largest;
  }
  choice[(step.time * step.batch + row) * step.hiddenSize + unit] = lane;
}

@compute @workgroup_size(16, 16)
fn forwardStep(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let x = local.x;
  let y = local.y;
  let row = group.x * 64u + x;
  let unit = group.y * 16u + y;
  let H = step.hiddenSize;
  var r0 = Readout();
  var r1 = r0; var r2 = r0; var r3 = r0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    var a0 = vec4<f32>();
    var a1 = a0; var a2 = a0; var a3 = a0;
    for (var first = 0u; first < H; first += 16u) {
      hiddenTile[y * 16u + x] = vec4<f32>(
        loadHidden(row, first + y),
        loadHidden(row + 16u, first + y),
        loadHidden(row + 32u, first + y),
        loadHidden(row + 48u, first + y),
      );
      let gateRow = lane * 4u * H + group.y * 16u + y;
      weightTile[x * 16u + y] = vec4<f32>(
        loadRecurrent(gateRow, first + x),
        loadRecurrent(gateRow + H, first + x),
        loadRecurrent(gateRow + 2u * H, first + x),
        loadRecurrent(gateRow + 3u * H, first + x),
      );
      workgroupBarrier();
      for (var i = 0u; i < 16u; i++) {
        let h = hiddenTile[i * 16u + x];
        let w = weightTile[i * 16u + y];
        a0 += w * h.x;
        a1 += w * h.y;
        a2 += w * h.z;
        a3 += w * h.w;
      }
      workgroupBarrier();
    }
    r0 = forwardLane(lane, row, unit, a0, r0);
    r1 = forwardLane(lane, row + 16u, unit, a1, r1);
    r2 = forwardLane(lane, row + 32u, unit, a2, r2);
    r3 = forwardLane(lane, row + 48u, unit, a3, r3);
  }
  forwardFinish(row, unit, r0);
  forwardFinish(row + 16u, unit, r1);
  forwardFinish(row + 32u, unit, r2);
  forwardFinish(row + 48u, unit, r3);
}

fn loadDGate(row: u32, gateRow: u32) -> f32 {
  let G = 4u * step.lanes * step.hiddenSize;
  if (row < step.batch && gateRow < G) {
    return gates[((step.time + 1u) * step.batch + row) * G + gateRow];
  }
  return 0.0;
}

fn loadRecurrentColumn(gateRow: u32, unit: u32) -> f32 {
  if (gateRow < 4u * step.lanes * step.hiddenSize && unit < step.hiddenSize) {
    return params[step.recurrentOffset + gateRow * step.hiddenSize + unit];
  }
  return 0.0;
}

// The cell backward of one unit of one row at step `time`, given dLoss/d h_t from later steps.
fn backwardUnit(row: u32, unit: u32, dLater: f32) {
  if (!isReal(row, unit)) {
    return;
  }
  let H = step.hiddenSize;
  let t = step.time;
  let dh = dLater + dOutput[(row * step.seqLen + t) * H + unit];
  let chosen = choice[(t * step.batch + row) * H + unit];
  var sm = Softmax(1.0, 0u);
  if (variant == VARIANT_ATTENTION) {
    sm = softmaxOf(row, unit);
  }
  var dWeightSum = 0.0;
  var dWeightDot = 0.0;
  for (var lane = 0u; lane < step.lanes; lane++) {
    let at = gateAt(t, row, lane, unit);
    let z = vec4<f32>(gates[at], gates[at + H], gates[at + 2u * H], gates[at + 3u * H]);
    let act = gateActivation(z);
    let slope = gateDerivative(z);
    let candidate = stableTanh(z).w;
    var scale = 1.0;
    if (variant == VARIANT_ATTENTION) {
      scale = laneWeight(sm, row, lane, unit);
    }
    let cell = cellAt(0u, lane, row, unit);
    var dCell = dCells[cell];
    var dOutputGate = 0.0;
    if (readsLane(variant, lane, chosen)) {
      let tanhCell = stableTanh(vec4<f32>(cells[cellAt(t + 1u, lane, row, unit)])).x;
      dOutputGate = dh * tanhCell;
      dCell += dh * scale * act.z * (1.0 - tanhCell * tanhCell);
    }
    let dKeep = dCell * cells[cellAt(t, lane, row, unit)];
    let dForget = dKeep * keepSlope(variant);
    let keep = keepFactor(variant, vec4<f32>(scale * act.x)).x;
    let dInput = dCell * candidate;
    dCells[cell] = dCell * keep;
    gates[at] = dForget * scale * slope.x;
    gates[at + H] = dInput * scale * slope.y;
    gates[at + 2u * H] = dOutputGate * scale * slope.z;
    gates[at + 3u * H] = dCell * scale * act.y * (1.0 - candidate * candidate);
    if (variant == VARIANT_ATTENTION) {
      // dLoss/d this lane's weight, kept until every lane's is known.
      let dWeight = dForget * act.x + dInput * act.y + dOutputGate * act.z;
      dAttention[attentionAt(row, lane, unit)] = dWeight;
      dWeightSum += dWeight;
      dWeightDot += dWeight * laneExp(row, lane, unit) / sm.total;
    }
  }
  if (variant != VARIANT_ATTENTION) {
    return;
  }
  // Back through the softmax over lanes and σ; with max pooling every lane used the largest
  // weight, so its lane receives all of their gradients.
  var dot = dWeightDot;
  if (maxPooling) {
    dot = dWeightSum * laneExp(row, chosen, unit) / sm.total;
  }
  for (var lane = 0u; lane < step.lanes; lane++) {
    let at = attentionAt(row, lane, unit);
    var dSoftmax = dAttention[at];
    if (maxPooling) {
      dSoftmax = select(0.0, dWeightSum, lane == chosen);
    }
    let activated = sigmoid(vec4<f32>(attention[at])).x;
    let softmax = exp(activated) / sm.total;
    dAttention[at] = softmax * (dSoftmax - dot) * activated * (1.0 - activated);
  }
}

@compute @workgroup_size(16, 16)
fn backwardStep(
  @builtin(workgroup_id) group: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
) {
  let x = local.x;
  let y = local.y;
  let row = group.x * 64u + x;
  let unit = group.y * 16u + y;
  // At the last step dLoss/d h_t is dOutput alone.
  var d = vec4<f32>();
  if (step.hasNext == 1u) {
    let G = 4u * step.lanes * step.hiddenSize;
    for (var first = 0u; first < G; first += 16u) {
      dGateTile[y * 16u + x] = vec4<f32>(
        loadDGate(row, first + y),
        loadDGate(row + 16u, first + y),
        loadDGate(row + 32u, first + y),
        loadDGate(row + 48u, first + y),
      );
      recurrentTile[x * 16u + y] = loadRecurrentColumn(first + x, group.y * 16u + y);
      workgroupBarrier();
      for (var i = 0u; i < 16u; i++) {
        d += dGateTile[i * 16u + x] * recurrentTile[i * 16u + y];
      }
      workgroupBarrier();
    }
  }
  backwardUnit(row, unit, d.x);
  backwardUnit(row + 16u, unit, d.y);
  backwardUnit(row + 32u, unit, d.z);
  backwardUnit(row + 48u, unit, d.w);
}
