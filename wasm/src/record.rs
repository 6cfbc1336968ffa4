//! The training forward: the inference forward's fused step (same GEMM tiles, same cell update,
//! same lane reduction, so the same results bit for bit), keeping every activation the backward
//! needs, in the layouts the backward reads.
//!
//! Stored per call (`B` batch rows, `B4` = `B` rounded up to 4, `T` steps; all in wasm memory):
//! * `gates`: `T × (panels, B4, TILE)`. Panel `block·k + lane` (the gate panels, `blocks·k` of
//!   them), row `b`: `[σ f | σ i | σ o | tanh g]` of units `4·block .. 4·block + 4`, unscaled. With
//!   attention, `attention_cols / TILE` more panels hold `σ(x·i2aᵀ + b)` in the attention column
//!   order of [`crate::pack::attention_col`]. The backward overwrites a step's activations with
//!   the pre-activation gradients `dz` of the same step, and these panels are then the right
//!   operand of the weight-gradient GEMM. Padding rows (`B ≤ b < B4`) stay zero.
//! * `cells`: `(T + 1) × (blocks·k, B, UNITS)`: `c_0` (the initial state), then `c_t` after step
//!   `t`.
//! * `tanh_cells`: `T × (blocks·k, B, UNITS)`: `tanh c_{t+1}` of step `t`, which the forward
//!   computes anyway for `h`; recomputing it in the backward cost as much as the rest of the
//!   elementwise backward.
//! * `inputs`: `T × (depth + 1, B4)`: the GEMM's input rows `[x_t | h_{t−1}]` transposed, and a
//!   row of ones (zero in the padding columns): the left operand of the weight-gradient GEMM,
//!   whose product with the ones row is the bias gradient.
//! * `candidates`, only when [`Record::keep_candidates`] is set (the LRP pass of
//!   [`crate::lrp`] needs them; the backward does not): `T × (blocks, B, UNITS)`, the candidate's
//!   pre-activation `z_g` of every step, in the layout of `cells` (one lane).
//! * `softmax` (attention only): `T × (B, attention_cols)`, the attention weights `s` of every
//!   step before max pooling, as [`crate::sequence::softmax_lanes`] computes them (recomputing
//!   them in the backward cost as much as keeping them).
//!
//! Not stored, because the backward recomputes them from the stored values with the forward's own
//! code, which gives the same bits: the first maximal attention lane (max pooling) and the
//! stochastic variant's chosen lane (the first largest output gate).

use crate::aligned::Floats;
use crate::cell::{Variant, MAX_TILE};
use crate::gemm::{accumulate, load, store, Tile};
use crate::math::{gates_all, sigmoid_all, tanh_all};
use crate::pack::{Layout, TILE, UNITS};
use crate::sequence::{fold_lane, product_depth, softmax_row, zero_hidden, TileKernel, Weights};
use crate::simd::*;
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
use crate::sequence::wide;

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
#[path = "record_wide.rs"]
mod record_wide;

/// Sizes of the stored activations of one call.
#[derive(Clone, Copy, Default)]
pub struct Shape {
    /// `B`.
    pub batch: usize,
    /// `B` rounded up to a multiple of 4 (the depth of the weight-gradient GEMM).
    pub batch_pad: usize,
    /// `T`.
    pub seq_len: usize,
    /// Gate panels, `blocks · k`.
    pub gate_panels: usize,
    /// Gate panels plus attention panels.
    pub panels: usize,
    /// Floats of one step of `gates`.
    pub gate_step: usize,
    /// Floats of one step of `cells`.
    pub cell_step: usize,
    /// Floats of one step of `inputs`.
    pub input_step: usize,
}

