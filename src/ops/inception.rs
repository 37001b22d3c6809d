//! The whole Inception module in one call, concatenating in place.
//!
//! ```text
//!            +-> 1x1 c1x1 ----------------------------+
//!   input ---+-> 1x1 reduce3 -> 3x3 c3x3 -------------+--> output [1x1 | 3x3 | 5x5 | pool]
//!            +-> 1x1 reduce5 -> 5x5 c5x5 -------------+
//!            +-> 3x3 max-pool (stride 1) -> 1x1 proj -+
//! ```
//! Every convolution is followed by its bias and ReLU, as in GoogLeNet. Each branch stores
//! straight into its channel slice of the caller's output view (itself possibly a slice of a
//! wider tensor), so the concatenation costs nothing.
//!
//! One task owns a range of output rows and walks it in bands:
//! 1. *Horizontal fusion*: the 1x1 convolutions that read the module input (the 1x1 branch and
//!    the two reductions) run as one pass: for each tile of input pixels, every block of every
//!    one of them, while the tile is in L1. The 1x1 branch writes to the output, the reductions
//!    to per-thread scratch rows (band plus halo, kept from band to band as in [`super::Bottleneck`]).
//! 2. The 3x3 and 5x5 convolutions read those scratch rows (vertical fusion).
//! 3. The pool branch pools the band into scratch and projects it with the 1x1 kernel.
//!
//! When a task boundary falls inside an image (threads split images), each task would
//! recompute the reduced rows around its edges. If the whole batch's reduced rows fit in the
//! memory the tasks' bands would take, the run goes in two parallel steps instead: every task
//! computes the reductions of its own rows into one shared buffer, then every task runs steps 1
//! (the 1x1 branch only) to 3 reading it. Either way the sums are the same, so the output is
//! the same bits.
//!
//! No intermediate tensor larger than the bands is ever materialised; scratch is
//! O(threads x band).

use incept_kernels::pooling_tile::PoolingKernelInfo;

use super::conv2d::{Dest, Engine, Source, MAX_KERNEL};
use super::maxpool::{MaxPool2d, MaxPool2dDesc};
use super::pool_proj::{interleaved_scratch_pixels, interleaving, pool_project_interleaved};
use super::window::{Padding, Window};
use super::{try_with_shared_scratch, with_scratch, ConvCore, Epilogue, OpOptions, ONE_TAP_SET};
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::error::{invalid, mismatch, Error, Result};
use crate::isa::Isa;
use crate::parallel::{chunk_rows, for_each_output_chunk, threads_share_images, Parallelism};
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

/// Channel counts of an Inception module (GoogLeNet's table). A reduction or the pool
/// projection may be left out (`None`): the 3x3/5x5 then reads the input directly, and the pool
/// branch passes all `in_channels` pooled channels through.
///
/// # Examples
///
/// ```
/// use incept::InceptionConfig;
///
/// let (name, config, side) = InceptionConfig::GOOGLENET[0];
/// assert_eq!((name, side), ("3a", 28));
/// assert_eq!(config, InceptionConfig::googlenet(192, 64, 96, 128, 16, 32, 32));
/// assert_eq!(config.out_channels(), 64 + 128 + 32 + 32);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InceptionConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the 1x1 branch.
    pub c1x1: usize,
    /// Output channels of the 1x1 reduction before the 3x3.
    pub c3x3_reduce: Option<usize>,
    /// Output channels of the 3x3 branch.
    pub c3x3: usize,
    /// Output channels of the 1x1 reduction before the 5x5.
    pub c5x5_reduce: Option<usize>,
    /// Output channels of the 5x5 branch.
    pub c5x5: usize,
    /// Output channels of the 1x1 projection after the pool.
    pub pool_proj: Option<usize>,
}

impl InceptionConfig {
    /// GoogLeNet's nine modules with their spatial size: `(name, config, height = width)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::InceptionConfig;
    ///
    /// // Each module's output feeds the next one (4a and 5a after a stride-2 pool).
    /// for pair in InceptionConfig::GOOGLENET.windows(2) {
    ///     assert_eq!(pair[0].1.out_channels(), pair[1].1.in_channels);
    /// }
    /// ```
    pub const GOOGLENET: [(&'static str, InceptionConfig, usize); 9] = [
        ("3a", Self::googlenet(192, 64, 96, 128, 16, 32, 32), 28),
        ("3b", Self::googlenet(256, 128, 128, 192, 32, 96, 64), 28),
        ("4a", Self::googlenet(480, 192, 96, 208, 16, 48, 64), 14),
        ("4b", Self::googlenet(512, 160, 112, 224, 24, 64, 64), 14),
        ("4c", Self::googlenet(512, 128, 128, 256, 24, 64, 64), 14),
        ("4d", Self::googlenet(512, 112, 144, 288, 32, 64, 64), 14),
        ("4e", Self::googlenet(528, 256, 160, 320, 32, 128, 128), 14),
        ("5a", Self::googlenet(832, 256, 160, 320, 32, 128, 128), 7),
        ("5b", Self::googlenet(832, 384, 192, 384, 48, 128, 128), 7),
    ];

    /// A module with every reduction and the pool projection, as in GoogLeNet. The arguments
    /// are the columns of the GoogLeNet paper's table, in its order.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::InceptionConfig;
    ///
    /// let config = InceptionConfig::googlenet(192, 64, 96, 128, 16, 32, 32);
    /// assert_eq!((config.c3x3_reduce, config.pool_proj), (Some(96), Some(32)));
    /// ```
    pub const fn googlenet(
        in_channels: usize,
        c1x1: usize,
        c3x3_reduce: usize,
        c3x3: usize,
        c5x5_reduce: usize,
        c5x5: usize,
        pool_proj: usize,
    ) -> Self {
        InceptionConfig {
            in_channels,
            c1x1,
            c3x3_reduce: Some(c3x3_reduce),
            c3x3,
            c5x5_reduce: Some(c5x5_reduce),
            c5x5,
            pool_proj: Some(pool_proj),
        }
    }

    /// Output channels: `c1x1 + c3x3 + c5x5 + (pool_proj or in_channels)`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::InceptionConfig;
    ///
    /// let with_proj = InceptionConfig::googlenet(192, 64, 96, 128, 16, 32, 32);
    /// assert_eq!(with_proj.out_channels(), 256);
    /// // Without a projection the pool branch passes all 192 input channels through.
    /// let without = InceptionConfig { pool_proj: None, ..with_proj };
    /// assert_eq!(without.out_channels(), 64 + 128 + 32 + 192);
    /// ```
    pub fn out_channels(&self) -> usize {
        self.c1x1 + self.c3x3 + self.c5x5 + self.pool_proj.unwrap_or(self.in_channels)
    }
}

/// OHWI weights and optional bias of one convolution (borrowed while an operator is created).
///
/// # Examples
///
/// ```
/// use incept::ConvParams;
///
/// let weights = vec![0.0; 64 * 192];
/// let bias = vec![0.0; 64];
/// let params = ConvParams { weights: &weights, bias: Some(&bias) };
/// assert_eq!(params.weights.len(), 64 * 192);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ConvParams<'a> {
    /// Weights, OHWI.
    pub weights: &'a [f32],
    /// Bias, one per output channel.
    pub bias: Option<&'a [f32]>,
}

