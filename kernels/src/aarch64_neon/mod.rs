//! NEON microkernels: 4 pixels x 16 channels (four q registers per pixel).
//!
//! Register budget (32 q registers): 4 x 4 accumulators + 4 input vectors (four consecutive
//! input channels of each pixel) + 4 weight vectors (one weight row) = 24, leaving room for the
//! loads of the next weight row to be in flight. The reduction is unrolled by 4: one `ld1` per
//! pixel fetches 4 input channels and `fmla v.4s, w.4s, x.s[lane]` consumes them lane by lane,
//! so each weight row is loaded once and reused by every pixel. A 6 x 16 tile would need
//! 24 + 6 + 4 = 34 registers and spill.
//!
//! Each `mr` in 1..=4 and each vector count (`ceil(nr / 4)`, 1..=4) is its own monomorphised
//! instance; output-channel remainders store whole vectors, then a pair, then a single lane.

pub mod pool;
pub(crate) mod winograd;

use core::arch::aarch64::*;

use crate::{KernelInfo, KernelIsa, TileArgs};

/// Output pixels per tile.
pub const MR: usize = 4;
/// Output channels per packed block.
pub const NR: usize = 16;
const LANES: usize = 4;

/// 4 x 16 NEON kernel, 4-way reduction unroll with by-lane FMAs.
pub const CONV_NEON: KernelInfo = KernelInfo {
    name: "conv_4x16__neon_laneq",
    isa: KernelIsa::Neon,
    mr: MR,
    nr: NR,
    max_skip: crate::SIMD_MAX_SKIP,
    run: conv_4x16,
};

/// # Safety
/// The [`crate::TileKernel`] contract with `MR = 4`, `NR = 16`, on a CPU with NEON.
unsafe fn conv_4x16(args: &TileArgs) {
    macro_rules! by_rows {
        ($nrv:literal; $($mr:literal)*) => {
            match args.mr {
                // SAFETY: same contract; `mr` matches the instance and `nr <= 4 * nrv`.
                $($mr => unsafe { tile::<$mr, $nrv>(args) },)*
                _ => {}
            }
        };
    }
    match args.nr.div_ceil(LANES) {
        1 => by_rows!(1; 1 2 3 4),
        2 => by_rows!(2; 1 2 3 4),
        3 => by_rows!(3; 1 2 3 4),
        4 => by_rows!(4; 1 2 3 4),
        _ => {}
    }
}

/// One `ROWS x (NRV*4)` tile.
///
/// # Safety
/// The [`crate::TileKernel`] contract, `args.mr == ROWS <= MR`, `args.nr <= NRV * 4`,
/// `NRV <= 4`, NEON.
#[target_feature(enable = "neon")]
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
    // SAFETY (all weight loads below): the contract makes the bias row and each tap's k x NR
    // weights readable; `v < NRV <= NR / 4` keeps every load inside one NR-wide row.
    let bias: [float32x4_t; NRV] = core::array::from_fn(|v| unsafe { vld1q_f32(w.add(v * LANES)) });
    let mut acc = [bias; ROWS];
    // With k == 0 no tap reads anything (and the tap offsets need not point anywhere valid).
    let tap_count = if k == 0 { 0 } else { tap_count };
    for t in 0..tap_count {
        // SAFETY: `taps` holds `tap_count` taps.
        let tap = unsafe { *taps.add(t) };
        // Wrapping: pixel 0 may skip the tap, and its address then lies anywhere.
        let a_tap = a.wrapping_offset(tap.input_offset);
        // SAFETY: k > 0: the tap's `k x NR` weights start at `w + NR + tap.weight_offset`.
        let w_tap = unsafe { w.add(NR + tap.weight_offset) };
        let (s, acc) = (a_pixel_stride, &mut acc);
        // SAFETY (every arm): by the contract, the pixels reading the tap (the arm's skips) read
        // `k` inputs from `a_tap + i * s`, and the tap's weights; skips are at most SIMD_MAX_SKIP.
        unsafe {
            with_skips!(tap, tap_loop::<ROWS, NRV>(acc, a_tap, s, w_tap, k));
        }
    }
    let lo = vdupq_n_f32(clamp.min);
    let hi = vdupq_n_f32(clamp.max);
    for (i, row) in acc.iter().enumerate() {
        // SAFETY: pixel i < mr: `c + i*c_pixel_stride .. + nr` is writable by the contract.
        let dst = unsafe { c.add(i * c_pixel_stride) };
        for (v, &x) in row.iter().enumerate() {
            // `Clamp::apply` exactly: below min -> min, else above max -> max, else x. Compares
            // with NaN are false, so NaN passes; bit-selects never canonicalise -0.0.
            let below = vcltq_f32(x, lo);
            let above = vcgtq_f32(x, hi);
            let y = vbslq_f32(below, lo, vbslq_f32(above, hi, x));
            let remaining = nr.saturating_sub(v * LANES);
            // SAFETY: writes only channels v*4 .. min(v*4 + 4, nr) of pixel i (see above).
            unsafe { store_lanes(dst.add(v * LANES), y, remaining) };
        }
    }
}