impl Shape {
    /// The stored sizes for `batch` rows and `seq_len` steps of a cell with layout `l`. Panics
    /// when the record would not fit in wasm32's 4 GiB: sizes are 32-bit there, and a product that
    /// wrapped around would size the buffers wrongly.
    pub fn new(l: &Layout, attention: bool, batch: usize, seq_len: usize) -> Shape {
        let batch_pad = (batch + 3) / 4 * 4;
        let gate_panels = l.blocks * l.k;
        let panels = gate_panels
            + if attention {
                l.attention_cols / TILE
            } else {
                0
            };
        let steps = || {
            let gate_step = panels.checked_mul(batch_pad)?.checked_mul(TILE)?;
            let cell_step = gate_panels.checked_mul(batch)?.checked_mul(UNITS)?;
            let input_step = (l.depth + 1).checked_mul(batch_pad)?;
            let softmax_step = if attention {
                batch.checked_mul(l.attention_cols)?
            } else {
                0
            };
            let floats = gate_step
                .checked_mul(seq_len)?
                .checked_add(cell_step.checked_mul(2 * seq_len + 1)?)?
                .checked_add(input_step.checked_mul(seq_len)?)?
                .checked_add(softmax_step.checked_mul(seq_len)?)?;
            floats.checked_mul(core::mem::size_of::<f32>())?;
            Some((gate_step, cell_step, input_step))
        };
        let (gate_step, cell_step, input_step) = steps().expect(
            "the activations of this call do not fit in wasm memory: use fewer rows or steps",
        );
        Shape {
            batch,
            batch_pad,
            seq_len,
            gate_panels,
            panels,
            gate_step,
            cell_step,
            input_step,
        }
    }

    /// Offset in one step of `gates` of panel `panel`, row `b`.
    #[inline(always)]
    pub fn gate_at(&self, panel: usize, b: usize) -> usize {
        (panel * self.batch_pad + b) * TILE
    }

    /// Offset in one step of `cells` of the four cells of `panel` (`block · k + lane`), row `b`.
    #[inline(always)]
    pub fn cell_at(&self, panel: usize, b: usize) -> usize {
        (panel * self.batch + b) * UNITS
    }

    /// Offset in one step of `gates` of attention column `col` (a multiple of 4) of row `b`.
    #[inline(always)]
    pub fn attention_at(&self, col: usize, b: usize) -> usize {
        self.gate_at(self.gate_panels + col / TILE, b) + col % TILE
    }
}

/// The activations of the last training forward, plus its results and scratch.
#[derive(Default)]
pub struct Record {
    /// Sizes of the stored activations.
    pub shape: Shape,
    /// Whether `gates` holds a forward's activations not yet consumed by a backward.
    pub recorded: bool,
    /// Whether step 0 skipped the products of an all-zero initial hidden state
    /// ([`crate::sequence::zero_hidden`]).
    pub zero_hidden: bool,
    /// Gate (and attention) activations per step; see the module docs.
    pub gates: Floats,
    /// Cell states `c_0 … c_T`.
    pub cells: Floats,
    /// `tanh c_1 … tanh c_T`.
    pub tanh_cells: Floats,
    /// The attention weights of every step before max pooling (attention only).
    pub softmax: Floats,
    /// Transposed input rows per step.
    pub inputs: Floats,
    /// Whether the next forward keeps the candidates' pre-activations (one-lane cells only).
    pub keep_candidates: bool,
    /// Candidate pre-activations per step when kept, else empty; see the module docs.
    pub candidates: Floats,
    rows: Floats,
    next_rows: Floats,
    best: Floats,
    /// Attention weights `s` of the current step, `(B, attention_cols)` (pooled when asked).
    attention: Floats,
    /// Hidden state after every step, `(B, T, H)`.
    pub output: Floats,
    /// Final hidden state, `(B, H)`.
    pub hidden: Floats,
    /// Final cell states, `(k, B, H)`.
    pub state: Floats,
}

