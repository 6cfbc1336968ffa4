//! Packing PyTorch-layout weights into the panels the micro-kernels stream.
//!
//! Hidden units are handled in blocks of [`UNITS`] (one `f32x4`). The input row of every batch
//! entry is `[x_t (padded to input_pad) | h_{t-1} (padded to hidden_pad)]`, `depth` floats, so the
//! input projection and the recurrent GEMM are one dot product over `depth` and the
//! pre-activations `z` never leave registers.
//!
//! Gate panel of block `u`, lane `j`: `depth` rows of [`TILE`] floats, row `d` =
//! `[forget units 4u..4u+4 | input … | output … | candidate …]`, i.e. column `d` of the weights of
//! that lane's four gates for those four units. The `k` lane panels of a block are adjacent, so one
//! block's panel holds all `4k` gate columns of its units.

use crate::aligned::Floats;
use crate::math::Gate;
use crate::sequence::Weights;

/// Hidden units per block: one `f32x4` of each gate.
pub const UNITS: usize = 4;
/// Gates per lane: forget, input, output, candidate (the reference's order).
pub const GATES: usize = 4;
/// Floats in one packed panel row: all gates of one block of units.
pub const TILE: usize = UNITS * GATES;

/// Sizes of one compiled cell, padded for the kernels.
#[derive(Clone, Copy)]
pub struct Layout {
    /// `I`: features per step.
    pub input: usize,
    /// `H`: hidden units.
    pub hidden: usize,
    /// Memory cells (lanes) per hidden unit.
    pub k: usize,
    /// `I` rounded up to a multiple of [`UNITS`].
    pub input_pad: usize,
    /// `H` rounded up to a multiple of [`UNITS`].
    pub hidden_pad: usize,
    /// Length of one input row: `input_pad + hidden_pad`.
    pub depth: usize,
    /// Blocks of [`UNITS`] hidden units.
    pub blocks: usize,
    /// Attention columns `k · hidden_pad`, rounded up to whole panels of [`TILE`].
    pub attention_cols: usize,
}

impl Layout {
    /// The padded layout of a cell with `input` features, `hidden` units and `k` lanes.
    pub fn new(input: usize, hidden: usize, k: usize) -> Layout {
        let input_pad = round_up(input, UNITS);
        let hidden_pad = round_up(hidden, UNITS);
        Layout {
            input,
            hidden,
            k,
            input_pad,
            hidden_pad,
            depth: input_pad + hidden_pad,
            blocks: hidden_pad / UNITS,
            attention_cols: round_up(k * hidden_pad, TILE),
        }
    }
}

fn round_up(n: usize, multiple: usize) -> usize {
    (n + multiple - 1) / multiple * multiple
}

/// Floats in the gate panels of `layout`.
fn gate_panels_len(layout: &Layout) -> usize {
    layout.blocks * layout.k * layout.depth * TILE
}

/// Packs `i2h.weight` `(4kH, I)` and `h2h.weight` `(4kH, H)` into gate panels
/// `(blocks, k, depth, TILE)` in `packed`, zeros of [`gate_panels_len`] floats; padding rows and
/// units stay zero.
fn fill_gate_panels(layout: &Layout, i2h_weight: &[f32], h2h_weight: &[f32], packed: &mut [f32]) {
    let Layout {
        input,
        hidden,
        k,
        input_pad,
        depth,
        blocks,
        ..
    } = *layout;
    for block in 0..blocks {
        for lane in 0..k {
            let panel = &mut packed[(block * k + lane) * depth * TILE..][..depth * TILE];
            for gate in 0..GATES {
                for u in 0..UNITS {
                    let unit = block * UNITS + u;
                    if unit >= hidden {
                        continue;
                    }
                    let row = (lane * GATES + gate) * hidden + unit;
                    let col = gate * UNITS + u;
                    for d in 0..input {
                        panel[d * TILE + col] = i2h_weight[row * input + d];
                    }
                    for d in 0..hidden {
                        panel[(input_pad + d) * TILE + col] = h2h_weight[row * hidden + d];
                    }
                }
            }
        }
    }
}

