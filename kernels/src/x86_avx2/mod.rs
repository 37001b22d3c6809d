//! AVX2 + FMA microkernels: 6 pixels x 16 channels (two ymm per pixel).
//!
//! Register budget (16 ymm): 6 x 2 accumulators + 2 weight vectors + 1 broadcast = 15; wider
//! tiles (4x24) make LLVM spill.
//!
//! Each `mr` in 1..=6 and each vector count (1 ymm when `nr <= 8`, else 2) is its own
//! monomorphised instance; output-channel remainders are stored with `vmaskmovps`.

// Index loops over const bounds, not iterators: LLVM unrolls them fully and keeps the
// accumulator array in registers (iterators over `&mut acc` left it on the stack).
#![allow(clippy::needless_range_loop)]

pub mod pool;
pub(crate) mod winograd;

use core::arch::x86_64::*;

use crate::{KernelInfo, KernelIsa, TileArgs};

/// Output pixels per tile.
pub const MR: usize = 6;
/// Output channels per packed block.
pub const NR: usize = 16;
const LANES: usize = 8;

/// 6 x 16 AVX2 + FMA kernel, broadcasting one input value per FMA row.
pub const CONV_6X16: KernelInfo = KernelInfo {
    name: "conv_6x16__avx2_fma_broadcast",
    isa: KernelIsa::Avx2,
    mr: MR,
    nr: NR,
    max_skip: crate::SIMD_MAX_SKIP,
    run: conv_6x16,
};

/// # Safety
/// The [`crate::TileKernel`] contract with `MR = 6`, `NR = 16`, on a CPU with AVX2 and FMA.
unsafe fn conv_6x16(args: &TileArgs) {
    macro_rules! by_rows {
        ($nrv:literal; $($mr:literal)*) => {
            match args.mr {
                // SAFETY: same contract, `mr` matches the instance.
                $($mr => unsafe { tile::<$mr, $nrv>(args) },)*
                _ => {}
            }
        };
    }
    if args.nr > LANES {
        by_rows!(2; 1 2 3 4 5 6)
    } else {
        by_rows!(1; 1 2 3 4 5 6)
    }
}

/// One `ROWS x (NRV*8)` tile.
///
/// # Safety
/// The [`crate::TileKernel`] contract, `args.mr == ROWS`, `args.nr <= NRV * 8`, AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const ROWS: usize, const NRV: usize>(args: &TileArgs) {
    let TileArgs {
        nr,
        k,
        a,
        a_pixel_stride,
        taps,
        tap_count,
        w,
        c,
        c_pixel_stride,
        clamp,
        ..
    } = *args;
    // SAFETY (all loads below): the contract makes the bias row, every tap's k x NR weights and
    // every pixel's k inputs per tap readable; `v < NRV <= 2` keeps weight loads inside NR.
    let mut bias = [_mm256_setzero_ps(); NRV];
    for v in 0..NRV {
        bias[v] = unsafe { _mm256_loadu_ps(w.add(v * LANES)) };
    }
    // Index loops over const bounds: LLVM unrolls them and keeps `acc` in registers.
    let mut acc = [bias; ROWS];
    for t in 0..tap_count {
        // SAFETY: `taps` holds `tap_count` taps.
        let tap = unsafe { *taps.add(t) };
        // Wrapping: pixel 0 may skip the tap, and its address then lies anywhere.
        let a_tap = a.wrapping_offset(tap.input_offset);
        // SAFETY: the tap's `k x NR` weights start at `w + NR + tap.weight_offset`.
        let w_tap = unsafe { w.add(NR + tap.weight_offset) };
        let (s, acc) = (a_pixel_stride, &mut acc);
        // SAFETY (every arm): by the contract, the pixels reading the tap (the arm's skips) read
        // `k` inputs from `a_tap + i * s`, and the tap's weights; skips are at most SIMD_MAX_SKIP.
        unsafe {
            with_skips!(tap, tap_loop::<ROWS, NRV>(acc, a_tap, s, w_tap, k));
        }
    }
    let lo = _mm256_set1_ps(clamp.min);
    let hi = _mm256_set1_ps(clamp.max);
    // max/min return their second operand when either is NaN or both are zeros, so with the
    // accumulator second NaN and -0.0 pass through as `Clamp::apply` specifies.
    for i in 0..ROWS {
        for v in 0..NRV {
            acc[i][v] = _mm256_min_ps(hi, _mm256_max_ps(lo, acc[i][v]));
        }
    }
    // Two branch-free store loops (full tiles, channel remainder) so both unroll.
    if nr == NRV * LANES {
        for i in 0..ROWS {
            for v in 0..NRV {
                // SAFETY: pixel i < mr, lanes < nr: writable by the contract.
                unsafe { _mm256_storeu_ps(c.add(i * c_pixel_stride + v * LANES), acc[i][v]) };
            }
        }
    } else {
        let mut masks = [_mm256_setzero_si256(); NRV];
        for v in 0..NRV {
            masks[v] = lane_mask(nr.saturating_sub(v * LANES).min(LANES));
        }
        for i in 0..ROWS {
            for v in 0..NRV {
                // SAFETY: as above; masked-off lanes are not accessed.
                unsafe {
                    _mm256_maskstore_ps(c.add(i * c_pixel_stride + v * LANES), masks[v], acc[i][v])
                };
            }
        }
    }
}

