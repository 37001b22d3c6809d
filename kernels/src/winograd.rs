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
//! only what is inside. Both transforms take a whole row of tiles per call ([`TileRow`]: one
//! offset per pixel row plus the column geometry), so the checks and the dispatch are paid
//! once per row, not per tile.

// Index loops over the 6x6 / 4x4 tile read as the math is written (rows i, columns j).
#![allow(clippy::needless_range_loop)]

use crate::{Clamp, IsaToken, KernelIsa, TileError};

/// Input tile side: `m + r - 1` = 6 for both variants.
pub const ALPHA: usize = 6;
/// Elements of a transformed tile (`ALPHA * ALPHA`): the number of GEMMs.
pub const ELEMENTS: usize = ALPHA * ALPHA;
/// Side of the largest output tile (F(4x4, 3x3)'s): the size of `transform_output`'s
/// [`TileRow`].
pub const MAX_TILE: usize = 4;

/// Where the pixels of a row of tiles are, in the image a transform reads or writes.
///
/// Pixel `(i, j)` of tile `t` is image column `x = first_column + t*step + j` of pixel row `i`:
/// it starts at `rows[i] + x*pixel_stride`, and is absent (padding on input, not stored on
/// output) when `rows[i]` is `None` or `x` is outside `0..width`.
///
/// ```
/// use incept_kernels::winograd::TileRow;
/// // 2x2 tiles along a 5-wide image with 3 channels per pixel: tile 2 has its right column cut.
/// let row = TileRow { rows: [Some(0), Some(15)], first_column: 0, step: 2, width: 5, pixel_stride: 3, tiles: 3 };
/// assert_eq!(row.pixel(2, 1, 0), Some(15 + 4 * 3));
/// assert_eq!(row.pixel(2, 1, 1), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRow<const N: usize> {
    /// Offset of column 0 of each pixel row (`None`: the whole row is absent).
    pub rows: [Option<usize>; N],
    /// Image column of tile 0's first pixel column (negative: left padding).
    pub first_column: isize,
    /// Columns from one tile to the next (the output tile side).
    pub step: usize,
    /// Image columns `0..width` are present.
    pub width: usize,
    /// Elements from one pixel to the next along a row.
    pub pixel_stride: usize,
    /// Tiles in the row.
    pub tiles: usize,
}

impl<const N: usize> TileRow<N> {
    /// The offset of pixel `(i, j)` of tile `t`, if present (`None` also for `i` or `j` out of
    /// `0..N`).
    pub fn pixel(&self, t: usize, i: usize, j: usize) -> Option<usize> {
        let column = self.columns(t).get(j).copied().flatten()?;
        self.rows.get(i).copied().flatten()?.checked_add(column)
    }

    /// Offsets of tile `t`'s `N` pixel columns within a row (`None` outside the image).
    #[inline(always)]
    fn columns(&self, t: usize) -> [Option<usize>; N] {
        core::array::from_fn(|j| {
            let x = t
                .checked_mul(self.step)
                .and_then(|x| x.checked_add(j))
                .and_then(|x| isize::try_from(x).ok())
                .and_then(|x| x.checked_add(self.first_column))?;
            let x = usize::try_from(x).ok().filter(|&x| x < self.width)?;
            x.checked_mul(self.pixel_stride)
        })
    }

    /// Whether every present pixel among the first `side` rows and columns of every tile has
    /// `len` elements inside a slice of `slice_len`: the largest row plus the last present
    /// column fits.
    fn fits(&self, side: usize, len: usize, slice_len: usize) -> bool {
        let Some(&largest_row) = self.rows[..side].iter().flatten().max() else {
            return true;
        };
        if self.tiles == 0 || side == 0 {
            return true;
        }
        let last = (self.tiles - 1)
            .checked_mul(self.step)
            .and_then(|x| x.checked_add(side - 1))
            .and_then(|x| isize::try_from(x).ok())
            .and_then(|x| x.checked_add(self.first_column));
        let Some(last) = last else {
            return false;
        };
        let width = isize::try_from(self.width).unwrap_or(isize::MAX);
        let last_present = last.min(width - 1);
        if last_present < self.first_column.max(0) {
            return true; // no column inside the image
        }
        (last_present as usize)
            .checked_mul(self.pixel_stride)
            .and_then(|x| x.checked_add(largest_row))
            .is_some_and(|offset| fits(offset, len, slice_len))
    }
}

