//! The time loop: per step, the attention projection (attention only) and then, for every block
//! of hidden units, lane and tile of batch rows, the fused GEMM + cell update.
//!
//! [`forward`] runs a whole call; [`begin`], [`step`] and [`finish`] run it step by step, each
//! step on a range of blocks only, for threads that share the hidden units of a small batch and
//! trade `h_t` between steps (`src/backends/wasm/shared_units.ts`).
//!
//! Loop order: block → lane → batch rows, so one lane's panel (`depth · TILE` floats, 9 KiB at the
//! documentation's sizes) stays in L1 while all rows stream past it; the `k` panels of a block
//! together would not fit (measured 4% slower with lanes innermost). The lane reduction therefore
//! accumulates in the next input row's `h` slot (and `best` for the stochastic argmax) rather than
//! in registers; the pre-activations themselves never leave registers.
//!
//! Buffers (all in wasm memory, reused across calls):
//! * `rows`, `next_rows`: `(B, depth)` input rows `[x_t | h_{t-1}]`; a step reads `rows` and writes
//!   `h_t` into `next_rows`, then they swap, so no step reads a hidden state it is overwriting.
//! * `best`: `(B, hidden_pad)` the stochastic variant's best output gate so far (lanes in order);
//!   the other variants leave it empty.
//! * `cells`: `(blocks, k, B, UNITS)` cell states, updated in place (each tile owns its cells);
//!   block- and lane-major, so the sweep over batch rows for one block and lane reads them
//!   sequentially, and the cells of a tile's consecutive rows are one vector.
//! * `attention`: `(B, attention_cols)` lane weights `s` of the current step.
//! * `output` `(B, T, H)`, `hidden` `(B, H)`, `state` `(k, B, H)`: the results, in the reference's
//!   layouts, read by JavaScript with one copy each.
//! * Opt-in ([`Extras`], off by default): `attention_out` `(B, T, H, k)`, the lane weights of every
//!   step, copied from `attention` after each step; `lanes_out` `(B, T, H)`, the stochastic
//!   variant's chosen lane, tracked in `chosen` `(B, hidden_pad)` beside `best` by the argmax.

use crate::aligned::Floats;
use crate::cell::{Variant, MAX_TILE};
use crate::gemm::{accumulate, load, store, Tile};
use crate::math::{exp_all, sigmoid_all, tanh_all, Gate};
use crate::pack::{Layout, TILE, UNITS};
use crate::simd::*;

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
#[path = "sequence_wide.rs"]
pub(crate) mod wide;

/// Packed, resident weights of one cell.
pub struct Weights {
    /// Sizes and padding.
    pub layout: Layout,
    /// Gate panels, see [`crate::pack::gate_panels`].
    pub gates: Floats,
    /// Summed gate biases, `(blocks, k, TILE)`.
    pub gate_bias: Floats,
    /// Attention panels (attention only, else empty).
    pub attention: Floats,
    /// Attention bias in column order (attention only, else empty).
    pub attention_bias: Floats,
    /// Attention: give every lane the largest lane weight.
    pub max_pooling: bool,
    /// The forget, input and output gates' activation.
    pub gate: Gate,
    /// Whether every `h2h.weight` is finite: then an all-zero initial hidden state adds exact
    /// zeros to step 0's pre-activations, and the forwards skip those products (with an infinite
    /// or NaN weight they are NaN, as in PyTorch, and are not skipped).
    pub h2h_finite: bool,
}

/// Per-call buffers, kept between calls so their memory is allocated once.
#[derive(Default)]
pub struct Workspace {
    /// Sizes of the call [`begin`] set up.
    call: Call,
    rows: Floats,
    next_rows: Floats,
    cells: Floats,
    best: Floats,
    attention: Floats,
    chosen: Floats,
    /// Which opt-in outputs the next call writes.
    pub extras: Extras,
    /// With `extras.attention`: attention weights of every step, `(B, T, H, k)`.
    pub attention_out: Floats,
    /// With `extras.lanes`: the stochastic variant's chosen lane of every step, `(B, T, H)`.
    pub lanes_out: Vec<i32>,
    /// Hidden state after every step, `(B, T, H)` (unused by a call given an array of its
    /// caller's, [`Workspace::write_output_to`]).
    pub output: Floats,
    /// Where the next call writes the hidden state of every step instead of `output`: the
    /// native library's caller's array, address and length (so its threads skip a copy of the
    /// largest result, 5 MB a call at the documentation's sizes). Taken by that call's [`begin`]
    /// first thing, so a call that fails never leaves it to a later one.
    output_into: Option<(usize, usize)>,
    /// Final hidden state, `(B, H)`.
    pub hidden: Floats,
    /// Final cell states, `(k, B, H)`.
    pub state: Floats,
}

