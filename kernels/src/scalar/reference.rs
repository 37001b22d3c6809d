//! The oracle: plain loops that are obviously right, against which every kernel is tested.
//!
//! Layouts: activations NHWC described by [`Layout`] (a pixel stride and an element offset, so a
//! channel slice of a wider tensor is a valid layout); convolution weights OHWI
//! (`[out][kh][kw][in]`).
//!
//! **Accumulation order** (f32, no fused multiply-add): `acc = bias[o]`, then for `kh` in
//! `0..KH`, for `kw` in `0..KW`, skipping taps that fall on padding, for `i` in `0..C`:
//! `acc = acc + x * w`; finally the [`Clamp`]. With the "exact" test inputs (small integers, every
//! partial sum below 2^24) any order gives the same bits, which is what lets SIMD kernels be
//! compared bit for bit.
//!
//! These functions panic on inconsistent arguments: they are a test oracle, not an API.

pub use crate::Clamp;

/// Where an NHWC tensor lives inside a slice.
///
/// # Examples
///
/// ```
/// use incept_kernels::scalar::reference::Layout;
///
/// // Channels 2..4 of a 1x2x2x4 tensor.
/// let slice = Layout { pixel_stride: 4, offset: 2, ..Layout::dense(1, 2, 2, 2) };
/// assert_eq!(slice.index(0, 1, 1, 1), 2 + 3 * 4 + 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Batch.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Elements between neighbouring pixels (`>= c`).
    pub pixel_stride: usize,
    /// Index of pixel (0, 0, 0), channel 0.
    pub offset: usize,
}

impl Layout {
    /// A dense tensor at offset 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::scalar::reference::Layout;
    ///
    /// let dense = Layout::dense(2, 3, 4, 5);
    /// assert_eq!((dense.pixel_stride, dense.offset), (5, 0));
    /// assert_eq!(dense.index(1, 2, 3, 4), 2 * 3 * 4 * 5 - 1);
    /// ```
    pub fn dense(n: usize, h: usize, w: usize, c: usize) -> Self {
        Layout {
            n,
            h,
            w,
            c,
            pixel_stride: c,
            offset: 0,
        }
    }

    /// Index of element (n, y, x, ch): `offset + ((n*h + y)*w + x) * pixel_stride + ch`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::scalar::reference::Layout;
    ///
    /// let layout = Layout { pixel_stride: 10, offset: 3, ..Layout::dense(1, 2, 2, 4) };
    /// assert_eq!(layout.index(0, 1, 0, 2), 3 + 2 * 10 + 2);
    /// ```
    pub fn index(&self, n: usize, y: usize, x: usize, ch: usize) -> usize {
        self.offset + ((n * self.h + y) * self.w + x) * self.pixel_stride + ch
    }
}

/// Window geometry shared by convolution and pooling.
///
/// # Examples
///
/// ```
/// use incept_kernels::scalar::reference::Window;
///
/// // A 1x7 window (as in Inception-v3), "same" along the row only.
/// let window = Window { kw: 7, pad_left: 3, pad_right: 3, ..Window::square(1, 1, 0) };
/// assert_eq!(window.output_size(17, 17), (17, 17));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride (>= 1).
    pub stride_h: usize,
    /// Horizontal stride (>= 1).
    pub stride_w: usize,
    /// Zero rows added above.
    pub pad_top: usize,
    /// Zero columns added on the left.
    pub pad_left: usize,
    /// Zero rows added below.
    pub pad_bottom: usize,
    /// Zero columns added on the right.
    pub pad_right: usize,
}

impl Window {
    /// A square `k x k` window with stride `s` and `p` padding on every side.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::scalar::reference::Window;
    ///
    /// assert_eq!(Window::square(3, 2, 1).output_size(224, 224), (112, 112));
    /// ```
    pub fn square(k: usize, s: usize, p: usize) -> Self {
        Window {
            kh: k,
            kw: k,
            stride_h: s,
            stride_w: s,
            pad_top: p,
            pad_left: p,
            pad_bottom: p,
            pad_right: p,
        }
    }

    /// Output (height, width) for an `h x w` input: `(h + pads - k) / stride + 1`. Panics (or
    /// wraps) if the window is larger than the padded input.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept_kernels::scalar::reference::Window;
    ///
    /// assert_eq!(Window::square(5, 1, 2).output_size(28, 14), (28, 14));
    /// ```
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        let oh = (h + self.pad_top + self.pad_bottom - self.kh) / self.stride_h + 1;
        let ow = (w + self.pad_left + self.pad_right - self.kw) / self.stride_w + 1;
        (oh, ow)
    }

    /// Input coordinate of output `o`, tap `t` along one axis, or `None` when it is padding.
    fn source(o: usize, t: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
        (o * stride + t).checked_sub(pad).filter(|&i| i < size)
    }
}

