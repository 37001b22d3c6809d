//! incept's microkernels and the scalar reference oracle.
//!
//! Every microkernel computes one *tile*: `mr` output pixels x `nr` output channels of a
//! convolution, with the whole reduction (every tap x every input channel) inside the kernel.
//! A 1x1 convolution is the one-tap case, so the same kernels serve the GEMM and, later, the
//! direct KxK convolutions.
//!
//! ```text
//!   input (NHWC, not packed)            packed weights, one block of NR output channels
//!   pixel i of the tile starts at       [ NR biases ][ tap 0: k x NR ][ tap 1: k x NR ] ...
//!   a + i * a_pixel_stride; tap t       (zero-padded to NR channels, so kernels never mask loads)
//!   reads k channels at + taps[t].input_offset
//!
//!   out[i][j] = clamp( bias[j] + sum over taps t, then channels q of
//!                      a[i*a_pixel_stride + taps[t].input_offset + q] * w[taps[t].weight_offset + q*NR + j] )
//! ```
//!
//! Each ISA module (`scalar`, `x86_avx2`, `x86_avx512`, `aarch64_neon`) exports [`KernelInfo`]
//! constants with the same contract, so the caller picks one from a table at run time and the
//! tests run one suite against all of them. The raw entry point ([`TileKernel`]) is `unsafe`;
//! [`run_tile`] is the safe front door that checks every address the tile touches against the
//! slices it is given, in O(1) per call (O(taps) only for taps skipping more than 3 pixels).
//!
//! # Using the kernels directly
//!
//! The crate is `no_std` and allocates nothing. Three steps, all safe:
//!
//! 1. Pick a kernel: [`conv_kernel`] gives the one compiled for an ISA, and [`IsaToken::new`]
//!    proves the running CPU supports it (no token, no call).
//! 2. Pack the weights into blocks of the kernel's `nr` output channels, as drawn above.
//! 3. Describe each tile of at most `mr` pixels with a [`Tile`] and call [`run_tile`], which
//!    refuses (with a [`TileError`]) any tile that would touch memory outside the slices.
//!
//! # Examples
//!
//! A 1x1 convolution of two pixels, 3 -> 2 channels, on the best kernel this CPU has:
//!
//! ```
//! use incept_kernels::{conv_kernel, run_tile, Clamp, IsaToken, KernelIsa, Tap, TapSet, Tile};
//!
//! let (kernel, token) = [KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Neon, KernelIsa::Scalar]
//!     .into_iter()
//!     .find_map(|isa| Some((conv_kernel(isa)?, IsaToken::new(isa)?)))
//!     .expect("the portable kernel is always there");
//!
//! // Weights [out][in] and bias of the two output channels.
//! let (w, bias) = ([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], [0.5, 0.0]);
//! // One packed block: nr biases, then for each input channel nr weights (zero-padded).
//! let nr = kernel.nr;
//! let mut packed = vec![0.0f32; nr * (1 + 3)];
//! for o in 0..2 {
//!     packed[o] = bias[o];
//!     for i in 0..3 {
//!         packed[nr + i * nr + o] = w[o][i];
//!     }
//! }
//!
//! let a = [1.0, 2.0, 3.0, /* pixel 1: */ 4.0, 5.0, 6.0];
//! let mut c = [0.0; 4];
//! let one_tap = [Tap::new(0, 0)];
//! let tile = Tile {
//!     mr: 2,
//!     nr: 2,
//!     k: 3,
//!     a_offset: 0,
//!     a_pixel_stride: 3,
//!     w_offset: 0,
//!     c_offset: 0,
//!     c_pixel_stride: 2,
//!     clamp: Clamp::NONE,
//! };
//! run_tile(kernel, &tile, &TapSet::new(&one_tap), &a, &packed, &mut c, token)?;
//! assert_eq!(c, [1.5, 6.0, 4.5, 15.0]);
//! # Ok::<(), incept_kernels::TileError>(())
//! ```
//!
//! The max-pool kernels work the same way through [`pool::run_pool_line`], and
//! [`scalar::reference`] holds the plain-loop layers every kernel is tested against.
#![no_std]
#![deny(missing_docs)]

/// The largest tap skip ([`Tap::skip_head`], [`Tap::skip_tail`]) the SIMD kernels honour: a 7x7
/// "same" convolution's 3.
const SIMD_MAX_SKIP: usize = 3;

