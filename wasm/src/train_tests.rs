//! Host tests of the training kernels (`cargo test` runs the `f32x4` code through the portable
//! stand-in of `crate::simd`): the `f64` reference against finite differences, the kernels
//! against the reference, the training forward against the inference forward, batch splits and
//! the optimizer rules.

use crate::cell;
use crate::optim::{adam, sgd, Adam, Moments, Sgd};
use crate::params::NAMES;
use crate::reference::{self, Input, Kind, Spec};
use crate::sequence::{forward as inference, Workspace};
use crate::train::Trainer;

/// A small deterministic generator (xorshift64*), uniform in `[-scale, scale)`.
struct Random(u64);

impl Random {
    fn next(&mut self, scale: f64) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        (bits as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
    }

    /// `n` values, rounded to `f32` so that the `f64` reference sees exactly the kernels' inputs.
    fn vec(&mut self, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| self.next(scale) as f32 as f64).collect()
    }
}

/// Every variant: LSTM, ArrayLSTM, attention without and with max pooling, stochastic.
const VARIANTS: [(Kind, usize, bool); 5] = [
    (Kind::Lstm, 1, false),
    (Kind::Array, 3, false),
    (Kind::Attention, 3, false),
    (Kind::Attention, 3, true),
    (Kind::Stochastic, 3, false),
];

/// A random cell and input; sizes that exercise padding (`I`, `H` not multiples of 4, `k · 4`
/// straddling attention panels) and an odd batch.
fn case(
    (kind, k, max_pooling): (Kind, usize, bool),
    sizes: [usize; 4],
    seed: u64,
) -> (Spec, Input, Vec<f64>, Vec<f64>, Vec<f64>) {
    let [batch, seq_len, input, hidden] = sizes;
    let mut random = Random(seed);
    let mut spec = Spec {
        kind,
        k,
        max_pooling,
        input,
        hidden,
        params: Vec::new(),
    };
    spec.params = random.vec(spec.offsets().len(), 0.6);
    let x = random.vec(batch * seq_len * input, 1.0);
    let h0 = random.vec(batch * hidden, 0.5);
    let c0 = random.vec(k * batch * hidden, 0.5);
    let d_output = random.vec(batch * seq_len * hidden, 1.0);
    let d_hidden = random.vec(batch * hidden, 1.0);
    let d_state = random.vec(k * batch * hidden, 1.0);
    let input = Input {
        batch,
        seq_len,
        x,
        hidden: h0,
        state: c0,
    };
    (spec, input, d_output, d_hidden, d_state)
}

