//! AVX-512F microkernels: 14 pixels x 32 channels (two zmm per pixel).
//!
//! Register budget (32 zmm): 14 x 2 accumulators + 2 weight vectors + 1 broadcast = 31, the
//! largest tile that does not spill (`MR*NRV + NRV + 1 <= 32`). 14 also divides 28, the width of
//! the Inception 3a feature map, so a 28x28 image has no pixel remainder.
//!
//! Each `mr` in 1..=14 and each vector count (1 zmm when `nr <= 16`, else 2) is its own
//! monomorphised instance, so remainders run unrolled code and the accumulators stay in
//! registers; output-channel remainders are stored with a lane mask.

// Index loops over const bounds, not iterators: LLVM unrolls them fully and keeps the
// accumulator array in registers (iterators over `&mut acc` left it on the stack).
#![allow(clippy::needless_range_loop)]

pub mod pool;
pub(crate) mod winograd;

use core::arch::x86_64::*;

use crate::{KernelInfo, KernelIsa, TileArgs};

/// Output pixels per tile.
pub const MR: usize = 14;
/// Output channels per packed block.
pub const NR: usize = 32;
const LANES: usize = 16;

/// 14 x 32 AVX-512F kernel, broadcasting one input value per FMA row.
pub const CONV_14X32: KernelInfo = KernelInfo {
    name: "conv_14x32__avx512f_broadcast",
    isa: KernelIsa::Avx512,
    mr: MR,
    nr: NR,
    run: conv_14x32,
};

/// # Safety
/// The [`crate::TileKernel`] contract with `MR = 14`, `NR = 32`, on a CPU with AVX-512F.
unsafe fn conv_14x32(args: &TileArgs) {
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
        by_rows!(2; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    } else {
        by_rows!(1; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    }
}

/// One `ROWS x (NRV*16)` tile.
///
/// # Safety
/// The [`crate::TileKernel`] contract, `args.mr == ROWS`, `args.nr <= NRV * 16`, AVX-512F.
#[target_feature(enable = "avx512f")]
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
    let mut bias = [_mm512_setzero_ps(); NRV];
    for v in 0..NRV {
        bias[v] = unsafe { _mm512_loadu_ps(w.add(v * LANES)) };
    }
    // Index loops over const bounds: LLVM unrolls them and keeps `acc` in registers.
    let mut acc = [bias; ROWS];
    for t in 0..tap_count {
        // SAFETY: `taps` holds `tap_count` taps.
        let tap = unsafe { *taps.add(t) };
        // SAFETY: see above: pointer arithmetic stays inside the readable ranges.
        let (a_tap, mut w_k) =
            unsafe { (a.offset(tap.input_offset), w.add(NR + tap.weight_offset)) };
        // One k step: NRV weight vectors, then one broadcast and NRV FMAs per pixel.
        macro_rules! step {
            ($q:expr, $w:expr) => {
                let mut wv = [_mm512_setzero_ps(); NRV];
                for v in 0..NRV {
                    // SAFETY: channel $q < k of this tap: inside its k x NR weights.
                    wv[v] = unsafe { _mm512_loadu_ps($w.add(v * LANES)) };
                }
                for i in 0..ROWS {
                    // SAFETY: pixel i < mr, channel $q < k of this tap.
                    let x = unsafe { _mm512_set1_ps(*a_tap.add(i * a_pixel_stride + $q)) };
                    for v in 0..NRV {
                        acc[i][v] = _mm512_fmadd_ps(x, wv[v], acc[i][v]);
                    }
                }
            };
        }
        // Not unrolled: with 28 accumulators, unrolling let LLVM hoist the next steps' weight
        // loads and spill broadcasts to the stack (2 extra memory ops per row and step), which
        // cost up to 40% on a contended core; one step per iteration keeps everything in the
        // 32 registers and the loop overhead hides under the 14 cycles of FMAs.
        let mut q = 0;
        while q < k {
            step!(q, w_k);
            // SAFETY: q < k: advances within (or one past) this tap's weights.
            w_k = unsafe { w_k.add(NR) };
            q += 1;
        }
    }
    let lo = _mm512_set1_ps(clamp.min);
    let hi = _mm512_set1_ps(clamp.max);
    // One lane mask per vector (all ones for full vectors): the store loop below has no
    // branches, so it unrolls and `acc` never leaves the registers.
    let mut masks = [0 as __mmask16; NRV];
    for v in 0..NRV {
        let lanes = nr.saturating_sub(v * LANES).min(LANES);
        masks[v] = ((1u32 << lanes) - 1) as __mmask16;
    }
    for i in 0..ROWS {
        for v in 0..NRV {
            // max/min return their second operand when either is NaN or both are zeros, so with
            // the accumulator second NaN and -0.0 pass through as `Clamp::apply` specifies.
            let y = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][v]));
            // SAFETY: writes lanes < nr of pixel i < mr: writable by the contract (masked-off
            // lanes are not accessed).
            unsafe { _mm512_mask_storeu_ps(c.add(i * c_pixel_stride + v * LANES), masks[v], y) };
        }
    }
}
