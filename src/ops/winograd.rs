//! Winograd F(4x4, 3x3) and F(2x2, 5x5) for stride-1 3x3 and 5x5 convolutions: 36 GEMMs on our
//! microkernels between an input and an output transform (the math: [`incept_kernels::winograd`]).
//!
//! Work is cut into *bands* of tile rows (`m` output rows each, `m` = 4 or 2; in a batch, a band
//! continues into the next image). For a band the input transform writes `V[e][tile][in]` for its tiles, the GEMMs
//! compute `M[e][tile][out] = V[e] x U[e]` (one per element `e` of the 6x6 transformed tile, on
//! the packed filter transforms `U`), and the output transform turns `M` back into 4x4 output
//! tiles with bias and epilogue. `V` and `M` live in a per-thread scratch sized by
//! [`Winograd::band_tile_rows`]; it depends on the band, not on the image height.
//!
//! The tile grid is fixed to the image (tiles start at output rows and columns that are
//! multiples of `m`), so a thread that owns rows in the middle of a tile recomputes that tile but
//! stores the same bits: the output is identical for any thread count.

use std::ops::Range;

use incept_kernels::winograd::{
    transform_input, transform_output, TileRow, Transformed, Variant, ALPHA, ELEMENTS, MAX_TILE,
};
use incept_kernels::{Clamp, Tap, TapSet};

use super::conv2d::{Dest, Source};
use super::{check_weights, tile_error, with_winograd_scratch, ConvCore, Epilogue, OpOptions};
use crate::error::{Error, ErrorKind, Result};

/// Most tile rows in a band (a band may span images: one segment per image at most).
const MAX_BAND_TILE_ROWS: usize = 64;

/// Tiles a fused operator's band aims for (a 28x28 image is 49). In the 3a module (`U` 1.8 MB)
/// bands of 28, 21 and 14 tiles measured 1%, 4% and 5% slower.
const FUSED_BAND_TILES: usize = 49;

/// Scratch (`V` and `M`) of a band that stays in L2 next to one block of `U`.
const BAND_L2_BYTES: usize = 1 << 20;

/// Scratch of a long band, which spills `V` and `M` to L3 but re-reads `U` less often.
const BAND_LONG_BYTES: usize = 4 << 20;

/// A 3x3 or 5x5 stride-1 convolution computed with Winograd F(4x4, 3x3) or F(2x2, 5x5).
#[derive(Clone, Debug)]
pub(crate) struct Winograd {
    variant: Variant,
    /// The 36 GEMMs: filter transforms packed as 36 "taps" of `in x out`, no bias, no clamp.
    pub(crate) gemm: ConvCore,
    bias: Vec<f32>,
    clamp: Clamp,
    pad_top: usize,
    pad_left: usize,
}