/// Runs the forward of variant `V` like [`crate::sequence::forward`], keeping the activations in
/// `r` for [`crate::backward::backward`]; step 0 skips the products of an all-zero `hidden0` as
/// that forward does ([`Weights::h2h_finite`]).
pub fn forward<V: Variant>(
    w: &Weights,
    r: &mut Record,
    batch: usize,
    seq_len: usize,
    x: &[f32],
    hidden0: &[f32],
    state0: &[f32],
) {
    let l = w.layout;
    assert_eq!(x.len(), batch * seq_len * l.input, "x has the wrong length");
    assert_eq!(
        hidden0.len(),
        batch * l.hidden,
        "hidden has the wrong length"
    );
    assert_eq!(
        state0.len(),
        l.k * batch * l.hidden,
        "state has the wrong length"
    );
    let shape = Shape::new(&l, V::ATTENTION, batch, seq_len);
    // The same shape as the last call writes every value it reads, so the big buffers are not
    // zeroed again: the values never written (padding rows and columns, padding units of the
    // cells) are the zeros of the first call of this shape.
    let same_shape = r.shape.batch == batch
        && r.shape.seq_len == seq_len
        && r.gates.len() == seq_len * shape.gate_step;
    r.shape = shape;
    r.recorded = false;
    let keep = r.keep_candidates;
    assert!(
        !keep || l.k == 1,
        "only one-lane cells keep their candidates"
    );
    r.candidates
        .reset(if keep { seq_len * shape.cell_step } else { 0 });
    r.zero_hidden = zero_hidden(w, hidden0);
    if !same_shape {
        r.gates.reset(seq_len * shape.gate_step);
        r.cells.reset((seq_len + 1) * shape.cell_step);
        r.tanh_cells.reset(seq_len * shape.cell_step);
        r.softmax.reset(if V::ATTENTION {
            seq_len * batch * l.attention_cols
        } else {
            0
        });
        r.inputs.reset(seq_len * shape.input_step);
        r.output.reset(batch * seq_len * l.hidden);
        r.hidden.reset(batch * l.hidden);
        r.state.reset(l.k * batch * l.hidden);
    }
    r.rows.reset(batch * l.depth);
    r.next_rows.reset(batch * l.depth);
    r.best
        .reset(if V::ARGMAX { batch * l.hidden_pad } else { 0 });
    r.attention.reset(if V::ATTENTION {
        batch * l.attention_cols
    } else {
        0
    });
    for b in 0..batch {
        r.rows[b * l.depth + l.input_pad..][..l.hidden]
            .copy_from_slice(&hidden0[b * l.hidden..][..l.hidden]);
        for lane in 0..l.k {
            for unit in 0..l.hidden {
                let at = shape.cell_at((unit / UNITS) * l.k + lane, b) + unit % UNITS;
                r.cells[at] = state0[(lane * batch + b) * l.hidden + unit];
            }
        }
    }
    for t in 0..seq_len {
        for b in 0..batch {
            r.rows[b * l.depth..][..l.input]
                .copy_from_slice(&x[(b * seq_len + t) * l.input..][..l.input]);
        }
        let inputs = &mut r.inputs[t * shape.input_step..][..shape.input_step];
        for (d, column) in inputs
            .chunks_exact_mut(shape.batch_pad)
            .take(l.depth)
            .enumerate()
        {
            for (value, row) in column.iter_mut().zip(r.rows.chunks_exact(l.depth)) {
                *value = row[d];
            }
        }
        inputs[l.depth * shape.batch_pad..][..batch].fill(1.0);
        let depth = product_depth(&l, t, r.zero_hidden);
        // SAFETY: every buffer was sized above for this call's `batch` and `seq_len`.
        unsafe {
            if V::ATTENTION {
                attention_step(w, r, t);
            }
            gate_step::<V>(w, r, t, depth);
        }
        core::mem::swap(&mut r.rows, &mut r.next_rows);
    }
    // The kept gates' streaming stores are ordered before whatever tells another thread that
    // this part is done.
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    // SAFETY: the build enables SSE (every x86-64 build does).
    unsafe {
        core::arch::x86_64::_mm_sfence()
    };
    r.recorded = true;
    let last = seq_len * shape.cell_step;
    for b in 0..batch {
        r.hidden[b * l.hidden..][..l.hidden]
            .copy_from_slice(&r.rows[b * l.depth + l.input_pad..][..l.hidden]);
        for lane in 0..l.k {
            for unit in 0..l.hidden {
                let at = last + shape.cell_at((unit / UNITS) * l.k + lane, b) + unit % UNITS;
                r.state[(lane * batch + b) * l.hidden + unit] = r.cells[at];
            }
        }
    }
}