impl Workspace {
    /// Makes the next call write its output `(B, T, H)` to the `len` floats at `target` instead
    /// of [`Workspace::output`].
    ///
    /// # Safety
    /// `target` holds `len` floats, which nothing else reads or writes until that call returns.
    #[cfg(feature = "ffi")]
    pub unsafe fn write_output_to(&mut self, target: *mut f32, len: usize) {
        self.output_into = Some((target as usize, len));
    }

    /// The output array of the current call.
    fn output_ptr(&mut self) -> *mut f32 {
        match self.call.output_into {
            Some((address, _)) => address as *mut f32,
            None => self.output.as_mut_ptr(),
        }
    }

    /// The `(B, depth)` input rows of the next step, `[x | h]`, whose `h` part (from `input_pad`)
    /// a thread sharing the hidden units with others completes between steps.
    pub fn hidden_rows(&mut self) -> &mut [f32] {
        &mut self.rows
    }
}

/// The opt-in per-step outputs of a call; a variant without the feature ignores its flag.
#[derive(Default, Clone, Copy)]
pub struct Extras {
    /// Attention weights (attention variant).
    pub attention: bool,
    /// Chosen lanes (stochastic variant).
    pub lanes: bool,
}

/// Bytes a wasm32 memory holds at most: 65536 pages of 64 KiB.
pub const MEMORY_BYTES: u64 = 1 << 32;

/// The number of `f32` in a buffer of shape `dims`, or `None` if its bytes exceed
/// [`MEMORY_BYTES`]. Computed in `u64`, so a size that would wrap a 32-bit `usize` is refused, not
/// wrapped, on every target.
pub fn floats(dims: &[usize]) -> Option<usize> {
    let count = dims.iter().try_fold(1u64, |product, &dim| {
        product.checked_mul(u64::try_from(dim).ok()?)
    })?;
    if count.checked_mul(4)? > MEMORY_BYTES {
        return None;
    }
    usize::try_from(count).ok()
}

/// Sizes of one call.
#[derive(Default, Clone, Copy)]
struct Call {
    batch: usize,
    seq_len: usize,
    /// [`Workspace::output_into`] of this call.
    output_into: Option<(usize, usize)>,
    /// Whether step 0 skips the products of the initial hidden state ([`zero_hidden`]).
    zero_hidden: bool,
}

/// Whether an initial hidden state `hidden0` adds nothing to step 0's pre-activations: all zeros,
/// with finite recurrent weights ([`Weights::h2h_finite`]). Then step 0's product runs over the
/// `x` columns only: the default initial state, where the `h` columns are about 90 % of the
/// product at the documentation's sizes (a tenth of a 10-step forward's work). Skipping exact
/// zeros leaves every value's bits as they were: a sum plus zeros is that sum, up to the sign
/// of a zero sum, and the gates' activations give `±0` the same value.
pub fn zero_hidden(weights: &Weights, hidden0: &[f32]) -> bool {
    weights.h2h_finite && hidden0.iter().all(|&h| h == 0.0)
}

/// The input columns step `t`'s product runs over: the `x` columns alone at step 0 after an
/// initial state that is [`zero_hidden`] (the `h` columns come after them), else all.
pub fn product_depth(l: &Layout, t: usize, zero_hidden: bool) -> usize {
    if t == 0 && zero_hidden {
        l.input_pad
    } else {
        l.depth
    }
}

/// Runs `seq_len` steps of variant `V` on `batch` sequences `x` `(B, T, I)` from `hidden0`
/// `(B, H)` and `state0` `(k, B, H)`; the results land in `ws.output`, `ws.hidden`, `ws.state`.
pub fn forward<V: Variant>(
    weights: &Weights,
    ws: &mut Workspace,
    batch: usize,
    seq_len: usize,
    x: &[f32],
    hidden0: &[f32],
    state0: &[f32],
) {
    begin::<V>(weights, ws, batch, seq_len, x, hidden0, state0);
    for t in 0..seq_len {
        step::<V>(weights, ws, x, t, 0, weights.layout.blocks);
    }
    finish(weights, ws);
}

