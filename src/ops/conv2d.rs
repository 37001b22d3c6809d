//! Direct KxK convolution in NHWC, on the same microkernels as the 1x1 GEMM.
//!
//! A kernel tile is a line of output pixels (along a row, or down a column) that share one set
//! of valid taps; the kernel loops over those taps and the input channels, reading the input in
//! place. Padding is never multiplied: the output is cut into rectangles whose windows all have
//! the same valid `kh x kw` range (the interior, the border rows, the border columns, the
//! corners), and each rectangle passes only its valid taps. Wide rectangles are tiled along
//! rows; tall narrow ones (the left and right border columns) down columns, so the borders run
//! full tiles too.

use incept_kernels::{Tap, TapSet};

use super::window::{Padding, Window};
use super::{ConvCore, Epilogue, OpOptions};
use crate::error::{mismatch, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_pixels, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Largest kernel side: a tile's taps live in a stack array of `MAX_KERNEL^2` entries.
pub const MAX_KERNEL: usize = 16;

/// Describes a convolution: square `kernel x kernel` window, one stride for both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dDesc {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel side, `1..=MAX_KERNEL`.
    pub kernel: usize,
    /// Stride, at least 1.
    pub stride: usize,
    /// Zero padding; each side must be less than `kernel`.
    pub padding: Padding,
    /// Fused activation.
    pub epilogue: Epilogue,
}

impl Conv2dDesc {
    /// A stride-1 "same" convolution (`kernel` odd), the Inception module's case.
    pub fn same(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        epilogue: Epilogue,
    ) -> Self {
        Conv2dDesc {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: Padding::same(kernel),
            epilogue,
        }
    }
}

/// A KxK convolution with packed weights, ready to run many times (from many threads at once).
///
/// `Conv2d` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Conv2d::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct Conv2d {
    core: ConvCore,
    desc: Conv2dDesc,
    window: Window,
}

impl Conv2d {
    /// Creates the operator from OHWI weights (`[out][kernel][kernel][in]`) and an optional bias.
    pub fn new(desc: &Conv2dDesc, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        Self::with_options(desc, weights, bias, OpOptions::default())
    }

    /// Like [`Conv2d::new`], with options (e.g. an ISA cap).
    pub fn with_options(
        desc: &Conv2dDesc,
        weights: &[f32],
        bias: Option<&[f32]>,
        options: OpOptions,
    ) -> Result<Self> {
        let window = Window::new("conv2d", desc.kernel, desc.stride, desc.padding, MAX_KERNEL)?;
        let taps = desc.kernel * desc.kernel;
        let core = ConvCore::new(
            "conv2d",
            desc.in_channels,
            desc.out_channels,
            taps,
            weights,
            bias,
            desc.epilogue,
            options,
        )?;
        Ok(Conv2d {
            core,
            desc: *desc,
            window,
        })
    }

    /// The descriptor.
    pub fn desc(&self) -> &Conv2dDesc {
        &self.desc
    }

    /// Whether `self` and `other` run on the same packed weights: true for an operator and its
    /// clones, false for operators created separately (even from equal weights).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue};
    ///
    /// let desc = Conv2dDesc::same(1, 1, 3, Epilogue::None);
    /// let conv = Conv2d::new(&desc, &[1.0; 9], None)?;
    /// assert!(conv.clone().shares_weights_with(&conv));
    /// assert!(!Conv2d::new(&desc, &[1.0; 9], None)?.shares_weights_with(&conv));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        self.core.shares_weights_with(&other.core)
    }

    /// The ISA this operator runs on.
    pub fn isa(&self) -> Isa {
        self.core.isa
    }

    /// The microkernel's name.
    pub fn kernel_name(&self) -> &'static str {
        self.core.kernel.name
    }

    /// Output shape for `input`, or an error if the padded input is smaller than the kernel.
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        let (h, w) = self.window.output_size("conv2d", input)?;
        Ok(Nhwc::new(input.n, h, w, self.desc.out_channels))
    }

    /// Multiply-adds actually computed for `input` (padded taps are skipped, not counted).
    pub fn macs(&self, input: Nhwc) -> Result<u64> {
        let out = self.output_shape(input)?;
        let (win, p) = (self.window, self.desc.padding);
        let taps = win
            .valid_taps(out.h, p.top, input.h)
            .saturating_mul(win.valid_taps(out.w, p.left, input.w));
        // Saturating: a count past u64 is reported as u64::MAX.
        Ok([out.n, self.desc.in_channels, self.desc.out_channels]
            .iter()
            .fold(taps, |acc, &x| acc.saturating_mul(x as u64)))
    }

    /// Computes `output = epilogue(conv2d(input))`. Either view may be a channel slice of a wider
    /// tensor. Allocates nothing. Bit-identical for every [`Parallelism`].
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        self.core.check_channels(ishape.c, oshape.c)?;
        let expected = self.output_shape(ishape)?;
        if oshape != expected {
            return Err(mismatch(format!(
                "conv2d output shape {oshape} does not match the expected {expected}"
            )));
        }
        let (oh, ow) = (oshape.h, oshape.w);
        let rows_total = oshape.n * oh;
        // Tasks own whole output rows (chunks of `chunk_rows * ow` pixels).
        let macs = self
            .macs(ishape)
            .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let chunk_rows = chunk_pixels(par, rows_total, 1, macs, 2);
        let (in_ps, out_ps) = (input.pixel_stride(), output.pixel_stride());
        let source = Source {
            data: input.data(),
            shape: ishape,
            pixel_stride: in_ps,
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
                conv_rows(
                    &self.core,
                    &self.window,
                    &source,
                    0,
                    (oh, ow),
                    rows,
                    c,
                    &dest,
                )
            },
        )
    }
}

