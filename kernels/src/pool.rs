//! The max-pool kernel contract: a stack of *lines* of output pixels, each pixel the maximum
//! over a rectangle of input pixels clipped to the line's valid columns, vectorised over
//! channels.
//!
//! ```text
//!   column(i, q)     = i*col_step + q - pad_left           (window column q of pixel i)
//!   out[l][i][ch]    = max over r < window_rows, q < window_cols with 0 <= column(i, q) < in_cols
//!                      of a[l*a_line_stride + r*a_row_stride + column(i, q)*a_col_stride + ch]
//! ```
//! Columns outside `0..in_cols` are padding: they are skipped, never read (padding never wins).
//! Every window keeps at least one column. Rows are not clipped: the caller passes the valid
//! window rows of each stack of lines (a padded image's top and bottom rows are stacks of their
//! own). NaN propagates: if any element of a window is NaN the output is a NaN (its payload is
//! not specified).
//!
//! One call runs a whole stack so that a kernel can keep a block of channels of the window
//! rows in L1 from one line to the next (and share window rows between lines).
//!
//! # Examples
//!
//! ```
//! use incept_kernels::pool::{pool_kernel, run_pool_line, PoolLine};
//! use incept_kernels::{IsaToken, KernelIsa};
//!
//! let kernel = pool_kernel(KernelIsa::Scalar).unwrap();
//! let token = IsaToken::new(KernelIsa::Scalar).unwrap();
//! // A 2x4 image with 1 channel; 2x2 windows at stride 2 give 2 outputs.
//! let a = [
//!     1.0, 5.0, -1.0, -2.0,
//!     3.0, 2.0, -3.0, -4.0,
//! ];
//! let line = PoolLine {
//!     col_step: 2, // the next window starts 2 columns to the right
//!     window_rows: 2,
//!     window_cols: 2,
//!     a_row_stride: 4, // one image row
//!     ..PoolLine::dense(2, 1, 4)
//! };
//! let mut c = [0.0; 2];
//! run_pool_line(kernel, &line, &a, &mut c, token)?;
//! assert_eq!(c, [5.0, -1.0]);
//! # Ok::<(), incept_kernels::TileError>(())
//! ```

use crate::{IsaToken, KernelIsa, TileError};

/// Arguments of a stack of max-pool lines, as raw pointers: the contract of [`PoolKernel`].
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct PoolLineArgs {
    /// Lines in the stack (at least 1).
    pub lines: usize,
    /// Output pixels per line (at least 1).
    pub pixels: usize,
    /// Channels per pixel (at least 1).
    pub channels: usize,
    /// Column 0 of line 0's first window row, channel 0.
    pub a: *const f32,
    /// Elements between the first window rows of consecutive lines.
    pub a_line_stride: usize,
    /// Rows of each window (at least 1).
    pub window_rows: usize,
    /// Columns of each window (at least 1, more than `pad_left`).
    pub window_cols: usize,
    /// Elements between window rows (an input row).
    pub a_row_stride: usize,
    /// Elements between columns (an input pixel).
    pub a_col_stride: usize,
    /// Columns between the windows of consecutive output pixels (the stride).
    pub col_step: usize,
    /// Padding columns before column 0: pixel 0's window starts at column `-pad_left`.
    pub pad_left: usize,
    /// Columns `0..in_cols` exist (at least 1); window columns past them are skipped.
    pub in_cols: usize,
    /// Line 0's output pixel 0, channel 0.
    pub c: *mut f32,
    /// Elements between consecutive output pixels.
    pub c_pixel_stride: usize,
    /// Elements between the first output pixels of consecutive lines.
    pub c_line_stride: usize,
}

impl PoolLineArgs {
    /// Line `l` of the stack as a stack of one line.
    ///
    /// # Safety
    /// `l < lines`; the pointers then stay inside the stack's allocations.
    #[inline]
    pub unsafe fn line(&self, l: usize) -> PoolLineArgs {
        // SAFETY: line l's first input and output elements lie inside the stack's allocations
        // (the caller's `l < lines` and the kernel contract).
        let (a, c) = unsafe {
            (
                self.a.add(l * self.a_line_stride),
                self.c.add(l * self.c_line_stride),
            )
        };
        PoolLineArgs {
            lines: 1,
            a,
            c,
            ..*self
        }
    }

    /// The window columns `lo..hi` of output pixel `i` that lie inside `0..in_cols` (empty,
    /// `lo >= hi`, for a window wholly in the padding, which the contract excludes).
    #[inline]
    pub fn valid_cols(&self, i: usize) -> (usize, usize) {
        let start = i.saturating_mul(self.col_step);
        let lo = self.pad_left.saturating_sub(start);
        let hi = (self.in_cols.saturating_add(self.pad_left))
            .saturating_sub(start)
            .min(self.window_cols);
        (lo, hi)
    }
}

