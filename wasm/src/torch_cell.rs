//! torch's GRU and Elman RNN (`tanh` or `relu`) over whole batches of sequences, batch first:
//! the kernels of the `"gru"`, `"rnn_tanh"` and `"rnn_relu"` variants (`src/variants.ts`).
//!
//! - GRU, gate blocks `r, z, n`: `r = σ(W_ir x + b_ir + W_hr h + b_hr)`, `z` likewise,
//!   `n = tanh(W_in x + b_in + r·(W_hn h + b_hn))`, `h' = (1 − z)·n + z·h`.
//! - RNN: `h' = tanh(W_ih x + b_ih + W_hh h + b_hh)` (or `relu`).
//!
//! The GRU's `n` gate multiplies the recurrent product alone by `r`, so the input and recurrent
//! products cannot be fused into one `[x | h]` GEMM as the LSTM kernels do (`sequence.rs`): each
//! step computes `gi = b_ih + W_ih·x_t` and `gh = b_hh + W_hh·h` apart. Both are written as
//! `out += v_i · Wᵀ[i, ..]` over transposed weights: unit-stride multiply-adds that LLVM
//! vectorises with `simd128`, each output summed in the reference's order.

use crate::variants::{Kind, TorchKind};
use wasm_bindgen::prelude::*;

/// A compiled GRU or RNN cell: transposed weights plus the buffers of the last call.
#[wasm_bindgen]
pub struct TorchCell {
    kind: TorchKind,
    input_size: usize,
    hidden_size: usize,
    /// `weight_ihᵀ`, `(I, G·H)`.
    input_weights: Vec<f32>,
    /// `weight_hhᵀ`, `(H, G·H)`.
    hidden_weights: Vec<f32>,
    bias_ih: Vec<f32>,
    bias_hh: Vec<f32>,
    /// Hidden state after every step, `(B, T, H)`.
    output: Vec<f32>,
    /// Final hidden state, `(B, H)`.
    hidden: Vec<f32>,
}

/// `(rows, columns)` row-major → `(columns, rows)`.
fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..columns {
            out[c * rows + r] = values[r * columns + c];
        }
    }
    out
}

