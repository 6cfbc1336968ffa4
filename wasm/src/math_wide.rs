//! [`crate::math`]'s activations on 512-bit vectors, for the native AVX-512 build: the same
//! operations in the same order on sixteen lanes at once, so every lane's result is bit-identical
//! to the `f32x4` functions' (the tests check it, NaN, infinities and saturation included). Three
//! products are other operations with the same results, because the multiply-adds of the product
//! beside them keep the multiplier units busy: the sign flip for the product by −1, `x + x` for
//! the product by 2, and the exponent's add for the product by `2^n` (2 % faster forwards).
//!
//! Why: one tile row's pre-activations `[forget, input, output, candidate]` (four units each) are
//! exactly one 512-bit vector, so the three sigmoids and the `tanh` of a row are one [`exp`] and
//! one division instead of four of each; and the `tanh` of up to four cell vectors is one. On the
//! `f32x4` code the cell update was about half of the forward's time (`docs/design/native.md`).

use crate::math::{Gate, EXP_HI, EXP_LO, EXP_POLYNOMIAL, ROUNDING};
use crate::simd::{f32x4_splat, v128};
use core::arch::x86_64::*;

/// Lanes of the candidate in a tile row `[forget, input, output, candidate]`.
const CANDIDATE: __mmask16 = 0xF000;

/// `e^x` on sixteen lanes: [`crate::math::exp_all`] lane for lane (the clamp with the same
/// operand order, the fused multiply-adds of the FMA builds, the polynomial, the `2^n` trick, and
/// NaN set to all ones). The product by `2^n` is `n` added to the exponent field: the same bits
/// wherever the result is a normal number. Below that (`x` within ln 2 of the lower clamp) both
/// are below `2^-125`: the logistic functions add the result to 1, which they leave as it is, and
/// the lane softmax's arguments are at least −1.
#[inline(always)]
pub(crate) fn exp(x: __m512) -> __m512 {
    // SAFETY (this function and the others below): the build enables AVX-512F.
    unsafe {
        let nan = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(x, x);
        let rounding = _mm512_set1_ps(ROUNDING);
        // `pmin(hi, pmax(lo, x))`: `maxps(x, lo)` gives `lo` for NaN, as `f32x4_pmax` does.
        let v = _mm512_min_ps(
            _mm512_max_ps(x, _mm512_set1_ps(EXP_LO)),
            _mm512_set1_ps(EXP_HI),
        );
        let shifted = _mm512_fmadd_ps(v, _mm512_set1_ps(core::f32::consts::LOG2_E), rounding);
        let n = _mm512_sub_ps(shifted, rounding);
        let r = _mm512_fmadd_ps(n, _mm512_set1_ps(-core::f32::consts::LN_2), v);
        let mut p = _mm512_set1_ps(EXP_POLYNOMIAL[0]);
        for &c in &EXP_POLYNOMIAL[1..] {
            p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
        }
        let y = _mm512_add_ps(
            _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r),
            _mm512_set1_ps(1.0),
        );
        let e = _mm512_castsi512_ps(_mm512_add_epi32(
            _mm512_castps_si512(y),
            _mm512_slli_epi32::<23>(_mm512_castps_si512(shifted)),
        ));
        _mm512_mask_mov_ps(e, nan, _mm512_castsi512_ps(_mm512_set1_epi32(-1)))
    }
}

/// The tile row `[σ f, σ i, σ o, tanh g]` of the pre-activations `z`: [`crate::math::gates_all`]
/// on one row. `e^(z·[-1, -1, -1, -2])` (a product by −1 is the negation, NaN aside, and a NaN
/// leaves `exp` as all ones either way; the product by 2 is `z + z`), then `[1, 1, 1, 2] / (1 + e)`
/// minus 1 on the candidate.
#[inline(always)]
fn gates(z: __m512, gate: Gate) -> __m512 {
    unsafe {
        let one = _mm512_set1_ps(1.0);
        let two = _mm512_set1_ps(2.0);
        let numerator = _mm512_mask_mov_ps(one, CANDIDATE, two);
        let doubled = _mm512_mask_add_ps(z, CANDIDATE, z, z);
        let e = exp(negate(doubled));
        let q = _mm512_div_ps(numerator, _mm512_add_ps(one, e));
        let activated = _mm512_mask_sub_ps(q, CANDIDATE, q, one);
        match gate {
            Gate::Sigmoid => activated,
            Gate::Hard(slope) => _mm512_mask_mov_ps(hard_sigmoid(z, slope), CANDIDATE, activated),
        }
    }
}

