//! The fused bottleneck: a 1x1 reduction followed by a KxK convolution, without materialising
//! the reduced tensor.
//!
//! Each task owns a range of output rows and walks it in *bands*. For a band it needs the
//! reduced activations of the input rows its windows cover (the band plus a `K-1` halo); those
//! rows live in a per-thread scratch of a few rows that stays in L1/L2. Moving to the next band
//! keeps the rows both bands share (copied to the front of the scratch), so within a task every
//! reduced row is computed once; only rows at task boundaries are computed by both neighbours.
//! Both stages have their own bias and epilogue.

use super::conv2d::{Dest, Engine, Source, MAX_KERNEL};
use super::window::{Padding, Window};
use super::{with_scratch, ConvCore, Epilogue, OpOptions, ONE_TAP_SET};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{mismatch, Error, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_rows, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Describes a bottleneck: 1x1 `in_channels -> reduce_channels`, then `kernel x kernel`
/// `reduce_channels -> out_channels` with `stride` and `padding`.
///
/// # Examples
///
/// ```
/// use incept::{BottleneckDesc, Epilogue, Padding};
///
/// // A strided 3x3 without an activation after the reduction.
/// let desc = BottleneckDesc {
///     stride: 2,
///     padding: Padding { top: 0, left: 0, bottom: 1, right: 1 },
///     reduce_epilogue: Epilogue::None,
///     ..BottleneckDesc::same_relu(64, 16, 32, 3)
/// };
/// assert_eq!(desc.epilogue, Epilogue::Relu);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BottleneckDesc {
    /// Input channels of the 1x1 reduction.
    pub in_channels: usize,
    /// Output channels of the reduction = input channels of the KxK convolution.
    pub reduce_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// KxK kernel side.
    pub kernel: usize,
    /// KxK stride.
    pub stride: usize,
    /// KxK padding.
    pub padding: Padding,
    /// Epilogue of the reduction.
    pub reduce_epilogue: Epilogue,
    /// Epilogue of the KxK convolution.
    pub epilogue: Epilogue,
}

impl BottleneckDesc {
    /// GoogLeNet style: stride 1, "same" padding, ReLU after both stages.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{BottleneckDesc, Epilogue, Padding};
    ///
    /// // GoogLeNet 3a's 5x5 branch: 192 -> 16 -> 32.
    /// let desc = BottleneckDesc::same_relu(192, 16, 32, 5);
    /// assert_eq!((desc.stride, desc.padding), (1, Padding::uniform(2)));
    /// assert_eq!((desc.reduce_epilogue, desc.epilogue), (Epilogue::Relu, Epilogue::Relu));
    /// ```
    pub fn same_relu(
        in_channels: usize,
        reduce_channels: usize,
        out_channels: usize,
        kernel: usize,
    ) -> Self {
        BottleneckDesc {
            in_channels,
            reduce_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: Padding::same(kernel),
            reduce_epilogue: Epilogue::Relu,
            epilogue: Epilogue::Relu,
        }
    }
}

/// Weights of a bottleneck, OHWI: the reduction `[reduce][in]` and the KxK conv
/// `[out][k][k][reduce]`, each with an optional bias. Borrowed only while the operator is
/// created (the weights are packed into it).
///
/// # Examples
///
/// ```
/// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights};
///
/// let desc = BottleneckDesc::same_relu(8, 4, 2, 3);
/// let (reduce, conv) = (vec![0.1; 4 * 8], vec![0.1; 2 * 3 * 3 * 4]);
/// let weights = BottleneckWeights {
///     reduce: &reduce,
///     reduce_bias: Some(&[0.0; 4]),
///     conv: &conv,
///     conv_bias: None,
/// };
/// let bottleneck = Bottleneck::new(&desc, &weights)?;
/// drop((reduce, conv)); // the operator keeps its own packed copy
/// assert_eq!(bottleneck.desc().out_channels, 2);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct BottleneckWeights<'a> {
    /// 1x1 weights, `reduce_channels x in_channels`.
    pub reduce: &'a [f32],
    /// 1x1 bias, `reduce_channels`.
    pub reduce_bias: Option<&'a [f32]>,
    /// KxK weights, `out_channels x kernel x kernel x reduce_channels`.
    pub conv: &'a [f32],
    /// KxK bias, `out_channels`.
    pub conv_bias: Option<&'a [f32]>,
}