/// General NHWC convolution: any window, stride and padding; optional bias; clamp epilogue.
/// `weights` is OHWI with `O = output.c`, `I = input.c`. Writes only the output layout's
/// elements, so other channels of a wider output tensor are left untouched.
///
/// # Panics
///
/// If the output layout's shape is not the window's output for the input, or the weights'
/// length is not `out x kh x kw x in` (and on any index outside the slices).
///
/// # Examples
///
/// ```
/// use incept_kernels::scalar::reference::{conv2d, Clamp, Layout, Window};
///
/// // 3x3 "same" box sum of a 3x3 one-channel image of ones.
/// let input = [1.0; 9];
/// let mut output = [0.0; 9];
/// let layout = Layout::dense(1, 3, 3, 1);
/// conv2d(
///     &input,
///     &layout,
///     &[1.0; 9],
///     None,
///     &Window::square(3, 1, 1),
///     Clamp::NONE,
///     &mut output,
///     &layout,
/// );
/// assert_eq!(output, [4.0, 6.0, 4.0, 6.0, 9.0, 6.0, 4.0, 6.0, 4.0]);
/// ```
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    input: &[f32],
    in_layout: &Layout,
    weights: &[f32],
    bias: Option<&[f32]>,
    window: &Window,
    clamp: Clamp,
    output: &mut [f32],
    out_layout: &Layout,
) {
    let (oh, ow) = window.output_size(in_layout.h, in_layout.w);
    assert_eq!(
        (out_layout.n, out_layout.h, out_layout.w),
        (in_layout.n, oh, ow),
        "output shape"
    );
    let cin = in_layout.c;
    assert_eq!(
        weights.len(),
        out_layout.c * window.kh * window.kw * cin,
        "weights length"
    );
    for n in 0..out_layout.n {
        for y in 0..oh {
            for x in 0..ow {
                for o in 0..out_layout.c {
                    let mut acc = bias.map_or(0.0, |b| b[o]);
                    for ky in 0..window.kh {
                        let Some(iy) =
                            Window::source(y, ky, window.stride_h, window.pad_top, in_layout.h)
                        else {
                            continue;
                        };
                        for kx in 0..window.kw {
                            let Some(ix) = Window::source(
                                x,
                                kx,
                                window.stride_w,
                                window.pad_left,
                                in_layout.w,
                            ) else {
                                continue;
                            };
                            let wbase = ((o * window.kh + ky) * window.kw + kx) * cin;
                            for i in 0..cin {
                                acc += input[in_layout.index(n, iy, ix, i)] * weights[wbase + i];
                            }
                        }
                    }
                    output[out_layout.index(n, y, x, o)] = clamp.apply(acc);
                }
            }
        }
    }
}

/// General NHWC max-pool: any window, stride and padding. Padding never wins: the maximum is
/// over the valid taps only (a window with no valid tap yields `-inf`). NaN propagates: if any
/// valid tap is NaN the result is NaN, as in PyTorch.
///
/// # Panics
///
/// If the output layout's shape is not the window's output for the input (and on any index
/// outside the slices).
///
/// # Examples
///
/// ```
/// use incept_kernels::scalar::reference::{max_pool2d, Layout, Window};
///
/// // A 2x2 image, 2x2 windows padded by 1: a 3x3 output.
/// let input = [1.0, -3.0, -2.0, 4.0];
/// let mut output = [0.0; 9];
/// let (layout, window) = (Layout::dense(1, 2, 2, 1), Window::square(2, 1, 1));
/// max_pool2d(&input, &layout, &window, &mut output, &Layout::dense(1, 3, 3, 1));
/// // Corner windows see one pixel each: padding never wins, even against -3.
/// assert_eq!(output, [1.0, 1.0, -3.0, 1.0, 4.0, 4.0, -2.0, 4.0, 4.0]);
///
/// let with_nan = [1.0, f32::NAN, -2.0, 4.0];
/// max_pool2d(&with_nan, &layout, &window, &mut output, &Layout::dense(1, 3, 3, 1));
/// assert!(output[4].is_nan() && output[6] == -2.0);
/// ```
pub fn max_pool2d(
    input: &[f32],
    in_layout: &Layout,
    window: &Window,
    output: &mut [f32],
    out_layout: &Layout,
) {
    let (oh, ow) = window.output_size(in_layout.h, in_layout.w);
    assert_eq!(
        (out_layout.n, out_layout.h, out_layout.w, out_layout.c),
        (in_layout.n, oh, ow, in_layout.c),
        "output shape"
    );
    for n in 0..out_layout.n {
        for y in 0..oh {
            for x in 0..ow {
                for ch in 0..in_layout.c {
                    let mut best = f32::NEG_INFINITY;
                    for ky in 0..window.kh {
                        let Some(iy) =
                            Window::source(y, ky, window.stride_h, window.pad_top, in_layout.h)
                        else {
                            continue;
                        };
                        for kx in 0..window.kw {
                            let Some(ix) = Window::source(
                                x,
                                kx,
                                window.stride_w,
                                window.pad_left,
                                in_layout.w,
                            ) else {
                                continue;
                            };
                            let v = input[in_layout.index(n, iy, ix, ch)];
                            if !best.is_nan() && (v.is_nan() || v > best) {
                                best = v;
                            }
                        }
                    }
                    output[out_layout.index(n, y, x, ch)] = best;
                }
            }
        }
    }
}
