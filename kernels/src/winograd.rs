//! Winograd minimal filtering: F(4x4, 3x3) and F(2x2, 5x5), the transforms around a batch of
//! GEMMs.
//!
//! A stride-1 3x3 convolution computes each 4x4 block of outputs from a 6x6 block of inputs,
//! a 5x5 one each 2x2 block from a 6x6 block. Both use the interpolation points 0, ±1, ±2 and
//! infinity (Lavin & Gray), so they share the input transform `Bᵀ`:
//!
//! ```text
//!   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A        d: 6x6 input, g: r x r filter, Y: m x m output
//!
//!   Bᵀ = | 4  0 -5  0  1  0 |   F(4x4, 3x3):  G = |  1/4     0     0  |   Aᵀ = | 1  1  1  1  1  0 |
//!        | 0 -4 -4  1  1  0 |                     | -1/6  -1/6  -1/6 |        | 0  1 -1  2 -2  0 |
//!        | 0  4 -4 -1  1  0 |                     | -1/6   1/6  -1/6 |        | 0  1  1  4  4  0 |
//!        | 0 -2 -1  2  1  0 |                     | 1/24  1/12   1/6 |        | 0  1 -1  8 -8  1 |
//!        | 0  2 -1 -2  1  0 |                     | 1/24 -1/12   1/6 |
//!        | 0  4  0 -5  0  1 |                     |   0     0     1  |
//!
//!   F(2x2, 5x5):  G = c_p (1, p, p², p³, p⁴) for p = 0, 1, -1, 2, -2 with c_p = 1/4, -1/6, -1/6,
//!                 1/24, 1/24, and (0, 0, 0, 0, 1) for infinity;
//!                 Aᵀ = | 1  1  1  1  1  0 |
//!                      | 0  1 -1  2 -2  1 |
//! ```
//!
//! Summed over input channels, the element-wise product becomes 36 independent GEMMs
//! (`tiles x in` times `in x out`), one per element of the 6x6 transformed tile: per output and
//! channel pair, 36/16 multiplies where a direct 3x3 does 9, and 36/4 where a direct 5x5 does 25.
//!
//! This module holds the transforms. The filter transforms run once when an operator is
//! created, in f64. The input and output transforms run on every call, vectorised over channels
//! with one generic body per transform instantiated for every ISA (AVX-512F, AVX2+FMA, NEON,
//! portable). The output transform adds the bias and applies the epilogue clamp, so the GEMMs
//! run with neither.
//!
//! Element `e = 6*i + j` of a transformed tile is row `i`, column `j`. Tile layouts: the input
//! transform reads 6x6 pixels (each `channels` contiguous floats, or padding) and writes element
//! `e` of every channel at `dst + e*element_stride`; the output transform reads the 36 elements
//! the same way and writes `m x m` pixels, each optional so a tile at the image edge stores
//! only what is inside. Pixels are addressed by [`TilePixels`]: one offset per row plus one per
//! column, so a tile costs 12 offsets to describe and check, not 36.

// Index loops over the 6x6 / 4x4 tile read as the math is written (rows i, columns j).
#![allow(clippy::needless_range_loop)]

use crate::{Clamp, IsaToken, KernelIsa, TileError};

/// Input tile side: `m + r - 1` = 6 for both variants.
pub const ALPHA: usize = 6;
/// Elements of a transformed tile (`ALPHA * ALPHA`): the number of GEMMs.
pub const ELEMENTS: usize = ALPHA * ALPHA;
/// Side of the largest output tile (F(4x4, 3x3)'s): the size of `transform_output`'s
/// [`TilePixels`].
pub const MAX_TILE: usize = 4;

/// Where the pixels of an `N x N` tile are: pixel `(i, j)` starts at `rows[i] + cols[j]`, or is
/// absent (padding on input, not stored on output) when either is `None`.
///
/// ```
/// use incept_kernels::winograd::TilePixels;
/// // A 2x2 tile of a 10-wide image with 3 channels per pixel, its right column cut off.
/// let tile = TilePixels { rows: [Some(0), Some(30)], cols: [Some(27), None] };
/// assert_eq!(tile.at(1, 0), Some(57));
/// assert_eq!(tile.at(1, 1), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePixels<const N: usize> {
    /// Offset of each row (`None`: the whole row is absent).
    pub rows: [Option<usize>; N],
    /// Offset of each column within a row (`None`: the whole column is absent).
    pub cols: [Option<usize>; N],
}