/// The reduction over the `k` input channels of one tap, for the pixels `HEAD .. ROWS - TAIL`
/// (the others skip the tap: const bounds, so they cost nothing).
///
/// # Safety
/// AVX2 and FMA; for pixels `HEAD <= i < ROWS - TAIL` and `q < k`, `a + i * a_pixel_stride + q`
/// readable, and `w .. w + k * NR` readable.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tap_loop<const ROWS: usize, const NRV: usize, const HEAD: usize, const TAIL: usize>(
    acc: &mut [[__m256; NRV]; ROWS],
    a: *const f32,
    a_pixel_stride: usize,
    w: *const f32,
    k: usize,
) {
    let mut w_k = w;
    // One k step: NRV weight vectors, then one broadcast and NRV FMAs per reading pixel.
    macro_rules! step {
        ($q:expr, $w:expr) => {
            let mut wv = [_mm256_setzero_ps(); NRV];
            for v in 0..NRV {
                // SAFETY: channel $q < k of this tap: inside its k x NR weights.
                wv[v] = unsafe { _mm256_loadu_ps($w.add(v * LANES)) };
            }
            for i in HEAD..ROWS.saturating_sub(TAIL) {
                // Wrapping to the pixel: `a` itself may lie outside the input when pixel 0
                // skips the tap. SAFETY: pixel i reads the tap, channel $q < k: in the input.
                let x =
                    unsafe { _mm256_broadcast_ss(&*a.wrapping_add(i * a_pixel_stride).add($q)) };
                for v in 0..NRV {
                    acc[i][v] = _mm256_fmadd_ps(x, wv[v], acc[i][v]);
                }
            }
        };
    }
    // Unrolled by 4 to cut loop overhead; the order of FMAs per accumulator is unchanged.
    let mut q = 0;
    while q + 4 <= k {
        // SAFETY: q + 3 < k, so these weight rows are inside this tap's weights.
        let (w0, w1, w2, w3) = unsafe { (w_k, w_k.add(NR), w_k.add(2 * NR), w_k.add(3 * NR)) };
        step!(q, w0);
        step!(q + 1, w1);
        step!(q + 2, w2);
        step!(q + 3, w3);
        // SAFETY: advances within (or one past) this tap's weights.
        w_k = unsafe { w_k.add(4 * NR) };
        q += 4;
    }
    while q < k {
        step!(q, w_k);
        // SAFETY: as above.
        w_k = unsafe { w_k.add(NR) };
        q += 1;
    }
}

/// A `vmaskmovps` mask selecting the first `n <= 8` lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_mask(n: usize) -> __m256i {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes)
}
