//! LRP-ε (Arras et al., 2017) back through the training forward's [`Record`], for cells with one
//! lane (`LSTM`, `ArrayLSTM` with `k = 1`): the relevance pass of the float64 TypeScript
//! `src/explain/lrp_layer.ts` in `f32x4`, from the activations the forward kept.
//!
//! Per step, in reverse, for every batch row and block of four units: the hidden state's relevance
//! goes to the cell (the output gate is a gate); the cell's splits between `f·c_{t−1}` and `i·g`
//! by the ε-rule with identity weights (`N = 2H`); the candidate's relevance over its stabilised
//! pre-activation, `S = R_g / (z_g + ε·sgn z_g)`, is one row of `S` `(B, hidden_pad)`. Then one
//! GEMM `S · W_g` (`W_g` the candidate rows of `[i2h | h2h]`, packed by [`candidate_panels`])
//! gives `Σ_m w_mj·S_m` for every column `j` of `[x_t | h_{t−1}]`: times the column's value, plus
//! the row's bias-and-stabiliser share (`N = I + H`), that is the relevance of `x_t` and of
//! `h_{t−1}`. `sgn 0 = +1`, as the original's.

use crate::aligned::Floats;
use crate::backward::{product, Operand};
use crate::gemm::{load, store};
use crate::pack::{Layout, TILE, UNITS};
use crate::params::Offsets;
use crate::record::Record;
use crate::sequence::Weights;
use crate::simd::*;

/// The relevance pass's results and scratch.
#[derive(Default)]
pub struct Relevance {
    /// Relevance of every input feature, `(B, T, I)`.
    pub x: Floats,
    /// Relevance left at the initial hidden and cell states, `(B)`.
    pub rest: Floats,
    /// Relevance of `h_t`, `(B, hidden_pad)`.
    hidden: Floats,
    /// Relevance of `c_t`, `(B, hidden_pad)`.
    cells: Floats,
    /// `S` of the current step, `(B, hidden_pad)`.
    ratios: Floats,
    /// The share of each row of the current step, `(B)`.
    shares: Floats,
    /// `S · W_g`, `(B, columns)`.
    products: Floats,
}

/// Columns of `[x | h]` in the forward's row layout (`depth`), rounded up to whole panels.
fn columns(l: &Layout) -> usize {
    (l.depth + TILE - 1) / TILE * TILE
}

/// Packs the candidate rows of `[i2h | h2h]` of a one-lane cell for the GEMM `S · W_g`: panels
/// `(columns / TILE, hidden_pad, TILE)`, row `u` of panel `q` = columns `16q .. 16q + 16`
/// of `[x | h]` (the forward's row layout) of candidate unit `u`.
pub fn candidate_panels(l: &Layout, params: &[f32], o: &Offsets) -> Floats {
    let cols = columns(l);
    let mut packed = Floats::default();
    packed.reset(cols * l.hidden_pad);
    for unit in 0..l.hidden {
        let row = 3 * l.hidden + unit;
        let mut put = |d: usize, value: f32| {
            packed[((d / TILE) * l.hidden_pad + unit) * TILE + d % TILE] = value;
        };
        for d in 0..l.input {
            put(d, params[o.i2h_weight.start + row * l.input + d]);
        }
        for d in 0..l.hidden {
            put(
                l.input_pad + d,
                params[o.h2h_weight.start + row * l.hidden + d],
            );
        }
    }
    packed
}

