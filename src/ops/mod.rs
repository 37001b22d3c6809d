//! The operators. Each validates its descriptor and packs its weights once at creation, then
//! runs many times on caller-provided views without allocating.

mod bottleneck;
mod conv1x1;
mod conv2d;
mod inception;
mod maxpool;
mod pool_proj;
mod window;
mod winograd;

pub use bottleneck::{Bottleneck, BottleneckDesc, BottleneckWeights};
pub use conv1x1::Conv1x1;
pub use conv2d::{Conv2d, Conv2dDesc, MAX_KERNEL};
pub use inception::{
    inception_reference, ConvParams, Inception, InceptionConfig, InceptionWeights,
};
pub use maxpool::{MaxPool2d, MaxPool2dDesc, MAX_POOL_KERNEL};
pub use pool_proj::PoolProjection;
pub use window::Padding;

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use aligned_vec::{AVec, ConstAlign};

use incept_kernels::pooling_tile::{
    pool_project, PoolInput, PoolingKernelInfo, Projection, ProjectionOutput,
};
use incept_kernels::winograd::Variant;
use incept_kernels::{
    run_tiles, Clamp, IsaToken, KernelInfo, Tap, TapSet, Tile, TileError, TileRepeat,
};

use crate::error::{checked_product, invalid, mismatch, Error, ErrorKind, Result};
use crate::isa::{self, Isa};
use crate::pack::PackedWeights;

/// The activation fused into an operator's store: applied in registers, never a second pass.
/// NaN sums stay NaN (the bounds are compared, not `f32::max`ed), as in PyTorch.
///
/// # Examples
///
/// ```
/// use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
///
/// // Four pixels of one channel, copied through each epilogue.
/// let x = [-3.0, 0.5, 7.0, 2.0];
/// let shape = Nhwc::new(1, 1, 4, 1);
/// let apply = |epilogue| -> Result<Vec<f32>, incept::Error> {
///     let copy = Conv1x1::new(1, 1, &[1.0], None, epilogue)?;
///     let mut y = vec![0.0; 4];
///     let input = TensorView::new(&x, shape)?;
///     copy.run(&input, &mut TensorViewMut::new(&mut y, shape)?, Parallelism::Sequential)?;
///     Ok(y)
/// };
/// assert_eq!(apply(Epilogue::None)?, [-3.0, 0.5, 7.0, 2.0]);
/// assert_eq!(apply(Epilogue::Relu)?, [0.0, 0.5, 7.0, 2.0]);
/// assert_eq!(apply(Epilogue::Relu6)?, [0.0, 0.5, 6.0, 2.0]);
/// assert_eq!(apply(Epilogue::Clamp { min: -1.0, max: 1.0 })?, [-1.0, 0.5, 1.0, 1.0]);
/// // A clamp must have min <= max.
/// assert!(apply(Epilogue::Clamp { min: 1.0, max: -1.0 }).is_err());
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Epilogue {
    /// Store the sums as they are.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `min(max(x, min), max)`; requires `min <= max` and neither NaN.
    Clamp {
        /// Lower bound (may be `-inf`).
        min: f32,
        /// Upper bound (may be `+inf`).
        max: f32,
    },
}

impl Epilogue {
    /// The clamp the kernels apply. NaN outputs stay NaN; see [`incept_kernels::Clamp`].
    pub(crate) fn clamp(self) -> Result<Clamp> {
        let (min, max) = match self {
            Epilogue::None => return Ok(Clamp::NONE),
            Epilogue::Relu => (0.0, f32::INFINITY),
            Epilogue::Relu6 => (0.0, 6.0),
            Epilogue::Clamp { min, max } => (min, max),
        };
        if min.is_nan() || max.is_nan() || min > max {
            return Err(invalid(format!(
                "epilogue clamp min {min} must be <= max {max}, neither NaN"
            )));
        }
        Ok(Clamp { min, max })
    }
}

