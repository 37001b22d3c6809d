//! Direct KHxKW convolution in NHWC, on the same microkernels as the 1x1 GEMM.
//!
//! A kernel tile is a line of output pixels; the kernel loops over its taps and the input
//! channels, reading the input in place. Padding is never multiplied, in one of two ways:
//!
//! * **Row lines** (stride 1 with at most 3 columns of padding on a side, the kernels' largest
//!   skip): every output row is one line of full tiles, edges included; the taps a pixel near
//!   the left or right edge does not have are skipped for it inside the tile, and the top and
//!   bottom rows pass only their valid rows of taps.
//! * **Rectangles** (other strides, wider padding): the output is cut into rectangles whose
//!   windows all have the same valid `kh x kw` range (the interior, the border rows, the border
//!   columns, the corners), and each passes only its valid taps. Wide rectangles are tiled along
//!   rows; tall narrow ones (the left and right border columns) down columns, so borders run
//!   full tiles too, but each corner pixel is a tile of its own.
//!
//! Either way each output sums exactly its valid taps in the same order, so both give the same
//! bits.

use std::sync::{Arc, OnceLock};

use incept_kernels::{Tap, TapSet, TileRepeat};

use super::window::{Axis, Padding, Window};
use super::winograd::Winograd;
use super::{use_winograd, ConvCore, Epilogue, OpOptions};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{mismatch, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_rows, for_each_output_chunk, threads_share_images, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Largest kernel side of [`Conv2d`] and [`Bottleneck`](crate::Bottleneck): a tile's taps live
/// in a stack array of `MAX_KERNEL^2` entries.
pub const MAX_KERNEL: usize = 16;

/// Describes a convolution: a `kernel[0] x kernel[1]` window (rows x columns; square in the
/// Inception module, 1x7 / 7x1 in Inception-v3's factorised blocks), a stride per axis, and
/// per-side padding.
///
/// Output size: `(h + top + bottom - kernel[0]) / stride[0] + 1` rows, and likewise columns.
///
/// # Examples
///
/// A strided 3x3 with ONNX-style asymmetric padding:
///
/// ```
/// use incept::{Conv2d, Conv2dDesc, Epilogue, Nhwc, Padding};
///
/// let desc = Conv2dDesc {
///     in_channels: 3,
///     out_channels: 8,
///     kernel: [3, 3],
///     stride: [2, 2],
///     padding: Padding { top: 0, left: 0, bottom: 1, right: 1 },
///     epilogue: Epilogue::Relu,
/// };
/// let conv = Conv2d::new(&desc, &[0.1; 8 * 3 * 3 * 3], None)?;
/// assert_eq!(conv.output_shape(Nhwc::new(1, 224, 224, 3))?, Nhwc::new(1, 112, 112, 8));
///
/// // Inception-v3's 1x7, "same": 3 columns of padding on each side, none above or below.
/// let desc = Conv2dDesc::same_rect(16, 16, [1, 7], Epilogue::Relu);
/// assert_eq!(desc.padding, Padding { top: 0, left: 3, bottom: 0, right: 3 });
/// let conv = Conv2d::new(&desc, &[0.1; 16 * 7 * 16], None)?;
/// assert_eq!(conv.output_shape(Nhwc::new(1, 17, 17, 16))?, Nhwc::new(1, 17, 17, 16));
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dDesc {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel rows and columns (height, width), each in `1..=MAX_KERNEL`.
    pub kernel: [usize; 2],
    /// Stride down the rows and along the columns, each at least 1.
    pub stride: [usize; 2],
    /// Zero padding: top and bottom less than the kernel's height, left and right less than
    /// its width.
    pub padding: Padding,
    /// Fused activation.
    pub epilogue: Epilogue,
}

impl Conv2dDesc {
    /// A stride-1 "same" convolution (`kernel` odd), the Inception module's case.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2dDesc, Epilogue, Padding};
    ///
    /// let desc = Conv2dDesc::same(16, 32, 5, Epilogue::Relu);
    /// assert_eq!((desc.kernel, desc.stride, desc.padding), ([5, 5], [1, 1], Padding::uniform(2)));
    /// ```
    pub fn same(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        epilogue: Epilogue,
    ) -> Self {
        Self::same_rect(in_channels, out_channels, [kernel; 2], epilogue)
    }

    /// A stride-1 "same" convolution with a `kernel[0] x kernel[1]` window (each side odd):
    /// `(side - 1) / 2` padding on both ends of each axis.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2dDesc, Epilogue, Padding};
    ///
    /// let desc = Conv2dDesc::same_rect(16, 32, [7, 1], Epilogue::Relu);
    /// assert_eq!(desc.padding, Padding { top: 3, left: 0, bottom: 3, right: 0 });
    /// ```
    pub fn same_rect(
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        epilogue: Epilogue,
    ) -> Self {
        // Each axis padded as `Padding::same` pads a square kernel of that side.
        let [rows, cols] = kernel.map(|k| Padding::same(k).top);
        Conv2dDesc {
            in_channels,
            out_channels,
            kernel,
            stride: [1, 1],
            padding: Padding {
                top: rows,
                left: cols,
                bottom: rows,
                right: cols,
            },
            epilogue,
        }
    }
}

/// A KHxKW convolution with packed weights, ready to run many times (from many threads at once).
///
/// # Examples
///
/// A 3x3 box sum with "same" padding: each output counts the input pixels its window covers.
///
/// ```
/// use incept::{Conv2d, Conv2dDesc, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
///
/// let conv = Conv2d::new(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &[1.0; 9], None)?;
/// let x = [1.0; 9];
/// let mut y = [0.0; 9];
/// let shape = Nhwc::new(1, 3, 3, 1);
/// conv.run(
///     &TensorView::new(&x, shape)?,
///     &mut TensorViewMut::new(&mut y, shape)?,
///     Parallelism::Sequential,
/// )?;
/// assert_eq!(y, [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `Conv2d` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Conv2d::shares_weights_with`].
///
/// Memory: when threads share one image (fewer than two images per thread), rayon threads 1 to 3
/// each make a private copy of the packed direct-convolution weights on their first run, if
/// those are at most 4 MiB (the weights stay shared otherwise): with one copy for both cores the
/// two-thread 5x5 192 -> 32 took 1.09-1.14x the time on the test VM. The copies live as long as
/// the operator and its clones.
#[derive(Clone, Debug)]
pub struct Conv2d {
    engine: Engine,
    desc: Conv2dDesc,
    window: Window,
    /// Private copies of the direct engine's packed weights for rayon threads 1, 2, 3, made on
    /// a thread's first single-image run (see [`REPLICA_MAX_BYTES`]).
    replicas: Arc<[OnceLock<Engine>; REPLICAS]>,
}

/// Threads (after the first) that get a private copy of a direct convolution's weights.
const REPLICAS: usize = 3;

/// Largest packed weights that are copied per thread. When threads share one image, each reads
/// every weight, and on the test VM two cores reading one copy were slower than two copies:
/// the two-thread 28x28 3x3 192 -> 128 (884 KB of weights) took 0.95-0.97x the time with a
/// copy per thread, the 5x5 192 -> 32 (614 KB) 0.88-0.92x (interleaved A/B). Batches (a task
/// per image) keep one copy: the batch-8 module was 1.01-1.03x slower with copies.
const REPLICA_MAX_BYTES: usize = 4 << 20;

/// How a convolution is computed (see [`crate::ConvAlgorithm`]).
#[derive(Clone, Debug)]
pub(crate) enum Engine {
    Direct(ConvCore),
    Winograd(Winograd),
}

impl Engine {
    /// Packs `weights` for the algorithm `options` choose for this convolution.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        op: &str,
        (in_channels, out_channels): (usize, usize),
        window: &Window,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        options: OpOptions,
    ) -> crate::Result<Self> {
        let ([kh, kw], p) = (window.kernel, window.padding);
        let shape = (window.kernel, window.stride);
        if let Some(variant) = use_winograd(op, options, shape, (in_channels, out_channels))? {
            let winograd = Winograd::new(
                op,
                variant,
                in_channels,
                out_channels,
                weights,
                bias,
                epilogue,
                (p.top, p.left),
                options,
            )?;
            return Ok(Engine::Winograd(winograd));
        }
        let core = ConvCore::new(
            op,
            in_channels,
            out_channels,
            kh * kw,
            weights,
            bias,
            epilogue,
            options,
        )?;
        Ok(Engine::Direct(core))
    }

    /// The GEMM core (the direct one, or Winograd's transformed-domain one).
    pub(crate) fn core(&self) -> &ConvCore {
        match self {
            Engine::Direct(core) => core,
            Engine::Winograd(w) => &w.gemm,
        }
    }

    /// Whether both share one packed weight allocation.
    pub(crate) fn shares_weights_with(&self, other: &Engine) -> bool {
        self.core().shares_weights_with(other.core())
    }

    /// Whether this is the Winograd engine.
    pub(crate) fn is_winograd(&self) -> bool {
        matches!(self, Engine::Winograd(_))
    }

    /// The Winograd engine, if this is one.
    pub(crate) fn winograd(&self) -> Option<&Winograd> {
        match self {
            Engine::Winograd(w) => Some(w),
            Engine::Direct(_) => None,
        }
    }

    /// Output rows `rows` of an `oh x ow` output; see [`conv_rows`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_rows(
        &self,
        op: &str,
        window: &Window,
        src: &Source<'_>,
        first_row: usize,
        out_size: (usize, usize),
        rows: std::ops::Range<usize>,
        c: &mut [f32],
        dest: &Dest,
    ) -> crate::Result<()> {
        match self {
            Engine::Direct(core) => {
                conv_rows(core, window, src, first_row, out_size, rows, c, dest)
            }
            Engine::Winograd(w) => w.run_rows(op, src, first_row, out_size, rows, c, dest),
        }
    }
}

