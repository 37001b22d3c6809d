//! The Winograd transforms (see [`crate::winograd`]) on 16-lane zmm vectors.

use core::arch::x86_64::*;

use crate::winograd::{input_body, output_body, Vector, ELEMENTS, TILE};
use crate::Clamp;

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

/// [`crate::winograd::transform_input`] for AVX-512F.
///
/// # Safety
/// The checks of `transform_input` hold; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn input(
    src: *const f32,
    pixels: &[Option<usize>; ELEMENTS],
    channels: usize,
    dst: *mut f32,
    element_stride: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { input_body::<__m512>(src, pixels, channels, dst, element_stride) }
}

/// [`crate::winograd::transform_output`] for AVX-512F.
///
/// # Safety
/// The checks of `transform_output` hold; the CPU has AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn output(
    m: *const f32,
    element_stride: usize,
    channels: usize,
    bias: *const f32,
    clamp: Clamp,
    dst: *mut f32,
    pixels: &[Option<usize>; TILE * TILE],
) {
    // SAFETY: forwarded contract.
    unsafe { output_body::<__m512>(m, element_stride, channels, bias, clamp, dst, pixels) }
}
