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
        lines,
        pixels,
        channels,
        a,
        a_line_stride,
        window_rows,
        a_row_stride,
        a_col_stride,
        col_step,
        pad_left,
        c,
        c_pixel_stride,
        c_line_stride,
        ..
    } = *args;
    for l in 0..lines {
        for i in 0..pixels {
            let (lo, hi) = args.valid_cols(i);
            // Column of window column q: i*col_step + q - pad_left, never negative for q >= lo.
            let base = l * a_line_stride + (i * col_step + lo - pad_left) * a_col_stride;
            for ch in 0..channels {
                let mut best = f32::NEG_INFINITY;
                for r in 0..window_rows {
                    for q in 0..hi - lo {
                        // SAFETY: a valid window element, readable by the contract.
                        let v = unsafe { *a.add(base + r * a_row_stride + q * a_col_stride + ch) };
                        if !best.is_nan() && (v.is_nan() || v > best) {
                            best = v;
                        }
                    }
                }
                // SAFETY: channel ch < channels of line l's output pixel i: writable.
                unsafe { *c.add(l * c_line_stride + i * c_pixel_stride + ch) = best };
            }
        }
    }
}
