//! AVX-512F microkernels: 14 pixels x 32 channels (two zmm per pixel).
//!
//! Register budget (32 zmm): 14 x 2 accumulators + 2 weight vectors + 1 broadcast = 31, the
//! largest tile that does not spill (`MR*NRV + NRV + 1 <= 32`). 14 also divides 28, the width of
//! the Inception 3a feature map, so a 28x28 image has no pixel remainder.
//!
//! Each `mr` in 1..=14 and each vector count (1 zmm when `nr <= 16`, else 2) is its own
//! monomorphised instance, so remainders run unrolled code and the accumulators stay in
//! registers; output-channel remainders are stored with a lane mask. The k loop itself is inline
//! assembly (`k_loop`): the accumulators live in zmm0..zmm27 across the taps, and the rows are
//! addressed without the per-step integer work the compiler generated (see `k_loop`).

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

/// Calls the instance `$f::<ROWS, NRV>$call` of a tile function for `$args.mr` rows and one
/// vector (`$args.nr <= 16`) or two; `$other` for a row count outside 1..=14.
macro_rules! by_tile_size {
    ($args:expr, $f:ident $call:tt, $other:expr) => {
        by_tile_size!(@rows $args, $f $call, $other; 1 2 3 4 5 6 7 8 9 10 11 12 13 14)
    };
    (@rows $args:expr, $f:ident $call:tt, $other:expr; $($mr:literal)*) => {
        if $args.nr > LANES {
            match $args.mr {
                $($mr => $f::<$mr, 2> $call,)*
                _ => $other,
            }
        } else {
            match $args.mr {
                $($mr => $f::<$mr, 1> $call,)*
                _ => $other,
            }
        }
    };
}

/// 14 x 32 AVX-512F kernel, broadcasting one input value per FMA row.
pub const CONV_14X32: KernelInfo = KernelInfo {
    name: "conv_14x32__avx512f_broadcast",
    isa: KernelIsa::Avx512,
    mr: MR,
    nr: NR,
    max_skip: crate::SIMD_MAX_SKIP,
    run: conv_14x32,
};

/// # Safety
/// The [`crate::TileKernel`] contract with `MR = 14`, `NR = 32`, on a CPU with AVX-512F.
unsafe fn conv_14x32(args: &TileArgs) {
    // SAFETY: same contract, and the instance matches `mr` and the vector count.
    unsafe { by_tile_size!(args, tile(args), {}) }
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
    // SAFETY: the contract makes the bias row readable.
    let mut acc = unsafe { bias_rows::<NRV>(w) };
    // Wrapping: a one-pixel tile may come with any stride (it is never used then); with two or
    // more rows the contract makes `(ROWS - 1) * a_pixel_stride` floats addressable, so the byte
    // stride does not wrap. The assembly only dereferences rows below ROWS.
    let stride_bytes = a_pixel_stride.wrapping_mul(4);
    for t in 0..tap_count {
        // SAFETY: `taps` holds `tap_count` taps.
        let tap = unsafe { *taps.add(t) };
        // Wrapping: pixel 0 may skip the tap, and its address then lies anywhere.
        let a_tap = a.wrapping_offset(tap.input_offset);
        // SAFETY: the tap's `k x NR` weights start at `w + NR + tap.weight_offset`.
        let w_tap = unsafe { w.add(NR + tap.weight_offset) };
        // SAFETY (every arm): by the contract, pixel i < ROWS that reads the tap (HEAD <= i <
        // ROWS - TAIL, the arm's skips) reads `k` inputs from `a_tap + i * a_pixel_stride`, and
        // the weights above; that is all `k_loop` reads. Skips: at most SIMD_MAX_SKIP, one end.
        unsafe {
            let (acc, s) = (&mut acc, stride_bytes);
            with_skips!(tap, k_loop::<ROWS, NRV>(acc, a_tap, s, w_tap, k));
        }
    }
    // SAFETY: the contract makes these outputs writable.
    unsafe { store_rows::<ROWS, NRV>(&acc, nr, clamp, c, c_pixel_stride) };
}