impl<const N: usize> TilePixels<N> {
    /// The offset of pixel `(i, j)`, if present.
    #[inline(always)]
    pub fn at(&self, i: usize, j: usize) -> Option<usize> {
        Some(self.rows[i]? + self.cols[j]?)
    }

    /// Whether every present pixel among the first `side` rows and columns has `len` elements
    /// inside a slice of `slice_len`: the largest row plus the largest column fits.
    fn fits(&self, side: usize, len: usize, slice_len: usize) -> bool {
        let largest = |x: &[Option<usize>]| x.iter().flatten().copied().max();
        match (largest(&self.rows[..side]), largest(&self.cols[..side])) {
            (Some(r), Some(c)) => r.checked_add(c).is_some_and(|o| fits(o, len, slice_len)),
            _ => true,
        }
    }
}

/// Which minimal filtering algorithm: output tile `m x m` for an `r x r` kernel.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// F(4x4, 3x3): 4x4 outputs per tile, 3x3 kernels.
    F4x4_3x3,
    /// F(2x2, 5x5): 2x2 outputs per tile, 5x5 kernels.
    F2x2_5x5,
}

impl Variant {
    /// The variant for an `r x r` kernel, if there is one.
    ///
    /// ```
    /// use incept_kernels::winograd::Variant;
    /// assert_eq!(Variant::for_kernel(5), Some(Variant::F2x2_5x5));
    /// assert_eq!(Variant::for_kernel(7), None);
    /// ```
    pub const fn for_kernel(r: usize) -> Option<Variant> {
        match r {
            3 => Some(Variant::F4x4_3x3),
            5 => Some(Variant::F2x2_5x5),
            _ => None,
        }
    }

    /// Output tile side `m`.
    pub const fn tile(self) -> usize {
        match self {
            Variant::F4x4_3x3 => 4,
            Variant::F2x2_5x5 => 2,
        }
    }

    /// Kernel side `r` (`tile() + kernel() - 1 == ALPHA`).
    pub const fn kernel(self) -> usize {
        ALPHA + 1 - self.tile()
    }

    /// Filter transform `G g Gᵀ` of one `r x r` filter (row-major, `r*r` floats) into its 36
    /// elements, computed in f64 and rounded once; `None` if `g` is not `r*r` long.
    ///
    /// ```
    /// use incept_kernels::winograd::{Variant, ELEMENTS};
    /// // The identity filter (a single 1 in the centre) keeps a tile's centre.
    /// let mut g = [0.0f32; 25];
    /// g[12] = 1.0;
    /// let u = Variant::F2x2_5x5.transform_filter(&g).unwrap();
    /// assert_eq!(u.len(), ELEMENTS);
    /// assert_eq!(u[0], 0.0); // G row 0 only sees the filter's first row and column
    /// assert!(Variant::F4x4_3x3.transform_filter(&g).is_none());
    /// ```
    pub fn transform_filter(self, g: &[f32]) -> Option<[f32; ELEMENTS]> {
        let r = self.kernel();
        if g.len() != r * r {
            return None;
        }
        // G row for point p (0, 1, -1, 2, -2) is c_p (1, p, p², ...); the last row is infinity.
        const POINTS: [(f64, f64); ALPHA - 1] = [
            (0.0, 1.0 / 4.0),
            (1.0, -1.0 / 6.0),
            (-1.0, -1.0 / 6.0),
            (2.0, 1.0 / 24.0),
            (-2.0, 1.0 / 24.0),
        ];
        let g_times = |x: &[f64]| -> [f64; ALPHA] {
            core::array::from_fn(|i| match POINTS.get(i) {
                Some(&(p, c)) => c * x.iter().rev().fold(0.0, |acc, &v| acc * p + v),
                None => x[r - 1],
            })
        };
        // Columns first (r x r -> 6 x r), then rows (6 x r -> 6 x 6).
        let mut cols = [[0.0f64; ALPHA]; ALPHA];
        for kx in 0..r {
            let column: [f64; ALPHA] = core::array::from_fn(|ky| {
                if ky < r {
                    f64::from(g[ky * r + kx])
                } else {
                    0.0
                }
            });
            for (i, v) in g_times(&column[..r]).into_iter().enumerate() {
                cols[i][kx] = v;
            }
        }
        let mut u = [0.0f32; ELEMENTS];
        for (i, row) in cols.iter().enumerate() {
            for (j, v) in g_times(&row[..r]).into_iter().enumerate() {
                u[i * ALPHA + j] = v as f32;
            }
        }
        Some(u)
    }
}

