//! The fused pool branch: max-pool, then a 1x1 projection, without writing the pooled tensor.
//!
//! Separate schedule: each task pools a band of output rows into a per-thread scratch (a few
//! rows, in L1/L2) and feeds it straight to the 1x1 microkernel. Interleaved schedule
//! ([`PoolSchedule::Interleaved`]): each 1x1 tile pools the next one inside its k loop
//! (`incept_kernels::pooling_tile`), through a two-tile scratch.

use std::ops::Range;

use incept_kernels::pooling_tile::{
    max_runs_beside_fma, pooling_kernel, PoolInput, PoolingKernelInfo, ProjectionOutput,
    MAX_POOLED_PIXELS, POOLED_CHANNEL_MULTIPLE,
};

use super::conv2d::{Dest, Source};
use super::maxpool::{MaxPool2d, MaxPool2dDesc};
use super::{with_scratch, ConvCore, ConvParams, Epilogue, OpOptions, PoolSchedule, ONE_TAP_SET};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{invalid, mismatch, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_rows, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Max-pool (`pool`) followed by a 1x1 convolution `in_channels -> out_channels`, fused: each
/// thread pools a band of rows into its scratch and projects it from there, so the pooled
/// tensor is never written out. The Inception module's pool branch.
///
/// # Examples
///
/// ```
/// use incept::{ConvParams, Epilogue, MaxPool2dDesc, Nhwc, Parallelism, PoolProjection};
/// use incept::{TensorView, TensorViewMut};
///
/// // Pool 3x3 "same", then project 2 channels to 1: channel 0 minus channel 1.
/// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
/// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 2, 1, proj, Epilogue::None)?;
/// // A 2x2 image: every 3x3 window covers all four pixels, so each output is 4 - 10.
/// let x = [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 10.0];
/// let mut y = [0.0; 4];
/// op.run(
///     &TensorView::new(&x, Nhwc::new(1, 2, 2, 2))?,
///     &mut TensorViewMut::new(&mut y, Nhwc::new(1, 2, 2, 1))?,
///     Parallelism::Sequential,
/// )?;
/// assert_eq!(y, [-6.0; 4]);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `PoolProjection` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`PoolProjection::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct PoolProjection {
    pool: MaxPool2d,
    proj: ConvCore,
    /// The pooling tile kernel if the schedule is interleaved.
    pooling: Option<&'static PoolingKernelInfo>,
}

/// Bytes of pooled rows a band aims to keep.
const BAND_TARGET_BYTES: usize = 256 * 1024;

impl PoolProjection {
    /// Creates the operator: `pool`, then the 1x1 `proj` (OHWI `[out][in]`, optional bias
    /// `[out]`) and `epilogue`, on the best ISA allowed.
    ///
    /// # Errors
    ///
    /// As [`MaxPool2d::new`] for `pool` and [`Conv1x1::new`](crate::Conv1x1::new) for the
    /// projection (messages say `pool projection`).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, PoolProjection};
    ///
    /// let proj = ConvParams { weights: &[0.5; 3 * 4], bias: Some(&[0.0; 3]) };
    /// assert!(PoolProjection::new(&MaxPool2dDesc::INCEPTION, 4, 3, proj, Epilogue::Relu).is_ok());
    /// // 4 inputs x 3 outputs need 12 weights.
    /// let short = ConvParams { weights: &[0.5; 11], bias: None };
    /// assert!(PoolProjection::new(&MaxPool2dDesc::INCEPTION, 4, 3, short, Epilogue::Relu).is_err());
    /// ```
    pub fn new(
        pool: &MaxPool2dDesc,
        in_channels: usize,
        out_channels: usize,
        proj: ConvParams<'_>,
        epilogue: Epilogue,
    ) -> Result<Self> {
        Self::with_options(
            pool,
            in_channels,
            out_channels,
            proj,
            epilogue,
            OpOptions::default(),
        )
    }

