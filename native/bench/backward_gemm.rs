//! The backward's two GEMMs at the docs network's shapes (batch 1024 over two threads: 512 rows a
//! thread; `H` 128, `k` 4, `I` 10), one thread: the AVX-512 build's kernel (`backward_wide.rs`)
//! beside the forward's micro-kernel in the 2-row × 1-panel tiles the other builds use. Build and
//! run (rustup's rustc, on a CPU with AVX-512):
//!
//! ```sh
//! rustc --edition 2021 -O -C target-cpu=x86-64-v4 native/bench/backward_gemm.rs -o /tmp/backward_gemm && /tmp/backward_gemm
//! ```
//!
//! The times are the fastest of 40 runs (the machine is shared: the fastest is the one least
//! disturbed).

use std::time::Instant;

/// The tile width of the kernels (`crate::pack::TILE`).
mod pack {
    pub const TILE: usize = 16;
}

/// Accumulators of one tile of the forward's micro-kernel (`crate::gemm::Tile`).
type Tile<const MR: usize, const NB: usize> = [[[core::arch::x86_64::__m128; 4]; NB]; MR];

/// The forward's micro-kernel on wide vectors.
#[path = "../../wasm/src/gemm_wide.rs"]
mod gemm_wide;

/// The backward's 512-bit product, as `crate::backward` declares it.
#[path = "../../wasm/src/backward_wide.rs"]
mod wide;

use pack::TILE;

/// `crate::backward::Operand`: element `(row, d)` at
/// `ptr + row · row_stride + (d / TILE) · piece_stride + d % TILE`.
#[derive(Clone, Copy)]
struct Operand {
    ptr: *const f32,
    row_stride: usize,
    piece_stride: usize,
}

impl Operand {
    #[inline(always)]
    unsafe fn at(&self, row: usize, d: usize) -> *const f32 {
        self.ptr
            .add(row * self.row_stride + d / TILE * self.piece_stride)
    }
}

/// `crate::backward::product` in the builds without AVX-512: 2-row × 1-panel tiles of the
/// forward's micro-kernel, panels outermost, chunks of 256.
#[allow(clippy::too_many_arguments)]
unsafe fn narrow(
    a: Operand,
    rows: usize,
    panels: *const f32,
    panel_stride: usize,
    panel_count: usize,
    depth: usize,
    c: *mut f32,
    c_stride: usize,
) {
    use core::arch::x86_64::{_mm_loadu_ps, _mm_setzero_ps, _mm_storeu_ps};
    for n in 0..panel_count {
        let mut start = 0;
        while start < depth {
            let len = 256.min(depth - start);
            let panel = panels.add(n * panel_stride + start * TILE);
            let mut row = 0;
            while row < rows {
                let mr = (rows - row).min(2);
                let out = |r: usize| c.add((row + r) * c_stride + n * TILE);
                let mut acc: Tile<2, 1> = [[[_mm_setzero_ps(); 4]; 1]; 2];
                if start > 0 {
                    for r in 0..mr {
                        for q in 0..4 {
                            acc[r][0][q] = _mm_loadu_ps(out(r).add(4 * q));
                        }
                    }
                }
                let mut d = 0;
                while d < len {
                    let piece = len.min(d + TILE) - d;
                    let at = [a.at(row, start + d), a.at(row + mr - 1, start + d)];
                    gemm_wide::accumulate(&mut acc, &at, &[panel.add(d * TILE)], piece);
                    d += piece;
                }
                for r in 0..mr {
                    for q in 0..4 {
                        _mm_storeu_ps(out(r).add(4 * q), acc[r][0][q]);
                    }
                }
                row += 2;
            }
            start += len;
        }
    }
}

/// Times `f` (the fastest of 40 runs) and prints its rate for `flops`.
fn bench(name: &str, flops: f64, mut f: impl FnMut()) {
    let mut fastest = f64::INFINITY;
    for _ in 0..40 {
        let start = Instant::now();
        f();
        fastest = fastest.min(start.elapsed().as_secs_f64());
    }
    let (ms, rate) = (fastest * 1e3, flops / fastest / 1e9);
    println!("{name:44} {ms:7.3} ms {rate:6.1} GFLOP/s");
}

fn values(count: usize, seed: usize) -> Vec<f32> {
    (0..count)
        .map(|i| ((i * 7919 + seed) % 1000) as f32 * 1e-3 - 0.5)
        .collect()
}

/// One product `c = a · panels` of the backward.
struct Case<'a> {
    name: &'a str,
    a: Operand,
    rows: usize,
    panels: &'a [f32],
    panel_count: usize,
    depth: usize,
    c: Vec<f32>,
    c_stride: usize,
}

impl Case<'_> {
    /// Times both kernels on this product.
    fn run(&mut self) {
        let flops = (2 * self.rows * self.depth * self.panel_count * TILE) as f64;
        let (a, rows, panels) = (self.a, self.rows, self.panels.as_ptr());
        let (count, depth, stride) = (self.panel_count, self.depth, self.c_stride);
        let c = self.c.as_mut_ptr();
        let panel_stride = depth * TILE;
        // SAFETY: the buffers hold the shapes given; the CPU has AVX-512 (the build's target).
        bench(&format!("{}, 2 × 1 tiles", self.name), flops, || unsafe {
            narrow(a, rows, panels, panel_stride, count, depth, c, stride)
        });
        // SAFETY: as above.
        bench(&format!("{}, 8 × 2 tiles", self.name), flops, || unsafe {
            wide::product(a, rows, panels, panel_stride, count, depth, c, stride, true)
        });
    }
}

fn main() {
    let (batch, gate_columns, depth_rows) = (512, 2048, 141);
    let dz = values(batch * gate_columns, 1);
    let w = values(8 * gate_columns * TILE, 2);
    let inputs = values(depth_rows * batch, 3);
    // The recurrent product `[dh | dx] = dz · W`: rows of `dz` (the record's pieces of TILE
    // columns), the `dh` panels of `W`.
    let mut recurrent = Case {
        name: "dz·W (512, 2048)·(2048, 128)",
        a: Operand {
            ptr: dz.as_ptr(),
            row_stride: TILE,
            piece_stride: batch * TILE,
        },
        rows: batch,
        panels: &w,
        panel_count: 8,
        depth: gate_columns,
        c: vec![0.0; batch * 144],
        c_stride: 144,
    };
    // The weight gradient of one step, `dWᵀ += [x | h | 1]ᵀ · dz`: the input rows (`depth + 1`)
    // against the `dz` panels.
    let mut weights = Case {
        name: "dWᵀ (141, 512)·(512, 2048)",
        a: Operand {
            ptr: inputs.as_ptr(),
            row_stride: batch,
            piece_stride: TILE,
        },
        rows: depth_rows,
        panels: &dz,
        panel_count: gate_columns / TILE,
        depth: batch,
        c: vec![0.0; depth_rows * gate_columns],
        c_stride: gate_columns,
    };
    for _ in 0..2 {
        recurrent.run();
        weights.run();
    }
}