/// Where a convolution reads: an NHWC tensor of `shape` whose pixel `(n, y, x)` starts at
/// `offset + ((n*h + y - first_row)*w + x) * pixel_stride` (`first_row` given separately, so a
/// band of rows in a scratch buffer can stand for the whole image).
pub(crate) struct Source<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) shape: Nhwc,
    pub(crate) pixel_stride: usize,
    pub(crate) offset: usize,
}

/// Where a convolution writes: an output chunk starting at output pixel `first_pixel`.
pub(crate) struct Dest {
    pub(crate) first_pixel: usize,
    pub(crate) pixel_stride: usize,
    pub(crate) channel_offset: usize,
}

/// Runs `core` with `window` for the output rows `rows` (global row indices `n*oh + y`) of an
/// `oh x ow` output, reading `src` (whose rows start at image row `first_row`; only the rows the
/// windows need must be present) and writing the chunk `c` described by `dest`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_rows(
    core: &ConvCore,
    window: &Window,
    src: &Source<'_>,
    first_row: usize,
    (oh, ow): (usize, usize),
    rows: std::ops::Range<usize>,
    c: &mut [f32],
    dest: &Dest,
) -> Result<()> {
    let (k, s) = (window.kernel, window.stride);
    let in_ps = src.pixel_stride;
    let in_row = src.shape.w * in_ps;
    let nr = core.kernel.nr;
    let cin = core.in_channels;
    let mut tap_buf = [Tap {
        input_offset: 0,
        weight_offset: 0,
    }; MAX_KERNEL * MAX_KERNEL];
    // Output-channel blocks outermost: one block's weights (K*K*cin*NR floats) stay in L2 while
    // the rows stream past, instead of every block's weights for every tile.
    for block in core.all_blocks() {
        window.for_each_rect(src.shape, (oh, ow), rows.clone(), |rect| {
            // The rectangle's valid taps, offsets relative to each window's first valid tap.
            let ((ky0, ky1), (kx0, kx1)) = (rect.ky, rect.kx);
            let mut count = 0;
            for ky in ky0..ky1 {
                for kx in kx0..kx1 {
                    tap_buf[count] = Tap {
                        input_offset: ((ky - ky0) * in_row + (kx - kx0) * in_ps) as isize,
                        weight_offset: (ky * k + kx) * cin * nr,
                    };
                    count += 1;
                }
            }
            let taps = TapSet::new(&tap_buf[..count]);
            for line in rect.lines(s) {
                let (iy, ix) = line.origin;
                let a0 = src.offset
                    + ((rect.n * src.shape.h + iy - first_row) * src.shape.w + ix) * in_ps;
                let c0 = ((rect.n * oh + line.y) * ow + line.x - dest.first_pixel)
                    * dest.pixel_stride
                    + dest.channel_offset;
                let (a_step, c_step) = if line.along_x {
                    (s.saturating_mul(in_ps), dest.pixel_stride)
                } else {
                    (s.saturating_mul(in_row), ow * dest.pixel_stride)
                };
                core.run_line(
                    "conv2d",
                    &taps,
                    src.data,
                    a0,
                    a_step,
                    c,
                    c0,
                    c_step,
                    line.len,
                    block..block + 1,
                )?;
            }
            Ok(())
        })?;
    }
    Ok(())
}
