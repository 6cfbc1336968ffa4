// Optimizer updates of every parameter at once, where the weights live, following PyTorch's
// single-tensor update rules: SGD with momentum, dampening, Nesterov and weight decay; Adam and
// AdamW with AMSGrad. The step-dependent scalars (bias corrections) come precomputed.

const NESTEROV = 1u;
// SGD: the momentum buffer starts as the first step's update, without dampening.
const FIRST_STEP = 2u;
// AdamW: weight decay is decoupled, p *= 1 − lr·weightDecay.
const DECOUPLED = 4u;
const AMSGRAD = 8u;

struct Optimizer {
  count: u32,
  flags: u32,
  lr: f32,
  weightDecay: f32,
  momentum: f32,
  dampening: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  // lr / (1 − β1^t) and sqrt(1 − β2^t).
  stepSize: f32,
  correction2Sqrt: f32,
}

@group(0) @binding(0) var<uniform> optimizer: Optimizer;
@group(0) @binding(1) var<storage, read_write> params: array<f32>;
@group(0) @binding(2) var<storage, read> grads: array<f32>;
// SGD: the momentum buffer; Adam: exp_avg.
@group(0) @binding(3) var<storage, read_write> firstMoment: array<f32>;
// Adam: exp_avg_sq and max_exp_avg_sq.
@group(0) @binding(4) var<storage, read_write> secondMoment: array<f32>;
@group(0) @binding(5) var<storage, read_write> maxSecondMoment: array<f32>;

fn has(flag: u32) -> bool {
  return (optimizer.flags & flag) != 0u;
}

@compute @workgroup_size(64)
fn sgd(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= optimizer.count) {
    return;
  }
  var d = grads[i];
  if (optimizer.weightDecay != 0.0) {
    d += optimizer.weightDecay * params[i];
  }
  if (optimizer.momentum != 0.0) {
    var buffer = d;
    if (!has(FIRST_STEP)) {
      buffer = firstMoment[i] * optimizer.momentum + (1.0 - optimizer.dampening) * d;
    }
    firstMoment[i] = buffer;
    d = select(buffer, d + optimizer.momentum * buffer, has(NESTEROV));
  }
  params[i] -= optimizer.lr * d;
}

@compute @workgroup_size(64)
fn adam(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= optimizer.count) {
    return;
  }
  var g = grads[i];
  var p = params[i];
  if (has(DECOUPLED)) {
    p *= 1.0 - optimizer.lr * optimizer.weightDecay;
  } else if (optimizer.weightDecay != 0.0) {
    g += optimizer.weightDecay * p;
  }
  let m = firstMoment[i] + (g - firstMoment[i]) * (1.0 - optimizer.beta1);
  let v = secondMoment[i] * optimizer.beta2 + (1.0 - optimizer.beta2) * g * g;
  firstMoment[i] = m;
  secondMoment[i] = v;
  var second = v;
  if (has(AMSGRAD)) {
    second = max(maxSecondMoment[i], v);
    maxSecondMoment[i] = second;
  }
  params[i] = p - optimizer.stepSize * m / (sqrt(second) / optimizer.correction2Sqrt + optimizer.eps);
}
