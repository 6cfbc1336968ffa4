// One time step of torch's GRU or Elman RNN (tanh or relu) for every (batch row, hidden unit).
//
// - GRU, gate blocks r, z, n: r = σ(W_ir x + b_ir + W_hr h + b_hr), z likewise,
//   n = tanh(W_in x + b_in + r·(W_hn h + b_hn)), h' = (1 − z)·n + z·h.
// - RNN: h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (or relu).
//
// The GRU's n gate multiplies the recurrent product alone by r, so an invocation computes its
// unit's input and recurrent products apart (bias first, then the inner indices in order, as the
// reference sums). The previous hidden state is the output's previous step (h0 at step 0), so one
// (B, T, H) output buffer is all the state the sequence needs; each step is one dispatch.
//
// Layouts: torch's weight_ih (G·H, I), weight_hh (G·H, H), bias_ih and bias_hh (G·H) with
// G = 3 (GRU) or 1 (RNN); x (B, T, I), h0 (B, H), output (B, T, H).

// The cell: VARIANT_GRU, VARIANT_RNN_TANH or VARIANT_RNN_RELU.
override variant: u32;

struct TorchStep {
  batch: u32,
  seqLen: u32,
  inputSize: u32,
  hiddenSize: u32,
  // The step this dispatch computes.
  time: u32,
}

@group(0) @binding(0) var<uniform> torchStep: TorchStep;
@group(0) @binding(1) var<storage, read> weightIh: array<f32>;
@group(0) @binding(2) var<storage, read> weightHh: array<f32>;
@group(0) @binding(3) var<storage, read> biasIh: array<f32>;
@group(0) @binding(4) var<storage, read> biasHh: array<f32>;
@group(0) @binding(5) var<storage, read> x: array<f32>;
@group(0) @binding(6) var<storage, read> h0: array<f32>;
@group(0) @binding(7) var<storage, read_write> output: array<f32>;

// Unit `unit` of row `row`'s hidden state before this step.
fn previous(row: u32, unit: u32) -> f32 {
  let s = torchStep;
  if (s.time == 0u) {
    return h0[row * s.hiddenSize + unit];
  }
  return output[(row * s.seqLen + s.time - 1u) * s.hiddenSize + unit];
}

// bias_ih[gateRow] + weight_ih[gateRow, ·] · x_t of `row`.
fn inputProduct(gateRow: u32, row: u32) -> f32 {
  let s = torchStep;
  let at = (row * s.seqLen + s.time) * s.inputSize;
  var total = biasIh[gateRow];
  for (var i = 0u; i < s.inputSize; i++) {
    total += weightIh[gateRow * s.inputSize + i] * x[at + i];
  }
  return total;
}

// bias_hh[gateRow] + weight_hh[gateRow, ·] · h of `row`.
fn hiddenProduct(gateRow: u32, row: u32) -> f32 {
  let H = torchStep.hiddenSize;
  var total = biasHh[gateRow];
  for (var j = 0u; j < H; j++) {
    total += weightHh[gateRow * H + j] * previous(row, j);
  }
  return total;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let H = torchStep.hiddenSize;
  if (id.x >= torchStep.batch * H) {
    return;
  }
  let row = id.x / H;
  let unit = id.x % H;
  var h: f32;
  if (variant == VARIANT_GRU) {
    let gates = sigmoid(vec4<f32>(
      inputProduct(unit, row) + hiddenProduct(unit, row),
      inputProduct(H + unit, row) + hiddenProduct(H + unit, row),
      0.0,
      0.0,
    ));
    let r = gates.x;
    let z = gates.y;
    let n = stableTanh(vec4<f32>(
      inputProduct(2u * H + unit, row) + r * hiddenProduct(2u * H + unit, row),
    )).x;
    h = (1.0 - z) * n + z * previous(row, unit);
  } else {
    let a = inputProduct(unit, row) + hiddenProduct(unit, row);
    if (variant == VARIANT_RNN_TANH) {
      h = stableTanh(vec4<f32>(a)).x;
    } else {
      h = max(a, 0.0);
    }
  }
  output[(row * torchStep.seqLen + torchStep.time) * H + unit] = h;
}
