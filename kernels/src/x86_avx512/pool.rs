//! AVX-512F max-pool line kernel, vectorised over channels.
//!
//! Channels go in blocks of 6 zmm (96 channels, six independent dependency chains), then at
//! most one block of 4 and one of the remaining 1..=4 vectors whose last vector, if partial, is
//! loaded and stored with a lane mask, so nothing past `channels` is touched. Six, not four:
//! fewer passes over the line (192 channels in 2) measured a few percent faster on the
//! 28x28x192 3x3 pool, and the ring of 3 column maxima per vector, the loads and the 6 NaN
//! masks still fit the 32 zmm and 7 mask registers without spilling.
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
//! NaN: `vmaxps` returns its second operand when either is NaN, so NaNs are tracked apart, with
//! unordered compares of pairs of loaded vectors (one compare covers two loads) chained into a
//! per-vector "no NaN yet" lane mask by `vcmpps` with a mask operand. The general path resets
//! the mask per output pixel and writes a NaN into the flagged lanes with the final masked move.
//! The sliding path only chains one mask through the whole line: if any lane saw a NaN, the
//! block is recomputed by the general path (NaN inputs are rare; NaN-free lines pay only the
//! compares).

// Index loops over const bounds, not iterators: LLVM unrolls them fully and keeps the arrays
// of vectors in registers.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use crate::pool::{PoolKernelInfo, PoolLineArgs};
use crate::KernelIsa;

const LANES: usize = 16;
/// Vectors per channel block in the main loop.
const BLOCK: usize = 6;

/// AVX-512F max-pool.
pub const MAXPOOL: PoolKernelInfo = PoolKernelInfo {
    name: "maxpool__avx512f",
    isa: KernelIsa::Avx512,
    run: maxpool,
};

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, on a CPU with AVX-512F.
unsafe fn maxpool(args: &PoolLineArgs) {
    // SAFETY: same contract; the caller guarantees AVX-512F.
    unsafe { pool_line(args) }
}

/// # Safety
/// The [`crate::pool::PoolKernel`] contract, AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn pool_line(args: &PoolLineArgs) {
    let channels = args.channels;
    let mut ch = 0;
    while channels - ch >= BLOCK * LANES {
        // SAFETY: channels ch .. ch + 96 <= channels, every vector full.
        unsafe { block::<BLOCK, false>(args, ch, u16::MAX) };
        ch += BLOCK * LANES;
    }
    if channels - ch >= 4 * LANES {
        // SAFETY: channels ch .. ch + 64 <= channels, every vector full.
        unsafe { block::<4, false>(args, ch, u16::MAX) };
        ch += 4 * LANES;
    }
    let rest = channels - ch;
    let (full, part) = (rest / LANES, rest % LANES);
    let mask = ((1u32 << part) - 1) as __mmask16;
    // SAFETY (every arm): `full` whole vectors from ch, then (if `true`) one vector of which
    // `mask` selects the `part` channels left: all inside `channels`.
    unsafe {
        match (full, part > 0) {
            (1, false) => block::<1, false>(args, ch, mask),
            (2, false) => block::<2, false>(args, ch, mask),
            (3, false) => block::<3, false>(args, ch, mask),
            (0, true) => block::<1, true>(args, ch, mask),
            (1, true) => block::<2, true>(args, ch, mask),
            (2, true) => block::<3, true>(args, ch, mask),
            (3, true) => block::<4, true>(args, ch, mask),
            _ => {}
        }
    }
}

/// Loads vector `v` of `V` at `p`: the last one with `mask` if `TAIL` (other lanes zero).
///
/// # Safety
/// AVX-512F; `p .. p + 16` readable, or if `TAIL && v == V - 1` the lanes `mask` selects.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn load<const V: usize, const TAIL: bool>(
    p: *const f32,
    v: usize,
    mask: __mmask16,
) -> __m512 {
    // SAFETY: the caller's contract; masked-off lanes are not accessed.
    unsafe {
        if TAIL && v == V - 1 {
            _mm512_maskz_loadu_ps(mask, p)
        } else {
            _mm512_loadu_ps(p)
        }
    }
}

/// Stores vector `v` of `V` at `p`: the last one with `mask` if `TAIL`.
///
/// # Safety
/// AVX-512F; `p .. p + 16` writable, or if `TAIL && v == V - 1` the lanes `mask` selects.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn store<const V: usize, const TAIL: bool>(
    p: *mut f32,
    v: usize,
    mask: __mmask16,
    x: __m512,
) {
    // SAFETY: the caller's contract; masked-off lanes are not accessed.
    unsafe {
        if TAIL && v == V - 1 {
            _mm512_mask_storeu_ps(p, mask, x)
        } else {
            _mm512_storeu_ps(p, x)
        }
    }
}

