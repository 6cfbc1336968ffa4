//! A plain scalar `f64` forward and backward of every variant, line for line the TypeScript
//! oracle (`src/backends/js_cell.ts`, `src/backward.ts`), for the tests.

use crate::params::Offsets;

/// The variants, as `Trainer`'s `kind` codes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    Lstm = 0,
    Array = 1,
    Attention = 2,
    Stochastic = 3,
}

/// A cell with its parameters flat in the layout of [`Offsets`].
#[derive(Clone)]
pub struct Spec {
    pub kind: Kind,
    pub k: usize,
    pub max_pooling: bool,
    pub input: usize,
    pub hidden: usize,
    pub params: Vec<f64>,
}

impl Spec {
    pub fn offsets(&self) -> Offsets {
        Offsets::new(
            self.k,
            self.input,
            self.hidden,
            self.kind == Kind::Attention,
        )
    }
}

/// A forward's inputs.
#[derive(Clone)]
pub struct Input {
    pub batch: usize,
    pub seq_len: usize,
    pub x: Vec<f64>,
    pub hidden: Vec<f64>,
    pub state: Vec<f64>,
}

/// What the backward reads, per step.
#[derive(Default)]
pub struct Trace {
    /// `(B, k, 4H)` pre-activations.
    pub z: Vec<Vec<f64>>,
    /// `(k, B, H)` cells before step 0, after each step.
    pub states: Vec<Vec<f64>>,
    /// `(k, B, H)` (scaled) output gates.
    output_gates: Vec<Vec<f64>>,
    /// `(B, k, H)` attention weights `s`.
    weights: Vec<Vec<f64>>,
    /// `(B, k, H)` attention pre-activations.
    attention: Vec<Vec<f64>>,
    /// `(B, H)` hidden state entering each step.
    pub hiddens: Vec<Vec<f64>>,
}

/// The forward's results.
pub struct Output {
    pub output: Vec<f64>,
    pub hidden: Vec<f64>,
    pub state: Vec<f64>,
    pub trace: Trace,
}

fn sigmoid(v: f64) -> f64 {
    1.0 / (1.0 + (-v).exp())
}

fn selected_lane(output_gates: &[f64], k: usize, size: usize, i: usize) -> usize {
    let mut best = 0;
    for lane in 1..k {
        if output_gates[lane * size + i] > output_gates[best * size + i] {
            best = lane;
        }
    }
    best
}

