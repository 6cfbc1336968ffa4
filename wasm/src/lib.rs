//! Forward and training kernels of `LSTM`, `ArrayLSTM`, `AttentionArrayLSTM` and
//! `StochasticArrayLSTM` (github.com/Thijsvanede/ArrayLSTM) for `wasm32-unknown-unknown` with
//! `simd128`.
//!
//! The JavaScript boundary for inference is one class, [`Cell`]: its constructor packs the weights
//! once into wasm memory, [`Cell::forward`] runs a whole batch of sequences (one copy of the inputs
//! in, no call back to JavaScript per step), and the results are read from the pointers it
//! exposes. Training has its own class, `train::Trainer` (forward, backward, optimizer steps);
//! torch's GRU and RNN theirs, `torch_cell::TorchCell`.
//! Callers validate shapes before calling; the kernels only assert them.

mod aligned;
mod backward;
mod calibrate;
mod cell;
mod gemm;
mod lrp;
mod math;
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod math_wide;
mod optim;
mod pack;
mod params;
mod record;
#[cfg(test)]
mod reference;
mod sequence;
mod simd;
mod torch_cell;
mod train;
#[cfg(test)]
mod train_tests;
mod variants;

use cell::with_variant;
use sequence::{begin, finish, forward, step, Extras, Weights, Workspace};
use variants::{FamilyKind, Kind};
use wasm_bindgen::prelude::*;

/// A compiled cell: packed weights plus the buffers of the last call.
#[wasm_bindgen]
pub struct Cell {
    kind: FamilyKind,
    weights: Weights,
    workspace: Workspace,
    /// The input of a call run step by step ([`Cell::begin`]), `(B, T, I)`.
    steps_x: Vec<f32>,
}