/// A max-pool kernel.
///
/// # Safety
/// Every element named by the formula in the module docs must be readable, every output
/// `c + l*c_line_stride + i*c_pixel_stride .. + channels` writable and not aliasing the input,
/// all counts at least 1, every window keeping at least one column (`pad_left < window_cols`,
/// `(pixels-1)*col_step < in_cols + pad_left`), and the CPU must support the kernel's ISA.
pub type PoolKernel = unsafe fn(&PoolLineArgs);

/// A max-pool kernel and its ISA.
///
/// # Examples
///
/// ```
/// use incept_kernels::pool::pool_kernel;
/// use incept_kernels::KernelIsa;
///
/// let scalar = pool_kernel(KernelIsa::Scalar).unwrap();
/// assert_eq!((scalar.name, scalar.isa), ("maxpool__scalar", KernelIsa::Scalar));
/// ```
#[derive(Debug)]
pub struct PoolKernelInfo {
    /// Name, e.g. `maxpool__avx512f`.
    pub name: &'static str,
    /// ISA the CPU must support.
    pub isa: KernelIsa,
    /// The entry point (private: only this crate makes these descriptors, see
    /// [`crate::KernelInfo`]).
    pub(crate) run: PoolKernel,
}

/// A stack of max-pool lines in element offsets into the slices given to [`run_pool_line`]
/// (the module docs have the formula and an example).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolLine {
    /// Lines in the stack.
    pub lines: usize,
    /// Output pixels per line.
    pub pixels: usize,
    /// Channels.
    pub channels: usize,
    /// Index in `a` of column 0 of line 0's first window row.
    pub a_offset: usize,
    /// Elements between the first window rows of consecutive lines.
    pub a_line_stride: usize,
    /// Window rows.
    pub window_rows: usize,
    /// Window columns.
    pub window_cols: usize,
    /// Elements between window rows.
    pub a_row_stride: usize,
    /// Elements between columns.
    pub a_col_stride: usize,
    /// Columns between consecutive windows.
    pub col_step: usize,
    /// Padding columns before column 0.
    pub pad_left: usize,
    /// Columns that exist.
    pub in_cols: usize,
    /// Index in `c` of line 0's output pixel 0.
    pub c_offset: usize,
    /// Elements between consecutive output pixels.
    pub c_pixel_stride: usize,
    /// Elements between the first output pixels of consecutive lines.
    pub c_line_stride: usize,
}

impl PoolLine {
    /// One line of `pixels` 1x1 windows over a dense row of `in_cols` pixels of `channels`
    /// channels, into a dense output: a starting point to set the window on.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::pool::PoolLine;
    ///
    /// let line = PoolLine::dense(3, 8, 3);
    /// assert_eq!((line.lines, line.window_rows, line.a_col_stride, line.c_pixel_stride), (1, 1, 8, 8));
    /// ```
    pub const fn dense(pixels: usize, channels: usize, in_cols: usize) -> PoolLine {
        PoolLine {
            lines: 1,
            pixels,
            channels,
            a_offset: 0,
            a_line_stride: 0,
            window_rows: 1,
            window_cols: 1,
            a_row_stride: 0,
            a_col_stride: channels,
            col_step: 1,
            pad_left: 0,
            in_cols,
            c_offset: 0,
            c_pixel_stride: channels,
            c_line_stride: 0,
        }
    }
}