    /// Like [`PoolProjection::new`], with options (e.g. an ISA cap).
    ///
    /// # Errors
    ///
    /// As [`PoolProjection::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, Isa, MaxPool2dDesc, OpOptions, PoolProjection};
    ///
    /// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let op = PoolProjection::with_options(
    ///     &MaxPool2dDesc::INCEPTION,
    ///     2,
    ///     1,
    ///     proj,
    ///     Epilogue::None,
    ///     options,
    /// )?;
    /// assert_eq!(op.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(
        pool: &MaxPool2dDesc,
        in_channels: usize,
        out_channels: usize,
        proj: ConvParams<'_>,
        epilogue: Epilogue,
        options: OpOptions,
    ) -> Result<Self> {
        let desc = *pool;
        let pool = MaxPool2d::with_options(pool, options)?;
        let proj = ConvCore::new(
            "pool projection",
            in_channels,
            out_channels,
            1,
            proj.weights,
            proj.bias,
            epilogue,
            options,
        )?;
        let pooling = interleaving(
            "pool projection",
            &desc,
            in_channels,
            proj.isa,
            options.pool_schedule,
        )?;
        Ok(PoolProjection {
            pool,
            proj,
            pooling,
        })
    }

    /// The schedule this operator runs: [`PoolSchedule::Separate`] or
    /// [`PoolSchedule::Interleaved`] ([`PoolSchedule::Auto`] resolved for this CPU).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, PoolProjection, PoolSchedule};
    ///
    /// // 15 channels cannot be interleaved (not a multiple of 16): Auto runs them separately.
    /// let proj = ConvParams { weights: &[1.0; 15], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 15, 1, proj, Epilogue::None)?;
    /// assert_eq!(op.pool_schedule(), PoolSchedule::Separate);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn pool_schedule(&self) -> PoolSchedule {
        match self.pooling {
            Some(_) => PoolSchedule::Interleaved,
            None => PoolSchedule::Separate,
        }
    }

    /// Whether `self` and `other` run on the same packed weights: true for an operator and its
    /// clones, false for operators created separately (even from equal weights).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, PoolProjection};
    ///
    /// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 2, 1, proj, Epilogue::None)?;
    /// assert!(op.clone().shares_weights_with(&op));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        self.proj.shares_weights_with(&other.proj)
    }

    /// The ISA this operator runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, ConvParams, Epilogue, MaxPool2dDesc, PoolProjection};
    ///
    /// let proj = ConvParams { weights: &[1.0; 4], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 4, 1, proj, Epilogue::Relu)?;
    /// // The best ISA this CPU has, unless INCEPT_MAX_ISA caps it.
    /// assert!(isa::available().contains(&op.isa()));
    /// assert_eq!(op.isa(), isa::resolve(None)?);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.proj.isa
    }

    /// Output shape for `input`: the pool's output size, `out_channels` channels.
    ///
    /// # Errors
    ///
    /// As [`MaxPool2d::output_shape`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, Nhwc, PoolProjection};
    ///
    /// // Pool 3x3 "same", then project 2 channels to 1: channel 0 minus channel 1.
    /// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 2, 1, proj, Epilogue::None)?;
    /// assert_eq!(op.output_shape(Nhwc::new(1, 14, 14, 2))?, Nhwc::new(1, 14, 14, 1));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        Ok(Nhwc {
            c: self.proj.out_channels,
            ..self.pool.output_shape(input)?
        })
    }

    /// Output rows per band for output width `ow`.
    fn band(&self, ow: usize) -> usize {
        (BAND_TARGET_BYTES
            / ow.saturating_mul(self.proj.in_channels)
                .saturating_mul(4)
                .max(1))
        .clamp(1, 64)
    }

    /// Peak scratch per thread, in bytes, for output width `ow` (independent of the height).
    /// It comes from incept's per-thread scratch cache (see the crate docs, "Scratch memory").
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, PoolProjection};
    ///
    /// // Pool 3x3 "same", then project 2 channels to 1: channel 0 minus channel 1.
    /// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 2, 1, proj, Epilogue::None)?;
    /// // A band of pooled rows of 28 pixels x 2 channels of f32.
    /// let bytes = op.scratch_bytes_per_thread(28);
    /// assert_eq!(bytes % (28 * 2 * 4), 0);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn scratch_bytes_per_thread(&self, ow: usize) -> usize {
        self.scratch_len(ow)
            .saturating_mul(std::mem::size_of::<f32>())
    }

    /// Scratch floats per thread: a band of pooled rows (and, interleaved, at least two tiles).
    fn scratch_len(&self, ow: usize) -> usize {
        let band = self.band(ow).saturating_mul(ow);
        let tiles = interleaved_scratch_pixels(self.pooling);
        band.max(tiles).saturating_mul(self.proj.in_channels)
    }

    /// Pools and projects. Either view may be a channel slice of a wider tensor. After the first
    /// run on a thread, allocates nothing. Bit-identical for every [`Parallelism`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the channels are not the operator's or the output shape
    /// is not [`PoolProjection::output_shape`] of the input; as `output_shape` if the window
    /// does not fit. Nothing is written then.
    ///
    /// # Examples
    ///
    /// Writing the projection into the last channel of a wider output, as the Inception
    /// module's pool branch does:
    ///
    /// ```
    /// use incept::{ConvParams, Epilogue, MaxPool2dDesc, Nhwc, Parallelism, PoolProjection};
    /// use incept::{TensorView, TensorViewMut};
    ///
    /// // Pool 3x3 "same", then project 2 channels to 1: channel 0 minus channel 1.
    /// let proj = ConvParams { weights: &[1.0, -1.0], bias: None };
    /// let op = PoolProjection::new(&MaxPool2dDesc::INCEPTION, 2, 1, proj, Epilogue::None)?;
    /// let x = [1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 10.0];
    /// let mut y = [7.0; 2 * 2 * 3];
    /// let input = TensorView::new(&x, Nhwc::new(1, 2, 2, 2))?;
    /// let mut last = TensorViewMut::with_layout(&mut y, Nhwc::new(1, 2, 2, 1), 3, 2)?;
    /// op.run(&input, &mut last, Parallelism::Global)?;
    /// assert_eq!(y, [7.0, 7.0, -6.0, 7.0, 7.0, -6.0, 7.0, 7.0, -6.0, 7.0, 7.0, -6.0]);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        self.proj.check_channels(ishape.c, oshape.c)?;
        let expected = self.output_shape(ishape)?;
        if oshape != expected {
            return Err(mismatch(format!(
                "pool projection output shape {oshape} does not match the expected {expected}"
            )));
        }
        let (oh, ow, cin) = (oshape.h, oshape.w, ishape.c);
        let rows_total = oshape.n * oh;
        let macs = oshape.pixels().saturating_mul(cin).saturating_mul(oshape.c);
        let chunk_rows = chunk_rows(par, oshape.n, rows_total, 1, macs);
        let band = self.band(ow);
        let out_ps = output.pixel_stride();
        let src = Source {
            data: input.data(),
            shape: ishape,
            pixel_stride: input.pixel_stride(),
            offset: input.offset(),
        };
        for_each_output_chunk(
            par,
            output.spanned_mut(),
            out_ps,
            chunk_rows * ow,
            |first, c| {
                let (g0, g1) = (first / ow, (first / ow + chunk_rows).min(rows_total));
                with_scratch(self.scratch_len(ow), |pooled| {
                    if let Some(pooling) = self.pooling {
                        // The whole chunk at once: its scratch is two tiles, whatever the rows.
                        let (op, proj, c0) =
                            ("pool projection", &self.proj, (g0 * ow - first) * out_ps);
                        let (src, rows) = (&src, g0..g1);
                        if pool_project_interleaved(
                            op, proj, pooling, src, rows, pooled, c, c0, out_ps,
                        )? {
                            return Ok(());
                        }
                        // A NaN in the chunk's input: recompute it with the exact pool.
                    }
                    for g in (g0..g1).step_by(band) {
                        let rows = g..(g + band).min(g1);
                        let count = rows.len() * ow;
                        let c0 = (g * ow - first) * out_ps;
                        let dest = Dest {
                            first_pixel: g * ow,
                            pixel_stride: cin,
                            channel_offset: 0,
                        };
                        self.pool
                            .pool_rows(&src, 0, (oh, ow), rows, pooled, &dest)?;
                        self.proj.run_line(
                            "pool projection",
                            &ONE_TAP_SET,
                            pooled,
                            0,
                            cin,
                            c,
                            c0,
                            out_ps,
                            count,
                            self.proj.all_blocks(),
                        )?;
                    }
                    Ok(())
                })
            },
        )
    }
}