/// The accumulators of a tile, every row starting from the bias row at `w` (`NRV` vectors; the
/// others zero). All MR rows exist (the k loop binds them to fixed registers); rows past the
/// tile's are never read from memory nor stored.
///
/// # Safety
/// AVX-512F; `w .. w + NRV * 16` readable, `NRV <= 2`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn bias_rows<const NRV: usize>(w: *const f32) -> [[__m512; 2]; MR] {
    let mut bias = [_mm512_setzero_ps(); 2];
    for v in 0..NRV {
        // SAFETY: vector v < NRV of the bias row: readable by the caller's contract.
        bias[v] = unsafe { _mm512_loadu_ps(w.add(v * LANES)) };
    }
    [bias; MR]
}

/// Clamps rows `0..ROWS` of `acc` and stores their first `nr` channels at `c`, pixel `i` at
/// `c + i * c_pixel_stride`.
///
/// # Safety
/// AVX-512F; those `nr <= NRV * 16` channels of each row writable.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store_rows<const ROWS: usize, const NRV: usize>(
    acc: &[[__m512; 2]; MR],
    nr: usize,
    clamp: crate::Clamp,
    c: *mut f32,
    c_pixel_stride: usize,
) {
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
            // SAFETY: writes lanes < nr of pixel i < ROWS: writable by the caller's contract
            // (masked-off lanes are not accessed).
            unsafe { _mm512_mask_storeu_ps(c.add(i * c_pixel_stride + v * LANES), masks[v], y) };
        }
    }
}

/// One k step for rows `HEAD .. ROWS - TAIL` (the rows reading the tap): `NRV` weight vectors,
/// then per row one broadcast and `NRV` FMAs; with one vector (`NRV == 1`), or with `{embed}`
/// set (the pooling tile, `pooling.rs`), every FMA takes the broadcast as its own memory operand
/// (`{1to16}`, see [`k_loop`]) instead. `\u` is the step's index inside an unrolled group (an
/// assembler `.irp`).
/// Row `i` reads `[base + stride * m + 4u]` from one of four row bases (rows 0, 3, 5, 10) and a
/// scale m in {0, 1, 2, 4, 8}; its accumulators are zmm(2i) and zmm(2i+1).
macro_rules! k_step {
    ($( $row:literal: [$addr:literal] $lo:literal $hi:literal ),* $(,)?) => {
        concat!(
            "vmovups zmm28, [{w} + \\u*128]\n",
            ".if {nrv} > 1\n",
            "vmovups zmm29, [{w} + \\u*128 + 64]\n",
            ".endif\n",
            $(
                ".if ({head} <= ", $row, ") && ({rows} - {tail} > ", $row, ")\n",
                ".if ({nrv} == 1) || {embed}\n",
                "vfmadd231ps ", $lo, ", zmm28, dword ptr [", $addr, " + \\u*4]{{1to16}}\n",
                ".if {nrv} > 1\n",
                "vfmadd231ps ", $hi, ", zmm29, dword ptr [", $addr, " + \\u*4]{{1to16}}\n",
                ".endif\n",
                ".else\n",
                "vbroadcastss zmm30, dword ptr [", $addr, " + \\u*4]\n",
                "vfmadd231ps ", $lo, ", zmm30, zmm28\n",
                "vfmadd231ps ", $hi, ", zmm30, zmm29\n",
                ".endif\n",
                ".endif\n",
            )*
        )
    };
}