#[wasm_bindgen]
impl Cell {
    /// Packs the PyTorch-layout parameters of a cell (`kind`: a code of [`variants`], generated
    /// from `src/variants.ts`; `gate_slope`: the gates' activation, 0 for the sigmoid, else a hard
    /// sigmoid's slope, see [`math::Gate::from_slope`]). The attention slices are empty for the
    /// other kinds.
    #[wasm_bindgen(constructor)]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: u32,
        k: usize,
        max_pooling: bool,
        gate_slope: f32,
        input_size: usize,
        hidden_size: usize,
        i2h_weight: &[f32],
        i2h_bias: &[f32],
        h2h_weight: &[f32],
        h2h_bias: &[f32],
        i2a_weight: &[f32],
        i2a_bias: &[f32],
    ) -> Cell {
        let kind = lstm_family(kind);
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
        let attention = kind.flags().attention;
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
        let params = [
            i2h_weight, i2h_bias, h2h_weight, h2h_bias, i2a_weight, i2a_bias,
        ];
        let gate = math::Gate::from_slope(gate_slope);
        let weights = pack::weights(layout, attention, params, max_pooling, gate);
        Cell {
            kind,
            weights,
            workspace: Workspace::default(),
            steps_x: Vec::new(),
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
        with_variant!(self.kind, forward(w, ws, batch, seq_len, x, hidden, state));
    }

    /// [`Cell::forward`] step by step, for threads that share the hidden units of one call: sets
    /// up the call (as `forward` takes it), then [`Cell::step`] for each step, then
    /// [`Cell::finish`]; the results are read as after `forward`.
    pub fn begin(
        &mut self,
        batch: usize,
        seq_len: usize,
        x: &[f32],
        hidden: &[f32],
        state: &[f32],
    ) {
        let (w, ws) = (&self.weights, &mut self.workspace);
        with_variant!(self.kind, begin(w, ws, batch, seq_len, x, hidden, state));
        self.steps_x.clear();
        self.steps_x.extend_from_slice(x);
    }

    /// Step `t` for the hidden units of blocks `first_block .. end_block` (four units each).
    /// Returns the byte address of `h_t` in the next step's first input row (`f32`; the rows are
    /// [`Cell::row_stride`] floats apart), where the caller writes the other threads' units.
    pub fn step(&mut self, t: usize, first_block: usize, end_block: usize) -> usize {
        let (w, ws, x) = (&self.weights, &mut self.workspace, &self.steps_x);
        with_variant!(self.kind, step(w, ws, x, t, first_block, end_block));
        ws.hidden_rows()[w.layout.input_pad..].as_ptr() as usize
    }

    /// Floats from one input row to the next (`input_pad + hidden_pad`), for [`Cell::step`].
    pub fn row_stride(&self) -> usize {
        self.weights.layout.depth
    }

    /// Ends a call run step by step: the final hidden state and cells, read as after `forward`.
    pub fn finish(&mut self) {
        finish(&self.weights, &mut self.workspace);
        self.steps_x = Vec::new();
    }

    /// Asks the next calls for the opt-in outputs (both off at first): the attention weights
    /// (attention cells) and the chosen lanes (stochastic cells), read through
    /// [`Cell::attention_ptr`] and [`Cell::lanes_ptr`].
    pub fn set_outputs(&mut self, attention: bool, lanes: bool) {
        self.workspace.extras = Extras { attention, lanes };
    }

    /// Byte address of the last call's attention weights `(B, T, H, k)` (`f32`).
    pub fn attention_ptr(&self) -> usize {
        self.workspace.attention_out.as_ptr() as usize
    }

    /// Byte address of the last call's chosen lanes `(B, T, H)` (`i32`).
    pub fn lanes_ptr(&self) -> usize {
        self.workspace.lanes_out.as_ptr() as usize
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

/// The kind of `code` for the LSTM kernels ([`Cell`], `train::Trainer`). Panics on an unknown
/// code or a kind without cell states (GRU and RNN run in `torch_cell::TorchCell`).
fn lstm_family(code: u32) -> FamilyKind {
    let kind = Kind::from_code(code).unwrap_or_else(|message| panic!("{message}"));
    kind.family().unwrap_or_else(|| {
        panic!("{kind:?} has no cell states: it runs in TorchCell, not in the LSTM kernels")
    })
}

/// Runs the bare micro-kernel `repeats` times on a `(rows, depth) · (depth, 16 · blocks)` product
/// (no cell, no lanes) and returns one result element; benchmarks time it to get the GEMM rate the
/// forward is measured against.
#[wasm_bindgen]
pub fn calibrate_gemm(rows: usize, depth: usize, blocks: usize, repeats: usize) -> f32 {
    calibrate::gemm(rows, depth, blocks, repeats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::values;

    const I: usize = 3;
    const H: usize = 5;
    const T: usize = 4;

    fn cell(kind: u32, k: usize) -> Cell {
        test_cell(kind, k, I, H)
    }

    /// A cell of `kind` with `k` lanes, `input` inputs and `hidden` units, with distinct
    /// deterministic weights (the kernels' tests share it).
    pub(crate) fn test_cell(kind: u32, k: usize, input: usize, hidden: usize) -> Cell {
        let rows = 4 * k * hidden;
        let (i2a_weight, i2a_bias) = if kind == variants::ATTENTION {
            (values(k * hidden * input, 5), values(k * hidden, 6))
        } else {
            (vec![], vec![])
        };
        Cell::new(
            kind,
            k,
            false,
            0.0,
            input,
            hidden,
            &values(rows * input, 1),
            &values(rows, 2),
            &values(rows * hidden, 3),
            &values(rows, 4),
            &i2a_weight,
            &i2a_bias,
        )
    }

    /// Output, final hidden state and final cell states of one batch row.
    fn row(cell: &Cell, batch: usize, b: usize, k: usize) -> Vec<f32> {
        let ws = &cell.workspace;
        let mut values = ws.output[b * T * H..][..T * H].to_vec();
        values.extend_from_slice(&ws.hidden[b * H..][..H]);
        for lane in 0..k {
            values.extend_from_slice(&ws.state[(lane * batch + b) * H..][..H]);
        }
        values
    }

    #[test]
    fn nan_in_one_sequence_reaches_only_that_sequence() {
        for (kind, k) in [
            (variants::LSTM, 1),
            (variants::ARRAY, 3),
            (variants::ATTENTION, 2),
            (variants::STOCHASTIC, 3),
        ] {
            let batch = 3;
            let mut x = values(batch * T * I, 7);
            // Sequence 1, step 1, feature 2.
            x[(T + 1) * I + 2] = f32::NAN;
            let (hidden, state) = (values(batch * H, 8), values(k * batch * H, 9));
            let mut with_nan = cell(kind, k);
            with_nan.forward(batch, T, &x, &hidden, &state);
            let nan_row = row(&with_nan, batch, 1, k);
            // Step 0 is untouched; from step 1 on, every unit is NaN.
            assert!(nan_row[..H].iter().all(|v| v.is_finite()), "kind {kind}");
            assert!(
                nan_row[H..].iter().all(|v| v.is_nan()),
                "kind {kind}: {nan_row:?}"
            );
            // The other rows equal a run without the NaN row, bit for bit.
            for b in [0, 2] {
                let mut alone = cell(kind, k);
                let state_b: Vec<f32> = (0..k)
                    .flat_map(|lane| state[(lane * batch + b) * H..][..H].to_vec())
                    .collect();
                alone.forward(
                    1,
                    T,
                    &x[b * T * I..][..T * I],
                    &hidden[b * H..][..H],
                    &state_b,
                );
                assert_eq!(
                    row(&with_nan, batch, b, k),
                    row(&alone, 1, 0, k),
                    "kind {kind}, row {b}"
                );
            }
        }
    }

    #[test]
    fn hidden_units_split_over_two_cells_give_the_whole_forward_bit_for_bit() {
        for (kind, k) in [
            (variants::LSTM, 1),
            (variants::ARRAY, 3),
            (variants::ATTENTION, 2),
            (variants::STOCHASTIC, 3),
        ] {
            for batch in [1, 3] {
                let x = values(batch * T * I, 7);
                let (hidden, state) = (values(batch * H, 8), values(k * batch * H, 9));
                let mut whole = cell(kind, k);
                whole.forward(batch, T, &x, &hidden, &state);
                // H = 5: blocks 0 (units 0..4) and 1 (unit 4 and three padding units).
                let mut parts = [cell(kind, k), cell(kind, k)];
                let ranges = [(0, 1), (1, 2)];
                for part in &mut parts {
                    part.begin(batch, T, &x, &hidden, &state);
                }
                let stride = parts[0].row_stride();
                for t in 0..T {
                    for (part, &(first, end)) in parts.iter_mut().zip(&ranges) {
                        part.step(t, first, end);
                    }
                    // Each part hands its units of h_t to the other.
                    let input_pad = stride - 8;
                    for b in 0..batch {
                        let row = b * stride + input_pad;
                        let from_1: Vec<f32> =
                            parts[1].workspace.hidden_rows()[row + 4..row + 8].to_vec();
                        let from_0: Vec<f32> =
                            parts[0].workspace.hidden_rows()[row..row + 4].to_vec();
                        parts[0].workspace.hidden_rows()[row + 4..row + 8].copy_from_slice(&from_1);
                        parts[1].workspace.hidden_rows()[row..row + 4].copy_from_slice(&from_0);
                    }
                }
                for part in &mut parts {
                    part.finish();
                }
                for b in 0..batch {
                    let expected = row(&whole, batch, b, k);
                    let [first, second] =
                        [row(&parts[0], batch, b, k), row(&parts[1], batch, b, k)];
                    // Unit u of every H-long group comes from the part that computed it.
                    let combined: Vec<f32> = (0..expected.len())
                        .map(|i| if i % H < 4 { first[i] } else { second[i] })
                        .collect();
                    assert_eq!(
                        combined.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        expected.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        "kind {kind}, batch {batch}, row {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn opt_in_outputs_change_no_result_and_are_weights_and_lane_indices() {
        for (kind, k) in [(variants::ATTENTION, 3), (variants::STOCHASTIC, 4)] {
            for batch in [1, 3] {
                let x = values(batch * T * I, 7);
                let (hidden, state) = (values(batch * H, 8), values(k * batch * H, 9));
                let mut plain = cell(kind, k);
                plain.forward(batch, T, &x, &hidden, &state);
                let mut asked = cell(kind, k);
                asked.set_outputs(true, true);
                asked.forward(batch, T, &x, &hidden, &state);
                for b in 0..batch {
                    assert_eq!(row(&plain, batch, b, k), row(&asked, batch, b, k));
                }
                let ws = &asked.workspace;
                if kind == variants::ATTENTION {
                    assert_eq!(ws.attention_out.len(), batch * T * H * k);
                    for unit in ws.attention_out.chunks(k) {
                        let sum: f32 = unit.iter().sum();
                        assert!((sum - 1.0).abs() < 1e-5, "lane weights sum to {sum}");
                    }
                    assert!(ws.lanes_out.is_empty(), "attention has no lane choice");
                } else {
                    assert_eq!(ws.lanes_out.len(), batch * T * H);
                    let in_range = |&lane: &i32| (0..k as i32).contains(&lane);
                    assert!(ws.lanes_out.iter().all(in_range));
                    assert!(ws.lanes_out.iter().any(|&lane| lane > 0));
                    assert!(ws.attention_out.is_empty(), "stochastic has no attention");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "unknown cell kind")]
    fn an_unknown_kind_is_refused_not_run_as_another_variant() {
        cell(variants::COUNT, 1);
    }

    #[test]
    #[should_panic(expected = "Gru has no cell states")]
    fn a_kind_without_cell_states_is_refused_by_the_lstm_kernels() {
        cell(variants::GRU, 1);
    }

    #[test]
    #[should_panic(expected = "does not fit in wasm32 memory")]
    fn a_call_too_large_for_wasm32_is_refused_before_any_buffer_is_sized() {
        // batch · seq_len · hidden ≥ 2^32 wrapped to a small output buffer before.
        let mut lstm = cell(variants::LSTM, 1);
        lstm.forward(1 << 16, 1 << 16, &[], &[], &[]);
    }
}

// The C ABI of the native library (`native/Cargo.toml` turns the feature on; never in wasm). Last
// in the file so that the wasm module's panic locations, and so its bytes, stay as they were.
#[cfg(feature = "ffi")]
#[path = "../../native/src/ffi.rs"]
mod ffi;
