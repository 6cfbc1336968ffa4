//! Backpropagation through time over a [`Record`], the math of the float64 oracle
//! `src/backward.ts` in `f32x4`.
//!
//! Per step, in reverse: the elementwise cell backward of one block of units for all `k` lanes of
//! one batch row at a time (the lane readout, the stochastic selection, the attention softmax and
//! its max pooling need all lanes), writing the pre-activation gradients `dz` over the step's
//! activations in the record. Then one GEMM `dz · W` (`(B, G) · (G, depth)`, `W` = `[h2h | i2h]`
//! with the attention rows `[0 | i2a]` below, packed as [`transposed_panels`]) reads `dz` there
//! (the record's panels are `TILE`-column pieces of the rows of `dz`) and gives
//! `[dh_{t−1} | dx_t]`: the recurrent gradient and the input gradient (attention included) in one
//! product, each part skipped when nobody reads it ([`Wanted`]).
//!
//! After the loop, the weight and bias gradients are one GEMM over all steps and rows:
//! `dWᵀ (depth + 1, G) = Σ_t [x_t | h_{t−1} | 1]ᵀ · dz_t`, scattered into PyTorch's layouts (the
//! row of ones sums `dz`, the bias gradient, in the GEMM rather than in the elementwise pass).
//!
//! The `G` columns of `dz` are the forward's panel order: `TILE` per (block, lane) panel,
//! `[f | i | o | g]` × 4 units, then the attention columns (`crate::pack::attention_col`).
//!
//! Batch rows are independent up to the weight gradients, which are sums over rows: a batch split
//! over workers gives each worker's `x`, `hidden` and `state` gradients for its rows, and the
//! weight gradients add up (see `crate::train`).

use crate::aligned::Floats;
use crate::cell::Variant;
use crate::gemm::{accumulate, load, store, Tile};
use crate::pack::{attention_col, Layout, TILE, UNITS};
use crate::params::Offsets;
use crate::record::{Record, Shape};
use crate::sequence::Weights;
use crate::simd::*;

/// [`product`] on 512-bit vectors with taller tiles.
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
#[path = "backward_wide.rs"]
mod wide;

/// Reduction depth of one GEMM pass: a 256-row chunk of a panel is 16 KiB and stays in L1 while
/// every row of the left operand passes it.
const CHUNK: usize = 256;

/// Vectors per lane that the elementwise backward keeps across the lanes of one block.
const LANE_SCRATCH: usize = 6;

/// The parameter row a `dz` column belongs to: `(row, attention)`, `row` indexing `i2h`/`h2h`
/// (`(lane·4 + gate)·H + unit`) or, for attention columns, `i2a` (`lane·H + unit`). `None` for
/// padding columns.
pub fn parameter_row(l: &Layout, column: usize) -> Option<(usize, bool)> {
    let gate_columns = l.blocks * l.k * TILE;
    if column < gate_columns {
        let (panel, offset) = (column / TILE, column % TILE);
        let (block, lane) = (panel / l.k, panel % l.k);
        let (gate, unit) = (offset / UNITS, block * UNITS + offset % UNITS);
        (unit < l.hidden).then(|| ((lane * 4 + gate) * l.hidden + unit, false))
    } else {
        let col = column - gate_columns;
        let (group, u) = (col / UNITS, col % UNITS);
        let (block, lane) = (group / l.k, group % l.k);
        let unit = block * UNITS + u;
        debug_assert!(unit >= l.hidden || attention_col(l, lane, unit) == col);
        (unit < l.hidden).then(|| (lane * l.hidden + unit, true))
    }
}

/// Columns of `dz`: the gate columns plus, with attention, the attention columns.
pub fn dz_columns(l: &Layout, attention: bool) -> usize {
    l.blocks * l.k * TILE + if attention { l.attention_cols } else { 0 }
}

/// Columns of the `dh` part of `[dh | dx]`: `hidden_pad` rounded up to whole panels, so that the
/// `dx` panels can be skipped when nobody needs `dx`.
fn hidden_columns(l: &Layout) -> usize {
    (l.hidden_pad + TILE - 1) / TILE * TILE
}

