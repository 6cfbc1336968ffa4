//! The fused tile of `LSTM`, `ArrayLSTM` ([`crate::cell::Array`]) and `AttentionArrayLSTM`
//! ([`crate::cell::Attention`]) on 512-bit vectors, for the native AVX-512 build's full tiles (4
//! batch rows × 2 blocks of hidden units): the inference forward's here, the training forward's
//! (`crate::record`) from the same pieces. (`StochasticArrayLSTM`'s lane argmax keeps the
//! generic tile.)
//!
//! Why: the generic tile ([`super::gate_tile`]) activates each (row, block) pair's 16
//! pre-activations `[forget, input, output, candidate]` as one vector, but updates the cells as
//! `f32x4` vectors, so every pair's gates were split into four vectors and the cells joined into
//! wide ones for their `tanh`, through memory (store-forwarding stalls): about a quarter of the
//! forward's time beside a product that runs near the FMA peak. Here the four rows of a block are
//! transposed instead (eight lane shuffles), so that one vector holds one gate of sixteen units
//! (4 rows × 4 units), and the cell update, the `tanh`, the lane fold and the output run on those.
//!
//! Every value gets the operations the generic tile gives it, in the same order (the gates' scale
//! by −1 or −2, `exp`, the division, the products and sums of the variant's `update`, the fold into
//! `h` from zero for lane 0): the results are the same bits, which the tests of the split calls and
//! of the training forward check against the generic tile.

use super::{cell_index, finish_hidden, Call, Weights, Workspace};
use crate::cell::Variant;
use crate::gemm::accumulate_in_registers;
use crate::math::Gate;
use crate::math_wide::{gate_activation, join, split, tanh};
use crate::pack::{Layout, TILE, UNITS};
use crate::simd::v128;
use core::arch::x86_64::*;

/// Rows of a full tile.
pub const ROWS: usize = 4;
/// Blocks of a full tile.
pub const BLOCKS: usize = 2;

/// The rows and blocks of a tile of `MR` rows and `NB` blocks when it is a full tile, which
/// [`lane_tile`] (and the training forward's) take.
#[inline(always)]
pub fn full_tile<const MR: usize, const NB: usize>(
    rows: [usize; MR],
    blocks: [usize; NB],
) -> Option<([usize; ROWS], [usize; BLOCKS])> {
    (MR == ROWS && NB == BLOCKS).then(|| {
        (
            core::array::from_fn(|r| rows[r]),
            core::array::from_fn(|n| blocks[n]),
        )
    })
}

/// Four vectors of four 128-bit lanes each, transposed: lane `j` of vector `i` becomes lane `i` of
/// vector `j`.
#[inline(always)]
pub fn transpose(v: [__m512; 4]) -> [__m512; 4] {
    // SAFETY (this function and those below): the build enables AVX-512F.
    unsafe {
        // [v0.0 v0.1 v1.0 v1.1], [v0.2 v0.3 v1.2 v1.3], and the same of v2, v3.
        let low01 = _mm512_shuffle_f32x4::<0b01_00_01_00>(v[0], v[1]);
        let high01 = _mm512_shuffle_f32x4::<0b11_10_11_10>(v[0], v[1]);
        let low23 = _mm512_shuffle_f32x4::<0b01_00_01_00>(v[2], v[3]);
        let high23 = _mm512_shuffle_f32x4::<0b11_10_11_10>(v[2], v[3]);
        [
            _mm512_shuffle_f32x4::<0b10_00_10_00>(low01, low23),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(low01, low23),
            _mm512_shuffle_f32x4::<0b10_00_10_00>(high01, high23),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(high01, high23),
        ]
    }
}

/// Four `f32x4` vectors at `at(0) .. at(3)` as one 512-bit vector, the first in the low lanes.
///
/// # Safety
/// Each address holds four floats.
#[inline(always)]
pub unsafe fn gather(at: impl Fn(usize) -> *const f32) -> __m512 {
    join(core::array::from_fn(|r| v128(_mm_loadu_ps(at(r)))))
}

/// `bias + [x_t | h_{t−1}] · panel` of lane `lane` of a full tile, over the first `depth` input
/// columns of `rows`, each (row, block) pair's 16 sums in one vector.
///
/// # Safety
/// As [`super::gate_tile`]; every row holds `depth` floats.
#[inline(always)]
pub unsafe fn sums(
    weights: &Weights,
    rows: &[*const f32; ROWS],
    lane: usize,
    blocks: [usize; BLOCKS],
    depth: usize,
) -> [[__m512; BLOCKS]; ROWS] {
    let l = &weights.layout;
    let panel = blocks.map(|block| block * l.k + lane);
    let bias = panel.map(|panel| _mm512_loadu_ps(weights.gate_bias.as_ptr().add(panel * TILE)));
    let panels = panel.map(|panel| weights.gates.as_ptr().add(panel * l.depth * TILE));
    accumulate_in_registers([bias; ROWS], rows, &panels, depth)
}