/// The pooling tile kernel a fused pool -> projection of `channels` channels runs with on
/// `isa`, if `schedule` (resolved for this CPU) interleaves (see [`PoolSchedule`]).
pub(crate) fn interleaving(
    op: &str,
    pool: &MaxPool2dDesc,
    channels: usize,
    isa: Isa,
    schedule: PoolSchedule,
) -> Result<Option<&'static PoolingKernelInfo>> {
    let kernel = pooling_kernel(isa.kernel_isa());
    let p = pool.padding;
    let possible = pool.kernel == [3, 3]
        && pool.stride == [1, 1]
        && [p.top, p.left, p.bottom, p.right] == [1; 4]
        && channels.is_multiple_of(POOLED_CHANNEL_MULTIPLE);
    match (schedule, kernel) {
        (PoolSchedule::Separate, _) => Ok(None),
        (PoolSchedule::Auto, kernel) => Ok(kernel.filter(|_| possible && max_runs_beside_fma())),
        (PoolSchedule::Interleaved, Some(kernel)) if possible => Ok(Some(kernel)),
        (PoolSchedule::Interleaved, _) => {
            let ([kh, kw], [sh, sw]) = (pool.kernel, pool.stride);
            Err(invalid(format!(
                "{op}: the interleaved pool schedule needs AVX-512, a 3x3 stride-1 pool padded by 1 on \
                 every side and input channels a multiple of {POOLED_CHANNEL_MULTIPLE}; got ISA \
                 {isa}, a {kh}x{kw} pool with stride {sh},{sw} and padding {},{},{},{} (top, \
                 left, bottom, right), {channels} channels",
                p.top, p.left, p.bottom, p.right
            )))
        }
    }
}