/// Sizes the buffers for a call of `seq_len` steps on `batch` sequences and loads the initial
/// state `hidden0` `(B, H)`, `state0` `(k, B, H)`; `x` `(B, T, I)` is only checked. The steps
/// follow with [`step`], then [`finish`].
pub fn begin<V: Variant>(
    weights: &Weights,
    ws: &mut Workspace,
    batch: usize,
    seq_len: usize,
    x: &[f32],
    hidden0: &[f32],
    state0: &[f32],
) {
    let output_into = ws.output_into.take();
    let l = weights.layout;
    // Every buffer's length is checked to fit in wasm32 memory before anything is sized from it:
    // a product that wrapped around would size a buffer too small for the loops below.
    let len = |dims: &[usize]| floats(dims).expect("a buffer does not fit in wasm32 memory");
    assert_eq!(
        x.len(),
        len(&[batch, seq_len, l.input]),
        "x has the wrong length"
    );
    assert_eq!(
        hidden0.len(),
        len(&[batch, l.hidden]),
        "hidden has the wrong length"
    );
    assert_eq!(
        state0.len(),
        len(&[l.k, batch, l.hidden]),
        "state has the wrong length"
    );
    ws.call = Call {
        batch,
        seq_len,
        output_into,
        zero_hidden: zero_hidden(weights, hidden0),
    };
    ws.rows.reset(len(&[batch, l.depth]));
    ws.next_rows.reset(len(&[batch, l.depth]));
    ws.cells.reset(len(&[batch, l.k, l.hidden_pad]));
    if V::ARGMAX {
        ws.best.reset(len(&[batch, l.hidden_pad]));
    }
    match output_into {
        Some((_, target)) => assert_eq!(
            target,
            len(&[batch, seq_len, l.hidden]),
            "the output array has the wrong length"
        ),
        None => ws.output.reset(len(&[batch, seq_len, l.hidden])),
    }
    if V::ATTENTION {
        ws.attention.reset(len(&[batch, l.attention_cols]));
    }
    if V::ATTENTION && ws.extras.attention {
        ws.attention_out
            .reset(len(&[batch, seq_len, l.hidden, l.k]));
    }
    if V::ARGMAX && ws.extras.lanes {
        ws.chosen.reset(len(&[batch, l.hidden_pad]));
        ws.lanes_out.clear();
        ws.lanes_out.resize(len(&[batch, seq_len, l.hidden]), 0);
    }
    for b in 0..batch {
        ws.rows[b * l.depth + l.input_pad..][..l.hidden]
            .copy_from_slice(&hidden0[b * l.hidden..][..l.hidden]);
        for lane in 0..l.k {
            for unit in 0..l.hidden {
                ws.cells[cell_index(&l, batch, b, lane, unit)] =
                    state0[(lane * batch + b) * l.hidden + unit];
            }
        }
    }
}

/// Step `t` of the call [`begin`] set up, for the blocks of hidden units `first_block ..
/// end_block` only (all of them, or one thread's share when the units are split over threads);
/// `x` is the call's input. Afterwards `ws.rows` holds `[x_t | h_t]` with `h_t` of those blocks
/// (the others unchanged from `h_{t-1}`: the caller writes them, see [`Workspace::hidden_rows`]),
/// and the output holds `h_t` of those blocks.
pub fn step<V: Variant>(
    weights: &Weights,
    ws: &mut Workspace,
    x: &[f32],
    t: usize,
    first_block: usize,
    end_block: usize,
) {
    let l = &weights.layout;
    let call = ws.call;
    assert!(t < call.seq_len, "step {t} of {} steps", call.seq_len);
    assert!(
        first_block <= end_block && end_block <= l.blocks,
        "blocks {first_block}..{end_block} of {}",
        l.blocks
    );
    assert_eq!(
        x.len(),
        call.batch * call.seq_len * l.input,
        "x has the wrong length"
    );
    for b in 0..call.batch {
        ws.rows[b * l.depth..][..l.input]
            .copy_from_slice(&x[(b * call.seq_len + t) * l.input..][..l.input]);
    }
    if first_block > 0 || end_block < l.blocks {
        // Blocks another thread computes: their `h_{t-1}` (written into `rows` by the caller)
        // carries over, so the next step's `rows` is whole once the caller adds their `h_t`.
        for b in 0..call.batch {
            let hidden = b * l.depth + l.input_pad..(b + 1) * l.depth;
            ws.next_rows[hidden.clone()].copy_from_slice(&ws.rows[hidden]);
        }
    }
    // SAFETY: every buffer was sized by `begin` for this call's `batch` and `seq_len`.
    unsafe {
        if V::ATTENTION {
            attention_step(weights, &call, &ws.rows, &mut ws.attention);
            if ws.extras.attention {
                copy_attention(l, &call, t, &ws.attention, &mut ws.attention_out);
            }
        }
        let mut kernel = GateTiles::<V> {
            weights,
            call: &call,
            t,
            depth: product_depth(l, t, call.zero_hidden),
            ws: &mut *ws,
            variant: core::marker::PhantomData,
        };
        tiles(&mut kernel, l.k, call.batch, first_block, end_block);
    }
    core::mem::swap(&mut ws.rows, &mut ws.next_rows);
}

