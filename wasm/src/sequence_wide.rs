//! The fused tile of `LSTM`, `ArrayLSTM` ([`crate::cell::Array`]) and `AttentionArrayLSTM`
//! ([`crate::cell::Attention`]) on 512-bit vectors, for the native AVX-512 build's full tiles (4
//! batch rows × 2 blocks of hidden units): the inference forward's here, the training forward's
//! (`crate::record`) from the same pieces; `StochasticArrayLSTM`'s inference forward too, unless
//! it returns its chosen lanes (its training forward keeps the generic tile).
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
use crate::gemm::{accumulate_group, accumulate_in_registers, partial_sums, totals, UNROLL};
use crate::math::Gate;
use crate::math_wide::{exp, gate_activation, join, max, split, tanh};
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

/// [`super::softmax_lanes`] of four blocks of four lanes, the 64 floats at `a` (block after
/// block, lane after lane, four units each). Transposed, one vector holds one lane of the
/// sixteen units, so the maximum over the lanes, `e^(a_j − m)`, the sum, the divisions and the
/// pooling's maximum are whole-vector operations, in the lane order in which the `f32x4` code runs
/// them on one block: the same bits. (`e^(a_j − m)` is at least `e^-1`, the lanes being sigmoids,
/// where [`exp`] gives [`crate::math::exp_all`]'s bits.)
///
/// Why: the `f32x4` code runs a block's softmax on 128-bit vectors, lane by lane, ~10 % of an
/// `AttentionArrayLSTM` forward with four lanes; four lanes of one block as one vector instead
/// measured slower (the shuffles to reduce over its 128-bit parts cost what the wider `exp` saved).
///
/// # Safety
/// `a` holds 64 floats.
#[inline(always)]
pub unsafe fn softmax_four_blocks(a: *mut f32, max_pooling: bool) {
    let lanes = transpose(core::array::from_fn(|block| {
        _mm512_loadu_ps(a.add(16 * block))
    }));
    let largest_lane = lanes[1..].iter().fold(lanes[0], |m, &lane| max(m, lane));
    let e = lanes.map(|lane| exp(_mm512_sub_ps(lane, largest_lane)));
    let sum = e
        .iter()
        .fold(_mm512_setzero_ps(), |s, &e| _mm512_add_ps(s, e));
    let weights = e.map(|e| _mm512_div_ps(e, sum));
    let weights = if max_pooling {
        [weights.iter().fold(_mm512_setzero_ps(), |m, &w| max(m, w)); 4]
    } else {
        weights
    };
    for (block, v) in transpose(weights).into_iter().enumerate() {
        _mm512_storeu_ps(a.add(16 * block), v);
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

/// A lane's new cells on sixteen units from its activated `gates` and the cells `c_prev`, and
/// the output gate that scales their `tanh`. Without lane weights ([`crate::cell::Array`])
/// `c = f·c + i·g`; with lane weights `s` ([`crate::cell::Attention`]) `c = c·(1 − s·f) + s·i·g`
/// and the output gate `s·o`.
#[inline(always)]
pub fn new_cells(gates: [__m512; 4], attention: Option<__m512>, c_prev: __m512) -> [__m512; 2] {
    let [forget, input, out, candidate] = gates;
    // SAFETY: the build enables AVX-512F.
    unsafe {
        match attention {
            None => [
                _mm512_add_ps(
                    _mm512_mul_ps(forget, c_prev),
                    _mm512_mul_ps(input, candidate),
                ),
                out,
            ],
            Some(s) => {
                let (forget, input) = (_mm512_mul_ps(forget, s), _mm512_mul_ps(input, s));
                let keep = _mm512_sub_ps(_mm512_set1_ps(1.0), forget);
                [
                    _mm512_add_ps(_mm512_mul_ps(c_prev, keep), _mm512_mul_ps(input, candidate)),
                    _mm512_mul_ps(out, s),
                ]
            }
        }
    }
}

/// `tanh(c)` and the hidden state `h_partial + out·tanh(c)`, this lane folded in.
#[inline(always)]
pub fn hidden_of(c: __m512, out: __m512, h_partial: __m512) -> [__m512; 2] {
    let tanh_c = tanh(c);
    [tanh_c, fold_hidden(out, tanh_c, h_partial)]
}

/// The hidden state `h_partial + out·tanh(c)` from the cells' `tanh`.
#[inline(always)]
pub fn fold_hidden(out: __m512, tanh_c: __m512, h_partial: __m512) -> __m512 {
    // SAFETY: the build enables AVX-512F.
    unsafe { _mm512_add_ps(h_partial, _mm512_mul_ps(out, tanh_c)) }
}

/// `StochasticArrayLSTM`'s `h` after a lane ([`crate::cell::Stochastic`]'s `reduce` on sixteen
/// units): the lane's `out·tanh(c)` where its output gate beats the best gate of the lanes before
/// (strictly, so the first lane wins a tie), else their `h`, read at `next(r)`. The best gate so
/// far goes to `best(r)` unless the lane is the `last`; the `first` lane reads nothing.
///
/// # Safety
/// Each address holds four floats.
#[inline(always)]
pub unsafe fn argmax_hidden(
    first: bool,
    last: bool,
    out: __m512,
    tanh_c: __m512,
    next: impl Fn(usize) -> *mut f32,
    best: impl Fn(usize) -> *mut f32,
) -> __m512 {
    let value = _mm512_mul_ps(out, tanh_c);
    let (h, best_gate) = if first {
        (value, out)
    } else {
        let best_before = gather(|r| best(r));
        let wins = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(out, best_before);
        (
            _mm512_mask_mov_ps(gather(|r| next(r)), wins, value),
            _mm512_mask_mov_ps(best_before, wins, out),
        )
    };
    if !last {
        for (r, gate) in split(best_gate).into_iter().enumerate() {
            _mm_storeu_ps(best(r), gate.0);
        }
    }
    h
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

/// Step `t`'s lane `lane` of batch rows `batch_rows` (consecutive) and blocks `blocks`:
/// [`super::gate_tile`] on a full tile, reading the lane weights when `V` has them.
///
/// # Safety
/// As [`super::gate_tile`].
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn lane_tile<V: Variant>(
    weights: &Weights,
    call: &Call,
    t: usize,
    depth: usize,
    ws: &mut Workspace,
    lane: usize,
    batch_rows: [usize; ROWS],
    blocks: [usize; BLOCKS],
) {
    let l = &weights.layout;
    debug_assert!((0..ROWS).all(|r| batch_rows[r] == batch_rows[0] + r));
    let rows = batch_rows.map(|b| ws.rows.as_ptr().add(b * l.depth));
    let mut tile = Pending::new(batch_rows[0]);
    tile.z = sums(weights, &rows, lane, blocks, depth);
    let at = Tiles::new(weights, call, t, ws, lane, blocks);
    for piece in 0..PIECES {
        tile.piece::<V, false, false, false, false>(piece, &at, weights.gate);
    }
}

/// Pieces of one tile's cell update ([`Pending::piece`]): eight a block.
const PIECES: usize = 8 * BLOCKS;

/// `blocks` as a pair of blocks when [`overlapped_tiles`] (or [`overlapped_record_tiles`]) takes
/// their full tiles for a product over the first `depth` input columns: a pair, a cell with the
/// logistic gates, both blocks whole (no padding units to keep at zero), all the input columns,
/// and at least one group of multiply-adds of the product for each piece of the update.
pub fn overlapped_blocks<const NB: usize>(
    weights: &Weights,
    blocks: [usize; NB],
    depth: usize,
) -> Option<[usize; BLOCKS]> {
    let l = &weights.layout;
    let (_, blocks) = full_tile([0; ROWS], blocks)?;
    (matches!(weights.gate, Gate::Sigmoid)
        && (blocks[BLOCKS - 1] + 1) * UNITS <= l.hidden
        && depth == l.depth
        && l.depth >= PIECES * UNROLL)
        .then_some(blocks)
}

/// Step `t`'s lane `lane` of `count` full tiles of rows from `first` and blocks `blocks`, as
/// [`lane_tile`] runs each, but with each tile's cell update cut into [`PIECES`] run between the
/// groups of multiply-adds of the next tile's product (the two blocks' pieces taking turns).
///
/// Why: the product keeps the FMA units busy and the update is mostly other operations (adds,
/// minima and maxima, shuffles, divisions) that wait on each other; after a whole product, the
/// update's ~250 instructions filled the out-of-order window before the next product's
/// multiply-adds could start, so the two hardly overlapped (the update took ~19% of the step,
/// single thread). Interleaved in the instruction stream, they run side by side: 0.826 → 0.788
/// ms per 512 rows and step (`LSTM`, the documentation's sizes).
///
/// Every value gets the same operations as in [`lane_tile`], so the results are the same bits.
///
/// # Safety
/// As [`super::gate_tile`], for every tile; [`overlapped_blocks`] gives `blocks`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn overlapped_tiles<V: Variant>(
    weights: &Weights,
    call: &Call,
    t: usize,
    ws: &mut Workspace,
    lane: usize,
    first: usize,
    count: usize,
    blocks: [usize; BLOCKS],
) {
    let at = Tiles::new(weights, call, t, ws, lane, blocks);
    at_place::<V, false>(weights, &at, ws.rows.as_ptr(), first, count);
}

/// Where the training forward's overlapped tiles read and write (`crate::record`): step `t`'s
/// cells, `tanh` of the new cells and activated gates, each panel's row 0 at `panel · batch`
/// (`panel · batch_pad` for the gates) rows, and the rows, lane weights and output as the
/// inference forward's.
pub struct Recorded {
    pub cells: *mut f32,
    /// Floats from step `t`'s cells to step `t + 1`'s.
    pub cell_step: usize,
    pub tanh_cells: *mut f32,
    pub gates: *mut f32,
    pub batch: usize,
    pub batch_pad: usize,
    pub rows: *const f32,
    pub next_rows: *mut f32,
    pub attention: *const f32,
    /// Step `t` of the output, row 0.
    pub output: *mut f32,
    pub seq_len: usize,
}

/// [`overlapped_tiles`] for the training forward: the same pieces, which also keep what the
/// backward reads (the activated gates, the new cells and their `tanh`) in `record`, as
/// `crate::record`'s generic tile keeps them, bit for bit.
///
/// # Safety
/// As [`overlapped_tiles`], for the record's buffers.
pub unsafe fn overlapped_record_tiles<V: Variant>(
    weights: &Weights,
    record: &Recorded,
    lane: usize,
    first: usize,
    count: usize,
    blocks: [usize; BLOCKS],
) {
    let l = weights.layout;
    let panels = blocks.map(|block| block * l.k + lane);
    let row_0 = |cells: *mut f32| panels.map(|panel| cells.add(panel * record.batch * UNITS));
    let at = Tiles {
        layout: l,
        lane,
        blocks,
        units: blocks.map(|block| block * UNITS),
        cells: row_0(record.cells),
        cells_out: row_0(record.cells.add(record.cell_step)),
        tanh_cells: row_0(record.tanh_cells),
        kept: panels.map(|panel| record.gates.add(panel * record.batch_pad * TILE)),
        attention: panels.map(|panel| record.attention.wrapping_add(panel * UNITS)),
        next_rows: record.next_rows,
        best: core::ptr::null_mut(),
        output: record.output,
        seq_len: record.seq_len,
    };
    at_place::<V, true>(weights, &at, record.rows, first, count);
}

/// [`tiles`] at `at.lane`'s place among the lanes, as constants.
#[inline(always)]
unsafe fn at_place<V: Variant, const RECORD: bool>(
    weights: &Weights,
    at: &Tiles,
    input_rows: *const f32,
    first: usize,
    count: usize,
) {
    // The lane's place decides the writes: a branch there would split the interleaved code.
    match (at.lane == 0, at.lane + 1 == weights.layout.k) {
        (true, true) => tiles::<V, true, true, RECORD>(weights, at, input_rows, first, count),
        (true, false) => tiles::<V, true, false, RECORD>(weights, at, input_rows, first, count),
        (false, true) => tiles::<V, false, true, RECORD>(weights, at, input_rows, first, count),
        (false, false) => tiles::<V, false, false, RECORD>(weights, at, input_rows, first, count),
    }
}

/// [`overlapped_tiles`] at lane `at.lane`: the first lane (`FIRST`: no partial `h` to read), the
/// last (`LAST`: `h` is finished and goes to the output too), both or neither.
///
/// # Safety
/// As [`overlapped_tiles`].
#[inline(never)]
unsafe fn tiles<V: Variant, const FIRST: bool, const LAST: bool, const RECORD: bool>(
    weights: &Weights,
    at: &Tiles,
    input_rows: *const f32,
    first: usize,
    count: usize,
) {
    if count == 0 {
        return;
    }
    let l = &weights.layout;
    let panel = at.blocks.map(|block| block * l.k + at.lane);
    let bias = panel.map(|panel| _mm512_loadu_ps(weights.gate_bias.as_ptr().add(panel * TILE)));
    let panels = panel.map(|panel| weights.gates.as_ptr().add(panel * l.depth * TILE));
    let mut pending = Pending::new(first);
    for (tile, b) in (first..first + ROWS * count).step_by(ROWS).enumerate() {
        let rows = core::array::from_fn(|r| input_rows.add((b + r) * l.depth));
        let mut parts = partial_sums([bias; ROWS]);
        let mut d = 0;
        macro_rules! interleaved {
            ($($piece:literal)*) => {$(
                accumulate_group(&mut parts, &rows, &panels, d);
                d += UNROLL;
                pending.piece::<V, true, FIRST, LAST, RECORD>($piece, at, Gate::Sigmoid);
            )*};
        }
        // Inside the condition rather than after a first tile peeled off: there, the compiler
        // hoisted the update's constants out of the loop, and they crowded the registers.
        // The two blocks' pieces take turns, so a piece's result is needed two groups later, not
        // one (1.5 % faster than block after block).
        if tile > 0 {
            interleaved!(0 8 1 9 2 10 3 11 4 12 5 13 6 14 7 15);
        }
        while d < l.depth {
            accumulate_group(&mut parts, &rows, &panels, d);
            d += UNROLL;
        }
        pending.z = totals(&parts);
        pending.first = b;
    }
    for piece in 0..PIECES {
        pending.piece::<V, true, FIRST, LAST, RECORD>(piece, at, Gate::Sigmoid);
    }
}

/// Where the tiles of one step, lane and pair of blocks read and write.
struct Tiles {
    layout: Layout,
    lane: usize,
    blocks: [usize; BLOCKS],
    units: [usize; BLOCKS],
    /// The cells of row 0 of each block at this lane (`(blocks, k, B, UNITS)`: a tile's four
    /// rows are sixteen consecutive floats).
    cells: [*mut f32; BLOCKS],
    /// Where the new cells go: `cells` (in place) for inference, the next step's for training.
    cells_out: [*mut f32; BLOCKS],
    /// The training forward's `tanh` of the new cells and activated gates, row 0 (else null).
    tanh_cells: [*mut f32; BLOCKS],
    kept: [*mut f32; BLOCKS],
    /// The lane weights of row 0 of each block (attention only).
    attention: [*const f32; BLOCKS],
    next_rows: *mut f32,
    /// The best output gate of the lanes so far, row 0 (the lane argmax only, else dangling).
    best: *mut f32,
    /// Step `t` of the output, row 0.
    output: *mut f32,
    seq_len: usize,
}

impl Tiles {
    unsafe fn new(
        weights: &Weights,
        call: &Call,
        t: usize,
        ws: &mut Workspace,
        lane: usize,
        blocks: [usize; BLOCKS],
    ) -> Tiles {
        let l = weights.layout;
        let units = blocks.map(|block| block * UNITS);
        let cells = ws.cells.as_mut_ptr();
        let attention = ws.attention.as_ptr();
        let cells = units.map(|unit| cells.add(cell_index(&l, call.batch, 0, lane, unit)));
        Tiles {
            layout: l,
            lane,
            blocks,
            units,
            cells,
            cells_out: cells,
            tanh_cells: [core::ptr::null_mut(); BLOCKS],
            kept: [core::ptr::null_mut(); BLOCKS],
            attention: blocks.map(|block| attention.wrapping_add((block * l.k + lane) * UNITS)),
            next_rows: ws.next_rows.as_mut_ptr(),
            best: ws.best.as_mut_ptr(),
            output: ws.output_ptr().add(t * l.hidden),
            seq_len: call.seq_len,
        }
    }
}

/// A tile between its product and its writes: the sums, then the activated gates, the new cells
/// and output gate, and the cells' `tanh`, of each block.
struct Pending {
    z: [[__m512; BLOCKS]; ROWS],
    gates: [[__m512; 4]; BLOCKS],
    cells: [[__m512; 2]; BLOCKS],
    tanh_cells: [__m512; BLOCKS],
    /// Its first batch row.
    first: usize,
}

impl Pending {
    /// A tile from row `first` with no sums yet.
    fn new(first: usize) -> Pending {
        // SAFETY: the build enables AVX-512F.
        let zero = unsafe { _mm512_setzero_ps() };
        Pending {
            z: [[zero; BLOCKS]; ROWS],
            gates: [[zero; 4]; BLOCKS],
            cells: [[zero; 2]; BLOCKS],
            tanh_cells: [zero; BLOCKS],
            first,
        }
    }

    /// Piece `piece` of the update, in order: per block, the transposed sums, the activation of
    /// each gate (`gate` on the first three), the new cells, their `tanh`, and the hidden state
    /// with its writes (the cells' `tanh` apart from the writes: ~1 % faster than together).
    /// `WHOLE`: the blocks have no padding units and the lane's place is known (`FIRST`: lane 0,
    /// with no partial `h` to read; `LAST`: the last lane, whose `h` goes to the output too), so
    /// the writes need no branch; else `h_partial` and `write_hidden` decide at run time.
    ///
    /// # Safety
    /// `at` and the tile's rows are within the step's buffers.
    #[inline(always)]
    unsafe fn piece<
        V: Variant,
        const WHOLE: bool,
        const FIRST: bool,
        const LAST: bool,
        const RECORD: bool,
    >(
        &mut self,
        piece: usize,
        at: &Tiles,
        gate: Gate,
    ) {
        let (l, n, first) = (&at.layout, piece / 8, self.first);
        match piece % 8 {
            0 => self.gates[n] = transpose(core::array::from_fn(|r| self.z[r][n])),
            activated @ 1..=3 => {
                let g = &mut self.gates[n][activated - 1];
                *g = gate_activation(*g, gate);
            }
            4 => {
                self.gates[n][3] = tanh(self.gates[n][3]);
                if RECORD {
                    // One cache line a row, streamed as the training forward's generic tile does.
                    for (r, line) in transpose(self.gates[n]).into_iter().enumerate() {
                        _mm512_stream_ps(at.kept[n].add((first + r) * TILE), line);
                    }
                }
            }
            5 => {
                let c_prev = _mm512_loadu_ps(at.cells[n].add(first * UNITS));
                let attention = V::ATTENTION
                    .then(|| gather(|r| at.attention[n].add((first + r) * l.attention_cols)));
                self.cells[n] = new_cells(self.gates[n], attention, c_prev);
                _mm512_storeu_ps(at.cells_out[n].add(first * UNITS), self.cells[n][0]);
            }
            6 => {
                self.tanh_cells[n] = tanh(self.cells[n][0]);
                if RECORD {
                    _mm512_storeu_ps(at.tanh_cells[n].add(first * UNITS), self.tanh_cells[n]);
                }
            }
            _ => {
                let unit = at.units[n];
                let next = |r: usize| at.next_rows.add((first + r) * l.depth + l.input_pad + unit);
                let out = |r: usize| at.output.add((first + r) * at.seq_len * l.hidden + unit);
                let (out_gate, tanh_c) = (self.cells[n][1], self.tanh_cells[n]);
                let best = |r: usize| at.best.add((first + r) * l.hidden_pad + unit);
                let hidden = |partial: __m512| fold_hidden(out_gate, tanh_c, partial);
                if !WHOLE {
                    let h = if V::ARGMAX {
                        let (lane_first, lane_last) = (at.lane == 0, at.lane + 1 == l.k);
                        argmax_hidden(lane_first, lane_last, out_gate, tanh_c, next, best)
                    } else {
                        hidden(h_partial(at.lane, next))
                    };
                    return write_hidden(l, at.lane, unit, h, next, out);
                }
                // The lane's place as constants here too: the argmax's branches on it, at run
                // time, made the overlapped tiles 1.7x slower.
                let h = split(if V::ARGMAX {
                    argmax_hidden(FIRST, LAST, out_gate, tanh_c, next, best)
                } else if FIRST {
                    hidden(_mm512_setzero_ps())
                } else {
                    hidden(gather(|r| next(r)))
                });
                for r in 0..ROWS {
                    _mm_storeu_ps(next(r), h[r].0);
                    if LAST {
                        _mm_storeu_ps(out(r), h[r].0);
                    }
                }
            }
        }
    }
}
