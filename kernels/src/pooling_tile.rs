//! A 1x1 tile that max-pools the next tile's input while it multiplies: the fused
//! pool -> projection for CPUs whose vector max runs beside the FMAs.
//!
//! An Inception pool branch is a 3x3 max-pool and then a 1x1 projection. Run one after the other,
//! the pool's maxima and the projection's FMAs take turns on the core. On AMD Zen 4 the FMAs run
//! on two FP pipes and `vmaxps` on two others, so both can run in the same cycles: the kernel
//! multiplies tile t (pooled earlier, in an L1 buffer) and meanwhile pools tile t + 1 into a
//! second buffer, one output vector after every k step. (Intel's AVX-512 cores run the max on
//! the FMA ports, 0 and 5: an earlier interleaved pool measured 1.22-1.28x slower there, see
//! `benches/RESULTS.md`; `incept`'s `PoolSchedule::Auto` picks this kernel on AMD only.)
//!
//! Pooling here works by taps: each pooled pixel lists where its nine 3x3 taps start in the
//! input, a tap outside the image repeating the centre (a repeated element leaves the max
//! unchanged, so no padding value is needed). `vmaxps` drops a NaN that is already in the
//! running maximum, so this pool alone does not propagate NaNs. It detects them instead: every
//! pixel's centre tap is also added into a running sum, which becomes NaN if any centre is NaN
//! (or if +inf and -inf meet, a false alarm that is only slower). For a 3x3 stride-1 pool padded
//! by 1 the centres of a run of pixels are the run's own input pixels; with the pixels around
//! it checked apart (the row above and the row below, [`pool_project`] does both), a clean
//! report proves the pool saw no NaN; otherwise the caller recomputes the run with the
//! NaN-exact pool.

use core::ops::Range;

use crate::{Clamp, IsaToken, KernelInfo, KernelIsa, Tap, TileArgs, TileError};

/// Taps of a pooled pixel: a 3x3 window.
pub const POOLED_TAPS: usize = 9;

/// Channels per vector of the pooling kernels: the pooled channel count must be a multiple.
pub const POOLED_CHANNEL_MULTIPLE: usize = 16;

/// The input of a 3x3 stride-1 max-pool padded by 1 on every side: `images` images of `h x w`
/// pixels, pixel `p` (counted over all images, row by row) at `data[offset + p * pixel_stride..]`,
/// `channels` floats each.
#[derive(Clone, Copy, Debug)]
pub struct PoolInput<'a> {
    /// The elements.
    pub data: &'a [f32],
    /// Index of pixel 0, channel 0.
    pub offset: usize,
    /// Images.
    pub images: usize,
    /// Rows per image.
    pub h: usize,
    /// Pixels per row.
    pub w: usize,
    /// Elements between consecutive pixels.
    pub pixel_stride: usize,
    /// Channels per pixel, a positive multiple of [`POOLED_CHANNEL_MULTIPLE`].
    pub channels: usize,
}

/// A 1x1 projection packed for [`PoolingKernelInfo::tile`]: block `b` (output channels
/// `b * NR ..`) at `weights[b * block_len..]`, its `NR` biases and then `channels x NR` weights.
#[derive(Clone, Copy, Debug)]
pub struct Projection<'a> {
    /// The packed blocks.
    pub weights: &'a [f32],
    /// Elements per block.
    pub block_len: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Epilogue.
    pub clamp: Clamp,
}

/// Where [`pool_project`] writes: pixel `i` of the run, channel `o`, at
/// `data[offset + i * pixel_stride + o]`.
#[derive(Debug)]
pub struct ProjectionOutput<'a> {
    /// The elements.
    pub data: &'a mut [f32],
    /// Index of the run's first pixel, channel 0.
    pub offset: usize,
    /// Elements between consecutive pixels.
    pub pixel_stride: usize,
}

/// One pooled pixel as the kernels read it: its taps' addresses (channel 0) and its output's.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PooledPixelArgs {
    /// The centre, the tap above, the tap below, then the other six; a tap outside the image
    /// repeats the centre.
    pub taps: [*const f32; POOLED_TAPS],
    /// Channel 0 of the pooled output.
    pub out: *mut f32,
}