/// Where a row of transformed tiles lives: element `e` of tile `t`, channel `q`, at
/// `offset + t*tile_stride + e*element_stride + q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transformed {
    /// Tile 0, element 0, channel 0.
    pub offset: usize,
    /// From one tile to the next.
    pub tile_stride: usize,
    /// From one element to the next.
    pub element_stride: usize,
}

impl Transformed {
    /// Whether `tiles` tiles of `channels` channels fit in a slice of `slice_len`.
    fn fits(&self, tiles: usize, channels: usize, slice_len: usize) -> bool {
        if tiles == 0 || channels == 0 {
            return true;
        }
        let last = (tiles - 1)
            .checked_mul(self.tile_stride)
            .and_then(|x| x.checked_add((ELEMENTS - 1).checked_mul(self.element_stride)?))
            .and_then(|x| x.checked_add(self.offset));
        last.is_some_and(|last| fits(last, channels, slice_len))
    }
}

/// One tile's pixels: pixel `(i, j)` at `rows[i] + cols[j]`, absent when either is `None`.
#[derive(Clone, Copy)]
pub(crate) struct TilePixels<const N: usize> {
    rows: [Option<usize>; N],
    cols: [Option<usize>; N],
}

impl<const N: usize> TilePixels<N> {
    /// The offset of pixel `(i, j)`, if present.
    #[inline(always)]
    fn at(&self, i: usize, j: usize) -> Option<usize> {
        Some(self.rows[i]? + self.cols[j]?)
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

/// Loads `n` lanes (all of them when `FULL`), the others 0.
///
/// # Safety
/// `p .. p + n` readable (`n = LANES` when `FULL`).
#[inline(always)]
unsafe fn load_n<V: Vector, const FULL: bool>(p: *const f32, n: usize) -> V {
    // SAFETY: caller's contract.
    unsafe {
        if FULL {
            V::load(p)
        } else {
            V::load_partial(p, n)
        }
    }
}

/// Stores `n` lanes (all of them when `FULL`).
///
/// # Safety
/// `p .. p + n` writable (`n = LANES` when `FULL`).
#[inline(always)]
unsafe fn store_n<V: Vector, const FULL: bool>(v: V, p: *mut f32, n: usize) {
    // SAFETY: caller's contract.
    unsafe {
        if FULL {
            v.store(p)
        } else {
            v.store_partial(p, n)
        }
    }
}

/// The input transform of a row of tiles, every channel. See [`transform_input`].
///
/// # Safety
/// As checked by [`transform_input`] (`dst` at the first tile); `V`'s ISA available.
#[inline(always)]
pub(crate) unsafe fn input_body<V: Vector>(
    src: *const f32,
    row: &TileRow<ALPHA>,
    channels: usize,
    dst: *mut f32,
    strides: (usize, usize),
) {
    // SAFETY (both): forwarded contract.
    unsafe {
        if channels <= RING_MAX_VECTORS * V::LANES {
            input_by_columns::<V>(src, row, channels, dst, strides)
        } else {
            input_tile_by_tile::<V>(src, row, channels, dst, strides)
        }
    }
}

/// Most channel vectors for which [`input_by_columns`] is used. Measured on AVX-512 (28x28,
/// 1 thread): 16 channels 5x5 0.88x the time of tile by tile, 32 channels 0.96x, 48 the same,
/// 64 channels 3x3 1.08x (each vector's pass over the row's six pixel rows no longer stays in
/// L1).
const RING_MAX_VECTORS: usize = 2;

/// [`input_body`] for few channels: one vector of channels at a time along the whole row.
/// Neighbouring tiles overlap by `6 - step` pixel columns, so each column's `Bᵀ` (down the
/// column) is computed once and kept in a ring of the last six; each tile then adds its `step`
/// new columns and runs `Bᵀ` along its six rows.
///
/// # Safety
/// As [`input_body`].
#[inline(always)]
unsafe fn input_by_columns<V: Vector>(
    src: *const f32,
    row: &TileRow<ALPHA>,
    channels: usize,
    dst: *mut f32,
    strides: (usize, usize),
) {
    let mut c = 0;
    while c + V::LANES <= channels {
        // SAFETY: channels `c .. c + LANES` of every present pixel and every tile's elements
        // (checked by `transform_input`).
        unsafe { input_row_vector::<V, true>(src.add(c), row, V::LANES, dst.add(c), strides) };
        c += V::LANES;
    }
    if c < channels {
        // SAFETY: as above for the last `channels - c < LANES` channels.
        unsafe { input_row_vector::<V, false>(src.add(c), row, channels - c, dst.add(c), strides) };
    }
}

/// [`input_by_columns`] for one vector of `n` channels starting at `src` and `dst`.
///
/// # Safety
/// `n` floats readable at every present pixel of `row` (from `src`), writable at every tile's
/// elements (from `dst`).
#[inline(always)]
unsafe fn input_row_vector<V: Vector, const FULL: bool>(
    src: *const f32,
    row: &TileRow<ALPHA>,
    n: usize,
    dst: *mut f32,
    (tile_stride, element_stride): (usize, usize),
) {
    // Padding pixels read a vector of zeros: the loads need no branches.
    let zeros = [0.0f32; 16];
    // `Bᵀ` of the last six pixel columns, by column index modulo 6.
    let mut ring = [[V::splat(0.0); ALPHA]; ALPHA];
    // Our tiles step by 2 or 4 columns; any other step recomputes all six columns (ring slots
    // 0..6) for every tile.
    let step = row.step;
    let reuse = matches!(step, 2 | 4);
    for t in 0..row.tiles {
        let tile = RowTile {
            src,
            zeros: zeros.as_ptr(),
            rows: &row.rows,
            columns: row.columns(t),
            first_new: if t > 0 && reuse { ALPHA - step } else { 0 },
            n,
            // SAFETY: tile `t`'s elements (caller's contract).
            dst: unsafe { dst.add(t * tile_stride) },
            element_stride,
        };
        // Where the tile's first column sits in the ring: with steps of 2 or 4, one of three
        // places, each compiled with fixed ring indices.
        // SAFETY (each): caller's contract, for tile `t`.
        unsafe {
            match if reuse { (t * step) % ALPHA } else { 0 } {
                2 => tile.transform::<V, FULL, 2>(&mut ring),
                4 => tile.transform::<V, FULL, 4>(&mut ring),
                _ => tile.transform::<V, FULL, 0>(&mut ring),
            }
        }
    }
}

/// One tile of [`input_row_vector`]: where its pixels and elements are.
struct RowTile<'a> {
    src: *const f32,
    zeros: *const f32,
    rows: &'a [Option<usize>; ALPHA],
    columns: [Option<usize>; ALPHA],
    /// Its columns from here on are not in the ring yet.
    first_new: usize,
    n: usize,
    dst: *mut f32,
    element_stride: usize,
}

impl RowTile<'_> {
    /// Adds the tile's new columns to `ring` (its column `j` at `(BASE + j) % 6`) and stores its
    /// 36 elements.
    ///
    /// # Safety
    /// As [`input_row_vector`] for this tile.
    #[inline(always)]
    unsafe fn transform<V: Vector, const FULL: bool, const BASE: usize>(
        &self,
        ring: &mut [[V; ALPHA]; ALPHA],
    ) {
        for j in 0..ALPHA {
            if j < self.first_new {
                continue;
            }
            let column: [V; ALPHA] = core::array::from_fn(|i| {
                let p = match (self.rows[i], self.columns[j]) {
                    // `wrapping_add`: in bounds whenever both are present (checked).
                    (Some(r), Some(x)) => self.src.wrapping_add(r + x),
                    _ => self.zeros,
                };
                // SAFETY: a present pixel's `n` channels, or the zeros (caller's contract).
                unsafe { load_n::<V, FULL>(p, self.n) }
            });
            ring[(BASE + j) % ALPHA] = b_transpose(column);
        }
        for i in 0..ALPHA {
            let transformed = b_transpose(core::array::from_fn(|j| ring[(BASE + j) % ALPHA][i]));
            for (j, v) in transformed.into_iter().enumerate() {
                // SAFETY: element `e < 36` of this tile (caller's contract).
                unsafe {
                    let at = self.dst.add((i * ALPHA + j) * self.element_stride);
                    store_n::<V, FULL>(v, at, self.n)
                };
            }
        }
    }
}