/// Columns of `[dh | dx]`: the `dh` columns, then `input_pad` rounded up to whole panels.
fn input_columns(l: &Layout) -> usize {
    hidden_columns(l) + (l.input_pad + TILE - 1) / TILE * TILE
}

/// Packs `W` for the backward's recurrent GEMM into `packed`, keeping its allocation (an
/// optimizer step repacks every part: fresh pages cost more than the packing): panels
/// `(input_columns / TILE, G, TILE)`, row `g` of panel `q` = columns `16q .. 16q + 16` of `[h | x]`
/// (each part padded to whole panels) of the parameter row of `dz` column `g`.
pub fn transposed_panels(
    l: &Layout,
    attention: bool,
    params: &[f32],
    o: &Offsets,
    packed: &mut Floats,
) {
    let (rows, cols, x_at) = (
        dz_columns(l, attention),
        input_columns(l),
        hidden_columns(l),
    );
    packed.reset(cols * rows);
    // A piece of `TILE` columns of a parameter row at a time: one whole cache line written, where
    // a column at a time wrote one float of a line and strode on to the next panel.
    let mut put = |at: usize, values: &[f32], g: usize| {
        for (q, piece) in values.chunks(TILE).enumerate() {
            packed[((at / TILE + q) * rows + g) * TILE..][..piece.len()].copy_from_slice(piece);
        }
    };
    for g in 0..rows {
        let (row, attention_row) = match parameter_row(l, g) {
            Some(found) => found,
            None => continue,
        };
        if attention_row {
            put(
                x_at,
                &params[o.i2a_weight.start + row * l.input..][..l.input],
                g,
            );
        } else {
            put(
                x_at,
                &params[o.i2h_weight.start + row * l.input..][..l.input],
                g,
            );
            put(
                0,
                &params[o.h2h_weight.start + row * l.hidden..][..l.hidden],
                g,
            );
        }
    }
}

/// The backward's results besides the parameter gradients, and its scratch.
#[derive(Default)]
pub struct Gradients {
    /// dLoss/d`x`, `(B, T, I)`.
    pub x: Floats,
    /// dLoss/d initial hidden state, `(B, H)`.
    pub hidden: Floats,
    /// dLoss/d initial cell states, `(k, B, H)`.
    pub state: Floats,
    /// dLoss/d`h_t`, `(B, hidden_pad)`.
    dh: Floats,
    /// dLoss/d`c_t`, in the record's cell layout.
    dc: Floats,
    /// `[dh_{t−1} | dx_t]`, `(B, input_columns)`.
    d_rows: Floats,
    /// `Σ_t [x_t | h_{t−1} | 1]ᵀ · dz_t`, `(depth + 1, G)`.
    dwt: Floats,
    /// `(B, T)` of the last backward: a call of the same shape need not zero `d_rows` and `dwt`
    /// again (it writes every value it reads).
    shape: (usize, usize),
}

/// The input gradients a backward computes besides the parameter gradients and dLoss/d initial
/// `state` (always computed: they cost no GEMM).
#[derive(Clone, Copy)]
pub struct Wanted {
    /// dLoss/d`x` (the `dx` panels of the recurrent GEMM at every step); zeros when `false`.
    pub x: bool,
    /// dLoss/d initial `hidden` (the `dh` panels of the recurrent GEMM at the first step); zeros
    /// when `false`.
    pub hidden: bool,
}

