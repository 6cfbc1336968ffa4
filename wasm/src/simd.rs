//! The `simd128` intrinsics the kernels use, one implementation per instruction set, chosen when
//! the crate is compiled: `core::arch::wasm32`'s on `wasm32`; SSE (VEX-encoded where the build
//! enables AVX2) on x86-64, with a fused multiply-add where the build enables FMA ([`fused_madd`]);
//! NEON on aarch64; elsewhere a lane-by-lane emulation. Every implementation has the
//! WebAssembly SIMD semantics, lane for lane (NaN handling included), so that `cargo test` on the
//! host runs the kernel code that ships (the tests compare it with plain scalar loops), and the
//! native library (`native/`) runs the same kernels as the wasm module. Which one a native build
//! uses is [`ISA`]; `native/build.ts` builds one library per x86-64 level and the TypeScript side
//! loads the best one the CPU has.

#[cfg(target_arch = "wasm32")]
pub use core::arch::wasm32::{
    f32x4_add, f32x4_div, f32x4_gt, f32x4_max, f32x4_mul, f32x4_ne, f32x4_neg, f32x4_pmax,
    f32x4_pmin, f32x4_splat, f32x4_sub, i32x4_add, i32x4_shl, i32x4_shuffle, i32x4_splat, v128,
    v128_and, v128_andnot, v128_bitselect, v128_or,
};

#[cfg(target_arch = "x86_64")]
pub use x86::*;

#[cfg(target_arch = "aarch64")]
pub use neon::*;

#[cfg(not(any(
    target_arch = "wasm32",
    target_arch = "x86_64",
    target_arch = "aarch64"
)))]
pub use portable::*;

/// The instruction set of this build (reported by the native library's `alstm_isa`): 0 the
/// portable emulation, 1 SSE2, 2 AVX2 + FMA, 3 AVX-512, 4 NEON.
#[cfg(feature = "ffi")]
pub const ISA: u32 = if cfg!(target_arch = "aarch64") {
    4
} else if cfg!(all(target_arch = "x86_64", target_feature = "avx512f")) {
    3
} else if cfg!(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
)) {
    2
} else if cfg!(target_arch = "x86_64") {
    1
} else {
    0
};

/// `a · b + c` in one rounding (`vfmadd`), for builds with FMA.
#[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
#[inline(always)]
pub fn fused_madd(a: v128, b: v128, c: v128) -> v128 {
    use core::arch::x86_64::_mm_fmadd_ps;
    // SAFETY: the build enables FMA.
    v128(unsafe { _mm_fmadd_ps(a.0, b.0, c.0) })
}

/// `a · b + c` in one rounding (`fmla`).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
pub fn fused_madd(a: v128, b: v128, c: v128) -> v128 {
    use core::arch::aarch64::vfmaq_f32;
    // SAFETY: NEON is part of aarch64.
    v128(unsafe { vfmaq_f32(c.0, a.0, b.0) })
}

/// The `v128` of an implementation over a native vector `$inner` of four `f32`: a transparent
/// wrapper with bitwise equality, the lane-by-lane shuffle the broadcasts fall back to, and `int`
/// and `float` that reinterpret it as the integer vector `$bits` (`$to_bits`) and back
/// (`$from_bits`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! vector_type {
    ($inner:ty, $bits:ty: $to_bits:ident, $from_bits:ident) => {
        #[inline(always)]
        fn int(a: v128) -> $bits {
            unsafe { $to_bits(a.0) }
        }

        #[inline(always)]
        fn float(a: $bits) -> v128 {
            v128(unsafe { $from_bits(a) })
        }

        /// 128 bits, as four 32-bit lanes.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy, Debug)]
        #[repr(transparent)]
        pub struct v128(pub $inner);

        impl PartialEq for v128 {
            fn eq(&self, other: &v128) -> bool {
                self.to_f32s().map(f32::to_bits) == other.to_f32s().map(f32::to_bits)
            }
        }

        impl v128 {
            /// The four lanes as `f32`.
            pub fn to_f32s(self) -> [f32; 4] {
                // SAFETY: the native vector is four `f32`.
                unsafe { core::mem::transmute(self.0) }
            }

            /// Lanes `I0..I3` of `self ++ b` (indices 0–7), lane by lane.
            #[inline(always)]
            fn shuffled<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(
                self,
                b: v128,
            ) -> v128 {
                let lanes = [self.to_f32s(), b.to_f32s()].concat();
                // SAFETY: the native vector is four `f32`.
                v128(unsafe { core::mem::transmute([lanes[I0], lanes[I1], lanes[I2], lanes[I3]]) })
            }
        }
    };
}