/// `out = bias + v · weights` for `weights` `(v.len(), out.len())`.
#[inline(always)]
fn affine(bias: &[f32], weights: &[f32], v: &[f32], out: &mut [f32]) {
    out.copy_from_slice(bias);
    for (&value, row) in v.iter().zip(weights.chunks_exact(out.len())) {
        for (o, &w) in out.iter_mut().zip(row) {
            *o += value * w;
        }
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

#[wasm_bindgen]
impl TorchCell {
    /// Takes torch's parameters (`kind`: [`variants::GRU`], [`variants::RNN_TANH`] or
    /// [`variants::RNN_RELU`]): `weight_ih` `(G·H, I)`, `bias_ih` `(G·H)`, `weight_hh`
    /// `(G·H, H)`, `bias_hh` `(G·H)`, with `G` 3 for the GRU and 1 for the RNN.
    #[wasm_bindgen(constructor)]
    pub fn new(
        kind: u32,
        input_size: usize,
        hidden_size: usize,
        weight_ih: &[f32],
        bias_ih: &[f32],
        weight_hh: &[f32],
        bias_hh: &[f32],
    ) -> TorchCell {
        let kind = Kind::from_code(kind).unwrap_or_else(|message| panic!("{message}"));
        let kind = kind.torch().unwrap_or_else(|| {
            panic!("{kind:?} keeps cell states: it runs in Cell or Trainer, not in TorchCell")
        });
        let gates = kind.flags().gates;
        assert!(
            input_size >= 1 && hidden_size >= 1,
            "sizes must be positive"
        );
        let rows = gates * hidden_size;
        assert_eq!(
            weight_ih.len(),
            rows * input_size,
            "weight_ih has the wrong length"
        );
        assert_eq!(
            weight_hh.len(),
            rows * hidden_size,
            "weight_hh has the wrong length"
        );
        assert_eq!(bias_ih.len(), rows, "bias_ih has the wrong length");
        assert_eq!(bias_hh.len(), rows, "bias_hh has the wrong length");
        TorchCell {
            kind,
            input_size,
            hidden_size,
            input_weights: transpose(weight_ih, rows, input_size),
            hidden_weights: transpose(weight_hh, rows, hidden_size),
            bias_ih: bias_ih.to_vec(),
            bias_hh: bias_hh.to_vec(),
            output: Vec::new(),
            hidden: Vec::new(),
        }
    }

    /// Runs `seq_len` steps on `batch` sequences: `x` `(B, T, I)`, `hidden` `(B, H)`. Read the
    /// results through [`TorchCell::output_ptr`] and [`TorchCell::hidden_ptr`].
    pub fn forward(&mut self, batch: usize, seq_len: usize, x: &[f32], hidden: &[f32]) {
        let (i, h) = (self.input_size, self.hidden_size);
        let outputs = batch
            .checked_mul(seq_len)
            .and_then(|n| n.checked_mul(h))
            .expect("the output does not fit in wasm32 memory");
        assert_eq!(x.len(), batch * seq_len * i, "x has the wrong length");
        assert_eq!(hidden.len(), batch * h, "hidden has the wrong length");
        self.output.clear();
        self.output.resize(outputs, 0.0);
        self.hidden.clear();
        self.hidden.extend_from_slice(hidden);
        let rows = self.bias_ih.len();
        let (mut gi, mut gh) = (vec![0.0f32; rows], vec![0.0f32; rows]);
        for b in 0..batch {
            let state = &mut self.hidden[b * h..][..h];
            for t in 0..seq_len {
                let at = b * seq_len + t;
                affine(
                    &self.bias_ih,
                    &self.input_weights,
                    &x[at * i..][..i],
                    &mut gi,
                );
                affine(&self.bias_hh, &self.hidden_weights, state, &mut gh);
                match self.kind {
                    TorchKind::Gru => {
                        for u in 0..h {
                            let r = sigmoid(gi[u] + gh[u]);
                            let z = sigmoid(gi[h + u] + gh[h + u]);
                            let n = (gi[2 * h + u] + r * gh[2 * h + u]).tanh();
                            state[u] = (1.0 - z) * n + z * state[u];
                        }
                    }
                    TorchKind::RnnTanh => {
                        for u in 0..h {
                            state[u] = (gi[u] + gh[u]).tanh();
                        }
                    }
                    TorchKind::RnnRelu => {
                        for u in 0..h {
                            let a = gi[u] + gh[u];
                            // Not `max`, which would turn NaN into 0: NaN stays NaN, as in torch.
                            state[u] = if a < 0.0 { 0.0 } else { a };
                        }
                    }
                }
                self.output[at * h..][..h].copy_from_slice(state);
            }
        }
    }

    /// Byte address of the last call's output `(B, T, H)` in wasm memory.
    pub fn output_ptr(&self) -> usize {
        self.output.as_ptr() as usize
    }

    /// Byte address of the last call's final hidden state `(B, H)`.
    pub fn hidden_ptr(&self) -> usize {
        self.hidden.as_ptr() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::variants;

    /// One step of torch's GRU equations in `f64`, for one sequence.
    fn gru_step(cell: &TorchCell, x: &[f32], h: &[f64]) -> Vec<f64> {
        let (i, n) = (cell.input_size, cell.hidden_size);
        let product = |weights: &[f32], bias: &[f32], v: &[f64], width: usize, g: usize| {
            // `weights` is transposed: `(width, 3H)`.
            (0..width).fold(bias[g] as f64, |sum, j| {
                sum + weights[j * 3 * n + g] as f64 * v[j]
            })
        };
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        (0..n)
            .map(|u| {
                let gi = |g| product(&cell.input_weights, &cell.bias_ih, &x, i, g);
                let gh = |g| product(&cell.hidden_weights, &cell.bias_hh, h, n, g);
                let r = sig(gi(u) + gh(u));
                let z = sig(gi(n + u) + gh(n + u));
                let candidate = (gi(2 * n + u) + r * gh(2 * n + u)).tanh();
                (1.0 - z) * candidate + z * h[u]
            })
            .collect()
    }

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|j| (((j * 7 + seed * 13) % 17) as f32 - 8.0) / 10.0)
            .collect()
    }

    #[test]
    fn gru_follows_torch_and_rnn_relu_keeps_nan() {
        let (i, h, t) = (3, 5, 4);
        let mut gru = TorchCell::new(
            variants::GRU,
            i,
            h,
            &values(3 * h * i, 1),
            &values(3 * h, 2),
            &values(3 * h * h, 3),
            &values(3 * h, 4),
        );
        let (x, h0) = (values(2 * t * i, 5), values(2 * h, 6));
        gru.forward(2, t, &x, &h0);
        for b in 0..2 {
            let mut state: Vec<f64> = h0[b * h..][..h].iter().map(|&v| v as f64).collect();
            for step in 0..t {
                state = gru_step(&gru, &x[(b * t + step) * i..][..i], &state);
                for u in 0..h {
                    let got = gru.output[(b * t + step) * h + u] as f64;
                    assert!((got - state[u]).abs() < 1e-6, "b {b} t {step} u {u}");
                }
            }
        }
        let mut relu = TorchCell::new(variants::RNN_RELU, 1, 1, &[1.0], &[0.0], &[0.0], &[0.0]);
        relu.forward(1, 3, &[-1.0, f32::NAN, 2.0], &[0.0]);
        assert_eq!(relu.output[0], 0.0);
        // NaN stays NaN, and reaches the next step through the recurrence (0 · NaN is NaN).
        assert!(relu.output[1].is_nan() && relu.output[2].is_nan());
    }
}