impl Winograd {
    /// Transforms and packs OHWI `weights` of the variant's kernel; `pad` = (top, left) of the
    /// convolution.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        op: &str,
        variant: Variant,
        in_channels: usize,
        out_channels: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        (pad_top, pad_left): (usize, usize),
        options: OpOptions,
    ) -> Result<Self> {
        // The checks ConvCore would make on the r x r weights, before transforming them.
        let taps = variant.kernel() * variant.kernel();
        check_weights(op, (in_channels, out_channels), taps, weights, bias)?;
        let clamp = epilogue.clamp()?;
        // U as OHWI with 36 "taps": [out][e][in].
        let mut u = vec![0.0f32; out_channels * ELEMENTS * in_channels];
        for o in 0..out_channels {
            for q in 0..in_channels {
                // In bounds: `check_weights` saw `out * taps * in` weights.
                let g: [f32; 25] = std::array::from_fn(|t| {
                    if t < taps {
                        weights[(o * taps + t) * in_channels + q]
                    } else {
                        0.0
                    }
                });
                let transformed = variant
                    .transform_filter(&g[..taps])
                    .ok_or_else(|| internal(op, "filter of the wrong size"))?;
                for (e, v) in transformed.into_iter().enumerate() {
                    u[(o * ELEMENTS + e) * in_channels + q] = v;
                }
            }
        }
        let gemm = ConvCore::new(
            op,
            in_channels,
            out_channels,
            ELEMENTS,
            &u,
            None,
            Epilogue::None,
            options,
        )?;
        Ok(Winograd {
            variant,
            gemm,
            bias: bias.map_or_else(|| vec![0.0; out_channels], <[f32]>::to_vec),
            clamp,
            pad_top,
            pad_left,
        })
    }

    /// Output rows per tile (4 or 2).
    pub(crate) fn tile(&self) -> usize {
        self.variant.tile()
    }

    /// Output rows per band of a fused operator (`Bottleneck`, `Inception`) feeding this
    /// convolution from its band of reduced rows, for an output `ow` wide: whole tile rows,
    /// enough for about [`FUSED_BAND_TILES`] tiles so the GEMMs reuse each packed U block.
    /// A multiple of 4 (the larger tile), so one band suits both variants.
    pub(crate) fn fused_band_rows(&self, ow: usize) -> usize {
        let m = self.tile();
        (m * FUSED_BAND_TILES.div_ceil(ow.div_ceil(m).max(1)))
            .next_multiple_of(4)
            .min(64)
    }

    /// Input rows `lo..hi` (clipped to an image `h` high) the tiles covering output rows
    /// `y0..y1` read.
    pub(crate) fn input_rows(&self, (y0, y1): (usize, usize), h: usize) -> (usize, usize) {
        let m = self.tile();
        let (ty0, ty1) = (y0 / m, y1.div_ceil(m));
        (
            (m * ty0).saturating_sub(self.pad_top),
            (m * ty1 + ALPHA - m).saturating_sub(self.pad_top).min(h),
        )
    }

    /// Tile rows per band for an output `ow` wide: a band that fits in L2 or a long one,
    /// whichever moves fewer bytes per tile to and from L3.
    ///
    /// Every band streams all of `U` (36 x in x out floats, usually larger than L2) through
    /// its GEMMs, so short bands re-read it many times; a long band reads it less often but
    /// spills its own `V` and `M` (written, then read back). Measured against L2-sized bands,
    /// long ones made the 28x28 192 -> 128 convolution 10% faster and a 14x14 160 -> 320 one
    /// 23% (`U` 3.5 and 7.4 MB: both choose long bands here) but a 56x56 64 -> 192 one (`U`
    /// 1.8 MB) 4% slower (it keeps L2-sized bands). With bands continuing across images, a
    /// batch of 8 of the 14x14 one ran 13% faster than with one band per image.
    fn band_tile_rows(&self, ow: usize) -> usize {
        let (cin, cout) = (self.gemm.in_channels, self.gemm.out_channels);
        let per_tile = (ELEMENTS * (cin + cout) * 4).max(1);
        let u_bytes = ELEMENTS * cin * cout * 4;
        let tiles_per_row = ow.div_ceil(self.tile()).max(1);
        let rows = |bytes: usize| (bytes / per_tile / tiles_per_row).clamp(1, MAX_BAND_TILE_ROWS);
        let per_tile_traffic = |rows: usize, spills: bool| {
            u_bytes / (rows * tiles_per_row) + if spills { 2 * per_tile } else { 0 }
        };
        let (short, long) = (rows(BAND_L2_BYTES), rows(BAND_LONG_BYTES));
        if per_tile_traffic(long, true) < per_tile_traffic(short, false) {
            long
        } else {
            short
        }
    }

    /// Scratch bytes per thread for an output `ow` wide, at most (less for images shorter
    /// than a band).
    pub(crate) fn scratch_bytes(&self, ow: usize) -> usize {
        let tiles = self
            .band_tile_rows(ow)
            .saturating_mul(ow.div_ceil(self.tile()));
        tiles
            .saturating_mul(ELEMENTS)
            .saturating_mul(self.gemm.in_channels + self.gemm.out_channels)
            .saturating_mul(4)
    }

    /// Computes output rows `rows` (global, `n*oh + y`) of an `oh x ow` output from `src`
    /// (whose stored rows start at global input row `first_row`), into the chunk `c` at `dest`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_rows(
        &self,
        op: &str,
        src: &Source<'_>,
        first_row: usize,
        (oh, ow): (usize, usize),
        rows: Range<usize>,
        c: &mut [f32],
        dest: &Dest,
    ) -> Result<()> {
        let (cin, cout) = (self.gemm.in_channels, self.gemm.out_channels);
        let tile = self.tile();
        let tiles_per_row = ow.div_ceil(tile);
        // No longer than this call's rows need: a short image does not get a long band's scratch.
        let band = self.band_tile_rows(ow).min(tile_rows_in(&rows, oh, tile));
        let max_tiles = band * tiles_per_row;
        let (v_len, m_len) = (ELEMENTS * max_tiles * cin, ELEMENTS * max_tiles * cout);
        let token = self.gemm.token;
        let (h, w, ps) = (src.shape.h, src.shape.w, src.pixel_stride);
        let internal = |what: &str| internal(op, what);
        with_winograd_scratch(v_len + m_len, |scratch| {
            let (v, m) = scratch.split_at_mut(v_len);
            let mut g = rows.start;
            while g < rows.end {
                // A band: up to `band` tile rows, continuing into the next images of the batch
                // (so `U` is streamed once per band, not once per image).
                let mut segments: [BandSegment; MAX_BAND_TILE_ROWS] =
                    std::array::from_fn(|_| BandSegment::default());
                let (mut count, mut tile_rows) = (0, 0);
                while g < rows.end && tile_rows < band {
                    let n = g / oh;
                    let y = g - n * oh;
                    let row_end = oh.min(rows.end - n * oh);
                    let ty0 = y / tile;
                    let ty1 = (ty0 + band - tile_rows).min(row_end.div_ceil(tile));
                    segments[count] = BandSegment {
                        n,
                        tile_rows: ty0..ty1,
                        rows: y..row_end,
                    };
                    count += 1;
                    tile_rows += ty1 - ty0;
                    g = n * oh + (ty1 * tile).min(row_end);
                }
                let segments = &segments[..count];
                let tiles = tile_rows * tiles_per_row;
                // The band's tile rows in order: (index of their first tile, image, tile row).
                let band_rows = || {
                    segments
                        .iter()
                        .flat_map(|s| s.tile_rows.clone().map(move |ty| (s, ty)))
                        .enumerate()
                        .map(|(r, (s, ty))| (r * tiles_per_row, s, ty))
                };
                let left = isize::try_from(self.pad_left).map_err(|_| internal("padding"))?;
                // 1. Input transform of every tile of the band, a tile row per call.
                for (t0, seg, ty) in band_rows() {
                    // Offsets of the 6 input rows' column 0 (None: padding).
                    let mut rows_at = [None; ALPHA];
                    for (i, slot) in rows_at.iter_mut().enumerate() {
                        if let Some(iy) = (ty * tile + i).checked_sub(self.pad_top) {
                            if iy < h {
                                let row = (seg.n * h + iy)
                                    .checked_sub(first_row)
                                    .ok_or_else(|| internal("row above the band"))?;
                                *slot = Some(src.offset + row * w * ps);
                            }
                        }
                    }
                    let pixels = TileRow {
                        rows: rows_at,
                        first_column: -left,
                        step: tile,
                        width: w,
                        pixel_stride: ps,
                        tiles: tiles_per_row,
                    };
                    let at = Transformed {
                        offset: t0 * cin,
                        tile_stride: cin,
                        element_stride: tiles * cin,
                    };
                    transform_input(token, src.data, &pixels, cin, v, at)
                        .map_err(|e| tile_error(op, e))?;
                }
                // 2. The 36 GEMMs. Element-major: U[e] of one block (in x NR) stays in L1
                //    while every tile of the band streams past it, and V[e] stays in L2 for
                //    the blocks.
                let nr = self.gemm.kernel.nr;
                for e in 0..ELEMENTS {
                    let tap = [Tap::new(0, e * cin * nr)];
                    let taps = TapSet::new(&tap);
                    for block in self.gemm.all_blocks() {
                        self.gemm.run_line(
                            op,
                            &taps,
                            v,
                            e * tiles * cin,
                            cin,
                            m,
                            e * tiles * cout,
                            cout,
                            tiles,
                            block..block + 1,
                        )?;
                    }
                }
                // 3. Output transform, a tile row per call, storing only this task's rows
                //    inside the image.
                for (t0, seg, ty) in band_rows() {
                    let mut rows_at = [None; MAX_TILE];
                    for (i, slot) in rows_at[..tile].iter_mut().enumerate() {
                        let oy = ty * tile + i;
                        if seg.rows.contains(&oy) {
                            let pixel = ((seg.n * oh + oy) * ow)
                                .checked_sub(dest.first_pixel)
                                .ok_or_else(|| internal("output before the chunk"))?;
                            *slot = Some(pixel * dest.pixel_stride + dest.channel_offset);
                        }
                    }
                    let pixels = TileRow {
                        rows: rows_at,
                        first_column: 0,
                        step: tile,
                        width: ow,
                        pixel_stride: dest.pixel_stride,
                        tiles: tiles_per_row,
                    };
                    let at = Transformed {
                        offset: t0 * cout,
                        tile_stride: cout,
                        element_stride: tiles * cout,
                    };
                    transform_output(
                        token,
                        self.variant,
                        m,
                        at,
                        cout,
                        &self.bias,
                        self.clamp,
                        c,
                        &pixels,
                    )
                    .map_err(|e| tile_error(op, e))?;
                }
            }
            Ok(())
        })
    }
}

/// One image's part of a band: its tile rows, and the output rows of the call inside them.
#[derive(Clone, Default)]
struct BandSegment {
    n: usize,
    tile_rows: Range<usize>,
    rows: Range<usize>,
}

/// Tile rows (`tile` output rows each) the global output rows `rows` (`n*oh + y`) touch, image
/// by image.
fn tile_rows_in(rows: &Range<usize>, oh: usize, tile: usize) -> usize {
    let mut count = 0;
    let mut g = rows.start;
    while g < rows.end {
        let n = g / oh;
        let y = g - n * oh;
        let row_end = oh.min(rows.end - n * oh);
        count += row_end.div_ceil(tile) - y / tile;
        g = n * oh + row_end;
    }
    count
}

/// An internal inconsistency of the Winograd path, as an error.
fn internal(op: &str, what: &str) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("{op}: internal error, Winograd {what}"),
    )
}