/// The few vector operations the transforms need, implemented once per ISA.
///
/// # Safety
/// Implementations are only called from functions compiled for their ISA, on CPUs that have it.
pub(crate) trait Vector: Copy {
    /// Lanes per vector.
    const LANES: usize;
    /// All lanes `x`.
    fn splat(x: f32) -> Self;
    /// `self + b`.
    fn add(self, b: Self) -> Self;
    /// `self - b`.
    fn sub(self, b: Self) -> Self;
    /// `self * b + c` (fused where the ISA has FMA).
    fn mul_add(self, b: Self, c: Self) -> Self;
    /// [`Clamp::apply`] on every lane (NaN passes, -0.0 kept).
    fn clamp(self, lo: Self, hi: Self) -> Self;
    /// Loads `LANES` floats.
    ///
    /// # Safety
    /// `p .. p + LANES` readable.
    unsafe fn load(p: *const f32) -> Self;
    /// Stores `LANES` floats.
    ///
    /// # Safety
    /// `p .. p + LANES` writable.
    unsafe fn store(self, p: *mut f32);

    /// Loads `n < LANES` floats, the other lanes 0.
    ///
    /// # Safety
    /// `p .. p + n` readable.
    #[inline(always)]
    unsafe fn load_partial(p: *const f32, n: usize) -> Self {
        let mut buf = [0.0f32; 16];
        // SAFETY: `n < LANES <= 16` elements readable at `p` (caller's contract).
        unsafe { core::ptr::copy_nonoverlapping(p, buf.as_mut_ptr(), n) };
        // SAFETY: `buf` holds 16 >= LANES floats.
        unsafe { Self::load(buf.as_ptr()) }
    }

    /// Stores the first `n < LANES` lanes.
    ///
    /// # Safety
    /// `p .. p + n` writable.
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, n: usize) {
        let mut buf = [0.0f32; 16];
        // SAFETY: `buf` holds 16 >= LANES floats.
        unsafe { self.store(buf.as_mut_ptr()) };
        // SAFETY: `n` elements writable at `p` (caller's contract).
        unsafe { core::ptr::copy_nonoverlapping(buf.as_ptr(), p, n) };
    }
}

/// `Bᵀ x` for one column (or row) of six.
#[inline(always)]
fn b_transpose<V: Vector>(x: [V; ALPHA]) -> [V; ALPHA] {
    let [x0, x1, x2, x3, x4, x5] = x;
    let (four, minus_four, minus_five) = (V::splat(4.0), V::splat(-4.0), V::splat(-5.0));
    let a = minus_four.mul_add(x2, x4); // x4 - 4 x2
    let b = minus_four.mul_add(x1, x3); // x3 - 4 x1
    let c = x4.sub(x2);
    let d = x3.sub(x1);
    let d = d.add(d); // 2 (x3 - x1)
    [
        four.mul_add(x0, minus_five.mul_add(x2, x4)),
        a.add(b),
        a.sub(b),
        c.add(d),
        c.sub(d),
        four.mul_add(x1, minus_five.mul_add(x3, x5)),
    ]
}

/// `Aᵀ x` for one column (or row) of six: the first `M` rows of F(4x4, 3x3)'s `Aᵀ` (`M` = 4),
/// or F(2x2, 5x5)'s (`M` = 2: its second row is the 4x4 one plus `x5`).
#[inline(always)]
fn a_transpose<V: Vector, const M: usize>(x: [V; ALPHA]) -> [V; M] {
    let [x0, x1, x2, x3, x4, x5] = x;
    let (s12, d12, s34, d34) = (x1.add(x2), x1.sub(x2), x3.add(x4), x3.sub(x4));
    let first = x0.add(s12).add(s34);
    let second = V::splat(2.0).mul_add(d34, d12);
    let rows = if M == 4 {
        [
            first,
            second,
            V::splat(4.0).mul_add(s34, s12),
            V::splat(8.0).mul_add(d34, d12).add(x5),
        ]
    } else {
        [first, second.add(x5), first, first]
    };
    core::array::from_fn(|k| rows[k])
}