/// Options shared by every operator's constructor (`with_options`); `new` uses the default:
/// the best ISA allowed, the direct algorithm ([`Accuracy::Exact`]).
///
/// # Examples
///
/// ```
/// use incept::{Accuracy, ConvAlgorithm, Conv1x1, Epilogue, Isa, OpOptions};
///
/// // Pin one operator to the portable kernels, e.g. to compare it with the SIMD ones.
/// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
/// let conv = Conv1x1::with_options(1, 1, &[1.0], None, Epilogue::None, options)?;
/// assert_eq!(conv.isa(), Isa::Scalar);
/// assert_eq!(OpOptions::default().max_isa, None);
///
/// // Allow fast algorithms (Winograd for 3x3) where they are faster; keep the best ISA.
/// let options = OpOptions { accuracy: Accuracy::Relaxed, ..OpOptions::default() };
/// assert_eq!(options.algorithm, ConvAlgorithm::Auto);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpOptions {
    /// Cap this operator's ISA (on top of the process-wide cap, see [`crate::isa`]); `None` =
    /// the best the process-wide cap allows. An ISA this CPU lacks makes the constructor fail
    /// with [`ErrorKind::UnsupportedIsa`].
    pub max_isa: Option<Isa>,
    /// How 3x3 and 5x5 stride-1 convolutions are computed (also inside the fused operators).
    pub algorithm: ConvAlgorithm,
    /// The accuracy policy [`ConvAlgorithm::Auto`] follows.
    pub accuracy: Accuracy,
    /// How the fused max-pool -> 1x1 projection ([`crate::PoolProjection`], the pool branch of
    /// [`crate::Inception`]) orders its two stages. Either way the outputs are the same bits (up
    /// to the sign of a zero, see [`PoolSchedule`]).
    pub pool_schedule: PoolSchedule,
}

/// How a fused max-pool -> 1x1 projection orders its two stages. The results are the same bits
/// either way, only the speed differs, by CPU; except that which zero a max-pool returns when
/// +0.0 and -0.0 tie is unspecified (as for [`crate::MaxPool2d`]), and with a -0.0 bias such a
/// tie can decide the sign of a zero output.
///
/// # Examples
///
/// ```
/// use incept::{ConvParams, Epilogue, MaxPool2dDesc, OpOptions, PoolProjection, PoolSchedule};
///
/// let proj = ConvParams { weights: &[1.0; 16], bias: None };
/// let options = OpOptions { pool_schedule: PoolSchedule::Separate, ..OpOptions::default() };
/// let op = PoolProjection::with_options(&MaxPool2dDesc::INCEPTION, 16, 1, proj, Epilogue::None, options)?;
/// assert_eq!(op.pool_schedule(), PoolSchedule::Separate);
/// // Interleaving needs a 3x3 stride-1 pool padded by 1 and channels a multiple of 16.
/// let options = OpOptions { pool_schedule: PoolSchedule::Interleaved, ..OpOptions::default() };
/// let odd = ConvParams { weights: &[1.0; 15], bias: None };
/// let err = PoolProjection::with_options(&MaxPool2dDesc::INCEPTION, 15, 1, odd, Epilogue::None, options);
/// assert!(err.is_err());
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolSchedule {
    /// [`PoolSchedule::Interleaved`] where it is possible and the CPU runs vector max
    /// instructions beside its FMAs (AMD Zen 4 and later, where it measured faster), else
    /// [`PoolSchedule::Separate`].
    #[default]
    Auto,
    /// Pool a band of rows into a scratch, then project it (fastest where the max and the
    /// FMAs share execution ports, as on Intel's AVX-512 cores).
    Separate,
    /// Project each tile of 14 pooled pixels while pooling the next one into an L1 buffer, in
    /// the same k loop. Needs AVX-512 (the operator's ISA), a 3x3 stride-1 pool padded by 1 on
    /// every side and input channels a multiple of 16; otherwise the constructor fails with
    /// [`ErrorKind::InvalidArgument`]. A band whose input holds a NaN is recomputed with the
    /// separate schedule (that pool propagates NaNs; this one only detects them), so NaNs
    /// propagate as [`crate::MaxPool2d`] documents.
    Interleaved,
}

impl OpOptions {
    /// The default options with an ISA cap.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Accuracy, ConvAlgorithm, Isa, MaxPool2d, MaxPool2dDesc, OpOptions};
    ///
    /// let options = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// assert_eq!((options.algorithm, options.accuracy), (ConvAlgorithm::Auto, Accuracy::Exact));
    /// assert_eq!(MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options)?.isa(), Isa::Scalar);
    /// // `None` leaves the cap to the process (see `incept::isa`): the same as the default.
    /// assert_eq!(OpOptions::with_max_isa(None), OpOptions::default());
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_max_isa(max_isa: Option<Isa>) -> Self {
        OpOptions {
            max_isa,
            ..OpOptions::default()
        }
    }
}

