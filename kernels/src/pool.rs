//! The max-pool kernel contract: one *line* of output pixels, each the maximum over a
//! rectangle of input pixels, vectorised over channels.
//!
//! ```text
//!   out[i][ch] = max over r < window_rows, q < window_cols of
//!                a[i*a_pixel_stride + r*a_row_stride + q*a_col_stride + ch]
//! ```
//! The caller passes only the valid part of each window (padding never wins), so every line
//! shares one rectangle. NaN propagates: if any element of a window is NaN the output is a NaN
//! (its payload is not specified).
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
//!     pixels: 2,
//!     channels: 1,
//!     a_offset: 0,
//!     a_pixel_stride: 2, // the next window starts 2 pixels to the right
//!     window_rows: 2,
//!     window_cols: 2,
//!     a_row_stride: 4, // one image row
//!     a_col_stride: 1, // one pixel
//!     c_offset: 0,
//!     c_pixel_stride: 1,
//! };
//! let mut c = [0.0; 2];
//! run_pool_line(kernel, &line, &a, &mut c, token)?;
//! assert_eq!(c, [5.0, -1.0]);
//! # Ok::<(), incept_kernels::TileError>(())
//! ```

use crate::{IsaToken, KernelIsa, TileError};

/// Arguments of one max-pool line, as raw pointers: the contract of [`PoolKernel`].
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct PoolLineArgs {
    /// Output pixels in the line (at least 1).
    pub pixels: usize,
    /// Channels per pixel (at least 1).
    pub channels: usize,
    /// First element (top-left valid tap, channel 0) of output pixel 0's window.
    pub a: *const f32,
    /// Elements between the windows of consecutive output pixels.
    pub a_pixel_stride: usize,
    /// Rows of each window (at least 1).
    pub window_rows: usize,
    /// Columns of each window (at least 1).
    pub window_cols: usize,
    /// Elements between window rows (an input row).
    pub a_row_stride: usize,
    /// Elements between window columns (an input pixel).
    pub a_col_stride: usize,
    /// Output pixel 0, channel 0.
    pub c: *mut f32,
    /// Elements between consecutive output pixels.
    pub c_pixel_stride: usize,
}

/// A max-pool line kernel.
///
/// # Safety
/// Every element named by the formula in the module docs must be readable, every
/// `c + i*c_pixel_stride .. + channels` writable and unaliased, all counts at least 1, and the
/// CPU must support the kernel's ISA.
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
#[derive(Clone, Copy, Debug)]
pub struct PoolKernelInfo {
    /// Name, e.g. `maxpool__avx512f`.
    pub name: &'static str,
    /// ISA the CPU must support.
    pub isa: KernelIsa,
    /// The entry point.
    pub run: PoolKernel,
}

/// A max-pool line in element offsets into the slices given to [`run_pool_line`] (the module
/// docs have an example).
#[derive(Clone, Copy, Debug)]
pub struct PoolLine {
    /// Output pixels.
    pub pixels: usize,
    /// Channels.
    pub channels: usize,
    /// Index in `a` of output pixel 0's window origin.
    pub a_offset: usize,
    /// Elements between consecutive windows.
    pub a_pixel_stride: usize,
    /// Window rows.
    pub window_rows: usize,
    /// Window columns.
    pub window_cols: usize,
    /// Elements between window rows.
    pub a_row_stride: usize,
    /// Elements between window columns.
    pub a_col_stride: usize,
    /// Index in `c` of output pixel 0.
    pub c_offset: usize,
    /// Elements between consecutive output pixels.
    pub c_pixel_stride: usize,
}

/// Runs one max-pool line after checking every address it touches against `a` and `c`.
///
/// # Errors
///
/// [`TileError::Isa`] for a token of another ISA, [`TileError::TileSize`] for a zero count,
/// [`TileError::Input`] / [`TileError::Output`] for a line reaching past `a` / `c`. Nothing is
/// written then.
///
/// # Examples
///
/// ```
/// use incept_kernels::pool::{pool_kernel, run_pool_line, PoolLine};
/// use incept_kernels::{IsaToken, KernelIsa};
///
/// let kernel = pool_kernel(KernelIsa::Scalar).unwrap();
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// // A 2x4 image with 1 channel; 2x2 windows at stride 2 give 2 outputs.
/// let a = [
///     1.0, 5.0, -1.0, -2.0,
///     3.0, 2.0, -3.0, -4.0,
/// ];
/// let line = PoolLine {
///     pixels: 2,
///     channels: 1,
///     a_offset: 0,
///     a_pixel_stride: 2, // the next window starts 2 pixels to the right
///     window_rows: 2,
///     window_cols: 2,
///     a_row_stride: 4, // one image row
///     a_col_stride: 1, // one pixel
///     c_offset: 0,
///     c_pixel_stride: 1,
/// };
/// let mut c = [0.0; 2];
/// run_pool_line(kernel, &line, &a, &mut c, token)?;
/// assert_eq!(c, [5.0, -1.0]);
///
/// // One more output pixel would read past the end of `a`.
/// let longer = PoolLine { pixels: 3, c_pixel_stride: 0, ..line };
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
    if line.pixels == 0 || line.channels == 0 || line.window_rows == 0 || line.window_cols == 0 {
        return Err(TileError::TileSize);
    }
    let span = |count: usize, stride: usize| (count - 1).checked_mul(stride);
    let a_end = [
        span(line.pixels, line.a_pixel_stride),
        span(line.window_rows, line.a_row_stride),
        span(line.window_cols, line.a_col_stride),
        Some(line.channels),
        Some(line.a_offset),
    ]
    .into_iter()
    .try_fold(0usize, |acc, x| acc.checked_add(x?));
    if !matches!(a_end, Some(end) if end <= a.len()) {
        return Err(TileError::Input);
    }
    let c_end = span(line.pixels, line.c_pixel_stride)
        .and_then(|x| x.checked_add(line.c_offset))
        .and_then(|x| x.checked_add(line.channels));
    if !matches!(c_end, Some(end) if end <= c.len()) {
        return Err(TileError::Output);
    }
    let args = PoolLineArgs {
        pixels: line.pixels,
        channels: line.channels,
        a: a[line.a_offset..].as_ptr(),
        a_pixel_stride: line.a_pixel_stride,
        window_rows: line.window_rows,
        window_cols: line.window_cols,
        a_row_stride: line.a_row_stride,
        a_col_stride: line.a_col_stride,
        c: c[line.c_offset..].as_mut_ptr(),
        c_pixel_stride: line.c_pixel_stride,
    };
    // SAFETY: the checks above prove that every element the contract reads lies in `a` and every
    // element it writes lies in `c` (borrowed mutably, so unaliased); counts are at least 1; the
    // token proves the CPU supports the kernel's ISA.
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