/// The final hidden state and cells of the call, from the last step's `rows` and the cells.
pub fn finish(weights: &Weights, ws: &mut Workspace) {
    let l = weights.layout;
    let Call { batch, .. } = ws.call;
    ws.hidden.reset(batch * l.hidden);
    ws.state.reset(l.k * batch * l.hidden);
    for b in 0..batch {
        ws.hidden[b * l.hidden..][..l.hidden]
            .copy_from_slice(&ws.rows[b * l.depth + l.input_pad..][..l.hidden]);
        for lane in 0..l.k {
            for unit in 0..l.hidden {
                ws.state[(lane * batch + b) * l.hidden + unit] =
                    ws.cells[cell_index(&l, batch, b, lane, unit)];
            }
        }
    }
}

/// Index of the cell of batch row `b`, `lane`, `unit` in the `(blocks, k, B, UNITS)` layout.
#[inline(always)]
fn cell_index(l: &Layout, batch: usize, b: usize, lane: usize, unit: usize) -> usize {
    (((unit / UNITS) * l.k + lane) * batch + b) * UNITS + unit % UNITS
}

/// A fused kernel of one tile and one lane, which [`tiles`] calls in the forward's tile order:
/// the inference forward's [`gate_tile`] and the training forward's (`crate::record`), so both
/// take the same tiles and give every batch row the same bits.
pub(crate) trait TileKernel {
    /// Lane `lane` of batch rows `rows` and blocks of hidden units `blocks`.
    ///
    /// # Safety
    /// The rows and blocks are within the buffers the kernel writes.
    unsafe fn tile<const MR: usize, const NB: usize>(
        &mut self,
        lane: usize,
        rows: [usize; MR],
        blocks: [usize; NB],
    );

    /// Lane `lane` of `count` tiles of four consecutive rows from row `first` and blocks
    /// `blocks`, in that order (a kernel may overlap one tile's work with the next one's).
    ///
    /// # Safety
    /// As [`TileKernel::tile`].
    #[inline(always)]
    unsafe fn four_row_tiles<const NB: usize>(
        &mut self,
        lane: usize,
        first: usize,
        count: usize,
        blocks: [usize; NB],
    ) {
        tile_by_tile(self, lane, first, count, blocks);
    }
}

/// [`TileKernel::four_row_tiles`] as `count` calls of [`TileKernel::tile`].
///
/// # Safety
/// As [`TileKernel::tile`].
#[inline(always)]
pub(crate) unsafe fn tile_by_tile<K: TileKernel + ?Sized, const NB: usize>(
    kernel: &mut K,
    lane: usize,
    first: usize,
    count: usize,
    blocks: [usize; NB],
) {
    for b in (first..first + 4 * count).step_by(4) {
        kernel.tile(lane, [b, b + 1, b + 2, b + 3], blocks);
    }
}

/// One step of the tiles of blocks `first_block .. end_block` of a cell with `lanes` lanes and
/// `batch` rows. Per group of [`BLOCKS`] blocks of hidden units and per lane, the batch rows go by
/// in tiles ([`row_tiles`]) so that the lane's panels, `depth · TILE` floats each, stay in L1 while
/// every row passes them; a single row takes [`SINGLE_ROW_BLOCKS`] blocks at a time instead, so the
/// kernel still has eight independent accumulators.
///
/// # Safety
/// As [`TileKernel::tile`], for every row below `batch` and block in the range.
pub(crate) unsafe fn tiles<K: TileKernel>(
    kernel: &mut K,
    lanes: usize,
    batch: usize,
    first_block: usize,
    end_block: usize,
) {
    let mut block = first_block;
    if batch == 1 {
        while block + SINGLE_ROW_BLOCKS <= end_block {
            let blocks: [usize; SINGLE_ROW_BLOCKS] = core::array::from_fn(|n| block + n);
            row_tiles(kernel, lanes, batch, blocks);
            block += SINGLE_ROW_BLOCKS;
        }
    }
    while block + BLOCKS <= end_block {
        let blocks: [usize; BLOCKS] = core::array::from_fn(|n| block + n);
        row_tiles(kernel, lanes, batch, blocks);
        block += BLOCKS;
    }
    for block in block..end_block {
        row_tiles(kernel, lanes, batch, [block]);
    }
}

