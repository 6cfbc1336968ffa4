//! The training forward's full tile of `LSTM`, `ArrayLSTM` and `AttentionArrayLSTM` on 512-bit
//! vectors (native AVX-512 build): the inference forward's ([`crate::sequence::wide`]), plus what
//! the backward keeps of each step (the activated gates, both cells and the `tanh` of the new ones,
//! the candidates' pre-activations for LRP), as [`super::gate_tile`] keeps them, bit for bit.

use super::Record;
use crate::cell::Variant;
use crate::math_wide::split;
use crate::pack::UNITS;
use crate::sequence::wide::{
    block_gates, gather, h_partial, hidden_of, new_cells, sums, transpose, write_hidden, BLOCKS,
    ROWS,
};
use crate::sequence::Weights;
use core::arch::x86_64::*;

/// Step `t`'s lane `lane` of batch rows `batch_rows` and blocks `blocks`, over the first `depth`
/// input columns: [`super::gate_tile`] of a cell without the lane argmax on a full tile, reading
/// the lane weights when `V` has them.
///
/// # Safety
/// As [`super::gate_tile`].
#[inline(never)]
pub(super) unsafe fn lane_tile<V: Variant>(
    w: &Weights,
    r: &mut Record,
    t: usize,
    depth: usize,
    lane: usize,
    batch_rows: [usize; ROWS],
    blocks: [usize; BLOCKS],
) {
    let (l, shape) = (&w.layout, r.shape);
    let rows = batch_rows.map(|b| r.rows.as_ptr().add(b * l.depth));
    let z = sums(w, &rows, lane, blocks, depth);
    let kept = r.gates.as_mut_ptr().add(t * shape.gate_step);
    let cells = r.cells.as_mut_ptr().add(t * shape.cell_step);
    let tanh_cells = r.tanh_cells.as_mut_ptr().add(t * shape.cell_step);
    let candidates = r.candidates.as_mut_ptr().add(t * shape.cell_step);
    let (next_rows, output) = (r.next_rows.as_mut_ptr(), r.output.as_mut_ptr());
    for n in 0..BLOCKS {
        let (panel, unit) = (blocks[n] * l.k + lane, blocks[n] * UNITS);
        let at = |row: usize| shape.cell_at(panel, batch_rows[row]);
        if r.keep_candidates {
            for row in 0..ROWS {
                _mm_storeu_ps(
                    candidates.add(at(row)),
                    _mm512_extractf32x4_ps::<3>(z[row][n]),
                );
            }
        }
        let gates = block_gates(&z, n, w.gate);
        // One cache line a row, streamed as `super::keep_gates` does.
        for (row, line) in transpose(gates).into_iter().enumerate() {
            _mm512_stream_ps(kept.add(shape.gate_at(panel, batch_rows[row])), line);
        }
        let next = |row: usize| next_rows.add(batch_rows[row] * l.depth + l.input_pad + unit);
        let out = |row: usize| output.add((batch_rows[row] * shape.seq_len + t) * l.hidden + unit);
        let c_prev = gather(|row| cells.add(at(row)));
        let attention = V::ATTENTION.then(|| {
            let s = r.attention.as_ptr().add(panel * UNITS);
            gather(|row| s.add(batch_rows[row] * l.attention_cols))
        });
        let [c, out_gate] = new_cells(gates, attention, c_prev);
        let [tanh_c, h] = hidden_of(c, out_gate, h_partial(lane, next));
        for (row, (c, tanh_c)) in split(c).into_iter().zip(split(tanh_c)).enumerate() {
            _mm_storeu_ps(cells.add(shape.cell_step + at(row)), c.0);
            _mm_storeu_ps(tanh_cells.add(at(row)), tanh_c.0);
        }
        write_hidden(l, lane, unit, h, next, out);
    }
}