/// Weights of every convolution of a module; a reduction or projection must be present exactly
/// when the config has it. See [`Inception`] for a complete example.
///
/// # Examples
///
/// ```
/// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights};
///
/// // The smallest full module: every convolution has one input and one output channel.
/// let config = InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1);
/// let one = ConvParams { weights: &[1.0], bias: None };
/// let weights = InceptionWeights {
///     conv1x1: one,
///     reduce3x3: Some(one),
///     conv3x3: ConvParams { weights: &[1.0; 9], bias: None },
///     reduce5x5: Some(one),
///     conv5x5: ConvParams { weights: &[1.0; 25], bias: None },
///     pool_proj: Some(one),
/// };
/// assert!(Inception::new(&config, &weights).is_ok());
/// // The config has a pool projection, so its weights cannot be left out.
/// assert!(Inception::new(&config, &InceptionWeights { pool_proj: None, ..weights }).is_err());
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct InceptionWeights<'a> {
    /// 1x1 branch, `c1x1 x in_channels`.
    pub conv1x1: ConvParams<'a>,
    /// 3x3 reduction, `c3x3_reduce x in_channels`.
    pub reduce3x3: Option<ConvParams<'a>>,
    /// 3x3, `c3x3 x 3 x 3 x (c3x3_reduce or in_channels)`.
    pub conv3x3: ConvParams<'a>,
    /// 5x5 reduction, `c5x5_reduce x in_channels`.
    pub reduce5x5: Option<ConvParams<'a>>,
    /// 5x5, `c5x5 x 5 x 5 x (c5x5_reduce or in_channels)`.
    pub conv5x5: ConvParams<'a>,
    /// Pool projection, `pool_proj x in_channels`.
    pub pool_proj: Option<ConvParams<'a>>,
}

/// A whole Inception module: four branches, each writing its slice of one concatenated output.
///
/// ```text
///            +-> 1x1 c1x1 ----------------------------+
///   input ---+-> 1x1 reduce3 -> 3x3 c3x3 -------------+--> output [1x1 | 3x3 | 5x5 | pool]
///            +-> 1x1 reduce5 -> 5x5 c5x5 -------------+
///            +-> 3x3 max-pool (stride 1) -> 1x1 proj -+
/// ```
///
/// Every convolution adds its bias and applies ReLU. The three 1x1 convolutions that read the
/// input run as one pass; the reduced and pooled rows live in per-thread scratch
/// ([`Inception::scratch_bytes_per_thread`]), never in a full intermediate tensor.
///
/// # Examples
///
/// The module agrees with [`inception_reference`], its layer-by-layer oracle:
///
/// ```
/// use incept::{
///     inception_reference, ConvParams, Inception, InceptionConfig, InceptionWeights, Nhwc,
///     Parallelism, TensorView, TensorViewMut,
/// };
///
/// // 1 input channel, one output channel per branch, no reductions, no pool projection.
/// let config = InceptionConfig {
///     in_channels: 1,
///     c1x1: 1,
///     c3x3_reduce: None,
///     c3x3: 1,
///     c5x5_reduce: None,
///     c5x5: 1,
///     pool_proj: None,
/// };
/// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
/// let weights = InceptionWeights {
///     conv1x1: ConvParams { weights: &w1, bias: None },
///     reduce3x3: None,
///     conv3x3: ConvParams { weights: &w3, bias: None },
///     reduce5x5: None,
///     conv5x5: ConvParams { weights: &w5, bias: None },
///     pool_proj: None,
/// };
/// let module = Inception::new(&config, &weights)?;
///
/// let shape = Nhwc::new(1, 4, 4, 1);
/// let x: Vec<f32> = (0..16).map(|i| (i % 5) as f32 - 2.0).collect();
/// let out = module.output_shape(shape);
/// assert_eq!(out.c, 4); // [1x1 | 3x3 | 5x5 | the pooled input]
/// let mut y = vec![0.0; out.element_count()?];
/// module.run(
///     &TensorView::new(&x, shape)?,
///     &mut TensorViewMut::new(&mut y, out)?,
///     Parallelism::Global,
/// )?;
/// assert_eq!(y, inception_reference(&config, &weights, &x, shape)?);
/// # Ok::<(), incept::Error>(())
/// ```
///
/// `Inception` is `Send + Sync`: any number of threads may run one operator at once,
/// through a reference or an `Arc`. Cloning is cheap: a clone shares the packed weights
/// (reference-counted, never copied); see [`Inception::shares_weights_with`].
#[derive(Clone, Debug)]
pub struct Inception {
    config: InceptionConfig,
    conv1: ConvCore,
    reduce3: Option<ConvCore>,
    /// Direct or Winograd, as the options choose (see [`crate::ConvAlgorithm`]).
    conv3: Engine,
    window3: Window,
    reduce5: Option<ConvCore>,
    /// Direct or Winograd, as for the 3x3.
    conv5: Engine,
    window5: Window,
    pool: MaxPool2d,
    proj: Option<ConvCore>,
    /// The pooling tile kernel if the pool branch is interleaved (see [`crate::PoolSchedule`]).
    pooling: Option<&'static PoolingKernelInfo>,
}