/// [`input_body`] for many channels: tile by tile, all channels of a tile at once (its 6x6
/// pixels stay in L1).
///
/// # Safety
/// As [`input_body`].
#[inline(always)]
unsafe fn input_tile_by_tile<V: Vector>(
    src: *const f32,
    row: &TileRow<ALPHA>,
    channels: usize,
    dst: *mut f32,
    (tile_stride, element_stride): (usize, usize),
) {
    for t in 0..row.tiles {
        let pixels = TilePixels {
            rows: row.rows,
            cols: row.columns(t),
        };
        // SAFETY: tile `t`'s pixels and elements (checked by `transform_input`).
        unsafe {
            input_tile::<V>(
                src,
                &pixels,
                channels,
                dst.add(t * tile_stride),
                element_stride,
            )
        };
    }
}

/// The input transform of one tile, every channel.
///
/// # Safety
/// As [`input_tile_by_tile`], for this tile's pixels and its elements at `dst`.
#[inline(always)]
unsafe fn input_tile<V: Vector>(
    src: *const f32,
    pixels: &TilePixels<ALPHA>,
    channels: usize,
    dst: *mut f32,
    element_stride: usize,
) {
    // Padding pixels read a vector of zeros: the loads need no branches.
    let zeros = [0.0f32; 16];
    let offsets: [[Option<usize>; ALPHA]; ALPHA] =
        core::array::from_fn(|i| core::array::from_fn(|j| pixels.at(i, j)));
    let pointers = |c: usize| -> [[*const f32; ALPHA]; ALPHA] {
        offsets.map(|row| {
            // `wrapping_add`: only formed here; `transform_input` checked what is read.
            row.map(|o| o.map_or(zeros.as_ptr(), |o| src.wrapping_add(o + c)))
        })
    };
    let mut c = 0;
    while c + V::LANES <= channels {
        // SAFETY: pixel pointers read channels `c .. c + LANES` (checked) or the zeros; the
        // destination holds element `e < 36` of those channels (checked).
        unsafe { input_vector::<V, true>(&pointers(c), V::LANES, dst.add(c), element_stride) };
        c += V::LANES;
    }
    if c < channels {
        // SAFETY: as above for the last `channels - c < LANES` channels.
        unsafe { input_vector::<V, false>(&pointers(c), channels - c, dst.add(c), element_stride) };
    }
}