/// Calls `$f::<$rows, $nrv, HEAD, TAIL>($args)` for the tap's skips, each (HEAD, TAIL) its own
/// instance with const bounds, one end and at most [`SIMD_MAX_SKIP`] (the kernel contract);
/// nothing for other skips. Shared by the SIMD kernels' tap loops.
#[allow(unused_macros)]
macro_rules! with_skips {
    ($tap:expr, $f:ident::<$rows:ident, $nrv:ident>($($arg:expr),* $(,)?)) => {
        match ($tap.skip_head, $tap.skip_tail) {
            (0, 0) => $f::<$rows, $nrv, 0, 0>($($arg),*),
            (1, 0) => $f::<$rows, $nrv, 1, 0>($($arg),*),
            (2, 0) => $f::<$rows, $nrv, 2, 0>($($arg),*),
            (3, 0) => $f::<$rows, $nrv, 3, 0>($($arg),*),
            (0, 1) => $f::<$rows, $nrv, 0, 1>($($arg),*),
            (0, 2) => $f::<$rows, $nrv, 0, 2>($($arg),*),
            (0, 3) => $f::<$rows, $nrv, 0, 3>($($arg),*),
            _ => {}
        }
    };
}

pub mod peak;
pub mod pool;
pub mod pooling_tile;
pub mod scalar;
pub mod winograd;

#[cfg(target_arch = "x86_64")]
pub mod x86_avx2;
#[cfg(target_arch = "x86_64")]
pub mod x86_avx512;

#[cfg(target_arch = "aarch64")]
pub mod aarch64_neon;

/// The fused epilogue: every output is clamped to `[min, max]` in registers before the store.
///
/// The clamp is `if x < min { min } else if x > max { max } else { x }`, so NaN passes through
/// unchanged (IEEE comparisons with NaN are false) and `-0.0` is not turned into `+0.0`. ReLU is
/// `[0, +inf]`, no epilogue is `[-inf, +inf]`.
///
/// # Examples
///
/// ```
/// use incept_kernels::Clamp;
///
/// let relu6 = Clamp { min: 0.0, max: 6.0 };
/// assert_eq!([relu6.apply(-1.0), relu6.apply(2.5), relu6.apply(9.0)], [0.0, 2.5, 6.0]);
/// assert!(relu6.apply(f32::NAN).is_nan());
/// assert_eq!(Clamp::NONE.apply(-1e30), -1e30);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C)]
pub struct Clamp {
    /// Lower bound (may be `-inf`).
    pub min: f32,
    /// Upper bound (may be `+inf`).
    pub max: f32,
}

impl Clamp {
    /// No clamping at all.
    pub const NONE: Clamp = Clamp {
        min: f32::NEG_INFINITY,
        max: f32::INFINITY,
    };

    /// Applies the clamp to one value, with the NaN and signed-zero rules above.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::Clamp;
    ///
    /// let relu = Clamp { min: 0.0, max: f32::INFINITY };
    /// assert_eq!(relu.apply(-2.0), 0.0);
    /// assert!(relu.apply(-0.0).is_sign_negative()); // -0.0 is not below 0.0: kept as it is
    /// ```
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        if x < self.min {
            self.min
        } else if x > self.max {
            self.max
        } else {
            x
        }
    }
}

/// One tap of a convolution window as a microkernel sees it.
///
/// # Examples
///
/// The taps of a 1x3 window over an NHWC row with `c` channels per pixel, for a kernel whose
/// blocks are `nr` channels wide: tap `t` reads the pixel `t` to the right and the `t`-th
/// `c x nr` slab of weights.
///
/// ```
/// use incept_kernels::Tap;
///
/// let (c, nr) = (4, 8);
/// let taps: Vec<Tap> = (0..3).map(|t| Tap::new((t * c) as isize, t * c * nr)).collect();
/// assert_eq!(taps[2], Tap { input_offset: 8, weight_offset: 64, skip_head: 0, skip_tail: 0 });
/// ```
///
/// At the edges of a padded image a tap may fall in the padding for the first or last pixels
/// of a tile: `skip_head` / `skip_tail` say how many, and those pixels neither read the tap nor
/// add it, so a whole row of output pixels, edges included, can be one line of full tiles
/// (each pixel still sums exactly its valid taps, in tap order). A kernel accepts skips up to
/// its [`KernelInfo::max_skip`], at one end of the tile per tap.
///
/// ```
/// use incept_kernels::Tap;
///
/// // Tap kx = 0 of a 3-wide window padded by 1: the tile's first pixel (x = 0) has no input
/// // to its left, so it skips the tap.
/// let left = Tap { skip_head: 1, ..Tap::new(-4, 0) };
/// assert_eq!((left.skip_head, left.skip_tail), (1, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Tap {
    /// Offset in elements from a tile pixel's input base to the first channel this tap reads.
    pub input_offset: isize,
    /// Offset in elements from the end of the bias row (`w + NR`) to this tap's `k x NR` weights.
    pub weight_offset: usize,
    /// Pixels at the start of the tile that skip this tap (it lies in their padding).
    pub skip_head: u32,
    /// Pixels at the end of the tile that skip this tap.
    pub skip_tail: u32,
}