/// The most pixels the kernels pool beside one tile ([`pool_project`] keeps their table on its
/// stack). A tile pools the next tile's pixels at one 16-channel vector per k step, and `k` is
/// the channel count, so at most 16 pixels fit in its k loop; the tiles have 14.
pub const MAX_POOLED_PIXELS: usize = 16;

/// The pool work the kernels receive: `pixels` entries of `table`.
#[derive(Clone, Copy, Debug)]
pub struct PoolSideArgs {
    /// `pixels` entries.
    pub table: *const PooledPixelArgs,
    /// Pooled pixels, `1..=MAX_POOLED_PIXELS`.
    pub pixels: usize,
    /// Channels per pixel, a positive multiple of [`POOLED_CHANNEL_MULTIPLE`].
    pub channels: usize,
}

/// A tile kernel that pools on the side. Only this crate makes these (see [`KernelInfo`]).
///
/// # Safety (both functions)
/// `channels` a positive multiple of 16 (the kernels read and write whole vectors); every tap
/// of every pixel of the side readable for `channels` elements, every output writable for
/// `channels` and aliased by nothing else the call reads or writes; `run` also has the
/// [`crate::TileKernel`] contract of [`PoolingKernelInfo::tile`] for a one-tap tile (a 1x1) with
/// `k` a multiple of 4 and `pixels * channels / 16 <= k`; the CPU must support the ISA.
#[derive(Debug)]
pub struct PoolingKernelInfo {
    /// Name, in the XNNPACK style.
    pub name: &'static str,
    /// The conv kernel whose tiles and packed weights `run` shares.
    pub tile: &'static KernelInfo,
    /// One 1x1 tile plus the side's pooling; returns whether no centre was NaN.
    pub(crate) run: unsafe fn(&TileArgs, &PoolSideArgs) -> bool,
    /// The side's pooling alone; returns whether no centre was NaN.
    pub(crate) pool: unsafe fn(&PoolSideArgs) -> bool,
}

/// The pooling tile kernel for `isa`, if it has one (AVX-512 only).
pub fn pooling_kernel(isa: KernelIsa) -> Option<&'static PoolingKernelInfo> {
    match isa {
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx512 => Some(&crate::x86_avx512::pooling::POOLING_14X32),
        _ => None,
    }
}