impl Conv2d {
    /// Creates the operator from OHWI weights (`[out][kh][kw][in]`) and an optional bias
    /// `[out]`, on the best ISA allowed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] for a kernel side outside `1..=MAX_KERNEL`, a zero stride,
    /// a padding not less than the kernel's side along it, zero channels or an invalid clamp;
    /// [`ErrorKind::BufferTooSmall`] / [`ErrorKind::ShapeMismatch`] for weights / bias of the
    /// wrong length; [`ErrorKind::UnsupportedIsa`] for a cap this CPU cannot meet.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, ErrorKind};
    ///
    /// let desc = Conv2dDesc::same(4, 2, 3, Epilogue::Relu);
    /// let conv = Conv2d::new(&desc, &[0.5; 2 * 3 * 3 * 4], Some(&[0.0, 1.0]))?;
    /// assert_eq!(conv.desc().kernel, [3, 3]);
    /// let err = Conv2d::new(&desc, &[0.5; 2 * 3 * 3 * 4 - 1], None).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(desc: &Conv2dDesc, weights: &[f32], bias: Option<&[f32]>) -> Result<Self> {
        Self::with_options(desc, weights, bias, OpOptions::default())
    }

    /// Like [`Conv2d::new`], with options (e.g. an ISA cap).
    ///
    /// # Errors
    ///
    /// As [`Conv2d::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, Isa, OpOptions};
    ///
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let conv =
    ///     Conv2d::with_options(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &[1.0; 9], None, options)?;
    /// assert_eq!(conv.isa(), Isa::Scalar);
    /// assert_eq!(conv.kernel_name(), "conv_4x8__scalar");
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(
        desc: &Conv2dDesc,
        weights: &[f32],
        bias: Option<&[f32]>,
        options: OpOptions,
    ) -> Result<Self> {
        let window =
            Window::new_rect("conv2d", desc.kernel, desc.stride, desc.padding, MAX_KERNEL)?;
        let engine = Engine::new(
            "conv2d",
            (desc.in_channels, desc.out_channels),
            &window,
            weights,
            bias,
            desc.epilogue,
            options,
        )?;
        Ok(Conv2d {
            engine,
            desc: *desc,
            window,
            replicas: Arc::new(std::array::from_fn(|_| OnceLock::new())),
        })
    }

    /// The engine this thread runs: a private weight copy on rayon threads 1..=REPLICAS when
    /// `shared_image` and the direct weights are small enough, else the operator's own.
    fn engine_for_thread(&self, shared_image: bool) -> &Engine {
        let Engine::Direct(core) = &self.engine else {
            return &self.engine;
        };
        match rayon::current_thread_index() {
            Some(i)
                if shared_image
                    && core.packed_bytes() <= REPLICA_MAX_BYTES
                    && (1..=REPLICAS).contains(&i) =>
            {
                self.replicas[i - 1].get_or_init(|| Engine::Direct(core.replica()))
            }
            _ => &self.engine,
        }
    }

    /// The descriptor.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, Padding};
    ///
    /// let desc = Conv2dDesc::same(2, 4, 5, Epilogue::Relu6);
    /// let conv = Conv2d::new(&desc, &[0.0; 4 * 5 * 5 * 2], None)?;
    /// assert_eq!(conv.desc(), &desc);
    /// assert_eq!(conv.desc().padding, Padding::uniform(2));
    /// # Ok::<(), incept::Error>(())
    /// ```
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
        self.engine.core().shares_weights_with(other.engine.core())
    }

    /// The ISA this operator runs on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, Conv2d, Conv2dDesc, Epilogue, Isa, OpOptions};
    ///
    /// let desc = Conv2dDesc::same(1, 1, 3, Epilogue::None);
    /// assert!(isa::available().contains(&Conv2d::new(&desc, &[1.0; 9], None)?.isa()));
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// assert_eq!(Conv2d::with_options(&desc, &[1.0; 9], None, options)?.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.engine.core().isa
    }

    /// The algorithm this operator runs: [`ConvAlgorithm::Direct`](crate::ConvAlgorithm) or
    /// [`ConvAlgorithm::Winograd`](crate::ConvAlgorithm) (never `Auto`).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Accuracy, Conv2d, Conv2dDesc, ConvAlgorithm, Epilogue, OpOptions};
    ///
    /// let (desc, w) = (Conv2dDesc::same(16, 16, 3, Epilogue::None), [0.0; 16 * 9 * 16]);
    /// assert_eq!(Conv2d::new(&desc, &w, None)?.algorithm(), ConvAlgorithm::Direct);
    /// // Relaxed accuracy lets `Auto` pick Winograd for this 3x3 stride-1 convolution.
    /// let relaxed = OpOptions { accuracy: Accuracy::Relaxed, ..OpOptions::default() };
    /// let fast = Conv2d::with_options(&desc, &w, None, relaxed)?;
    /// assert_eq!(fast.algorithm(), ConvAlgorithm::Winograd);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn algorithm(&self) -> crate::ConvAlgorithm {
        if self.engine.is_winograd() {
            crate::ConvAlgorithm::Winograd
        } else {
            crate::ConvAlgorithm::Direct
        }
    }

    /// The microkernel's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, Isa, OpOptions};
    ///
    /// // The direct convolution runs on the same tile kernels as the 1x1 GEMM.
    /// let desc = Conv2dDesc::same(4, 4, 3, Epilogue::None);
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// let conv = Conv2d::with_options(&desc, &[0.0; 4 * 9 * 4], None, options)?;
    /// assert_eq!(conv.kernel_name(), "conv_4x8__scalar");
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn kernel_name(&self) -> &'static str {
        self.engine.core().kernel.name
    }

    /// Scratch bytes per thread a run on `input` uses: 0 for the direct convolution; for
    /// Winograd, the transformed tiles of one band of tile rows (independent of the height).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvAlgorithm, Conv2d, Conv2dDesc, Epilogue, Nhwc, OpOptions};
    ///
    /// let desc = Conv2dDesc::same(16, 16, 3, Epilogue::None);
    /// let direct = Conv2d::new(&desc, &[0.0; 16 * 9 * 16], None)?;
    /// assert_eq!(direct.scratch_bytes_per_thread(Nhwc::new(1, 28, 28, 16)), 0);
    /// let options = OpOptions { algorithm: ConvAlgorithm::Winograd, ..OpOptions::default() };
    /// let winograd = Conv2d::with_options(&desc, &[0.0; 16 * 9 * 16], None, options)?;
    /// let bytes = winograd.scratch_bytes_per_thread(Nhwc::new(1, 28, 28, 16));
    /// assert!(bytes > 0);
    /// assert_eq!(bytes, winograd.scratch_bytes_per_thread(Nhwc::new(1, 5000, 28, 16)));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn scratch_bytes_per_thread(&self, input: Nhwc) -> usize {
        match (&self.engine, self.output_shape(input)) {
            (Engine::Winograd(w), Ok(out)) => w.scratch_bytes(out.w),
            _ => 0,
        }
    }

    /// Output shape for `input`, or an error if the padded input is smaller than the kernel.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] if the window does not fit the padded input;
    /// [`ErrorKind::Overflow`] if the padded size overflows `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, Nhwc};
    ///
    /// let desc = Conv2dDesc { stride: [2; 2], ..Conv2dDesc::same(3, 4, 3, Epilogue::None) };
    /// let conv = Conv2d::new(&desc, &[0.0; 4 * 9 * 3], None)?;
    /// assert_eq!(conv.output_shape(Nhwc::new(2, 9, 8, 3))?, Nhwc::new(2, 5, 4, 4));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        let (h, w) = self.window.output_size("conv2d", input)?;
        Ok(Nhwc::new(input.n, h, w, self.desc.out_channels))
    }

    /// Multiply-adds actually computed for `input` (padded taps are skipped, not counted).
    ///
    /// # Errors
    ///
    /// As [`Conv2d::output_shape`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv2d, Conv2dDesc, Epilogue, Nhwc};
    ///
    /// let conv = Conv2d::new(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &[1.0; 9], None)?;
    /// // On a 3x3 image: 4 corners x 4 taps + 4 edges x 6 + the centre's 9, not 9 x 9.
    /// assert_eq!(conv.macs(Nhwc::new(1, 3, 3, 1))?, 49);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn macs(&self, input: Nhwc) -> Result<u64> {
        let out = self.output_shape(input)?;
        let win = self.window;
        let taps = win
            .valid_taps(Axis::Rows, out.h, input.h)
            .saturating_mul(win.valid_taps(Axis::Cols, out.w, input.w));
        // Saturating: a count past u64 is reported as u64::MAX.
        Ok([out.n, self.desc.in_channels, self.desc.out_channels]
            .iter()
            .fold(taps, |acc, &x| acc.saturating_mul(x as u64)))
    }

    /// Computes `output = epilogue(conv2d(input))`. Either view may be a channel slice of a wider
    /// tensor. Allocates nothing. Bit-identical for every [`Parallelism`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the channels are not the operator's or the output shape
    /// is not [`Conv2d::output_shape`] of the input; as `output_shape` if the window does not
    /// fit. Nothing is written then.
    ///
    /// # Examples
    ///
    /// A 2x2 stride-2 convolution (no padding) that averages each 2x2 block:
    ///
    /// ```
    /// use incept::{
    ///     Conv2d, Conv2dDesc, Epilogue, Nhwc, Padding, Parallelism, TensorView, TensorViewMut,
    /// };
    ///
    /// let desc = Conv2dDesc {
    ///     stride: [2, 2],
    ///     padding: Padding::default(),
    ///     ..Conv2dDesc::same(1, 1, 2, Epilogue::None)
    /// };
    /// let avg = Conv2d::new(&desc, &[0.25; 4], None)?;
    /// let x = [
    ///     1.0, 3.0, 0.0, 0.0,
    ///     1.0, 3.0, 4.0, 8.0,
    /// ];
    /// let input = TensorView::new(&x, Nhwc::new(1, 2, 4, 1))?;
    /// let shape = avg.output_shape(input.shape())?;
    /// let mut y = vec![0.0; shape.element_count()?];
    /// avg.run(&input, &mut TensorViewMut::new(&mut y, shape)?, Parallelism::Sequential)?;
    /// assert_eq!(y, [2.0, 3.0]);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        self.engine.core().check_channels(ishape.c, oshape.c)?;
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
        // Winograd tasks own whole tile rows where they can (a split tile is computed twice); 4
        // rows are whole tile rows of both variants.
        let granule = if self.engine.is_winograd() { 4 } else { 1 };
        let chunk_rows = chunk_rows(par, oshape.n, rows_total, granule, macs);
        // Each task reads every weight when threads share an image: see `REPLICA_MAX_BYTES`.
        let shared_image = threads_share_images(par, oshape.n);
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
                self.engine_for_thread(shared_image).run_rows(
                    "conv2d",
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
#[derive(Clone, Copy)]
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
    if window.rows_as_lines(core.kernel.max_skip) {
        return conv_row_lines(core, window, src, first_row, (oh, ow), rows, c, dest);
    }
    let ([_, k], [stride_y, stride_x]) = (window.kernel, window.stride);
    let in_ps = src.pixel_stride;
    let in_row = src.shape.w * in_ps;
    let nr = core.kernel.nr;
    let cin = core.in_channels;
    let mut tap_buf = [Tap::new(0, 0); MAX_KERNEL * MAX_KERNEL];
    // Output-channel blocks outermost: one block's weights (KH*KW*cin*NR floats) stay in L2 while
    // the rows stream past, instead of every block's weights for every tile.
    for block in core.all_blocks() {
        window.for_each_rect(src.shape, (oh, ow), rows.clone(), |rect| {
            // The rectangle's valid taps, offsets relative to each window's first valid tap.
            let ((ky0, ky1), (kx0, kx1)) = (rect.ky, rect.kx);
            let mut count = 0;
            for ky in ky0..ky1 {
                for kx in kx0..kx1 {
                    tap_buf[count] = Tap::new(
                        ((ky - ky0) * in_row + (kx - kx0) * in_ps) as isize,
                        (ky * k + kx) * cin * nr,
                    );
                    count += 1;
                }
            }
            let taps = TapSet::new(&tap_buf[..count]);
            for line in rect.lines(window.stride) {
                let (iy, ix) = line.origin;
                let a0 = src.offset
                    + ((rect.n * src.shape.h + iy - first_row) * src.shape.w + ix) * in_ps;
                let c0 = ((rect.n * oh + line.y) * ow + line.x - dest.first_pixel)
                    * dest.pixel_stride
                    + dest.channel_offset;
                let (a_step, c_step) = if line.along_x {
                    (stride_x.saturating_mul(in_ps), dest.pixel_stride)
                } else {
                    (stride_y.saturating_mul(in_row), ow * dest.pixel_stride)
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

/// [`conv_rows`] with every output row one line of balanced tiles, edges included: a tap that
/// falls in the left or right padding for a tile's first or last pixels skips them
/// ([`Tap::skip_head`], [`Tap::skip_tail`]). Each pixel sums the same taps in the same order as
/// on the rectangles, so the result is the same; but no border line is short and no corner is a
/// tile of one pixel (a one-pixel tile streams a tap's weights for one pixel: the corners of
/// the 28x28 5x5 were 1% of its work and 4% of its time). Needs [`Window::rows_as_lines`].
#[allow(clippy::too_many_arguments)]
fn conv_row_lines(
    core: &ConvCore,
    window: &Window,
    src: &Source<'_>,
    first_row: usize,
    (oh, ow): (usize, usize),
    rows: std::ops::Range<usize>,
    c: &mut [f32],
    dest: &Dest,
) -> Result<()> {
    let ([_, k], pad) = (window.kernel, window.padding);
    let (in_ps, in_w) = (src.pixel_stride, src.shape.w);
    let in_row = in_w * in_ps;
    let (nr, cin, mr) = (core.kernel.nr, core.in_channels, core.kernel.mr);
    let tiles = ow.div_ceil(mr);
    let mut tap_buf = [Tap::new(0, 0); MAX_KERNEL * MAX_KERNEL];
    for block in core.all_blocks() {
        window.for_each_row_run(src.shape, oh, rows.clone(), |n, y0, y1, (ky0, ky1)| {
            let mut x0 = 0;
            for t in 0..tiles {
                // Balanced, as `ConvCore::run_line` cuts a line.
                let tile_mr = ow / tiles + usize::from(t < ow % tiles);
                // The tile's base is pixel x0's first valid tap (never left of the image).
                let kx_first = pad.left.saturating_sub(x0);
                let base_x = x0 + kx_first - pad.left;
                let mut count = 0;
                for ky in ky0..ky1 {
                    for kx in 0..k {
                        // Pixels x with x + kx - left outside 0..in_w skip the tap.
                        let head = pad.left.saturating_sub(kx).saturating_sub(x0);
                        let tail = match (in_w + pad.left).checked_sub(kx + 1) {
                            Some(last_x) => (x0 + tile_mr - 1).saturating_sub(last_x),
                            None => tile_mr,
                        };
                        if head + tail >= tile_mr {
                            continue;
                        }
                        let dx = kx as isize - kx_first as isize;
                        tap_buf[count] = Tap {
                            input_offset: ((ky - ky0) * in_row) as isize + dx * in_ps as isize,
                            weight_offset: (ky * k + kx) * cin * nr,
                            // At most the padding (`rows_as_lines`), so they fit.
                            skip_head: head as u32,
                            skip_tail: tail as u32,
                        };
                        count += 1;
                    }
                }
                let taps = TapSet::new(&tap_buf[..count]);
                if y0 < y1 {
                    // The tile's column on every row of the run: one call, rows apart.
                    let iy = y0 + ky0 - pad.top;
                    let a0 =
                        src.offset + ((n * src.shape.h + iy - first_row) * in_w + base_x) * in_ps;
                    let c0 = ((n * oh + y0) * ow + x0 - dest.first_pixel) * dest.pixel_stride
                        + dest.channel_offset;
                    let tile =
                        core.block_tile(block, tile_mr, (a0, in_ps), (c0, dest.pixel_stride));
                    let rows = TileRepeat {
                        count: y1 - y0,
                        a_step: in_row,
                        w_step: 0,
                        c_step: ow * dest.pixel_stride,
                    };
                    core.run_tiles("conv2d", &tile, rows, &taps, src.data, c)?;
                }
                x0 += tile_mr;
            }
            Ok(())
        })?;
    }
    Ok(())
}