/// `values` rounded to `f32`, as the kernels take them.
pub(crate) fn f32s(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// `t.forward` on the whole of `input`, in `f32`.
pub(crate) fn forward_input(t: &mut Trainer, input: &Input) {
    let (x, hidden, state) = (f32s(&input.x), f32s(&input.hidden), f32s(&input.state));
    t.forward(input.batch, input.seq_len, &x, &hidden, &state);
}

/// A trainer of `spec`'s cell and parameters, with the sigmoid gates.
pub(crate) fn trainer(spec: &Spec) -> Trainer {
    let o = spec.offsets();
    let p = f32s(&spec.params);
    Trainer::new(
        spec.kind as u32,
        spec.k,
        spec.max_pooling,
        0.0,
        spec.input,
        spec.hidden,
        &p[o.i2h_weight],
        &p[o.i2h_bias],
        &p[o.h2h_weight],
        &p[o.h2h_bias],
        &p[o.i2a_weight],
        &p[o.i2a_bias],
    )
}

/// Reads `len` floats at a byte address the trainer returned.
pub(crate) fn read(ptr: usize, len: usize) -> Vec<f64> {
    // SAFETY: the trainer's buffers stay alive and unchanged until its next call.
    unsafe { core::slice::from_raw_parts(ptr as *const f32, len) }
        .iter()
        .map(|&v| v as f64)
        .collect()
}

/// Largest `|a − b|` relative to the largest `|b|` (at least 1e-3, for all-small tensors).
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// `L = Σ d_output·output + Σ d_hidden·hidden + Σ d_state·state`, so `dL/d result` = the weights.
fn loss(spec: &Spec, input: &Input, weights: [&[f64]; 3]) -> f64 {
    let out = reference::forward(spec, input);
    [&out.output, &out.hidden, &out.state]
        .iter()
        .zip(weights)
        .map(|(values, w)| values.iter().zip(w).map(|(v, w)| v * w).sum::<f64>())
        .sum()
}

#[test]
fn reference_matches_finite_differences() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        let (spec, input, d_out, d_h, d_c) = case(variant, [3, 3, 3, 5], 11 + seed as u64);
        let weights = [&d_out[..], &d_h[..], &d_c[..]];
        let out = reference::forward(&spec, &input);
        let grads = reference::backward(&spec, &input, &out.trace, &d_out, Some(&d_h), Some(&d_c));
        let eps = 1e-6;
        let check = |analytic: f64, nudge: &dyn Fn(f64) -> f64, what: &str| {
            let numeric = (nudge(eps) - nudge(-eps)) / (2.0 * eps);
            let error = (numeric - analytic).abs();
            assert!(
                error <= 1e-6 * (1.0 + analytic.abs()),
                "{variant:?} {what}: {numeric} vs {analytic}"
            );
        };
        for i in 0..spec.params.len() {
            let nudge = |delta: f64| {
                let mut s = spec.clone();
                s.params[i] += delta;
                loss(&s, &input, weights)
            };
            check(grads.params[i], &nudge, &format!("param {i}"));
        }
        for (which, analytic) in [&grads.x, &grads.hidden, &grads.state]
            .into_iter()
            .enumerate()
        {
            for i in 0..analytic.len() {
                let nudge = |delta: f64| {
                    let mut moved = input.clone();
                    [&mut moved.x, &mut moved.hidden, &mut moved.state][which][i] += delta;
                    loss(&spec, &moved, weights)
                };
                check(analytic[i], &nudge, &format!("input {which} [{i}]"));
            }
        }
    }
}

/// Runs the kernels' forward and backward on a case (with a zero initial hidden state when
/// `zero_hidden`: step 0 skips its products) and compares with the reference; returns the largest
/// relative error over results and gradients.
fn compare(
    variant: (Kind, usize, bool),
    sizes: [usize; 4],
    seed: u64,
    final_grads: bool,
    zero_hidden: bool,
) -> f64 {
    let (spec, mut input, d_out, d_h, d_c) = case(variant, sizes, seed);
    if zero_hidden {
        input.hidden.fill(0.0);
    }
    let (batch, seq_len) = (input.batch, input.seq_len);
    let (h, k, o) = (spec.hidden, spec.k, spec.offsets());
    let mut t = trainer(&spec);
    forward_input(&mut t, &input);
    let out = reference::forward(&spec, &input);
    let mut worst = 0.0f64;
    let mut track = |name: &str, ours: Vec<f64>, truth: &[f64]| {
        let error = relative_error(&ours, truth);
        assert!(
            error < 2e-5,
            "{variant:?} {sizes:?} {name}: relative error {error:e}"
        );
        worst = worst.max(error);
    };
    track(
        "output",
        read(t.output_ptr(), batch * seq_len * h),
        &out.output,
    );
    track("hidden", read(t.hidden_ptr(), batch * h), &out.hidden);
    track("state", read(t.state_ptr(), k * batch * h), &out.state);
    let (dh, dc) = if final_grads {
        (f32s(&d_h), f32s(&d_c))
    } else {
        (vec![], vec![])
    };
    t.backward(&f32s(&d_out), &dh, &dc, true, true);
    let truth = if final_grads {
        reference::backward(&spec, &input, &out.trace, &d_out, Some(&d_h), Some(&d_c))
    } else {
        reference::backward(&spec, &input, &out.trace, &d_out, None, None)
    };
    let grads = read(t.gradients_ptr(), o.len());
    for (name, range) in NAMES.into_iter().zip(o.all()) {
        track(name, grads[range.clone()].to_vec(), &truth.params[range]);
    }
    track("dx", read(t.grad_x_ptr(), truth.x.len()), &truth.x);
    track(
        "dhidden",
        read(t.grad_hidden_ptr(), truth.hidden.len()),
        &truth.hidden,
    );
    track(
        "dstate",
        read(t.grad_state_ptr(), truth.state.len()),
        &truth.state,
    );
    worst
}