/// [`input_body`] for one vector of `n` channels: `Bᵀ d B` of the 6x6 pixels at `pixels`, element
/// `e` stored at `dst + e*element_stride`.
///
/// # Safety
/// `n` floats readable at every pointer of `pixels`, writable at `dst + e*element_stride`.
#[inline(always)]
unsafe fn input_vector<V: Vector, const FULL: bool>(
    pixels: &[[*const f32; ALPHA]; ALPHA],
    n: usize,
    dst: *mut f32,
    element_stride: usize,
) {
    // SAFETY: caller's contract.
    let load = |i: usize, j: usize| unsafe { load_n::<V, FULL>(pixels[i][j], n) };
    // Bᵀ d down every column (`cols[j][i]` = row i of column j), then Bᵀ along every row.
    // Built with `from_fn`, never zero-filled: the arrays stay in registers or one spill.
    let cols: [[V; ALPHA]; ALPHA] =
        core::array::from_fn(|j| b_transpose(core::array::from_fn(|i| load(i, j))));
    for i in 0..ALPHA {
        let row = b_transpose(core::array::from_fn(|j| cols[j][i]));
        for (j, v) in row.into_iter().enumerate() {
            // SAFETY: element `e < 36`: caller's contract.
            unsafe { store_n::<V, FULL>(v, dst.add((i * ALPHA + j) * element_stride), n) };
        }
    }
}

