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