/// Back-propagates `d_output` `(B, T, H)` and, when not empty, `d_hidden` `(B, H)` and `d_state`
/// `(k, B, H)` through the forward kept in `r` (overwriting its activations); adds the parameter
/// gradients to `grads` (the flat layout of `o`) and writes the input gradients to `g`, those of
/// `x` and the initial `hidden` only when `wanted`.
#[allow(clippy::too_many_arguments)]
pub fn backward<V: Variant>(
    w: &Weights,
    transposed: &[f32],
    r: &mut Record,
    g: &mut Gradients,
    d_output: &[f32],
    d_hidden: &[f32],
    d_state: &[f32],
    wanted: Wanted,
    o: &Offsets,
    grads: &mut [f32],
) {
    let (l, shape) = (w.layout, r.shape);
    let (batch, seq_len) = (shape.batch, shape.seq_len);
    assert!(r.recorded, "backward needs a training forward first");
    assert_eq!(
        d_output.len(),
        batch * seq_len * l.hidden,
        "d_output has the wrong length"
    );
    assert!(
        d_hidden.is_empty() || d_hidden.len() == batch * l.hidden,
        "d_hidden: wrong length"
    );
    assert!(
        d_state.is_empty() || d_state.len() == l.k * batch * l.hidden,
        "d_state has the wrong length"
    );
    let columns = dz_columns(&l, V::ATTENTION);
    let gate_columns = dz_columns(&l, false);
    let cols_in = input_columns(&l);
    let (h_panels, x_panels) = (
        hidden_columns(&l) / TILE,
        cols_in / TILE - hidden_columns(&l) / TILE,
    );
    if !wanted.x || g.shape != (batch, seq_len) {
        g.x.reset(batch * seq_len * l.input);
    }
    if g.shape != (batch, seq_len) {
        g.d_rows.reset(batch * cols_in);
        g.dwt.reset((l.depth + 1) * columns);
        g.shape = (batch, seq_len);
    }
    g.dh.reset(batch * l.hidden_pad);
    g.dc.reset(shape.cell_step);
    for b in 0..batch {
        if !d_hidden.is_empty() {
            g.dh[b * l.hidden_pad..][..l.hidden]
                .copy_from_slice(&d_hidden[b * l.hidden..][..l.hidden]);
        }
        if !d_state.is_empty() {
            for lane in 0..l.k {
                for unit in 0..l.hidden {
                    let at = shape.cell_at((unit / UNITS) * l.k + lane, b) + unit % UNITS;
                    g.dc[at] = d_state[(lane * batch + b) * l.hidden + unit];
                }
            }
        }
    }
    let mut lanes = vec![f32x4_splat(0.0); LANE_SCRATCH * l.k];
    for t in (0..seq_len).rev() {
        for b in 0..batch {
            let dh = &mut g.dh[b * l.hidden_pad..][..l.hidden];
            for (d, grad) in dh.iter_mut().zip(&d_output[(b * seq_len + t) * l.hidden..]) {
                *d += grad;
            }
        }
        // SAFETY: the record holds this call's shape; every buffer was sized above from it.
        unsafe {
            for block in 0..l.blocks {
                for b in 0..batch {
                    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
                    prefetch(&l, r, g, t, block, b);
                    cell_backward::<V>(w, r, g, t, block, b, &mut lanes);
                }
            }
            let d_rows = g.d_rows.as_mut_ptr();
            let dz = r.gates.as_ptr().add(t * shape.gate_step);
            let gemm = |first_column: usize, depth: usize, first_panel: usize, panels: usize| {
                product(
                    Operand {
                        ptr: dz.add(first_column / TILE * shape.gate_at(1, 0)),
                        row_stride: TILE,
                        piece_stride: shape.gate_at(1, 0),
                    },
                    batch,
                    transposed
                        .as_ptr()
                        .add((first_panel * columns + first_column) * TILE),
                    columns * TILE,
                    panels,
                    depth,
                    d_rows.add(first_panel * TILE),
                    cols_in,
                    first_column == 0,
                )
            };
            // `dh_{t−1}` is needed up to the first step's only when asked for; `dx_t` only when
            // asked for.
            let need_h = t > 0 || wanted.hidden;
            let first = if need_h { 0 } else { h_panels };
            let end = if wanted.x {
                h_panels + x_panels
            } else {
                h_panels
            };
            if first < end {
                gemm(0, gate_columns, first, end - first);
            }
            if wanted.x && columns > gate_columns {
                // The attention rows of `W` are zero beyond the `x` columns.
                gemm(gate_columns, columns - gate_columns, h_panels, x_panels);
            }
        }
        for b in 0..batch {
            let row = &g.d_rows[b * cols_in..];
            if wanted.x {
                g.x[(b * seq_len + t) * l.input..][..l.input]
                    .copy_from_slice(&row[h_panels * TILE..][..l.input]);
            }
            if t > 0 || wanted.hidden {
                g.dh[b * l.hidden_pad..][..l.hidden_pad].copy_from_slice(&row[..l.hidden_pad]);
            }
        }
    }
    g.hidden.reset(batch * l.hidden);
    g.state.reset(l.k * batch * l.hidden);
    for b in 0..batch {
        if wanted.hidden {
            g.hidden[b * l.hidden..][..l.hidden]
                .copy_from_slice(&g.dh[b * l.hidden_pad..][..l.hidden]);
        }
        for lane in 0..l.k {
            for unit in 0..l.hidden {
                let at = shape.cell_at((unit / UNITS) * l.k + lane, b) + unit % UNITS;
                g.state[(lane * batch + b) * l.hidden + unit] = g.dc[at];
            }
        }
    }
    // SAFETY: as above.
    unsafe { weight_product(&l, &shape, r, g, columns) };
    scatter(&l, g, columns, o, grads);
    // The activations are gradients now: a second backward needs a new forward.
    r.recorded = false;
}

