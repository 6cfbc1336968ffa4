//! The training boundary, [`Trainer`]: one cell's parameters, gradients and optimizer state in
//! wasm memory, with a recording forward, the backward and the optimizer steps.
//!
//! Master weights: the parameters live once, flat in PyTorch's layouts ([`crate::params`]); the
//! gradients and the optimizer state use the same layout, and after each optimizer step the
//! kernels' panels are packed again from them (Adam and the repack take 3.5 ms together at the
//! documentation's sizes, against about 400 ms for the whole training step on one thread).
//! Updating the packed panels in place instead would not be PyTorch's update: the forward's panels hold `i2h.bias + h2h.bias` as one sum, while PyTorch keeps two
//! parameters with their own Adam moments, and `stateDict()`, `p.grad` and the optimizer's state
//! are all read in PyTorch's layouts anyway.
//!
//! Splitting the batch over workers: each worker holds a `Trainer` with the same parameters and
//! runs `forward` and `backward` on its rows (`x`, `hidden`, `state`, and the output gradients,
//! sliced by batch row; the results and the input gradients come back for those rows). The
//! parameter gradients are sums over rows: the caller adds the workers' gradient vectors (after
//! `zero_grad`, each holds only its own rows' sum), writes the total into every worker's gradient
//! vector, and every worker takes the same optimizer step, which keeps their parameters identical
//! (the same `f32` operations on the same values). `grad_squared_norm` of the total, from any one
//! worker, gives `clip_grad_norm_`'s norm.

use crate::aligned::Floats;
use crate::backward::{backward, transposed_panels, Gradients, Wanted};
use crate::cell::{explains, with_variant};
use crate::lrp::{candidate_panels, relevance, Relevance};
use crate::optim::{adam, sgd, squared_norm, Adam, Moments, Sgd};
use crate::pack::{self, Layout};
use crate::params::{Offsets, NAMES};
use crate::record::{forward, Record};
use crate::sequence::Weights;
use crate::variants::FamilyKind;
use wasm_bindgen::prelude::*;

/// A cell being trained: parameters, gradients, optimizer state and the last forward's record.
#[wasm_bindgen]
pub struct Trainer {
    kind: FamilyKind,
    offsets: Offsets,
    params: Floats,
    grads: Floats,
    weights: Weights,
    transposed: Floats,
    record: Record,
    gradients: Gradients,
    relevance: Relevance,
    /// SGD's momentum buffer, or Adam's `exp_avg`.
    first_moment: Floats,
    /// Adam's `exp_avg_sq`.
    second_moment: Floats,
    /// Adam's `max_exp_avg_sq` (amsgrad).
    max_second_moment: Floats,
    steps: u32,
}