/// The relevance of the input and of the initial state, from `output_relevance` `(B, T, H)` (the
/// relevance arriving at every step's hidden state), through the forward kept in `r` (which must
/// have kept its candidates). `panels` are [`candidate_panels`] of `w`'s weights.
pub fn relevance(
    w: &Weights,
    panels: &[f32],
    r: &Record,
    g: &mut Relevance,
    output_relevance: &[f32],
    eps: f32,
    bias_factor: f32,
) {
    let (l, shape) = (w.layout, r.shape);
    let (batch, seq_len) = (shape.batch, shape.seq_len);
    assert_eq!(l.k, 1, "the relevance pass is for one-lane cells");
    assert!(
        r.candidates.len() == seq_len * shape.cell_step
            && r.gates.len() == seq_len * shape.gate_step,
        "the relevance pass needs a training forward that kept its candidates"
    );
    assert_eq!(
        output_relevance.len(),
        batch * seq_len * l.hidden,
        "output_relevance has the wrong length"
    );
    let (hp, cols) = (l.hidden_pad, columns(&l));
    g.x.reset(batch * seq_len * l.input);
    g.rest.reset(batch);
    g.hidden.reset(batch * hp);
    g.cells.reset(batch * hp);
    g.ratios.reset(batch * hp);
    g.shares.reset(batch);
    g.products.reset(batch * cols);
    let rule = Rule {
        eps,
        cell_share: bias_factor / (2 * l.hidden) as f32,
        candidate_share: bias_factor / (l.input + l.hidden) as f32,
    };
    for t in (0..seq_len).rev() {
        for b in 0..batch {
            let arriving = &output_relevance[(b * seq_len + t) * l.hidden..][..l.hidden];
            for (h, value) in g.hidden[b * hp..].iter_mut().zip(arriving) {
                *h += value;
            }
        }
        // SAFETY: the record holds this call's shape; every buffer was sized above from it.
        unsafe {
            for b in 0..batch {
                g.shares[b] = step_row(w, r, g, &rule, t, b);
            }
            let ratios = Operand {
                ptr: g.ratios.as_ptr(),
                row_stride: hp,
                piece_stride: TILE,
            };
            product(
                ratios,
                batch,
                panels.as_ptr(),
                hp * TILE,
                cols / TILE,
                hp,
                g.products.as_mut_ptr(),
                cols,
                true,
            );
        }
        // The values of `[x_t | h_{t−1}]`, transposed `(depth + 1, batch_pad)` in the record.
        let inputs = &r.inputs[t * shape.input_step..][..shape.input_step];
        for b in 0..batch {
            let (share, products) = (g.shares[b], &g.products[b * cols..][..cols]);
            let x = &mut g.x[(b * seq_len + t) * l.input..][..l.input];
            for (d, value) in x.iter_mut().enumerate() {
                *value = inputs[d * shape.batch_pad + b] * products[d] + share;
            }
            for (v, value) in g.hidden[b * hp..][..l.hidden].iter_mut().enumerate() {
                let d = l.input_pad + v;
                *value = inputs[d * shape.batch_pad + b] * products[d] + share;
            }
        }
    }
    for b in 0..batch {
        let row = |buffer: &Floats| buffer[b * hp..][..l.hidden].iter().sum::<f32>();
        g.rest[b] = row(&g.hidden) + row(&g.cells);
    }
}

/// The stabilisers of one call.
struct Rule {
    eps: f32,
    /// `biasFactor / 2H`: the cell split's share per unit.
    cell_share: f32,
    /// `biasFactor / (I + H)`: the candidate's share per input.
    candidate_share: f32,
}

/// `ε·sgn v` (`sgn 0 = +1`; NaN counts as positive and stays NaN downstream).
#[inline(always)]
fn stabiliser(v: v128, eps: v128) -> v128 {
    let negative = f32x4_gt(f32x4_splat(0.0), v);
    v128_bitselect(f32x4_neg(eps), eps, negative)
}

fn sum(v: v128) -> f32 {
    let mut lanes = [0.0f32; 4];
    // SAFETY: `lanes` holds four floats.
    unsafe { store(lanes.as_mut_ptr(), v) };
    lanes.iter().sum()
}

