//! The Winograd transforms (see [`crate::winograd`]) on 8-lane ymm vectors.

use core::arch::x86_64::*;

use crate::winograd::Vector;

impl Vector for __m256 {
    const LANES: usize = 8;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        // SAFETY: only reached from `#[target_feature(enable = "avx2,fma")]` functions below.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm256_add_ps(self, b) }
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm256_sub_ps(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm256_fmadd_ps(self, b, c) }
    }
    #[inline(always)]
    fn clamp(self, lo: Self, hi: Self) -> Self {
        // max/min return the second operand on NaN or equal zeros: `Clamp::apply` exactly.
        // SAFETY: as above.
        unsafe { _mm256_min_ps(hi, _mm256_max_ps(lo, self)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: caller's contract; ISA as above.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: caller's contract; ISA as above.
        unsafe { _mm256_storeu_ps(p, self) }
    }
}

crate::winograd::entry_points!(__m256, "avx2,fma");
