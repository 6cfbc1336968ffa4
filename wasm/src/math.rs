//! Vectorised `exp`, `sigmoid` and `tanh` on `f32x4` vectors.
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
const EXP_LO: f32 = -87.336_55;
/// Above this `e^x` overflows `f32`.
const EXP_HI: f32 = 88.376_26;
/// 1.5·2^23: adding it rounds a float in (-2^22, 2^22) to an integer, held in the low mantissa bits.
const ROUNDING: f32 = 12_582_912.0;
/// Most vectors one `*_all` call takes.
const MAX_VECTORS: usize = 16;

/// `e^x` of every vector in place; saturates to `e^-87.3` / `e^88.4` outside that range.
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
    let mut shifted = [f32x4_splat(0.0); MAX_VECTORS];
    let mut r = [f32x4_splat(0.0); MAX_VECTORS];
    for i in 0..n {
        // x = n·ln2 + r with |r| ≤ ln2/2 (one constant: the rounding of n·ln2 is ≤ 4e-6 at
        // |x| = 88 and shrinks with |x|, where the sigmoid and tanh flatten out anyway).
        let v = f32x4_pmin(hi, f32x4_pmax(lo, x[i]));
        shifted[i] = madd(v, log2e, rounding);
        let n = f32x4_sub(shifted[i], rounding);
        r[i] = madd(n, minus_ln2, v);
    }
    // e^r ≈ 1 + r + r²·p(r), p of degree 3: a minimax fit of the relative error on |r| ≤ ln2/2,
    // 1.6e-7 evaluated in f32 (Cephes' degree 5 reaches 1e-7 with two more multiply-adds; these
    // three fewer operations made the forward 2–3% faster at the documentation's sizes).
    let mut p = [f32x4_splat(8.312_502e-3); MAX_VECTORS];
    for c in [4.189_011_8e-2, 1.666_711_4e-1, 4.999_923e-1] {
        let c = f32x4_splat(c);
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
        x[i] = f32x4_mul(y, i32x4_shl(i32x4_add(shifted[i], exponent_bias), 23));
    }
}

/// The logistic function `1 / (1 + e^-x)` of every vector in place; exactly 1.0 for large `x`,
/// as in PyTorch.
#[inline(always)]
pub fn sigmoid_all(values: &mut [v128]) {
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
#[inline(always)]
pub fn gates_all(z: &mut [[v128; 4]]) {
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

/// `tanh(x) = 2·sigmoid(2x) − 1` of every vector in place: ±1 exactly for large `|x|`.
#[inline(always)]
pub fn tanh_all(values: &mut [v128]) {
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
    #[cfg(not(relaxed_madd))]
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