/// `σ(x_t · i2aᵀ + b)` into the record, `s` (its softmax over lanes) into the record's `softmax`
/// and, pooled when asked, into the step's attention weights, as the inference forward computes
/// them.
unsafe fn attention_step(w: &Weights, r: &mut Record, t: usize) {
    let (l, shape) = (&w.layout, r.shape);
    let mut b = 0;
    while b + 2 <= shape.batch {
        attention_tile::<2>(w, r, t, [b, b + 1]);
        b += 2;
    }
    if b < shape.batch {
        attention_tile::<1>(w, r, t, [b]);
    }
    let kept = r
        .softmax
        .as_mut_ptr()
        .add(t * shape.batch * l.attention_cols);
    for b in 0..shape.batch {
        softmax_row(l, r.attention.as_mut_ptr().add(b * l.attention_cols), false);
        for block in 0..l.blocks {
            let at = b * l.attention_cols + block * l.k * UNITS;
            let lanes = r.attention.as_mut_ptr().add(at);
            // `softmax_lanes`'s pooling, after keeping every lane's weight for the backward.
            let mut largest = f32x4_splat(0.0);
            for lane in 0..l.k {
                let s = load(lanes.add(lane * UNITS));
                store(kept.add(at + lane * UNITS), s);
                largest = f32x4_max(largest, s);
            }
            if w.max_pooling {
                for lane in 0..l.k {
                    store(lanes.add(lane * UNITS), largest);
                }
            }
        }
    }
}

#[inline(always)]
unsafe fn attention_tile<const MR: usize>(
    w: &Weights,
    r: &mut Record,
    t: usize,
    batch_rows: [usize; MR],
) {
    let (l, shape) = (&w.layout, r.shape);
    let rows = batch_rows.map(|b| r.rows.as_ptr().add(b * l.depth));
    let step = r.gates.as_mut_ptr().add(t * shape.gate_step);
    for panel in 0..l.attention_cols / TILE {
        let bias = w.attention_bias.as_ptr().add(panel * TILE);
        let mut acc: Tile<MR, 1> = [[[f32x4_splat(0.0); 4]; 1]; MR];
        for row in acc.iter_mut() {
            for (c, value) in row[0].iter_mut().enumerate() {
                *value = load(bias.add(c * UNITS));
            }
        }
        let panels = [w.attention.as_ptr().add(panel * l.input_pad * TILE)];
        accumulate(&mut acc, &rows, &panels, l.input_pad);
        for (row, &b) in acc.iter_mut().zip(batch_rows.iter()) {
            sigmoid_all(&mut row[0]);
            let kept = step.add(shape.gate_at(shape.gate_panels + panel, b));
            let weights = r
                .attention
                .as_mut_ptr()
                .add(b * l.attention_cols + panel * TILE);
            for (c, value) in row[0].iter().enumerate() {
                store(kept.add(c * UNITS), *value);
                store(weights.add(c * UNITS), *value);
            }
        }
    }
}

/// The gate tiles of step `t`, over the first `depth` input columns. The native AVX-512 build takes
/// the inference forward's tiles ([`crate::sequence::tiles`]: 4 rows × 2 blocks, the same sums, so
/// the same results); elsewhere each block goes by alone, in tiles of two rows and then one.
unsafe fn gate_step<V: Variant>(w: &Weights, r: &mut Record, t: usize, depth: usize) {
    let (lanes, batch, blocks) = (w.layout.k, r.shape.batch, w.layout.blocks);
    let mut kernel = GateTiles::<V> {
        w,
        r,
        t,
        depth,
        variant: core::marker::PhantomData,
    };
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    crate::sequence::tiles(&mut kernel, lanes, batch, 0, blocks);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    for block in 0..blocks {
        for lane in 0..lanes {
            let mut b = 0;
            while b + 2 <= batch {
                kernel.tile(lane, [b, b + 1], [block]);
                b += 2;
            }
            if b < batch {
                kernel.tile(lane, [b], [block]);
            }
        }
    }
}