/// A fused 1x1 -> KxK convolution: the reduced tensor is never written out. Each thread keeps
/// a band of reduced rows in its scratch ([`Bottleneck::scratch_bytes_per_thread`]) and the KxK
/// convolution reads them from there. The result is the same as a [`Conv1x1`](crate::Conv1x1)
/// followed by a [`Conv2d`](crate::Conv2d) on the same ISA.
///
/// # Examples
///
/// ```
/// use incept::{
///     Bottleneck, BottleneckDesc, BottleneckWeights, Nhwc, Parallelism, TensorView, TensorViewMut,
/// };
///
/// // 2 channels summed into 1 (ReLU), then a 3x3 box sum (ReLU), "same" padding.
/// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
/// let weights = BottleneckWeights {
///     reduce: &[1.0, 1.0],
///     reduce_bias: None,
///     conv: &[1.0; 9],
///     conv_bias: None,
/// };
/// let bottleneck = Bottleneck::new(&desc, &weights)?;
/// let x = [1.0; 3 * 3 * 2];
/// let mut y = [0.0; 3 * 3];
/// bottleneck.run(
///     &TensorView::new(&x, Nhwc::new(1, 3, 3, 2))?,
///     &mut TensorViewMut::new(&mut y, Nhwc::new(1, 3, 3, 1))?,
///     Parallelism::Sequential,
/// )?;
/// // Every reduced value is 2; the 3x3 sums 4, 6 or 9 of them.
/// assert_eq!(y, [8.0, 12.0, 8.0, 12.0, 18.0, 12.0, 8.0, 12.0, 8.0]);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `Bottleneck` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Bottleneck::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct Bottleneck {
    desc: BottleneckDesc,
    reduce: ConvCore,
    /// Direct or Winograd (a 3x3 or 5x5 stride 1, as the options choose).
    conv: Engine,
    window: Window,
}

/// Bytes of reduced rows a band aims to keep: comfortably inside L2.
const BAND_TARGET_BYTES: usize = 96 * 1024;