#[test]
fn kernels_match_reference() {
    let mut worst = 0.0f64;
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        for (sizes, final_grads, zero_hidden) in [
            ([5, 4, 6, 10], true, false),
            ([1, 3, 3, 5], false, false),
            ([4, 2, 10, 16], true, false),
            ([5, 3, 6, 10], false, true),
            ([2, 1, 3, 5], true, true),
        ] {
            let seed = 100 + seed as u64;
            worst = worst.max(compare(variant, sizes, seed, final_grads, zero_hidden));
        }
    }
    println!("largest relative error, kernels vs f64 reference: {worst:e}");
}

#[test]
fn training_forward_is_the_inference_forward() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        for (batch, zero_hidden) in [(1, false), (2, false), (5, false), (5, true)] {
            let (spec, mut input, ..) = case(variant, [batch, 3, 6, 10], 200 + seed as u64);
            if zero_hidden {
                input.hidden.fill(0.0);
            }
            let (x, h0, c0) = (f32s(&input.x), f32s(&input.hidden), f32s(&input.state));
            let mut t = trainer(&spec);
            t.forward(batch, 3, &x, &h0, &c0);
            let mut ws = Workspace::default();
            let w = &t.weights_for_tests();
            match spec.kind {
                Kind::Lstm | Kind::Array => {
                    inference::<cell::Array>(w, &mut ws, batch, 3, &x, &h0, &c0)
                }
                Kind::Attention => inference::<cell::Attention>(w, &mut ws, batch, 3, &x, &h0, &c0),
                Kind::Stochastic => {
                    inference::<cell::Stochastic>(w, &mut ws, batch, 3, &x, &h0, &c0)
                }
            }
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            let ours = |ptr, len| bits(&f32s(&read(ptr, len)));
            assert_eq!(
                ours(t.output_ptr(), ws.output.len()),
                bits(&ws.output),
                "{variant:?}"
            );
            assert_eq!(
                ours(t.hidden_ptr(), ws.hidden.len()),
                bits(&ws.hidden),
                "{variant:?}"
            );
            assert_eq!(
                ours(t.state_ptr(), ws.state.len()),
                bits(&ws.state),
                "{variant:?}"
            );
        }
    }
}

#[test]
fn batch_split_gives_the_same_rows_and_summed_weight_gradients() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        let (batch, seq_len) = (5, 3);
        let (spec, input, d_out, ..) = case(variant, [batch, seq_len, 6, 10], 300 + seed as u64);
        let (ni, h, k) = (spec.input, spec.hidden, spec.k);
        let len = spec.offsets().len();
        let rows = |values: &[f64], per_row: usize, lanes: usize, from: usize, to: usize| {
            let mut out = Vec::new();
            for lane in 0..lanes {
                out.extend_from_slice(
                    &values[(lane * batch + from) * per_row..(lane * batch + to) * per_row],
                );
            }
            f32s(&out)
        };
        let run = |from: usize, to: usize| {
            let mut t = trainer(&spec);
            let n = to - from;
            t.forward(
                n,
                seq_len,
                &rows(&input.x, seq_len * ni, 1, from, to),
                &rows(&input.hidden, h, 1, from, to),
                &rows(&input.state, h, k, from, to),
            );
            t.backward(
                &rows(&d_out, seq_len * h, 1, from, to),
                &[],
                &[],
                true,
                true,
            );
            (
                read(t.gradients_ptr(), len),
                read(t.grad_x_ptr(), n * seq_len * ni),
                read(t.grad_state_ptr(), k * n * h),
            )
        };
        let (whole, whole_x, whole_state) = run(0, batch);
        let (first, first_x, first_state) = run(0, 2);
        let (second, second_x, second_state) = run(2, batch);
        assert_eq!(
            [first_x, second_x].concat(),
            whole_x,
            "{variant:?}: dx differs"
        );
        for lane in 0..k {
            assert_eq!(
                first_state[lane * 2 * h..(lane + 1) * 2 * h],
                whole_state[lane * batch * h..(lane * batch + 2) * h]
            );
            assert_eq!(
                second_state[lane * 3 * h..(lane + 1) * 3 * h],
                whole_state[(lane * batch + 2) * h..(lane + 1) * batch * h]
            );
        }
        let summed: Vec<f64> = first.iter().zip(&second).map(|(a, b)| a + b).collect();
        assert!(
            relative_error(&summed, &whole) < 1e-6,
            "{variant:?}: summed gradients differ"
        );
    }
}