/// The training forward's step `t` as a [`TileKernel`].
struct GateTiles<'a, V> {
    w: &'a Weights,
    r: &'a mut Record,
    t: usize,
    depth: usize,
    variant: core::marker::PhantomData<V>,
}

impl<V: Variant> TileKernel for GateTiles<'_, V> {
    #[inline(always)]
    unsafe fn tile<const MR: usize, const NB: usize>(
        &mut self,
        lane: usize,
        rows: [usize; MR],
        blocks: [usize; NB],
    ) {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        if let (false, Some((rows, blocks))) = (V::ARGMAX, wide::full_tile(rows, blocks)) {
            let (w, r, t, depth) = (self.w, &mut *self.r, self.t, self.depth);
            return record_wide::lane_tile::<V>(w, r, t, depth, lane, rows, blocks);
        }
        gate_tile::<V, MR, NB>(self.w, self.r, self.t, self.depth, lane, rows, blocks);
    }

    #[inline(always)]
    unsafe fn four_row_tiles<const NB: usize>(
        &mut self,
        lane: usize,
        first: usize,
        count: usize,
        blocks: [usize; NB],
    ) {
        // The overlapped tiles keep neither the argmax's lanes nor the candidates for LRP.
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        if !V::ARGMAX && !self.r.keep_candidates {
            if let Some(blocks) = wide::overlapped_blocks(self.w, blocks, self.depth) {
                let (l, t, r) = (&self.w.layout, self.t, &mut *self.r);
                let shape = r.shape;
                let record = wide::Recorded {
                    cells: r.cells.as_mut_ptr().add(t * shape.cell_step),
                    cell_step: shape.cell_step,
                    tanh_cells: r.tanh_cells.as_mut_ptr().add(t * shape.cell_step),
                    gates: r.gates.as_mut_ptr().add(t * shape.gate_step),
                    batch: shape.batch,
                    batch_pad: shape.batch_pad,
                    rows: r.rows.as_ptr(),
                    next_rows: r.next_rows.as_mut_ptr(),
                    attention: r.attention.as_ptr(),
                    output: r.output.as_mut_ptr().add(t * l.hidden),
                    seq_len: shape.seq_len,
                };
                let w = self.w;
                return wide::overlapped_record_tiles::<V>(w, &record, lane, first, count, blocks);
            }
        }
        crate::sequence::tile_by_tile(self, lane, first, count, blocks);
    }
}