/// Runs a stack of max-pool lines after checking every address it touches against `a` and `c`.
///
/// # Errors
///
/// [`TileError::Isa`] for a token of another ISA, [`TileError::TileSize`] for a zero count or
/// a window left without columns, [`TileError::Input`] / [`TileError::Output`] for a stack
/// reaching past `a` / `c`. Nothing is written then.
///
/// # Examples
///
/// A 3-wide "same" window along a row of 4 pixels: the first and last windows lose their
/// padding column.
///
/// ```
/// use incept_kernels::pool::{pool_kernel, run_pool_line, PoolLine};
/// use incept_kernels::{IsaToken, KernelIsa};
///
/// let kernel = pool_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let a = [4.0, 1.0, -2.0, 3.0];
/// let line = PoolLine { window_cols: 3, pad_left: 1, ..PoolLine::dense(4, 1, 4) };
/// let mut c = [0.0; 4];
/// run_pool_line(kernel, &line, &a, &mut c, token)?;
/// assert_eq!(c, [4.0, 4.0, 3.0, 3.0]);
///
/// // A sixth pixel's window would lie wholly in the padding.
/// let longer = PoolLine { pixels: 6, c_pixel_stride: 0, ..line };
/// assert!(run_pool_line(kernel, &longer, &a, &mut c, token).is_err());
/// # Ok::<(), incept_kernels::TileError>(())
/// ```
pub fn run_pool_line(
    kernel: &PoolKernelInfo,
    line: &PoolLine,
    a: &[f32],
    c: &mut [f32],
    isa: IsaToken,
) -> Result<(), TileError> {
    if isa.isa() != kernel.isa {
        return Err(TileError::Isa);
    }
    let counts = [
        line.lines,
        line.pixels,
        line.channels,
        line.window_rows,
        line.window_cols,
        line.in_cols,
    ];
    if counts.contains(&0) || line.pad_left >= line.window_cols {
        return Err(TileError::TileSize);
    }
    // The last pixel's window must start before the last column.
    let last_start = (line.pixels - 1)
        .checked_mul(line.col_step)
        .filter(|&x| x < line.in_cols.saturating_add(line.pad_left))
        .ok_or(TileError::TileSize)?;
    // The last column any window reaches (saturating: a window may be far wider than the row).
    let last_col = (line.in_cols - 1).min(
        last_start
            .saturating_add(line.window_cols - 1)
            .saturating_sub(line.pad_left),
    );
    let span = |count: usize, stride: usize| (count - 1).checked_mul(stride);
    let a_end = [
        span(line.lines, line.a_line_stride),
        span(line.window_rows, line.a_row_stride),
        last_col.checked_mul(line.a_col_stride),
        Some(line.channels),
        Some(line.a_offset),
    ]
    .into_iter()
    .try_fold(0usize, |acc, x| acc.checked_add(x?));
    if !matches!(a_end, Some(end) if end <= a.len()) {
        return Err(TileError::Input);
    }
    let c_end = [
        span(line.lines, line.c_line_stride),
        span(line.pixels, line.c_pixel_stride),
        Some(line.channels),
        Some(line.c_offset),
    ]
    .into_iter()
    .try_fold(0usize, |acc, x| acc.checked_add(x?));
    if !matches!(c_end, Some(end) if end <= c.len()) {
        return Err(TileError::Output);
    }
    let args = PoolLineArgs {
        lines: line.lines,
        pixels: line.pixels,
        channels: line.channels,
        a: a[line.a_offset..].as_ptr(),
        a_line_stride: line.a_line_stride,
        window_rows: line.window_rows,
        window_cols: line.window_cols,
        a_row_stride: line.a_row_stride,
        a_col_stride: line.a_col_stride,
        col_step: line.col_step,
        pad_left: line.pad_left,
        in_cols: line.in_cols,
        c: c[line.c_offset..].as_mut_ptr(),
        c_pixel_stride: line.c_pixel_stride,
        c_line_stride: line.c_line_stride,
    };
    // SAFETY: the checks above prove that every element the contract reads lies in `a` (the
    // columns it reads are at most `last_col`) and every element it writes lies in `c`
    // (borrowed mutably, so unaliased); counts are at least 1 and every window keeps a column;
    // the token proves the CPU supports the kernel's ISA.
    unsafe { (kernel.run)(&args) };
    Ok(())
}

/// The max-pool kernel for `isa`, if this target compiles one (whether or not this CPU
/// supports it: check with [`IsaToken::new`]).
///
/// # Examples
///
/// ```
/// use incept_kernels::pool::pool_kernel;
/// use incept_kernels::{IsaToken, KernelIsa};
///
/// // The best max-pool kernel this CPU can run.
/// let (kernel, _token) = [KernelIsa::Avx512, KernelIsa::Avx2, KernelIsa::Neon, KernelIsa::Scalar]
///     .into_iter()
///     .find_map(|isa| Some((pool_kernel(isa)?, IsaToken::new(isa)?)))
///     .unwrap();
/// assert!(kernel.name.starts_with("maxpool__"));
/// ```
pub fn pool_kernel(isa: KernelIsa) -> Option<&'static PoolKernelInfo> {
    match isa {
        KernelIsa::Scalar => Some(&crate::scalar::pool::MAXPOOL),
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx2 => Some(&crate::x86_avx2::pool::MAXPOOL),
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx512 => Some(&crate::x86_avx512::pool::MAXPOOL),
        #[cfg(target_arch = "aarch64")]
        KernelIsa::Neon => Some(&crate::aarch64_neon::pool::MAXPOOL),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}