/// Blocks of hidden units per tile of [`tiles`]: two in the native AVX-512 build (4 rows × 2
/// blocks, see `gemm_wide.rs`), one elsewhere (the wasm module's tiles are 2 rows × 1 block, see
/// `gemm.rs`).
const BLOCKS: usize = if cfg!(all(target_arch = "x86_64", target_feature = "avx512f")) {
    2
} else {
    1
};

/// Whether [`softmax_row`] takes the softmax of four blocks of four lanes at once (the native
/// AVX-512 build, `sequence_wide.rs`).
const WIDE_SOFTMAX: bool = cfg!(all(target_arch = "x86_64", target_feature = "avx512f"));

/// Blocks per tile when the batch is a single row: eight accumulators (with the AVX-512 build's
/// two partial sums each, four blocks).
const SINGLE_ROW_BLOCKS: usize = 2 * BLOCKS;

/// Every batch row of `blocks`, one lane after the other: tiles of four rows first in the native
/// AVX-512 build (16 accumulators of its 32 registers), then pairs, then the row left over.
#[inline(always)]
unsafe fn row_tiles<K: TileKernel, const NB: usize>(
    kernel: &mut K,
    lanes: usize,
    batch: usize,
    blocks: [usize; NB],
) {
    for lane in 0..lanes {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        let mut b = {
            kernel.four_row_tiles(lane, 0, batch / 4, blocks);
            batch / 4 * 4
        };
        #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
        let mut b = 0;
        while b + 2 <= batch {
            kernel.tile(lane, [b, b + 1], blocks);
            b += 2;
        }
        if b < batch {
            kernel.tile(lane, [b], blocks);
        }
    }
}

/// The inference forward's step `t` as a [`TileKernel`], its product over the first `depth`
/// input columns.
struct GateTiles<'a, V> {
    weights: &'a Weights,
    call: &'a Call,
    t: usize,
    depth: usize,
    ws: &'a mut Workspace,
    variant: core::marker::PhantomData<V>,
}

impl<V: Variant> GateTiles<'_, V> {
    /// Whether full tiles take the 512-bit kernels (`sequence_wide.rs`), which do not keep the
    /// stochastic argmax's chosen lanes (`returnLanes`).
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    fn wide(&self) -> bool {
        !(V::ARGMAX && self.ws.extras.lanes)
    }
}

impl<V: Variant> TileKernel for GateTiles<'_, V> {
    #[inline(always)]
    unsafe fn tile<const MR: usize, const NB: usize>(
        &mut self,
        lane: usize,
        rows: [usize; MR],
        blocks: [usize; NB],
    ) {
        let (weights, call, t, depth) = (self.weights, self.call, self.t, self.depth);
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        if let (true, Some((rows, blocks))) = (self.wide(), wide::full_tile(rows, blocks)) {
            return wide::lane_tile::<V>(weights, call, t, depth, self.ws, lane, rows, blocks);
        }
        gate_tile::<V, MR, NB>(weights, call, t, depth, self.ws, lane, rows, blocks);
    }

    #[inline(always)]
    unsafe fn four_row_tiles<const NB: usize>(
        &mut self,
        lane: usize,
        first: usize,
        count: usize,
        blocks: [usize; NB],
    ) {
        #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
        if self.wide() {
            let (weights, call, t) = (self.weights, self.call, self.t);
            if let Some(blocks) = wide::overlapped_blocks(weights, blocks, self.depth) {
                let ws = &mut *self.ws;
                return wide::overlapped_tiles::<V>(
                    weights, call, t, ws, lane, first, count, blocks,
                );
            }
        }
        tile_by_tile(self, lane, first, count, blocks);
    }
}