/// Bytes a band's rows aim for, about half of L2: its reduced rows and halos, and the input rows
/// the pool reads (`in_channels` per pixel when there is a projection). Long bands mattered
/// when the 3x3's left and right border columns ran as lines down the band (a one-row band made
/// them single-pixel tiles, the module 7% slower than layer by layer); borders now run as row
/// lines (see `conv2d`), and the band sizes were not re-tuned since.
const BAND_TARGET_BYTES: usize = 1024 * 1024;

/// Output rows the pool branch pools, then projects, at a time. Its scratch (2 rows of 28 x 192
/// floats: 43 KB) then stays in L1/L2; a whole band of pooled rows (14 rows: 301 KB) pushed the
/// 3x3's weights out of L2, and the module (3a, one thread) took 1.01x the time.
const POOL_ROWS: usize = 2;

/// Rows a Winograd tile row may need beyond a band's halo, on each side.
const WINOGRAD_SLACK: usize = 3;

impl Inception {
    /// Creates the module on the best ISA allowed: validates and packs every convolution.
    ///
    /// # Errors
    ///
    /// As [`Conv2d::new`](crate::Conv2d::new) for each convolution (messages name the branch,
    /// e.g. `3x3 reduction`); [`ErrorKind::InvalidArgument`] if a reduction or the projection
    /// is in the config but not in the weights, or the other way round.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights};
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// assert_eq!(module.config().c5x5, 1);
    ///
    /// // The config has no 3x3 reduction, so weights for one are an error.
    /// let extra =
    ///     InceptionWeights { reduce3x3: Some(ConvParams { weights: &[1.0], bias: None }), ..weights };
    /// assert!(Inception::new(&config, &extra).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(config: &InceptionConfig, weights: &InceptionWeights<'_>) -> Result<Self> {
        Self::with_options(config, weights, OpOptions::default())
    }

    /// Like [`Inception::new`], with options (e.g. an ISA cap); the options apply to every
    /// convolution and the pool of the module.
    ///
    /// # Errors
    ///
    /// As [`Inception::new`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights, Isa, OpOptions};
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// let scalar =
    ///     Inception::with_options(&config, &weights, OpOptions::with_max_isa(Some(Isa::Scalar)))?;
    /// assert_eq!(scalar.isa(), Isa::Scalar);
    /// assert!(incept::isa::available().contains(&module.isa()));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn with_options(
        config: &InceptionConfig,
        weights: &InceptionWeights<'_>,
        options: OpOptions,
    ) -> Result<Self> {
        let cin = config.in_channels;
        let relu = Epilogue::Relu;
        let core = |name: &str, cin: usize, cout: usize, taps: usize, p: ConvParams<'_>| {
            ConvCore::new(name, cin, cout, taps, p.weights, p.bias, relu, options)
        };
        let optional = |name: &str, cout: Option<usize>, p: Option<ConvParams<'_>>| match (cout, p)
        {
            (Some(cout), Some(p)) => core(name, cin, cout, 1, p).map(Some),
            (None, None) => Ok(None),
            (Some(_), None) => Err(invalid(format!(
                "inception config has a {name} but no weights were given for it"
            ))),
            (None, Some(_)) => Err(invalid(format!(
                "inception weights include a {name} the config does not have"
            ))),
        };
        let reduce3 = optional("3x3 reduction", config.c3x3_reduce, weights.reduce3x3)?;
        let reduce5 = optional("5x5 reduction", config.c5x5_reduce, weights.reduce5x5)?;
        let proj = optional("pool projection", config.pool_proj, weights.pool_proj)?;
        let conv1 = core("1x1 branch", cin, config.c1x1, 1, weights.conv1x1)?;
        let window3 = Window::new("inception 3x3", 3, 1, Padding::same(3), MAX_KERNEL)?;
        let conv3 = Engine::new(
            "3x3 branch",
            (config.c3x3_reduce.unwrap_or(cin), config.c3x3),
            &window3,
            weights.conv3x3.weights,
            weights.conv3x3.bias,
            relu,
            options,
        )?;
        let window5 = Window::new("inception 5x5", 5, 1, Padding::same(5), MAX_KERNEL)?;
        let conv5 = Engine::new(
            "5x5 branch",
            (config.c5x5_reduce.unwrap_or(cin), config.c5x5),
            &window5,
            weights.conv5x5.weights,
            weights.conv5x5.bias,
            relu,
            options,
        )?;
        let pool = MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options)?;
        let pooling = match &proj {
            Some(proj) => interleaving(
                "inception",
                &MaxPool2dDesc::INCEPTION,
                cin,
                proj.isa,
                options.pool_schedule,
            )?,
            // No projection: the pool writes its output directly, nothing to interleave.
            None => None,
        };
        Ok(Inception {
            pooling,
            config: *config,
            conv1,
            reduce3,
            conv3,
            window3,
            reduce5,
            conv5,
            window5,
            pool,
            proj,
        })
    }

    /// The configuration.
    ///
    /// # Examples
    ///
    /// With one channel per convolution (the weights as in [`InceptionWeights`]' example):
    ///
    /// ```
    /// use incept::{Inception, InceptionConfig};
    /// # use incept::{ConvParams, InceptionWeights};
    /// # let one = ConvParams { weights: &[1.0], bias: None };
    /// # let weights = InceptionWeights {
    /// #     conv1x1: one,
    /// #     reduce3x3: Some(one),
    /// #     conv3x3: ConvParams { weights: &[1.0; 9], bias: None },
    /// #     reduce5x5: Some(one),
    /// #     conv5x5: ConvParams { weights: &[1.0; 25], bias: None },
    /// #     pool_proj: Some(one),
    /// # };
    ///
    /// let config = InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1);
    /// let module = Inception::new(&config, &weights)?;
    /// assert_eq!(module.config(), &config);
    /// assert_eq!(module.config().out_channels(), 4);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn config(&self) -> &InceptionConfig {
        &self.config
    }

    /// Whether `self` and `other` run on the same packed weights: true for an operator and its
    /// clones, false for operators created separately (even from equal weights).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights};
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([1.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// assert!(module.clone().shares_weights_with(&module));
    /// assert!(!Inception::new(&config, &weights)?.shares_weights_with(&module));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn shares_weights_with(&self, other: &Self) -> bool {
        let same = |a: &Option<ConvCore>, b: &Option<ConvCore>| match (a, b) {
            (Some(a), Some(b)) => a.shares_weights_with(b),
            (None, None) => true,
            _ => false,
        };
        self.conv1.shares_weights_with(&other.conv1)
            && same(&self.reduce3, &other.reduce3)
            && self.conv3.shares_weights_with(&other.conv3)
            && same(&self.reduce5, &other.reduce5)
            && self.conv5.shares_weights_with(&other.conv5)
            && same(&self.proj, &other.proj)
    }

    /// The ISA this module runs on.
    ///
    /// # Examples
    ///
    /// With one channel per convolution (the weights as in [`InceptionWeights`]' example):
    ///
    /// ```
    /// use incept::{isa, Inception, InceptionConfig, Isa, OpOptions};
    /// # use incept::{ConvParams, InceptionWeights};
    /// # let one = ConvParams { weights: &[1.0], bias: None };
    /// # let weights = InceptionWeights {
    /// #     conv1x1: one,
    /// #     reduce3x3: Some(one),
    /// #     conv3x3: ConvParams { weights: &[1.0; 9], bias: None },
    /// #     reduce5x5: Some(one),
    /// #     conv5x5: ConvParams { weights: &[1.0; 25], bias: None },
    /// #     pool_proj: Some(one),
    /// # };
    ///
    /// let config = InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1);
    /// // Uncapped, the module gets the best ISA the process-wide cap allows.
    /// assert_eq!(Inception::new(&config, &weights)?.isa(), isa::resolve(None)?);
    /// let capped = OpOptions::with_max_isa(Some(Isa::Scalar));
    /// assert_eq!(Inception::with_options(&config, &weights, capped)?.isa(), Isa::Scalar);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn isa(&self) -> Isa {
        self.conv1.isa
    }

    /// Output shape for `input`: same batch and spatial size, `config.out_channels()` channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights, Nhwc};
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// assert_eq!(module.output_shape(Nhwc::new(2, 28, 28, 1)), Nhwc::new(2, 28, 28, 4));
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn output_shape(&self, input: Nhwc) -> Nhwc {
        Nhwc {
            c: self.config.out_channels(),
            ..input
        }
    }

    /// Multiply-adds of every convolution for `input`, padded taps included (as usually counted).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights, Nhwc};
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// // Per pixel: 1 (1x1) + 9 (3x3) + 25 (5x5); the pool has no multiplies.
    /// assert_eq!(module.macs(Nhwc::new(1, 4, 4, 1)), 16 * 35);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn macs(&self, input: Nhwc) -> u64 {
        let cfg = &self.config;
        let px = input.pixels() as u64;
        let cin = cfg.in_channels as u64;
        let r3 = cfg.c3x3_reduce.map_or(cin, |r| r as u64);
        let r5 = cfg.c5x5_reduce.map_or(cin, |r| r as u64);
        let reductions = cfg.c3x3_reduce.unwrap_or(0)
            + cfg.c5x5_reduce.unwrap_or(0)
            + cfg.pool_proj.unwrap_or(0);
        let per_pixel = cin * (cfg.c1x1 + reductions) as u64
            + 9 * r3 * cfg.c3x3 as u64
            + 25 * r5 * cfg.c5x5 as u64;
        px.saturating_mul(per_pixel)
    }

    /// Output rows per band for width `w`, and the halo rows the reductions need above and below.
    ///
    /// With a Winograd 3x3 or 5x5 the band is a multiple of 4 rows (whole tile rows of both tile
    /// sizes, 4 and 2 rows), long enough for its GEMMs to reuse each packed filter transform over
    /// many tiles; its tiles may also need up to [`WINOGRAD_SLACK`] rows beyond the halo when a
    /// task starts inside a tile row.
    fn band(&self, w: usize) -> (usize, usize) {
        if let Some(wino) = self.conv3.winograd().or(self.conv5.winograd()) {
            let halo = if self.reduce5.is_some() { 2 } else { 1 };
            return (wino.fused_band_rows(w), halo);
        }
        let halo = match (self.reduce3.is_some(), self.reduce5.is_some()) {
            (_, true) => 2,
            (true, false) => 1,
            (false, false) => 0,
        };
        let reduced = self.config.c3x3_reduce.unwrap_or(0) + self.config.c5x5_reduce.unwrap_or(0);
        let pooled = if self.proj.is_some() {
            self.config.in_channels
        } else {
            0
        };
        let row_bytes = w.saturating_mul(reduced + pooled).saturating_mul(4).max(1);
        (
            (BAND_TARGET_BYTES / row_bytes)
                .saturating_sub(2 * halo)
                .clamp(1, 32),
            halo,
        )
    }

    /// Scratch elements per thread for width `w`: reduced rows (band + halos) and pooled rows.
    fn scratch_len(&self, w: usize) -> (usize, usize, usize) {
        let (band, halo) = self.band(w);
        let rows = band + 2 * halo + 2 * WINOGRAD_SLACK;
        let len = |rows: usize, c: usize| rows.saturating_mul(w).saturating_mul(c);
        (
            len(rows, self.config.c3x3_reduce.unwrap_or(0)),
            len(rows, self.config.c5x5_reduce.unwrap_or(0)),
            if self.proj.is_some() {
                let tiles = interleaved_scratch_pixels(self.pooling);
                len(band.min(POOL_ROWS), self.config.in_channels)
                    .max(tiles.saturating_mul(self.config.in_channels))
            } else {
                0
            },
        )
    }

    /// Peak scratch per thread, in bytes, for an input of width `w` (independent of height):
    /// reduced rows with their halos and pooled rows. It comes from incept's per-thread scratch
    /// cache (see the crate docs, "Scratch memory"). When a run's tasks end inside images and
    /// share one buffer of the batch's reduced rows instead, that buffer, held by the calling
    /// thread, is at most the run's thread count times the reduced rows counted here.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ConvParams, Inception, InceptionConfig, InceptionWeights};
    ///
    /// let config = InceptionConfig::googlenet(192, 64, 96, 128, 16, 32, 32);
    /// let sizes = [(64, 192), (96, 192), (128, 9 * 96), (16, 192), (32, 25 * 16), (32, 192)];
    /// let data: Vec<Vec<f32>> = sizes.iter().map(|&(o, i)| vec![0.01; o * i]).collect();
    /// let p = |i: usize| ConvParams { weights: &data[i], bias: None };
    /// let weights = InceptionWeights {
    ///     conv1x1: p(0),
    ///     reduce3x3: Some(p(1)),
    ///     conv3x3: p(2),
    ///     reduce5x5: Some(p(3)),
    ///     conv5x5: p(4),
    ///     pool_proj: Some(p(5)),
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// let per_thread = module.scratch_bytes_per_thread(28);
    /// // A band of at most 32 rows (plus halos), whatever the height: far less than the
    /// // intermediates of a 224-row image.
    /// assert!(per_thread > 0 && per_thread < 224 * 28 * (96 + 16 + 192) * 4);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn scratch_bytes_per_thread(&self, w: usize) -> usize {
        let (s3, s5, sp) = self.scratch_len(w);
        // The 3x3 and 5x5 run one after the other: they share the Winograd scratch.
        let winograd = [&self.conv3, &self.conv5]
            .iter()
            .filter_map(|engine| engine.winograd())
            .map(|wino| wino.scratch_bytes(w))
            .max()
            .unwrap_or(0);
        s3.saturating_add(s5)
            .saturating_add(sp)
            .saturating_mul(std::mem::size_of::<f32>())
            .saturating_add(winograd)
    }

    /// Runs the module: `output` (n x h x w x `config.out_channels()`, possibly a channel slice of
    /// a wider tensor) receives `[1x1 | 3x3 | 5x5 | pool]`. After the first run on a thread,
    /// allocates nothing. Bit-identical for every [`Parallelism`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::ShapeMismatch`] if the input channels are not `config.in_channels` or the
    /// output shape is not [`Inception::output_shape`] of the input. Nothing is written then.
    ///
    /// # Examples
    ///
    /// The module writing into channels 1..5 of a 6-channel tensor, e.g. to concatenate it with
    /// other layers' outputs:
    ///
    /// ```
    /// use incept::{
    ///     ConvParams, Inception, InceptionConfig, InceptionWeights, Nhwc, Parallelism, TensorView,
    ///     TensorViewMut,
    /// };
    ///
    /// // 1 input channel, one output channel per branch, no reductions, no pool projection.
    /// let config = InceptionConfig {
    ///     in_channels: 1,
    ///     c1x1: 1,
    ///     c3x3_reduce: None,
    ///     c3x3: 1,
    ///     c5x5_reduce: None,
    ///     c5x5: 1,
    ///     pool_proj: None,
    /// };
    /// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
    /// let weights = InceptionWeights {
    ///     conv1x1: ConvParams { weights: &w1, bias: None },
    ///     reduce3x3: None,
    ///     conv3x3: ConvParams { weights: &w3, bias: None },
    ///     reduce5x5: None,
    ///     conv5x5: ConvParams { weights: &w5, bias: None },
    ///     pool_proj: None,
    /// };
    /// let module = Inception::new(&config, &weights)?;
    /// let shape = Nhwc::new(1, 3, 3, 1);
    /// let x = [1.0; 9];
    /// let mut y = vec![-1.0; 9 * 6];
    /// let mut slice = TensorViewMut::with_layout(&mut y, module.output_shape(shape), 6, 1)?;
    /// module.run(&TensorView::new(&x, shape)?, &mut slice, Parallelism::Sequential)?;
    /// // The centre pixel: 1x1 = 2, 3x3 = 9 ones, 5x5 = the 9 pixels there are, pool = 1.
    /// assert_eq!(y[4 * 6..5 * 6], [-1.0, 2.0, 9.0, 9.0, 1.0, -1.0]);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn run(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        let (ishape, oshape) = (input.shape(), output.shape());
        let cfg = self.config;
        if ishape.c != cfg.in_channels {
            return Err(mismatch(format!(
                "input channels {} do not match the module's {}",
                ishape.c, cfg.in_channels
            )));
        }
        let expected = self.output_shape(ishape);
        if oshape != expected {
            return Err(mismatch(format!(
                "inception output shape {oshape} does not match the expected {expected}"
            )));
        }
        let (h, w) = (ishape.h, ishape.w);
        let rows_total = ishape.n * h;
        let macs = usize::try_from(self.macs(ishape)).unwrap_or(usize::MAX);
        // A Winograd 3x3 or 5x5 wants tasks of whole tile rows: multiples of 4 rows suit both.
        let any_winograd = self.conv3.is_winograd() || self.conv5.is_winograd();
        let granule = if any_winograd { 4 } else { 1 };
        let chunk_rows = chunk_rows(par, ishape.n, rows_total, granule, macs);
        let (band, _) = self.band(w);
        let (len3, len5, lenp) = self.scratch_len(w);
        let (r3, r5) = (cfg.c3x3_reduce.unwrap_or(0), cfg.c5x5_reduce.unwrap_or(0));
        let out_ps = output.pixel_stride();
        let (a, a_ps) = (input.data(), input.pixel_stride());
        let in_src = Source {
            data: a,
            shape: ishape,
            pixel_stride: a_ps,
            offset: input.offset(),
        };
        let (off3, off5, offp) = (
            cfg.c1x1,
            cfg.c1x1 + cfg.c3x3,
            cfg.c1x1 + cfg.c3x3 + cfg.c5x5,
        );

        // The tasks, each walking its rows in bands. With `shared`, the reductions of every row
        // are already there (pixel stride `r3 + r5`, the 5x5's after the 3x3's); else each task
        // computes the rows it needs into its own scratch.
        let bands = |shared: Option<&[f32]>, out: &mut [f32]| {
            let (len3, len5) = if shared.is_some() {
                (0, 0)
            } else {
                (len3, len5)
            };
            for_each_output_chunk(par, out, out_ps, chunk_rows * w, |first, c| {
                let (g0, g1) = (first / w, (first / w + chunk_rows).min(rows_total));
                with_scratch(len3 + len5 + lenp, |scratch| {
                    let (s3, rest) = scratch.split_at_mut(len3);
                    let (s5, sp) = rest.split_at_mut(len5);
                    // Reduced rows held in s3/s5 from the previous band (`None` before the
                    // first band of the task).
                    let mut held: Option<Held> = None;
                    // The first row (counted over the batch) whose 1x1 branch is not done yet.
                    let mut branch_next = g0;
                    let mut g = g0;
                    while g < g1 {
                        let n = g / h;
                        let y0 = g - n * h;
                        let y1 = if any_winograd {
                            // Bands end on 4-row boundaries; every tile's 6 input rows are
                            // present.
                            (y0 - y0 % 4 + band).min(h).min(g1 - n * h)
                        } else {
                            // Equal bands (14 + 14 rows, not 26 + 2): measured 0.98x the time
                            // when borders ran as column lines, whose length is the band's.
                            let end = h.min(g1 - n * h);
                            let bands = (end - y0).div_ceil(band);
                            (y0 + (end - y0).div_ceil(bands)).min(end)
                        };
                        // Each reduction computes only the rows its own KxK reads: the 3x3's
                        // one-row halo, not the 5x5's two (at two threads on one 28x28 image,
                        // a 96-channel row less per task).
                        let own_reductions = shared.is_none();
                        let need3 = (r3 > 0 && own_reductions)
                            .then(|| rows_read(&self.conv3, 1, (y0, y1), h));
                        let need5 = (r5 > 0 && own_reductions)
                            .then(|| rows_read(&self.conv5, 2, (y0, y1), h));
                        // Scratch row 0 is image row `lo`.
                        let lo = [need3, need5]
                            .iter()
                            .flatten()
                            .map(|r| r.0)
                            .min()
                            .unwrap_or(y0);
                        let (mut valid3, mut valid5) = ((lo, lo), (lo, lo));
                        if let Some(prev) = held.filter(|prev| prev.n == n && prev.base <= lo) {
                            // Move the rows still needed to the front of the scratch.
                            let shift = lo - prev.base;
                            for (s, r, prev_valid, valid) in [
                                (&mut *s3, r3, prev.valid3, &mut valid3),
                                (&mut *s5, r5, prev.valid5, &mut valid5),
                            ] {
                                if prev_valid.1 > lo {
                                    let end = prev_valid.1 - prev.base;
                                    s.copy_within(shift * w * r..end * w * r, 0);
                                    *valid = (prev_valid.0.max(lo), prev_valid.1);
                                }
                            }
                        }
                        let (todo3, after3) =
                            need3.map_or(((lo, lo), valid3), |need| plan_rows(need, valid3));
                        let (todo5, after5) =
                            need5.map_or(((lo, lo), valid5), |need| plan_rows(need, valid5));
                        // The 1x1 branch rides along with the reductions' rows that are the
                        // task's own, so each input tile is loaded once for all three.
                        let own = (g0.max(n * h) - n * h, g1.min((n + 1) * h) - n * h);
                        let branch_from = branch_next.saturating_sub(n * h).max(own.0);
                        let todo_branch = (
                            branch_from,
                            own.1.min(y1.max(todo3.1).max(todo5.1)).max(branch_from),
                        );
                        branch_next = n * h + todo_branch.1;
                        // 1. One pass of the input-side 1x1s over the new rows, cut where the
                        //    set of convolutions that want a row changes.
                        let mut cuts = [
                            todo3.0,
                            todo3.1,
                            todo5.0,
                            todo5.1,
                            todo_branch.0,
                            todo_branch.1,
                        ];
                        cuts.sort_unstable();
                        for pair in cuts.windows(2) {
                            let (ra, rb) = (pair[0], pair[1]);
                            let wants = |todo: (usize, usize)| todo.0 <= ra && rb <= todo.1;
                            let (with_branch, with3, with5) =
                                (wants(todo_branch), wants(todo3), wants(todo5));
                            if ra >= rb || !(with_branch || with3 || with5) {
                                continue;
                            }
                            let pixels = (rb - ra) * w;
                            let a0 = input.index(n, ra, 0, 0);
                            for start in (0..pixels).step_by(self.conv1.kernel.mr) {
                                let mr = self.conv1.kernel.mr.min(pixels - start);
                                let at = a0 + start * a_ps;
                                let scratch_px = (ra - lo) * w + start;
                                if with_branch {
                                    let c0 = ((n * h + ra) * w + start - first) * out_ps;
                                    self.conv1.run_pointwise_tile(
                                        "inception",
                                        a,
                                        (at, a_ps),
                                        mr,
                                        c,
                                        (c0, out_ps),
                                    )?;
                                }
                                for (core, with, s, r) in [
                                    (&self.reduce3, with3, &mut *s3, r3),
                                    (&self.reduce5, with5, &mut *s5, r5),
                                ] {
                                    if let (Some(core), true) = (core, with) {
                                        core.run_pointwise_tile(
                                            "inception",
                                            a,
                                            (at, a_ps),
                                            mr,
                                            s,
                                            (scratch_px * r, r),
                                        )?;
                                    }
                                }
                            }
                        }
                        held = Some(Held {
                            n,
                            base: lo,
                            valid3: after3,
                            valid5: after5,
                        });
                        let rows = g..n * h + y1;
                        let dest = |channel_offset| Dest {
                            first_pixel: first,
                            pixel_stride: out_ps,
                            channel_offset,
                        };
                        // 2. The 3x3 and 5x5, from the reduced rows (or the input without a reduction).
                        let reduced = |data, r| Source {
                            data,
                            shape: Nhwc { c: r, ..ishape },
                            pixel_stride: r,
                            offset: 0,
                        };
                        let from_shared = |offset, r| Source {
                            data: shared.unwrap_or_default(),
                            shape: Nhwc { c: r, ..ishape },
                            pixel_stride: r3 + r5,
                            offset,
                        };
                        let (src3, first3) = match (r3, shared) {
                            (0, _) => (in_src, 0),
                            (_, Some(_)) => (from_shared(0, r3), 0),
                            (_, None) => (reduced(&*s3, r3), n * h + lo),
                        };
                        self.conv3.run_rows(
                            "inception",
                            &self.window3,
                            &src3,
                            first3,
                            (h, w),
                            rows.clone(),
                            c,
                            &dest(off3),
                        )?;
                        let (src5, first5) = match (r5, shared) {
                            (0, _) => (in_src, 0),
                            (_, Some(_)) => (from_shared(r3, r5), 0),
                            (_, None) => (reduced(&*s5, r5), n * h + lo),
                        };
                        self.conv5.run_rows(
                            "inception",
                            &self.window5,
                            &src5,
                            first5,
                            (h, w),
                            rows.clone(),
                            c,
                            &dest(off5),
                        )?;
                        // 3. Pool the band a few rows at a time, projecting each (or pool straight
                        //    into the output).
                        match &self.proj {
                            Some(proj) => {
                                let end = n * h + y1;
                                let interleaved = match self.pooling {
                                    Some(pooling) => {
                                        let c0 = (g * w - first) * out_ps + offp;
                                        let rows = g..end;
                                        pool_project_interleaved(
                                            "inception",
                                            proj,
                                            pooling,
                                            &in_src,
                                            rows,
                                            sp,
                                            c,
                                            c0,
                                            out_ps,
                                        )?
                                    }
                                    None => false,
                                };
                                // Separate, or interleaved saw a NaN: pool exactly, then project.
                                let separate = if interleaved { g..g } else { g..end };
                                for p0 in separate.step_by(POOL_ROWS) {
                                    let p1 = (p0 + POOL_ROWS).min(end);
                                    let pooled = Dest {
                                        first_pixel: p0 * w,
                                        pixel_stride: cfg.in_channels,
                                        channel_offset: 0,
                                    };
                                    self.pool
                                        .pool_rows(&in_src, 0, (h, w), p0..p1, sp, &pooled)?;
                                    proj.run_line(
                                        "inception",
                                        &ONE_TAP_SET,
                                        sp,
                                        0,
                                        cfg.in_channels,
                                        c,
                                        (p0 * w - first) * out_ps + offp,
                                        out_ps,
                                        (p1 - p0) * w,
                                        proj.all_blocks(),
                                    )?;
                                }
                            }
                            None => {
                                self.pool
                                    .pool_rows(&in_src, 0, (h, w), rows, c, &dest(offp))?
                            }
                        }
                        g = n * h + y1;
                    }
                    Ok::<(), Error>(())
                })
            })
        };

        // Tasks that end inside an image would each recompute the reduced rows around their
        // edges (in 3a one 96-channel and two 16-channel rows per edge: by count about 1% of the
        // module's multiply-adds at two threads, 7% at eight). Instead, when the whole batch's
        // reductions take no more memory than the tasks' bands would, every task first computes
        // its own rows into one buffer, then the tasks read it. Same sums, so the same bits.
        let per_pixel = r3 + r5;
        let shared_len = rows_total.saturating_mul(w).saturating_mul(per_pixel);
        let share = per_pixel > 0
            && chunk_rows < rows_total
            && !chunk_rows.is_multiple_of(h)
            && threads_share_images(par, ishape.n)
            && shared_len <= par.threads().saturating_mul(len3 + len5);
        if share {
            let out = output.spanned_mut();
            let ran = try_with_shared_scratch(shared_len, |shared| {
                let a_first = input.index(0, 0, 0, 0);
                for_each_output_chunk(par, shared, per_pixel, chunk_rows * w, |first, reduced| {
                    let pixels = reduced.len() / per_pixel;
                    let mr = self.conv1.kernel.mr;
                    for start in (0..pixels).step_by(mr) {
                        let mr = mr.min(pixels - start);
                        let at = a_first + (first + start) * a_ps;
                        for (core, offset) in [(&self.reduce3, 0), (&self.reduce5, r3)] {
                            if let Some(core) = core {
                                core.run_pointwise_tile(
                                    "inception",
                                    a,
                                    (at, a_ps),
                                    mr,
                                    reduced,
                                    (start * per_pixel + offset, per_pixel),
                                )?;
                            }
                        }
                    }
                    Ok(())
                })?;
                bands(Some(&*shared), out)
            });
            if let Some(result) = ran {
                return result;
            }
            // The buffer is in use further up this thread's stack: each task computes its own.
            return bands(None, output.spanned_mut());
        }
        bands(None, output.spanned_mut())
    }
}

