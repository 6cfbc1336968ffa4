//! Vectorised `exp`, `sigmoid` and `tanh` on `f32x4` vectors (the native AVX-512 build runs
//! `gates_all`, `sigmoid_all` and `tanh_all` on 512-bit vectors instead, `crate::math_wide`, with
//! bit-identical results; the `f32x4` versions are `*_x4`).
//!
//! Accuracy: `exp` is Cephes' single-precision scheme (range reduction to |r| ≤ ln2/2, then a
//! polynomial) cut to the fewest operations that stay near 1 ulp: one `ln 2` constant and a
//! degree-5 polynomial, 1.6e-7 relative; `sigmoid` and `tanh` derive from it with one IEEE
//! division, so both are within ~2e-7 absolute of the exact values everywhere, far inside the
//! golden tolerance (2e-5 over a whole sequence; the golden cases come out at ≤ 2e-6).
//!
//! Speed: V8 lowers wasm's NaN-propagating `f32x4.min/max` and `i32x4.trunc_sat_f32x4` to about
//! eight x64 instructions each, so the clamp uses the pseudo-min/max (`pmin/pmax`, one
//! `minps/maxps`) and the rounding uses the 1.5·2^23 trick. V8 also rebuilds a `v128.const` from
//! immediates at every use (three instructions), so the `*_all` functions run each step over
//! several vectors, building every constant once for all of them. In the relaxed-SIMD build the
//! multiply-adds of `exp` are fused ([`madd`]), which made the forward at the documentation's
//! sizes 10% faster; the cell update's few multiply-adds are left alone (no measurable gain).

use crate::simd::*;

/// Below this `e^x` would be subnormal; clamping keeps `2^n` a normal number.
pub(crate) const EXP_LO: f32 = -87.336_55;
/// Above this `e^x` overflows `f32`.
pub(crate) const EXP_HI: f32 = 88.376_26;
/// 1.5·2^23: adding it rounds a float in (-2^22, 2^22) to an integer, held in the low mantissa bits.
pub(crate) const ROUNDING: f32 = 12_582_912.0;
/// `p` of [`exp_all`]'s `e^r ≈ 1 + r + r²·p(r)`, highest degree first.
pub(crate) const EXP_POLYNOMIAL: [f32; 4] = [8.312_502e-3, 4.189_011_8e-2, 1.666_711_4e-1, 4.999_923e-1];
/// Most vectors one `*_all` call takes.
const MAX_VECTORS: usize = 16;

/// `e^x` of every vector in place; saturates to `e^-87.3` / `e^88.4` outside that range, and
/// keeps NaN (NaN in, NaN out, as in PyTorch). The clamp would turn NaN into `e^-87.3`, so NaN
/// lanes are set back to NaN at the end by or-ing in an all-ones mask: two cheap instructions. A
/// clamp that keeps NaN itself (`pmax(x, lo)`) is compiled by LLVM to `f32x4.max`/`min`, which V8
/// lowers to about eight instructions each.
#[inline(always)]
pub fn exp_all(x: &mut [v128]) {
    let n = x.len();
    assert!(n <= MAX_VECTORS);
    let (hi, lo) = (f32x4_splat(EXP_HI), f32x4_splat(EXP_LO));
    let (log2e, rounding) = (
        f32x4_splat(core::f32::consts::LOG2_E),
        f32x4_splat(ROUNDING),
    );
    let minus_ln2 = f32x4_splat(-core::f32::consts::LN_2);
    let mut nan = [f32x4_splat(0.0); MAX_VECTORS];
    let mut shifted = [f32x4_splat(0.0); MAX_VECTORS];
    let mut r = [f32x4_splat(0.0); MAX_VECTORS];
    for i in 0..n {
        // x = n·ln2 + r with |r| ≤ ln2/2 (one constant: the rounding of n·ln2 is ≤ 4e-6 at
        // |x| = 88 and shrinks with |x|, where the sigmoid and tanh flatten out anyway).
        nan[i] = f32x4_ne(x[i], x[i]);
        let v = f32x4_pmin(hi, f32x4_pmax(lo, x[i]));
        shifted[i] = madd(v, log2e, rounding);
        let n = f32x4_sub(shifted[i], rounding);
        r[i] = madd(n, minus_ln2, v);
    }
    // e^r ≈ 1 + r + r²·p(r), p of degree 3: a minimax fit of the relative error on |r| ≤ ln2/2,
    // 1.6e-7 evaluated in f32 (Cephes' degree 5 reaches 1e-7 with two more multiply-adds; these
    // three fewer operations made the forward 2–3% faster at the documentation's sizes).
    let mut p = [f32x4_splat(EXP_POLYNOMIAL[0]); MAX_VECTORS];
    for c in &EXP_POLYNOMIAL[1..] {
        let c = f32x4_splat(*c);
        for i in 0..n {
            p[i] = madd(p[i], r[i], c);
        }
    }
    let one = f32x4_splat(1.0);
    let exponent_bias = i32x4_splat(127);
    for i in 0..n {
        let y = f32x4_add(madd(f32x4_mul(p[i], r[i]), r[i], r[i]), one);
        // 2^n: n + 127 into the exponent field. The low bits of `shifted` are n (two's
        // complement); the shift drops everything above them. n ∈ [-126, 127] after the clamp.
        let e = f32x4_mul(y, i32x4_shl(i32x4_add(shifted[i], exponent_bias), 23));
        x[i] = v128_or(e, nan[i]);
    }
}