/// The algorithm of a convolution.
///
/// Winograd F(4x4, 3x3) does 36 multiplies per 4x4 output tile and channel pair where the
/// direct convolution does 144, F(2x2, 5x5) 36 per 2x2 tile where the direct one does 100; but
/// their transforms round differently: outputs are not sums of
/// the exact products, and exactly representable results (integer data) are no longer exact.
/// Its measured error on random data is documented in the README (below 1e-4 relative to the
/// largest output on GoogLeNet-scale layers).
///
/// # Examples
///
/// ```
/// use incept::{Conv2d, Conv2dDesc, ConvAlgorithm, Epilogue, ErrorKind, OpOptions};
///
/// let winograd = OpOptions { algorithm: ConvAlgorithm::Winograd, ..OpOptions::default() };
/// let desc = Conv2dDesc::same(8, 8, 3, Epilogue::Relu);
/// let conv = Conv2d::with_options(&desc, &[0.1; 8 * 9 * 8], None, winograd)?;
/// assert_eq!(conv.algorithm(), ConvAlgorithm::Winograd);
/// // Forcing Winograd on a 7x7 is an error, not a silent fallback to the direct convolution.
/// let seven = Conv2dDesc::same(8, 8, 7, Epilogue::Relu);
/// let err = Conv2d::with_options(&seven, &[0.1; 8 * 49 * 8], None, winograd).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::InvalidArgument);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ConvAlgorithm {
    /// Direct, unless [`OpOptions::accuracy`] is [`Accuracy::Relaxed`] and the convolution is a
    /// stride-1 3x3 or 5x5 with at least [`WINOGRAD_MIN_CHANNELS`] input and output channels,
    /// where Winograd measured faster on AVX-512 and AVX2.
    #[default]
    Auto,
    /// Always the direct convolution.
    Direct,
    /// Winograd: F(4x4, 3x3) for a stride-1 3x3, F(2x2, 5x5) for a stride-1 5x5; an error for
    /// any other convolution.
    Winograd,
}

/// How much a fast algorithm may change the rounding of a convolution.
///
/// # Examples
///
/// ```
/// use incept::{Accuracy, Conv2d, Conv2dDesc, ConvAlgorithm, Epilogue, OpOptions};
///
/// let algorithm = |desc: &Conv2dDesc, accuracy| -> incept::Result<ConvAlgorithm> {
///     let options = OpOptions { accuracy, ..OpOptions::default() };
///     let [kh, kw] = desc.kernel;
///     let weights = vec![0.0; desc.out_channels * kh * kw * desc.in_channels];
///     Ok(Conv2d::with_options(desc, &weights, None, options)?.algorithm())
/// };
/// let wide = Conv2dDesc::same(16, 32, 3, Epilogue::None);
/// assert_eq!(algorithm(&wide, Accuracy::Exact)?, ConvAlgorithm::Direct);
/// assert_eq!(algorithm(&wide, Accuracy::Relaxed)?, ConvAlgorithm::Winograd);
/// // Too few input channels for Winograd to pay off: direct even when relaxed.
/// let narrow = Conv2dDesc::same(8, 32, 3, Epilogue::None);
/// assert_eq!(algorithm(&narrow, Accuracy::Relaxed)?, ConvAlgorithm::Direct);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Accuracy {
    /// Only direct sums of products: every output is the reference's sum in another order, and
    /// exact whenever the exact sum is representable. The default.
    #[default]
    Exact,
    /// Fast algorithms allowed when [`ConvAlgorithm::Auto`] picks them (see there).
    Relaxed,
}

/// The smallest input and output channel counts for which [`ConvAlgorithm::Auto`] picks
/// Winograd under [`Accuracy::Relaxed`]; below it the transforms cost more than they save.
/// At 16 channels F(2x2, 5x5), whose 2x2 tiles make the transforms 4 times as frequent as
/// F(4x4, 3x3)'s, measured (1 thread) 0.86x the direct convolution's time for 16 -> 32 on 28x28
/// (AVX2 0.83x), 0.82-0.94x on 14x14 and 7x7, 0.96x for 16 -> 16 on 28x28.
pub const WINOGRAD_MIN_CHANNELS: usize = 16;