/// The elementwise backward of step `t` for units `4·block .. 4·block + 4` of batch row `b`, all
/// lanes: reads `dh_t` and `dc_t`, leaves `dc_{t−1}` and writes `dz` over the record's activations;
/// `lanes` is scratch of [`LANE_SCRATCH`]`· k` vectors.
#[inline(never)]
unsafe fn cell_backward<V: Variant>(
    w: &Weights,
    r: &mut Record,
    g: &mut Gradients,
    t: usize,
    block: usize,
    b: usize,
    lanes: &mut [v128],
) {
    let (l, shape) = (&w.layout, r.shape);
    let k = l.k;
    let (activated, rest) = lanes.split_at_mut(k);
    let (softmax, rest) = rest.split_at_mut(k);
    let (selected, rest) = rest.split_at_mut(k);
    let (tanh_c, rest) = rest.split_at_mut(k);
    let (output_gates, rest) = rest.split_at_mut(k);
    let d_weights = &mut rest[..k];
    let gates = r.gates.as_mut_ptr().add(t * shape.gate_step);
    let cells = r.cells.as_ptr().add(t * shape.cell_step);
    let one = f32x4_splat(1.0);
    let zero = f32x4_splat(0.0);
    let mut pooled = one;
    if V::ATTENTION {
        // The forward's softmax before pooling, kept in the record.
        let kept = r
            .softmax
            .as_ptr()
            .add((t * shape.batch + b) * l.attention_cols + block * k * UNITS);
        let mut largest = zero;
        for lane in 0..k {
            activated[lane] = load(gates.add(shape.attention_at((block * k + lane) * UNITS, b)));
            softmax[lane] = load(kept.add(lane * UNITS));
            largest = f32x4_max(largest, softmax[lane]);
        }
        if w.max_pooling {
            // Only pooling routes the gradient to one lane.
            first_maximal(softmax, selected);
            pooled = largest;
        }
    }
    let tanh_cells = r.tanh_cells.as_ptr().add(t * shape.cell_step);
    for lane in 0..k {
        tanh_c[lane] = load(tanh_cells.add(shape.cell_at(block * k + lane, b)));
        output_gates[lane] = load(gates.add(shape.gate_at(block * k + lane, b) + 2 * UNITS));
    }
    if V::ARGMAX {
        first_maximal(output_gates, selected);
    }
    let dh = load(g.dh.as_ptr().add(b * l.hidden_pad + block * UNITS));
    for lane in 0..k {
        let panel = block * k + lane;
        let scale = if !V::ATTENTION {
            one
        } else if w.max_pooling {
            pooled
        } else {
            softmax[lane]
        };
        let kept = gates.add(shape.gate_at(panel, b));
        let [forget, input, output, candidate] =
            [0, 1, 2, 3].map(|gate| load(kept.add(gate * UNITS)));
        // The readout: dh reaches this lane's (scaled) output gate and its cell.
        let mut d_output = f32x4_mul(dh, tanh_c[lane]);
        let squash = f32x4_sub(one, f32x4_mul(tanh_c[lane], tanh_c[lane]));
        let mut d_cell_readout = f32x4_mul(f32x4_mul(dh, f32x4_mul(output, scale)), squash);
        if V::ARGMAX {
            d_output = v128_and(d_output, selected[lane]);
            d_cell_readout = v128_and(d_cell_readout, selected[lane]);
        }
        let dc_at = g.dc.as_mut_ptr().add(shape.cell_at(panel, b));
        let d_cell = f32x4_add(load(dc_at), d_cell_readout);
        let previous = load(cells.add(shape.cell_at(panel, b)));
        let d_keep = f32x4_mul(d_cell, previous);
        let (keep, d_forget) = V::forget_backward(forget, scale, d_keep);
        let d_input = f32x4_mul(d_cell, candidate);
        store(dc_at, f32x4_mul(d_cell, keep));
        let gate_grad = |gate: v128| w.gate.derivative(gate);
        let dz = [
            f32x4_mul(f32x4_mul(d_forget, scale), gate_grad(forget)),
            f32x4_mul(f32x4_mul(d_input, scale), gate_grad(input)),
            f32x4_mul(f32x4_mul(d_output, scale), gate_grad(output)),
            f32x4_mul(
                f32x4_mul(d_cell, scale),
                f32x4_mul(input, f32x4_sub(one, f32x4_mul(candidate, candidate))),
            ),
        ];
        if V::ATTENTION {
            d_weights[lane] = f32x4_add(
                f32x4_add(f32x4_mul(d_forget, forget), f32x4_mul(d_input, input)),
                f32x4_mul(d_output, output),
            );
        }
        for (gate, value) in dz.iter().enumerate() {
            store(kept.add(gate * UNITS), *value);
        }
    }
    if V::ATTENTION {
        // Back through s = softmax(σ(a)) (every lane took the first maximal one with pooling).
        if w.max_pooling {
            let mut total = zero;
            for d in d_weights.iter() {
                total = f32x4_add(total, *d);
            }
            for lane in 0..k {
                d_weights[lane] = v128_and(total, selected[lane]);
            }
        }
        let mut dot = zero;
        for lane in 0..k {
            dot = f32x4_add(dot, f32x4_mul(d_weights[lane], softmax[lane]));
        }
        for lane in 0..k {
            let d_activated = f32x4_mul(softmax[lane], f32x4_sub(d_weights[lane], dot));
            let a = activated[lane];
            let d_pre = f32x4_mul(d_activated, f32x4_mul(a, f32x4_sub(one, a)));
            let col = attention_col(l, lane, block * UNITS);
            store(gates.add(shape.attention_at(col, b)), d_pre);
        }
    }
}

