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

/// The native x86-64 builds' micro-kernel on 256- or 512-bit vectors.
#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
#[path = "gemm_wide.rs"]
mod wide;
#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
pub use wide::{accumulate_group, accumulate_in_registers, partial_sums, totals, UNROLL};

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
    #[cfg(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ))]
    wide::accumulate(acc, rows, panels, depth);
    #[cfg(not(all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    )))]
    accumulate_f32x4(acc, rows, panels, depth);
}

/// [`accumulate`] on `f32x4` vectors: the wasm kernel.
#[inline(always)]
#[cfg_attr(
    all(
        target_arch = "x86_64",
        target_feature = "avx2",
        target_feature = "fma"
    ),
    allow(dead_code)
)]
unsafe fn accumulate_f32x4<const MR: usize, const NB: usize>(
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1) (a 32-bit LCG), different for every `seed`.
    pub(crate) fn values(count: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..count)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `Σ x·w` over the `(x, w)` pairs in the order of this build's kernel: the `f32x4` kernel
    /// adds each product in turn; the wide x86 kernels (`gemm_wide.rs`) keep two fused chains, over
    /// even and odd `d`, and add them at the end.
    fn sum_in_kernel_order(products: impl Iterator<Item = (f32, f32)>) -> f32 {
        #[cfg(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        ))]
        {
            let mut parts = [0.0f32; 2];
            for (d, (x, w)) in products.enumerate() {
                parts[d % 2] = x.mul_add(w, parts[d % 2]);
            }
            parts[0] + parts[1]
        }
        #[cfg(not(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )))]
        products.fold(0.0f32, |sum, (x, w)| sum + x * w)
    }

    /// The micro-kernel against the plain triple loop, summing in the same order: bit-identical.
    fn check<const MR: usize, const NB: usize>(depth: usize) {
        let a = values(MR * depth, 1);
        let panels = values(NB * depth * TILE, 2);
        let mut acc: Tile<MR, NB> = [[[f32x4_splat(0.0); 4]; NB]; MR];
        let rows: [*const f32; MR] = core::array::from_fn(|r| a[r * depth..].as_ptr());
        let panel_ptrs: [*const f32; NB] =
            core::array::from_fn(|n| panels[n * depth * TILE..].as_ptr());
        // SAFETY: the rows and panels hold `depth` and `depth · TILE` floats.
        unsafe { accumulate(&mut acc, &rows, &panel_ptrs, depth) };
        for r in 0..MR {
            for n in 0..NB {
                for column in 0..TILE {
                    let expected = sum_in_kernel_order(
                        (0..depth)
                            .map(|d| (a[r * depth + d], panels[(n * depth + d) * TILE + column])),
                    );
                    let actual = acc[r][n][column / 4].to_f32s()[column % 4];
                    assert_eq!(
                        actual, expected,
                        "MR {MR}, NB {NB}, row {r}, block {n}, column {column}"
                    );
                }
            }
        }
    }

    #[test]
    fn accumulate_matches_the_scalar_product() {
        for depth in [4, 12, 64] {
            check::<1, 1>(depth);
            check::<1, 2>(depth);
            check::<2, 1>(depth);
            check::<4, 2>(depth);
            check::<1, 4>(depth);
        }
    }
}