/// The output transform of a row of `M x M` tiles, every channel, with bias and clamp. See
/// [`transform_output`].
///
/// # Safety
/// As checked by [`transform_output`] (`m` at the first tile); `V`'s ISA available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn output_body<V: Vector, const M: usize>(
    m: *const f32,
    (tile_stride, element_stride): (usize, usize),
    channels: usize,
    bias: *const f32,
    clamp: Clamp,
    dst: *mut f32,
    row: &TileRow<MAX_TILE>,
) {
    for t in 0..row.tiles {
        let pixels = TilePixels {
            rows: row.rows,
            cols: row.columns(t),
        };
        // SAFETY: tile `t`'s elements and its pixels below `M` (checked by `transform_output`).
        unsafe {
            output_tile::<V, M>(
                m.add(t * tile_stride),
                element_stride,
                channels,
                bias,
                clamp,
                dst,
                &pixels,
            )
        };
    }
}

/// The output transform of one tile, every channel.
///
/// # Safety
/// As [`output_body`], for this tile's elements at `m` and its pixels below `M`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile<V: Vector, const M: usize>(
    m: *const f32,
    element_stride: usize,
    channels: usize,
    bias: *const f32,
    clamp: Clamp,
    dst: *mut f32,
    pixels: &TilePixels<MAX_TILE>,
) {
    let (lo, hi) = (V::splat(clamp.min), V::splat(clamp.max));
    // Pixels outside the image are stored to a scratch vector: the stores need no branches.
    let mut sink = [0.0f32; 16];
    let sink = sink.as_mut_ptr();
    let offsets: [[Option<usize>; M]; M] =
        core::array::from_fn(|i| core::array::from_fn(|j| pixels.at(i, j)));
    let targets = |c: usize| -> [[*mut f32; M]; M] {
        // `wrapping_add`: only formed here; `transform_output` checked what is written.
        offsets.map(|row| row.map(|o| o.map_or(sink, |o| dst.wrapping_add(o + c))))
    };
    let mut c = 0;
    while c + V::LANES <= channels {
        // SAFETY: elements, bias and targets of channels `c .. c + LANES` are inside the
        // slices (checked) or the sink.
        unsafe {
            output_vector::<V, M, true>(
                m.add(c),
                element_stride,
                V::LANES,
                bias.add(c),
                (lo, hi),
                &targets(c),
            )
        };
        c += V::LANES;
    }
    if c < channels {
        // SAFETY: as above for the last `channels - c < LANES` channels.
        unsafe {
            output_vector::<V, M, false>(
                m.add(c),
                element_stride,
                channels - c,
                bias.add(c),
                (lo, hi),
                &targets(c),
            )
        };
    }
}

