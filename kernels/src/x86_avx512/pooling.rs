//! The AVX-512F pooling tile: a 14x32 1x1 tile that max-pools the next tile on the side (see
//! [`crate::pooling_tile`] for why and for the NaN check).
//!
//! The k loop is `k_loop`'s (four row bases, four k steps per group) with these changes: one
//! tap without skips and `k` a multiple of 4 (no tail loop), no next-tile prefetch (the tile's
//! input is the L1 buffer the previous tile pooled), every FMA takes its broadcast from memory
//! (freeing zmm30 for the NaN sum; on Zen 4, where this kernel is chosen, that measured as fast
//! as separate broadcasts alone and 3% faster beside the pool's loads), and after each k step
//! one pooled vector is made in `zmm31`: the centre tap loaded and added into zmm30, the other
//! eight taps folded in with memory-operand `vmaxps`. One vector per k step measured 3% faster
//! than four per group of four: the out-of-order window then always holds both kinds of work.

// Index loops over const bounds, as in the parent module.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::{bias_rows, store_rows, LANES, MR, NR};
use crate::pooling_tile::{PoolSideArgs, PoolingKernelInfo, POOLED_TAPS};
use crate::TileArgs;

/// The AVX-512F pooling tile kernel.
pub const POOLING_14X32: PoolingKernelInfo = PoolingKernelInfo {
    name: "conv_14x32__avx512f_broadcast_maxpool3x3",
    tile: &super::CONV_14X32,
    run: tile_pooling,
    pool: pool_only,
};

/// # Safety
/// The [`PoolingKernelInfo`] contract of `run`, on a CPU with AVX-512F.
unsafe fn tile_pooling(args: &TileArgs, side: &PoolSideArgs) -> bool {
    // SAFETY: same contract, and the instance matches `mr` and the vector count. A row count
    // the contract excludes pools nothing, so it is not clean.
    unsafe { by_tile_size!(args, tile(args, side), false) }
}

/// One `ROWS x (NRV*16)` tile of a 1x1 (one tap at offset 0) with the side's pooling.
///
/// # Safety
/// As [`tile_pooling`], `args.mr == ROWS`, `args.nr <= NRV * 16`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn tile<const ROWS: usize, const NRV: usize>(args: &TileArgs, side: &PoolSideArgs) -> bool {
    // SAFETY: the contract makes the bias row readable.
    let mut acc = unsafe { bias_rows::<NRV>(args.w) };
    // Wrapping: as in the parent's `tile` (a one-pixel tile may come with any stride).
    let stride_bytes = args.a_pixel_stride.wrapping_mul(4);
    // SAFETY: one tap at offset 0 reading `k` channels of every row (the contract), the weights
    // after the bias row, and the side's table, whose taps and outputs the contract makes
    // readable and writable; `k % 4 == 0` and at most `k` pooled vectors.
    let nan_sum = unsafe {
        k_loop_pooling::<ROWS, NRV>(&mut acc, args.a, stride_bytes, args.w.add(NR), args.k, side)
    };
    // SAFETY: the contract makes these outputs writable.
    unsafe { store_rows::<ROWS, NRV>(&acc, args.nr, args.clamp, args.c, args.c_pixel_stride) };
    _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(nan_sum, nan_sum) == 0
}

/// One pooled vector: `zmm31` = max of the nine taps of the current pixel at byte offset
/// `voff`, stored to its output; the centre added into `zmm30`; then on to the next
/// vector (the next pixel after `vend` bytes). Skipped when no `jobs` remain.
macro_rules! pool_job {
    () => {
        concat!(
            "test {jobs}, {jobs}\n",
            "jz 7f\n",
            "mov {t}, [{tbl}]\n",
            "vmovups zmm31, [{t} + {voff}]\n",
            "vaddps zmm30, zmm30, zmm31\n",
            ".irp i, 1, 2, 3, 4, 5, 6, 7, 8\n",
            "mov {t}, [{tbl} + 8*\\i]\n",
            "vmaxps zmm31, zmm31, [{t} + {voff}]\n",
            ".endr\n",
            "mov {t}, [{tbl} + 72]\n",
            "vmovups [{t} + {voff}], zmm31\n",
            "add {voff}, 64\n",
            "cmp {voff}, {vend}\n",
            "jb 6f\n",
            "xor {voff}, {voff}\n",
            "add {tbl}, 80\n",
            "6:\n",
            "dec {jobs}\n",
            "7:\n",
        )
    };
}