/// The fused kernel of one tile and one lane: `z = bias + [x_t | h_{t-1}] · panel` over the first
/// `depth` input columns, in registers, the lane's cell update, and the fold into the partial `h_t`
/// (kept in `next_rows`, lane 0 first); the last lane writes the finished `h_t` to the output too.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
unsafe fn gate_tile<V: Variant, const MR: usize, const NB: usize>(
    weights: &Weights,
    call: &Call,
    t: usize,
    depth: usize,
    ws: &mut Workspace,
    lane: usize,
    batch_rows: [usize; MR],
    blocks: [usize; NB],
) {
    let l = &weights.layout;
    let rows = batch_rows.map(|b| ws.rows.as_ptr().add(b * l.depth));
    let mut acc: Tile<MR, NB> = [[[f32x4_splat(0.0); 4]; NB]; MR];
    for n in 0..NB {
        let bias = weights
            .gate_bias
            .as_ptr()
            .add((blocks[n] * l.k + lane) * TILE);
        for r in 0..MR {
            for gate in 0..4 {
                acc[r][n][gate] = load(bias.add(gate * UNITS));
            }
        }
    }
    let panels = blocks.map(|block| {
        weights
            .gates
            .as_ptr()
            .add((block * l.k + lane) * l.depth * TILE)
    });
    accumulate(&mut acc, &rows, &panels, depth);
    // The tile's (row, block) pairs, flattened: row-major, `m = r · NB + n`.
    let m_count = MR * NB;
    let mut z = [[f32x4_splat(0.0); 4]; MAX_TILE];
    let mut c = [f32x4_splat(0.0); MAX_TILE];
    let mut s = [f32x4_splat(0.0); MAX_TILE];
    let mut cells = [core::ptr::null_mut::<f32>(); MAX_TILE];
    for r in 0..MR {
        for n in 0..NB {
            let (m, b, unit) = (r * NB + n, batch_rows[r], blocks[n] * UNITS);
            z[m] = acc[r][n];
            cells[m] = ws
                .cells
                .as_mut_ptr()
                .add(cell_index(l, call.batch, b, lane, unit));
            c[m] = load(cells[m]);
            if V::ATTENTION {
                s[m] = load(
                    ws.attention
                        .as_ptr()
                        .add(b * l.attention_cols + (blocks[n] * l.k + lane) * UNITS),
                );
            }
        }
    }
    let mut output_gate = [f32x4_splat(0.0); MAX_TILE];
    V::lane(
        &z[..m_count],
        weights.gate,
        &mut c[..m_count],
        &s[..m_count],
        &mut output_gate[..m_count],
    );
    let mut tanh_c = c;
    tanh_all(&mut tanh_c[..m_count]);
    for r in 0..MR {
        for n in 0..NB {
            let (m, b, unit) = (r * NB + n, batch_rows[r], blocks[n] * UNITS);
            store(cells[m], c[m]);
            let best_before = fold_lane::<V>(
                l,
                lane,
                output_gate[m],
                tanh_c[m],
                ws.next_rows.as_mut_ptr(),
                ws.best.as_mut_ptr(),
                ws.output_ptr(),
                [b, call.seq_len, t, unit],
            );
            if V::ARGMAX && ws.extras.lanes {
                track_lane(l, call, t, ws, lane, b, unit, output_gate[m], best_before);
            }
        }
    }
}

/// The stochastic argmax's lane index beside its `best` gate (the same strict comparison, so the
/// first lane wins a tie); after the last lane, the chosen lanes of the block go to `lanes_out`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn track_lane(
    l: &Layout,
    call: &Call,
    t: usize,
    ws: &mut Workspace,
    lane: usize,
    b: usize,
    unit: usize,
    output_gate: v128,
    best_before: v128,
) {
    let chosen = ws.chosen.as_mut_ptr().add(b * l.hidden_pad + unit);
    let index = if lane == 0 {
        f32x4_splat(0.0)
    } else {
        let wins = f32x4_gt(output_gate, best_before);
        v128_bitselect(f32x4_splat(lane as f32), load(chosen), wins)
    };
    if lane + 1 < l.k {
        store(chosen, index);
        return;
    }
    let mut lanes = [0.0f32; UNITS];
    store(lanes.as_mut_ptr(), index);
    let out = &mut ws.lanes_out[(b * call.seq_len + t) * l.hidden + unit..];
    for (u, value) in lanes.iter().take(UNITS.min(l.hidden - unit)).enumerate() {
        out[u] = *value as i32;
    }
}

/// Step `t`'s lane weights, `(B, attention_cols)` in block-lane-unit order, into `out (B, T, H, k)`.
fn copy_attention(l: &Layout, call: &Call, t: usize, attention: &[f32], out: &mut [f32]) {
    for b in 0..call.batch {
        let row = &attention[b * l.attention_cols..];
        let step = &mut out[(b * call.seq_len + t) * l.hidden * l.k..][..l.hidden * l.k];
        for unit in 0..l.hidden {
            for lane in 0..l.k {
                step[unit * l.k + lane] = row[((unit / UNITS) * l.k + lane) * UNITS + unit % UNITS];
            }
        }
    }
}