#[wasm_bindgen]
impl Trainer {
    /// Takes the PyTorch-layout parameters of a cell, as `Cell`'s constructor does (`kind`: an
    /// LSTM-family code of [`crate::variants`]; `gate_slope`: 0 for the sigmoid gates, else
    /// a hard sigmoid's slope; the attention slices are empty for the other kinds). Gradients and
    /// optimizer state start at zero.
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
    ) -> Trainer {
        let kind = crate::lstm_family(kind);
        assert!(
            k >= 1 && input_size >= 1 && hidden_size >= 1,
            "sizes must be positive"
        );
        let attention = kind.flags().attention;
        let offsets = Offsets::new(k, input_size, hidden_size, attention);
        let mut params = Floats::default();
        params.reset(offsets.len());
        let given = [
            i2h_weight, i2h_bias, h2h_weight, h2h_bias, i2a_weight, i2a_bias,
        ];
        for ((range, values), name) in offsets.all().into_iter().zip(given).zip(NAMES) {
            assert_eq!(values.len(), range.len(), "{} has the wrong length", name);
            params[range].copy_from_slice(values);
        }
        let len = offsets.len();
        let zeros = || {
            let mut floats = Floats::default();
            floats.reset(len);
            floats
        };
        let layout = Layout::new(input_size, hidden_size, k);
        let mut trainer = Trainer {
            kind,
            offsets,
            grads: zeros(),
            first_moment: zeros(),
            second_moment: zeros(),
            max_second_moment: zeros(),
            params,
            weights: Weights {
                layout,
                gates: Floats::default(),
                gate_bias: Floats::default(),
                attention: Floats::default(),
                attention_bias: Floats::default(),
                max_pooling,
                gate: crate::math::Gate::from_slope(gate_slope),
                h2h_finite: false,
            },
            transposed: Floats::default(),
            record: Record::default(),
            gradients: Gradients::default(),
            relevance: Relevance::default(),
            steps: 0,
        };
        trainer.repack();
        trainer
    }

    /// Packs the kernels' panels from the parameters again; call it after writing parameters
    /// through [`Trainer::parameters_ptr`] (`loadStateDict`). The optimizer steps call it
    /// themselves.
    pub fn repack(&mut self) {
        let (o, p) = (&self.offsets, &self.params[..]);
        let attention = self.kind.flags().attention;
        let params = o.all().map(|range| &p[range]);
        pack::repack(&mut self.weights, attention, params);
        let l = &self.weights.layout;
        transposed_panels(l, attention, p, o, &mut self.transposed);
    }

    /// Byte address of the flat parameters (`i2h.weight`, `i2h.bias`, `h2h.weight`, `h2h.bias`,
    /// `i2a.weight`, `i2a.bias`, each in PyTorch's layout, one after another).
    pub fn parameters_ptr(&self) -> usize {
        self.params.as_ptr() as usize
    }

    /// Floats in the flat parameters (and in the gradients and each optimizer state vector).
    pub fn parameters_len(&self) -> usize {
        self.params.len()
    }

    /// Byte address of the gradients, laid out as the parameters.
    pub fn gradients_ptr(&self) -> usize {
        self.grads.as_ptr() as usize
    }

    /// Sets every gradient to zero (the backward adds to them, as PyTorch's does).
    pub fn zero_grad(&mut self) {
        self.grads.fill(0.0);
    }

    /// The training forward: as `Cell::forward` (`x` `(B, T, I)`, `hidden` `(B, H)`, `state`
    /// `(k, B, H)`; results through [`Trainer::output_ptr`] and friends), keeping the activations
    /// for one [`Trainer::backward`].
    pub fn forward(
        &mut self,
        batch: usize,
        seq_len: usize,
        x: &[f32],
        hidden: &[f32],
        state: &[f32],
    ) {
        let (w, r) = (&self.weights, &mut self.record);
        with_variant!(self.kind, forward(w, r, batch, seq_len, x, hidden, state));
    }

    /// Byte address of the last forward's output `(B, T, H)`.
    pub fn output_ptr(&self) -> usize {
        self.record.output.as_ptr() as usize
    }

    /// Byte address of the last forward's final hidden state `(B, H)`.
    pub fn hidden_ptr(&self) -> usize {
        self.record.hidden.as_ptr() as usize
    }

    /// Byte address of the last forward's final cell states `(k, B, H)`.
    pub fn state_ptr(&self) -> usize {
        self.record.state.as_ptr() as usize
    }

    /// Whether the following forwards keep what [`Trainer::relevance`] needs (the candidates'
    /// pre-activations); one-lane cells only (`LSTM`, `ArrayLSTM` with `k = 1`).
    pub fn keep_candidates(&mut self, keep: bool) {
        assert!(
            !keep || (with_variant!(self.kind, explains()) && self.weights.layout.k == 1),
            "only one-lane LSTM cells have the relevance pass"
        );
        self.record.keep_candidates = keep;
    }

    /// LRP-ε from `output_relevance` `(B, T, H)`, the relevance arriving at every step's hidden
    /// state, back through the last forward (which kept its candidates, see
    /// [`Trainer::keep_candidates`]) to the input and the initial state: `eps` is the stabiliser,
    /// `bias_factor` 1 redistributes the biases' and stabilisers' share, 0 absorbs it. The record
    /// is left as it was (a backward or another relevance pass may follow). Results through
    /// [`Trainer::relevance_x_ptr`] and [`Trainer::relevance_rest_ptr`].
    pub fn relevance(&mut self, output_relevance: &[f32], eps: f32, bias_factor: f32) {
        let panels = candidate_panels(&self.weights.layout, &self.params, &self.offsets);
        relevance(
            &self.weights,
            &panels,
            &self.record,
            &mut self.relevance,
            output_relevance,
            eps,
            bias_factor,
        );
    }

    /// Byte address of the last relevance pass's input relevance `(B, T, I)`.
    pub fn relevance_x_ptr(&self) -> usize {
        self.relevance.x.as_ptr() as usize
    }

    /// Byte address of the last relevance pass's rest `(B)`: what reached the initial states.
    pub fn relevance_rest_ptr(&self) -> usize {
        self.relevance.rest.as_ptr() as usize
    }

    /// Back-propagates dLoss/d`output` `(B, T, H)` and, unless empty, dLoss/d final `hidden`
    /// `(B, H)` and `state` `(k, B, H)` through the last forward (once: it consumes the record).
    /// Adds the parameter gradients to [`Trainer::gradients_ptr`]; the input gradients are read
    /// through [`Trainer::grad_x_ptr`] and friends. `want_x` and `want_hidden` false skip the
    /// GEMM work of dLoss/d`x` and dLoss/d initial `hidden` (which are zeros then): a first layer's
    /// input and a zero initial state need none.
    pub fn backward(
        &mut self,
        d_output: &[f32],
        d_hidden: &[f32],
        d_state: &[f32],
        want_x: bool,
        want_hidden: bool,
    ) {
        let wanted = Wanted {
            x: want_x,
            hidden: want_hidden,
        };
        let (w, t, r, g) = (
            &self.weights,
            &self.transposed[..],
            &mut self.record,
            &mut self.gradients,
        );
        let (o, grads) = (&self.offsets, &mut self.grads[..]);
        with_variant!(
            self.kind,
            backward(w, t, r, g, d_output, d_hidden, d_state, wanted, o, grads)
        );
    }

    /// Byte address of dLoss/d`x` `(B, T, I)` from the last backward.
    pub fn grad_x_ptr(&self) -> usize {
        self.gradients.x.as_ptr() as usize
    }

    /// Byte address of dLoss/d initial `hidden` `(B, H)` from the last backward.
    pub fn grad_hidden_ptr(&self) -> usize {
        self.gradients.hidden.as_ptr() as usize
    }

    /// Byte address of dLoss/d initial `state` `(k, B, H)` from the last backward.
    pub fn grad_state_ptr(&self) -> usize {
        self.gradients.state.as_ptr() as usize
    }

    /// `Σ g²` over the gradients (in `f64`): this cell's share of `clip_grad_norm_`'s norm².
    pub fn grad_squared_norm(&self) -> f64 {
        squared_norm(&self.grads)
    }

    /// Multiplies every gradient by `factor` (`clip_grad_norm_`'s clipping).
    pub fn scale_grads(&mut self, factor: f32) {
        for g in self.grads.iter_mut() {
            *g *= factor;
        }
    }

    /// One `torch.optim.SGD` step on the gradients. The weights the kernels read change only at
    /// the [`Trainer::repack`] that follows (the native library repacks its threads' copies in
    /// parallel).
    pub fn sgd_update(
        &mut self,
        lr: f64,
        momentum: f64,
        dampening: f64,
        nesterov: bool,
        weight_decay: f64,
    ) {
        let options = Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        };
        let first = self.steps == 0;
        sgd(
            &mut self.params,
            &self.grads,
            &mut self.first_moment,
            first,
            &options,
        );
        self.steps += 1;
    }

    /// One `torch.optim.Adam` step (`decoupled`: `AdamW`) on the gradients, then (the caller) a
    /// [`Trainer::repack`], as [`Trainer::sgd_update`].
    #[allow(clippy::too_many_arguments)]
    pub fn adam_update(
        &mut self,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        amsgrad: bool,
        decoupled: bool,
    ) {
        let options = Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
        };
        self.steps += 1;
        let moments = Moments {
            exp_avg: &mut self.first_moment,
            exp_avg_sq: &mut self.second_moment,
            max_exp_avg_sq: &mut self.max_second_moment,
        };
        adam(&mut self.params, &self.grads, moments, self.steps, &options);
    }

    /// Byte address of optimizer state vector `slot` (parameters' layout): 0 SGD's
    /// `momentum_buffer` or Adam's `exp_avg`, 1 `exp_avg_sq`, 2 `max_exp_avg_sq`. Written by JS
    /// with [`Trainer::set_optimizer_steps`] to resume from a `stateDict`.
    pub fn optimizer_state_ptr(&self, slot: u32) -> usize {
        match slot {
            0 => self.first_moment.as_ptr() as usize,
            1 => self.second_moment.as_ptr() as usize,
            2 => self.max_second_moment.as_ptr() as usize,
            _ => panic!("optimizer state slot must be 0, 1 or 2"),
        }
    }

    /// Optimizer steps taken (Adam's `step`; for SGD, 0 means no momentum buffer yet).
    pub fn optimizer_steps(&self) -> u32 {
        self.steps
    }

    /// Sets the optimizer step count (resuming from a `stateDict`; 0 starts afresh).
    pub fn set_optimizer_steps(&mut self, steps: u32) {
        self.steps = steps;
    }
}

#[cfg(test)]
impl Trainer {
    /// The packed forward weights, for comparing with the inference forward.
    pub fn weights_for_tests(&self) -> &Weights {
        &self.weights
    }
}
