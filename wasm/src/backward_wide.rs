//! [`super::product`] on 512-bit vectors, for the native AVX-512 build: tiles of four rows × two
//! panels (one panel row of [`TILE`] columns is one vector), so each `d` loads two weight vectors
//! and four `A` values for eight fused multiply-adds, where the forward's micro-kernel at two rows
//! × one panel loads three values for two (Sapphire Rapids ran it load-bound).
//!
//! Each accumulator is split into [`PARTS`] partial sums over `d mod PARTS` (16 accumulators of a
//! full tile keep both FMA units busy), added at the end of each [`CHUNK`]. Every tile shape sums
//! in that order, so a row's results are bit-identical however the rows are tiled or the batch is
//! split over threads.
//!
//! The chunks of the reduction are the outer loop: the left operand's chunk (for the recurrent
//! product, the `dz` of all the batch rows: half a megabyte at the docs' size) stays in L2 while
//! every panel passes it, where a loop over panels outside would read all of `dz` once per panel.

use super::{Operand, CHUNK};
use crate::pack::TILE;
use core::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_storeu_ps,
};

/// Partial sums per accumulator.
const PARTS: usize = 2;

/// Rows of a full tile.
const ROWS: usize = 4;

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
    let mut start = 0;
    while start < depth {
        let len = CHUNK.min(depth - start);
        let chunk = Chunk {
            a,
            start,
            len,
            c,
            c_stride,
            load_c: !fresh || start > 0,
        };
        let panel = |n: usize| panels.add(n * panel_stride + start * TILE);
        let mut n = 0;
        while n + 2 <= panel_count {
            chunk.rows::<2>(rows, [n, n + 1], [panel(n), panel(n + 1)]);
            n += 2;
        }
        if n < panel_count {
            chunk.rows::<1>(rows, [n], [panel(n)]);
        }
        start += len;
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
    /// [`ROWS`] at a time, the rest one by one.
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
        let mut parts = [[[_mm512_setzero_ps(); PARTS]; NP]; MR];
        if self.load_c {
            for r in 0..MR {
                for n in 0..NP {
                    parts[r][n][0] = _mm512_loadu_ps(out[r][n]);
                }
            }
        }
        let mut d = 0;
        while d < self.len {
            // One piece of `TILE` columns of the left operand: its rows are contiguous there.
            let piece = rows.map(|row| self.a.at(row, self.start + d));
            let len = TILE.min(self.len - d);
            let mut e = 0;
            while e < len {
                for q in 0..PARTS {
                    step(&mut parts, q, &piece, e + q, &panels, (d + e + q) * TILE);
                }
                e += PARTS;
            }
            d += len;
        }
        for r in 0..MR {
            for n in 0..NP {
                let p = &parts[r][n];
                _mm512_storeu_ps(out[r][n], _mm512_add_ps(p[0], p[1]));
            }
        }
    }
}

/// `parts[r][n][q] += piece[r][e] · panels[n][offset ..][..TILE]`.
#[inline(always)]
unsafe fn step<const MR: usize, const NP: usize>(
    parts: &mut [[[__m512; PARTS]; NP]; MR],
    q: usize,
    piece: &[*const f32; MR],
    e: usize,
    panels: &[*const f32; NP],
    offset: usize,
) {
    let a: [__m512; MR] = core::array::from_fn(|r| _mm512_set1_ps(*piece[r].add(e)));
    for n in 0..NP {
        let w = _mm512_loadu_ps(panels[n].add(offset));
        for r in 0..MR {
            parts[r][n][q] = _mm512_fmadd_ps(a[r], w, parts[r][n][q]);
        }
    }
}
