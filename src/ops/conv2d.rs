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

use super::{ConvCore, Epilogue, OpOptions};
use crate::error::{invalid, mismatch, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_pixels, for_each_output_chunk, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Largest kernel side: a tile's taps live in a stack array of `MAX_KERNEL^2` entries.
pub const MAX_KERNEL: usize = 16;

/// Zero padding on each side of the input, in pixels (ONNX allows them to differ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Padding {
    /// Rows above.
    pub top: usize,
    /// Columns on the left.
    pub left: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the right.
    pub right: usize,
}

impl Padding {
    /// `p` on every side.
    pub const fn uniform(p: usize) -> Self {
        Padding {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }

    /// "Same" padding for an odd `kernel` at stride 1: `(kernel - 1) / 2` on every side.
    pub const fn same(kernel: usize) -> Self {
        Self::uniform(kernel.saturating_sub(1) / 2)
    }
}

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
#[derive(Debug)]
pub struct Conv2d {
    core: ConvCore,
    desc: Conv2dDesc,
}

/// The valid range `lo..hi` of kernel taps along one axis for output coordinate `o`.
fn tap_range(o: usize, stride: usize, pad: usize, kernel: usize, size: usize) -> (usize, usize) {
    let start = o * stride; // input coordinate of tap 0, plus `pad`
    let lo = pad.saturating_sub(start);
    let hi = kernel.min((size + pad).saturating_sub(start));
    (lo, hi)
}

/// Splits `0..len` into maximal runs of outputs whose tap ranges are equal:
/// yields `(start, end, tap_lo, tap_hi)`.
fn runs(
    len: usize,
    range: impl Fn(usize) -> (usize, usize),
) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= len {
            return None;
        }
        let r = range(start);
        let mut end = start + 1;
        while end < len && range(end) == r {
            end += 1;
        }
        let run = (start, end, r.0, r.1);
        start = end;
        Some(run)
    })
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
        if desc.kernel == 0 || desc.kernel > MAX_KERNEL {
            return Err(invalid(format!(
                "conv2d kernel {} must be in 1..={MAX_KERNEL}",
                desc.kernel
            )));
        }
        if desc.stride == 0 {
            return Err(invalid("conv2d stride is 0; it must be at least 1"));
        }
        let p = desc.padding;
        for (side, pad) in [
            ("top", p.top),
            ("left", p.left),
            ("bottom", p.bottom),
            ("right", p.right),
        ] {
            if pad >= desc.kernel {
                return Err(invalid(format!(
                    "conv2d {side} padding {pad} must be less than the kernel {}",
                    desc.kernel
                )));
            }
        }
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
        Ok(Conv2d { core, desc: *desc })
    }

    /// The descriptor.
    pub fn desc(&self) -> &Conv2dDesc {
        &self.desc
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
        let Conv2dDesc {
            kernel: k,
            stride: s,
            padding: p,
            ..
        } = self.desc;
        let padded_h = input.h + p.top + p.bottom;
        let padded_w = input.w + p.left + p.right;
        if padded_h < k || padded_w < k {
            return Err(invalid(format!(
                "conv2d kernel {k} is larger than the padded input {padded_h}x{padded_w} \
                 ({}x{} plus padding {}+{} rows, {}+{} columns)",
                input.h, input.w, p.top, p.bottom, p.left, p.right
            )));
        }
        Ok(Nhwc::new(
            input.n,
            (padded_h - k) / s + 1,
            (padded_w - k) / s + 1,
            self.desc.out_channels,
        ))
    }

    /// Multiply-adds actually computed for `input` (padded taps are skipped, not counted).
    pub fn macs(&self, input: Nhwc) -> Result<u64> {
        let out = self.output_shape(input)?;
        let Conv2dDesc {
            kernel: k,
            stride: s,
            padding: p,
            ..
        } = self.desc;
        let rows: u64 = (0..out.h)
            .map(|y| tap_range(y, s, p.top, k, input.h))
            .map(|(lo, hi)| (hi - lo) as u64)
            .sum();
        let cols: u64 = (0..out.w)
            .map(|x| tap_range(x, s, p.left, k, input.w))
            .map(|(lo, hi)| (hi - lo) as u64)
            .sum();
        Ok(rows
            * cols
            * out.n as u64
            * self.desc.in_channels as u64
            * self.desc.out_channels as u64)
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
        let Conv2dDesc {
            kernel: k,
            stride: s,
            padding: pad,
            ..
        } = self.desc;
        let (oh, ow) = (oshape.h, oshape.w);
        let rows_total = oshape.n * oh;
        // Tasks own whole output rows (chunks of `chunk_rows * ow` pixels).
        let macs = self
            .macs(ishape)
            .map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let chunk_rows = chunk_pixels(par, rows_total, 1, macs);
        let (a, in_ps, out_ps) = (input.data(), input.pixel_stride(), output.pixel_stride());
        let in_row = ishape.w * in_ps;
        let nr = self.core.kernel.nr;
        let cin = self.core.in_channels;
        let row_ranges = |y: usize| tap_range(y, s, pad.top, k, ishape.h);
        let col_ranges = |x: usize| tap_range(x, s, pad.left, k, ishape.w);

        for_each_output_chunk(
            par,
            output.spanned_mut(),
            out_ps,
            chunk_rows * ow,
            |first, c| {
                let g0 = first / ow;
                let g1 = (g0 + chunk_rows).min(rows_total);
                let mut tap_buf = [Tap {
                    input_offset: 0,
                    weight_offset: 0,
                }; MAX_KERNEL * MAX_KERNEL];
                for n in g0 / oh..=(g1 - 1) / oh {
                    let (ya, yb) = (g0.max(n * oh) - n * oh, g1.min((n + 1) * oh) - n * oh);
                    for (y0, y1, ky0, ky1) in runs(yb - ya, |i| row_ranges(ya + i)) {
                        let (y0, y1) = (ya + y0, ya + y1);
                        for (x0, x1, kx0, kx1) in runs(ow, col_ranges) {
                            // The rectangle's valid taps, offsets relative to its windows' first valid tap.
                            let mut count = 0;
                            for ky in ky0..ky1 {
                                for kx in kx0..kx1 {
                                    tap_buf[count] = Tap {
                                        input_offset: ((ky - ky0) * in_row + (kx - kx0) * in_ps)
                                            as isize,
                                        weight_offset: (ky * k + kx) * cin * nr,
                                    };
                                    count += 1;
                                }
                            }
                            let taps = TapSet::new(&tap_buf[..count]);
                            // Input index of pixel (y, x)'s first valid tap; output index in the chunk.
                            let a_at = |y: usize, x: usize| {
                                input.index(n, y * s + ky0 - pad.top, x * s + kx0 - pad.left, 0)
                            };
                            let c_at =
                                |y: usize, x: usize| ((n * oh + y) * ow + x - first) * out_ps;
                            if x1 - x0 >= y1 - y0 {
                                for y in y0..y1 {
                                    let (a0, c0) = (a_at(y, x0), c_at(y, x0));
                                    self.core.run_line(
                                        "conv2d",
                                        &taps,
                                        a,
                                        a0,
                                        s * in_ps,
                                        c,
                                        c0,
                                        out_ps,
                                        x1 - x0,
                                    )?;
                                }
                            } else {
                                for x in x0..x1 {
                                    let (a0, c0) = (a_at(y0, x), c_at(y0, x));
                                    self.core.run_line(
                                        "conv2d",
                                        &taps,
                                        a,
                                        a0,
                                        s * in_row,
                                        c,
                                        c0,
                                        ow * out_ps,
                                        y1 - y0,
                                    )?;
                                }
                            }
                        }
                    }
                }
                Ok(())
            },
        )
    }
}
