//! The portable path: a plain-Rust microkernel for any CPU, and the reference oracle.

pub mod pool;
pub mod reference;

use crate::{KernelInfo, KernelIsa, TileArgs};

/// Output pixels per tile of the portable kernel.
pub const MR: usize = 4;
/// Output channels per packed block of the portable kernel.
pub const NR: usize = 8;

/// Portable 4 pixels x 8 channels kernel. The compiler may auto-vectorise the `NR` loop. It
/// multiplies and adds separately (no fused multiply-add).
///
/// # Examples
///
/// ```
/// use incept_kernels::{conv_kernel, scalar, KernelIsa};
///
/// assert_eq!(conv_kernel(KernelIsa::Scalar).unwrap().name, scalar::CONV_4X8.name);
/// assert_eq!((scalar::CONV_4X8.mr, scalar::CONV_4X8.nr), (scalar::MR, scalar::NR));
/// ```
pub const CONV_4X8: KernelInfo = KernelInfo {
    name: "conv_4x8__scalar",
    isa: KernelIsa::Scalar,
    mr: MR,
    nr: NR,
    max_skip: usize::MAX,
    run: conv_4x8,
};

/// # Safety
/// The [`crate::TileKernel`] contract with `MR = 4`, `NR = 8`.
unsafe fn conv_4x8(args: &TileArgs) {
    let TileArgs {
        mr,
        nr,
        k,
        a,
        a_pixel_stride,
        taps,
        tap_count,
        w,
        c,
        c_pixel_stride,
        clamp,
    } = *args;
    let mut acc = [[0.0f32; NR]; MR];
    for row in acc.iter_mut().take(mr) {
        for (j, v) in row.iter_mut().enumerate() {
            // SAFETY: the contract makes `w .. w + NR` readable.
            *v = unsafe { *w.add(j) };
        }
    }
    for t in 0..tap_count {
        // SAFETY: `taps` holds `tap_count` taps.
        let tap = unsafe { *taps.add(t) };
        // SAFETY: the contract makes `w + NR + weight_offset .. + k*NR` readable.
        let w_tap = unsafe { w.add(NR + tap.weight_offset) };
        for (i, row) in acc.iter_mut().enumerate().take(mr) {
            if !tap.reads(i, mr) {
                continue;
            }
            // Pixel i reads `a + i*a_pixel_stride + input_offset .. + k` (contract); wrapping,
            // because the pixel's base need not lie in the input, only its reads.
            let a_row = a
                .wrapping_add(i * a_pixel_stride)
                .wrapping_offset(tap.input_offset);
            for q in 0..k {
                // SAFETY: q < k, inside the ranges above.
                let x = unsafe { *a_row.add(q) };
                for (j, v) in row.iter_mut().enumerate() {
                    // SAFETY: q < k and j < NR: inside this tap's k x NR weights.
                    *v += x * unsafe { *w_tap.add(q * NR + j) };
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, &v) in row.iter().enumerate().take(nr) {
            // SAFETY: the contract makes `c + i*c_pixel_stride .. + nr` writable for i < mr.
            unsafe { *c.add(i * c_pixel_stride + j) = clamp.apply(v) };
        }
    }
}