/// One lane of `NB` blocks for `MR` batch rows: the GEMM (over the first `depth` input columns),
/// the activated gates into the record, the cell update from `c_t` to `c_{t+1}`, and the fold into
/// `h_t` as in the inference forward.
#[inline(never)]
unsafe fn gate_tile<V: Variant, const MR: usize, const NB: usize>(
    w: &Weights,
    r: &mut Record,
    t: usize,
    depth: usize,
    lane: usize,
    batch_rows: [usize; MR],
    blocks: [usize; NB],
) {
    let (l, shape) = (&w.layout, r.shape);
    let panel = blocks.map(|block| block * l.k + lane);
    let rows = batch_rows.map(|b| r.rows.as_ptr().add(b * l.depth));
    let mut acc: Tile<MR, NB> = [[[f32x4_splat(0.0); 4]; NB]; MR];
    for n in 0..NB {
        let bias = w.gate_bias.as_ptr().add(panel[n] * TILE);
        for row in acc.iter_mut() {
            for (gate, value) in row[n].iter_mut().enumerate() {
                *value = load(bias.add(gate * UNITS));
            }
        }
    }
    let panels = panel.map(|panel| w.gates.as_ptr().add(panel * l.depth * TILE));
    accumulate(&mut acc, &rows, &panels, depth);
    // The tile's (row, block) pairs, flattened: row-major, `m = r · NB + n`.
    let m_count = MR * NB;
    let mut a = [[f32x4_splat(0.0); 4]; MAX_TILE];
    let mut c = [f32x4_splat(0.0); MAX_TILE];
    let mut s = [f32x4_splat(0.0); MAX_TILE];
    for m in 0..m_count {
        a[m] = acc[m / NB][m % NB];
    }
    gates_all(&mut a[..m_count], w.gate);
    let gates = r.gates.as_mut_ptr().add(t * shape.gate_step);
    let cells = r.cells.as_mut_ptr().add(t * shape.cell_step);
    if r.keep_candidates {
        let candidates = r.candidates.as_mut_ptr().add(t * shape.cell_step);
        for m in 0..m_count {
            let (b, panel) = (batch_rows[m / NB], panel[m % NB]);
            store(
                candidates.add(shape.cell_at(panel, b)),
                acc[m / NB][m % NB][3],
            );
        }
    }
    for m in 0..m_count {
        let (b, panel) = (batch_rows[m / NB], panel[m % NB]);
        keep_gates(gates.add(shape.gate_at(panel, b)), a[m]);
        c[m] = load(cells.add(shape.cell_at(panel, b)));
        if V::ATTENTION {
            s[m] = load(
                r.attention
                    .as_ptr()
                    .add(b * l.attention_cols + panel * UNITS),
            );
        }
    }
    let mut output_gate = [f32x4_splat(0.0); MAX_TILE];
    V::update(
        &a[..m_count],
        &mut c[..m_count],
        &s[..m_count],
        &mut output_gate[..m_count],
    );
    let mut tanh_c = c;
    tanh_all(&mut tanh_c[..m_count]);
    let tanh_cells = r.tanh_cells.as_mut_ptr().add(t * shape.cell_step);
    for m in 0..m_count {
        let (b, panel, unit) = (batch_rows[m / NB], panel[m % NB], blocks[m % NB] * UNITS);
        store(cells.add(shape.cell_step + shape.cell_at(panel, b)), c[m]);
        store(tanh_cells.add(shape.cell_at(panel, b)), tanh_c[m]);
        fold_lane::<V>(
            l,
            lane,
            output_gate[m],
            tanh_c[m],
            r.next_rows.as_mut_ptr(),
            r.best.as_mut_ptr(),
            r.output.as_mut_ptr(),
            [b, shape.seq_len, t, unit],
        );
    }
}