/// One forward and backward of `case`'s rows `0..n` (all when `n` is the batch), asking for the
/// input gradients `wanted`; returns the parameter, `x`, initial `hidden` and `state` gradients.
fn train_once(
    t: &mut Trainer,
    variant: (Kind, usize, bool),
    sizes: [usize; 4],
    seed: u64,
    wanted: (bool, bool),
) -> [Vec<u32>; 4] {
    let (spec, input, d_out, ..) = case(variant, sizes, seed);
    let [batch, seq_len, ni, h] = sizes;
    forward_input(t, &input);
    t.zero_grad();
    t.backward(&f32s(&d_out), &[], &[], wanted.0, wanted.1);
    let bits = |ptr, len| f32s(&read(ptr, len)).iter().map(|f| f.to_bits()).collect();
    [
        bits(t.gradients_ptr(), spec.offsets().len()),
        bits(t.grad_x_ptr(), batch * seq_len * ni),
        bits(t.grad_hidden_ptr(), batch * h),
        bits(t.grad_state_ptr(), spec.k * batch * h),
    ]
}

#[test]
fn skipped_input_gradients_are_zero_and_change_nothing_else() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        let sizes = [5, 3, 6, 10];
        let seed = 400 + seed as u64;
        let spec = case(variant, sizes, seed).0;
        let all = train_once(&mut trainer(&spec), variant, sizes, seed, (true, true));
        let zero = |n: usize| vec![0.0f32.to_bits(); n];
        for wanted in [(false, false), (true, false), (false, true)] {
            let some = train_once(&mut trainer(&spec), variant, sizes, seed, wanted);
            assert_eq!(
                some[0], all[0],
                "{variant:?} {wanted:?}: parameter gradients"
            );
            assert_eq!(some[3], all[3], "{variant:?} {wanted:?}: state gradient");
            let x = if wanted.0 {
                all[1].clone()
            } else {
                zero(all[1].len())
            };
            let hidden = if wanted.1 {
                all[2].clone()
            } else {
                zero(all[2].len())
            };
            assert_eq!(some[1], x, "{variant:?} {wanted:?}: x gradient");
            assert_eq!(some[2], hidden, "{variant:?} {wanted:?}: hidden gradient");
        }
    }
}

/// A trainer keeps its buffers between calls of one shape without zeroing them: calls of other
/// shapes in between (another batch, padding rows at other places) must not leak into them.
#[test]
fn calls_of_other_shapes_in_between_change_nothing() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        let seed = 500 + seed as u64;
        let (big, small) = ([6, 3, 6, 10], [5, 3, 6, 10]);
        let spec = case(variant, small, seed).0;
        let alone = train_once(&mut trainer(&spec), variant, small, seed, (true, true));
        let mut t = trainer(&spec);
        for wanted in [(true, true), (false, false)] {
            train_once(&mut t, variant, big, seed + 1, wanted);
            assert_eq!(
                train_once(&mut t, variant, small, seed, (true, true)),
                alone,
                "{variant:?} after {wanted:?}"
            );
        }
    }
}