/// Pixels of scratch [`pool_project_interleaved`] needs: two tiles (none if not interleaved).
pub(crate) fn interleaved_scratch_pixels(pooling: Option<&PoolingKernelInfo>) -> usize {
    pooling.map_or(0, |k| 2 * k.tile.mr.min(MAX_POOLED_PIXELS))
}

/// The interleaved schedule: pools (3x3, stride 1, padded by 1) and projects the output rows
/// `rows` (global `n*h + y`) of `src`, tile by tile, each tile's projection pooling the next
/// tile into the other half of `scratch` (at least [`interleaved_scratch_pixels`] times the
/// channels). Writes row `rows.start`, pixel 0 at `c[c_offset]`, pixels `out_ps` apart.
/// Returns whether no NaN was seen; if one was, the outputs are unspecified and the caller
/// recomputes the rows with the exact (separate) pool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pool_project_interleaved(
    op: &str,
    proj: &ConvCore,
    pooling: &PoolingKernelInfo,
    src: &Source<'_>,
    rows: Range<usize>,
    scratch: &mut [f32],
    c: &mut [f32],
    c_offset: usize,
    out_ps: usize,
) -> Result<bool> {
    let Nhwc {
        n,
        h,
        w,
        c: channels,
    } = src.shape;
    let input = PoolInput {
        data: src.data,
        offset: src.offset,
        images: n,
        h,
        w,
        pixel_stride: src.pixel_stride,
        channels,
    };
    let out = ProjectionOutput {
        data: c,
        offset: c_offset,
        pixel_stride: out_ps,
    };
    let pixels = rows.start * w..rows.end * w;
    proj.pool_project(op, pooling, &input, pixels, scratch, out)
}