/// Stores one (row, block)'s activated gates `[σ f, σ i, σ o, tanh g]` (one cache line: the record
/// is 64-byte aligned and a row of a gate panel is `TILE` floats) for the backward. The AVX-512
/// build streams the line past the caches (a non-temporal store): the backward reads it a whole
/// forward later, long after it left them (84 MB a call at the documentation's sizes), and a
/// store that first reads the line in cost memory bandwidth the forward's other loads needed.
///
/// # Safety
/// `kept` is 64-byte aligned and holds [`TILE`] floats.
#[inline(always)]
unsafe fn keep_gates(kept: *mut f32, activated: [v128; 4]) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    core::arch::x86_64::_mm512_stream_ps(kept, crate::math_wide::join(activated));
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    for (gate, value) in activated.iter().enumerate() {
        store(kept.add(gate * UNITS), *value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{Array, Attention, Stochastic};
    use crate::gemm::tests::values;
    use crate::variants;

    const T: usize = 3;

    /// Every value recorded for row `b` of `r` (hidden size `h`), with its output, as bits.
    fn recorded(r: &Record, b: usize, h: usize) -> Vec<u32> {
        let shape = r.shape;
        let mut bits: Vec<u32> = r.output[b * T * h..][..T * h]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        for t in 0..T {
            for panel in 0..shape.panels {
                let at = t * shape.gate_step + shape.gate_at(panel, b);
                bits.extend(r.gates[at..][..TILE].iter().map(|v| v.to_bits()));
            }
            for panel in 0..shape.gate_panels {
                let at = t * shape.cell_step + shape.cell_at(panel, b);
                bits.extend(
                    r.cells[shape.cell_step + at..][..UNITS]
                        .iter()
                        .map(|v| v.to_bits()),
                );
                bits.extend(r.tanh_cells[at..][..UNITS].iter().map(|v| v.to_bits()));
            }
        }
        bits
    }

    /// Sizes `I`, `H` and the batch of a check.
    #[derive(Clone, Copy)]
    struct Sizes(usize, usize, usize);

    /// Five blocks: a single row takes tiles of four blocks and one (AVX-512 build), a batch tiles
    /// of two blocks and one.
    const SMALL: Sizes = Sizes(3, 17, 7);

    /// Deep enough for the AVX-512 build's overlapped tiles (`sequence_wide.rs`): three full
    /// tiles of rows (one tile's update overlapping the next one's product) and a row left over,
    /// eight pairs of whole blocks.
    const DEEP: Sizes = Sizes(10, 64, 13);

    /// As [`DEEP`] with a last pair of blocks that has padding units (taken tile by tile).
    const DEEP_PADDED: Sizes = Sizes(10, 62, 13);

    fn check<V: Variant>(kind: u32, k: usize, Sizes(i, h, batch): Sizes) {
        let x = values(batch * T * i, 7);
        let (hidden, state) = (values(batch * h, 8), values(k * batch * h, 9));
        let mut inference = crate::tests::test_cell(kind, k, i, h);
        inference.forward(batch, T, &x, &hidden, &state);
        let mut whole = Record::default();
        forward::<V>(
            &inference.weights,
            &mut whole,
            batch,
            T,
            &x,
            &hidden,
            &state,
        );
        let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&whole.output),
            bits(&inference.workspace.output),
            "kind {kind}"
        );
        for b in 0..batch {
            let state_b: Vec<f32> = (0..k)
                .flat_map(|lane| state[(lane * batch + b) * h..][..h].to_vec())
                .collect();
            let mut alone = Record::default();
            forward::<V>(
                &inference.weights,
                &mut alone,
                1,
                T,
                &x[b * T * i..][..T * i],
                &hidden[b * h..][..h],
                &state_b,
            );
            assert_eq!(
                recorded(&whole, b, h),
                recorded(&alone, 0, h),
                "kind {kind}, row {b}"
            );
        }
    }

    /// The inference forward of `kind` from a zero initial hidden state (`+0` or `-0`, with the
    /// cells `state`): with step 0's products skipped and with them run, the same bits.
    fn check_zero_hidden(kind: u32, k: usize, Sizes(i, h, batch): Sizes) {
        let x = values(batch * T * i, 7);
        let state = values(k * batch * h, 9);
        for zero in [0.0, -0.0] {
            let hidden = vec![zero; batch * h];
            let mut cell = crate::tests::test_cell(kind, k, i, h);
            let mut run = |skip: bool| {
                cell.weights.h2h_finite = skip;
                cell.forward(batch, T, &x, &hidden, &state);
                assert_eq!(crate::sequence::zero_hidden(&cell.weights, &hidden), skip);
                let ws = &cell.workspace;
                [&ws.output[..], &ws.hidden[..], &ws.state[..]]
                    .map(|v| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
            };
            assert_eq!(run(true), run(false), "kind {kind}, hidden {zero}");
        }
    }

    #[test]
    fn skipping_a_zero_initial_hidden_state_leaves_the_bits_as_they_were() {
        for sizes in [SMALL, DEEP, DEEP_PADDED] {
            check_zero_hidden(variants::LSTM, 1, sizes);
            check_zero_hidden(variants::ARRAY, 3, sizes);
            check_zero_hidden(variants::ATTENTION, 2, sizes);
            check_zero_hidden(variants::STOCHASTIC, 3, sizes);
        }
    }

    #[test]
    fn every_row_records_the_same_bits_alone_and_in_a_batch_as_the_inference_forward() {
        for sizes in [SMALL, DEEP, DEEP_PADDED] {
            check::<Array>(variants::LSTM, 1, sizes);
            check::<Array>(variants::ARRAY, 3, sizes);
            check::<Attention>(variants::ATTENTION, 2, sizes);
            check::<Stochastic>(variants::STOCHASTIC, 3, sizes);
        }
    }
}
