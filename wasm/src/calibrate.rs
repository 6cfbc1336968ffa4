//! The rate of the bare micro-kernel, for benchmarks: the forward's FLOP rate divided by this one
//! is the share of time the fused cell, the lanes and the data movement cost.

use crate::gemm::{accumulate, store, Tile};
use crate::pack::TILE;
use crate::simd::*;

/// `repeats` times the plain product `(rows, depth) · (depth, blocks · TILE)` with the forward's
/// tiles (row pairs, one panel of [`TILE`] columns at a time; panel outer so it stays in L1);
/// returns an element of the result so the work cannot be optimised away.
pub fn gemm(rows: usize, depth: usize, blocks: usize, repeats: usize) -> f32 {
    let depth = (depth + 3) / 4 * 4;
    let a = vec![0.5f32; rows * depth];
    let panels = vec![0.25f32; blocks * depth * TILE];
    let mut c = vec![0.0f32; rows * blocks * TILE];
    for _ in 0..repeats {
        for block in 0..blocks {
            // SAFETY: every pointer stays inside `a`, `panels` and `c` as sized above.
            unsafe {
                let panel = [panels.as_ptr().add(block * depth * TILE)];
                let mut r = 0;
                while r + 2 <= rows {
                    let mut acc: Tile<2, 1> = [[[f32x4_splat(0.0); 4]; 1]; 2];
                    let a_rows = [a.as_ptr().add(r * depth), a.as_ptr().add((r + 1) * depth)];
                    accumulate(&mut acc, &a_rows, &panel, depth);
                    for (i, tile) in acc.iter().enumerate() {
                        for (g, value) in tile[0].iter().enumerate() {
                            store(
                                c.as_mut_ptr()
                                    .add(((r + i) * blocks + block) * TILE + 4 * g),
                                *value,
                            );
                        }
                    }
                    r += 2;
                }
            }
        }
    }
    c[c.len() / 2]
}
