//! [`super::product`] on 512-bit vectors, for the native AVX-512 build: tiles of eight rows × two
//! panels (one panel row of [`TILE`] columns is one vector), so each `d` loads two weight vectors
//! and eight `A` values for sixteen fused multiply-adds, where the forward's micro-kernel at two
//! rows × one panel loads three values for two (Sapphire Rapids ran it load-bound).
//!
//! The 16 accumulators of a full tile are enough independent chains to keep both FMA units busy,
//! so each sums its products in plain order (`c`, then `d = 0, 1, …`), with no partial sums; every
//! tile shape sums in that order, so a row's results are bit-identical however the rows are tiled
//! or the batch is split over threads.
//!
//! Each pair of panels passes all of the left operand, chunk by chunk. When that operand is larger
//! than L2 (the recurrent product's `dz`: 4 MiB a thread at the docs' size), the chunks are the
//! outer loop instead, so that one chunk of it stays in L2 while every pair passes it; otherwise
//! (the weight gradient's inputs) the pairs are, so that the pair's columns of `c` stay in cache
//! across the chunks (each order measured 3–5 % faster than the other where it is chosen).
//!
//! Measured on the docs network's shapes, one thread, the fastest of 40 runs
//! (`native/bench/backward_gemm.rs`): the recurrent product `(512, 2048) · (2048, 128)` at 60–75
//! GFLOP/s in the forward kernel's 2 × 1 tiles, 134–141 in 8 × 2; the weight gradient
//! `(141, 512) · (512, 2048)` at 74–77 and 118–126. Tiles of 4 × 2 with two partial sums ran at
//! 116–118, 4 × 4 and 6 × 4 within a few percent of 8 × 2.

use super::Operand;
use crate::pack::TILE;
use core::arch::x86_64::{
    __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
};

/// Reduction depth of one pass: two panels' 128-row chunks are 16 KiB and stay in L1 while all
/// rows pass them (measured faster than 256 for the recurrent product, the same for the weights).
const CHUNK: usize = 128;

/// Floats of a left operand that stays in L2 (2 MiB on Sapphire Rapids) beside the panels passing
/// through: up to this size, [`product`] loops over panels outside the chunks.
const RESIDENT: usize = 128 * 1024;

/// Rows of a full tile.
const ROWS: usize = 8;

/// As [`super::product`].
///
/// # Safety
/// As [`super::product`]; the build enables AVX-512F.
#[allow(clippy::too_many_arguments)]
pub unsafe fn product(
    a: Operand,
    rows: usize,
    panels: *const f32,
    panel_stride: usize,
    panel_count: usize,
    depth: usize,
    c: *mut f32,
    c_stride: usize,
    fresh: bool,
) {
    let chunk = |start: usize| Chunk {
        a,
        start,
        len: CHUNK.min(depth - start),
        c,
        c_stride,
        load_c: !fresh || start > 0,
    };
    // Panels `n` and `n + 1` (`n` alone when it is the last) against one chunk.
    let pass = |chunk: Chunk, n: usize| {
        let panel = |n: usize| panels.add(n * panel_stride + chunk.start * TILE);
        if n + 2 <= panel_count {
            chunk.rows::<2>(rows, [n, n + 1], [panel(n), panel(n + 1)]);
        } else {
            chunk.rows::<1>(rows, [n], [panel(n)]);
        }
    };
    let (starts, pairs) = ((0..depth).step_by(CHUNK), (0..panel_count).step_by(2));
    if rows * depth <= RESIDENT {
        for n in pairs {
            for start in starts.clone() {
                pass(chunk(start), n);
            }
        }
    } else {
        for start in starts {
            for n in pairs.clone() {
                pass(chunk(start), n);
            }
        }
    }
}

/// One chunk of the reduction: `d` from `start` to `start + len`.
#[derive(Clone, Copy)]
struct Chunk {
    a: Operand,
    start: usize,
    len: usize,
    c: *mut f32,
    c_stride: usize,
    /// Adds to `c` (else overwrites it).
    load_c: bool,
}

impl Chunk {
    /// All `rows` rows against panels `numbers` (at `panels`, already at the chunk's start):
    /// [`ROWS`] at a time, then four, then one by one.
    #[inline(always)]
    unsafe fn rows<const NP: usize>(
        &self,
        rows: usize,
        numbers: [usize; NP],
        panels: [*const f32; NP],
    ) {
        let mut row = 0;
        while row + ROWS <= rows {
            self.tile::<ROWS, NP>(core::array::from_fn(|r| row + r), numbers, panels);
            row += ROWS;
        }
        if row + 4 <= rows {
            self.tile::<4, NP>(core::array::from_fn(|r| row + r), numbers, panels);
            row += 4;
        }
        while row < rows {
            self.tile::<1, NP>([row], numbers, panels);
            row += 1;
        }
    }

