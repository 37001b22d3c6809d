//! Portable max-pool line kernel.

use crate::pool::{PoolKernelInfo, PoolLineArgs};
use crate::KernelIsa;

/// Portable max-pool: the reference semantics (the first NaN of a window wins).
pub const MAXPOOL: PoolKernelInfo = PoolKernelInfo {
    name: "maxpool__scalar",
    isa: KernelIsa::Scalar,
    run: maxpool,
};

/// # Safety
/// The [`crate::pool::PoolKernel`] contract.
unsafe fn maxpool(args: &PoolLineArgs) {
    let PoolLineArgs {
        pixels,
        channels,
        a,
        a_pixel_stride,
        window_rows,
        window_cols,
        a_row_stride,
        a_col_stride,
        c,
        c_pixel_stride,
    } = *args;
    for i in 0..pixels {
        for ch in 0..channels {
            let mut best = f32::NEG_INFINITY;
            for r in 0..window_rows {
                for q in 0..window_cols {
                    // SAFETY: inside the window the contract makes readable.
                    let v = unsafe {
                        *a.add(i * a_pixel_stride + r * a_row_stride + q * a_col_stride + ch)
                    };
                    if !best.is_nan() && (v.is_nan() || v > best) {
                        best = v;
                    }
                }
            }
            // SAFETY: channel ch < channels of output pixel i: writable by the contract.
            unsafe { *c.add(i * c_pixel_stride + ch) = best };
        }
    }
}
