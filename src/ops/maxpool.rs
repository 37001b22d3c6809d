//! Max-pool in NHWC, vectorised over channels on every ISA.
//!
//! Padding never wins: each output is the maximum over the valid part of its window (the same
//! border rectangles as the direct convolution). NaN propagates: a window holding a NaN gives a
//! NaN (payload unspecified), as in PyTorch. Infinities compare as IEEE says. When +0.0 and
//! -0.0 tie for a window's maximum, which of them it returns is unspecified (the ISAs differ).

use incept_kernels::pool::{pool_kernel, run_pool_line, PoolKernelInfo, PoolLine};
use incept_kernels::IsaToken;

use super::conv2d::{Dest, Source};
use super::tile_error;
use super::window::{Padding, Window};
use crate::error::{mismatch, Error, ErrorKind, Result};
use crate::isa::{self, Isa};
use crate::ops::OpOptions;
use crate::parallel::{chunk_rows, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Bytes of input rows (one window's rows x one channel group) a pass keeps in L1.
const L1_WINDOW_BYTES: usize = 24 * 1024;

/// Largest pooling window side.
pub const MAX_POOL_KERNEL: usize = 64;

/// Describes a max-pool: a `kernel[0] x kernel[1]` window (rows x columns, as ONNX's
/// `kernel_shape`), a stride per axis (as ONNX's `strides`) and per-side padding.
///
/// # Examples
///
/// ```
/// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc, Padding};
///
/// // GoogLeNet's between-stage pool: 3x3, stride 2, ceil-mode emulated with bottom/right padding.
/// let desc = MaxPool2dDesc::square(3, 2, Padding { top: 0, left: 0, bottom: 1, right: 1 });
/// let pool = MaxPool2d::new(&desc)?;
/// assert_eq!(pool.output_shape(Nhwc::new(1, 28, 28, 480))?, Nhwc::new(1, 14, 14, 480));
///
/// // A 1x2 window moving 1 row and 2 columns: halves the width only.
/// let desc = MaxPool2dDesc { kernel: [1, 2], stride: [1, 2], padding: Padding::default() };
/// let pool = MaxPool2d::new(&desc)?;
/// assert_eq!(pool.output_shape(Nhwc::new(1, 8, 8, 16))?, Nhwc::new(1, 8, 4, 16));
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2dDesc {
    /// Window rows and columns (height, width), each in `1..=64`.
    pub kernel: [usize; 2],
    /// Stride down the rows and along the columns, each at least 1.
    pub stride: [usize; 2],
    /// Padding: top and bottom less than the window's height, left and right less than its
    /// width. Padded positions never win.
    pub padding: Padding,
}

impl MaxPool2dDesc {
    /// GoogLeNet's module pool: 3x3, stride 1, padding 1 ("same").
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc};
    ///
    /// let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?;
    /// let shape = Nhwc::new(1, 28, 28, 192);
    /// assert_eq!(pool.output_shape(shape)?, shape);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub const INCEPTION: MaxPool2dDesc = MaxPool2dDesc::square(3, 1, Padding::uniform(1));

    /// A square `kernel x kernel` window moving `stride` rows and columns.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{MaxPool2dDesc, Padding};
    ///
    /// let desc = MaxPool2dDesc::square(3, 2, Padding::default());
    /// assert_eq!((desc.kernel, desc.stride), ([3, 3], [2, 2]));
    /// ```
    pub const fn square(kernel: usize, stride: usize, padding: Padding) -> Self {
        MaxPool2dDesc {
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding,
        }
    }
}

/// A max-pool operator. It has no weights; creating it picks the ISA.
///
/// # Examples
///
/// ```
/// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc, Padding, Parallelism, TensorView, TensorViewMut};
///
/// // 2x2 windows, stride 2, on a 2x4 image of one channel.
/// let pool =
///     MaxPool2d::new(&MaxPool2dDesc::square(2, 2, Padding::default()))?;
/// let x = [
///     1.0, 5.0, -1.0, -2.0,
///     3.0, 2.0, -3.0, -4.0,
/// ];
/// let mut y = [0.0; 2];
/// pool.run(
///     &TensorView::new(&x, Nhwc::new(1, 2, 4, 1))?,
///     &mut TensorViewMut::new(&mut y, Nhwc::new(1, 1, 2, 1))?,
///     Parallelism::Sequential,
/// )?;
/// assert_eq!(y, [5.0, -1.0]);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `MaxPool2d` is `Send + Sync` and cheap to clone (a few words, no buffers).
#[derive(Clone, Debug)]
pub struct MaxPool2d {
    desc: MaxPool2dDesc,
    window: Window,
    isa: Isa,
    token: IsaToken,
    kernel: &'static PoolKernelInfo,
}

impl MaxPool2d {
    /// Creates the operator on the best ISA allowed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a window side outside `1..=MAX_POOL_KERNEL`, a zero
    /// stride, or a padding not less than the window's side along it;
    /// [`ErrorKind::UnsupportedIsa`] if a cap names an ISA this CPU lacks.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{MaxPool2d, MaxPool2dDesc, Padding};
    ///
    /// let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?;
    /// assert_eq!(pool.desc().kernel, [3, 3]);
    /// // Padding as wide as the window would make windows of padding only.
    /// let bad = MaxPool2dDesc::square(2, 1, Padding::uniform(2));
    /// assert!(MaxPool2d::new(&bad).is_err());
    /// // Left padding 1 needs a window at least 2 wide.
    /// let bad = MaxPool2dDesc { kernel: [3, 1], stride: [1, 1], padding: Padding::uniform(1) };
    /// let err = MaxPool2d::new(&bad).unwrap_err();
    /// assert!(err.to_string().contains("left padding 1 must be less than the kernel width 1"));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(desc: &MaxPool2dDesc) -> Result<Self> {
        Self::with_options(desc, OpOptions::default())
    }

    /// Like [`MaxPool2d::new`], with options (e.g. an ISA cap).
    ///
    /// # Errors
    ///
    /// As [`MaxPool2d::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Isa, MaxPool2d, MaxPool2dDesc, OpOptions};
    ///
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let pool = MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options)?;
    /// assert_eq!(pool.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(desc: &MaxPool2dDesc, options: OpOptions) -> Result<Self> {
        let window = Window::new_rect(
            "maxpool",
            desc.kernel,
            desc.stride,
            desc.padding,
            MAX_POOL_KERNEL,
        )?;
        let isa = isa::resolve(options.max_isa)?;
        let token = isa.token()?;
        let kernel = pool_kernel(isa.kernel_isa()).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedIsa,
                format!("no max-pool kernel for ISA {isa} in this build"),
            )
        })?;
        Ok(MaxPool2d {
            desc: *desc,
            window,
            isa,
            token,
            kernel,
        })
    }

    /// The descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{MaxPool2d, MaxPool2dDesc, Padding};
    ///
    /// let desc = MaxPool2dDesc::square(2, 2, Padding::default());
    /// let pool = MaxPool2d::new(&desc)?;
    /// assert_eq!(pool.desc(), &desc);
    /// assert_eq!(MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?.desc().stride, [1, 1]);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn desc(&self) -> &MaxPool2dDesc {
        &self.desc
    }

    /// The ISA this operator runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, MaxPool2d, MaxPool2dDesc};
    ///
    /// let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?;
    /// // The best ISA this CPU has, unless INCEPT_MAX_ISA caps it.
    /// assert!(isa::available().contains(&pool.isa()));
    /// assert_eq!(pool.isa(), isa::resolve(None)?);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Output shape for `input` (same channels), or an error if the padded input is smaller
    /// than the window.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] if the window does not fit the padded input;
    /// [`ErrorKind::Overflow`] if the padded size overflows `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc, Padding};
    ///
    /// let pool =
    ///     MaxPool2d::new(&MaxPool2dDesc::square(3, 2, Padding::default()))?;
    /// assert_eq!(pool.output_shape(Nhwc::new(1, 7, 7, 8))?, Nhwc::new(1, 3, 3, 8));
    /// assert!(pool.output_shape(Nhwc::new(1, 2, 2, 8)).is_err()); // smaller than the window
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        let (h, w) = self.window.output_size("maxpool", input)?;
        Ok(Nhwc::new(input.n, h, w, input.c))
    }

    /// Computes `output = maxpool(input)`. Either view may be a channel slice of a wider tensor.
    /// Allocates nothing. Bit-identical for every [`Parallelism`]. Padding never wins; a window
    /// holding a NaN gives NaN; which zero a tie of +0.0 and -0.0 gives is unspecified.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the output shape is not [`MaxPool2d::output_shape`] of
    /// the input; as `output_shape` if the window does not fit. Nothing is written then.
    ///
    /// # Examples
    ///
    /// "Same" pooling of channel 1 of a two-channel image into a one-channel output; padding
    /// never wins, even against negative values:
    ///
    /// ```
    /// use incept::{MaxPool2d, MaxPool2dDesc, Nhwc, Parallelism, TensorView, TensorViewMut};
    ///
    /// let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION)?;
    /// // A 1x3 image; channel 0 is ignored, channel 1 is pooled.
    /// let x = [0.0, -3.0, 0.0, -1.0, 0.0, -2.0];
    /// let input = TensorView::new(&x, Nhwc::new(1, 1, 3, 2))?.channels(1, 1)?;
    /// let mut y = [0.0; 3];
    /// pool.run(
    ///     &input,
    ///     &mut TensorViewMut::new(&mut y, Nhwc::new(1, 1, 3, 1))?,
    ///     Parallelism::Sequential,
    /// )?;
    /// assert_eq!(y, [-1.0, -1.0, -1.0]);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        let expected = self.output_shape(ishape)?;
        if oshape != expected {
            return Err(mismatch(format!(
                "maxpool output shape {oshape} does not match the expected {expected}"
            )));
        }
        let (oh, ow) = (oshape.h, oshape.w);
        let rows_total = oshape.n * oh;
        // Pooling is memory-bound: count a "multiply-add" per window element for the threshold.
        let work = oshape
            .pixels()
            .saturating_mul(self.desc.kernel[0] * self.desc.kernel[1])
            .saturating_mul(ishape.c);
        let chunk_rows = chunk_rows(par, oshape.n, rows_total, 1, work);
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
                let rows = first / ow..(first / ow + chunk_rows).min(rows_total);
                let dest = Dest {
                    first_pixel: first,
                    pixel_stride: out_ps,
                    channel_offset: 0,
                };
                self.pool_rows(&src, 0, (oh, ow), rows, c, &dest)
            },
        )
    }

    /// Pools the output rows `rows` (global `n*oh + y`) from `src` (rows from image row
    /// `first_row`, as in `conv_rows`) into the chunk `c` described by `dest`.
    pub(crate) fn pool_rows(
        &self,
        src: &Source<'_>,
        first_row: usize,
        (oh, ow): (usize, usize),
        rows: std::ops::Range<usize>,
        c: &mut [f32],
        dest: &Dest,
    ) -> Result<()> {
        let [stride_y, stride_x] = self.desc.stride;
        let [window_rows, window_cols] = self.desc.kernel;
        let in_ps = src.pixel_stride;
        let in_row = src.shape.w * in_ps;
        let channels = src.shape.c;
        // Channel groups outermost: a window's rows of one group fit in L1, so walking down the
        // output rows reads each input row from L2 once instead of once per window row.
        let group = (L1_WINDOW_BYTES / (window_rows * src.shape.w * 4).max(1) / 16 * 16)
            .clamp(16, channels.max(16));
        let pad = self.desc.padding;
        for g0 in (0..channels).step_by(group) {
            // Each run of output rows with the same valid window rows is one stack of whole
            // rows; the kernel skips the padding columns at both ends of each row.
            self.window
                .for_each_row_run(src.shape, oh, rows.clone(), |n, y0, y1, ky| {
                    let iy = y0 * stride_y + ky.0 - pad.top;
                    let stack = PoolLine {
                        lines: y1 - y0,
                        pixels: ow,
                        channels: group.min(channels - g0),
                        a_offset: src.offset + (n * src.shape.h + iy - first_row) * in_row + g0,
                        a_line_stride: stride_y.saturating_mul(in_row),
                        window_rows: ky.1 - ky.0,
                        window_cols,
                        a_row_stride: in_row,
                        a_col_stride: in_ps,
                        col_step: stride_x,
                        pad_left: pad.left,
                        in_cols: src.shape.w,
                        c_offset: ((n * oh + y0) * ow - dest.first_pixel) * dest.pixel_stride
                            + dest.channel_offset
                            + g0,
                        c_pixel_stride: dest.pixel_stride,
                        c_line_stride: ow * dest.pixel_stride,
                    };
                    run_pool_line(self.kernel, &stack, src.data, c, self.token)
                        .map_err(|e| tile_error("maxpool", e))
                })?;
        }
        Ok(())
    }
}