/// Runs the cell over the sequence.
pub fn forward(spec: &Spec, input: &Input) -> Output {
    let (k, ni, h, o) = (spec.k, spec.input, spec.hidden, spec.offsets());
    let (b_count, t_count) = (input.batch, input.seq_len);
    let p = &spec.params;
    let gates = 4 * k * h;
    let size = b_count * h;
    let mut hidden = input.hidden.clone();
    let mut state = input.state.clone();
    let mut output = vec![0.0; b_count * t_count * h];
    let mut trace = Trace::default();
    trace.states.push(state.clone());
    for t in 0..t_count {
        let mut z = vec![0.0; b_count * gates];
        for b in 0..b_count {
            for g in 0..gates {
                let mut sum = 0.0;
                for i in 0..ni {
                    sum += input.x[(b * t_count + t) * ni + i] * p[o.i2h_weight.start + g * ni + i];
                }
                let mut recurrent = 0.0;
                for j in 0..h {
                    recurrent += hidden[b * h + j] * p[o.h2h_weight.start + g * h + j];
                }
                z[b * gates + g] =
                    sum + p[o.i2h_bias.start + g] + recurrent + p[o.h2h_bias.start + g];
            }
        }
        let attention = spec.kind == Kind::Attention;
        let mut pre = vec![0.0; b_count * k * h];
        let mut weights = vec![0.0; b_count * k * h];
        if attention {
            for b in 0..b_count {
                for c in 0..k * h {
                    let mut sum = p[o.i2a_bias.start + c];
                    for i in 0..ni {
                        sum += input.x[(b * t_count + t) * ni + i]
                            * p[o.i2a_weight.start + c * ni + i];
                    }
                    pre[b * k * h + c] = sum;
                }
                for u in 0..h {
                    let at = |lane: usize| (b * k + lane) * h + u;
                    let total: f64 = (0..k).map(|lane| sigmoid(pre[at(lane)]).exp()).sum();
                    let mut largest: f64 = 0.0;
                    for lane in 0..k {
                        weights[at(lane)] = sigmoid(pre[at(lane)]).exp() / total;
                        largest = largest.max(weights[at(lane)]);
                    }
                    if spec.max_pooling {
                        for lane in 0..k {
                            weights[at(lane)] = largest;
                        }
                    }
                }
            }
        }
        let mut next = vec![0.0; k * size];
        let mut output_gates = vec![0.0; k * size];
        for b in 0..b_count {
            for lane in 0..k {
                let row = (b * k + lane) * 4 * h;
                for u in 0..h {
                    let scale = if attention {
                        weights[(b * k + lane) * h + u]
                    } else {
                        1.0
                    };
                    let forget = scale * sigmoid(z[row + u]);
                    let input_gate = scale * sigmoid(z[row + h + u]);
                    let out = scale * sigmoid(z[row + 2 * h + u]);
                    let candidate = z[row + 3 * h + u].tanh();
                    let cell = (lane * b_count + b) * h + u;
                    let keep = if attention { 1.0 - forget } else { forget };
                    next[cell] = keep * state[cell] + input_gate * candidate;
                    output_gates[cell] = out;
                }
            }
        }
        let mut new_hidden = vec![0.0; size];
        for i in 0..size {
            new_hidden[i] = if spec.kind == Kind::Stochastic {
                let lane = selected_lane(&output_gates, k, size, i);
                output_gates[lane * size + i] * next[lane * size + i].tanh()
            } else {
                (0..k)
                    .map(|lane| output_gates[lane * size + i] * next[lane * size + i].tanh())
                    .sum()
            };
        }
        for b in 0..b_count {
            output[(b * t_count + t) * h..][..h].copy_from_slice(&new_hidden[b * h..][..h]);
        }
        trace.z.push(z);
        trace.hiddens.push(hidden);
        trace.output_gates.push(output_gates);
        trace.weights.push(weights);
        trace.attention.push(pre);
        trace.states.push(next.clone());
        hidden = new_hidden;
        state = next;
    }
    Output {
        output,
        hidden,
        state,
        trace,
    }
}

/// The backward's results: parameter gradients (flat) and input gradients.
pub struct Grads {
    pub params: Vec<f64>,
    pub x: Vec<f64>,
    pub hidden: Vec<f64>,
    pub state: Vec<f64>,
}