/// Folds lane `lane` of the block of units from `unit` of batch row `b` (its output gate and the
/// `tanh` of its new cell) into the partial `h_t`, which lives in `next_rows` (`(B, depth)`)
/// between lanes, beside the argmax's `best` (`(B, hidden_pad)`, empty for the other variants);
/// after the last lane, writes the finished `h_t` to the next input row and to `output`
/// `(B, T, H)` at step `t` of `seq_len`. Returns the best gate before this lane (for the
/// stochastic variant's chosen lane). The inference and the training forward share it, so the
/// two reduce the lanes with the same operations, bit for bit.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub unsafe fn fold_lane<V: Variant>(
    l: &Layout,
    lane: usize,
    output_gate: v128,
    tanh_c: v128,
    next_rows: *mut f32,
    best: *mut f32,
    output: *mut f32,
    [b, seq_len, t, unit]: [usize; 4],
) -> v128 {
    let next = next_rows.add(b * l.depth + l.input_pad + unit);
    // Only dereferenced by the argmax variant (`best` is empty for the others).
    let best = best.wrapping_add(b * l.hidden_pad + unit);
    let (mut h_partial, mut best_gate): (v128, v128) = if lane == 0 {
        (f32x4_splat(0.0), f32x4_splat(0.0))
    } else if V::ARGMAX {
        (load(next), load(best))
    } else {
        (load(next), f32x4_splat(0.0))
    };
    let best_before = best_gate;
    V::reduce(lane, output_gate, tanh_c, &mut h_partial, &mut best_gate);
    if lane + 1 < l.k {
        store(next, h_partial);
        if V::ARGMAX {
            store(best, best_gate);
        }
    } else {
        let out = output.add((b * seq_len + t) * l.hidden + unit);
        finish_hidden(l, h_partial, next, out, unit);
    }
    best_before
}

/// Writes a finished `h_t` block to the next input row and the output.
#[inline(always)]
unsafe fn finish_hidden(l: &Layout, h: v128, next: *mut f32, out: *mut f32, unit: usize) {
    if unit + UNITS <= l.hidden {
        store(out, h);
        store(next, h);
    } else {
        // Last, partial block: padding units must stay exactly zero in the next input row.
        let mut lanes = [0.0f32; UNITS];
        store(lanes.as_mut_ptr(), h);
        for value in lanes.iter_mut().skip(l.hidden - unit) {
            *value = 0.0;
        }
        store(next, load(lanes.as_ptr()));
        for (u, value) in lanes.iter().take(l.hidden - unit).enumerate() {
            *out.add(u) = *value;
        }
    }
}

/// `s = softmax over lanes of sigmoid(x_t · i2aᵀ + b)` for every batch row (max-pooled when asked).
unsafe fn attention_step(weights: &Weights, call: &Call, rows: &[f32], attention: &mut [f32]) {
    let l = &weights.layout;
    let mut b = 0;
    while b + 2 <= call.batch {
        attention_tile::<2>(weights, rows, attention, [b, b + 1]);
        b += 2;
    }
    if b < call.batch {
        attention_tile::<1>(weights, rows, attention, [b]);
    }
    for b in 0..call.batch {
        let row = attention.as_mut_ptr().add(b * l.attention_cols);
        softmax_row(l, row, weights.max_pooling);
    }
}

/// [`softmax_lanes`] of every block of one batch row's lane weights at `row`; four blocks at a
/// time when the lanes are four and the build is the native AVX-512 one (`sequence_wide.rs`).
///
/// # Safety
/// `row` holds the `attention_cols` floats of a row.
#[inline(always)]
pub unsafe fn softmax_row(l: &Layout, row: *mut f32, max_pooling: bool) {
    let wide_blocks = if WIDE_SOFTMAX && l.k == 4 {
        l.blocks / 4 * 4
    } else {
        0
    };
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    for block in (0..wide_blocks).step_by(4) {
        wide::softmax_four_blocks(row.add(block * 4 * UNITS), max_pooling);
    }
    for block in wide_blocks..l.blocks {
        softmax_lanes(row.add(block * l.k * UNITS), l.k, max_pooling);
    }
}