/// `pmin(pmax(slope·x + 0.5, 0), 1)` of sixteen lanes, unfused as in `hard_gates_all`;
/// `maxps(0, x)` and `minps(1, x)` keep a NaN `x`.
#[inline(always)]
fn hard_sigmoid(x: __m512, slope: f32) -> __m512 {
    unsafe {
        let linear = _mm512_add_ps(_mm512_mul_ps(x, _mm512_set1_ps(slope)), _mm512_set1_ps(0.5));
        _mm512_min_ps(
            _mm512_set1_ps(1.0),
            _mm512_max_ps(_mm512_setzero_ps(), linear),
        )
    }
}

/// The forget, input and output gates' activation `gate` of sixteen lanes, bit for bit as
/// [`gates`] gives them: the logistic function (the negation as a sign flip, where [`gates`]
/// multiplies by −1: they differ only on a NaN, which `exp` turns into all ones either way) or
/// the hard sigmoid.
#[inline(always)]
pub(crate) fn gate_activation(x: __m512, gate: Gate) -> __m512 {
    match gate {
        Gate::Sigmoid => sigmoid(x),
        Gate::Hard(slope) => hard_sigmoid(x, slope),
    }
}

/// `tanh` of sixteen lanes: `2 / (1 + e^(-2x)) − 1`, as [`crate::math::tanh_all`] (and as
/// [`gates`] gives the candidate).
#[inline(always)]
pub(crate) fn tanh(x: __m512) -> __m512 {
    unsafe {
        let one = _mm512_set1_ps(1.0);
        let e = exp(negate(_mm512_add_ps(x, x)));
        _mm512_sub_ps(_mm512_div_ps(_mm512_set1_ps(2.0), _mm512_add_ps(one, e)), one)
    }
}

/// The logistic function of sixteen lanes: `1 / (1 + e^-x)`, as [`crate::math::sigmoid_all`]
/// (the negation as a sign flip, as `f32x4_neg`).
#[inline(always)]
fn sigmoid(x: __m512) -> __m512 {
    unsafe {
        let one = _mm512_set1_ps(1.0);
        _mm512_div_ps(one, _mm512_add_ps(one, exp(negate(x))))
    }
}

/// `−x` as a sign flip (`f32x4_neg`), which leaves the multipliers to the product.
#[inline(always)]
fn negate(x: __m512) -> __m512 {
    unsafe {
        _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(x),
            _mm512_set1_epi32(i32::MIN),
        ))
    }
}

/// Four `f32x4` vectors as one 512-bit vector, the first in the low lanes. By lane inserts, so
/// that vectors in registers stay there (a copy through memory, as a `transmute` of the array
/// compiles to, stalls on store forwarding: four narrow stores read back by one wide load).
#[inline(always)]
pub(crate) fn join(v: [v128; 4]) -> __m512 {
    unsafe {
        let low = _mm512_castps128_ps512(v[0].0);
        let low = _mm512_insertf32x4::<1>(low, v[1].0);
        let high = _mm512_insertf32x4::<2>(low, v[2].0);
        _mm512_insertf32x4::<3>(high, v[3].0)
    }
}

/// The four `f32x4` vectors of a 512-bit vector.
#[inline(always)]
pub(crate) fn split(v: __m512) -> [v128; 4] {
    unsafe {
        [
            v128(_mm512_castps512_ps128(v)),
            v128(_mm512_extractf32x4_ps::<1>(v)),
            v128(_mm512_extractf32x4_ps::<2>(v)),
            v128(_mm512_extractf32x4_ps::<3>(v)),
        ]
    }
}

/// [`crate::math::gates_all`]: every group `[forget, input, output, candidate]` is one 512-bit
/// vector.
#[inline(always)]
pub fn gates_all(z: &mut [[v128; 4]], gate: Gate) {
    for row in z.iter_mut() {
        *row = split(gates(join(*row), gate));
    }
}

/// `f` applied to `values` in 512-bit vectors, four at a time (the last group padded with zeros).
#[inline(always)]
fn by_fours(values: &mut [v128], f: fn(__m512) -> __m512) {
    let mut first = 0;
    while first < values.len() {
        let count = (values.len() - first).min(4);
        let mut lanes = [f32x4_splat(0.0); 4];
        for i in 0..count {
            lanes[i] = values[first + i];
        }
        let result = split(f(join(lanes)));
        for i in 0..count {
            values[first + i] = result[i];
        }
        first += 4;
    }
}

/// `f32x4_max` on sixteen lanes: the larger, `+0` over `−0`, NaN as all ones.
#[inline(always)]
pub(crate) fn max(a: __m512, b: __m512) -> __m512 {
    unsafe {
        let both = _mm512_and_si512(
            _mm512_castps_si512(_mm512_max_ps(a, b)),
            _mm512_castps_si512(_mm512_max_ps(b, a)),
        );
        let unordered = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, b);
        _mm512_mask_mov_ps(
            _mm512_castsi512_ps(both),
            unordered,
            _mm512_castsi512_ps(_mm512_set1_epi32(-1)),
        )
    }
}

