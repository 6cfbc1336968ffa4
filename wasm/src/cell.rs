//! The cell equations of each variant, applied to one lane of a tile's blocks of four hidden
//! units while their pre-activations are still in registers.
//!
//! A lane's pre-activations arrive as `[forget, input, output, candidate]`, one `f32x4` each, for
//! every (batch row, block) of the tile at once, so the activations share their constants. The gate
//! kernel visits lanes `0, 1, …, k-1` in order and folds each into the hidden state with
//! [`Variant::reduce`], so lane 0 is summed (or selected) first, as in the reference.

use crate::math::{gates_all, Gate};
use crate::simd::*;

/// Most (batch row, block) pairs in one tile.
pub const MAX_TILE: usize = 4;

/// `$function::<V>(args…)` with `V` the [`Variant`] that runs cell kind `$kind` (a code of
/// [`crate::variants`]; an LSTM is an ArrayLSTM with one lane): the one place that maps a
/// boundary's runtime kind to the generic kernels.
macro_rules! with_variant {
    ($kind:expr, $function:ident($($arg:expr),* $(,)?)) => {
        match $kind {
            $crate::variants::LSTM | $crate::variants::ARRAY => {
                $function::<$crate::cell::Array>($($arg),*)
            }
            $crate::variants::ATTENTION => $function::<$crate::cell::Attention>($($arg),*),
            _ => $function::<$crate::cell::Stochastic>($($arg),*),
        }
    };
}
pub(crate) use with_variant;

/// One cell variant's per-lane update and lane reduction.
pub trait Variant {
    /// Whether the lane update reads the attention weights `s`.
    const ATTENTION: bool;
    /// Whether [`Variant::reduce`] uses `best`; the others skip its loads and stores.
    const ARGMAX: bool;

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
}

/// `AttentionArrayLSTM`: gates scaled by the lane's attention weight `s_j`, and the forget gate
/// inverted: `c_j = (1 − s_j·f_j)·c_j + s_j·i_j·g_j`, `h = Σ_j s_j·o_j·tanh(c_j)`.
pub struct Attention;

impl Variant for Attention {
    const ATTENTION: bool = true;
    const ARGMAX: bool = false;

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
}

/// `StochasticArrayLSTM`: cells as `ArrayLSTM`; per unit, the lane with the largest output gate
/// gives `h = o_j·tanh(c_j)` (argmax of `softmax(o)` is argmax of `o`; the first lane wins ties).
pub struct Stochastic;

impl Variant for Stochastic {
    const ATTENTION: bool = false;
    const ARGMAX: bool = true;

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
}