/// Rows ahead of the elementwise backward that [`prefetch`] asks for (8 and 16 measured the same).
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
const AHEAD: usize = 8;

/// Asks for the cache lines that [`cell_backward`] of row `b + AHEAD` reads: the step's
/// activations come from memory (the forward wrote them steps ago), and the elementwise backward
/// waited on them; asking ahead cut its time by a quarter (the hardware prefetcher does not
/// follow the 17 streams of a block: `k` panels of gates, cells, `tanh` cells and `dc`, and `dh`).
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
#[inline(always)]
unsafe fn prefetch(l: &Layout, r: &Record, g: &Gradients, t: usize, block: usize, b: usize) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    let prefetch_line = |p: *const f32| _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    let (shape, b) = (r.shape, b + AHEAD);
    if b >= shape.batch {
        return;
    }
    let gates = r.gates.as_ptr().add(t * shape.gate_step);
    let (cells, tanh_cells) = (
        r.cells.as_ptr().add(t * shape.cell_step),
        r.tanh_cells.as_ptr().add(t * shape.cell_step),
    );
    for lane in 0..l.k {
        let panel = block * l.k + lane;
        prefetch_line(gates.add(shape.gate_at(panel, b)));
        if b % 4 == 0 {
            let at = shape.cell_at(panel, b);
            prefetch_line(cells.add(at));
            prefetch_line(tanh_cells.add(at));
            prefetch_line(g.dc.as_ptr().add(at));
        }
    }
}