/// With a zero initial state, step 0's skipped products must still give NaN where PyTorch's do:
/// a NaN recurrent weight makes every output NaN, and a NaN in `dz_0` reaches the `h2h.weight`
/// gradients (0 · NaN).
#[test]
fn a_zero_initial_state_keeps_nan_where_pytorch_has_it() {
    for (seed, variant) in VARIANTS.into_iter().enumerate() {
        let sizes = [3, 2, 5, 6];
        let (mut spec, mut input, mut d_out, ..) = case(variant, sizes, 600 + seed as u64);
        input.hidden.fill(0.0);
        let [batch, seq_len, _, h] = sizes;
        let o = spec.offsets();
        let run = |spec: &Spec, d_out: &[f64]| {
            let mut t = trainer(spec);
            let (x, h0, c0) = (f32s(&input.x), f32s(&input.hidden), f32s(&input.state));
            t.forward(batch, seq_len, &x, &h0, &c0);
            let output = read(t.output_ptr(), batch * seq_len * h);
            t.backward(&f32s(d_out), &[], &[], true, true);
            (output, read(t.gradients_ptr(), o.len()))
        };
        d_out[0] = f64::NAN;
        let out = reference::forward(&spec, &input);
        let truth = reference::backward(&spec, &input, &out.trace, &d_out, None, None);
        let nan = |v: &[f64]| v.iter().map(|g| g.is_nan()).collect::<Vec<_>>();
        let (_, grads) = run(&spec, &d_out);
        let range = o.h2h_weight.clone();
        assert!(nan(&truth.params[range.clone()]).contains(&true));
        assert_eq!(
            nan(&grads[range.clone()]),
            nan(&truth.params[range]),
            "{variant:?}: NaN h2h.weight gradients"
        );
        d_out[0] = 0.0;
        spec.params[o.h2h_weight.start] = f64::NAN;
        let (output, _) = run(&spec, &d_out);
        let first_step_nan =
            (0..batch).any(|b| output[b * seq_len * h..][..h].iter().any(|v| v.is_nan()));
        assert!(
            first_step_nan,
            "{variant:?}: a NaN h2h.weight must reach step 0"
        );
    }
}

#[test]
#[should_panic(expected = "backward needs a training forward first")]
fn a_second_backward_needs_a_new_forward() {
    let (spec, input, d_out, ..) = case(VARIANTS[1], [2, 2, 3, 4], 1);
    let mut t = trainer(&spec);
    forward_input(&mut t, &input);
    t.backward(&f32s(&d_out), &[], &[], true, true);
    t.backward(&f32s(&d_out), &[], &[], true, true);
}