/// Packs `i2h.bias + h2h.bias` `(4kH)` as `(blocks, k, TILE)`, the initial accumulators.
pub fn gate_bias(layout: &Layout, i2h_bias: &[f32], h2h_bias: &[f32]) -> Vec<f32> {
    let Layout {
        hidden, k, blocks, ..
    } = *layout;
    let mut packed = vec![0.0; blocks * k * TILE];
    for block in 0..blocks {
        for lane in 0..k {
            for gate in 0..GATES {
                for u in 0..UNITS {
                    let unit = block * UNITS + u;
                    if unit < hidden {
                        let row = (lane * GATES + gate) * hidden + unit;
                        packed[(block * k + lane) * TILE + gate * UNITS + u] =
                            i2h_bias[row] + h2h_bias[row];
                    }
                }
            }
        }
    }
    packed
}

/// Column of the attention output for `lane` and `unit`: grouped by block, then lane, so the
/// gate kernel finds a block's `k` lane weights next to each other.
pub fn attention_col(layout: &Layout, lane: usize, unit: usize) -> usize {
    ((unit / UNITS) * layout.k + lane) * UNITS + unit % UNITS
}

/// Packs `i2a.weight` `(kH, I)` into panels `(attention_cols / TILE, input_pad, TILE)`.
pub fn attention_panels(layout: &Layout, i2a_weight: &[f32]) -> Vec<f32> {
    let Layout {
        input,
        hidden,
        k,
        input_pad,
        attention_cols,
        ..
    } = *layout;
    let mut packed = vec![0.0; attention_cols * input_pad];
    for lane in 0..k {
        for unit in 0..hidden {
            let col = attention_col(layout, lane, unit);
            let panel = &mut packed[(col / TILE) * input_pad * TILE..][..input_pad * TILE];
            for d in 0..input {
                panel[d * TILE + col % TILE] = i2a_weight[(lane * hidden + unit) * input + d];
            }
        }
    }
    packed
}

/// Packs `i2a.bias` `(kH)` into the attention column order, `(attention_cols)`.
pub fn attention_bias(layout: &Layout, i2a_bias: &[f32]) -> Vec<f32> {
    let mut packed = vec![0.0; layout.attention_cols];
    for lane in 0..layout.k {
        for unit in 0..layout.hidden {
            packed[attention_col(layout, lane, unit)] = i2a_bias[lane * layout.hidden + unit];
        }
    }
    packed
}

/// A cell's resident weights from its PyTorch-layout parameters (`i2h.weight`, `i2h.bias`,
/// `h2h.weight`, `h2h.bias`, `i2a.weight`, `i2a.bias`; the attention ones are read only with
/// `attention`, else the attention panels stay empty).
pub fn weights(
    layout: Layout,
    attention: bool,
    params: [&[f32]; 6],
    max_pooling: bool,
    gate: Gate,
) -> Weights {
    let mut weights = Weights {
        layout,
        gates: Floats::default(),
        gate_bias: Floats::default(),
        attention: Floats::default(),
        attention_bias: Floats::default(),
        max_pooling,
        gate,
        h2h_finite: false,
    };
    repack(&mut weights, attention, params);
    weights
}