impl Bottleneck {
    /// Creates the operator on the best ISA allowed: validates both stages and packs their
    /// weights.
    ///
    /// # Errors
    ///
    /// As [`Conv2d::new`](crate::Conv2d::new), for each stage; messages name the stage
    /// (`bottleneck reduction`, `bottleneck conv`).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights, ErrorKind};
    ///
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let short = BottleneckWeights {
    ///     reduce: &[1.0, 1.0],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 8],
    ///     conv_bias: None,
    /// };
    /// let err = Bottleneck::new(&desc, &short).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
    /// assert!(err.message().starts_with("bottleneck conv weights"));
    /// ```
    pub fn new(desc: &BottleneckDesc, weights: &BottleneckWeights<'_>) -> Result<Self> {
        Self::with_options(desc, weights, OpOptions::default())
    }

    /// Like [`Bottleneck::new`], with options (e.g. an ISA cap).
    ///
    /// # Errors
    ///
    /// As [`Bottleneck::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights, Isa, OpOptions};
    ///
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[1.0, 1.0],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 9],
    ///     conv_bias: None,
    /// };
    /// let scalar =
    ///     Bottleneck::with_options(&desc, &weights, OpOptions::with_max_isa(Some(Isa::Scalar)))?;
    /// assert_eq!(scalar.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(
        desc: &BottleneckDesc,
        weights: &BottleneckWeights<'_>,
        options: OpOptions,
    ) -> Result<Self> {
        let window = Window::new(
            "bottleneck",
            desc.kernel,
            desc.stride,
            desc.padding,
            MAX_KERNEL,
        )?;
        let reduce = ConvCore::new(
            "bottleneck reduction",
            desc.in_channels,
            desc.reduce_channels,
            1,
            weights.reduce,
            weights.reduce_bias,
            desc.reduce_epilogue,
            options,
        )?;
        let conv = Engine::new(
            "bottleneck conv",
            (desc.reduce_channels, desc.out_channels),
            &window,
            weights.conv,
            weights.conv_bias,
            desc.epilogue,
            options,
        )?;
        Ok(Bottleneck {
            desc: *desc,
            reduce,
            conv,
            window,
        })
    }

    /// The descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights};
    ///
    /// let desc = BottleneckDesc::same_relu(4, 2, 3, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[0.0; 2 * 4],
    ///     reduce_bias: None,
    ///     conv: &[0.0; 3 * 9 * 2],
    ///     conv_bias: None,
    /// };
    /// let op = Bottleneck::new(&desc, &weights)?;
    /// assert_eq!(op.desc(), &desc);
    /// assert_eq!((op.desc().reduce_channels, op.desc().out_channels), (2, 3));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn desc(&self) -> &BottleneckDesc {
        &self.desc
    }

    /// Whether `self` and `other` run on the same packed weights: true for an operator and its
    /// clones, false for operators created separately (even from equal weights).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights};
    ///
    /// // 2 -> 1 -> 1 channels, 3x3.
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[1.0, 1.0],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 9],
    ///     conv_bias: None,
    /// };
    /// let op = Bottleneck::new(&desc, &weights)?;
    /// assert!(op.clone().shares_weights_with(&op));
    /// assert!(!Bottleneck::new(&desc, &weights)?.shares_weights_with(&op));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        self.reduce.shares_weights_with(&other.reduce) && self.conv.shares_weights_with(&other.conv)
    }

    /// The ISA this operator runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, Bottleneck, BottleneckDesc, BottleneckWeights};
    ///
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[1.0; 2],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 9],
    ///     conv_bias: None,
    /// };
    /// let op = Bottleneck::new(&desc, &weights)?;
    /// // The best ISA this CPU has, unless INCEPT_MAX_ISA caps it.
    /// assert!(isa::available().contains(&op.isa()));
    /// assert_eq!(op.isa(), isa::resolve(None)?);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.conv.core().isa
    }

    /// Output shape for `input`: the KxK convolution's output size, `out_channels` channels.
    ///
    /// # Errors
    ///
    /// As [`Conv2d::output_shape`](crate::Conv2d::output_shape).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights, Nhwc};
    ///
    /// // 2 channels summed into 1 (ReLU), then a 3x3 box sum (ReLU), "same" padding.
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[1.0, 1.0],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 9],
    ///     conv_bias: None,
    /// };
    /// let bottleneck = Bottleneck::new(&desc, &weights)?;
    /// assert_eq!(bottleneck.output_shape(Nhwc::new(4, 28, 28, 2))?, Nhwc::new(4, 28, 28, 1));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        let (h, w) = self.window.output_size("bottleneck", input)?;
        Ok(Nhwc::new(input.n, h, w, self.desc.out_channels))
    }

    /// Output rows per band for an input of width `w`, and the input rows such a band needs.
    ///
    /// With Winograd the band is whole tile rows, enough tiles for the GEMMs to reuse each
    /// packed filter transform, and its rows include the slack a task starting inside a tile row
    /// needs (up to 3 rows above and below).
    fn band(&self, w: usize) -> (usize, usize) {
        let (k, s) = (self.desc.kernel, self.desc.stride);
        if let Some(wino) = self.conv.winograd() {
            let band = wino.fused_band_rows(w);
            return (band, band + k - 1 + 6);
        }
        let row_bytes = w
            .saturating_mul(self.desc.reduce_channels)
            .saturating_mul(4);
        let rows = (BAND_TARGET_BYTES / row_bytes.max(1)).max(k);
        let band = ((rows - k) / s + 1).clamp(1, 64);
        (band, (band - 1) * s + k)
    }

    /// Peak scratch per thread, in bytes, for an input of `input` shape: a band of reduced rows,
    /// independent of the image height. It comes from incept's per-thread scratch cache (see
    /// the crate docs, "Scratch memory"); a run uses at most this much per thread taking part.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Bottleneck, BottleneckDesc, BottleneckWeights, Nhwc};
    ///
    /// // 2 channels summed into 1 (ReLU), then a 3x3 box sum (ReLU), "same" padding.
    /// let desc = BottleneckDesc::same_relu(2, 1, 1, 3);
    /// let weights = BottleneckWeights {
    ///     reduce: &[1.0, 1.0],
    ///     reduce_bias: None,
    ///     conv: &[1.0; 9],
    ///     conv_bias: None,
    /// };
    /// let bottleneck = Bottleneck::new(&desc, &weights)?;
    /// let bytes = bottleneck.scratch_bytes_per_thread(Nhwc::new(1, 28, 28, 2));
    /// assert!(bytes > 0);
    /// assert_eq!(bytes, bottleneck.scratch_bytes_per_thread(Nhwc::new(8, 1000, 28, 2)));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn scratch_bytes_per_thread(&self, input: Nhwc) -> usize {
        let (_, band_rows) = self.band(input.w);
        let winograd = match &self.conv {
            Engine::Winograd(wino) => self
                .output_shape(input)
                .map_or(0, |out| wino.scratch_bytes(out.w)),
            Engine::Direct(_) => 0,
        };
        [
            input.w,
            self.desc.reduce_channels,
            std::mem::size_of::<f32>(),
        ]
        .iter()
        .fold(band_rows, |acc, &x| acc.saturating_mul(x))
        .saturating_add(winograd)
    }

    /// Computes the bottleneck. Either view may be a channel slice of a wider tensor. After the
    /// first run on a thread, allocates nothing. Bit-identical for every [`Parallelism`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the channels are not the operator's or the output shape
    /// is not [`Bottleneck::output_shape`] of the input; as `output_shape` if the window does
    /// not fit. Nothing is written then.
    ///
    /// # Examples
    ///
    /// The fused operator gives the bits of its two stages run one after the other:
    ///
    /// ```
    /// use incept::{
    ///     Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc, Epilogue,
    /// };
    /// use incept::{Isa, Nhwc, OpOptions, Parallelism, TensorView, TensorViewMut};
    ///
    /// let desc = BottleneckDesc::same_relu(3, 2, 2, 3);
    /// let reduce: Vec<f32> = (0..2 * 3).map(|i| (i % 3) as f32 - 1.0).collect();
    /// let conv: Vec<f32> = (0..2 * 9 * 2).map(|i| (i % 5) as f32 - 2.0).collect();
    /// let w = BottleneckWeights { reduce: &reduce, reduce_bias: None, conv: &conv, conv_bias: None };
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let fused = Bottleneck::with_options(&desc, &w, options)?;
    ///
    /// let shape = Nhwc::new(1, 5, 4, 3);
    /// let x: Vec<f32> = (0..shape.element_count()?).map(|i| (i % 4) as f32).collect();
    /// let input = TensorView::new(&x, shape)?;
    /// let out = fused.output_shape(shape)?;
    /// let mut y = vec![0.0; out.element_count()?];
    /// fused.run(&input, &mut TensorViewMut::new(&mut y, out)?, Parallelism::Global)?;
    ///
    /// let first = Conv1x1::with_options(3, 2, &reduce, None, Epilogue::Relu, options)?;
    /// let second =
    ///     Conv2d::with_options(&Conv2dDesc::same(2, 2, 3, Epilogue::Relu), &conv, None, options)?;
    /// let mid_shape = Nhwc { c: 2, ..shape };
    /// let mut mid = vec![0.0; mid_shape.element_count()?];
    /// first.run(&input, &mut TensorViewMut::new(&mut mid, mid_shape)?, Parallelism::Sequential)?;
    /// let mut z = vec![0.0; out.element_count()?];
    /// second.run(
    ///     &TensorView::new(&mid, mid_shape)?,
    ///     &mut TensorViewMut::new(&mut z, out)?,
    ///     Parallelism::Sequential,
    /// )?;
    /// assert_eq!(y, z);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        self.reduce
            .check_channels(ishape.c, self.desc.reduce_channels)?;
        self.conv
            .core()
            .check_channels(self.desc.reduce_channels, oshape.c)?;
        let expected = self.output_shape(ishape)?;
        if oshape != expected {
            return Err(mismatch(format!(
                "bottleneck output shape {oshape} does not match the expected {expected}"
            )));
        }
        let (k, s, pad) = (self.desc.kernel, self.desc.stride, self.desc.padding);
        let (oh, ow) = (oshape.h, oshape.w);
        let (h, w, r) = (ishape.h, ishape.w, self.desc.reduce_channels);
        let rows_total = oshape.n * oh;
        let work = oshape.pixels().saturating_mul(k * k * r * oshape.c);
        // Winograd tasks own whole tile rows where they can (4 rows suit both tile sizes).
        let winograd = self.conv.winograd();
        let chunk_rows = chunk_rows(
            par,
            oshape.n,
            rows_total,
            if winograd.is_some() { 4 } else { 1 },
            work,
        );
        let (band, band_rows) = self.band(w);
        let scratch_len = band_rows * w * r;
        let out_ps = output.pixel_stride();
        let (a, a_ps) = (input.data(), input.pixel_stride());
        // Input rows the output rows `y0..y1` read: `lo..hi`, clipped to the image.
        // With Winograd, the 6 input rows of every tile row the outputs touch.
        let needed = |y0: usize, y1: usize| {
            if let Some(wino) = winograd {
                return wino.input_rows((y0, y1), h);
            }
            (
                (y0 * s).saturating_sub(pad.top),
                ((y1 - 1) * s + k - pad.top).min(h),
            )
        };

        for_each_output_chunk(
            par,
            output.spanned_mut(),
            out_ps,
            chunk_rows * ow,
            |first, c| {
                let g0 = first / ow;
                let g1 = (g0 + chunk_rows).min(rows_total);
                with_scratch(scratch_len, |scratch| {
                    // Reduced rows currently held: image `held.0`, rows `held.1..held.2`.
                    let mut held: Option<(usize, usize, usize)> = None;
                    let mut g = g0;
                    while g < g1 {
                        // A band never crosses an image boundary.
                        let n = g / oh;
                        let y0 = g - n * oh;
                        // Winograd bands end on tile-row boundaries.
                        let start = winograd.map_or(y0, |wino| y0 - y0 % wino.tile());
                        let y1 = (start + band).min(oh).min(g1 - n * oh);
                        let (lo, hi) = needed(y0, y1);
                        // Keep the rows shared with the previous band, compute the rest.
                        let mut ready = lo;
                        if let Some((hn, hlo, hhi)) = held {
                            if hn == n && hlo <= lo && lo < hhi {
                                scratch.copy_within((lo - hlo) * w * r..(hhi - hlo) * w * r, 0);
                                ready = hhi;
                            }
                        }
                        if ready < hi {
                            let a0 = input.index(n, ready, 0, 0);
                            let c0 = (ready - lo) * w * r;
                            self.reduce.run_line(
                                "bottleneck",
                                &ONE_TAP_SET,
                                a,
                                a0,
                                a_ps,
                                scratch,
                                c0,
                                r,
                                (hi - ready) * w,
                                self.reduce.all_blocks(),
                            )?;
                        }
                        held = Some((n, lo, hi));
                        let src = Source {
                            data: scratch,
                            shape: Nhwc::new(ishape.n, h, w, r),
                            pixel_stride: r,
                            offset: 0,
                        };
                        let dest = Dest {
                            first_pixel: first,
                            pixel_stride: out_ps,
                            channel_offset: 0,
                        };
                        // `conv_rows` indexes the scratch from image `n`'s row `lo`: shift by the
                        // rows of the images before `n`.
                        self.conv.run_rows(
                            "bottleneck",
                            &self.window,
                            &src,
                            n * h + lo,
                            (oh, ow),
                            g..n * oh + y1,
                            c,
                            &dest,
                        )?;
                        g = n * oh + y1;
                    }
                    Ok::<(), Error>(())
                })
            },
        )
    }
}
