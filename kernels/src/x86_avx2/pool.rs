//! AVX2 max-pool line kernel, vectorised over channels.
//!
//! Channels go in blocks of 3 ymm (24 channels, three independent dependency chains), then
//! one block of the remaining 1..=3 vectors whose last vector, if partial, is loaded and stored
//! with `vmaskmovps`, so nothing past `channels` is touched. Three, not four: the sliding
//! path's ring of 3 column maxima per vector, its NaN masks and the loads then fit the 16 ymm
//! registers (four spilled; measured on the 28x28x192 3x3 pool, 3 is also faster than 2).
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
//! NaN: `vmaxps` returns its second operand when either is NaN, so NaNs are tracked apart: an
//! unordered compare of each pair of loaded vectors (one compare covers two loads) ORed into a
//! lane mask per vector. The general path resets the masks per output pixel and ORs them into
//! the result (an all-ones lane is a NaN). The sliding path keeps them for the whole line: if
//! any lane saw a NaN, the block is recomputed by the general path (NaN inputs are rare;
//! NaN-free lines pay only the compares).

// Index loops over const bounds, not iterators: LLVM unrolls them fully and keeps the arrays
// of vectors in registers.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::pool::{PoolKernelInfo, PoolLineArgs};
use crate::KernelIsa;

const LANES: usize = 8;
/// Vectors per channel block in the main loop.
const BLOCK: usize = 3;

/// AVX2 max-pool.
pub const MAXPOOL: PoolKernelInfo = PoolKernelInfo {
    name: "maxpool__avx2",
    isa: KernelIsa::Avx2,
    run: maxpool,
};

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, on a CPU with AVX2.
unsafe fn maxpool(args: &PoolLineArgs) {
    // SAFETY: same contract; the caller guarantees AVX2.
    unsafe { pool_line(args) }
}

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, AVX2.
#[target_feature(enable = "avx2")]
unsafe fn pool_line(args: &PoolLineArgs) {
    let channels = args.channels;
    let mut ch = 0;
    let all = _mm256_set1_epi32(-1);
    while channels - ch >= BLOCK * LANES {
        // SAFETY: channels ch .. ch + 24 <= channels, every vector full.
        unsafe { block::<BLOCK, false>(args, ch, all) };
        ch += BLOCK * LANES;
    }
    let rest = channels - ch;
    let (full, part) = (rest / LANES, rest % LANES);
    let mask = lane_mask(part);
    // SAFETY (every arm): `full` whole vectors from ch, then (if `true`) one vector of which
    // `mask` selects the `part` channels left: all inside `channels`.
    unsafe {
        match (full, part > 0) {
            (1, false) => block::<1, false>(args, ch, all),
            (2, false) => block::<2, false>(args, ch, all),
            (0, true) => block::<1, true>(args, ch, mask),
            (1, true) => block::<2, true>(args, ch, mask),
            (2, true) => block::<3, true>(args, ch, mask),
            _ => {}
        }
    }
}

/// A `vmaskmovps` mask selecting the first `n <= 8` lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn lane_mask(n: usize) -> __m256i {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), lanes)
}

/// Loads vector `v` of `V` at `p`: the last one with `mask` if `TAIL`.
///
/// # Safety
/// AVX2; `p .. p + 8` readable, or if `TAIL && v == V - 1` the lanes `mask` selects.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load<const V: usize, const TAIL: bool>(p: *const f32, v: usize, mask: __m256i) -> __m256 {
    // SAFETY: the caller's contract; masked-off lanes are not accessed.
    unsafe {
        if TAIL && v == V - 1 {
            _mm256_maskload_ps(p, mask)
        } else {
            _mm256_loadu_ps(p)
        }
    }
}

/// Stores vector `v` of `V` at `p`: the last one with `mask` if `TAIL`.
///
/// # Safety
/// AVX2; `p .. p + 8` writable, or if `TAIL && v == V - 1` the lanes `mask` selects.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn store<const V: usize, const TAIL: bool>(p: *mut f32, v: usize, mask: __m256i, x: __m256) {
    // SAFETY: the caller's contract; masked-off lanes are not accessed.
    unsafe {
        if TAIL && v == V - 1 {
            _mm256_maskstore_ps(p, mask, x)
        } else {
            _mm256_storeu_ps(p, x)
        }
    }
}

/// Channels `ch .. ch + V*8` of every line of the stack, the last vector limited to `mask` if
/// `TAIL`. Lines inner: a block's window rows stay in L1 from one line to the next.
///
/// # Safety
/// The [`crate::pool::PoolKernel`] contract, AVX2, and every channel named above (lanes of
/// the last vector that `mask` selects, if `TAIL`) below `channels`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block<const V: usize, const TAIL: bool>(args: &PoolLineArgs, ch: usize, mask: __m256i) {
    for l in 0..args.lines {
        // SAFETY: l < lines; then the same contract for one line.
        unsafe {
            let line = args.line(l);
            if try_sliding::<V, TAIL>(&line, ch, mask) != Some(true) {
                general::<V, TAIL>(&line, ch, mask);
            }
        }
    }
}

/// The sliding path, if the line has one of its shapes: `None` if not, else whether the block
/// was NaN-free (`Some(false)` leaves the outputs unspecified).
///
/// # Safety
/// As [`block`], for one line.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn try_sliding<const V: usize, const TAIL: bool>(
    args: &PoolLineArgs,
    ch: usize,
    mask: __m256i,
) -> Option<bool> {
    if args.pixels < 2 {
        return None;
    }
    // SAFETY (every call): same contract; the window is COLS columns wide and moves by STEP
    // columns per output pixel, as `sliding` requires.
    unsafe {
        match (args.window_cols, args.col_step) {
            (2, 1) => Some(sliding::<V, TAIL, 2, 1>(args, ch, mask)),
            (3, 1) => Some(sliding::<V, TAIL, 3, 1>(args, ch, mask)),
            (3, 2) => Some(sliding::<V, TAIL, 3, 2>(args, ch, mask)),
            _ => None,
        }
    }
}

