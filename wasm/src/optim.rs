//! PyTorch's optimizer updates (`torch.optim` 1.13, single-tensor code path) on flat `f32`
//! vectors: every tensor operation of PyTorch's is one `f32` operation here, and the Python-side
//! scalars (`1 − β₁ᵗ`, `lr / (1 − β₁ᵗ)`, ...) are computed in `f64` and rounded once, as PyTorch
//! passes them to its kernels.

/// `torch.optim.SGD`'s options.
#[derive(Clone, Copy)]
pub struct Sgd {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor (0: none).
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
}

/// One SGD step. `buffer` is the momentum buffer (unused without momentum); `first` says it does
/// not exist yet (PyTorch then starts it as a copy of the gradient, without dampening).
pub fn sgd(params: &mut [f32], grads: &[f32], buffer: &mut [f32], first: bool, o: &Sgd) {
    let decay = o.weight_decay as f32;
    let (momentum, undamped, lr) = (o.momentum as f32, (1.0 - o.dampening) as f32, -o.lr as f32);
    for i in 0..params.len() {
        let mut d = grads[i];
        if o.weight_decay != 0.0 {
            d += decay * params[i];
        }
        if o.momentum != 0.0 {
            buffer[i] = if first {
                d
            } else {
                buffer[i] * momentum + undamped * d
            };
            d = if o.nesterov {
                d + momentum * buffer[i]
            } else {
                buffer[i]
            };
        }
        params[i] += lr * d;
    }
}

/// `torch.optim.Adam`'s and `AdamW`'s options.
#[derive(Clone, Copy)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Adam: L2 penalty added to the gradient; AdamW: decoupled decay.
    pub weight_decay: f64,
    /// Keep the largest second moment seen (`max_exp_avg_sq`).
    pub amsgrad: bool,
    /// AdamW: decay the weights by `lr · weight_decay` instead of adding to the gradient.
    pub decoupled: bool,
}

/// Moment buffers of Adam, in the parameters' layout.
pub struct Moments<'a> {
    /// `exp_avg`.
    pub exp_avg: &'a mut [f32],
    /// `exp_avg_sq`.
    pub exp_avg_sq: &'a mut [f32],
    /// `max_exp_avg_sq` (only read with `amsgrad`).
    pub max_exp_avg_sq: &'a mut [f32],
}

/// One Adam or AdamW step; `step` counts this one (1 on the first call).
pub fn adam(params: &mut [f32], grads: &[f32], m: Moments, step: u32, o: &Adam) {
    let bias_correction1 = 1.0 - o.beta1.powi(step as i32);
    let bias_correction2_sqrt = (1.0 - o.beta2.powi(step as i32)).sqrt() as f32;
    let step_size = -(o.lr / bias_correction1) as f32;
    let (beta1, beta2) = (o.beta1 as f32, o.beta2 as f32);
    let (rest1, rest2) = ((1.0 - o.beta1) as f32, (1.0 - o.beta2) as f32);
    let (eps, decay) = (o.eps as f32, o.weight_decay as f32);
    let shrink = (1.0 - o.lr * o.weight_decay) as f32;
    for i in 0..params.len() {
        let mut g = grads[i];
        if o.weight_decay != 0.0 {
            if o.decoupled {
                params[i] *= shrink;
            } else {
                g += decay * params[i];
            }
        }
        m.exp_avg[i] = m.exp_avg[i] * beta1 + rest1 * g;
        m.exp_avg_sq[i] = m.exp_avg_sq[i] * beta2 + rest2 * (g * g);
        let second = if o.amsgrad {
            m.max_exp_avg_sq[i] = m.max_exp_avg_sq[i].max(m.exp_avg_sq[i]);
            m.max_exp_avg_sq[i]
        } else {
            m.exp_avg_sq[i]
        };
        let denom = second.sqrt() / bias_correction2_sqrt + eps;
        params[i] += step_size * (m.exp_avg[i] / denom);
    }
}

/// `Σ g²` in `f64`, for `clip_grad_norm_` over several parameter sets.
pub fn squared_norm(values: &[f32]) -> f64 {
    values.iter().map(|&v| (v as f64) * (v as f64)).sum()
}
