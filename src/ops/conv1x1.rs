//! 1x1 (pointwise) convolution as a GEMM: `out[pixel][o] = bias[o] + sum_i in[pixel][i] * w[o][i]`.
//!
//! The NHWC input already is the GEMM's A matrix (rows = pixels, row stride = pixel stride), so
//! it is read in place, never packed. Loop nest per task (a chunk of whole tiles of pixels): for
//! each tile of MR pixels, for each packed block of NR output channels, one microkernel call
//! does the whole K loop and the epilogue; the input tile stays in L1 while the blocks' weights
//! stream past it from L2. (Blocks outermost within groups of 196-784 pixels measured the same,
//! batch 1 on one thread and batch 8 on two.)

use super::{ConvCore, Epilogue, OpOptions, ONE_TAP_SET};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::Result;
use crate::isa::Isa;
use crate::parallel::{chunk_pixels, for_each_output_chunk, Parallelism};
use crate::tensor::{check_same_pixels, TensorView, TensorViewMut};

/// A 1x1 convolution with packed weights, ready to run many times (from many threads at once).
///
/// # Examples
///
/// Mixing the three colour channels of a 2x2 image into a grey level (bias 0):
///
/// ```
/// use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
///
/// let rgb = [
///     1.0, 0.0, 0.0,   0.0, 1.0, 0.0,
///     0.0, 0.0, 1.0,   1.0, 1.0, 1.0,
/// ];
/// let grey = Conv1x1::new(3, 1, &[0.25, 0.5, 0.25], None, Epilogue::None)?;
/// let mut out = [0.0; 4];
/// grey.run(
///     &TensorView::new(&rgb, Nhwc::new(1, 2, 2, 3))?,
///     &mut TensorViewMut::new(&mut out, Nhwc::new(1, 2, 2, 1))?,
///     Parallelism::Sequential,
/// )?;
/// assert_eq!(out, [0.25, 0.5, 0.25, 1.0]);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `Conv1x1` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Conv1x1::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct Conv1x1 {
    core: ConvCore,
}