/// Per unit, an all-ones mask on the first lane with the largest value (`torch.max` / `argmax`
/// tie rule: a later lane wins only when strictly greater), zero on the others.
#[inline(always)]
fn first_maximal(values: &[v128], masks: &mut [v128]) {
    let mut best = values[0];
    masks[0] = i32x4_splat(-1);
    for lane in 1..values.len() {
        let wins = f32x4_gt(values[lane], best);
        for mask in masks[..lane].iter_mut() {
            *mask = v128_andnot(*mask, wins);
        }
        masks[lane] = wins;
        best = v128_bitselect(values[lane], best, wins);
    }
}

/// The left operand of [`product`], in pieces of [`TILE`] columns: element `(row, d)` is at
/// `ptr + row · row_stride + (d / TILE) · piece_stride + d % TILE`. Row-major rows of `n` floats
/// are `(n, TILE)`; the record's `dz` of one step is `(TILE, batch_pad · TILE)`.
#[derive(Clone, Copy)]
pub(crate) struct Operand {
    pub ptr: *const f32,
    pub row_stride: usize,
    pub piece_stride: usize,
}

impl Operand {
    /// Row `row` from column `d` (a multiple of [`TILE`]) on.
    #[inline(always)]
    unsafe fn at(&self, row: usize, d: usize) -> *const f32 {
        self.ptr
            .add(row * self.row_stride + d / TILE * self.piece_stride)
    }
}

/// `c[r][16n + j] += Σ_{d < depth} a[r][d] · panel_n[d][j]` for `rows` rows and `panels` panels
/// (`=` instead of `+=` when `fresh`: `c` need not be zeroed first), with the forward's
/// micro-kernel; the reduction runs in [`CHUNK`]s so a panel's chunk stays in L1 while all rows
/// pass it. Every row sums in the same order however the rows are tiled. The AVX-512 build runs
/// `wide::product` instead (`backward_wide.rs`: taller tiles, its own chunks).
///
/// # Safety
/// `a` holds `rows` rows of `depth` floats, the panels `panels · panel_stride` floats
/// (`panel_stride ≥ depth · TILE`), `c` `rows` rows of `c_stride ≥ 16 · panels`; `depth` is a
/// multiple of 4.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn product(
    a: Operand,
    rows: usize,
    panels: *const f32,
    panel_stride: usize,
    panel_count: usize,
    depth: usize,
    c: *mut f32,
    c_stride: usize,
    fresh: bool,
) {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
    return wide::product(
        a,
        rows,
        panels,
        panel_stride,
        panel_count,
        depth,
        c,
        c_stride,
        fresh,
    );
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx512f")))]
    for n in 0..panel_count {
        let mut start = 0;
        while start < depth {
            let len = CHUNK.min(depth - start);
            let load_c = !fresh || start > 0;
            let panel = panels.add(n * panel_stride + start * TILE);
            let at = |row: usize| (a.at(row, start), c.add(row * c_stride + n * TILE));
            let mut row = 0;
            while row + 2 <= rows {
                let ((a0, c0), (a1, c1)) = (at(row), at(row + 1));
                tile::<2>([a0, a1], a.piece_stride, panel, len, [c0, c1], load_c);
                row += 2;
            }
            if row < rows {
                let (a0, c0) = at(row);
                tile::<1>([a0], a.piece_stride, panel, len, [c0], load_c);
            }
            start += len;
        }
    }
}