impl Tap {
    /// A tap every pixel of the tile reads.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::Tap;
    ///
    /// let tap = Tap::new(-3, 24);
    /// assert_eq!((tap.input_offset, tap.weight_offset, tap.skip_head, tap.skip_tail), (-3, 24, 0, 0));
    /// ```
    pub const fn new(input_offset: isize, weight_offset: usize) -> Tap {
        Tap {
            input_offset,
            weight_offset,
            skip_head: 0,
            skip_tail: 0,
        }
    }

    /// Whether tile pixel `i` of `mr` reads this tap.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::Tap;
    ///
    /// let tap = Tap { skip_tail: 2, ..Tap::new(0, 0) };
    /// assert_eq!((0..5).map(|i| tap.reads(i, 5)).collect::<Vec<_>>(), [true, true, true, false, false]);
    /// ```
    #[inline(always)]
    pub fn reads(&self, i: usize, mr: usize) -> bool {
        i >= self.skip_head as usize && i + (self.skip_tail as usize) < mr
    }
}

/// Everything one microkernel call needs, as raw pointers: the contract of [`TileKernel`].
/// [`run_tile`] builds it after checking a [`Tile`]; build one yourself only to call a
/// [`TileKernel`] directly, under its safety contract.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct TileArgs {
    /// Output pixels in this tile, `1..=MR`.
    pub mr: usize,
    /// Output channels in this tile, `1..=NR`; the remaining lanes are computed but not stored.
    pub nr: usize,
    /// Input channels read per tap (the reduction length of one tap). May be 0.
    pub k: usize,
    /// Input base of tile pixel 0.
    pub a: *const f32,
    /// Elements between the input bases of consecutive tile pixels.
    pub a_pixel_stride: usize,
    /// `tap_count` taps, each read for every pixel of the tile.
    pub taps: *const Tap,
    /// Number of taps (at least 1 for a meaningful result; 0 stores the bias).
    pub tap_count: usize,
    /// Packed weight block: NR biases, then the taps' `k x NR` weights (see the module docs).
    pub w: *const f32,
    /// Output of tile pixel 0, channel 0.
    pub c: *mut f32,
    /// Elements between the outputs of consecutive tile pixels.
    pub c_pixel_stride: usize,
    /// Epilogue.
    pub clamp: Clamp,
}

/// A microkernel.
///
/// # Safety
/// For every pixel `i < mr`, tap `t < tap_count` that pixel reads ([`Tap::reads`]) and channel
/// `q < k`, the element `a + i*a_pixel_stride + taps[t].input_offset + q` must be readable
/// (other pixels' addresses for that tap may lie anywhere: they are never dereferenced); every
/// tap's skips at most the kernel's [`KernelInfo::max_skip`], and at one end only; `w .. w + NR` and
/// `w + NR + taps[t].weight_offset .. + k*NR` readable; `c + i*c_pixel_stride .. + nr` writable
/// and not aliased by any other live reference; `1 <= mr <= MR`, `1 <= nr <= NR`; the CPU must
/// support the kernel's ISA (see [`KernelInfo::isa`]).
pub type TileKernel = unsafe fn(&TileArgs);

/// Instruction sets the kernels are written for.
///
/// # Examples
///
/// ```
/// use incept_kernels::{conv_kernel, cpu_supports, KernelIsa};
///
/// let isas = [KernelIsa::Scalar, KernelIsa::Avx2, KernelIsa::Avx512, KernelIsa::Neon];
/// let usable: Vec<KernelIsa> =
///     isas.into_iter().filter(|&isa| cpu_supports(isa) && conv_kernel(isa).is_some()).collect();
/// assert!(usable.contains(&KernelIsa::Scalar));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KernelIsa {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
    /// AArch64 Advanced SIMD.
    Neon,
}

/// A microkernel with its tile geometry, named XNNPACK-style: `conv_{MR}x{NR}__{isa}`.
///
/// # Examples
///
/// ```
/// use incept_kernels::{conv_kernel, KernelIsa};
///
/// let scalar = conv_kernel(KernelIsa::Scalar).unwrap();
/// assert_eq!((scalar.name, scalar.mr, scalar.nr), ("conv_4x8__scalar", 4, 8));
/// assert_eq!(scalar.isa, KernelIsa::Scalar);
/// ```
///
/// Only this crate makes these (`run` is private and the type is not `Clone`), so a caller
/// holds a `&'static` descriptor whose ISA, tile size and entry point belong together:
/// [`run_tile`] checks the token against `isa` and trusts the rest.
#[derive(Debug)]
pub struct KernelInfo {
    /// Name, e.g. `conv_14x32__avx512f_broadcast`.
    pub name: &'static str,
    /// ISA the CPU must support to run the kernel.
    pub isa: KernelIsa,
    /// Largest number of output pixels per tile.
    pub mr: usize,
    /// Output channels per packed weight block (the largest `nr`).
    pub nr: usize,
    /// The largest [`Tap::skip_head`] or [`Tap::skip_tail`] the kernel honours (0: taps must
    /// not skip pixels).
    pub max_skip: usize,
    /// The entry point.
    pub(crate) run: TileKernel,
}