/// Back-propagates `d_output` (and the optional final-state gradients) through `forward`.
pub fn backward(
    spec: &Spec,
    input: &Input,
    trace: &Trace,
    d_output: &[f64],
    d_hidden: Option<&[f64]>,
    d_state: Option<&[f64]>,
) -> Grads {
    let (k, ni, h, o) = (spec.k, spec.input, spec.hidden, spec.offsets());
    let (b_count, t_count) = (input.batch, input.seq_len);
    let p = &spec.params;
    let (gates, size) = (4 * k * h, b_count * h);
    let attention = spec.kind == Kind::Attention;
    let mut grads = vec![0.0; o.len()];
    let mut dx = vec![0.0; b_count * t_count * ni];
    let mut d_h = d_hidden.map_or(vec![0.0; size], |d| d.to_vec());
    let mut d_c = d_state.map_or(vec![0.0; k * size], |d| d.to_vec());
    let mut dz = vec![0.0; b_count * gates];
    let mut d_weights = vec![0.0; b_count * k * h];
    for t in (0..t_count).rev() {
        for i in 0..size {
            d_h[i] += d_output[((i / h) * t_count + t) * h + i % h];
        }
        let (z, previous, cells) = (&trace.z[t], &trace.states[t], &trace.states[t + 1]);
        let output_gates = &trace.output_gates[t];
        let weights = &trace.weights[t];
        let mut d_output_gates = vec![0.0; k * size];
        for i in 0..size {
            let (first, last) = if spec.kind == Kind::Stochastic {
                let lane = selected_lane(output_gates, k, size, i);
                (lane, lane)
            } else {
                (0, k - 1)
            };
            for lane in first..=last {
                let cell = lane * size + i;
                let tanh_cell = cells[cell].tanh();
                d_output_gates[cell] = d_h[i] * tanh_cell;
                d_c[cell] += d_h[i] * output_gates[cell] * (1.0 - tanh_cell * tanh_cell);
            }
        }
        for b in 0..b_count {
            for lane in 0..k {
                let row = (b * k + lane) * 4 * h;
                for u in 0..h {
                    let cell = (lane * b_count + b) * h + u;
                    let scale = if attention {
                        weights[(b * k + lane) * h + u]
                    } else {
                        1.0
                    };
                    let forget = sigmoid(z[row + u]);
                    let input_gate = sigmoid(z[row + h + u]);
                    let out = sigmoid(z[row + 2 * h + u]);
                    let candidate = z[row + 3 * h + u].tanh();
                    let d_cell = d_c[cell];
                    let keep = if attention {
                        1.0 - scale * forget
                    } else {
                        forget
                    };
                    let d_keep = d_cell * previous[cell];
                    let d_forget = if attention { -d_keep } else { d_keep };
                    let d_input = d_cell * candidate;
                    let d_out = d_output_gates[cell];
                    d_c[cell] = d_cell * keep;
                    dz[row + u] = d_forget * scale * forget * (1.0 - forget);
                    dz[row + h + u] = d_input * scale * input_gate * (1.0 - input_gate);
                    dz[row + 2 * h + u] = d_out * scale * out * (1.0 - out);
                    dz[row + 3 * h + u] =
                        d_cell * scale * input_gate * (1.0 - candidate * candidate);
                    d_weights[(b * k + lane) * h + u] =
                        d_forget * forget + d_input * input_gate + d_out * out;
                }
            }
        }
        let hidden = &trace.hiddens[t];
        let mut next_d_h = vec![0.0; size];
        for b in 0..b_count {
            let x_row = (b * t_count + t) * ni;
            for g in 0..gates {
                let d = dz[b * gates + g];
                grads[o.i2h_bias.start + g] += d;
                grads[o.h2h_bias.start + g] += d;
                for i in 0..ni {
                    grads[o.i2h_weight.start + g * ni + i] += d * input.x[x_row + i];
                    dx[x_row + i] += d * p[o.i2h_weight.start + g * ni + i];
                }
                for j in 0..h {
                    grads[o.h2h_weight.start + g * h + j] += d * hidden[b * h + j];
                    next_d_h[b * h + j] += d * p[o.h2h_weight.start + g * h + j];
                }
            }
        }
        if attention {
            let pre = &trace.attention[t];
            for b in 0..b_count {
                for u in 0..h {
                    let at = |lane: usize| (b * k + lane) * h + u;
                    let activated: Vec<f64> = (0..k).map(|lane| sigmoid(pre[at(lane)])).collect();
                    let total: f64 = activated.iter().map(|a| a.exp()).sum();
                    let softmax: Vec<f64> = activated.iter().map(|a| a.exp() / total).collect();
                    let mut largest = 0;
                    for lane in 0..k {
                        if softmax[lane] > softmax[largest] {
                            largest = lane;
                        }
                    }
                    let mut d_softmax = vec![0.0; k];
                    for lane in 0..k {
                        if spec.max_pooling {
                            d_softmax[largest] += d_weights[at(lane)];
                        } else {
                            d_softmax[lane] = d_weights[at(lane)];
                        }
                    }
                    let dot: f64 = (0..k).map(|lane| d_softmax[lane] * softmax[lane]).sum();
                    let x_row = (b * t_count + t) * ni;
                    for lane in 0..k {
                        let d_activated = softmax[lane] * (d_softmax[lane] - dot);
                        let d_pre = d_activated * activated[lane] * (1.0 - activated[lane]);
                        let row = lane * h + u;
                        grads[o.i2a_bias.start + row] += d_pre;
                        for i in 0..ni {
                            grads[o.i2a_weight.start + row * ni + i] += d_pre * input.x[x_row + i];
                            dx[x_row + i] += d_pre * p[o.i2a_weight.start + row * ni + i];
                        }
                    }
                }
            }
        }
        d_h = next_d_h;
    }
    Grads {
        params: grads,
        x: dx,
        hidden: d_h,
        state: d_c,
    }
}
