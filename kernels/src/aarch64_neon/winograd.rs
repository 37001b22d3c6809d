//! The Winograd transforms (see [`crate::winograd`]) on 4-lane q vectors.

use core::arch::aarch64::*;

use crate::winograd::Vector;

impl Vector for float32x4_t {
    const LANES: usize = 4;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        // SAFETY: NEON is part of the AArch64 baseline.
        unsafe { vdupq_n_f32(x) }
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { vaddq_f32(self, b) }
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        // SAFETY: as above.
        unsafe { vsubq_f32(self, b) }
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: as above.
        unsafe { vfmaq_f32(c, self, b) }
    }
    #[inline(always)]
    fn clamp(self, lo: Self, hi: Self) -> Self {
        // `Clamp::apply` exactly: compares with NaN are false, so NaN passes; bit-selects never
        // canonicalise -0.0.
        // SAFETY: as above.
        unsafe {
            let below = vcltq_f32(self, lo);
            let above = vcgtq_f32(self, hi);
            vbslq_f32(below, lo, vbslq_f32(above, hi, self))
        }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: caller's contract.
        unsafe { vld1q_f32(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: caller's contract.
        unsafe { vst1q_f32(p, self) }
    }
}

crate::winograd::entry_points!(float32x4_t, "neon");