/// The tile kernel for `isa`, if this target compiles one (whether or not this CPU supports it:
/// check with [`IsaToken::new`]).
///
/// # Examples
///
/// ```
/// use incept_kernels::{conv_kernel, KernelIsa};
///
/// assert!(conv_kernel(KernelIsa::Scalar).is_some());
/// // Each target compiles only its own family: x86-64 has no NEON kernel.
/// assert_eq!(conv_kernel(KernelIsa::Neon).is_some(), cfg!(target_arch = "aarch64"));
/// ```
pub fn conv_kernel(isa: KernelIsa) -> Option<&'static KernelInfo> {
    match isa {
        KernelIsa::Scalar => Some(&scalar::CONV_4X8),
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx2 => Some(&x86_avx2::CONV_6X16),
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx512 => Some(&x86_avx512::CONV_14X32),
        #[cfg(target_arch = "aarch64")]
        KernelIsa::Neon => Some(&aarch64_neon::CONV_NEON),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// A set of taps with its extents precomputed, so checking a tile costs O(1) (O(taps) if some
/// tap skips more than 3 pixels).
///
/// # Examples
///
/// ```
/// use incept_kernels::{Tap, TapSet};
///
/// let taps =
///     [Tap::new(-3, 0), Tap::new(3, 24)];
/// let set = TapSet::new(&taps);
/// assert_eq!(set.taps().len(), 2);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TapSet<'t> {
    taps: &'t [Tap],
    /// `head_min[s]`: the lowest input offset of the taps that skip `s` pixels at the head
    /// (`isize::MAX` if none); with `s <= TRACKED_SKIP`.
    head_min: [isize; TRACKED_SKIP + 1],
    /// `tail_max[s]`: the highest input offset of the taps that skip `s` at the tail
    /// (`isize::MIN` if none).
    tail_max: [isize; TRACKED_SKIP + 1],
    max_weight_offset: usize,
    /// The largest skip of any tap, at either end (0: no tap skips a pixel).
    max_skip: usize,
    /// Some tap skips pixels at both ends.
    skips_both_ends: bool,
}

/// Skips up to this (the SIMD kernels' largest) are checked in O(1) by [`run_tile`]; larger
/// ones (the portable kernel takes any) tap by tap.
const TRACKED_SKIP: usize = SIMD_MAX_SKIP;

impl<'t> TapSet<'t> {
    /// Wraps `taps` (which may be empty), scanning them once for their extents.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::{Tap, TapSet};
    ///
    /// let empty = TapSet::new(&[]);
    /// assert!(empty.taps().is_empty());
    /// let one = [Tap::new(0, 0)];
    /// assert_eq!(TapSet::new(&one).taps(), &one);
    /// ```
    pub const fn new(taps: &'t [Tap]) -> Self {
        let mut set = TapSet {
            taps,
            head_min: [isize::MAX; TRACKED_SKIP + 1],
            tail_max: [isize::MIN; TRACKED_SKIP + 1],
            max_weight_offset: 0,
            max_skip: 0,
            skips_both_ends: false,
        };
        // `while` and plain comparisons: a `const fn` (so a fixed set is built at compile time).
        let mut i = 0;
        while i < taps.len() {
            let t = taps[i];
            if t.weight_offset > set.max_weight_offset {
                set.max_weight_offset = t.weight_offset;
            }
            let (head, tail) = (t.skip_head as usize, t.skip_tail as usize);
            let skip = if head > tail { head } else { tail };
            if skip > set.max_skip {
                set.max_skip = skip;
            }
            set.skips_both_ends |= head > 0 && tail > 0;
            if head <= TRACKED_SKIP && t.input_offset < set.head_min[head] {
                set.head_min[head] = t.input_offset;
            }
            if tail <= TRACKED_SKIP && t.input_offset > set.tail_max[tail] {
                set.tail_max[tail] = t.input_offset;
            }
            i += 1;
        }
        set
    }

    /// The taps.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::{Tap, TapSet};
    ///
    /// // A 1x2 window over single-channel pixels, weights in blocks of 8 channels.
    /// let taps =
    ///     [Tap::new(0, 0), Tap::new(1, 8)];
    /// let set = TapSet::new(&taps);
    /// assert_eq!(set.taps(), &taps);
    /// assert_eq!(set.taps()[1].weight_offset, 8);
    /// ```
    pub fn taps(&self) -> &'t [Tap] {
        self.taps
    }
}