/// [`crate::math::tanh_all`], four vectors to a 512-bit one.
#[inline(always)]
pub fn tanh_all(values: &mut [v128]) {
    by_fours(values, tanh)
}

/// [`crate::math::sigmoid_all`], four vectors to a 512-bit one.
#[inline(always)]
pub fn sigmoid_all(values: &mut [v128]) {
    by_fours(values, sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{gates_x4, sigmoid_x4, tanh_x4};

    /// Inputs that exercise every branch: a sweep over the active range, the clamp's edges and
    /// beyond, ±0, ±inf, NaN (quiet and with a payload), and subnormals.
    fn inputs() -> Vec<f32> {
        let mut values: Vec<f32> = (-2400..=2400).map(|i| i as f32 / 64.0).collect();
        values.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7fc0_1234),
            f32::from_bits(0xffa0_0001),
            f32::MIN_POSITIVE / 8.0,
            -f32::MIN_POSITIVE / 8.0,
            f32::MAX,
            f32::MIN,
            EXP_HI,
            EXP_LO,
            44.0,
            -44.0,
            43.7,
            -43.7,
            87.4,
            -87.4,
            88.0,
            -88.0,
            1e10,
            -1e10,
        ]);
        // A multiple of 16, so every lane of every vector sees every input somewhere.
        while values.len() % 16 != 0 {
            values.push(values.len() as f32 * 0.37 - 20.0);
        }
        values
    }

    fn vectors(values: &[f32]) -> Vec<v128> {
        values
            .chunks_exact(4)
            .map(|c| unsafe { crate::gemm::load(c.as_ptr()) })
            .collect()
    }

    fn bits(v: &[v128]) -> Vec<u32> {
        v.iter()
            .flat_map(|x| x.to_f32s().map(f32::to_bits))
            .collect()
    }

    /// Each input at each of the sixteen lanes: the values rotated by one lane per round.
    fn rotations(values: &[f32]) -> impl Iterator<Item = Vec<f32>> + '_ {
        (0..16).map(move |shift| {
            let mut rotated = values.to_vec();
            rotated.rotate_left(shift);
            rotated
        })
    }

    #[test]
    fn tanh_and_sigmoid_match_the_f32x4_functions_bit_for_bit() {
        for values in rotations(&inputs()) {
            // Groups of 1 to 5 vectors: whole and padded 512-bit vectors.
            for group in vectors(&values).chunks(5) {
                for len in 1..=group.len() {
                    let (mut wide, mut narrow) = (group[..len].to_vec(), group[..len].to_vec());
                    tanh_all(&mut wide);
                    tanh_x4(&mut narrow);
                    assert_eq!(bits(&wide), bits(&narrow), "tanh of {:?}", &group[..len]);
                    let (mut wide, mut narrow) = (group[..len].to_vec(), group[..len].to_vec());
                    sigmoid_all(&mut wide);
                    sigmoid_x4(&mut narrow);
                    assert_eq!(bits(&wide), bits(&narrow), "sigmoid of {:?}", &group[..len]);
                }
            }
        }
    }

    #[test]
    fn exp_matches_the_f32x4_function_bit_for_bit_where_the_result_is_normal() {
        // Every input whose exact result is normal (e^x ≥ 2^-126 from x ≈ −87.34 up), NaN
        // included; the clamp's edges above that.
        let normal = |x: &f32| x.is_nan() || *x > -87.0;
        for values in rotations(&inputs()) {
            let values: Vec<f32> = values.into_iter().filter(normal).collect();
            let values = &values[..values.len() / 4 * 4];
            let (mut wide, mut narrow) = (vectors(values), vectors(values));
            by_fours(&mut wide, exp);
            for group in narrow.chunks_mut(4) {
                crate::math::exp_all(group);
            }
            assert_eq!(bits(&wide), bits(&narrow));
        }
    }

    #[test]
    fn gates_match_the_f32x4_functions_bit_for_bit() {
        for gate in [Gate::Sigmoid, Gate::Hard(0.2), Gate::Hard(1.0 / 6.0)] {
            for values in rotations(&inputs()) {
                let rows: Vec<[v128; 4]> = vectors(&values)
                    .chunks_exact(4)
                    .map(|c| [c[0], c[1], c[2], c[3]])
                    .collect();
                for tile in rows.chunks(4) {
                    let (mut wide, mut narrow) = (tile.to_vec(), tile.to_vec());
                    gates_all(&mut wide, gate);
                    gates_x4(&mut narrow, gate);
                    let flat = |z: &[[v128; 4]]| bits(&z.concat());
                    assert_eq!(flat(&wide), flat(&narrow), "{gate:?} of {tile:?}");
                }
            }
        }
    }
}
