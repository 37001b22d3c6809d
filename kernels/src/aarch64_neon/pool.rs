//! NEON max-pool line kernel, vectorised over channels.
//!
//! Channels go in blocks of 4 q registers (16 channels, four independent dependency chains),
//! then one block of the remaining 1..=4 vectors whose last vector, if partial (1..=3
//! channels), is loaded and stored lane by lane, so nothing past `channels` is touched.
//!
//! Each block takes one of two paths:
//!
//! * **Sliding**, for the common pools: windows 2 or 3 columns wide moving one column per
//!   output pixel (`col_step == 1`), or 3 wide moving two columns. The maximum
//!   over the window rows of every input column of the line is computed once, and the last
//!   `COLS` column maxima stay in registers; each output pixel loads only its new columns and
//!   takes the max of the ring. A 3x3 stride-1 line reads each input element once (3 loads and
//!   4 maxes per output vector instead of 9 loads and 8 maxes).
//!   Padding columns enter the ring as -inf, which never beats a valid element, so a padded
//!   row (the left and right edges of a "same" pool) slides from end to end.
//! * **General**: every valid window row and column of every output pixel, any shape.
//!
//! A block runs every line of the stack before the next block, so its window rows stay in L1
//! from one line to the next (the operator passes channel groups whose window rows fit in L1:
//! 64 channels, 21 KB for the three rows of the 28-pixel Inception pool).
//!
//! NaN: `fmax` returns NaN when either operand is NaN, so NaN propagates with no extra work.

// Index loops over const bounds, not iterators: LLVM unrolls them fully and keeps the arrays
// of vectors in registers.
#![allow(clippy::needless_range_loop)]

use core::arch::aarch64::*;

use crate::pool::{PoolKernelInfo, PoolLineArgs};
use crate::KernelIsa;

const LANES: usize = 4;
/// Vectors per channel block in the main loop.
const BLOCK: usize = 4;

/// NEON max-pool.
pub const MAXPOOL: PoolKernelInfo = PoolKernelInfo {
    name: "maxpool__neon",
    isa: KernelIsa::Neon,
    run: maxpool,
};

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, on a CPU with NEON.
unsafe fn maxpool(args: &PoolLineArgs) {
    // SAFETY: same contract; the caller guarantees NEON.
    unsafe { pool_line(args) }
}

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, NEON.
#[target_feature(enable = "neon")]
unsafe fn pool_line(args: &PoolLineArgs) {
    let channels = args.channels;
    let mut ch = 0;
    while channels - ch >= BLOCK * LANES {
        // SAFETY: channels ch .. ch + 16 <= channels, every vector full.
        unsafe { block::<BLOCK, false>(args, ch, LANES) };
        ch += BLOCK * LANES;
    }
    let rest = channels - ch;
    let (full, part) = (rest / LANES, rest % LANES);
    // SAFETY (every arm): `full` whole vectors from ch, then (if `true`) one vector of which
    // only the `part` channels left are accessed: all inside `channels`.
    unsafe {
        match (full, part > 0) {
            (1, false) => block::<1, false>(args, ch, LANES),
            (2, false) => block::<2, false>(args, ch, LANES),
            (3, false) => block::<3, false>(args, ch, LANES),
            (0, true) => block::<1, true>(args, ch, part),
            (1, true) => block::<2, true>(args, ch, part),
            (2, true) => block::<3, true>(args, ch, part),
            (3, true) => block::<4, true>(args, ch, part),
            _ => {}
        }
    }
}

/// Loads vector `v` of `V` at `p`: the last one only its first `part` lanes if `TAIL` (the
/// other lanes are zero).
///
/// # Safety
/// NEON; `p .. p + 4` readable, or if `TAIL && v == V - 1`, `p .. p + part` with `part < 4`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn load<const V: usize, const TAIL: bool>(
    p: *const f32,
    v: usize,
    part: usize,
) -> float32x4_t {
    // SAFETY: only the elements the caller's contract makes readable are accessed.
    unsafe {
        if TAIL && v == V - 1 {
            let mut x = vld1q_lane_f32::<0>(p, vdupq_n_f32(0.0));
            if part >= 2 {
                x = vld1q_lane_f32::<1>(p.add(1), x);
            }
            if part >= 3 {
                x = vld1q_lane_f32::<2>(p.add(2), x);
            }
            x
        } else {
            vld1q_f32(p)
        }
    }
}

/// Stores vector `v` of `V` at `p`: the last one only its first `part` lanes if `TAIL`.
///
/// # Safety
/// NEON; `p .. p + 4` writable, or if `TAIL && v == V - 1`, `p .. p + part` with `part < 4`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn store<const V: usize, const TAIL: bool>(
    p: *mut f32,
    v: usize,
    part: usize,
    x: float32x4_t,
) {
    // SAFETY: only the elements the caller's contract makes writable are accessed.
    unsafe {
        if TAIL && v == V - 1 {
            vst1q_lane_f32::<0>(p, x);
            if part >= 2 {
                vst1q_lane_f32::<1>(p.add(1), x);
            }
            if part >= 3 {
                vst1q_lane_f32::<2>(p.add(2), x);
            }
        } else {
            vst1q_f32(p, x)
        }
    }
}

/// Channels `ch .. ch + V*4` of every line of the stack, the last vector limited to `part`
/// lanes if `TAIL`. Lines inner: a block's window rows stay in L1 from one line to the next.
///
/// # Safety
/// The [`crate::pool::PoolKernel`] contract, NEON, every channel named above below `channels`,
/// and `1 <= part < 4` if `TAIL`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn block<const V: usize, const TAIL: bool>(args: &PoolLineArgs, ch: usize, part: usize) {
    for l in 0..args.lines {
        // SAFETY: l < lines; then the same contract for one line.
        unsafe {
            let line = args.line(l);
            if !try_sliding::<V, TAIL>(&line, ch, part) {
                general::<V, TAIL>(&line, ch, part);
            }
        }
    }
}

