//! The GEMM micro-kernel on wide vectors, for native builds with AVX-512 or AVX2 + FMA: the same
//! tile as [`super::accumulate`] (`MR` rows × `NB` panels of [`TILE`] columns), where one tile row
//! of a panel is one 512-bit vector (two 256-bit ones). Each `A` value is broadcast once and each
//! weight vector loaded once per `d`, feeding `MR` fused multiply-adds.
//!
//! A multiply-add waits ~4 cycles for its accumulator, and a tile of `MR · NB` accumulators is too
//! few to keep the two FMA units busy (eight chains in flight); so each accumulator is split into
//! two partial sums over `d mod 2`, added at the end. That changes the order of the sum from the
//! wasm kernel's (results differ from the wasm module's in the last bits), but every batch row
//! still gets bit-identical results however the batch is split into tiles or over threads. The
//! forward's AVX-512 tiles are 4 rows × 2 blocks (16 accumulators of the 32 registers): each
//! weight vector feeds four multiply-adds and each broadcast row value two, six loads per eight
//! multiply-adds, which the two load ports keep up with (4 × 1 tiles with four partial sums needed
//! five loads per four multiply-adds, so the loads were the bottleneck).

use super::Tile;
use crate::pack::TILE;
#[cfg(not(target_feature = "avx512f"))]
use core::arch::x86_64::{
    __m256, _mm256_add_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};
#[cfg(target_feature = "avx512f")]
use core::arch::x86_64::{
    __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
    _mm512_storeu_ps,
};

/// `d` values per iteration of the loops (`depth` is a multiple of 4).
pub const UNROLL: usize = 4;

/// `acc[r][n] += Σ_d rows[r][d] · panels[n][d·TILE ..][..TILE]`, with 512-bit vectors.
///
/// # Safety
/// As [`super::accumulate`]; the build enables AVX-512F.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
pub unsafe fn accumulate<const MR: usize, const NB: usize>(
    acc: &mut Tile<MR, NB>,
    rows: &[*const f32; MR],
    panels: &[*const f32; NB],
    depth: usize,
) {
    let start = core::array::from_fn(|r| {
        core::array::from_fn(|n| _mm512_loadu_ps(acc[r][n].as_ptr() as *const f32))
    });
    let sums = accumulate_in_registers(start, rows, panels, depth);
    for r in 0..MR {
        for n in 0..NB {
            _mm512_storeu_ps(acc[r][n].as_mut_ptr() as *mut f32, sums[r][n]);
        }
    }
}

/// [`accumulate`] from and to registers: `start[r][n] + Σ_d rows[r][d] · panels[n][d·TILE ..]`,
/// for a caller that goes on with the sums in registers (one round trip through memory, four
/// narrow loads after a wide store, stalled on store forwarding).
///
/// # Safety
/// As [`super::accumulate`]; the build enables AVX-512F.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
pub unsafe fn accumulate_in_registers<const MR: usize, const NB: usize>(
    start: [[__m512; NB]; MR],
    rows: &[*const f32; MR],
    panels: &[*const f32; NB],
    depth: usize,
) -> [[__m512; NB]; MR] {
    let mut parts = partial_sums(start);
    let mut d = 0;
    while d < depth {
        accumulate_group(&mut parts, rows, panels, d);
        d += UNROLL;
    }
    totals(&parts)
}

/// The two partial sums of each accumulator of a 512-bit tile (over even and odd `d`).
#[cfg(target_feature = "avx512f")]
pub type PartialSums<const MR: usize, const NB: usize> = [[[__m512; 2]; NB]; MR];

/// Partial sums that start from `start` (the even ones; the odd ones from zero).
#[cfg(target_feature = "avx512f")]
#[inline(always)]
pub fn partial_sums<const MR: usize, const NB: usize>(
    start: [[__m512; NB]; MR],
) -> PartialSums<MR, NB> {
    // SAFETY: the build enables AVX-512F.
    let zero = unsafe { _mm512_setzero_ps() };
    core::array::from_fn(|r| core::array::from_fn(|n| [start[r][n], zero]))
}

/// The totals of [`PartialSums`].
#[cfg(target_feature = "avx512f")]
#[inline(always)]
pub fn totals<const MR: usize, const NB: usize>(parts: &PartialSums<MR, NB>) -> [[__m512; NB]; MR] {
    // SAFETY: the build enables AVX-512F.
    core::array::from_fn(|r| {
        core::array::from_fn(|n| unsafe { _mm512_add_ps(parts[r][n][0], parts[r][n][1]) })
    })
}

/// The products of one group of [`UNROLL`] depths from `d` (a multiple of [`UNROLL`]) added to
/// `parts`: the loop body of [`accumulate_in_registers`], for a caller that runs other work
/// between groups (`sequence_wide.rs`).
///
/// # Safety
/// As [`super::accumulate`], for depths `d .. d + UNROLL`; the build enables AVX-512F.
#[cfg(target_feature = "avx512f")]
#[inline(always)]
pub unsafe fn accumulate_group<const MR: usize, const NB: usize>(
    parts: &mut PartialSums<MR, NB>,
    rows: &[*const f32; MR],
    panels: &[*const f32; NB],
    d: usize,
) {
    for q in 0..UNROLL {
        let mut a = [_mm512_setzero_ps(); MR];
        for r in 0..MR {
            a[r] = _mm512_set1_ps(*rows[r].add(d + q));
        }
        for n in 0..NB {
            let w = _mm512_loadu_ps(panels[n].add((d + q) * TILE));
            for r in 0..MR {
                parts[r][n][q % 2] = _mm512_fmadd_ps(a[r], w, parts[r][n][q % 2]);
            }
        }
    }
}

/// As the AVX-512 kernel, with each tile row as two 256-bit vectors.
///
/// # Safety
/// As [`super::accumulate`]; the build enables AVX2 and FMA.
#[cfg(not(target_feature = "avx512f"))]
#[inline(always)]
pub unsafe fn accumulate<const MR: usize, const NB: usize>(
    acc: &mut Tile<MR, NB>,
    rows: &[*const f32; MR],
    panels: &[*const f32; NB],
    depth: usize,
) {
    let mut parts: [[[[__m256; 2]; 2]; NB]; MR] = [[[[_mm256_setzero_ps(); 2]; 2]; NB]; MR];
    for r in 0..MR {
        for n in 0..NB {
            let base = acc[r][n].as_ptr() as *const f32;
            parts[r][n][0] = [_mm256_loadu_ps(base), _mm256_loadu_ps(base.add(8))];
        }
    }
    let mut d = 0;
    while d < depth {
        for q in 0..UNROLL {
            let mut a = [_mm256_setzero_ps(); MR];
            for r in 0..MR {
                a[r] = _mm256_set1_ps(*rows[r].add(d + q));
            }
            for n in 0..NB {
                let w = panels[n].add((d + q) * TILE);
                let (lo, hi) = (_mm256_loadu_ps(w), _mm256_loadu_ps(w.add(8)));
                for r in 0..MR {
                    let p = &mut parts[r][n][q % 2];
                    p[0] = _mm256_fmadd_ps(a[r], lo, p[0]);
                    p[1] = _mm256_fmadd_ps(a[r], hi, p[1]);
                }
            }
        }
        d += UNROLL;
    }
    for r in 0..MR {
        for n in 0..NB {
            let p = &parts[r][n];
            let base = acc[r][n].as_mut_ptr() as *mut f32;
            _mm256_storeu_ps(base, _mm256_add_ps(p[0][0], p[1][0]));
            _mm256_storeu_ps(base.add(8), _mm256_add_ps(p[0][1], p[1][1]));
        }
    }
}