/// Geometry of one tile in element offsets into the slices given to [`run_tile`]. The crate
/// docs have a complete example.
///
/// # Examples
///
/// Two pixels of one channel, scaled by 3 into every other element of the output, on the
/// portable kernel (`nr` = 8: the packed block is 8 biases, then 8 weights):
///
/// ```
/// use incept_kernels::{conv_kernel, run_tile, Clamp, IsaToken, KernelIsa, Tap, TapSet, Tile};
///
/// let kernel = conv_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let mut w = [0.0f32; 8 * 2];
/// w[8] = 3.0; // weight of input channel 0 for output channel 0; the bias stays 0
/// let tile = Tile {
///     mr: 2,
///     nr: 1,
///     k: 1,
///     a_offset: 0,
///     a_pixel_stride: 1,
///     w_offset: 0,
///     c_offset: 0,
///     c_pixel_stride: 2,
///     clamp: Clamp::NONE,
/// };
/// let taps = [Tap::new(0, 0)];
/// let mut c = [0.0; 3];
/// run_tile(kernel, &tile, &TapSet::new(&taps), &[1.0, -2.0], &w, &mut c, token)?;
/// assert_eq!(c, [3.0, 0.0, -6.0]); // c[1] lies between the pixels: not written
/// # Ok::<(), incept_kernels::TileError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Tile {
    /// Output pixels, `1..=MR`.
    pub mr: usize,
    /// Output channels, `1..=NR`.
    pub nr: usize,
    /// Input channels per tap.
    pub k: usize,
    /// Index in `a` of tile pixel 0's input base.
    pub a_offset: usize,
    /// Elements between consecutive tile pixels in `a`.
    pub a_pixel_stride: usize,
    /// Index in `w` of the packed block (its bias row).
    pub w_offset: usize,
    /// Index in `c` of tile pixel 0, channel 0.
    pub c_offset: usize,
    /// Elements between consecutive tile pixels in `c`.
    pub c_pixel_stride: usize,
    /// Epilogue.
    pub clamp: Clamp,
}

/// Why [`run_tile`] refused a tile. The operators validate shapes first, so seeing this means
/// a bug in incept, reported instead of becoming undefined behaviour.
///
/// # Examples
///
/// ```
/// use incept_kernels::{
///     conv_kernel, run_tile, Clamp, IsaToken, KernelIsa, Tap, TapSet, Tile, TileError,
/// };
///
/// let kernel = conv_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let taps = [Tap::new(0, 0)];
/// let tile = Tile {
///     mr: 1,
///     nr: 1,
///     k: 2,
///     a_offset: 0,
///     a_pixel_stride: 2,
///     w_offset: 0,
///     c_offset: 0,
///     c_pixel_stride: 1,
///     clamp: Clamp::NONE,
/// };
/// let (a, w) = ([1.0; 2], [0.0; 8 * 3]);
/// // An output slice with no room for the tile's one element.
/// let result = run_tile(kernel, &tile, &TapSet::new(&taps), &a, &w, &mut [], token);
/// assert_eq!(result, Err(TileError::Output));
/// // A pixel count above the kernel's MR.
/// let too_tall = Tile { mr: kernel.mr + 1, ..tile };
/// let result = run_tile(kernel, &too_tall, &TapSet::new(&taps), &a, &w, &mut [0.0; 1], token);
/// assert_eq!(result, Err(TileError::TileSize));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TileError {
    /// `mr` or `nr` is 0 or larger than the kernel's tile.
    TileSize,
    /// The tile would read before the start or past the end of the input slice.
    Input,
    /// The tile would read past the end of the packed weights.
    Weights,
    /// The tile would write past the end of the output slice.
    Output,
    /// The CPU does not support the kernel's ISA.
    Isa,
    /// A tap skips more pixels than the kernel's [`KernelInfo::max_skip`], or skips at both
    /// ends of the tile.
    Taps,
    /// The pool work of a [`pooling_tile`] call does not fit its slices or the kernel's limits.
    PoolSide,
}

/// Runs one tile after checking every address it touches against `a`, `w` and `c`.
///
/// `isa` is the proof, obtained once (e.g. when an operator is created), that the CPU supports
/// `kernel.isa`; a token for another ISA is refused.
///
/// # Errors
///
/// A [`TileError`] naming the first check that failed; nothing is written then.
///
/// # Examples
///
/// One pixel of a 1x1 convolution with 2 input channels and one output channel, ReLU-clamped,
/// on the portable kernel (`nr` = 8: the packed block is 8 biases, then 8 weights per input
/// channel):
///
/// ```
/// use incept_kernels::{conv_kernel, run_tile, Clamp, IsaToken, KernelIsa, Tap, TapSet, Tile};
///
/// let kernel = conv_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let mut w = [0.0f32; 8 * 3];
/// w[0] = -10.0; // bias of channel 0
/// (w[8], w[16]) = (1.0, 2.0); // weights of input channels 0 and 1
/// let tile = Tile {
///     mr: 1,
///     nr: 1,
///     k: 2,
///     a_offset: 0,
///     a_pixel_stride: 2,
///     w_offset: 0,
///     c_offset: 0,
///     c_pixel_stride: 1,
///     clamp: Clamp { min: 0.0, max: f32::INFINITY },
/// };
/// let taps = [Tap::new(0, 0)];
/// let mut c = [f32::NAN];
/// run_tile(kernel, &tile, &TapSet::new(&taps), &[3.0, 4.0], &w, &mut c, token)?;
/// assert_eq!(c, [1.0]); // max(-10 + 3 + 8, 0)
/// # Ok::<(), incept_kernels::TileError>(())
/// ```
pub fn run_tile(
    kernel: &KernelInfo,
    tile: &Tile,
    taps: &TapSet<'_>,
    a: &[f32],
    w: &[f32],
    c: &mut [f32],
    isa: IsaToken,
) -> Result<(), TileError> {
    run_tiles(kernel, tile, TileRepeat::ONCE, taps, a, w, c, isa)
}

