//! The Winograd transforms (see [`crate::winograd`]) on 16-lane zmm vectors.

use core::arch::x86_64::*;

use crate::winograd::Vector;

impl Vector for __m512 {
    const LANES: usize = 16;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        // SAFETY: only reached from `#[target_feature(enable = "avx512f")]` functions below.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm512_add_ps(self, b) }
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm512_sub_ps(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: as above.
        unsafe { _mm512_fmadd_ps(self, b, c) }
    }
    #[inline(always)]
    fn clamp(self, lo: Self, hi: Self) -> Self {
        // max/min return the second operand on NaN or equal zeros: `Clamp::apply` exactly.
        // SAFETY: as above.
        unsafe { _mm512_min_ps(hi, _mm512_max_ps(lo, self)) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: caller's contract; ISA as above.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: caller's contract; ISA as above.
        unsafe { _mm512_storeu_ps(p, self) }
    }
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        // SAFETY: masked-off lanes are not accessed; `n < 16` lanes readable (caller).
        unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        // SAFETY: masked-off lanes are not accessed; `n < 16` lanes writable (caller).
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, self) }
    }
}

crate::winograd::entry_points!(__m512, "avx512f");