/// Max over `rows` rows of one input column, `V` vectors; sets in `nan` (all ones) the lanes
/// where any loaded value is NaN (the max itself is then unspecified in those lanes).
///
/// # Safety
/// AVX2, `rows >= 1`, and for every `r < rows` the vectors `p + r*row_stride + v*8` readable
/// as [`load`] reads them.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn column_max<const V: usize, const TAIL: bool>(
    p: *const f32,
    rows: usize,
    row_stride: usize,
    mask: __m256i,
    nan: &mut [__m256; V],
) -> [__m256; V] {
    // SAFETY: row r < rows, vector v: readable as `load` reads it (caller's contract).
    let ld =
        |r: usize, v: usize| unsafe { load::<V, TAIL>(p.add(r * row_stride + v * LANES), v, mask) };
    // `nan | (x or y is NaN)`, one compare for two loads.
    let unord = |n, x, y| _mm256_or_ps(n, _mm256_cmp_ps::<_CMP_UNORD_Q>(x, y));
    let mut m = [_mm256_setzero_ps(); V];
    let mut r;
    if rows >= 2 {
        for v in 0..V {
            let (x, y) = (ld(0, v), ld(1, v));
            nan[v] = unord(nan[v], x, y);
            m[v] = _mm256_max_ps(x, y);
        }
        r = 2;
    } else {
        for v in 0..V {
            let x = ld(0, v);
            nan[v] = unord(nan[v], x, x);
            m[v] = x;
        }
        r = 1;
    }
    while r + 2 <= rows {
        for v in 0..V {
            let (x, y) = (ld(r, v), ld(r + 1, v));
            nan[v] = unord(nan[v], x, y);
            m[v] = _mm256_max_ps(m[v], _mm256_max_ps(x, y));
        }
        r += 2;
    }
    if r < rows {
        for v in 0..V {
            let x = ld(r, v);
            nan[v] = unord(nan[v], x, x);
            m[v] = _mm256_max_ps(m[v], x);
        }
    }
    m
}

/// The sliding path: `COLS`-column windows moving `STEP` columns per output pixel, padding
/// columns as -inf (which never beats a valid element: the max is unchanged). Returns `false`,
/// leaving the outputs unspecified, if any loaded value was NaN.
///
/// # Safety
/// As [`block`] for one line, plus `col_step == STEP` and `window_cols == COLS >= STEP`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn sliding<const V: usize, const TAIL: bool, const COLS: usize, const STEP: usize>(
    args: &PoolLineArgs,
    ch: usize,
    mask: __m256i,
) -> bool {
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
    // Lanes that saw a NaN, per vector (masked-off lanes load as 0.0, so they stay clear).
    let mut nan = [_mm256_setzero_ps(); V];
    let padding = [_mm256_set1_ps(f32::NEG_INFINITY); V];
    // Window column k of pixel i is input column i*STEP + k - pad_left; `column(i*STEP + k)`
    // is its maximum over the window rows, or -inf for a padding column.
    let column = |j: usize, nan: &mut [__m256; V]| {
        if j < pad_left || j - pad_left >= in_cols {
            return padding;
        }
        // SAFETY: column j - pad_left exists and lies in some pixel's window (the contract);
        // the vectors from channel ch are readable as `load` reads them (see `block`).
        unsafe {
            let p = a.add((j - pad_left) * a_col_stride + ch);
            column_max::<V, TAIL>(p, window_rows, a_row_stride, mask, nan)
        }
    };
    // ring[k] holds window column k of pixel i while pixel i is computed.
    let mut ring = [padding; COLS];
    for k in STEP..COLS {
        ring[k] = column(k - STEP, &mut nan);
    }
    for i in 0..pixels {
        for k in 0..COLS - STEP {
            ring[k] = ring[k + STEP];
        }
        for k in COLS - STEP..COLS {
            ring[k] = column(i * STEP + k, &mut nan);
        }
        for v in 0..V {
            let mut out = ring[0][v];
            for k in 1..COLS {
                out = _mm256_max_ps(out, ring[k][v]);
            }
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe { store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, mask, out) };
        }
    }
    let any = nan
        .iter()
        .fold(_mm256_setzero_ps(), |x, &n| _mm256_or_ps(x, n));
    _mm256_testz_ps(any, any) != 0
}

/// The general path: every valid window row and column of every output pixel, NaN exact.
///
/// # Safety
/// As [`block`], for one line.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn general<const V: usize, const TAIL: bool>(args: &PoolLineArgs, ch: usize, mask: __m256i) {
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
        let mut nan = [_mm256_setzero_ps(); V];
        // SAFETY: valid window column q (lo <= q < hi) of pixel i, from channel ch: readable
        // as `load` reads it (see `block`); its input column is not negative as q >= lo.
        let column = |q: usize, nan: &mut [__m256; V]| unsafe {
            let p = a.add((i * col_step + q - pad_left) * a_col_stride + ch);
            column_max::<V, TAIL>(p, window_rows, a_row_stride, mask, nan)
        };
        let mut acc = column(lo, &mut nan);
        for q in lo + 1..hi {
            let m = column(q, &mut nan);
            for v in 0..V {
                acc[v] = _mm256_max_ps(acc[v], m[v]);
            }
        }
        for v in 0..V {
            // Lanes that saw a NaN become all ones: a NaN.
            let out = _mm256_or_ps(acc[v], nan[v]);
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe { store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, mask, out) };
        }
    }
}