/// The logistic function `1 / (1 + e^-x)` of every vector in place; exactly 1.0 for large `x`,
/// as in PyTorch. The AVX-512 build computes it on 512-bit vectors (`crate::math_wide`), with
/// bit-identical results.
#[inline(always)]
pub fn sigmoid_all(values: &mut [v128]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    crate::math_wide::sigmoid_all(values);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    sigmoid_x4(values);
}

/// [`sigmoid_all`] on `f32x4` vectors.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx512f"), allow(dead_code))]
pub(crate) fn sigmoid_x4(values: &mut [v128]) {
    let one = f32x4_splat(1.0);
    let mut e = [f32x4_splat(0.0); MAX_VECTORS];
    let e = &mut e[..values.len()];
    for (e, v) in e.iter_mut().zip(values.iter()) {
        *e = f32x4_neg(*v);
    }
    exp_all(e);
    for (v, e) in values.iter_mut().zip(e.iter()) {
        *v = f32x4_div(one, f32x4_add(one, *e));
    }
}

/// The LSTM gate activations of every `[forget, input, output, candidate]` group in place: the
/// sigmoid of the first three and the `tanh` of the candidate, with the formulas of
/// [`sigmoid_all`] and [`tanh_all`] (so bit-identical results), but one [`exp_all`] over all of
/// them. An `exp` is a chain of about fifteen dependent instructions; with all of a tile's
/// pre-activations in one pass instead of the sigmoids and the `tanh` in turn, more chains overlap
/// (1.5% faster forward at the documentation's sizes; a pass per tile row measured no better).
/// The AVX-512 build computes each group as one 512-bit vector (`crate::math_wide`), with
/// bit-identical results.
#[inline(always)]
pub fn gates_all(z: &mut [[v128; 4]], gate: Gate) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    crate::math_wide::gates_all(z, gate);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    gates_x4(z, gate);
}

/// [`gates_all`] on `f32x4` vectors.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx512f"), allow(dead_code))]
pub(crate) fn gates_x4(z: &mut [[v128; 4]], gate: Gate) {
    if let Gate::Hard(slope) = gate {
        return hard_gates_all(z, slope);
    }
    let mut e = [f32x4_splat(0.0); MAX_VECTORS];
    let e = &mut e[..4 * z.len()];
    let minus_two = f32x4_splat(-2.0);
    for (e, z) in e.chunks_exact_mut(4).zip(z.iter()) {
        for gate in 0..3 {
            e[gate] = f32x4_neg(z[gate]);
        }
        e[3] = f32x4_mul(z[3], minus_two);
    }
    exp_all(e);
    let (one, two) = (f32x4_splat(1.0), f32x4_splat(2.0));
    for (z, e) in z.iter_mut().zip(e.chunks_exact(4)) {
        for gate in 0..3 {
            z[gate] = f32x4_div(one, f32x4_add(one, e[gate]));
        }
        z[3] = f32x4_sub(f32x4_div(two, f32x4_add(one, e[3])), one);
    }
}

