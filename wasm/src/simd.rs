//! The `f32x4` operations the kernels use: `core::arch::wasm32`'s `simd128` intrinsics on wasm32,
//! and elsewhere a portable stand-in with the same names and lane semantics, so the very same
//! kernels (tiles, packing, loop structure) run under `cargo test` on the host.
//!
//! The stand-in is for tests only: plain per-lane arithmetic, each operation rounded once as in
//! wasm, so host results match the plain (non-relaxed) wasm module's bit for bit except where a
//! NaN's payload differs.

#[cfg(target_arch = "wasm32")]
pub use core::arch::wasm32::*;

#[cfg(not(target_arch = "wasm32"))]
pub use portable::*;

#[cfg(not(target_arch = "wasm32"))]
#[allow(non_camel_case_types)]
mod portable {
    /// Sixteen bytes, viewed as four `f32` or four `i32` lanes as each operation needs.
    #[derive(Clone, Copy, Debug)]
    #[repr(C, align(16))]
    pub struct v128([u32; 4]);

    fn floats(v: v128) -> [f32; 4] {
        v.0.map(f32::from_bits)
    }

    fn from_floats(f: [f32; 4]) -> v128 {
        v128(f.map(f32::to_bits))
    }

    fn zip(a: v128, b: v128, op: impl Fn(f32, f32) -> f32) -> v128 {
        let (a, b) = (floats(a), floats(b));
        from_floats([
            op(a[0], b[0]),
            op(a[1], b[1]),
            op(a[2], b[2]),
            op(a[3], b[3]),
        ])
    }

    pub fn f32x4_splat(a: f32) -> v128 {
        from_floats([a; 4])
    }
    pub fn f32x4_add(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| x + y)
    }
    pub fn f32x4_sub(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| x - y)
    }
    pub fn f32x4_mul(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| x * y)
    }
    pub fn f32x4_div(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| x / y)
    }
    pub fn f32x4_neg(a: v128) -> v128 {
        v128(a.0.map(|x| x ^ 0x8000_0000))
    }
    /// wasm's `f32x4.max`: NaN if either lane is NaN.
    pub fn f32x4_max(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| {
            if x.is_nan() || y.is_nan() {
                f32::NAN
            } else {
                x.max(y)
            }
        })
    }
    /// wasm's `f32x4.pmin`: `b < a ? b : a`.
    pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| if y < x { y } else { x })
    }
    /// wasm's `f32x4.pmax`: `a < b ? b : a`.
    pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
        zip(a, b, |x, y| if x < y { y } else { x })
    }
    pub fn f32x4_gt(a: v128, b: v128) -> v128 {
        let (a, b) = (floats(a), floats(b));
        v128([0, 1, 2, 3].map(|i| if a[i] > b[i] { u32::MAX } else { 0 }))
    }
    pub fn v128_bitselect(a: v128, b: v128, mask: v128) -> v128 {
        v128([0, 1, 2, 3].map(|i| (a.0[i] & mask.0[i]) | (b.0[i] & !mask.0[i])))
    }
    pub fn v128_and(a: v128, b: v128) -> v128 {
        v128([0, 1, 2, 3].map(|i| a.0[i] & b.0[i]))
    }
    pub fn v128_andnot(a: v128, b: v128) -> v128 {
        v128([0, 1, 2, 3].map(|i| a.0[i] & !b.0[i]))
    }
    pub fn i32x4_splat(a: i32) -> v128 {
        v128([a as u32; 4])
    }
    pub fn i32x4_add(a: v128, b: v128) -> v128 {
        v128([0, 1, 2, 3].map(|i| a.0[i].wrapping_add(b.0[i])))
    }
    pub fn i32x4_shl(a: v128, amount: u32) -> v128 {
        v128(a.0.map(|x| x << (amount % 32)))
    }
    pub fn i32x4_shuffle<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(
        a: v128,
        b: v128,
    ) -> v128 {
        let all = [
            a.0[0], a.0[1], a.0[2], a.0[3], b.0[0], b.0[1], b.0[2], b.0[3],
        ];
        v128([all[I0], all[I1], all[I2], all[I3]])
    }
}