/// How [`run_tiles`] repeats a tile: `count` tiles, each `a_step`, `w_step` and `c_step`
/// elements further into `a`, `w` and `c` than the one before. The same pixels over
/// consecutive output-channel blocks (`w_step` a packed block, `c_step` NR), or the same
/// columns on consecutive output rows (`a_step` and `c_step` a row).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRepeat {
    /// Number of tiles (0 runs nothing).
    pub count: usize,
    /// Input elements from one tile to the next.
    pub a_step: usize,
    /// Weight elements from one tile to the next.
    pub w_step: usize,
    /// Output elements from one tile to the next.
    pub c_step: usize,
}

impl TileRepeat {
    /// One tile.
    pub const ONCE: TileRepeat = TileRepeat {
        count: 1,
        a_step: 0,
        w_step: 0,
        c_step: 0,
    };
}

/// Runs `repeat.count` tiles, the first `tile`, after checking every address they touch
/// against `a`, `w` and `c`: [`run_tile`] for a row of tiles, with the checks and the call
/// overhead paid once. Each tile computes exactly what [`run_tile`] computes for it.
///
/// # Errors
///
/// As [`run_tile`] (also when an offset of the last tile overflows); nothing is written then.
/// A `count` of 0 runs and checks nothing.
///
/// # Examples
///
/// Three output rows of two pixels, one channel (the weight 2), on the portable kernel:
///
/// ```
/// use incept_kernels::{
///     conv_kernel, run_tiles, Clamp, IsaToken, KernelIsa, Tap, TapSet, Tile, TileRepeat,
/// };
///
/// let kernel = conv_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let mut w = [0.0f32; 8 * 2];
/// w[8] = 2.0;
/// let tile = Tile {
///     mr: 2,
///     nr: 1,
///     k: 1,
///     a_offset: 0,
///     a_pixel_stride: 1,
///     w_offset: 0,
///     c_offset: 0,
///     c_pixel_stride: 1,
///     clamp: Clamp::NONE,
/// };
/// let rows = TileRepeat { count: 3, a_step: 2, w_step: 0, c_step: 2 };
/// let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let mut c = [0.0; 6];
/// run_tiles(kernel, &tile, rows, &TapSet::new(&[Tap::new(0, 0)]), &a, &w, &mut c, token)?;
/// assert_eq!(c, [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
/// # Ok::<(), incept_kernels::TileError>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn run_tiles(
    kernel: &KernelInfo,
    tile: &Tile,
    repeat: TileRepeat,
    taps: &TapSet<'_>,
    a: &[f32],
    w: &[f32],
    c: &mut [f32],
    isa: IsaToken,
) -> Result<(), TileError> {
    if repeat.count == 0 {
        return Ok(());
    }
    check_tile(kernel, tile, taps, a, w, c, isa)?;
    // Every tile touches the same pattern of elements, shifted by a multiple of the steps: the
    // lowest addresses are the first tile's, the highest the last's. Checking both covers all.
    let n = repeat.count - 1;
    let shifted = |offset: usize, step: usize, error| {
        step.checked_mul(n)
            .and_then(|x| x.checked_add(offset))
            .ok_or(error)
    };
    let last = Tile {
        a_offset: shifted(tile.a_offset, repeat.a_step, TileError::Input)?,
        w_offset: shifted(tile.w_offset, repeat.w_step, TileError::Weights)?,
        c_offset: shifted(tile.c_offset, repeat.c_step, TileError::Output)?,
        ..*tile
    };
    if n > 0 {
        check_tile(kernel, &last, taps, a, w, c, isa)?;
    }
    let mut args = TileArgs {
        mr: tile.mr,
        nr: tile.nr,
        k: tile.k,
        // `wrapping_add` because with k == 0 the offset may point anywhere; it is never read then.
        a: a.as_ptr().wrapping_add(tile.a_offset),
        a_pixel_stride: tile.a_pixel_stride,
        taps: taps.taps.as_ptr(),
        tap_count: if tile.k == 0 { 0 } else { taps.taps.len() },
        w: w.as_ptr().wrapping_add(tile.w_offset),
        c: c.as_mut_ptr().wrapping_add(tile.c_offset),
        c_pixel_stride: tile.c_pixel_stride,
        clamp: tile.clamp,
    };
    for _ in 0..repeat.count {
        // SAFETY: the checks prove every read of `a` and `w` and every write of `c` that the
        // kernel contract allows for the first and the last tile lies inside the borrowed slices;
        // the tiles between touch the same elements shifted by less than the last, so they do too
        // (`c` is borrowed mutably, so it is not aliased). The tile size is within the kernel's;
        // `IsaToken` can only be made by `IsaToken::new`, which verifies the CPU supports the ISA.
        unsafe { (kernel.run)(&args) };
        args.a = args.a.wrapping_add(repeat.a_step);
        args.w = args.w.wrapping_add(repeat.w_step);
        args.c = args.c.wrapping_add(repeat.c_step);
    }
    Ok(())
}