/// The activation of the forget, input and output gates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gate {
    /// The logistic sigmoid (torch, tf.keras 2).
    Sigmoid,
    /// `clip(slope·x + 0.5, 0, 1)`: Keras 1/2's hard sigmoid (slope 0.2) or Keras 3's (1/6).
    Hard(f32),
}

impl Gate {
    /// The gate of a kernel's `gate_slope` argument: 0 for the sigmoid, else a hard sigmoid's
    /// slope (`hardSigmoidSlope` in `src/contract/activation.ts`).
    pub fn from_slope(slope: f32) -> Gate {
        assert!(slope >= 0.0, "gate slope must be 0 (sigmoid) or positive");
        if slope == 0.0 {
            Gate::Sigmoid
        } else {
            Gate::Hard(slope)
        }
    }

    /// d gate / d pre-activation from the activated gate `a`: `a·(1 − a)`, or the hard sigmoid's
    /// slope where `0 < a < 1` and 0 where it is clipped (NaN stays NaN).
    #[inline(always)]
    pub fn derivative(self, a: v128) -> v128 {
        let (zero, one) = (f32x4_splat(0.0), f32x4_splat(1.0));
        match self {
            Gate::Sigmoid => f32x4_mul(a, f32x4_sub(one, a)),
            Gate::Hard(slope) => {
                let linear = v128_and(f32x4_gt(a, zero), f32x4_gt(one, a));
                // All ones is a NaN: a NaN gate keeps its NaN gradient, as the sigmoid's does.
                v128_or(v128_and(f32x4_splat(slope), linear), f32x4_ne(a, a))
            }
        }
    }
}

/// [`gates_all`] with a hard sigmoid of slope `slope` on the gates: `pmax(x, 0)` then
/// `pmin(x, 1)` return their first operand when it is NaN, so NaN stays NaN.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx512f"), allow(dead_code))]
fn hard_gates_all(z: &mut [[v128; 4]], slope: f32) {
    let mut candidates = [f32x4_splat(0.0); MAX_VECTORS];
    let candidates = &mut candidates[..z.len()];
    for (c, z) in candidates.iter_mut().zip(z.iter()) {
        *c = z[3];
    }
    tanh_x4(candidates);
    let (zero, half, one, slope) = (
        f32x4_splat(0.0),
        f32x4_splat(0.5),
        f32x4_splat(1.0),
        f32x4_splat(slope),
    );
    for (z, c) in z.iter_mut().zip(candidates.iter()) {
        for gate in 0..3 {
            let linear = f32x4_add(f32x4_mul(z[gate], slope), half);
            z[gate] = f32x4_pmin(f32x4_pmax(linear, zero), one);
        }
        z[3] = *c;
    }
}

/// `tanh(x) = 2·sigmoid(2x) − 1` of every vector in place: ±1 exactly for large `|x|`. The
/// AVX-512 build computes it on 512-bit vectors, four of these to one (`crate::math_wide`), with
/// bit-identical results.
#[inline(always)]
pub fn tanh_all(values: &mut [v128]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    crate::math_wide::tanh_all(values);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    tanh_x4(values);
}

/// [`tanh_all`] on `f32x4` vectors.
#[inline(always)]
#[cfg_attr(all(target_arch = "x86_64", target_feature = "avx512f"), allow(dead_code))]
pub(crate) fn tanh_x4(values: &mut [v128]) {
    let one = f32x4_splat(1.0);
    let mut e = [f32x4_splat(0.0); MAX_VECTORS];
    let e = &mut e[..values.len()];
    let minus_two = f32x4_splat(-2.0);
    for (e, v) in e.iter_mut().zip(values.iter()) {
        *e = f32x4_mul(*v, minus_two);
    }
    exp_all(e);
    let two = f32x4_splat(2.0);
    for (v, e) in values.iter_mut().zip(e.iter()) {
        *v = f32x4_sub(f32x4_div(two, f32x4_add(one, *e)), one);
    }
}