/// Reduced rows a task keeps in its scratch from one band to the next.
#[derive(Clone, Copy)]
struct Held {
    /// The image.
    n: usize,
    /// The image row in scratch row 0.
    base: usize,
    /// Image rows `start..end` of the 3x3's and the 5x5's reduction that are computed.
    valid3: (usize, usize),
    valid5: (usize, usize),
}

/// Input rows `lo..hi` of an image `h` high that `engine` (a KxK with `halo = K / 2` when
/// direct) reads for output rows `y0..y1`.
fn rows_read(engine: &Engine, halo: usize, (y0, y1): (usize, usize), h: usize) -> (usize, usize) {
    match engine.winograd() {
        Some(wino) => wino.input_rows((y0, y1), h),
        None => (y0.saturating_sub(halo), (y1 + halo).min(h)),
    }
}

/// For a reduction whose KxK needs rows `need` while rows `valid` are in scratch: the rows to
/// compute, and the rows valid afterwards. Rows are reused when `valid` runs into `need`.
fn plan_rows(need: (usize, usize), valid: (usize, usize)) -> ((usize, usize), (usize, usize)) {
    if valid.0 <= need.0 && need.0 <= valid.1 {
        let end = need.1.max(valid.1);
        ((valid.1, end), (valid.0, end))
    } else {
        (need, need)
    }
}