/// The reduction over the `k` input channels of one tap, for the pixels `HEAD .. ROWS - TAIL`
/// (the others skip the tap: const bounds, so they cost nothing).
///
/// # Safety
/// NEON, `k > 0`; for pixels `HEAD <= i < ROWS - TAIL` and `q < k`, `a + i * a_pixel_stride + q`
/// readable, and `w .. w + k * NR` readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn tap_loop<const ROWS: usize, const NRV: usize, const HEAD: usize, const TAIL: usize>(
    acc: &mut [[float32x4_t; NRV]; ROWS],
    a: *const f32,
    a_pixel_stride: usize,
    w: *const f32,
    k: usize,
) {
    let reads = |i: usize| i >= HEAD && i + TAIL < ROWS;
    // Wrapping: the rows that skip the tap are never dereferenced.
    let a_px: [*const f32; ROWS] = core::array::from_fn(|i| a.wrapping_add(i * a_pixel_stride));
    let mut w_k = w;
    let mut q = 0;
    while q + LANES <= k {
        // SAFETY: channels q..q+4 < k of each reading pixel's range (caller's contract).
        let x: [float32x4_t; ROWS] = core::array::from_fn(|i| {
            if reads(i) {
                unsafe { vld1q_f32(a_px[i].add(q)) }
            } else {
                vdupq_n_f32(0.0)
            }
        });
        // SAFETY: rows q..q+4 < k of this tap's weights.
        unsafe {
            fma_row::<0, ROWS, NRV, HEAD, TAIL>(acc, &x, w_k);
            fma_row::<1, ROWS, NRV, HEAD, TAIL>(acc, &x, w_k.add(NR));
            fma_row::<2, ROWS, NRV, HEAD, TAIL>(acc, &x, w_k.add(2 * NR));
            fma_row::<3, ROWS, NRV, HEAD, TAIL>(acc, &x, w_k.add(3 * NR));
        }
        // SAFETY: advances within (or one past) this tap's weights.
        w_k = unsafe { w_k.add(LANES * NR) };
        q += LANES;
    }
    while q < k {
        // SAFETY: row q < k of this tap's weights.
        let wv: [float32x4_t; NRV] =
            core::array::from_fn(|v| unsafe { vld1q_f32(w_k.add(v * LANES)) });
        for (i, row) in acc.iter_mut().enumerate() {
            if !reads(i) {
                continue;
            }
            // SAFETY: channel q < k of reading pixel i's range for this tap.
            let x = unsafe { vld1q_dup_f32(a_px[i].add(q)) };
            for v in 0..NRV {
                row[v] = vfmaq_f32(row[v], wv[v], x);
            }
        }
        // SAFETY: advances within (or one past) this tap's weights.
        w_k = unsafe { w_k.add(NR) };
        q += 1;
    }
}

/// `acc[i][v] += w_row[v] * x[i][LANE]` for every pixel `HEAD .. ROWS - TAIL` and vector: one
/// reduction step.
///
/// # Safety
/// `w_row .. w_row + NRV*4` must be readable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn fma_row<
    const LANE: i32,
    const ROWS: usize,
    const NRV: usize,
    const HEAD: usize,
    const TAIL: usize,
>(
    acc: &mut [[float32x4_t; NRV]; ROWS],
    x: &[float32x4_t; ROWS],
    w_row: *const f32,
) {
    // SAFETY: `v < NRV`, inside the readable row (caller's contract).
    let wv: [float32x4_t; NRV] =
        core::array::from_fn(|v| unsafe { vld1q_f32(w_row.add(v * LANES)) });
    for (i, (row, &xi)) in acc.iter_mut().zip(x.iter()).enumerate() {
        if i < HEAD || i + TAIL >= ROWS {
            continue;
        }
        for v in 0..NRV {
            row[v] = vfmaq_laneq_f32::<LANE>(row[v], wv[v], xi);
        }
    }
}

/// Stores the first `min(n, 4)` lanes of `y` at `dst`.
///
/// # Safety
/// `dst .. dst + min(n, 4)` must be writable.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store_lanes(dst: *mut f32, y: float32x4_t, n: usize) {
    // SAFETY: every store below writes only elements below `min(n, 4)` (caller's contract).
    unsafe {
        if n >= LANES {
            vst1q_f32(dst, y);
            return;
        }
        let mut half = vget_low_f32(y);
        let mut dst = dst;
        if n & 2 != 0 {
            vst1_f32(dst, half);
            half = vget_high_f32(y);
            dst = dst.add(2);
        }
        if n & 1 != 0 {
            vst1_lane_f32::<0>(dst, half);
        }
    }
}