/// `pub fn $name(a: v128, b: v128) -> v128` as the native intrinsic `$op` on the two vectors.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
macro_rules! lane_ops {
    ($($(#[$attr:meta])* $name:ident => $op:ident;)*) => {
        $(
            $(#[$attr])*
            #[inline(always)]
            pub fn $name(a: v128, b: v128) -> v128 {
                v128(unsafe { $op(a.0, b.0) })
            }
        )*
    };
}

/// SSE2 (part of x86-64, so always present) with the WebAssembly semantics.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use core::arch::x86_64::*;

    // SAFETY (every function below): SSE and SSE2 are part of x86-64.

    vector_type!(__m128, __m128i: _mm_castps_si128, _mm_castsi128_ps);

    #[inline(always)]
    pub fn f32x4_splat(value: f32) -> v128 {
        v128(unsafe { _mm_set1_ps(value) })
    }

    #[inline(always)]
    pub fn i32x4_splat(value: i32) -> v128 {
        float(unsafe { _mm_set1_epi32(value) })
    }

    lane_ops! {
        f32x4_add => _mm_add_ps;
        f32x4_sub => _mm_sub_ps;
        f32x4_mul => _mm_mul_ps;
        f32x4_div => _mm_div_ps;
        f32x4_gt => _mm_cmpgt_ps;
        /// All ones where the lanes differ (so where either is NaN).
        f32x4_ne => _mm_cmpneq_ps;
        v128_or => _mm_or_ps;
        v128_and => _mm_and_ps;
    }

    #[inline(always)]
    pub fn f32x4_neg(a: v128) -> v128 {
        v128(unsafe { _mm_xor_ps(a.0, _mm_set1_ps(-0.0)) })
    }

    /// `b < a ? b : a` is `minps(b, a)`, which returns its second operand unless the first is
    /// smaller.
    #[inline(always)]
    pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_min_ps(b.0, a.0) })
    }

    /// `a < b ? b : a` is `maxps(b, a)`.
    #[inline(always)]
    pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_max_ps(b.0, a.0) })
    }

    /// NaN if either lane is NaN; `+0` is larger than `-0`: both operand orders of `maxps`
    /// and-ed (which keeps `+0` from a `±0` pair), or-ed with the unordered mask.
    #[inline(always)]
    pub fn f32x4_max(a: v128, b: v128) -> v128 {
        unsafe {
            let both = _mm_and_ps(_mm_max_ps(a.0, b.0), _mm_max_ps(b.0, a.0));
            v128(_mm_or_ps(both, _mm_cmpunord_ps(a.0, b.0)))
        }
    }

    /// `a & !b`.
    #[inline(always)]
    pub fn v128_andnot(a: v128, b: v128) -> v128 {
        v128(unsafe { _mm_andnot_ps(b.0, a.0) })
    }

    #[inline(always)]
    pub fn i32x4_add(a: v128, b: v128) -> v128 {
        float(unsafe { _mm_add_epi32(int(a), int(b)) })
    }

    #[inline(always)]
    pub fn i32x4_shl(a: v128, amount: u32) -> v128 {
        float(unsafe { _mm_sll_epi32(int(a), _mm_cvtsi32_si128((amount % 32) as i32)) })
    }

    #[inline(always)]
    pub fn v128_bitselect(v1: v128, v2: v128, c: v128) -> v128 {
        v128(unsafe { _mm_or_ps(_mm_and_ps(c.0, v1.0), _mm_andnot_ps(c.0, v2.0)) })
    }

    /// Lanes `I0..I3` of `a ++ b` (indices 0–7): one `shufps` for a broadcast of one lane of `a`
    /// (what the GEMM uses), lane by lane otherwise. The indices are constants, so the `match`
    /// is resolved at compile time.
    #[inline(always)]
    pub fn i32x4_shuffle<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(
        a: v128,
        b: v128,
    ) -> v128 {
        if I0 == I1 && I1 == I2 && I2 == I3 && I0 < 4 {
            // SAFETY: SSE is part of x86-64.
            return v128(unsafe {
                match I0 {
                    0 => _mm_shuffle_ps::<0x00>(a.0, a.0),
                    1 => _mm_shuffle_ps::<0x55>(a.0, a.0),
                    2 => _mm_shuffle_ps::<0xAA>(a.0, a.0),
                    _ => _mm_shuffle_ps::<0xFF>(a.0, a.0),
                }
            });
        }
        a.shuffled::<I0, I1, I2, I3>(b)
    }
}

