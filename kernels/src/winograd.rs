//! Winograd F(4x4, 3x3): the transforms around a batch of GEMMs.
//!
//! A stride-1 3x3 convolution computes each 4x4 block of outputs from a 6x6 block of inputs.
//! With the interpolation points 0, ±1, ±2 and infinity (Lavin & Gray's F(4x4, 3x3)):
//!
//! ```text
//!   Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d Bᵀᵀ) ] A        d: 6x6 input, g: 3x3 filter, Y: 4x4 output
//!
//!   Bᵀ = | 4  0 -5  0  1  0 |    G = |  1/4     0     0  |    Aᵀ = | 1  1  1  1  1  0 |
//!        | 0 -4 -4  1  1  0 |        | -1/6  -1/6  -1/6 |         | 0  1 -1  2 -2  0 |
//!        | 0  4 -4 -1  1  0 |        | -1/6   1/6  -1/6 |         | 0  1  1  4  4  0 |
//!        | 0 -2 -1  2  1  0 |        | 1/24  1/12   1/6 |         | 0  1 -1  8 -8  1 |
//!        | 0  2 -1 -2  1  0 |        | 1/24 -1/12   1/6 |
//!        | 0  4  0 -5  0  1 |        |   0     0     1  |
//! ```
//!
//! Summed over input channels, the element-wise product becomes 36 independent GEMMs
//! (`tiles x in` times `in x out`), one per element of the 6x6 transformed tile: 4 multiplies
//! per output where the direct convolution does 9 (36 / 16 versus 9 per channel pair).
//!
//! This module holds the three transforms. The filter transform runs once when an operator is
//! created, in f64. The input and output transforms run on every call, vectorised over channels
//! with one generic body per transform instantiated for every ISA (AVX-512F, AVX2+FMA, NEON,
//! portable). The output transform adds the bias and applies the epilogue clamp, so the GEMMs
//! run with neither.
//!
//! Element `e = 6*i + j` of a transformed tile is row `i`, column `j`. Tile layouts: the input
//! transform reads 36 pixels (row-major 6x6, each `channels` contiguous floats, or padding) and
//! writes element `e` of every channel at `dst + e*element_stride`; the output transform reads
//! the 36 elements the same way and writes 16 pixels (row-major 4x4), each optional so a tile
//! at the image edge stores only what is inside.

// Index loops over the 6x6 / 4x4 tile read as the math is written (rows i, columns j).
#![allow(clippy::needless_range_loop)]

use crate::{Clamp, IsaToken, KernelIsa, TileError};

/// Output tile side `m` of F(m x m, 3x3).
pub const TILE: usize = 4;
/// Input tile side `m + 3 - 1`.
pub const ALPHA: usize = 6;
/// Elements of a transformed tile (`ALPHA * ALPHA`): the number of GEMMs.
pub const ELEMENTS: usize = ALPHA * ALPHA;