/// The sliding path, if the line has one of its shapes; returns whether it ran.
///
/// # Safety
/// As [`block`], for one line.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn try_sliding<const V: usize, const TAIL: bool>(
    args: &PoolLineArgs,
    ch: usize,
    part: usize,
) -> bool {
    if args.pixels < 2 {
        return false;
    }
    // SAFETY (every call): same contract; the window is COLS columns wide and moves by STEP
    // columns per output pixel, as `sliding` requires.
    unsafe {
        match (args.window_cols, args.col_step) {
            (2, 1) => sliding::<V, TAIL, 2, 1>(args, ch, part),
            (3, 1) => sliding::<V, TAIL, 3, 1>(args, ch, part),
            (3, 2) => sliding::<V, TAIL, 3, 2>(args, ch, part),
            _ => return false,
        }
    }
    true
}

/// Max over `rows` rows of one input column, `V` vectors (NaN if any of them is NaN).
///
/// # Safety
/// NEON, `rows >= 1`, and for every `r < rows` the vectors `p + r*row_stride + v*4` readable
/// as [`load`] reads them.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn column_max<const V: usize, const TAIL: bool>(
    p: *const f32,
    rows: usize,
    row_stride: usize,
    part: usize,
) -> [float32x4_t; V] {
    // SAFETY: row r < rows, vector v: readable as `load` reads it (caller's contract).
    let ld =
        |r: usize, v: usize| unsafe { load::<V, TAIL>(p.add(r * row_stride + v * LANES), v, part) };
    let mut m = [vdupq_n_f32(0.0); V];
    let mut r;
    if rows >= 2 {
        for v in 0..V {
            m[v] = vmaxq_f32(ld(0, v), ld(1, v));
        }
        r = 2;
    } else {
        for v in 0..V {
            m[v] = ld(0, v);
        }
        r = 1;
    }
    while r + 2 <= rows {
        for v in 0..V {
            m[v] = vmaxq_f32(m[v], vmaxq_f32(ld(r, v), ld(r + 1, v)));
        }
        r += 2;
    }
    if r < rows {
        for v in 0..V {
            m[v] = vmaxq_f32(m[v], ld(r, v));
        }
    }
    m
}

/// The sliding path: `COLS`-column windows moving `STEP` columns per output pixel, padding
/// columns as -inf (which never beats a valid element: the max is unchanged).
///
/// # Safety
/// As [`block`] for one line, plus `col_step == STEP` and `window_cols == COLS >= STEP`.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn sliding<const V: usize, const TAIL: bool, const COLS: usize, const STEP: usize>(
    args: &PoolLineArgs,
    ch: usize,
    part: usize,
) {
    let PoolLineArgs {
        pixels,
        a,
        window_rows,
        a_row_stride,
        a_col_stride,
        pad_left,
        in_cols,
        c,
        c_pixel_stride,
        ..
    } = *args;
    let padding = [vdupq_n_f32(f32::NEG_INFINITY); V];
    // Window column k of pixel i is input column i*STEP + k - pad_left; `column(i*STEP + k)`
    // is its maximum over the window rows, or -inf for a padding column.
    let column = |j: usize| {
        if j < pad_left || j - pad_left >= in_cols {
            return padding;
        }
        // SAFETY: column j - pad_left exists and lies in some pixel's window (the contract);
        // the vectors from channel ch are readable as `load` reads them (see `block`).
        unsafe {
            column_max::<V, TAIL>(
                a.add((j - pad_left) * a_col_stride + ch),
                window_rows,
                a_row_stride,
                part,
            )
        }
    };
    // ring[k] holds window column k of pixel i while pixel i is computed.
    let mut ring = [padding; COLS];
    for k in STEP..COLS {
        ring[k] = column(k - STEP);
    }
    for i in 0..pixels {
        for k in 0..COLS - STEP {
            ring[k] = ring[k + STEP];
        }
        for k in COLS - STEP..COLS {
            ring[k] = column(i * STEP + k);
        }
        for v in 0..V {
            let mut out = ring[0][v];
            for k in 1..COLS {
                out = vmaxq_f32(out, ring[k][v]);
            }
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe { store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, part, out) };
        }
    }
}

/// The general path: every valid window row and column of every output pixel.
///
/// # Safety
/// As [`block`], for one line.
#[target_feature(enable = "neon")]
#[inline]
unsafe fn general<const V: usize, const TAIL: bool>(args: &PoolLineArgs, ch: usize, part: usize) {
    let PoolLineArgs {
        pixels,
        a,
        window_rows,
        a_row_stride,
        a_col_stride,
        col_step,
        pad_left,
        c,
        c_pixel_stride,
        ..
    } = *args;
    for i in 0..pixels {
        let (lo, hi) = args.valid_cols(i);
        // SAFETY: valid window column q (lo <= q < hi) of pixel i, from channel ch: readable
        // as `load` reads it (see `block`); its input column is not negative as q >= lo.
        let column = |q: usize| unsafe {
            let p = a.add((i * col_step + q - pad_left) * a_col_stride + ch);
            column_max::<V, TAIL>(p, window_rows, a_row_stride, part)
        };
        let mut acc = column(lo);
        for q in lo + 1..hi {
            let m = column(q);
            for v in 0..V {
                acc[v] = vmaxq_f32(acc[v], m[v]);
            }
        }
        for v in 0..V {
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe {
                store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, part, acc[v])
            };
        }
    }
}