/// The parent's `k_loop` for one tap without skips, FMAs with embedded broadcasts, and the
/// side's pooled vectors, one after each k step. Returns the NaN sum.
///
/// # Safety
/// AVX-512F; `k % 4 == 0`; rows `0 .. ROWS` readable for `k` floats from `a + i * stride_bytes
/// / 4`; `w .. w + k * NR` readable; the side's table valid (taps readable and outputs writable
/// for `channels` floats, nothing the loop reads aliased by an output) with at most `k` vectors.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn k_loop_pooling<const ROWS: usize, const NRV: usize>(
    acc: &mut [[__m512; 2]; MR],
    a: *const f32,
    stride_bytes: usize,
    w: *const f32,
    k: usize,
    side: &PoolSideArgs,
) -> __m512 {
    // The table's layout is what `pool_job!` addresses: nine tap pointers, then the output.
    const _: () = assert!(core::mem::size_of::<crate::pooling_tile::PooledPixelArgs>() == 80);
    let nan_sum: __m512;
    // SAFETY: the k steps read rows below ROWS and the caller's weights, as in `k_loop`; the
    // pool jobs read each table entry's taps and write its output at byte offsets below
    // `channels * 4`, for `pixels * channels / 16 <= k` jobs, one per k step (so every job
    // runs). No stack.
    unsafe {
        asm_with_accumulators!(
            acc,
            row_bases!(),
            "vpxord zmm30, zmm30, zmm30",
            "xor {voff}, {voff}",
            "test {groups}, {groups}",
            "jz 3f",
            ".p2align 5",
            "2:",
            ".irp u, 0, 1, 2, 3",
            one_k_step!(),
            pool_job!(),
            ".endr",
            "add {w}, 512",
            advance_rows!("16"),
            "dec {groups}",
            "jnz 2b",
            "3:",
            a0 = inout(reg) a => _,
            s = in(reg) stride_bytes,
            w = inout(reg) w => _,
            groups = inout(reg) k / 4 => _,
            a3 = out(reg) _,
            a5 = out(reg) _,
            a10 = out(reg) _,
            tbl = inout(reg) side.table => _,
            jobs = inout(reg) side.pixels * side.channels / LANES => _,
            vend = in(reg) side.channels * 4,
            voff = out(reg) _,
            t = out(reg) _,
            rows = const ROWS,
            head = const 0,
            tail = const 0,
            nrv = const NRV,
            embed = const 1,
            out("zmm28") _,
            out("zmm29") _,
            out("zmm30") nan_sum,
            out("zmm31") _,
            options(nostack),
        );
    }
    nan_sum
}

/// The side's pooling alone, with the same operations in the same order as `pool_job!`.
///
/// # Safety
/// The [`PoolingKernelInfo`] contract of `pool`, on a CPU with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn pool_only(side: &PoolSideArgs) -> bool {
    let mut nan_sum = _mm512_setzero_ps();
    for p in 0..side.pixels {
        // SAFETY: the table holds `pixels` entries.
        let pixel = unsafe { *side.table.add(p) };
        for v in (0..side.channels).step_by(LANES) {
            // SAFETY: channels v .. v + 16 < channels of every tap: readable (the contract).
            let tap = |i: usize| unsafe { _mm512_loadu_ps(pixel.taps[i].add(v)) };
            let mut m = tap(0);
            nan_sum = _mm512_add_ps(nan_sum, m);
            for i in 1..POOLED_TAPS {
                m = _mm512_max_ps(m, tap(i));
            }
            // SAFETY: the output's channels v .. v + 16: writable (the contract).
            unsafe { _mm512_storeu_ps(pixel.out.add(v), m) };
        }
    }
    _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(nan_sum, nan_sum) == 0
}