/// The Winograd variant a `kernel` (rows, columns) convolution moving `stride` runs with under
/// `options` (`None`: direct), or an error if Winograd was asked for a convolution it cannot
/// compute (anything but a square 3x3 or 5x5 at stride 1).
pub(crate) fn use_winograd(
    op: &str,
    options: OpOptions,
    (kernel, stride): ([usize; 2], [usize; 2]),
    (in_channels, out_channels): (usize, usize),
) -> Result<Option<Variant>> {
    let ([kh, kw], [sh, sw]) = (kernel, stride);
    let square = kh == kw && sh == sw;
    let variant = Variant::for_kernel(kh).filter(|_| square && sh == 1);
    // A square window prints its side and stride once, a rectangle both axes.
    let shape = if square {
        format!("kernel {kh}, stride {sh}")
    } else {
        format!("kernel {kh}x{kw}, stride {sh},{sw}")
    };
    match options.algorithm {
        ConvAlgorithm::Direct => Ok(None),
        ConvAlgorithm::Winograd if variant.is_some() => Ok(variant),
        ConvAlgorithm::Winograd => Err(invalid(format!(
            "{op}: Winograd needs a 3x3 or 5x5 kernel with stride 1, got {shape}"
        ))),
        ConvAlgorithm::Auto => Ok(variant.filter(|_| {
            options.accuracy == Accuracy::Relaxed
                && in_channels >= WINOGRAD_MIN_CHANNELS
                && out_channels >= WINOGRAD_MIN_CHANNELS
        })),
    }
}

/// Turns a refused tile (an internal inconsistency) into an error.
pub(crate) fn tile_error(op: &str, e: TileError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("{op}: internal error, microkernel refused a tile ({e:?})"),
    )
}

/// Checks OHWI `weights` of `taps` taps and an optional bias against the channel counts.
pub(crate) fn check_weights(
    op: &str,
    (in_channels, out_channels): (usize, usize),
    taps: usize,
    weights: &[f32],
    bias: Option<&[f32]>,
) -> Result<()> {
    if in_channels == 0 || out_channels == 0 {
        return Err(invalid(format!(
            "{op} channels must be at least 1, got in_channels {in_channels}, out_channels {out_channels}"
        )));
    }
    let expected = checked_product(
        &format!("{op} weight count"),
        &[out_channels, taps, in_channels],
    )?;
    if weights.len() != expected {
        return Err(Error::new(
            ErrorKind::BufferTooSmall,
            format!(
                "{op} weights have {} elements but {out_channels} out x {taps} taps x {in_channels} in (OHWI) needs {expected}",
                weights.len()
            ),
        ));
    }
    if let Some(bias) = bias {
        if bias.len() != out_channels {
            return Err(mismatch(format!(
                "{op} bias has {} elements but there are {out_channels} output channels",
                bias.len()
            )));
        }
    }
    Ok(())
}

/// What every convolution shares: validated channel counts, the chosen kernel and ISA proof,
/// the epilogue, and the weights packed for that kernel. The packed weights sit behind an
/// [`Arc`], so cloning a core (and the operator holding it) shares them instead of copying.
#[derive(Clone, Debug)]
pub(crate) struct ConvCore {
    pub(crate) in_channels: usize,
    pub(crate) out_channels: usize,
    pub(crate) epilogue: Epilogue,
    clamp: Clamp,
    pub(crate) isa: Isa,
    token: IsaToken,
    pub(crate) kernel: &'static KernelInfo,
    packed: Arc<PackedWeights>,
}

