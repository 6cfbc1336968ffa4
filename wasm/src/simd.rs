//! The `simd128` intrinsics the kernels use: `core::arch::wasm32`'s on `wasm32`, and elsewhere a
//! lane-by-lane emulation with the same semantics, so that `cargo test` on the host runs the very
//! kernel code that ships (the tests compare it with plain scalar loops).

#[cfg(target_arch = "wasm32")]
pub use core::arch::wasm32::{
    f32x4_add, f32x4_div, f32x4_gt, f32x4_max, f32x4_mul, f32x4_ne, f32x4_neg, f32x4_pmax,
    f32x4_pmin, f32x4_splat, f32x4_sub, i32x4_add, i32x4_shl, i32x4_shuffle, i32x4_splat, v128,
    v128_and, v128_andnot, v128_bitselect, v128_or,
};

#[cfg(not(target_arch = "wasm32"))]
pub use portable::*;

/// Scalar stand-ins, lane for lane what the WebAssembly SIMD specification defines.
#[cfg(not(target_arch = "wasm32"))]
mod portable {
    /// 128 bits, as four 32-bit lanes.
    #[allow(non_camel_case_types)]
    #[derive(Clone, Copy, Debug, PartialEq)]
    #[repr(C, align(16))]
    pub struct v128([u32; 4]);

    impl v128 {
        /// The four lanes as `f32`.
        pub fn to_f32s(self) -> [f32; 4] {
            self.0.map(f32::from_bits)
        }
    }

    fn f32_lanes(a: v128, b: v128, op: impl Fn(f32, f32) -> f32) -> v128 {
        let (a, b) = (a.to_f32s(), b.to_f32s());
        v128([0, 1, 2, 3].map(|i| op(a[i], b[i]).to_bits()))
    }

    fn u32_lanes(a: v128, b: v128, op: impl Fn(u32, u32) -> u32) -> v128 {
        v128([0, 1, 2, 3].map(|i| op(a.0[i], b.0[i])))
    }

    pub fn f32x4_splat(value: f32) -> v128 {
        v128([value.to_bits(); 4])
    }

    pub fn i32x4_splat(value: i32) -> v128 {
        v128([value as u32; 4])
    }

    pub fn f32x4_add(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| a + b)
    }

    pub fn f32x4_sub(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| a - b)
    }

    pub fn f32x4_mul(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| a * b)
    }

    pub fn f32x4_div(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| a / b)
    }

    pub fn f32x4_neg(a: v128) -> v128 {
        u32_lanes(a, a, |a, _| a ^ 0x8000_0000)
    }

    /// `b < a ? b : a`: a NaN in `a` is kept, a NaN in `b` is not.
    pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| if b < a { b } else { a })
    }

    /// `a < b ? b : a`: a NaN in `a` is kept, a NaN in `b` is not.
    pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| if a < b { b } else { a })
    }

    /// NaN if either lane is NaN; `+0` is larger than `-0`.
    pub fn f32x4_max(a: v128, b: v128) -> v128 {
        f32_lanes(a, b, |a, b| {
            if a.is_nan() || b.is_nan() {
                f32::NAN
            } else if a == b {
                f32::from_bits(a.to_bits() & b.to_bits())
            } else {
                a.max(b)
            }
        })
    }

    pub fn f32x4_gt(a: v128, b: v128) -> v128 {
        let (a, b) = (a.to_f32s(), b.to_f32s());
        v128([0, 1, 2, 3].map(|i| if a[i] > b[i] { u32::MAX } else { 0 }))
    }

    /// All ones where the lanes differ (so where either is NaN).
    pub fn f32x4_ne(a: v128, b: v128) -> v128 {
        let (a, b) = (a.to_f32s(), b.to_f32s());
        v128([0, 1, 2, 3].map(|i| if a[i] != b[i] { u32::MAX } else { 0 }))
    }

    pub fn v128_or(a: v128, b: v128) -> v128 {
        u32_lanes(a, b, |a, b| a | b)
    }

    pub fn v128_and(a: v128, b: v128) -> v128 {
        u32_lanes(a, b, |a, b| a & b)
    }

    /// `a & !b`.
    pub fn v128_andnot(a: v128, b: v128) -> v128 {
        u32_lanes(a, b, |a, b| a & !b)
    }

    pub fn i32x4_add(a: v128, b: v128) -> v128 {
        u32_lanes(a, b, u32::wrapping_add)
    }

    pub fn i32x4_shl(a: v128, amount: u32) -> v128 {
        u32_lanes(a, a, |a, _| a << (amount % 32))
    }

    pub fn v128_bitselect(v1: v128, v2: v128, c: v128) -> v128 {
        v128([0, 1, 2, 3].map(|i| (v1.0[i] & c.0[i]) | (v2.0[i] & !c.0[i])))
    }

    /// Lanes `I0..I3` of `a ++ b` (indices 0–7).
    pub fn i32x4_shuffle<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(
        a: v128,
        b: v128,
    ) -> v128 {
        let lanes = [a.0, b.0].concat();
        v128([lanes[I0], lanes[I1], lanes[I2], lanes[I3]])
    }
}