/// The input transform of one tile, every channel. See [`transform_input`].
///
/// # Safety
/// As checked by [`transform_input`]; `V`'s ISA available.
#[inline(always)]
pub(crate) unsafe fn input_body<V: Vector>(
    src: *const f32,
    pixels: &TilePixels<ALPHA>,
    channels: usize,
    dst: *mut f32,
    element_stride: usize,
) {
    let mut c = 0;
    while c < channels {
        let n = (channels - c).min(V::LANES);
        let load = |i: usize, j: usize| match pixels.at(i, j) {
            // SAFETY: `offset + channels` is inside `src` (checked), `c + n <= channels`.
            Some(offset) => unsafe {
                let at = src.add(offset + c);
                if n == V::LANES {
                    V::load(at)
                } else {
                    V::load_partial(at, n)
                }
            },
            None => V::splat(0.0),
        };
        // Bᵀ d down every column (`cols[j][i]` = row i of column j), then Bᵀ along every row.
        // Built with `from_fn`, never zero-filled: the arrays stay in registers or one spill.
        let cols: [[V; ALPHA]; ALPHA] =
            core::array::from_fn(|j| b_transpose(core::array::from_fn(|i| load(i, j))));
        for i in 0..ALPHA {
            let row = b_transpose(core::array::from_fn(|j| cols[j][i]));
            for (j, v) in row.into_iter().enumerate() {
                // SAFETY: element `e < 36` of channels `c .. c + n`: inside `dst` (checked).
                unsafe {
                    let at = dst.add((i * ALPHA + j) * element_stride + c);
                    if n == V::LANES {
                        v.store(at)
                    } else {
                        v.store_partial(at, n)
                    }
                }
            }
        }
        c += V::LANES;
    }
}

/// The output transform of one tile, every channel, with bias and clamp. See
/// [`transform_output`].
///
/// # Safety
/// As checked by [`transform_output`]; `V`'s ISA available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn output_body<V: Vector, const M: usize>(
    m: *const f32,
    element_stride: usize,
    channels: usize,
    bias: *const f32,
    clamp: Clamp,
    dst: *mut f32,
    pixels: &TilePixels<MAX_TILE>,
) {
    let (lo, hi) = (V::splat(clamp.min), V::splat(clamp.max));
    let mut c = 0;
    while c < channels {
        let n = (channels - c).min(V::LANES);
        let load = |at: *const f32| {
            // SAFETY: callers pass addresses of `n` readable floats (checked ranges).
            unsafe {
                if n == V::LANES {
                    V::load(at)
                } else {
                    V::load_partial(at, n)
                }
            }
        };
        // SAFETY: channels `c .. c + n` of the bias (checked).
        let b = load(unsafe { bias.add(c) });
        // Aᵀ m down every column (`cols[j][i]`, 6x6 -> Mx6), then Aᵀ along every row (MxM).
        let cols: [[V; M]; ALPHA] = core::array::from_fn(|j| {
            a_transpose::<V, M>(core::array::from_fn(|i| {
                // SAFETY: element `e < 36`, channels `c .. c + n`: inside `m` (checked).
                load(unsafe { m.add((i * ALPHA + j) * element_stride + c) })
            }))
        });
        for i in 0..M {
            let row = a_transpose::<V, M>(core::array::from_fn(|j| cols[j][i]));
            for (j, v) in row.into_iter().enumerate() {
                if let Some(offset) = pixels.at(i, j) {
                    let y = b.add(v).clamp(lo, hi);
                    // SAFETY: `offset + channels` inside `dst` (checked), `c + n <= channels`.
                    unsafe {
                        let at = dst.add(offset + c);
                        if n == V::LANES {
                            y.store(at)
                        } else {
                            y.store_partial(at, n)
                        }
                    }
                }
            }
        }
        c += V::LANES;
    }
}