/// `a · b + c`: the multiply-adds of the GEMM micro-kernel and of [`exp_all`].
///
/// Built with `--cfg relaxed_madd` (the second of the two modules `wasm/build.ts` ships), it calls
/// [`relaxed_madd_marker`], and the build replaces each call by `f32x4.relaxed_madd`, which Rust
/// 1.63 cannot emit. That instruction may fuse the multiply and the add (one rounding, and one x64
/// `vfmadd` instead of `mulps` + `addps`), so that module's results differ in the last bits.
#[inline(always)]
pub fn madd(a: v128, b: v128, c: v128) -> v128 {
    // Native builds with a fused multiply-add use it (`crate::simd::fused_madd`).
    #[cfg(any(
        all(target_arch = "x86_64", target_feature = "fma"),
        target_arch = "aarch64"
    ))]
    return fused_madd(a, b, c);
    #[cfg(all(
        not(relaxed_madd),
        not(all(target_arch = "x86_64", target_feature = "fma")),
        not(target_arch = "aarch64")
    ))]
    return f32x4_add(c, f32x4_mul(a, b));
    #[cfg(relaxed_madd)]
    return relaxed_madd_marker(a, b, c);
}

/// Stands for `f32x4.relaxed_madd(a, b, c)`. Exported and never inlined, so that `wasm/build.ts`
/// finds the function by its export and each call site as a `call` with the operands already in
/// `relaxed_madd`'s order; it then replaces the calls and deletes the function and its export. The
/// body is the unfused equivalent, should a call ever survive.
#[cfg(relaxed_madd)]
#[no_mangle]
#[inline(never)]
// v128 is only passed between wasm functions, never through a C ABI.
#[allow(improper_ctypes_definitions)]
pub extern "C" fn relaxed_madd_marker(a: v128, b: v128, c: v128) -> v128 {
    f32x4_add(f32x4_mul(a, b), c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `f32` step of 1/64 in `[lo, hi]`, four to a vector.
    fn sweep(lo: f32, hi: f32) -> Vec<v128> {
        let values: Vec<f32> = (0..)
            .map(|i| lo + i as f32 / 64.0)
            .take_while(|&x| x <= hi)
            .collect();
        values
            .chunks(4)
            .map(|c| {
                let mut lanes = [c[0]; 4];
                lanes[..c.len()].copy_from_slice(c);
                load(&lanes)
            })
            .collect()
    }

    fn load(lanes: &[f32; 4]) -> v128 {
        unsafe { crate::gemm::load(lanes.as_ptr()) }
    }

    /// Applies `f` to the vectors in groups of [`MAX_VECTORS`]; returns (input, output) lanes.
    fn apply(inputs: &[v128], f: fn(&mut [v128])) -> Vec<(f32, f32)> {
        let mut pairs = Vec::new();
        for group in inputs.chunks(MAX_VECTORS) {
            let mut values = group.to_vec();
            f(&mut values);
            for (x, y) in group.iter().zip(&values) {
                pairs.extend(x.to_f32s().into_iter().zip(y.to_f32s()));
            }
        }
        pairs
    }

    #[test]
    fn exp_is_within_2e7_plus_x_ulp_relative_of_f64() {
        // 1.6e-7 from the polynomial, plus the rounding of the product n·ln2 to f32, half an ulp
        // of |x| (|x|·2^-24: 4e-6 at |x| = 88).
        for (x, y) in apply(&sweep(-87.0, 88.0), exp_all) {
            let exact = (x as f64).exp();
            let error = ((y as f64 - exact) / exact).abs();
            let bound = 2e-7 + x.abs() as f64 * (-24f64).exp2();
            assert!(
                error < bound,
                "exp({x}) = {y}, exact {exact}, relative error {error}"
            );
        }
    }

    #[test]
    fn sigmoid_and_tanh_are_within_3e7_of_f64() {
        let inputs = sweep(-30.0, 30.0);
        for (x, y) in apply(&inputs, sigmoid_all) {
            let exact = 1.0 / (1.0 + (-x as f64).exp());
            assert!(
                (y as f64 - exact).abs() < 3e-7,
                "sigmoid({x}) = {y}, exact {exact}"
            );
        }
        for (x, y) in apply(&inputs, tanh_all) {
            let exact = (x as f64).tanh();
            assert!(
                (y as f64 - exact).abs() < 3e-7,
                "tanh({x}) = {y}, exact {exact}"
            );
            // Against std's f32 tanh too: the two agree to a few ulps of 1.
            assert!(
                (y - x.tanh()).abs() < 3e-7,
                "tanh({x}) = {y}, std {}",
                x.tanh()
            );
        }
    }

    #[test]
    fn saturation_is_exact() {
        let [big, small] = [f32x4_splat(100.0), f32x4_splat(-100.0)];
        let mut s = [big, small];
        sigmoid_all(&mut s);
        assert_eq!(s[0].to_f32s(), [1.0; 4]);
        // e^100 saturates at e^88.4, so the smallest sigmoid is 4e-39 rather than 0.
        assert!(s[1].to_f32s().iter().all(|&y| y > 0.0 && y < 1e-38));
        let mut t = [big, small, f32x4_splat(f32::INFINITY)];
        tanh_all(&mut t);
        assert_eq!(
            [t[0].to_f32s(), t[1].to_f32s(), t[2].to_f32s()],
            [[1.0; 4], [-1.0; 4], [1.0; 4]]
        );
    }

    #[test]
    fn nan_stays_nan_in_its_lane_only() {
        let x = load(&[f32::NAN, 0.0, -1.0, f32::NAN]);
        for f in [exp_all, sigmoid_all, tanh_all] {
            let mut v = [x];
            f(&mut v);
            let lanes = v[0].to_f32s();
            assert!(lanes[0].is_nan() && lanes[3].is_nan(), "{lanes:?}");
            assert!(lanes[1].is_finite() && lanes[2].is_finite(), "{lanes:?}");
        }
        let mut z = [[x, x, x, x]];
        gates_all(&mut z, Gate::Sigmoid);
        assert!(z[0]
            .iter()
            .all(|g| g.to_f32s()[0].is_nan() && g.to_f32s()[1].is_finite()));
    }

    #[test]
    fn hard_gates_clip_keep_nan_and_differentiate() {
        let x = load(&[f32::NAN, 1.0, -3.0, 3.0]);
        for slope in [0.2f32, 1.0 / 6.0] {
            let mut z = [[x, x, x, x]];
            gates_all(&mut z, Gate::Hard(slope));
            let mut t = [x];
            tanh_all(&mut t);
            assert_eq!(z[0][3].to_f32s()[1..], t[0].to_f32s()[1..]);
            for gate in 0..3 {
                let lanes = z[0][gate].to_f32s();
                assert!(lanes[0].is_nan(), "{lanes:?}");
                let expected = [1.0, -3.0, 3.0].map(|v: f32| (slope * v + 0.5).clamp(0.0, 1.0));
                assert_eq!(lanes[1..], expected, "slope {slope}");
                let d = Gate::Hard(slope).derivative(z[0][gate]).to_f32s();
                assert!(d[0].is_nan(), "{d:?}");
                let inside = |a: f32| if a > 0.0 && a < 1.0 { slope } else { 0.0 };
                assert_eq!(d[1..], expected.map(inside), "slope {slope}");
            }
        }
        assert_eq!(Gate::from_slope(0.0), Gate::Sigmoid);
        assert_eq!(Gate::from_slope(0.2), Gate::Hard(0.2));
    }

    #[test]
    fn gates_match_sigmoid_and_tanh_bit_for_bit() {
        let inputs = sweep(-10.0, 10.0);
        for group in inputs.chunks_exact(4).take(64) {
            let mut z = [[group[0], group[1], group[2], group[3]]];
            gates_all(&mut z, Gate::Sigmoid);
            let mut s = [group[0], group[1], group[2]];
            sigmoid_all(&mut s);
            let mut t = [group[3]];
            tanh_all(&mut t);
            assert_eq!(z[0], [s[0], s[1], s[2], t[0]]);
        }
    }
}