impl ConvCore {
    /// Validates and packs OHWI `weights` of `taps` (= kh * kw) taps per output channel.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        op: &str,
        in_channels: usize,
        out_channels: usize,
        taps: usize,
        weights: &[f32],
        bias: Option<&[f32]>,
        epilogue: Epilogue,
        options: OpOptions,
    ) -> Result<Self> {
        check_weights(op, (in_channels, out_channels), taps, weights, bias)?;
        let clamp = epilogue.clamp()?;
        let isa = isa::resolve(options.max_isa)?;
        let token = isa.token()?;
        let kernel = incept_kernels::conv_kernel(isa.kernel_isa()).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedIsa,
                format!("no conv kernel for ISA {isa} in this build"),
            )
        })?;
        let packed = Arc::new(PackedWeights::new(
            weights,
            bias,
            out_channels,
            taps,
            in_channels,
            kernel.nr,
        )?);
        Ok(ConvCore {
            in_channels,
            out_channels,
            epilogue,
            clamp,
            isa,
            token,
            kernel,
            packed,
        })
    }

    /// The same convolution on a private copy of the packed weights (see [`Conv2d`]'s replicas).
    ///
    /// [`Conv2d`]: crate::Conv2d
    pub(crate) fn replica(&self) -> ConvCore {
        ConvCore {
            packed: Arc::new(self.packed.copy()),
            ..self.clone()
        }
    }

    /// Bytes of packed weights.
    pub(crate) fn packed_bytes(&self) -> usize {
        std::mem::size_of_val(self.packed.as_slice())
    }

    /// Whether `self` and `other` use the same packed weights (one allocation, not equal copies).
    pub(crate) fn shares_weights_with(&self, other: &ConvCore) -> bool {
        Arc::ptr_eq(&self.packed, &other.packed)
    }

    /// Checks the views' channel counts against the weights'.
    pub(crate) fn check_channels(&self, input_c: usize, output_c: usize) -> Result<()> {
        if input_c != self.in_channels {
            return Err(mismatch(format!(
                "input channels {input_c} do not match weights' {}",
                self.in_channels
            )));
        }
        if output_c != self.out_channels {
            return Err(mismatch(format!(
                "output channels {output_c} do not match weights' {}",
                self.out_channels
            )));
        }
        Ok(())
    }

    /// All packed output-channel blocks.
    pub(crate) fn all_blocks(&self) -> Range<usize> {
        0..self.packed.blocks()
    }

    /// Runs one line of `pixels` output pixels (consecutive tiles of MR) over the output-channel
    /// `blocks`. `a_offset`/`c_offset` locate the line's first pixel; strides step between pixels.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_line(
        &self,
        op: &str,
        taps: &TapSet<'_>,
        a: &[f32],
        a_offset: usize,
        a_pixel_stride: usize,
        c: &mut [f32],
        c_offset: usize,
        c_pixel_stride: usize,
        pixels: usize,
        blocks: Range<usize>,
    ) -> Result<()> {
        // Balanced tiles (49 pixels = 13 + 12 + 12 + 12, not 14 + 14 + 14 + 7): a short tile
        // costs nearly a full one's weight traffic. Each pixel's sum is the same either way.
        let tiles = pixels.div_ceil(self.kernel.mr);
        let mut start = 0;
        for t in 0..tiles {
            let mr = pixels / tiles + usize::from(t < pixels % tiles);
            let a0 = a_offset + start * a_pixel_stride;
            let c0 = c_offset + start * c_pixel_stride;
            self.run_tile(
                op,
                taps,
                a,
                a0,
                a_pixel_stride,
                mr,
                c,
                c0,
                c_pixel_stride,
                blocks.clone(),
            )?;
            start += mr;
        }
        Ok(())
    }

    /// Runs one tile of `mr` pixels over the output-channel `blocks` (the input tile stays in L1
    /// while the blocks' weights stream past it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_tile(
        &self,
        op: &str,
        taps: &TapSet<'_>,
        a: &[f32],
        a_offset: usize,
        a_pixel_stride: usize,
        mr: usize,
        c: &mut [f32],
        c_offset: usize,
        c_pixel_stride: usize,
        blocks: Range<usize>,
    ) -> Result<()> {
        let nr = self.kernel.nr;
        // Full blocks in one call, a last partial block (fewer than NR channels) apart.
        let full = blocks.start..blocks.end.min(self.out_channels / nr).max(blocks.start);
        for blocks in [full.clone(), full.end..blocks.end] {
            let tile = self.block_tile(
                blocks.start,
                mr,
                (a_offset, a_pixel_stride),
                (c_offset, c_pixel_stride),
            );
            let repeat = TileRepeat {
                count: blocks.len(),
                a_step: 0,
                w_step: self.packed.block_len(),
                c_step: nr,
            };
            self.run_tiles(op, &tile, repeat, taps, a, c)?;
        }
        Ok(())
    }

    /// [`ConvCore::run_tile`] of a 1x1 convolution over every output channel: `mr` pixels read
    /// at (offset, pixel stride) `a_at` in `a`, written at `c_at` in `c`.
    pub(crate) fn run_pointwise_tile(
        &self,
        op: &str,
        a: &[f32],
        (a_offset, a_pixel_stride): (usize, usize),
        mr: usize,
        c: &mut [f32],
        (c_offset, c_pixel_stride): (usize, usize),
    ) -> Result<()> {
        self.run_tile(
            op,
            &ONE_TAP_SET,
            a,
            a_offset,
            a_pixel_stride,
            mr,
            c,
            c_offset,
            c_pixel_stride,
            self.all_blocks(),
        )
    }

    /// The tile of `mr` pixels on output-channel block `block`, its input and output at the
    /// given (offset, pixel stride).
    pub(crate) fn block_tile(
        &self,
        block: usize,
        mr: usize,
        (a_offset, a_pixel_stride): (usize, usize),
        (c_offset, c_pixel_stride): (usize, usize),
    ) -> Tile {
        let nr = self.kernel.nr;
        Tile {
            mr,
            nr: nr.min(self.out_channels.saturating_sub(block * nr)),
            k: self.in_channels,
            a_offset,
            a_pixel_stride,
            w_offset: block * self.packed.block_len(),
            c_offset: c_offset + block * nr,
            c_pixel_stride,
            clamp: self.clamp,
        }
    }

    /// [`incept_kernels::run_tiles`] on this operator's packed weights.
    pub(crate) fn run_tiles(
        &self,
        op: &str,
        tile: &Tile,
        repeat: TileRepeat,
        taps: &TapSet<'_>,
        a: &[f32],
        c: &mut [f32],
    ) -> Result<()> {
        let weights = self.packed.as_slice();
        run_tiles(self.kernel, tile, repeat, taps, a, weights, c, self.token)
            .map_err(|e| tile_error(op, e))
    }
}