/// Max-pools (3x3, stride 1, padded by 1) the pixels `pixels` of `input` and projects them with
/// `proj` into `out`, tile by tile: tile t's projection pools tile t + 1 into the other half of
/// `scratch` (at least `2 * MR * channels` floats, MR the tile kernel's), so the pooled tensor
/// never exists. Returns whether no input element the pool read was NaN; if one was, the
/// outputs are unspecified and the caller recomputes them with a NaN-exact pool. (The check
/// also reports a few false alarms, which only cost that recomputation: +inf and -inf meeting
/// in its sum, a sum overflowing to infinity and then meeting the other sign, and a NaN in one
/// of the up to `w + 1` pixels before and after the run that it checks without the pool
/// reading them all.)
///
/// # Errors
///
/// [`TileError::Isa`] for a token of another ISA; [`TileError::PoolSide`] for channels that are
/// not a positive multiple of [`POOLED_CHANNEL_MULTIPLE`], a pixel stride below the channels,
/// pixels past the images, an input slice too short for its images or a scratch shorter than
/// two tiles; [`TileError::Weights`]
/// and [`TileError::Output`] for a projection or output too short. Nothing is written then.
pub fn pool_project(
    kernel: &PoolingKernelInfo,
    input: &PoolInput<'_>,
    pixels: Range<usize>,
    proj: &Projection<'_>,
    scratch: &mut [f32],
    out: ProjectionOutput<'_>,
    isa: IsaToken,
) -> Result<bool, TileError> {
    let tile_kernel = kernel.tile;
    if isa.0 != tile_kernel.isa {
        return Err(TileError::Isa);
    }
    let PoolInput {
        data,
        offset,
        images,
        h,
        w,
        pixel_stride: col,
        channels,
    } = *input;
    let (mr, nr) = (tile_kernel.mr.min(MAX_POOLED_PIXELS), tile_kernel.nr);
    let total = images.checked_mul(h).and_then(|x| x.checked_mul(w));
    let input_end = total
        .and_then(|t| t.checked_sub(1))
        .and_then(|last| last.checked_mul(col))
        .and_then(|x| x.checked_add(offset))
        .and_then(|x| x.checked_add(channels));
    if channels == 0
        || !channels.is_multiple_of(POOLED_CHANNEL_MULTIPLE)
        || col < channels
        || !matches!(total, Some(t) if pixels.end <= t)
        || !matches!(input_end, Some(end) if end <= data.len())
        || mr
            .checked_mul(2 * channels)
            .is_none_or(|n| n > scratch.len())
    {
        return Err(TileError::PoolSide);
    }
    let blocks = proj.out_channels.div_ceil(nr);
    let block_end = channels
        .checked_mul(nr)
        .and_then(|x| x.checked_add(nr))
        .filter(|&x| x <= proj.block_len);
    if proj.out_channels == 0
        || block_end.is_none()
        || blocks
            .checked_mul(proj.block_len)
            .is_none_or(|n| n > proj.weights.len())
    {
        return Err(TileError::Weights);
    }
    let count = pixels.len();
    if count == 0 {
        return Ok(true);
    }
    let out_end = (count - 1)
        .checked_mul(out.pixel_stride)
        .and_then(|x| x.checked_add(out.offset))
        .and_then(|x| x.checked_add(proj.out_channels));
    if !matches!(out_end, Some(end) if end <= out.data.len()) {
        return Err(TileError::Output);
    }

    // The pool reads up to w + 1 pixels before and after the run, in the same image; the
    // kernels' check covers the run's own pixels (the centres), this one the rest.
    let image = h * w;
    // (`total` pixels of at least `channels` elements fit in the input, so these do not
    // overflow.)
    let before = (pixels.start / image * image).max(pixels.start.saturating_sub(w + 1));
    let after = (pixels.end.div_ceil(image) * image).min(pixels.end + w + 1);
    let pixel = |p: usize| &data[offset + p * col..][..channels];
    if (before..pixels.start)
        .chain(pixels.end..after)
        .any(|p| has_nan(pixel(p)))
    {
        return Ok(false);
    }

    // The table of `len` pixels from pixel `p`: pointers into `data` at pixels that exist (the
    // checks above), a missing neighbour 0 away (the centre).
    let base = data.as_ptr().wrapping_add(offset);
    // Each tap's offset from the centre (elements; in `PooledPixelArgs` order) for each set of
    // neighbouring sides that exist (bits: above, below, left, right); a tap across a missing
    // side is 0 away, the centre again. A lookup per pixel instead of branches (the table
    // building took 3.3% of the pool + projection's profile with branches, 2.8% with this).
    // (`w * col` fits: the images fit in `data`.)
    let (row, col_step) = ((w * col) as isize, col as isize);
    let deltas: [[isize; POOLED_TAPS]; 16] = core::array::from_fn(|sides| {
        const DY: [isize; POOLED_TAPS] = [0, -1, 1, -1, -1, 0, 0, 1, 1];
        const DX: [isize; POOLED_TAPS] = [0, 0, 0, -1, 1, -1, 1, -1, 1];
        let has = |bit: usize| sides & 1 << bit != 0;
        core::array::from_fn(|t| {
            let (dy, dx) = (DY[t], DX[t]);
            let exists = (dy >= 0 || has(0))
                && (dy <= 0 || has(1))
                && (dx >= 0 || has(2))
                && (dx <= 0 || has(3));
            if exists {
                dy * row + dx * col_step
            } else {
                0
            }
        })
    });
    let fill =
        |table: &mut [PooledPixelArgs; MAX_POOLED_PIXELS], out: *mut f32, p: usize, len: usize| {
            let (mut y, mut x) = (p / w % h, p % w);
            let mut centre = base.wrapping_add(p * col);
            for (i, entry) in table[..len].iter_mut().enumerate() {
                let sides = usize::from(y > 0)
                    | usize::from(y + 1 < h) << 1
                    | usize::from(x > 0) << 2
                    | usize::from(x + 1 < w) << 3;
                *entry = PooledPixelArgs {
                    taps: deltas[sides].map(|d| centre.wrapping_offset(d)),
                    out: out.wrapping_add(i * channels),
                };
                centre = centre.wrapping_add(col);
                x += 1;
                if x == w {
                    x = 0;
                    y = (y + 1) % h;
                }
            }
        };

    // Balanced tiles (as the operators' lines): each pixel's sum is the same either way.
    let tiles = count.div_ceil(mr);
    let size = |t: usize| count / tiles + usize::from(t < count % tiles);
    let (halves, c) = (scratch.as_mut_ptr(), out.data.as_mut_ptr());
    let half = |t: usize| halves.wrapping_add(t % 2 * mr * channels);
    let mut table = [EMPTY_PIXEL; MAX_POOLED_PIXELS];
    fill(&mut table, half(0), pixels.start, size(0));
    let side = |len: usize, table: &[PooledPixelArgs; MAX_POOLED_PIXELS]| PoolSideArgs {
        table: table.as_ptr(),
        pixels: len,
        channels,
    };
    // SAFETY: every tap points at a pixel of the images (`fill` steps to neighbours that
    // exist), readable for `channels` (checked above); the outputs are the first tile's rows in
    // scratch half 0, writable (scratch holds two tiles) and disjoint from the input (`scratch`
    // is borrowed mutably); the token proves the ISA.
    let mut clean = unsafe { (kernel.pool)(&side(size(0), &table)) };
    let mut start = 0;
    const ONE_TAP: [Tap; 1] = [Tap::new(0, 0)];
    for t in 0..tiles {
        let len = size(t);
        let pooling_next = t + 1 < tiles;
        if pooling_next {
            fill(
                &mut table,
                half(t + 1),
                pixels.start + start + len,
                size(t + 1),
            );
        }
        for b in 0..blocks {
            let args = TileArgs {
                mr: len,
                nr: nr.min(proj.out_channels - b * nr),
                k: channels,
                a: half(t),
                a_pixel_stride: channels,
                taps: ONE_TAP.as_ptr(),
                tap_count: 1,
                w: proj.weights.as_ptr().wrapping_add(b * proj.block_len),
                c: c.wrapping_add(out.offset + start * out.pixel_stride + b * nr),
                c_pixel_stride: out.pixel_stride,
                clamp: proj.clamp,
            };
            // SAFETY: the tile reads `len <= MR` pooled pixels of `channels` from scratch half
            // t % 2 (written by the previous call) and block b's bias and `channels x NR`
            // weights (block_len and the weights' length checked above), and writes `nr`
            // channels of `len` output pixels inside `out.data` (checked above); `c`, the scratch
            // and the input do not alias (two are borrowed mutably, apart). The side, on block
            // 0, pools tile t + 1 into the other half (disjoint from this tile's) from pixels of
            // the images; `k = channels` is a multiple of 16, so of 4, and the side's vectors,
            // `size(t + 1) * channels / 16 <= channels`, do not exceed k. The token proves the
            // ISA.
            unsafe {
                if b == 0 && pooling_next {
                    clean &= (kernel.run)(&args, &side(size(t + 1), &table));
                } else {
                    (tile_kernel.run)(&args);
                }
            }
        }
        start += len;
    }
    Ok(clean)
}

const EMPTY_PIXEL: PooledPixelArgs = PooledPixelArgs {
    taps: [core::ptr::null(); POOLED_TAPS],
    out: core::ptr::null_mut(),
};

/// Whether any element of `x` is NaN.
pub fn has_nan(x: &[f32]) -> bool {
    // No early exit per element, so it vectorises.
    x.iter().fold(false, |seen, v| seen | v.is_nan())
}

/// Whether this CPU executes vector max instructions on other pipes than its FMAs, so that a
/// pool interleaved with a projection overlaps it: AMD's CPUs from family 0x19 on (Zen 3 and
/// later; Zen 4 is the first with AVX-512). Intel's AVX-512 cores run both on ports 0 and 5.
pub fn max_runs_beside_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::__cpuid;
        // SAFETY: CPUID exists on every x86-64 CPU; leaves 0 and 1 always do.
        #[allow(unused_unsafe)]
        let (vendor, signature) = unsafe { (__cpuid(0), __cpuid(1)) };
        let amd = (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
        let base = (signature.eax >> 8) & 0xf;
        let family = base
            + if base == 0xf {
                (signature.eax >> 20) & 0xff
            } else {
                0
            };
        amd && family >= 0x19
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}