/// The oracle for [`Inception`]: the module as separate reference layers
/// (`incept::reference`), each intermediate materialised, concatenated into a new dense
/// `n x h x w x out_channels` tensor. Slow and allocating; for tests and checks.
///
/// # Errors
///
/// Whatever [`Inception::new`] refuses for `config` and `weights`;
/// [`ErrorKind::ShapeMismatch`] if `shape.c` is not `config.in_channels` or `input.len()` is
/// not `shape`'s element count; [`ErrorKind::InvalidArgument`] for a zero dimension.
///
/// # Examples
///
/// See [`Inception`] for a comparison with the fused module. On its own:
///
/// ```
/// use incept::{inception_reference, ConvParams, InceptionConfig, InceptionWeights, Nhwc};
///
/// // 1 input channel, one output channel per branch, no reductions, no pool projection.
/// let config = InceptionConfig {
///     in_channels: 1,
///     c1x1: 1,
///     c3x3_reduce: None,
///     c3x3: 1,
///     c5x5_reduce: None,
///     c5x5: 1,
///     pool_proj: None,
/// };
/// let (w1, w3, w5) = ([2.0], [1.0; 9], [1.0; 25]);
/// let weights = InceptionWeights {
///     conv1x1: ConvParams { weights: &w1, bias: None },
///     reduce3x3: None,
///     conv3x3: ConvParams { weights: &w3, bias: None },
///     reduce5x5: None,
///     conv5x5: ConvParams { weights: &w5, bias: None },
///     pool_proj: None,
/// };
/// // One pixel: only the centre tap of each window is inside the image.
/// let y = inception_reference(&config, &weights, &[3.0], Nhwc::new(1, 1, 1, 1))?;
/// assert_eq!(y, [6.0, 3.0, 3.0, 3.0]);
/// # Ok::<(), incept::Error>(())
/// ```
pub fn inception_reference(
    config: &InceptionConfig,
    weights: &InceptionWeights<'_>,
    input: &[f32],
    shape: Nhwc,
) -> Result<Vec<f32>> {
    use incept_kernels::scalar::reference::{
        conv2d, max_pool2d, Clamp, Layout, Window as RefWindow,
    };
    // Validates every weight and bias length (the reference layers would panic on them).
    Inception::with_options(config, weights, OpOptions::with_max_isa(Some(Isa::Scalar)))?;
    if [shape.n, shape.h, shape.w].contains(&0) {
        return Err(invalid(format!(
            "reference input {shape} has a zero dimension"
        )));
    }
    if shape.c != config.in_channels || input.len() != shape.element_count()? {
        return Err(mismatch(format!(
            "reference input {shape} does not match the module's {} channels",
            config.in_channels
        )));
    }
    let relu = Clamp {
        min: 0.0,
        max: f32::INFINITY,
    };
    let (n, h, w, cin) = (shape.n, shape.h, shape.w, shape.c);
    let total = config.out_channels();
    let mut out = vec![0.0; shape.pixels() * total];
    let layout = |c| Layout::dense(n, h, w, c);
    let slice = |c, offset| Layout {
        n,
        h,
        w,
        c,
        pixel_stride: total,
        offset,
    };
    // A 1x1 (or KxK "same") reference conv from `src` (c_in channels) into a new tensor.
    let conv = |src: &[f32],
                c_in: usize,
                k: usize,
                p: ConvParams<'_>,
                dst: &mut [f32],
                dst_layout: Layout| {
        conv2d(
            src,
            &layout(c_in),
            p.weights,
            p.bias,
            &RefWindow::square(k, 1, (k - 1) / 2),
            relu,
            dst,
            &dst_layout,
        );
    };
    conv(
        input,
        cin,
        1,
        weights.conv1x1,
        &mut out,
        slice(config.c1x1, 0),
    );
    let mut offset = config.c1x1;
    for (reduce, reduce_w, c_k, k, conv_w) in [
        (
            config.c3x3_reduce,
            weights.reduce3x3,
            config.c3x3,
            3,
            weights.conv3x3,
        ),
        (
            config.c5x5_reduce,
            weights.reduce5x5,
            config.c5x5,
            5,
            weights.conv5x5,
        ),
    ] {
        match (reduce, reduce_w) {
            (Some(r), Some(rw)) => {
                let mut mid = vec![0.0; shape.pixels() * r];
                conv(input, cin, 1, rw, &mut mid, layout(r));
                conv(&mid, r, k, conv_w, &mut out, slice(c_k, offset));
            }
            _ => conv(input, cin, k, conv_w, &mut out, slice(c_k, offset)),
        }
        offset += c_k;
    }
    let pool = RefWindow::square(3, 1, 1);
    match (config.pool_proj, weights.pool_proj) {
        (Some(p), Some(pw)) => {
            let mut pooled = vec![0.0; shape.pixels() * cin];
            max_pool2d(input, &layout(cin), &pool, &mut pooled, &layout(cin));
            conv(&pooled, cin, 1, pw, &mut out, slice(p, offset));
        }
        _ => max_pool2d(input, &layout(cin), &pool, &mut out, &slice(cin, offset)),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConvParams;

    /// A run whose calling thread already holds the shared buffer of reduced rows (as when rayon
    /// runs it inside another run's wait) falls back to per-task rows: same output.
    #[test]
    fn a_run_finds_the_shared_buffer_taken() {
        let config = InceptionConfig::googlenet(16, 4, 8, 8, 4, 4, 4);
        let sizes = [(4, 16), (8, 16), (8, 9 * 8), (4, 16), (4, 25 * 4), (4, 16)];
        let data: Vec<Vec<f32>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &(o, k))| (0..o * k).map(|j| ((i + j) % 5) as f32 - 2.0).collect())
            .collect();
        let p = |i: usize| ConvParams {
            weights: &data[i],
            bias: None,
        };
        let weights = InceptionWeights {
            conv1x1: p(0),
            reduce3x3: Some(p(1)),
            conv3x3: p(2),
            reduce5x5: Some(p(3)),
            conv5x5: p(4),
            pool_proj: Some(p(5)),
        };
        let module = Inception::new(&config, &weights).unwrap();
        let shape = Nhwc::new(1, 20, 20, 16);
        let x: Vec<f32> = (0..shape.element_count().unwrap())
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        let out_shape = module.output_shape(shape);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let run = |par| {
            let mut y = vec![f32::NAN; out_shape.element_count().unwrap()];
            let input = TensorView::new(&x, shape).unwrap();
            let mut out = TensorViewMut::new(&mut y, out_shape).unwrap();
            module.run(&input, &mut out, par).unwrap();
            y
        };
        let want = run(Parallelism::Sequential);
        assert_eq!(run(Parallelism::Pool(&pool)), want);
        let taken = try_with_shared_scratch(1, |_| run(Parallelism::Pool(&pool)));
        assert_eq!(taken, Some(want));
    }
}
