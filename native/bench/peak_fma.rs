//! The machine's measured FMA peak: independent chains of fused multiply-adds in registers, on
//! 1..=N threads, for 128-, 256- and 512-bit vectors. Build and run (rustup's rustc):
//!
//! ```sh
//! rustc -O -C target-cpu=native native/bench/peak_fma.rs -o /tmp/peak_fma && /tmp/peak_fma
//! ```

use std::arch::x86_64::*;
use std::time::Instant;

const CHAINS: usize = 16;
const ITERATIONS: usize = 20_000_000;

macro_rules! peak {
    ($name:ident, $t:ty, $set1:ident, $fma:ident, $lanes:expr) => {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn $name() -> f32 {
            let mut acc: [$t; CHAINS] = [$set1(1.0); CHAINS];
            for (i, c) in acc.iter_mut().enumerate() {
                *c = $set1(1.0 + i as f32 * 1e-3);
            }
            let (a, b) = ($set1(0.999_999), $set1(1e-7));
            for _ in 0..ITERATIONS {
                for c in acc.iter_mut() {
                    *c = $fma(*c, a, b);
                }
            }
            let mut sum = 0.0;
            for c in acc {
                let lanes: [f32; $lanes] = std::mem::transmute(c);
                sum += lanes[0];
            }
            sum
        }
    };
}

peak!(peak128, __m128, _mm_set1_ps, _mm_fmadd_ps, 4);
peak!(peak256, __m256, _mm256_set1_ps, _mm256_fmadd_ps, 8);
peak!(peak512, __m512, _mm512_set1_ps, _mm512_fmadd_ps, 16);

fn measure(name: &str, lanes: usize, threads: usize, f: unsafe fn() -> f32) {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| std::hint::black_box(unsafe { f() }));
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    let flops = (threads * ITERATIONS * CHAINS * lanes * 2) as f64;
    println!("{name} {threads} thread(s): {:.1} GFLOP/s", flops / seconds / 1e9);
}

fn main() {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for t in [1, threads] {
        measure("128-bit FMA", 4, t, peak128);
        measure("256-bit FMA", 8, t, peak256);
        measure("512-bit FMA", 16, t, peak512);
    }
}