/// Step `t` of batch row `b`, all blocks: moves `R_h` into `R_c`, leaves `R_{c,t−1}` in
/// `g.cells` and `S` in `g.ratios`; returns the row's candidate share (bias and stabiliser).
///
/// # Safety
/// The record and `g` hold the shapes [`relevance`] sized them for.
#[inline(never)]
unsafe fn step_row(
    w: &Weights,
    r: &Record,
    g: &mut Relevance,
    rule: &Rule,
    t: usize,
    b: usize,
) -> f32 {
    let (l, shape) = (&w.layout, r.shape);
    let hp = l.hidden_pad;
    let zero = f32x4_splat(0.0);
    let eps = f32x4_splat(rule.eps);
    let gates = r.gates.as_ptr().add(t * shape.gate_step);
    let previous = r.cells.as_ptr().add(t * shape.cell_step);
    let current = previous.add(shape.cell_step);
    let candidates = r.candidates.as_ptr().add(t * shape.cell_step);
    let hidden = g.hidden.as_mut_ptr().add(b * hp);
    let cells = g.cells.as_mut_ptr().add(b * hp);
    let ratios = g.ratios.as_mut_ptr().add(b * hp);
    // The cell split: `R_c / (c_t + ε·sgn c_t)`, kept in `cells` for the second pass.
    let mut share = zero;
    for block in 0..l.blocks {
        let at = block * UNITS;
        let arriving = f32x4_add(load(cells.add(at)), load(hidden.add(at)));
        store(hidden.add(at), zero);
        let c = load(current.add(shape.cell_at(block, b)));
        let stab = stabiliser(c, eps);
        let ratio = f32x4_div(arriving, f32x4_add(c, stab));
        store(cells.add(at), ratio);
        share = f32x4_add(share, f32x4_mul(stab, ratio));
    }
    let share = f32x4_splat(sum(share) * rule.cell_share);
    // `i·g` and `f·c_{t−1}` take their parts plus the share; then the candidate's ratio `S`.
    let mut candidate_share = zero;
    for block in 0..l.blocks {
        let at = block * UNITS;
        let valid = if at + UNITS <= l.hidden {
            f32x4_splat(1.0)
        } else {
            let lanes = [0, 1, 2, 3].map(|u| if at + u < l.hidden { 1.0f32 } else { 0.0 });
            load(lanes.as_ptr())
        };
        let ratio = load(cells.add(at));
        let kept = gates.add(shape.gate_at(block, b));
        let (forget, input, candidate) =
            (load(kept), load(kept.add(UNITS)), load(kept.add(3 * UNITS)));
        let old = load(previous.add(shape.cell_at(block, b)));
        let written = f32x4_add(f32x4_mul(f32x4_mul(input, candidate), ratio), share);
        let kept_part = f32x4_add(f32x4_mul(f32x4_mul(forget, old), ratio), share);
        store(cells.add(at), f32x4_mul(kept_part, valid));
        let z = load(candidates.add(shape.cell_at(block, b)));
        let stab = stabiliser(z, eps);
        let s = f32x4_div(f32x4_mul(written, valid), f32x4_add(z, stab));
        store(ratios.add(at), s);
        let bias = load(w.gate_bias.as_ptr().add(block * TILE + 3 * UNITS));
        candidate_share = f32x4_add(candidate_share, f32x4_mul(f32x4_add(bias, stab), s));
    }
    sum(candidate_share) * rule.candidate_share
}

#[cfg(test)]
mod tests {
    use crate::reference::{self, Input, Kind, Spec};
    use crate::train_tests::{f32s, forward_input, read, trainer};