/// `sigmoid(bias + x_t · panel)` for all attention panels of `MR` batch rows.
#[inline(always)]
unsafe fn attention_tile<const MR: usize>(
    weights: &Weights,
    rows: &[f32],
    attention: &mut [f32],
    batch_rows: [usize; MR],
) {
    let l = &weights.layout;
    let row_ptrs = batch_rows.map(|b| rows.as_ptr().add(b * l.depth));
    for panel in 0..l.attention_cols / TILE {
        let bias = weights.attention_bias.as_ptr().add(panel * TILE);
        let mut acc: Tile<MR, 1> = [[[f32x4_splat(0.0); 4]; 1]; MR];
        for r in 0..MR {
            for c in 0..4 {
                acc[r][0][c] = load(bias.add(c * UNITS));
            }
        }
        let panels = [weights.attention.as_ptr().add(panel * l.input_pad * TILE)];
        accumulate(&mut acc, &row_ptrs, &panels, l.input_pad);
        for r in 0..MR {
            let out = attention
                .as_mut_ptr()
                .add(batch_rows[r] * l.attention_cols + panel * TILE);
            let mut a = acc[r][0];
            sigmoid_all(&mut a);
            for (c, value) in a.iter().enumerate() {
                store(out.add(c * UNITS), *value);
            }
        }
    }
}

/// In place over the `k` lane vectors at `a` (four units each): `s_j = e^(a_j − m) / Σ e^(a_i − m)`
/// with `m = max a`, then, with max pooling, `s_j = max_i s_i`.
#[inline(always)]
unsafe fn softmax_lanes(a: *mut f32, k: usize, max_pooling: bool) {
    let mut max = load(a);
    for lane in 1..k {
        max = f32x4_max(max, load(a.add(lane * UNITS)));
    }
    let mut sum = f32x4_splat(0.0);
    for lane in 0..k {
        let mut e = [f32x4_sub(load(a.add(lane * UNITS)), max)];
        exp_all(&mut e);
        store(a.add(lane * UNITS), e[0]);
        sum = f32x4_add(sum, e[0]);
    }
    let mut largest = f32x4_splat(0.0);
    for lane in 0..k {
        let s = f32x4_div(load(a.add(lane * UNITS)), sum);
        store(a.add(lane * UNITS), s);
        largest = f32x4_max(largest, s);
    }
    if max_pooling {
        for lane in 0..k {
            store(a.add(lane * UNITS), largest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    #[test]
    fn four_blocks_of_four_lanes_take_the_softmax_of_each_block_bit_for_bit() {
        // Sigmoids in [0, 1], their edges, and NaN, at every place of the 64.
        let mut values: Vec<f32> = (0..=256).map(|i| i as f32 / 256.0).collect();
        values.extend([0.0, -0.0, 1.0, f32::NAN, 0.5, 1e-30, 0.999_999_9]);
        for shift in 0..64 {
            for max_pooling in [false, true] {
                let mut values = values.clone();
                values.rotate_left(shift);
                values.truncate(64 * (values.len() / 64));
                let (mut wide, mut narrow) = (values.clone(), values);
                for (w, n) in wide.chunks_exact_mut(64).zip(narrow.chunks_exact_mut(64)) {
                    // SAFETY: 64 floats each.
                    unsafe {
                        wide::softmax_four_blocks(w.as_mut_ptr(), max_pooling);
                        for block in 0..4 {
                            softmax_lanes(n.as_mut_ptr().add(16 * block), 4, max_pooling);
                        }
                    }
                }
                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&wide),
                    bits(&narrow),
                    "shift {shift}, pooling {max_pooling}"
                );
            }
        }
    }

    #[test]
    fn floats_multiplies_the_dimensions() {
        assert_eq!(floats(&[3, 5, 7]), Some(105));
        assert_eq!(floats(&[]), Some(1));
        assert_eq!(floats(&[0, usize::MAX]), Some(0));
    }

    #[test]
    fn floats_refuses_what_exceeds_wasm32_memory_instead_of_wrapping() {
        // 2^30 floats are exactly 4 GiB; one more does not fit.
        assert_eq!(floats(&[1 << 15, 1 << 15]), Some(1 << 30));
        assert_eq!(floats(&[(1 << 30) + 1]), None);
        // batch · seq_len · hidden = 2^32 wraps to 0 in a 32-bit usize.
        assert_eq!(floats(&[1 << 16, 1 << 8, 1 << 8]), None);
        assert_eq!(floats(&[usize::MAX, usize::MAX]), None);
    }
}
