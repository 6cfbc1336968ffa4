//! The register-blocked `f32x4` micro-kernel: `acc += A · panel` for `MR` rows of `A` and `NB`
//! panels of [`TILE`] columns.
//!
//! Deno/V8 bounds-checks every wasm memory access, so the kernel is shaped to load little: it
//! loads four consecutive values of each `A` row with one `v128.load` and broadcasts each lane by a
//! shuffle, and every weight vector it loads feeds `MR` multiply-adds. With `MR · NB = 2` the
//! `8` accumulators, two `A` vectors and the temporaries fit in the 16 `xmm` registers V8 uses.
//! Three rows (12 accumulators, too many for those registers) measured 1.6× slower with relaxed
//! SIMD and 3% faster without.
//! Broadcasting with `v128.load32_splat` instead of a shuffle measured 3% slower.
//!
//! The multiply-adds are [`madd`]: `f32x4.relaxed_madd` in the relaxed-SIMD build (one fused
//! `vfmadd` where the CPU has FMA: 1.5× the GEMM rate of `mulps` + `addps`).
//!
//! Every accumulator sums its products in the same order (`d = 0, 1, …`) whatever `MR` and `NB`
//! are, so a batch row gets bit-identical results however the batch is split into tiles or over
//! threads.

use crate::math::madd;
use crate::pack::TILE;
use crate::simd::*;

/// Accumulators of one tile: `MR` rows × `NB` blocks × four `f32x4` columns (one per gate).
pub type Tile<const MR: usize, const NB: usize> = [[[v128; 4]; NB]; MR];

/// Loads four `f32` from `p` (wasm does not require alignment).
///
/// # Safety
/// `p .. p + 4` must be readable.
#[inline(always)]
pub unsafe fn load(p: *const f32) -> v128 {
    core::ptr::read_unaligned(p as *const v128)
}

/// Stores four `f32` at `p`.
///
/// # Safety
/// `p .. p + 4` must be writable.
#[inline(always)]
pub unsafe fn store(p: *mut f32, v: v128) {
    core::ptr::write_unaligned(p as *mut v128, v)
}

/// `acc[r][n][c] += Σ_{d < depth} rows[r][d] · panels[n][d·TILE + 4c .. +4]`.
///
/// # Safety
/// `depth` is a multiple of 4; every row holds `depth` floats and every panel `depth · TILE`.
#[inline(always)]
pub unsafe fn accumulate<const MR: usize, const NB: usize>(
    acc: &mut Tile<MR, NB>,
    rows: &[*const f32; MR],
    panels: &[*const f32; NB],
    depth: usize,
) {
    let mut d = 0;
    while d < depth {
        let mut a = [f32x4_splat(0.0); MR];
        for r in 0..MR {
            a[r] = load(rows[r].add(d));
        }
        let offset = d * TILE;
        rank1::<0, MR, NB>(acc, &a, panels, offset);
        rank1::<1, MR, NB>(acc, &a, panels, offset);
        rank1::<2, MR, NB>(acc, &a, panels, offset);
        rank1::<3, MR, NB>(acc, &a, panels, offset);
        d += 4;
    }
}

/// One rank-1 update: lane `Q` of each row vector times panel row `offset / TILE + Q`.
#[inline(always)]
unsafe fn rank1<const Q: usize, const MR: usize, const NB: usize>(
    acc: &mut Tile<MR, NB>,
    a: &[v128; MR],
    panels: &[*const f32; NB],
    offset: usize,
) {
    let mut broadcast = [f32x4_splat(0.0); MR];
    for r in 0..MR {
        broadcast[r] = i32x4_shuffle::<Q, Q, Q, Q>(a[r], a[r]);
    }
    for n in 0..NB {
        let w = panels[n].add(offset + Q * TILE);
        for c in 0..4 {
            let weights = load(w.add(4 * c));
            for r in 0..MR {
                acc[r][n][c] = madd(broadcast[r], weights, acc[r][n][c]);
            }
        }
    }
}
