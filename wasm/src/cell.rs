//! The cell equations of each variant, applied to one lane of a tile's blocks of four hidden
//! units while their pre-activations are still in registers.
//!
//! A lane's pre-activations arrive as `[forget, input, output, candidate]`, one `f32x4` each, for
//! every (batch row, block) of the tile at once, so the activations share their constants. The gate
//! kernel visits lanes `0, 1, …, k-1` in order and folds each into the hidden state with
//! [`Variant::reduce`], so lane 0 is summed (or selected) first, as in the reference.

use crate::math::{gates_all, Gate};
use crate::simd::*;

/// Most (batch row, block) pairs in one tile: 4 rows × 2 blocks in the native AVX-512 build's
/// forward (`crate::sequence`), four elsewhere.
pub const MAX_TILE: usize = if cfg!(all(target_arch = "x86_64", target_feature = "avx512f")) {
    8
} else {
    4
};

/// `$function::<V>(args…)` with `V` the [`Variant`] that runs cell kind `$kind` (a
/// [`crate::variants::FamilyKind`]; an LSTM is an ArrayLSTM with one lane): the one place that
/// maps a boundary's runtime kind to the generic kernels. The `match` is exhaustive over the LSTM
/// family alone: a variant with cell states added to `src/variants.ts` does not compile until it
/// is given a kernel here (GRU and RNN are `crate::torch_cell`'s; the constructors convert with
/// [`crate::variants::Kind::family`] first).
macro_rules! with_variant {
    ($kind:expr, $function:ident($($arg:expr),* $(,)?)) => {
        match $kind {
            $crate::variants::FamilyKind::Lstm | $crate::variants::FamilyKind::Array => {
                $function::<$crate::cell::Array>($($arg),*)
            }
            $crate::variants::FamilyKind::Attention => {
                $function::<$crate::cell::Attention>($($arg),*)
            }
            $crate::variants::FamilyKind::Stochastic => {
                $function::<$crate::cell::Stochastic>($($arg),*)
            }
        }
    };
}
pub(crate) use with_variant;

/// Whether variant `V` has the LRP relevance pass ([`Variant::EXPLAINS`]), for [`with_variant`].
pub fn explains<V: Variant>() -> bool {
    V::EXPLAINS
}

/// One cell variant's pieces: the per-lane update and lane reduction of the forward (inference
/// and training), the forget path of the backward, and whether the LRP pass explains it. The
/// kernels are generic over it, so each variant's loops are compiled on their own (no dynamic
/// dispatch inside them).
pub trait Variant {
    /// Whether the lane update reads the attention weights `s` (and the backward goes back
    /// through them).
    const ATTENTION: bool;
    /// Whether [`Variant::reduce`] uses `best`; the others skip its loads and stores (and the
    /// backward routes the readout's gradient to the chosen lane only).
    const ARGMAX: bool;
    /// Whether `crate::lrp`'s relevance pass explains the cell (with one lane: `k = 1`).
    const EXPLAINS: bool;

    /// Updates the cells `c` of one lane from their pre-activations `z` (and attention weights
    /// `s`), with `gate` on the forget, input and output gates, and returns each one's output
    /// gate in `output_gate`.
    #[inline(always)]
    fn lane(z: &[[v128; 4]], gate: Gate, c: &mut [v128], s: &[v128], output_gate: &mut [v128]) {
        let a = activate(z, gate);
        Self::update(&a[..z.len()], c, s, output_gate)
    }

    /// [`Variant::lane`] from the activated gates `a` (`[σ f, σ i, σ o, tanh g]`, unscaled, σ the gate activation), which
    /// the training forward keeps for the backward.
    fn update(a: &[[v128; 4]], c: &mut [v128], s: &[v128], output_gate: &mut [v128]);

    /// Folds lane `lane` (its output gate and `tanh` of its new cell) into the hidden state `h`;
    /// `best` is scratch that lives across the lanes of one block.
    fn reduce(lane: usize, output_gate: v128, tanh_c: v128, h: &mut v128, best: &mut v128);

    /// The backward of the forget path of [`Variant::update`] for a lane of attention weight
    /// `scale` (1 without attention): the factor `c_{t−1}` is kept by (its `dc_{t−1}` is `dc_t`
    /// times it), and dLoss/d`f` from `d_keep` = dLoss/d(factor) (unscaled).
    fn forget_backward(forget: v128, scale: v128, d_keep: v128) -> (v128, v128);
}

