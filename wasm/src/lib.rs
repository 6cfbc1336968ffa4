//! Forward and training kernels of `LSTM`, `ArrayLSTM`, `AttentionArrayLSTM` and
//! `StochasticArrayLSTM` (github.com/Thijsvanede/ArrayLSTM) for `wasm32-unknown-unknown` with
//! `simd128`.
//!
//! The JavaScript boundary for inference is one class, [`Cell`]: its constructor packs the weights
//! once into wasm memory, [`Cell::forward`] runs a whole batch of sequences (one copy of the inputs
//! in, no call back to JavaScript per step), and the results are read from the pointers it
//! exposes. Training has its own class, `train::Trainer` (forward, backward, optimizer steps).
//! Callers validate shapes before calling; the kernels only assert them.

mod aligned;
mod backward;
mod calibrate;
mod cell;
mod gemm;
mod math;
mod optim;
mod pack;
mod params;
mod record;
#[cfg(test)]
mod reference;
mod sequence;
mod simd;
#[cfg(test)]
mod tests;
mod train;

use aligned::Floats;
use sequence::{forward, Weights, Workspace};
use wasm_bindgen::prelude::*;

/// Variant codes shared with `src/backends/wasm_kernel.ts`.
const KIND_LSTM: u32 = 0;
const KIND_ARRAY: u32 = 1;
const KIND_ATTENTION: u32 = 2;
const KIND_STOCHASTIC: u32 = 3;

/// A compiled cell: packed weights plus the buffers of the last call.
#[wasm_bindgen]
pub struct Cell {
    kind: u32,
    weights: Weights,
    workspace: Workspace,
}

#[wasm_bindgen]
impl Cell {
    /// Packs the PyTorch-layout parameters of a cell (`kind`: 0 LSTM, 1 ArrayLSTM, 2 attention,
    /// 3 stochastic). The attention slices are empty for the other kinds.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: u32,
        k: usize,
        max_pooling: bool,
        input_size: usize,
        hidden_size: usize,
        i2h_weight: &[f32],
        i2h_bias: &[f32],
        h2h_weight: &[f32],
        h2h_bias: &[f32],
        i2a_weight: &[f32],
        i2a_bias: &[f32],
    ) -> Cell {
        assert!(kind <= KIND_STOCHASTIC, "unknown cell kind");
        assert!(
            k >= 1 && input_size >= 1 && hidden_size >= 1,
            "sizes must be positive"
        );
        let rows = 4 * k * hidden_size;
        assert_eq!(
            i2h_weight.len(),
            rows * input_size,
            "i2h.weight has the wrong length"
        );
        assert_eq!(
            h2h_weight.len(),
            rows * hidden_size,
            "h2h.weight has the wrong length"
        );
        assert_eq!(i2h_bias.len(), rows, "i2h.bias has the wrong length");
        assert_eq!(h2h_bias.len(), rows, "h2h.bias has the wrong length");
        let layout = pack::Layout::new(input_size, hidden_size, k);
        let attention = kind == KIND_ATTENTION;
        if attention {
            assert_eq!(
                i2a_weight.len(),
                k * hidden_size * input_size,
                "i2a.weight: wrong length"
            );
            assert_eq!(
                i2a_bias.len(),
                k * hidden_size,
                "i2a.bias has the wrong length"
            );
        }
        let weights = Weights {
            layout,
            gates: pack::gate_panels(&layout, i2h_weight, h2h_weight).into(),
            gate_bias: pack::gate_bias(&layout, i2h_bias, h2h_bias).into(),
            attention: if attention {
                pack::attention_panels(&layout, i2a_weight).into()
            } else {
                Floats::default()
            },
            attention_bias: if attention {
                pack::attention_bias(&layout, i2a_bias).into()
            } else {
                Floats::default()
            },
            max_pooling,
        };
        Cell {
            kind,
            weights,
            workspace: Workspace::default(),
        }
    }

    /// Runs `seq_len` steps on `batch` sequences: `x` `(B, T, I)`, `hidden` `(B, H)`, `state`
    /// `(k, B, H)`. Read the results through [`Cell::output_ptr`] and friends.
    pub fn forward(
        &mut self,
        batch: usize,
        seq_len: usize,
        x: &[f32],
        hidden: &[f32],
        state: &[f32],
    ) {
        let (w, ws) = (&self.weights, &mut self.workspace);
        match self.kind {
            KIND_LSTM | KIND_ARRAY => {
                forward::<cell::Array>(w, ws, batch, seq_len, x, hidden, state)
            }
            KIND_ATTENTION => forward::<cell::Attention>(w, ws, batch, seq_len, x, hidden, state),
            _ => forward::<cell::Stochastic>(w, ws, batch, seq_len, x, hidden, state),
        }
    }

    /// Byte address of the last call's output `(B, T, H)` in wasm memory.
    pub fn output_ptr(&self) -> usize {
        self.workspace.output.as_ptr() as usize
    }

    /// Byte address of the last call's final hidden state `(B, H)`.
    pub fn hidden_ptr(&self) -> usize {
        self.workspace.hidden.as_ptr() as usize
    }

    /// Byte address of the last call's final cell states `(k, B, H)`.
    pub fn state_ptr(&self) -> usize {
        self.workspace.state.as_ptr() as usize
    }
}

/// Runs the bare micro-kernel `repeats` times on a `(rows, depth) · (depth, 16 · blocks)` product
/// (no cell, no lanes) and returns one result element; benchmarks time it to get the GEMM rate the
/// forward is measured against.
#[wasm_bindgen]
pub fn calibrate_gemm(rows: usize, depth: usize, blocks: usize, repeats: usize) -> f32 {
    calibrate::gemm(rows, depth, blocks, repeats)
}