/// Filter transform `G g Gᵀ` of one 3x3 filter (row-major) into its 36 elements, computed in f64
/// and rounded once.
///
/// ```
/// use incept_kernels::winograd::{transform_filter, ELEMENTS};
/// // The identity filter (a single 1 in the centre) keeps a tile's centre.
/// let mut g = [0.0f32; 9];
/// g[4] = 1.0;
/// let u = transform_filter(&g);
/// assert_eq!(u.len(), ELEMENTS);
/// assert_eq!(u[0], 0.0); // G row 0 only sees the filter's first row and column
/// ```
pub fn transform_filter(g: &[f32; 9]) -> [f32; ELEMENTS] {
    fn g_times(x: [f64; 3]) -> [f64; ALPHA] {
        let [g0, g1, g2] = x;
        [
            g0 / 4.0,
            -(g0 + g1 + g2) / 6.0,
            -(g0 - g1 + g2) / 6.0,
            g0 / 24.0 + g1 / 12.0 + g2 / 6.0,
            g0 / 24.0 - g1 / 12.0 + g2 / 6.0,
            g2,
        ]
    }
    // Columns first (3x3 -> 6x3), then rows (6x3 -> 6x6).
    let mut cols = [[0.0f64; 3]; ALPHA];
    for kx in 0..3 {
        let column = g_times([f64::from(g[kx]), f64::from(g[3 + kx]), f64::from(g[6 + kx])]);
        for (i, v) in column.into_iter().enumerate() {
            cols[i][kx] = v;
        }
    }
    let mut u = [0.0f32; ELEMENTS];
    for (i, row) in cols.iter().enumerate() {
        for (j, v) in g_times(*row).into_iter().enumerate() {
            u[i * ALPHA + j] = v as f32;
        }
    }
    u
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

/// `Aᵀ x` for one column (or row) of six.
#[inline(always)]
fn a_transpose<V: Vector>(x: [V; ALPHA]) -> [V; TILE] {
    let [x0, x1, x2, x3, x4, x5] = x;
    let (s12, d12, s34, d34) = (x1.add(x2), x1.sub(x2), x3.add(x4), x3.sub(x4));
    [
        x0.add(s12).add(s34),
        V::splat(2.0).mul_add(d34, d12),
        V::splat(4.0).mul_add(s34, s12),
        V::splat(8.0).mul_add(d34, d12).add(x5),
    ]
}

/// The input transform of one tile, every channel. See [`transform_input`].
///
/// # Safety
/// As checked by [`transform_input`]; `V`'s ISA available.
#[inline(always)]
pub(crate) unsafe fn input_body<V: Vector>(
    src: *const f32,
    pixels: &[Option<usize>; ELEMENTS],
    channels: usize,
    dst: *mut f32,
    element_stride: usize,
) {
    let mut c = 0;
    while c < channels {
        let n = (channels - c).min(V::LANES);
        let load = |p: usize| match pixels[p] {
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
            core::array::from_fn(|j| b_transpose(core::array::from_fn(|i| load(i * ALPHA + j))));
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
pub(crate) unsafe fn output_body<V: Vector>(
    m: *const f32,
    element_stride: usize,
    channels: usize,
    bias: *const f32,
    clamp: Clamp,
    dst: *mut f32,
    pixels: &[Option<usize>; TILE * TILE],
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
        // Aᵀ m down every column (`cols[j][i]`, 6x6 -> 4x6), then Aᵀ along every row (4x4).
        let cols: [[V; TILE]; ALPHA] = core::array::from_fn(|j| {
            a_transpose(core::array::from_fn(|i| {
                // SAFETY: element `e < 36`, channels `c .. c + n`: inside `m` (checked).
                load(unsafe { m.add((i * ALPHA + j) * element_stride + c) })
            }))
        });
        for i in 0..TILE {
            let row = a_transpose(core::array::from_fn(|j| cols[j][i]));
            for (j, v) in row.into_iter().enumerate() {
                if let Some(offset) = pixels[i * TILE + j] {
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
            pixels: &[Option<usize>; $crate::winograd::ELEMENTS],
            channels: usize,
            dst: *mut f32,
            element_stride: usize,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                $crate::winograd::input_body::<$v>(src, pixels, channels, dst, element_stride)
            }
        }

        /// [`crate::winograd::transform_output`] for this module's ISA.
        ///
        /// # Safety
        /// The checks of `transform_output` hold; the CPU supports this module's ISA.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn output(
            m: *const f32,
            element_stride: usize,
            channels: usize,
            bias: *const f32,
            clamp: $crate::Clamp,
            dst: *mut f32,
            pixels: &[Option<usize>; $crate::winograd::TILE * $crate::winograd::TILE],
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                $crate::winograd::output_body::<$v>(
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
/// `Bᵀ d B` to `dst[dst_offset + e*element_stride + q]`. `pixels[6*i + j]` is the offset in
/// `src` of input pixel `(i, j)`'s first channel, or `None` for padding (zeros).
///
/// Checks every address first; `isa` proves the CPU runs the chosen ISA's code.
///
/// ```
/// use incept_kernels::{winograd::transform_input, IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // One channel, a single 1 at pixel (0, 0), padding everywhere else: Bᵀ's first column is
/// // (4, 0, 0, 0, 0, 0), so only element (0, 0) is set, to 4 * 4.
/// let src = [1.0f32];
/// let pixels = core::array::from_fn(|p| (p == 0).then_some(0));
/// let mut v = [f32::NAN; 36];
/// transform_input(isa, &src, &pixels, 1, &mut v, 0, 1).unwrap();
/// assert_eq!(v[0], 16.0);
/// assert!(v[1..].iter().all(|&x| x == 0.0));
/// ```
pub fn transform_input(
    isa: IsaToken,
    src: &[f32],
    pixels: &[Option<usize>; ELEMENTS],
    channels: usize,
    dst: &mut [f32],
    dst_offset: usize,
    element_stride: usize,
) -> Result<(), TileError> {
    if pixels
        .iter()
        .flatten()
        .any(|&offset| !fits(offset, channels, src.len()))
    {
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
/// 4x4 tile gets `clamp(bias[q] + (Aᵀ m A)[y][x])`, stored at `dst[pixels[4*y + x] + q]`
/// (pixels that are `None` are skipped). Element `e` of channel `q` is read from
/// `m[m_offset + e*element_stride + q]`.
///
/// ```
/// use incept_kernels::{winograd::transform_output, Clamp, IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // Only element (0, 0) set: it reaches output (0, 0) alone.
/// let mut m = [0.0f32; 36];
/// m[0] = 2.0;
/// let mut out = [0.0f32; 16];
/// let pixels = core::array::from_fn(|p| Some(p));
/// transform_output(isa, &m, 0, 1, 1, &[0.5], Clamp::NONE, &mut out, &pixels).unwrap();
/// assert_eq!(out[0], 2.5);
/// assert_eq!(out[1], 0.5);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn transform_output(
    isa: IsaToken,
    m: &[f32],
    m_offset: usize,
    element_stride: usize,
    channels: usize,
    bias: &[f32],
    clamp: Clamp,
    dst: &mut [f32],
    pixels: &[Option<usize>; TILE * TILE],
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
    if pixels
        .iter()
        .flatten()
        .any(|&offset| !fits(offset, channels, dst.len()))
    {
        return Err(TileError::Output);
    }
    let (mp, d) = (m.as_ptr().wrapping_add(m_offset), dst.as_mut_ptr());
    let (stride, b) = (element_stride, bias.as_ptr());
    // SAFETY: every read of `m` and `bias` and every write of `dst` is inside the slices
    // (checked above); the token proves the ISA.
    unsafe {
        match isa.isa() {
            KernelIsa::Scalar => output_body::<f32>(mp, stride, channels, b, clamp, d, pixels),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx2 => {
                crate::x86_avx2::winograd::output(mp, stride, channels, b, clamp, d, pixels)
            }
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx512 => {
                crate::x86_avx512::winograd::output(mp, stride, channels, b, clamp, d, pixels)
            }
            #[cfg(target_arch = "aarch64")]
            KernelIsa::Neon => {
                crate::aarch64_neon::winograd::output(mp, stride, channels, b, clamp, d, pixels)
            }
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