/// One [`product`] tile: `MR` rows (pieces `piece_stride` apart) against `depth` rows of `panel`.
#[inline(always)]
unsafe fn tile<const MR: usize>(
    rows: [*const f32; MR],
    piece_stride: usize,
    panel: *const f32,
    depth: usize,
    out: [*mut f32; MR],
    load_c: bool,
) {
    let mut acc: Tile<MR, 1> = [[[f32x4_splat(0.0); 4]; 1]; MR];
    if load_c {
        for (row, c) in acc.iter_mut().zip(out.iter()) {
            for (q, value) in row[0].iter_mut().enumerate() {
                *value = load(c.add(q * UNITS));
            }
        }
    }
    let mut d = 0;
    while d < depth {
        let len = TILE.min(depth - d);
        let pieces = rows.map(|row| row.add(d / TILE * piece_stride));
        accumulate(&mut acc, &pieces, &[panel.add(d * TILE)], len);
        d += len;
    }
    for (row, c) in acc.iter().zip(out.iter()) {
        for (q, value) in row[0].iter().enumerate() {
            store(c.add(q * UNITS), *value);
        }
    }
}

/// `dwt = Σ_t inputs_t · dz_t`: the gate panels against all input rows and the ones row, the
/// attention panels against the `x` rows and the ones row.
unsafe fn weight_product(l: &Layout, shape: &Shape, r: &Record, g: &mut Gradients, columns: usize) {
    let panel_stride = shape.batch_pad * TILE;
    let attention_panels = shape.panels - shape.gate_panels;
    // After a zero initial state (see `Record::zero_hidden`) step 0's `h` rows are zero, and their
    // products exact zeros unless `dz_0` holds an infinity or NaN (0 · ∞ is NaN, as in PyTorch).
    let skip_h0 = r.zero_hidden && r.gates[..shape.gate_step].iter().all(|v| v.is_finite());
    if skip_h0 {
        let gate_columns = shape.gate_panels * TILE;
        for d in l.input_pad..l.depth {
            g.dwt[d * columns..][..gate_columns].fill(0.0);
        }
    }
    for t in 0..shape.seq_len {
        let inputs = r.inputs.as_ptr().add(t * shape.input_step);
        let dz = r.gates.as_ptr().add(t * shape.gate_step);
        let dwt = g.dwt.as_mut_ptr();
        let ones = l.depth;
        let fresh = t == 0;
        let gemm = |first_row: usize, rows: usize, first_panel: usize, panels: usize| {
            product(
                Operand {
                    ptr: inputs.add(first_row * shape.batch_pad),
                    row_stride: shape.batch_pad,
                    piece_stride: TILE,
                },
                rows,
                dz.add(first_panel * panel_stride),
                panel_stride,
                panels,
                shape.batch_pad,
                dwt.add(first_row * columns + first_panel * TILE),
                columns,
                fresh,
            )
        };
        if t == 0 && skip_h0 {
            gemm(0, l.input_pad, 0, shape.gate_panels);
            gemm(ones, 1, 0, shape.gate_panels);
        } else {
            gemm(0, l.depth + 1, 0, shape.gate_panels);
        }
        gemm(0, l.input_pad, shape.gate_panels, attention_panels);
        gemm(ones, 1, shape.gate_panels, attention_panels);
    }
}

/// Adds `dwt` (its last row: the bias gradients) to the PyTorch-layout gradients.
fn scatter(l: &Layout, g: &Gradients, columns: usize, o: &Offsets, grads: &mut [f32]) {
    for column in 0..columns {
        let (row, attention) = match parameter_row(l, column) {
            Some(found) => found,
            None => continue,
        };
        let dw = |d: usize| g.dwt[d * columns + column];
        let bias = dw(l.depth);
        if attention {
            for d in 0..l.input {
                grads[o.i2a_weight.start + row * l.input + d] += dw(d);
            }
            grads[o.i2a_bias.start + row] += bias;
        } else {
            for d in 0..l.input {
                grads[o.i2h_weight.start + row * l.input + d] += dw(d);
            }
            for d in 0..l.hidden {
                grads[o.h2h_weight.start + row * l.hidden + d] += dw(l.input_pad + d);
            }
            grads[o.i2h_bias.start + row] += bias;
            grads[o.h2h_bias.start + row] += bias;
        }
    }
}