/// The checks of [`run_tile`] for one tile.
fn check_tile(
    kernel: &KernelInfo,
    tile: &Tile,
    taps: &TapSet<'_>,
    a: &[f32],
    w: &[f32],
    c: &[f32],
    isa: IsaToken,
) -> Result<(), TileError> {
    if isa.0 != kernel.isa {
        return Err(TileError::Isa);
    }
    if tile.mr == 0 || tile.mr > kernel.mr || tile.nr == 0 || tile.nr > kernel.nr {
        return Err(TileError::TileSize);
    }
    if taps.max_skip > kernel.max_skip || taps.skips_both_ends {
        return Err(TileError::Taps);
    }
    let last_pixel = tile.mr - 1;
    if tile.k > 0 {
        let inside = |lo: Option<isize>, hi: Option<isize>| matches!((lo, hi), (Some(lo), Some(hi)) if lo >= 0 && hi <= a.len() as isize);
        if taps.max_skip <= TRACKED_SKIP {
            // O(1): a tap skipping s pixels at the head reads from pixel s on, one skipping s
            // at the tail up to pixel mr - 1 - s. (A tap no pixel reads still counts in the
            // other bound: conservative.)
            for s in 0..=TRACKED_SKIP.min(last_pixel) {
                let (min, max) = (taps.head_min[s], taps.tail_max[s]);
                if min != isize::MAX && !inside(input_start(tile, s, min), Some(0)) {
                    return Err(TileError::Input);
                }
                if max != isize::MIN && !inside(Some(0), input_end(tile, last_pixel - s, max)) {
                    return Err(TileError::Input);
                }
            }
        } else {
            // Larger skips: each tap's own first and last reading pixel, O(taps).
            for tap in taps.taps {
                let (head, tail) = (tap.skip_head as usize, tap.skip_tail as usize);
                if head + tail >= tile.mr {
                    continue; // no pixel reads it
                }
                let lo = input_start(tile, head, tap.input_offset);
                if !inside(lo, input_end(tile, last_pixel - tail, tap.input_offset)) {
                    return Err(TileError::Input);
                }
            }
        }
    }
    let w_end = if taps.taps.is_empty() {
        tile.w_offset.checked_add(kernel.nr)
    } else {
        tile.k
            .checked_mul(kernel.nr)
            .and_then(|x| x.checked_add(taps.max_weight_offset))
            .and_then(|x| x.checked_add(kernel.nr))
            .and_then(|x| x.checked_add(tile.w_offset))
    };
    if !matches!(w_end, Some(end) if end <= w.len()) {
        return Err(TileError::Weights);
    }
    let c_end = last_pixel
        .checked_mul(tile.c_pixel_stride)
        .and_then(|x| x.checked_add(tile.c_offset))
        .and_then(|x| x.checked_add(tile.nr));
    if !matches!(c_end, Some(end) if end <= c.len()) {
        return Err(TileError::Output);
    }
    Ok(())
}

/// The first element of `a` that tile pixel `pixel` reads at `input_offset`, if it does not
/// overflow.
fn input_start(tile: &Tile, pixel: usize, input_offset: isize) -> Option<isize> {
    pixel
        .checked_mul(tile.a_pixel_stride)
        .and_then(|x| x.checked_add(tile.a_offset))
        .and_then(|x| isize::try_from(x).ok())
        .and_then(|x| x.checked_add(input_offset))
}

/// One past the last element of `a` that tile pixel `pixel` reads at `input_offset`, if it
/// does not overflow.
fn input_end(tile: &Tile, pixel: usize, input_offset: isize) -> Option<isize> {
    input_start(tile, pixel, input_offset)?.checked_add(isize::try_from(tile.k).ok()?)
}

/// Proof that the running CPU supports an ISA: made only by [`IsaToken::new`], which checks.
/// Every safe entry point ([`run_tile`], [`pool::run_pool_line`], [`peak::fma_probe`]) takes
/// one, so no kernel runs on a CPU that lacks its instructions.
///
/// # Examples
///
/// ```
/// use incept_kernels::{cpu_supports, IsaToken, KernelIsa};
///
/// let scalar = IsaToken::new(KernelIsa::Scalar).expect("portable code runs anywhere");
/// assert_eq!(scalar.isa(), KernelIsa::Scalar);
/// assert_eq!(IsaToken::new(KernelIsa::Avx2).is_some(), cpu_supports(KernelIsa::Avx2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsaToken(KernelIsa);