/// [`output_body`] for one vector of `n` channels: `clamp(bias + Aᵀ M A)` of the 36 elements at
/// `m + e*element_stride`, output `(y, x)` stored at `pixels[y][x]`.
///
/// # Safety
/// `n` floats readable at `bias` and at every element, writable at every pixel pointer.
#[inline(always)]
unsafe fn output_vector<V: Vector, const M: usize, const FULL: bool>(
    m: *const f32,
    element_stride: usize,
    n: usize,
    bias: *const f32,
    (lo, hi): (V, V),
    pixels: &[[*mut f32; M]; M],
) {
    // SAFETY: the bias's `n` floats (caller's contract).
    let b = unsafe { load_n::<V, FULL>(bias, n) };
    // Aᵀ m down every column (`cols[j][i]`, 6x6 -> Mx6), then Aᵀ along every row (MxM).
    let cols: [[V; M]; ALPHA] = core::array::from_fn(|j| {
        // SAFETY: element `6i + j < 36`'s `n` floats (caller's contract).
        a_transpose::<V, M>(core::array::from_fn(|i| unsafe {
            load_n::<V, FULL>(m.add((i * ALPHA + j) * element_stride), n)
        }))
    });
    for i in 0..M {
        let row = a_transpose::<V, M>(core::array::from_fn(|j| cols[j][i]));
        for (j, v) in row.into_iter().enumerate() {
            // SAFETY: pixel `(i, j)`'s `n` floats, or the sink (caller's contract).
            unsafe { store_n::<V, FULL>(b.add(v).clamp(lo, hi), pixels[i][j], n) };
        }
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
            row: &$crate::winograd::TileRow<{ $crate::winograd::ALPHA }>,
            channels: usize,
            dst: *mut f32,
            strides: (usize, usize),
        ) {
            // SAFETY: forwarded contract.
            unsafe { $crate::winograd::input_body::<$v>(src, row, channels, dst, strides) }
        }

        /// [`crate::winograd::transform_output`] for this module's ISA, `M x M` output tiles.
        ///
        /// # Safety
        /// The checks of `transform_output` hold; the CPU supports this module's ISA.
        #[target_feature(enable = $feature)]
        pub(crate) unsafe fn output<const M: usize>(
            m: *const f32,
            strides: (usize, usize),
            channels: usize,
            bias: *const f32,
            clamp: $crate::Clamp,
            dst: *mut f32,
            row: &$crate::winograd::TileRow<{ $crate::winograd::MAX_TILE }>,
        ) {
            // SAFETY: forwarded contract.
            unsafe {
                $crate::winograd::output_body::<$v, M>(m, strides, channels, bias, clamp, dst, row)
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

/// Transforms a row of 6x6 input tiles: for every tile `t < row.tiles` and channel
/// `q < channels`, writes element `e` of `Bᵀ d B` to `dst[at.offset + t*at.tile_stride +
/// e*at.element_stride + q]`, `d` being the tile's pixels as [`TileRow`] places them in `src`
/// (absent pixels are padding: zeros).
///
/// Checks every address first; `isa` proves the CPU runs the chosen ISA's code.
///
/// ```
/// use incept_kernels::winograd::{transform_input, TileRow, Transformed};
/// use incept_kernels::{IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // One channel, a 1x1 image holding 1, seen as pixel (0, 0) of one tile: Bᵀ's first column is
/// // (4, 0, 0, 0, 0, 0), so only element (0, 0) is set, to 4 * 4.
/// let src = [1.0f32];
/// let rows = core::array::from_fn(|i| (i == 0).then_some(0));
/// let row = TileRow { rows, first_column: 0, step: 4, width: 1, pixel_stride: 1, tiles: 1 };
/// let at = Transformed { offset: 0, tile_stride: 36, element_stride: 1 };
/// let mut v = [f32::NAN; 36];
/// transform_input(isa, &src, &row, 1, &mut v, at).unwrap();
/// assert_eq!(v[0], 16.0);
/// assert!(v[1..].iter().all(|&x| x == 0.0));
/// ```
pub fn transform_input(
    isa: IsaToken,
    src: &[f32],
    row: &TileRow<ALPHA>,
    channels: usize,
    dst: &mut [f32],
    at: Transformed,
) -> Result<(), TileError> {
    if !row.fits(ALPHA, channels, src.len()) {
        return Err(TileError::Input);
    }
    if !at.fits(row.tiles, channels, dst.len()) {
        return Err(TileError::Output);
    }
    if channels == 0 || row.tiles == 0 {
        return Ok(());
    }
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr().wrapping_add(at.offset));
    let strides = (at.tile_stride, at.element_stride);
    // SAFETY: every read (a present pixel's `channels` floats) and write (every tile's 36
    // elements of `channels` floats) is inside the slices (checked above); the token proves
    // the ISA.
    unsafe {
        match isa.isa() {
            KernelIsa::Scalar => input_body::<f32>(s, row, channels, d, strides),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx2 => crate::x86_avx2::winograd::input(s, row, channels, d, strides),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx512 => crate::x86_avx512::winograd::input(s, row, channels, d, strides),
            #[cfg(target_arch = "aarch64")]
            KernelIsa::Neon => crate::aarch64_neon::winograd::input(s, row, channels, d, strides),
            #[allow(unreachable_patterns)]
            _ => return Err(TileError::Isa),
        }
    }
    Ok(())
}

/// Transforms a row of tiles back: for every tile `t < row.tiles` and channel `q < channels`,
/// output pixel `(y, x)` of the `m x m` tile (`m = variant.tile()`) gets
/// `clamp(bias[q] + (Aᵀ M A)[y][x])`, stored where [`TileRow`] places it in `dst` (absent pixels
/// are skipped; pixel rows and columns from `m` on are ignored). Element `e` of tile `t`,
/// channel `q` is read from `m[at.offset + t*at.tile_stride + e*at.element_stride + q]`.
///
/// ```
/// use incept_kernels::winograd::{transform_output, TileRow, Transformed, Variant};
/// use incept_kernels::{Clamp, IsaToken, KernelIsa};
/// let isa = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // Only element (0, 0) set: it reaches output (0, 0) alone.
/// let mut m = [0.0f32; 36];
/// m[0] = 2.0;
/// let mut out = [0.0f32; 16];
/// let rows = [0, 4, 8, 12].map(Some);
/// let row = TileRow { rows, first_column: 0, step: 4, width: 4, pixel_stride: 1, tiles: 1 };
/// let at = Transformed { offset: 0, tile_stride: 36, element_stride: 1 };
/// let tile = Variant::F4x4_3x3;
/// transform_output(isa, tile, &m, at, 1, &[0.5], Clamp::NONE, &mut out, &row).unwrap();
/// assert_eq!(out[0], 2.5);
/// assert_eq!(out[1], 0.5);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn transform_output(
    isa: IsaToken,
    variant: Variant,
    m: &[f32],
    at: Transformed,
    channels: usize,
    bias: &[f32],
    clamp: Clamp,
    dst: &mut [f32],
    row: &TileRow<MAX_TILE>,
) -> Result<(), TileError> {
    if channels == 0 || row.tiles == 0 {
        return Ok(());
    }
    if bias.len() < channels || !at.fits(row.tiles, channels, m.len()) {
        return Err(TileError::Input);
    }
    if !row.fits(variant.tile(), channels, dst.len()) {
        return Err(TileError::Output);
    }
    let (mp, d) = (m.as_ptr().wrapping_add(at.offset), dst.as_mut_ptr());
    let strides = (at.tile_stride, at.element_stride);
    let b = bias.as_ptr();
    // SAFETY: every read of `m` and `bias` and every write of `dst` (pixel rows and columns
    // below the tile side) is inside the slices (checked above); the token proves the ISA.
    unsafe {
        match variant {
            Variant::F4x4_3x3 => output_for::<4>(isa, mp, strides, channels, b, clamp, d, row),
            Variant::F2x2_5x5 => output_for::<2>(isa, mp, strides, channels, b, clamp, d, row),
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
    strides: (usize, usize),
    channels: usize,
    b: *const f32,
    clamp: Clamp,
    d: *mut f32,
    row: &TileRow<MAX_TILE>,
) -> Result<(), TileError> {
    // SAFETY: forwarded contract; the token proves the ISA.
    unsafe {
        match isa.isa() {
            KernelIsa::Scalar => output_body::<f32, M>(mp, strides, channels, b, clamp, d, row),
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx2 => {
                crate::x86_avx2::winograd::output::<M>(mp, strides, channels, b, clamp, d, row)
            }
            #[cfg(target_arch = "x86_64")]
            KernelIsa::Avx512 => {
                crate::x86_avx512::winograd::output::<M>(mp, strides, channels, b, clamp, d, row)
            }
            #[cfg(target_arch = "aarch64")]
            KernelIsa::Neon => {
                crate::aarch64_neon::winograd::output::<M>(mp, strides, channels, b, clamp, d, row)
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