/// Channels `ch .. ch + V*16` of every line of the stack, the last vector limited to `mask` if
/// `TAIL`. Lines inner: a block's window rows stay in L1 from one line to the next.
///
/// # Safety
/// The [`crate::pool::PoolKernel`] contract, AVX-512F, and every channel named above (lanes of
/// the last vector that `mask` selects, if `TAIL`) below `channels`.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn block<const V: usize, const TAIL: bool>(args: &PoolLineArgs, ch: usize, mask: __mmask16) {
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
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn try_sliding<const V: usize, const TAIL: bool>(
    args: &PoolLineArgs,
    ch: usize,
    mask: __mmask16,
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

/// Max over `rows` rows of one input column, `V` vectors; clears in `ordered` the lanes where
/// any loaded value is NaN (the max itself is then unspecified in those lanes).
///
/// # Safety
/// AVX-512F, `rows >= 1`, and for every `r < rows` the vectors `p + r*row_stride + v*16`
/// readable as [`load`] reads them.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn column_max<const V: usize, const TAIL: bool>(
    p: *const f32,
    rows: usize,
    row_stride: usize,
    mask: __mmask16,
    ordered: &mut [__mmask16; V],
) -> [__m512; V] {
    // SAFETY: row r < rows, vector v: readable as `load` reads it (caller's contract).
    let ld =
        |r: usize, v: usize| unsafe { load::<V, TAIL>(p.add(r * row_stride + v * LANES), v, mask) };
    // `ordered & (x and y are both not NaN)`, one compare for two loads.
    let ord = |k, x, y| _mm512_mask_cmp_ps_mask::<_CMP_ORD_Q>(k, x, y);
    let mut m = [_mm512_setzero_ps(); V];
    let mut r;
    if rows >= 2 {
        for v in 0..V {
            let (x, y) = (ld(0, v), ld(1, v));
            ordered[v] = ord(ordered[v], x, y);
            m[v] = _mm512_max_ps(x, y);
        }
        r = 2;
    } else {
        for v in 0..V {
            let x = ld(0, v);
            ordered[v] = ord(ordered[v], x, x);
            m[v] = x;
        }
        r = 1;
    }
    while r + 2 <= rows {
        for v in 0..V {
            let (x, y) = (ld(r, v), ld(r + 1, v));
            ordered[v] = ord(ordered[v], x, y);
            m[v] = _mm512_max_ps(m[v], _mm512_max_ps(x, y));
        }
        r += 2;
    }
    if r < rows {
        for v in 0..V {
            let x = ld(r, v);
            ordered[v] = ord(ordered[v], x, x);
            m[v] = _mm512_max_ps(m[v], x);
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
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn sliding<const V: usize, const TAIL: bool, const COLS: usize, const STEP: usize>(
    args: &PoolLineArgs,
    ch: usize,
    mask: __mmask16,
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
    // Lanes with no NaN so far, per vector (masked-off lanes load as 0.0, so they stay set).
    let mut ordered = [u16::MAX; V];
    let padding = [_mm512_set1_ps(f32::NEG_INFINITY); V];
    // Window column k of pixel i is input column i*STEP + k - pad_left; `column(i*STEP + k)`
    // is its maximum over the window rows, or -inf for a padding column.
    let column = |j: usize, ordered: &mut [__mmask16; V]| {
        if j < pad_left || j - pad_left >= in_cols {
            return padding;
        }
        // SAFETY: column j - pad_left exists and lies in some pixel's window (the contract);
        // the vectors from channel ch are readable as `load` reads them (see `block`).
        unsafe {
            let p = a.add((j - pad_left) * a_col_stride + ch);
            column_max::<V, TAIL>(p, window_rows, a_row_stride, mask, ordered)
        }
    };
    // ring[k] holds window column k of pixel i while pixel i is computed.
    let mut ring = [padding; COLS];
    for k in STEP..COLS {
        ring[k] = column(k - STEP, &mut ordered);
    }
    for i in 0..pixels {
        for k in 0..COLS - STEP {
            ring[k] = ring[k + STEP];
        }
        for k in COLS - STEP..COLS {
            ring[k] = column(i * STEP + k, &mut ordered);
        }
        for v in 0..V {
            let mut out = ring[0][v];
            for k in 1..COLS {
                out = _mm512_max_ps(out, ring[k][v]);
            }
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe { store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, mask, out) };
        }
    }
    ordered.iter().all(|&k| k == u16::MAX)
}

/// The general path: every valid window row and column of every output pixel, NaN exact.
///
/// # Safety
/// As [`block`], for one line.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn general<const V: usize, const TAIL: bool>(
    args: &PoolLineArgs,
    ch: usize,
    mask: __mmask16,
) {
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
    let nan = _mm512_set1_ps(f32::NAN);
    for i in 0..pixels {
        let (lo, hi) = args.valid_cols(i);
        let mut ordered = [u16::MAX; V];
        // SAFETY: valid window column q (lo <= q < hi) of pixel i, from channel ch: readable
        // as `load` reads it (see `block`); its input column is not negative as q >= lo.
        let column = |q: usize, ordered: &mut [__mmask16; V]| unsafe {
            let p = a.add((i * col_step + q - pad_left) * a_col_stride + ch);
            column_max::<V, TAIL>(p, window_rows, a_row_stride, mask, ordered)
        };
        let mut acc = column(lo, &mut ordered);
        for q in lo + 1..hi {
            let m = column(q, &mut ordered);
            for v in 0..V {
                acc[v] = _mm512_max_ps(acc[v], m[v]);
            }
        }
        for v in 0..V {
            // Lanes that saw a NaN become NaN.
            let out = _mm512_mask_mov_ps(nan, ordered[v], acc[v]);
            // SAFETY: output pixel i, channels of vector v: writable by the contract.
            unsafe { store::<V, TAIL>(c.add(i * c_pixel_stride + ch + v * LANES), v, mask, out) };
        }
    }
}