impl IsaToken {
    /// Returns a token if this CPU supports `isa`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::{IsaToken, KernelIsa};
    ///
    /// let best = [KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Neon, KernelIsa::Scalar]
    ///     .into_iter()
    ///     .find_map(IsaToken::new)
    ///     .unwrap();
    /// assert!(IsaToken::new(best.isa()).is_some());
    /// ```
    pub fn new(isa: KernelIsa) -> Option<IsaToken> {
        cpu_supports(isa).then_some(IsaToken(isa))
    }

    /// The verified ISA.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::{conv_kernel, IsaToken, KernelIsa};
    ///
    /// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
    /// assert_eq!(token.isa(), KernelIsa::Scalar);
    /// // A token fits the kernel compiled for its ISA.
    /// assert_eq!(conv_kernel(token.isa()).unwrap().isa, token.isa());
    /// ```
    pub fn isa(self) -> KernelIsa {
        self.0
    }
}

/// Whether this CPU can run kernels for `isa` (detected at run time on x86-64; NEON is part of
/// the AArch64 baseline).
///
/// # Examples
///
/// ```
/// use incept_kernels::{cpu_supports, KernelIsa};
///
/// assert!(cpu_supports(KernelIsa::Scalar));
/// // Never true off AArch64, whatever the CPU.
/// assert_eq!(cpu_supports(KernelIsa::Neon), cfg!(target_arch = "aarch64"));
/// ```
pub fn cpu_supports(isa: KernelIsa) -> bool {
    match isa {
        KernelIsa::Scalar => true,
        KernelIsa::Avx2 => x86_has_avx2_fma(),
        KernelIsa::Avx512 => x86_has_avx512f(),
        KernelIsa::Neon => cfg!(target_arch = "aarch64"),
    }
}

#[cfg(target_arch = "x86_64")]
fn x86_has_avx2_fma() -> bool {
    // `is_x86_feature_detected!` needs std; CPUID is available in core.
    x86_features().0
}
#[cfg(target_arch = "x86_64")]
fn x86_has_avx512f() -> bool {
    x86_features().1
}
#[cfg(not(target_arch = "x86_64"))]
fn x86_has_avx2_fma() -> bool {
    false
}
#[cfg(not(target_arch = "x86_64"))]
fn x86_has_avx512f() -> bool {
    false
}

/// (AVX2 and FMA usable, AVX-512F usable), from CPUID and XGETBV: the CPU must have the
/// instructions and the OS must save the vector state.
#[cfg(target_arch = "x86_64")]
fn x86_features() -> (bool, bool) {
    // Miri cannot execute CPUID: it sees the features the crate was compiled with.
    #[cfg(miri)]
    return (
        cfg!(all(target_feature = "avx2", target_feature = "fma")),
        cfg!(target_feature = "avx512f"),
    );
    #[cfg(not(miri))]
    x86_features_cpuid()
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
#[allow(unused_unsafe)] // CPUID intrinsics became safe in Rust 1.87; older compilers need `unsafe`.
fn x86_features_cpuid() -> (bool, bool) {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    // SAFETY: CPUID exists on every x86-64 CPU.
    let leaf1 = unsafe { __cpuid(1) };
    let has_fma = leaf1.ecx & (1 << 12) != 0;
    let has_osxsave = leaf1.ecx & (1 << 27) != 0;
    let has_avx = leaf1.ecx & (1 << 28) != 0;
    if !(has_osxsave && has_avx) {
        return (false, false);
    }
    let xcr0 = xgetbv0();
    let os_ymm = xcr0 & 0b110 == 0b110;
    let os_zmm = xcr0 & 0b1110_0110 == 0b1110_0110;
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is valid when the max leaf allows it.
    let max_leaf = unsafe { __cpuid(0) }.eax;
    if max_leaf < 7 {
        return (false, false);
    }
    // SAFETY: as above.
    let leaf7 = unsafe { __cpuid_count(7, 0) };
    let has_avx2 = leaf7.ebx & (1 << 5) != 0;
    let has_avx512f = leaf7.ebx & (1 << 16) != 0;
    (
        os_ymm && has_avx2 && has_fma,
        os_ymm && os_zmm && has_avx512f,
    )
}

#[cfg(all(target_arch = "x86_64", not(miri)))]
fn xgetbv0() -> u64 {
    let (eax, edx): (u32, u32);
    // SAFETY: only called after CPUID reported OSXSAVE, which makes XGETBV with ECX=0 valid.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") eax, out("edx") edx,
            options(nomem, nostack, preserves_flags));
    }
    (u64::from(edx) << 32) | u64::from(eax)
}