/// NEON (part of aarch64) with the WebAssembly semantics.
#[cfg(target_arch = "aarch64")]
mod neon {
    use core::arch::aarch64::*;

    // SAFETY (every function below): NEON is part of aarch64.

    vector_type!(float32x4_t, uint32x4_t: vreinterpretq_u32_f32, vreinterpretq_f32_u32);

    #[inline(always)]
    pub fn f32x4_splat(value: f32) -> v128 {
        v128(unsafe { vdupq_n_f32(value) })
    }

    #[inline(always)]
    pub fn i32x4_splat(value: i32) -> v128 {
        float(unsafe { vdupq_n_u32(value as u32) })
    }

    lane_ops! {
        f32x4_add => vaddq_f32;
        f32x4_sub => vsubq_f32;
        f32x4_mul => vmulq_f32;
        f32x4_div => vdivq_f32;
        /// NaN if either lane is NaN; `+0` is larger than `-0`: `fmax` has exactly these
        /// semantics.
        f32x4_max => vmaxq_f32;
    }

    #[inline(always)]
    pub fn f32x4_neg(a: v128) -> v128 {
        v128(unsafe { vnegq_f32(a.0) })
    }

    /// `b < a ? b : a` (a NaN in `a` is kept): a compare and a select, not `vminq` (which
    /// returns NaN for a NaN in either).
    #[inline(always)]
    pub fn f32x4_pmin(a: v128, b: v128) -> v128 {
        v128(unsafe { vbslq_f32(vcltq_f32(b.0, a.0), b.0, a.0) })
    }

    /// `a < b ? b : a`.
    #[inline(always)]
    pub fn f32x4_pmax(a: v128, b: v128) -> v128 {
        v128(unsafe { vbslq_f32(vcltq_f32(a.0, b.0), b.0, a.0) })
    }

    #[inline(always)]
    pub fn f32x4_gt(a: v128, b: v128) -> v128 {
        float(unsafe { vcgtq_f32(a.0, b.0) })
    }

    /// All ones where the lanes differ (so where either is NaN).
    #[inline(always)]
    pub fn f32x4_ne(a: v128, b: v128) -> v128 {
        float(unsafe { vmvnq_u32(vceqq_f32(a.0, b.0)) })
    }

    #[inline(always)]
    pub fn v128_or(a: v128, b: v128) -> v128 {
        float(unsafe { vorrq_u32(int(a), int(b)) })
    }

    #[inline(always)]
    pub fn v128_and(a: v128, b: v128) -> v128 {
        float(unsafe { vandq_u32(int(a), int(b)) })
    }

    /// `a & !b`.
    #[inline(always)]
    pub fn v128_andnot(a: v128, b: v128) -> v128 {
        float(unsafe { vbicq_u32(int(a), int(b)) })
    }

    #[inline(always)]
    pub fn i32x4_add(a: v128, b: v128) -> v128 {
        float(unsafe { vaddq_u32(int(a), int(b)) })
    }

    #[inline(always)]
    pub fn i32x4_shl(a: v128, amount: u32) -> v128 {
        float(unsafe { vshlq_u32(int(a), vdupq_n_s32((amount % 32) as i32)) })
    }

    #[inline(always)]
    pub fn v128_bitselect(v1: v128, v2: v128, c: v128) -> v128 {
        float(unsafe { vbslq_u32(int(c), int(v1), int(v2)) })
    }

    /// Lanes `I0..I3` of `a ++ b` (indices 0–7): one `dup` for a broadcast of one lane of `a`,
    /// lane by lane otherwise.
    #[inline(always)]
    pub fn i32x4_shuffle<const I0: usize, const I1: usize, const I2: usize, const I3: usize>(
        a: v128,
        b: v128,
    ) -> v128 {
        if I0 == I1 && I1 == I2 && I2 == I3 && I0 < 4 {
            return v128(unsafe {
                match I0 {
                    0 => vdupq_laneq_f32::<0>(a.0),
                    1 => vdupq_laneq_f32::<1>(a.0),
                    2 => vdupq_laneq_f32::<2>(a.0),
                    _ => vdupq_laneq_f32::<3>(a.0),
                }
            });
        }
        a.shuffled::<I0, I1, I2, I3>(b)
    }
}

/// Scalar stand-ins, lane for lane what the WebAssembly SIMD specification defines.
#[cfg(not(any(
    target_arch = "wasm32",
    target_arch = "x86_64",
    target_arch = "aarch64"
)))]
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