/// Defines one ISA's transform entry points, `input` and `output`: the generic bodies compiled
/// with `$feature` enabled for the vector type `$v` (used by each ISA's `winograd.rs`).
macro_rules! entry_points {
    ($v:ty, $feature:literal) => {
        /// [`crate::winograd::transform_input`] for this module's ISA.
        ///
        /// # Safety
        /// The checks of `transform_input` hold; the CPU supports this module's ISA.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn input(
            src: *const f32,
            pixels: &$crate::winograd::TilePixels<{ $crate::winograd::ALPHA }>,
            channels: usize,
            dst: *mut f32,
            element_stride: usize,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                $crate::winograd::input_body::<$v>(src, pixels, channels, dst, element_stride)
            }
        }

        /// [`crate::winograd::transform_output`] for this module's ISA, `M x M` output tiles.
        ///
        /// # Safety
        /// The checks of `transform_output` hold; the CPU supports this module's ISA.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn output<const M: usize>(
            m: *const f32,
            element_stride: usize,
            channels: usize,
            bias: *const f32,
            clamp: $crate::Clamp,
            dst: *mut f32,
            pixels: &$crate::winograd::TilePixels<{ $crate::winograd::MAX_TILE }>,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                $crate::winograd::output_body::<$v, M>(
                    m,
                    element_stride,
                    channels,
                    bias,
                    clamp,
                    dst,
                    pixels,
                )
            }
        }
    };
}
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub(crate) use entry_points;

/// Whether `offset + len` fits in `len_of_slice`.
fn fits(offset: usize, len: usize, slice_len: usize) -> bool {
    offset.checked_add(len).is_some_and(|end| end <= slice_len)
}

/// Transforms one 6x6 input tile: for every channel `q < channels`, writes element `e` of
/// `Bᵀ d B` to `dst[dst_offset + e*element_stride + q]`. `pixels.at(i, j)` is the offset in
/// `src` of input pixel `(i, j)`'s first channel, or `None` for padding (zeros).
///
/// Checks every address first; `isa` proves the CPU runs the chosen ISA's code.
///
/// ```
/// use incept_kernels::{winograd::transform_input, winograd::TilePixels, IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // One channel, a single 1 at pixel (0, 0), padding everywhere else: Bᵀ's first column is
/// // (4, 0, 0, 0, 0, 0), so only element (0, 0) is set, to 4 * 4.
/// let src = [1.0f32];
/// let first = core::array::from_fn(|i| (i == 0).then_some(0));
/// let pixels = TilePixels { rows: first, cols: first };
/// let mut v = [f32::NAN; 36];
/// transform_input(isa, &src, &pixels, 1, &mut v, 0, 1).unwrap();
/// assert_eq!(v[0], 16.0);
/// assert!(v[1..].iter().all(|&x| x == 0.0));
/// ```
pub fn transform_input(
    isa: IsaToken,
    src: &[f32],
    pixels: &TilePixels<ALPHA>,
    channels: usize,
    dst: &mut [f32],
    dst_offset: usize,
    element_stride: usize,
) -> Result<(), TileError> {
    if !pixels.fits(ALPHA, channels, src.len()) {
        return Err(TileError::Input);
    }
    let last = (ELEMENTS - 1)
        .checked_mul(element_stride)
        .and_then(|x| x.checked_add(dst_offset));
    if channels > 0 && !matches!(last, Some(last) if fits(last, channels, dst.len())) {
        return Err(TileError::Output);
    }
    if channels == 0 {
        return Ok(());
    }
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr().wrapping_add(dst_offset));
    // SAFETY: every read (`offset + q`, q < channels) and write (`dst_offset + e*stride + q`)
    // is inside the slices (checked above); the token proves the ISA.
    unsafe {
        match isa.isa() {
            KernelIsa::Scalar => input_body::<f32>(s, pixels, channels, d, element_stride),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx2 => {
                crate::x86_avx2::winograd::input(s, pixels, channels, d, element_stride)
            }
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx512 => {
                crate::x86_avx512::winograd::input(s, pixels, channels, d, element_stride)
            }
            #[cfg(target_arch = "aarch64")]
            KernelIsa::Neon => {
                crate::aarch64_neon::winograd::input(s, pixels, channels, d, element_stride)
            }
            #[allow(unreachable_patterns)]
            _ => return Err(TileError::Isa),
        }
    }
    Ok(())
}

