//! `f32` buffers that start on a 64-byte cache line.
//!
//! The wasm allocator aligns a `Vec<f32>` to 8 bytes only. Where one starts 8 bytes past a
//! 16-byte boundary, one `v128` load in four straddles two cache lines, and whether it does
//! depends on the allocation history: the `LSTM` forward at the documentation's sizes ran 5–10%
//! slower with `Vec<f32>` buffers than with these, which the kernels' weight panels, input rows,
//! cells and results now all are.

use core::ops::{Deref, DerefMut};

/// One cache line of floats; a `Vec` of them is 64-byte aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A growable, zero-filled `[f32]` whose first element is 64-byte aligned.
#[derive(Default)]
pub struct Floats {
    lines: Vec<Line>,
    len: usize,
}

impl Floats {
    /// Resizes to `len` zeros, keeping the allocation.
    pub fn reset(&mut self, len: usize) {
        self.lines.clear();
        // Not `(len + 15) / 16`, which would wrap for `len` near `usize::MAX`.
        self.lines
            .resize(len / 16 + usize::from(len % 16 != 0), Line([0.0; 16]));
        self.len = len;
    }
}

impl From<Vec<f32>> for Floats {
    fn from(values: Vec<f32>) -> Floats {
        let mut floats = Floats::default();
        floats.reset(values.len());
        floats.copy_from_slice(&values);
        floats
    }
}

impl Deref for Floats {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        // SAFETY: `lines` holds at least `len` initialised floats, contiguous (`repr(C)`, no
        // padding: 16 floats are exactly 64 bytes).
        unsafe { core::slice::from_raw_parts(self.lines.as_ptr() as *const f32, self.len) }
    }
}

impl DerefMut for Floats {
    fn deref_mut(&mut self) -> &mut [f32] {
        // SAFETY: as in `deref`, and `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.lines.as_mut_ptr() as *mut f32, self.len) }
    }
}