/// `gate` of the forget, input and output gates and the `tanh` of the candidate, for all.
#[inline(always)]
fn activate(z: &[[v128; 4]], gate: Gate) -> [[v128; 4]; MAX_TILE] {
    let mut a = [[f32x4_splat(0.0); 4]; MAX_TILE];
    a[..z.len()].copy_from_slice(z);
    gates_all(&mut a[..z.len()], gate);
    a
}

/// `LSTM` and `ArrayLSTM`: `c_j = f_j·c_j + i_j·g_j`, `h = Σ_j o_j·tanh(c_j)`.
pub struct Array;

impl Variant for Array {
    const ATTENTION: bool = false;
    const ARGMAX: bool = false;
    const EXPLAINS: bool = true;

    #[inline(always)]
    fn update(a: &[[v128; 4]], c: &mut [v128], _s: &[v128], output_gate: &mut [v128]) {
        for i in 0..a.len() {
            let [forget_gate, input_gate, out, candidate] = a[i];
            c[i] = f32x4_add(
                f32x4_mul(forget_gate, c[i]),
                f32x4_mul(input_gate, candidate),
            );
            output_gate[i] = out;
        }
    }

    #[inline(always)]
    fn reduce(_lane: usize, output_gate: v128, tanh_c: v128, h: &mut v128, _best: &mut v128) {
        *h = f32x4_add(*h, f32x4_mul(output_gate, tanh_c));
    }

    #[inline(always)]
    fn forget_backward(forget: v128, _scale: v128, d_keep: v128) -> (v128, v128) {
        (forget, d_keep)
    }
}

/// `AttentionArrayLSTM`: gates scaled by the lane's attention weight `s_j`, and the forget gate
/// inverted: `c_j = (1 − s_j·f_j)·c_j + s_j·i_j·g_j`, `h = Σ_j s_j·o_j·tanh(c_j)`.
pub struct Attention;

impl Variant for Attention {
    const ATTENTION: bool = true;
    const ARGMAX: bool = false;
    const EXPLAINS: bool = false;

    #[inline(always)]
    fn update(a: &[[v128; 4]], c: &mut [v128], s: &[v128], output_gate: &mut [v128]) {
        for i in 0..a.len() {
            let [forget_gate, input_gate, out, candidate] = a[i];
            let forget_gate = f32x4_mul(forget_gate, s[i]);
            let input_gate = f32x4_mul(input_gate, s[i]);
            let keep = f32x4_sub(f32x4_splat(1.0), forget_gate);
            c[i] = f32x4_add(f32x4_mul(c[i], keep), f32x4_mul(input_gate, candidate));
            output_gate[i] = f32x4_mul(out, s[i]);
        }
    }

    #[inline(always)]
    fn reduce(lane: usize, output_gate: v128, tanh_c: v128, h: &mut v128, best: &mut v128) {
        Array::reduce(lane, output_gate, tanh_c, h, best)
    }

    /// The inverted forget gate: `keep = 1 − s·f`, so dLoss/d`f` is `−d_keep` (scaled later).
    #[inline(always)]
    fn forget_backward(forget: v128, scale: v128, d_keep: v128) -> (v128, v128) {
        (
            f32x4_sub(f32x4_splat(1.0), f32x4_mul(scale, forget)),
            f32x4_neg(d_keep),
        )
    }
}

/// `StochasticArrayLSTM`: cells as `ArrayLSTM`; per unit, the lane with the largest output gate
/// gives `h = o_j·tanh(c_j)` (argmax of `softmax(o)` is argmax of `o`; the first lane wins ties).
pub struct Stochastic;

impl Variant for Stochastic {
    const ATTENTION: bool = false;
    const ARGMAX: bool = true;
    const EXPLAINS: bool = false;

    #[inline(always)]
    fn update(a: &[[v128; 4]], c: &mut [v128], s: &[v128], output_gate: &mut [v128]) {
        Array::update(a, c, s, output_gate)
    }

    #[inline(always)]
    fn reduce(lane: usize, output_gate: v128, tanh_c: v128, h: &mut v128, best: &mut v128) {
        let value = f32x4_mul(output_gate, tanh_c);
        if lane == 0 {
            *best = output_gate;
            *h = value;
        } else {
            // Strictly greater: an exact tie keeps the earlier lane.
            let wins = f32x4_gt(output_gate, *best);
            *best = v128_bitselect(output_gate, *best, wins);
            *h = v128_bitselect(value, *h, wins);
        }
    }

    #[inline(always)]
    fn forget_backward(forget: v128, scale: v128, d_keep: v128) -> (v128, v128) {
        Array::forget_backward(forget, scale, d_keep)
    }
}
