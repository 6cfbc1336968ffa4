//! The flat parameter vector of a trained cell: PyTorch's tensors, in PyTorch's layouts, one
//! after another in the order `i2h.weight (4kH, I)`, `i2h.bias (4kH)`, `h2h.weight (4kH, H)`,
//! `h2h.bias (4kH)`, `i2a.weight (kH, I)`, `i2a.bias (kH)` (the last two empty without
//! attention). Gradients and optimizer state use the same layout.

use core::ops::Range;

/// PyTorch's names of the six parameters, in the vector's order.
pub const NAMES: [&str; 6] = [
    "i2h.weight",
    "i2h.bias",
    "h2h.weight",
    "h2h.bias",
    "i2a.weight",
    "i2a.bias",
];

/// Where each parameter lies in the flat vector.
#[derive(Clone)]
pub struct Offsets {
    /// `i2h.weight`, `(4kH, I)`.
    pub i2h_weight: Range<usize>,
    /// `i2h.bias`, `(4kH)`.
    pub i2h_bias: Range<usize>,
    /// `h2h.weight`, `(4kH, H)`.
    pub h2h_weight: Range<usize>,
    /// `h2h.bias`, `(4kH)`.
    pub h2h_bias: Range<usize>,
    /// `i2a.weight`, `(kH, I)` (empty without attention).
    pub i2a_weight: Range<usize>,
    /// `i2a.bias`, `(kH)` (empty without attention).
    pub i2a_bias: Range<usize>,
}

impl Offsets {
    /// The offsets for a cell of `k` lanes, `input` features and `hidden` units.
    pub fn new(k: usize, input: usize, hidden: usize, attention: bool) -> Offsets {
        let rows = 4 * k * hidden;
        let lanes = if attention { k * hidden } else { 0 };
        let mut end = 0;
        let mut next = |len: usize| {
            end += len;
            end - len..end
        };
        Offsets {
            i2h_weight: next(rows * input),
            i2h_bias: next(rows),
            h2h_weight: next(rows * hidden),
            h2h_bias: next(rows),
            i2a_weight: next(lanes * input),
            i2a_bias: next(lanes),
        }
    }

    /// Length of the flat vector.
    pub fn len(&self) -> usize {
        self.i2a_bias.end
    }

    /// The six ranges in the vector's order, named by [`NAMES`].
    pub fn all(&self) -> [Range<usize>; 6] {
        [
            self.i2h_weight.clone(),
            self.i2h_bias.clone(),
            self.h2h_weight.clone(),
            self.h2h_bias.clone(),
            self.i2a_weight.clone(),
            self.i2a_bias.clone(),
        ]
    }
}