/// `asm!` with the 14 x 2 accumulators `$acc` bound to zmm0..zmm27 (row i: zmm(2i), zmm(2i+1)),
/// as [`k_step!`] addresses them; the templates and other operands as given.
macro_rules! asm_with_accumulators {
    ($acc:ident, $($rest:tt)*) => {
        core::arch::asm!(
            $($rest)*
            inout("zmm0") $acc[0][0],
            inout("zmm1") $acc[0][1],
            inout("zmm2") $acc[1][0],
            inout("zmm3") $acc[1][1],
            inout("zmm4") $acc[2][0],
            inout("zmm5") $acc[2][1],
            inout("zmm6") $acc[3][0],
            inout("zmm7") $acc[3][1],
            inout("zmm8") $acc[4][0],
            inout("zmm9") $acc[4][1],
            inout("zmm10") $acc[5][0],
            inout("zmm11") $acc[5][1],
            inout("zmm12") $acc[6][0],
            inout("zmm13") $acc[6][1],
            inout("zmm14") $acc[7][0],
            inout("zmm15") $acc[7][1],
            inout("zmm16") $acc[8][0],
            inout("zmm17") $acc[8][1],
            inout("zmm18") $acc[9][0],
            inout("zmm19") $acc[9][1],
            inout("zmm20") $acc[10][0],
            inout("zmm21") $acc[10][1],
            inout("zmm22") $acc[11][0],
            inout("zmm23") $acc[11][1],
            inout("zmm24") $acc[12][0],
            inout("zmm25") $acc[12][1],
            inout("zmm26") $acc[13][0],
            inout("zmm27") $acc[13][1],
        )
    };
}

/// [`k_step!`] for all 14 rows: row i's address and its accumulators zmm(2i), zmm(2i+1).
macro_rules! one_k_step {
    () => {
        k_step!(
            0: ["{a0}"] "zmm0" "zmm1",
            1: ["{a0} + {s}"] "zmm2" "zmm3",
            2: ["{a0} + 2*{s}"] "zmm4" "zmm5",
            3: ["{a3}"] "zmm6" "zmm7",
            4: ["{a0} + 4*{s}"] "zmm8" "zmm9",
            5: ["{a5}"] "zmm10" "zmm11",
            6: ["{a5} + {s}"] "zmm12" "zmm13",
            7: ["{a5} + 2*{s}"] "zmm14" "zmm15",
            8: ["{a0} + 8*{s}"] "zmm16" "zmm17",
            9: ["{a5} + 4*{s}"] "zmm18" "zmm19",
            10: ["{a10}"] "zmm20" "zmm21",
            11: ["{a10} + {s}"] "zmm22" "zmm23",
            12: ["{a10} + 2*{s}"] "zmm24" "zmm25",
            13: ["{a5} + 8*{s}"] "zmm26" "zmm27",
        )
    };
}

/// Sets the four row bases `one_k_step!` addresses from `{a0}` (row 0) and the stride `{s}`:
/// `{a3}` = row 3, `{a5}` = row 5, `{a10}` = row 10.
macro_rules! row_bases {
    () => {
        concat!(
            "lea {a3}, [{a0} + 2*{s}]\n",
            "add {a3}, {s}\n",
            "lea {a5}, [{a3} + 2*{s}]\n",
            "lea {a10}, [{a5} + 4*{s}]\n",
            "add {a10}, {s}\n",
        )
    };
}

/// Moves the four row bases on by `$bytes` (the channels of the k steps just done).
macro_rules! advance_rows {
    ($bytes:literal) => {
        concat!(
            "add {a0}, ",
            $bytes,
            "\n",
            "add {a3}, ",
            $bytes,
            "\n",
            "add {a5}, ",
            $bytes,
            "\n",
            "add {a10}, ",
            $bytes,
            "\n",
        )
    };
}