impl ConvCore {
    /// The pool -> projection of the interleaved schedule with this operator as the projection
    /// (see [`incept_kernels::pooling_tile::pool_project`]): returns whether the pool saw no
    /// NaN.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn pool_project(
        &self,
        op: &str,
        pooling: &PoolingKernelInfo,
        input: &PoolInput<'_>,
        pixels: Range<usize>,
        scratch: &mut [f32],
        out: ProjectionOutput<'_>,
    ) -> Result<bool> {
        let proj = Projection {
            weights: self.packed.as_slice(),
            block_len: self.packed.block_len(),
            out_channels: self.out_channels,
            clamp: self.clamp,
        };
        pool_project(pooling, input, pixels, &proj, scratch, out, self.token)
            .map_err(|e| tile_error(op, e))
    }
}

type ScratchCell = RefCell<AVec<f32, ConstAlign<64>>>;

thread_local! {
    /// Per-thread scratch for reduced rows, grown on first use and then reused: after the first
    /// run on a thread, `run` allocates nothing.
    static SCRATCH: ScratchCell = RefCell::new(AVec::new(64));
    /// Per-thread Winograd tiles: a second buffer, because a Winograd 3x3 runs inside the fused
    /// operators while they hold `SCRATCH`.
    static WINOGRAD_SCRATCH: ScratchCell = RefCell::new(AVec::new(64));
    /// Per-thread buffer for an intermediate that the tasks of one run share (the module's
    /// reductions of a whole image, see `Inception::run`): held by the calling thread while the
    /// tasks run, so a third cell.
    static SHARED_SCRATCH: ScratchCell = RefCell::new(AVec::new(64));
}

/// Runs `f` with the first `len` elements of `cell`, grown if needed.
fn with_cell<R>(cell: &ScratchCell, len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut scratch = cell.borrow_mut();
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    f(&mut scratch[..len])
}

/// Runs `f` with a per-thread scratch of at least `len` elements.
pub(crate) fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| with_cell(cell, len, f))
}

/// Runs `f` with this thread's shared-intermediate buffer of at least `len` elements, or returns
/// `None` if the buffer is in use: the thread holds it across a parallel region, in which rayon
/// may run another operator's tasks on it.
pub(crate) fn try_with_shared_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> Option<R> {
    SHARED_SCRATCH.with(|cell| {
        let mut scratch = cell.try_borrow_mut().ok()?;
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        Some(f(&mut scratch[..len]))
    })
}

/// [`with_scratch`] for the Winograd tiles.
pub(crate) fn with_winograd_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    WINOGRAD_SCRATCH.with(|cell| with_cell(cell, len, f))
}

/// The single tap of a 1x1 convolution.
pub(crate) const ONE_TAP: [Tap; 1] = [Tap::new(0, 0)];

/// [`ONE_TAP`] as a tap set, built once at compile time.
pub(crate) const ONE_TAP_SET: TapSet<'static> = TapSet::new(&ONE_TAP);