    /// One tile: rows `rows` × panels `numbers`.
    #[inline(always)]
    unsafe fn tile<const MR: usize, const NP: usize>(
        &self,
        rows: [usize; MR],
        numbers: [usize; NP],
        panels: [*const f32; NP],
    ) {
        let out: [[*mut f32; NP]; MR] = core::array::from_fn(|r| {
            core::array::from_fn(|n| self.c.add(rows[r] * self.c_stride + numbers[n] * TILE))
        });
        let mut acc = [[_mm512_setzero_ps(); NP]; MR];
        if self.load_c {
            for r in 0..MR {
                for n in 0..NP {
                    acc[r][n] = _mm512_loadu_ps(out[r][n]);
                }
            }
        }
        let mut d = 0;
        while d < self.len {
            // One piece of `TILE` columns of the left operand: its rows are contiguous there.
            let piece = rows.map(|row| self.a.at(row, self.start + d));
            let len = TILE.min(self.len - d);
            for e in 0..len {
                step(&mut acc, &piece, e, &panels, (d + e) * TILE);
            }
            d += len;
        }
        for r in 0..MR {
            for n in 0..NP {
                _mm512_storeu_ps(out[r][n], acc[r][n]);
            }
        }
    }
}

/// `acc[r][n] += piece[r][e] · panels[n][offset ..][..TILE]`.
#[inline(always)]
unsafe fn step<const MR: usize, const NP: usize>(
    acc: &mut [[__m512; NP]; MR],
    piece: &[*const f32; MR],
    e: usize,
    panels: &[*const f32; NP],
    offset: usize,
) {
    let a: [__m512; MR] = core::array::from_fn(|r| _mm512_set1_ps(*piece[r].add(e)));
    for n in 0..NP {
        let w = _mm512_loadu_ps(panels[n].add(offset));
        for r in 0..MR {
            acc[r][n] = _mm512_fmadd_ps(a[r], w, acc[r][n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::tests::values;

    /// Against the plain loop of fused multiply-adds in the same order: bit-identical, over
    /// shapes with every tile (8, 4 and 1 rows; 2 and 1 panels), a last chunk and piece cut short
    /// and both loop orders, with the left operand in pieces as the record's `dz`.
    #[test]
    fn product_matches_the_fused_scalar_loop() {
        check(13, 3, 300);
        // Just above `RESIDENT`: the chunks outside.
        check(13, 3, (RESIDENT / 13 + 4) / 4 * 4);
    }

    fn check(rows: usize, panel_count: usize, depth: usize) {
        let pieces = depth.div_ceil(TILE);
        let a = values(pieces * rows * TILE, 3);
        let panels = values(panel_count * depth * TILE, 4);
        let c_stride = panel_count * TILE + 5;
        let before = values(rows * c_stride, 5);
        let operand = Operand {
            ptr: a.as_ptr(),
            row_stride: TILE,
            piece_stride: rows * TILE,
        };
        for fresh in [false, true] {
            let mut c = before.clone();
            // SAFETY: the buffers hold the shapes given.
            unsafe {
                product(
                    operand,
                    rows,
                    panels.as_ptr(),
                    depth * TILE,
                    panel_count,
                    depth,
                    c.as_mut_ptr(),
                    c_stride,
                    fresh,
                );
            }
            for row in 0..rows {
                for column in 0..panel_count * TILE {
                    let (n, j) = (column / TILE, column % TILE);
                    let mut expected = if fresh {
                        0.0
                    } else {
                        before[row * c_stride + column]
                    };
                    for d in 0..depth {
                        let left = a[((d / TILE) * rows + row) * TILE + d % TILE];
                        expected = left.mul_add(panels[(n * depth + d) * TILE + j], expected);
                    }
                    assert_eq!(
                        c[row * c_stride + column],
                        expected,
                        "row {row}, column {column}"
                    );
                }
                let padding = row * c_stride + panel_count * TILE..(row + 1) * c_stride;
                assert_eq!(
                    c[padding.clone()],
                    before[padding],
                    "row {row}: padding written"
                );
            }
        }
    }
}