/// [`weights`] again from new parameters, into `weights`' own buffers: the trainers repack after
/// every optimizer step, and new buffers each time (1–2 MB at the documentation's sizes) cost
/// their page faults again.
pub fn repack(weights: &mut Weights, attention: bool, params: [&[f32]; 6]) {
    let [i2h_weight, i2h_bias, h2h_weight, h2h_bias, i2a_weight, i2a_bias] = params;
    let layout = weights.layout;
    weights.gates.reset(gate_panels_len(&layout));
    fill_gate_panels(&layout, i2h_weight, h2h_weight, &mut weights.gates);
    weights.gate_bias = gate_bias(&layout, i2h_bias, h2h_bias).into();
    weights.h2h_finite = h2h_weight.iter().all(|w| w.is_finite());
    if attention {
        weights.attention = attention_panels(&layout, i2a_weight).into();
        weights.attention_bias = attention_bias(&layout, i2a_bias).into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::values;
    use crate::gemm::{accumulate, Tile};
    use crate::simd::f32x4_splat;

    const SIZES: [(usize, usize, usize); 3] = [(5, 6, 2), (4, 4, 1), (3, 9, 3)];

    /// `bias + Σ_d w[row, d] · v[d]` in f64, the scalar reference of one pre-activation.
    fn dot(w: &[f32], bias: f64, row: usize, v: &[f32]) -> f64 {
        let n = v.len();
        bias + (0..n)
            .map(|d| w[row * n + d] as f64 * v[d] as f64)
            .sum::<f64>()
    }

    #[test]
    fn gate_panels_and_bias_give_the_pytorch_product() {
        for (input, hidden, k) in SIZES {
            let layout = Layout::new(input, hidden, k);
            let rows = 4 * k * hidden;
            let (wi, wh) = (values(rows * input, 3), values(rows * hidden, 4));
            let (bi, bh) = (values(rows, 5), values(rows, 6));
            let (x, h) = (values(input, 7), values(hidden, 8));
            let mut panels = vec![0.0; gate_panels_len(&layout)];
            fill_gate_panels(&layout, &wi, &wh, &mut panels);
            let bias = gate_bias(&layout, &bi, &bh);
            let mut row = vec![0.0f32; layout.depth];
            row[..input].copy_from_slice(&x);
            row[layout.input_pad..][..hidden].copy_from_slice(&h);
            for block in 0..layout.blocks {
                for lane in 0..k {
                    let tile = (block * k + lane) * TILE;
                    let mut acc: Tile<1, 1> = [[[f32x4_splat(0.0); 4]; 1]; 1];
                    for gate in 0..4 {
                        acc[0][0][gate] =
                            unsafe { crate::gemm::load(bias[tile + gate * UNITS..].as_ptr()) };
                    }
                    let panel = [panels[tile * layout.depth..].as_ptr()];
                    // SAFETY: the row holds `depth` floats and the panel `depth · TILE`.
                    unsafe { accumulate(&mut acc, &[row.as_ptr()], &panel, layout.depth) };
                    for gate in 0..GATES {
                        for u in 0..UNITS {
                            let unit = block * UNITS + u;
                            let actual = acc[0][0][gate].to_f32s()[u] as f64;
                            if unit >= hidden {
                                assert_eq!(actual, 0.0, "padding unit {unit}");
                                continue;
                            }
                            let r = (lane * GATES + gate) * hidden + unit;
                            let expected =
                                dot(&wh, dot(&wi, bi[r] as f64 + bh[r] as f64, r, &x), r, &h);
                            assert!(
                                (actual - expected).abs() < 1e-5,
                                "I {input} H {hidden} k {k}: lane {lane} gate {gate} unit {unit}: {actual} vs {expected}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn attention_panels_and_bias_give_the_pytorch_product() {
        for (input, hidden, k) in SIZES {
            let layout = Layout::new(input, hidden, k);
            let (w, b, x) = (
                values(k * hidden * input, 9),
                values(k * hidden, 10),
                values(input, 11),
            );
            let panels = attention_panels(&layout, &w);
            let bias = attention_bias(&layout, &b);
            let mut row = vec![0.0f32; layout.input_pad];
            row[..input].copy_from_slice(&x);
            let mut columns = vec![0.0f64; layout.attention_cols];
            for panel in 0..layout.attention_cols / TILE {
                for column in 0..TILE {
                    let c = panel * TILE + column;
                    columns[c] = bias[c] as f64
                        + (0..layout.input_pad)
                            .map(|d| {
                                row[d] as f64
                                    * panels[(panel * layout.input_pad + d) * TILE + column] as f64
                            })
                            .sum::<f64>();
                }
            }
            for lane in 0..k {
                for unit in 0..hidden {
                    let expected =
                        dot(&w, b[lane * hidden + unit] as f64, lane * hidden + unit, &x);
                    let actual = columns[attention_col(&layout, lane, unit)];
                    assert!((actual - expected).abs() < 1e-6, "lane {lane} unit {unit}");
                }
            }
        }
    }
}
