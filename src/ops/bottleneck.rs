//! The fused bottleneck: a 1x1 reduction followed by a KxK convolution, without materialising
//! the reduced tensor.
//!
//! Each task owns a range of output rows and walks it in *bands*. For a band it needs the
//! reduced activations of the input rows its windows cover (the band plus a `K-1` halo); those
//! rows live in a per-thread scratch of a few rows that stays in L1/L2. Moving to the next band
//! keeps the rows both bands share (copied to the front of the scratch), so within a task every
//! reduced row is computed once; only rows at task boundaries are computed by both neighbours.
//! Both stages have their own bias and epilogue.

use incept_kernels::TapSet;

use super::conv2d::{conv_rows, Dest, Source, MAX_KERNEL};
use super::window::{Padding, Window};
use super::{with_scratch, ConvCore, Epilogue, OpOptions, ONE_TAP};
use crate::error::{mismatch, Error, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_pixels, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Describes a bottleneck: 1x1 `in_channels -> reduce_channels`, then `kernel x kernel`
/// `reduce_channels -> out_channels` with `stride` and `padding`.
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
/// `[out][k][k][reduce]`, each with an optional bias.
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

/// A fused 1x1 -> KxK convolution (see the module docs).
///
/// `Bottleneck` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Bottleneck::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct Bottleneck {
    desc: BottleneckDesc,
    reduce: ConvCore,
    conv: ConvCore,
    window: Window,
}

/// Bytes of reduced rows a band aims to keep: comfortably inside L2.
const BAND_TARGET_BYTES: usize = 96 * 1024;

impl Bottleneck {
    /// Creates the operator on the best ISA allowed.
    pub fn new(desc: &BottleneckDesc, weights: &BottleneckWeights<'_>) -> Result<Self> {
        Self::with_options(desc, weights, OpOptions::default())
    }

    /// Like [`Bottleneck::new`], with options (e.g. an ISA cap).
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
        let conv = ConvCore::new(
            "bottleneck conv",
            desc.reduce_channels,
            desc.out_channels,
            desc.kernel * desc.kernel,
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
    /// let weights = BottleneckWeights { reduce: &[1.0, 1.0], reduce_bias: None, conv: &[1.0; 9], conv_bias: None };
    /// let op = Bottleneck::new(&desc, &weights)?;
    /// assert!(op.clone().shares_weights_with(&op));
    /// assert!(!Bottleneck::new(&desc, &weights)?.shares_weights_with(&op));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        self.reduce.shares_weights_with(&other.reduce) && self.conv.shares_weights_with(&other.conv)
    }

    /// The ISA this operator runs on.
    pub fn isa(&self) -> Isa {
        self.conv.isa
    }

    /// Output shape for `input`.
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        let (h, w) = self.window.output_size("bottleneck", input)?;
        Ok(Nhwc::new(input.n, h, w, self.desc.out_channels))
    }

    /// Output rows per band for an input of width `w`, and the input rows such a band needs.
    fn band(&self, w: usize) -> (usize, usize) {
        let (k, s) = (self.desc.kernel, self.desc.stride);
        let row_bytes = w
            .saturating_mul(self.desc.reduce_channels)
            .saturating_mul(4);
        let rows = (BAND_TARGET_BYTES / row_bytes.max(1)).max(k);
        let band = ((rows - k) / s + 1).clamp(1, 64);
        (band, (band - 1) * s + k)
    }

    /// Peak scratch per thread, in bytes, for an input of `input` shape: a band of reduced rows,
    /// independent of the image height.
    pub fn scratch_bytes_per_thread(&self, input: Nhwc) -> usize {
        let (_, band_rows) = self.band(input.w);
        [
            input.w,
            self.desc.reduce_channels,
            std::mem::size_of::<f32>(),
        ]
        .iter()
        .fold(band_rows, |acc, &x| acc.saturating_mul(x))
    }

    /// Computes the bottleneck. Either view may be a channel slice of a wider tensor. After the
    /// first run on a thread, allocates nothing. Bit-identical for every [`Parallelism`].
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
        let chunk_rows = chunk_pixels(par, rows_total, 1, work, 1);
        let (band, band_rows) = self.band(w);
        let scratch_len = band_rows * w * r;
        let out_ps = output.pixel_stride();
        let (a, a_ps) = (input.data(), input.pixel_stride());
        let one_tap = TapSet::new(&ONE_TAP);
        // Input rows the output rows `y0..y1` read: `lo..hi`, clipped to the image.
        let needed = |y0: usize, y1: usize| {
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
                        let y1 = (y0 + band).min(oh).min(g1 - n * oh);
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
                                &one_tap,
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
                        conv_rows(
                            &self.conv,
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