/// PyTorch's update rules written out in `f64`, three steps each, against the `f32` kernels.
#[test]
fn optimizers_follow_pytorch() {
    let mut random = Random(7);
    let n = 64;
    let start = random.vec(n, 1.0);
    let grads: Vec<Vec<f64>> = (0..3).map(|_| random.vec(n, 0.1)).collect();
    // SGD: momentum 0.9, dampening 0.1, nesterov on and off, weight decay 0.01.
    for nesterov in [false, true] {
        let o = Sgd {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.1,
            nesterov,
            weight_decay: 0.01,
        };
        let (mut p, mut buf) = (f32s(&start), vec![0.0f32; n]);
        let (mut p64, mut buf64) = (start.clone(), vec![0.0; n]);
        for (step, g) in grads.iter().enumerate() {
            sgd(&mut p, &f32s(g), &mut buf, step == 0, &o);
            for i in 0..n {
                let d = g[i] + 0.01 * p64[i];
                buf64[i] = if step == 0 {
                    d
                } else {
                    0.9 * buf64[i] + 0.9 * d
                };
                p64[i] -= 0.1
                    * if nesterov {
                        d + 0.9 * buf64[i]
                    } else {
                        buf64[i]
                    };
            }
        }
        let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        assert!(relative_error(&p, &p64) < 1e-6, "SGD nesterov={nesterov}");
    }
    // Adam (L2 decay), AdamW (decoupled), with and without amsgrad.
    for (decoupled, amsgrad) in [(false, false), (false, true), (true, false), (true, true)] {
        let o = Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.05,
            amsgrad,
            decoupled,
        };
        let mut p = f32s(&start);
        let (mut m, mut v, mut vmax) = (vec![0.0f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let mut p64 = start.clone();
        let (mut m64, mut v64, mut vmax64) = (vec![0.0; n], vec![0.0; n], vec![0.0f64; n]);
        for (step, g) in grads.iter().enumerate() {
            let step = step as i32 + 1;
            let moments = Moments {
                exp_avg: &mut m,
                exp_avg_sq: &mut v,
                max_exp_avg_sq: &mut vmax,
            };
            adam(&mut p, &f32s(g), moments, step as u32, &o);
            for i in 0..n {
                let mut grad = g[i];
                if decoupled {
                    p64[i] *= 1.0 - 0.01 * 0.05;
                } else {
                    grad += 0.05 * p64[i];
                }
                m64[i] = 0.9 * m64[i] + 0.1 * grad;
                v64[i] = 0.99 * v64[i] + 0.01 * grad * grad;
                vmax64[i] = vmax64[i].max(v64[i]);
                let second = if amsgrad { vmax64[i] } else { v64[i] };
                let denom = second.sqrt() / (1.0 - 0.99f64.powi(step)).sqrt() + 1e-8;
                p64[i] -= 0.01 / (1.0 - 0.9f64.powi(step)) * m64[i] / denom;
            }
        }
        let p: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        assert!(
            relative_error(&p, &p64) < 1e-6,
            "Adam decoupled={decoupled} amsgrad={amsgrad}"
        );
    }
}

#[test]
fn trainer_steps_and_clips_in_place() {
    let (spec, input, d_out, ..) = case(VARIANTS[2], [3, 2, 4, 6], 5);
    let mut t = trainer(&spec);
    let len = t.parameters_len();
    let before = read(t.parameters_ptr(), len);
    forward_input(&mut t, &input);
    t.backward(&f32s(&d_out), &[], &[], true, true);
    let grads = read(t.gradients_ptr(), len);
    let norm2: f64 = grads.iter().map(|g| g * g).sum();
    assert!((t.grad_squared_norm() - norm2).abs() <= 1e-12 * norm2);
    t.scale_grads(0.5);
    let halved = read(t.gradients_ptr(), len);
    assert!(halved.iter().zip(&grads).all(|(h, g)| *h == g * 0.5));
    t.adam_update(0.01, 0.9, 0.999, 1e-8, 0.0, false, false);
    t.repack();
    assert_eq!(t.optimizer_steps(), 1);
    // The first Adam step moves every parameter with a gradient by lr against its sign.
    let after = read(t.parameters_ptr(), len);
    for i in 0..len {
        if halved[i].abs() > 1e-6 {
            let moved = after[i] - before[i];
            assert!(
                (moved + 0.01 * halved[i].signum()).abs() < 1e-4,
                "param {i} moved {moved}"
            );
        }
    }
    // The forward runs on the repacked parameters: same as a new trainer built from them.
    let mut moved = spec.clone();
    moved.params = after;
    let mut fresh = trainer(&moved);
    forward_input(&mut t, &input);
    forward_input(&mut fresh, &input);
    assert_eq!(
        read(t.output_ptr(), 3 * 2 * 6),
        read(fresh.output_ptr(), 3 * 2 * 6)
    );
}

/// Writes `values` at a byte address the trainer returned, as JavaScript does.
fn write(ptr: usize, values: &[f32]) {
    // SAFETY: the trainer's buffers hold at least `parameters_len` floats.
    unsafe { core::slice::from_raw_parts_mut(ptr as *mut f32, values.len()) }
        .copy_from_slice(values);
}

#[test]
fn optimizer_state_resumes_exactly() {
    let (spec, ..) = case(VARIANTS[4], [2, 2, 3, 4], 9);
    let mut random = Random(3);
    let mut original = trainer(&spec);
    let len = original.parameters_len();
    let grads: Vec<Vec<f32>> = (0..2).map(|_| f32s(&random.vec(len, 0.1))).collect();
    let step = |t: &mut Trainer, g: &[f32]| {
        write(t.gradients_ptr(), g);
        t.adam_update(0.01, 0.9, 0.999, 1e-8, 0.01, true, true);
        t.repack();
    };
    step(&mut original, &grads[0]);
    // A trainer rebuilt from the parameters and optimizer state after one step.
    let mut resumed = trainer(&spec);
    write(
        resumed.parameters_ptr(),
        &f32s(&read(original.parameters_ptr(), len)),
    );
    resumed.repack();
    for slot in 0..3 {
        write(
            resumed.optimizer_state_ptr(slot),
            &f32s(&read(original.optimizer_state_ptr(slot), len)),
        );
    }
    resumed.set_optimizer_steps(original.optimizer_steps());
    step(&mut original, &grads[1]);
    step(&mut resumed, &grads[1]);
    assert_eq!(
        read(resumed.parameters_ptr(), len),
        read(original.parameters_ptr(), len)
    );
}

#[test]
#[should_panic(expected = "do not fit in wasm memory")]
fn a_record_too_large_for_memory_is_refused() {
    let layout = crate::pack::Layout::new(10, 128, 4);
    crate::record::Shape::new(&layout, false, usize::MAX / 64, 10);
}