/// The reduction over `k` input channels of one tap, hand-scheduled: intrinsics left LLVM
/// recomputing the 14 row addresses with a chain of 13 integer adds per k step (60 uops per 28
/// FMAs). Here the rows are addressed from four base pointers and a stride register (x86 scales
/// 1, 2, 4, 8), and four k steps are unrolled with displacements: about 46 uops per 28 FMAs,
/// 1.5 of them integer. Measured 7-12% faster than the intrinsics on every convolution when the
/// shared test machine's core was contended (and as fast when it was not).
///
/// With two vectors, one `vbroadcastss` feeds two FMAs. FMAs with an embedded broadcast
/// (`{1to16}` memory operand) would save the broadcast uops but load once per FMA: 30 loads per
/// 28 FMAs here, 32 in a 7x64 tile, more than an Intel Xeon's two 512-bit load ports sustain
/// beside its two FMA ports. Measured on such a Xeon (an L1-resident k loop): a 7x64
/// embedded-broadcast loop ran at 0.85-0.95x this one, and this loop with embedded broadcasts
/// 4% slower on the convolutions; on AMD Zen 4 (one 512-bit FMA per cycle) it was no faster.
///
/// With one vector (outputs of 16 channels or fewer, e.g. the Inception 1x1 reductions to 16)
/// the load count is the same either way, one per FMA, so the FMA takes its broadcast from
/// memory itself: one uop less per row. On Zen 4, where the separate zmm broadcast costs a
/// vector pipe, that made the 28x28 192 -> 16 1x1 run at 96% of the FMA peak instead of 73%
/// (0.0428 against 0.0566 ms; the fused 1x1 -> 5x5 bottleneck 0.2017 against 0.2160 ms).
///
/// Each group of four k steps also prefetches four cache lines into L1, walking forward from
/// row 14 (`a + 14 * stride`): the next tile of a line of pixels. 256 bytes per group cover a
/// dense next tile (14 pixels x `k` floats = 224 bytes per group of 4 channels), which is what
/// a 1x1 convolution reads next. It matters when the input does not fit in L2 (a 28x28x192
/// 1x1 at batch 8: 0.945x the time on one thread); on L2-resident inputs the extra loads were
/// measured neutral (1x1, 3x3, 5x5 and the module, batch 1).
///
/// # Safety
/// AVX-512F; for rows `HEAD <= i < ROWS - TAIL` and `q < k`, `a + i * stride_bytes / 4 + q`
/// readable, and `w .. w + k * NR` readable; `stride_bytes` a multiple of 4.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn k_loop<const ROWS: usize, const NRV: usize, const HEAD: usize, const TAIL: usize>(
    acc: &mut [[__m512; 2]; MR],
    a: *const f32,
    stride_bytes: usize,
    w: *const f32,
    k: usize,
) {
    // SAFETY: reads only the rows HEAD .. ROWS - TAIL (`.if`) and the caller's weight range;
    // the other rows' bases are computed but never dereferenced. `prefetcht0` is a hint that
    // never faults, so its address may lie outside the input. No stack, no memory writes.
    unsafe {
        asm_with_accumulators!(
            acc,
            row_bases!(),
            "lea {pf}, [{a10} + 4*{s}]", // row 14: the next tile
            "test {groups}, {groups}",
            "jz 3f",
            ".p2align 5",
            "2:",
            ".irp u, 0, 1, 2, 3",
            one_k_step!(),
            ".endr",
            "prefetcht0 [{pf}]",
            "prefetcht0 [{pf} + 64]",
            "prefetcht0 [{pf} + 128]",
            "prefetcht0 [{pf} + 192]",
            "add {pf}, 256",
            "add {w}, 512",
            advance_rows!("16"),
            "dec {groups}",
            "jnz 2b",
            "3:",
            "test {rest}, {rest}",
            "jz 5f",
            "4:",
            ".irp u, 0",
            one_k_step!(),
            ".endr",
            "add {w}, 128",
            advance_rows!("4"),
            "dec {rest}",
            "jnz 4b",
            "5:",
            a0 = inout(reg) a => _,
            s = in(reg) stride_bytes,
            w = inout(reg) w => _,
            groups = inout(reg) k / 4 => _,
            rest = inout(reg) k % 4 => _,
            a3 = out(reg) _,
            a5 = out(reg) _,
            a10 = out(reg) _,
            pf = out(reg) _,
            rows = const ROWS,
            head = const HEAD,
            tail = const TAIL,
            nrv = const NRV,
            embed = const 0,
            out("zmm28") _,
            out("zmm29") _,
            out("zmm30") _,
            options(nostack, readonly),
        );
    }
}

pub(crate) mod pooling;