impl Conv1x1 {
    /// Creates the operator from OHWI weights (`[out][in]` for 1x1) and an optional bias `[out]`,
    /// on the best ISA allowed. The weights are copied (packed); the slices may be dropped after.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for zero channels or an invalid clamp,
    /// [`ErrorKind::BufferTooSmall`] if `weights.len() != out_channels * in_channels`,
    /// [`ErrorKind::ShapeMismatch`] if the bias length is not `out_channels`,
    /// [`ErrorKind::UnsupportedIsa`] if a cap names an ISA this CPU lacks.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// // 4 -> 2 channels: weights [out][in].
    /// let weights = [1.0, 1.0, 1.0, 1.0, /* out 1: */ 0.0, 1.0, 0.0, -1.0];
    /// let conv = Conv1x1::new(4, 2, &weights, Some(&[0.0, 1.0]), Epilogue::Relu)?;
    /// assert_eq!((conv.in_channels(), conv.out_channels()), (4, 2));
    /// assert!(Conv1x1::new(4, 2, &weights[..7], None, Epilogue::Relu).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
    ) -> Result<Self> {
        Self::with_options(
            in_channels,
            out_channels,
            weights,
            bias,
            epilogue,
            OpOptions::default(),
        )
    }

    /// Like [`Conv1x1::new`], with options (e.g. an ISA cap).
    ///
    /// # Errors
    ///
    /// As [`Conv1x1::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue, Isa, OpOptions};
    ///
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let conv = Conv1x1::with_options(2, 2, &[1.0, 0.0, 0.0, 1.0], None, Epilogue::None, options)?;
    /// assert_eq!(conv.isa(), Isa::Scalar);
    /// assert_eq!(conv.kernel_name(), "conv_4x8__scalar");
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(
        in_channels: usize,
        out_channels: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        options: OpOptions,
    ) -> Result<Self> {
        let core = ConvCore::new(
            "conv1x1",
            in_channels,
            out_channels,
            1,
            weights,
            bias,
            epilogue,
            options,
        )?;
        Ok(Conv1x1 { core })
    }

    /// Input channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// // 3 -> 2 channels: 2 x 3 weights, [out][in].
    /// let conv = Conv1x1::new(3, 2, &[0.0; 6], None, Epilogue::None)?;
    /// assert_eq!(conv.in_channels(), 3);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn in_channels(&self) -> usize {
        self.core.in_channels
    }

    /// Output channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// // One bias per output channel.
    /// let conv = Conv1x1::new(3, 2, &[0.0; 6], Some(&[0.5, -0.5]), Epilogue::None)?;
    /// assert_eq!(conv.out_channels(), 2);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn out_channels(&self) -> usize {
        self.core.out_channels
    }

    /// The fused epilogue.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// let conv = Conv1x1::new(1, 1, &[1.0], None, Epilogue::Relu6)?;
    /// assert_eq!(conv.epilogue(), Epilogue::Relu6);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn epilogue(&self) -> Epilogue {
        self.core.epilogue
    }

    /// Whether `self` and `other` run on the same packed weights: true for an operator and its
    /// clones, false for operators created separately (even from equal weights).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// let conv = Conv1x1::new(2, 1, &[1.0, 2.0], None, Epilogue::None)?;
    /// let clone = conv.clone();
    /// assert!(clone.shares_weights_with(&conv));
    ///
    /// let twin = Conv1x1::new(2, 1, &[1.0, 2.0], None, Epilogue::None)?;
    /// assert!(!twin.shares_weights_with(&conv));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        self.core.shares_weights_with(&other.core)
    }

    /// The ISA this operator runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, Conv1x1, Epilogue, Isa, OpOptions};
    ///
    /// let conv = Conv1x1::new(2, 2, &[1.0; 4], None, Epilogue::None)?;
    /// assert!(isa::available().contains(&conv.isa()));
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let portable = Conv1x1::with_options(2, 2, &[1.0; 4], None, Epilogue::None, options)?;
    /// assert_eq!(portable.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.core.isa
    }

    /// The microkernel's name, e.g. `conv_14x32__avx512f_broadcast`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue, Isa, OpOptions};
    ///
    /// let conv = Conv1x1::new(8, 8, &[0.0; 64], None, Epilogue::None)?;
    /// assert!(conv.kernel_name().starts_with("conv_"));
    /// // Capped to the portable kernels, the name is known in advance.
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let scalar = Conv1x1::with_options(8, 8, &[0.0; 64], None, Epilogue::None, options)?;
    /// assert_eq!(scalar.kernel_name(), "conv_4x8__scalar");
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn kernel_name(&self) -> &'static str {
        self.core.kernel.name
    }

    /// Multiply-adds for an input of `pixels` pixels (saturating at `usize::MAX`).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue};
    ///
    /// let conv = Conv1x1::new(192, 64, &vec![0.0; 64 * 192], None, Epilogue::None)?;
    /// assert_eq!(conv.macs(28 * 28), 28 * 28 * 192 * 64);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn macs(&self, pixels: usize) -> usize {
        pixels
            .saturating_mul(self.core.in_channels)
            .saturating_mul(self.core.out_channels)
    }

    /// Computes `output = epilogue(conv1x1(input))`. Shapes: input `n x h x w x in_channels`,
    /// output `n x h x w x out_channels`; either may be a channel slice of a wider tensor.
    /// Allocates nothing. The result is bit-identical for every [`Parallelism`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the channels are not the operator's or the output's
    /// batch, height and width are not the input's. Nothing is written then.
    ///
    /// # Examples
    ///
    /// A batch of two 1x1 images, written into channels 1..3 of a wider output:
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
    ///
    /// let swap = Conv1x1::new(2, 2, &[0.0, 1.0, 1.0, 0.0], Some(&[10.0, 20.0]), Epilogue::None)?;
    /// let x = [1.0, 2.0, /* image 1: */ 3.0, 4.0];
    /// let mut y = [0.0; 2 * 3];
    /// let input = TensorView::new(&x, Nhwc::new(2, 1, 1, 2))?;
    /// let mut output = TensorViewMut::with_layout(&mut y, Nhwc::new(2, 1, 1, 2), 3, 1)?;
    /// swap.run(&input, &mut output, Parallelism::Global)?;
    /// assert_eq!(y, [0.0, 12.0, 21.0, 0.0, 14.0, 23.0]);
    ///
    /// // A wrong output shape is refused before anything is written.
    /// let mut small = [0.0; 2];
    /// let mut wrong = TensorViewMut::new(&mut small, Nhwc::new(1, 1, 1, 2))?;
    /// assert!(swap.run(&input, &mut wrong, Parallelism::Global).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        self.core.check_channels(ishape.c, oshape.c)?;
        check_same_pixels(ishape, oshape)?;
        // The pixels of an NHWC view are evenly spaced, so the whole batch is one GEMM of
        // n*h*w rows: tiles run across image rows and images.
        let pixels = ishape.pixels();
        let chunk = chunk_pixels(par, pixels, self.core.kernel.mr, self.macs(pixels), 4);
        let (a, a_base, a_stride) = (input.data(), input.offset(), input.pixel_stride());
        let c_stride = output.pixel_stride();
        for_each_output_chunk(par, output.spanned_mut(), c_stride, chunk, |first, c| {
            let count = chunk.min(pixels - first);
            self.core.run_line(
                "conv1x1",
                &ONE_TAP_SET,
                a,
                a_base + first * a_stride,
                a_stride,
                c,
                0,
                c_stride,
                count,
                self.core.all_blocks(),
            )
        })
    }
}