    /// A small deterministic generator (an LCG), uniform in `[-scale, scale)`, rounded to `f32`.
    fn values(count: usize, seed: u64, scale: f64) -> Vec<f64> {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..count)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
            })
            .map(|v| v as f32 as f64)
            .collect()
    }

    fn sgn(v: f64) -> f64 {
        if v >= 0.0 {
            1.0
        } else {
            -1.0
        }
    }

    /// The rules written out per sequence and unit in `f64` on the scalar reference forward: the
    /// input's relevance `(B, T, I)` and the rest `(B)`.
    fn scalar_relevance(
        spec: &Spec,
        input: &Input,
        arriving: &[f64],
        eps: f64,
        bias_factor: f64,
    ) -> (Vec<f64>, Vec<f64>) {
        let (ni, h, o, p) = (spec.input, spec.hidden, spec.offsets(), &spec.params);
        let (batch, steps) = (input.batch, input.seq_len);
        let out = reference::forward(spec, input);
        let trace = &out.trace;
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let mut x_relevance = vec![0.0; batch * steps * ni];
        let mut rest = vec![0.0; batch];
        for b in 0..batch {
            let mut rh = vec![0.0; h];
            let mut rc = vec![0.0; h];
            for t in (0..steps).rev() {
                let z = &trace.z[t][b * 4 * h..][..4 * h];
                let h_prev = &trace.hiddens[t][b * h..][..h];
                for u in 0..h {
                    rc[u] += rh[u] + arriving[(b * steps + t) * h + u];
                }
                let mut rg = vec![0.0; h];
                let mut cell_share = 0.0;
                let mut ratio = vec![0.0; h];
                for u in 0..h {
                    let c = trace.states[t + 1][b * h + u];
                    ratio[u] = rc[u] / (c + eps * sgn(c));
                    cell_share += bias_factor * eps * sgn(c) / (2 * h) as f64 * ratio[u];
                }
                for u in 0..h {
                    let old = trace.states[t][b * h + u];
                    let written = sigmoid(z[h + u]) * z[3 * h + u].tanh();
                    rg[u] = written * ratio[u] + cell_share;
                    rc[u] = sigmoid(z[u]) * old * ratio[u] + cell_share;
                }
                // lrp_linear over the I + H inputs of the candidate.
                let row = |u: usize| 3 * h + u;
                let bias = |u: usize| p[o.i2h_bias.start + row(u)] + p[o.h2h_bias.start + row(u)];
                let numerator = |weight: f64, value: f64, u: usize| {
                    let zg = z[3 * h + u];
                    (weight * value + bias_factor * (bias(u) + eps * sgn(zg)) / (ni + h) as f64)
                        / (zg + eps * sgn(zg))
                        * rg[u]
                };
                for i in 0..ni {
                    let value = input.x[(b * steps + t) * ni + i];
                    x_relevance[(b * steps + t) * ni + i] = (0..h)
                        .map(|u| numerator(p[o.i2h_weight.start + row(u) * ni + i], value, u))
                        .sum();
                }
                for v in 0..h {
                    rh[v] = (0..h)
                        .map(|u| numerator(p[o.h2h_weight.start + row(u) * h + v], h_prev[v], u))
                        .sum();
                }
            }
            rest[b] = rh.iter().sum::<f64>() + rc.iter().sum::<f64>();
        }
        (x_relevance, rest)
    }

    #[test]
    fn relevance_matches_the_scalar_rules_and_conserves() {
        // Sizes with padding (I, H not multiples of 4), an odd batch, one and several blocks.
        for (case, [batch, steps, ni, h]) in [[3, 5, 3, 6], [1, 1, 4, 4], [4, 7, 5, 9]]
            .into_iter()
            .enumerate()
        {
            let seed = case as u64 * 10;
            let mut spec = Spec {
                kind: Kind::Lstm,
                k: 1,
                max_pooling: false,
                input: ni,
                hidden: h,
                params: Vec::new(),
            };
            spec.params = values(spec.offsets().len(), seed + 1, 0.7);
            let input = Input {
                batch,
                seq_len: steps,
                x: values(batch * steps * ni, seed + 2, 1.0),
                hidden: vec![0.0; batch * h],
                state: vec![0.0; batch * h],
            };
            let arriving = values(batch * steps * h, seed + 3, 1.0);
            let mut trainer = trainer(&spec);
            trainer.keep_candidates(true);
            forward_input(&mut trainer, &input);
            for (eps, bias_factor) in [(1e-3, 0.0), (1e-2, 1.0)] {
                trainer.relevance(&f32s(&arriving), eps as f32, bias_factor as f32);
                let got_x = read(trainer.relevance_x_ptr(), batch * steps * ni);
                let got_rest = read(trainer.relevance_rest_ptr(), batch);
                let (x, rest) = scalar_relevance(&spec, &input, &arriving, eps, bias_factor);
                let scale = x.iter().chain(&rest).fold(1e-3f64, |m, v| m.max(v.abs()));
                for (i, (a, e)) in got_x
                    .iter()
                    .zip(&x)
                    .chain(got_rest.iter().zip(&rest))
                    .enumerate()
                {
                    assert!(
                        (a - e).abs() <= 1e-4 * scale,
                        "case {case}, biasFactor {bias_factor}, #{i}: {a} vs {e}"
                    );
                }
                if bias_factor == 1.0 {
                    for b in 0..batch {
                        let total: f64 =
                            got_x[b * steps * ni..][..steps * ni].iter().sum::<f64>() + got_rest[b];
                        let given: f64 = arriving[b * steps * h..][..steps * h].iter().sum();
                        assert!(
                            (total - given).abs() <= 1e-4 * (1.0 + given.abs()),
                            "row {b}"
                        );
                    }
                }
            }
        }
    }
}