/// Block `n`'s activated gates `[σ f, σ i, σ o, tanh g]` (`gate` on the first three) from the
/// sums `z`, transposed: lane `r` of each holds row `r`'s four units.
#[inline(always)]
pub fn block_gates(z: &[[__m512; BLOCKS]; ROWS], n: usize, gate: Gate) -> [__m512; 4] {
    let [forget, input, out, candidate] = transpose(core::array::from_fn(|r| z[r][n]));
    [
        gate_activation(forget, gate),
        gate_activation(input, gate),
        gate_activation(out, gate),
        tanh(candidate),
    ]
}

/// A lane on sixteen units: the new cells from the cells `c_prev`, their `tanh`, and the hidden
/// state `h_partial + o·tanh(c)` with this lane folded in. Without lane weights
/// ([`crate::cell::Array`]) `c = f·c + i·g`; with lane weights `s` ([`crate::cell::Attention`])
/// `c = c·(1 − s·f) + s·i·g` and the output gate `s·o`.
#[inline(always)]
pub fn lane_cells(
    gates: [__m512; 4],
    attention: Option<__m512>,
    c_prev: __m512,
    h_partial: __m512,
) -> [__m512; 3] {
    let [forget, input, out, candidate] = gates;
    // SAFETY: the build enables AVX-512F.
    unsafe {
        let (c, out) = match attention {
            None => (
                _mm512_add_ps(
                    _mm512_mul_ps(forget, c_prev),
                    _mm512_mul_ps(input, candidate),
                ),
                out,
            ),
            Some(s) => {
                let (forget, input) = (_mm512_mul_ps(forget, s), _mm512_mul_ps(input, s));
                let keep = _mm512_sub_ps(_mm512_set1_ps(1.0), forget);
                (
                    _mm512_add_ps(_mm512_mul_ps(c_prev, keep), _mm512_mul_ps(input, candidate)),
                    _mm512_mul_ps(out, s),
                )
            }
        };
        let tanh_c = tanh(c);
        [
            c,
            tanh_c,
            _mm512_add_ps(h_partial, _mm512_mul_ps(out, tanh_c)),
        ]
    }
}

/// The partial `h` of the lanes before `lane` at `next(0) .. next(3)`: zeros for lane 0.
///
/// # Safety
/// Each address holds four floats.
#[inline(always)]
pub unsafe fn h_partial(lane: usize, next: impl Fn(usize) -> *mut f32) -> __m512 {
    if lane == 0 {
        _mm512_setzero_ps()
    } else {
        gather(|r| next(r))
    }
}

/// Writes four rows' `h` (row `r` in lane `r`) of the block from `unit` after lane `lane`: to the
/// next input rows `next(r)` as a partial sum before the last lane, after it to the next input
/// rows and the output `out(r)` as [`super::fold_lane`] does.
///
/// # Safety
/// Each address holds four floats.
#[inline(always)]
pub unsafe fn write_hidden(
    l: &Layout,
    lane: usize,
    unit: usize,
    h: __m512,
    next: impl Fn(usize) -> *mut f32,
    out: impl Fn(usize) -> *mut f32,
) {
    let h = split(h);
    for r in 0..ROWS {
        if lane + 1 < l.k {
            _mm_storeu_ps(next(r), h[r].0);
        } else {
            finish_hidden(l, h[r], next(r), out(r), unit);
        }
    }
}

/// Step `t`'s lane `lane` of batch rows `batch_rows` and blocks `blocks` of a cell without the
/// lane argmax: [`super::gate_tile`] on a full tile, reading the lane weights when `V` has them.
///
/// # Safety
/// As [`super::gate_tile`].
#[inline(never)]
pub(super) unsafe fn lane_tile<V: Variant>(
    weights: &Weights,
    call: &Call,
    t: usize,
    ws: &mut Workspace,
    lane: usize,
    batch_rows: [usize; ROWS],
    blocks: [usize; BLOCKS],
) {
    let l = &weights.layout;
    let rows = batch_rows.map(|b| ws.rows.as_ptr().add(b * l.depth));
    let z = sums(weights, &rows, lane, blocks, l.depth);
    let (next_rows, output) = (ws.next_rows.as_mut_ptr(), ws.output_ptr());
    let cells = ws.cells.as_mut_ptr();
    for n in 0..BLOCKS {
        let unit = blocks[n] * UNITS;
        let cell = |r: usize| cells.add(cell_index(l, call.batch, batch_rows[r], lane, unit));
        let next = |r: usize| next_rows.add(batch_rows[r] * l.depth + l.input_pad + unit);
        let out = |r: usize| output.add((batch_rows[r] * call.seq_len + t) * l.hidden + unit);
        let gates = block_gates(&z, n, weights.gate);
        let attention = V::ATTENTION.then(|| {
            let s = ws.attention.as_ptr().add((blocks[n] * l.k + lane) * UNITS);
            gather(|r| s.add(batch_rows[r] * l.attention_cols))
        });
        let c_prev = gather(|r| cell(r));
        let [c, _, h] = lane_cells(gates, attention, c_prev, h_partial(lane, next));
        for (r, c) in split(c).into_iter().enumerate() {
            _mm_storeu_ps(cell(r), c.0);
        }
        write_hidden(l, lane, unit, h, next, out);
    }
}