/// Transforms one tile back: for every channel `q < channels`, output pixel `(y, x)` of the
/// `m x m` tile (`m = variant.tile()`) gets `clamp(bias[q] + (Aᵀ M A)[y][x])`, stored at
/// `dst[pixels.at(y, x) + q]` (absent pixels are skipped; rows and columns from `m` on are
/// ignored). Element `e` of channel `q` is read from `m[m_offset + e*element_stride + q]`.
///
/// ```
/// use incept_kernels::winograd::{transform_output, TilePixels, Variant};
/// use incept_kernels::{Clamp, IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // Only element (0, 0) set: it reaches output (0, 0) alone.
/// let mut m = [0.0f32; 36];
/// m[0] = 2.0;
/// let mut out = [0.0f32; 16];
/// let pixels = TilePixels { rows: [0, 4, 8, 12].map(Some), cols: [0, 1, 2, 3].map(Some) };
/// let tile = Variant::F4x4_3x3;
/// transform_output(isa, tile, &m, 0, 1, 1, &[0.5], Clamp::NONE, &mut out, &pixels).unwrap();
/// assert_eq!(out[0], 2.5);
/// assert_eq!(out[1], 0.5);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn transform_output(
    isa: IsaToken,
    variant: Variant,
    m: &[f32],
    m_offset: usize,
    element_stride: usize,
    channels: usize,
    bias: &[f32],
    clamp: Clamp,
    dst: &mut [f32],
    pixels: &TilePixels<MAX_TILE>,
) -> Result<(), TileError> {
    if channels == 0 {
        return Ok(());
    }
    let last = (ELEMENTS - 1)
        .checked_mul(element_stride)
        .and_then(|x| x.checked_add(m_offset));
    if bias.len() < channels || !matches!(last, Some(last) if fits(last, channels, m.len())) {
        return Err(TileError::Input);
    }
    let side = variant.tile();
    if !pixels.fits(side, channels, dst.len()) {
        return Err(TileError::Output);
    }
    let (mp, d) = (m.as_ptr().wrapping_add(m_offset), dst.as_mut_ptr());
    let (stride, b) = (element_stride, bias.as_ptr());
    // SAFETY: every read of `m` and `bias` and every write of `dst` (rows, columns below `side`)
    // is inside the slices (checked above); the token proves the ISA.
    unsafe {
        match variant {
            Variant::F4x4_3x3 => output_for::<4>(isa, mp, stride, channels, b, clamp, d, pixels),
            Variant::F2x2_5x5 => output_for::<2>(isa, mp, stride, channels, b, clamp, d, pixels),
        }
    }
}

/// [`transform_output`]'s dispatch to the ISA's `M x M` output transform.
///
/// # Safety
/// As checked by [`transform_output`] for `M`.
#[allow(clippy::too_many_arguments)]
unsafe fn output_for<const M: usize>(
    isa: IsaToken,
    mp: *const f32,
    stride: usize,
    channels: usize,
    b: *const f32,
    clamp: Clamp,
    d: *mut f32,
    pixels: &TilePixels<MAX_TILE>,
) -> Result<(), TileError> {
    // SAFETY: forwarded contract; the token proves the ISA.
    unsafe {
        match isa.isa() {
            KernelIsa::Scalar => output_body::<f32, M>(mp, stride, channels, b, clamp, d, pixels),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx2 => {
                crate::x86_avx2::winograd::output::<M>(mp, stride, channels, b, clamp, d, pixels)
            }
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx512 => {
                crate::x86_avx512::winograd::output::<M>(mp, stride, channels, b, clamp, d, pixels)
            }
            #[cfg(target_arch = "aarch64")]
            KernelIsa::Neon => crate::aarch64_neon::winograd::output::<M>(
                mp, stride, channels, b, clamp, d, pixels,
            ),
            #[allow(unreachable_patterns)]
            _ => return Err(TileError::Isa),
        }
    }
    Ok(())
}

/// The portable path: one channel at a time.
impl Vector for f32 {
    const LANES: usize = 1;
    #[inline(always)]
    fn splat(x: f32) -> Self {
        x
    }
    #[inline(always)]
    fn add(self, b: Self) -> Self {
        self + b
    }
    #[inline(always)]
    fn sub(self, b: Self) -> Self {
        self - b
    }
    #[inline(always)]
    fn mul_add(self, b: Self, c: Self) -> Self {
        self * b + c
    }
    #[inline(always)]
    fn clamp(self, lo: Self, hi: Self) -> Self {
        Clamp { min: lo, max: hi }.apply(self)
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self {
        // SAFETY: caller's contract.
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: caller's contract.
        unsafe { *p = self }
    }
}
