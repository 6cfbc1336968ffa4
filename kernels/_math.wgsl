// Activation functions shared by the kernels; kernels/generate.ts puts this file in front of each.

// σ(z) = 1 / (1 + e^-z): saturates to exactly 0 or 1 without NaN, as the reference does.
fn sigmoid(z: vec4<f32>) -> vec4<f32> {
  return 1.0 / (1.0 + exp(-z));
}

// tanh through e^(-2|z|) ≤ 1, which cannot overflow; a builtin tanh computed as
// (e^2z - 1) / (e^2z + 1) turns into NaN once e^2z overflows.
fn stableTanh(z: vec4<f32>) -> vec4<f32> {
  let e = exp(-2.0 * abs(z));
  return sign(z) * (1.0 - e) / (1.0 + e);
}

// The forget, input and output gates' activation: 0 for the sigmoid, else the slope of a hard
// sigmoid clip(slope·z + 0.5, 0, 1) (`hardSigmoidSlope` of src/contract/activation.ts: Keras' 0.2 or 1/6).
override gateSlope: f32 = 0.0;

fn gateActivation(z: vec4<f32>) -> vec4<f32> {
  if (gateSlope == 0.0) {
    return sigmoid(z);
  }
  return clamp(gateSlope * z + 0.5, vec4<f32>(0.0), vec4<f32>(1.0));
}

// d gateActivation / dz at z: σ·(1 − σ), or the hard sigmoid's slope inside its linear region and
// 0 where it clips.
fn gateDerivative(z: vec4<f32>) -> vec4<f32> {
  if (gateSlope == 0.0) {
    let s = sigmoid(z);
    return s * (1.0 - s);
  }
  let linear = gateSlope * z + 0.5;
  let inside = linear > vec4<f32>(0.0) & linear < vec4<f32>(1.0);
  return select(vec4<f32>(0.0), vec4<f32>(gateSlope), inside);
}
