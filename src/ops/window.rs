//! Sliding-window geometry shared by the direct convolution and max-pool.
//!
//! Padding is never computed: the output is cut into rectangles whose windows all have the
//! same valid `ky x kx` range (the interior, each border row and column, the corners). Each
//! rectangle is then walked as *lines* of pixels that one kernel call handles: along rows
//! when the rectangle is wide, down columns when it is tall and narrow (the left and right
//! border columns), so borders run long lines too.
//!
//! Convolutions whose kernel lets a tap skip the first or last pixels of a tile
//! ([`incept_kernels::Tap::skip_head`]) cut only by rows ([`Window::for_each_row_run`]): each
//! output row is one line, edges included, and the left and right columns' missing taps are
//! skipped inside the tiles. No corner becomes a tile of one pixel.

use crate::error::{invalid, Result};
use crate::tensor::Nhwc;

/// Zero padding on each side of the input, in pixels (ONNX allows them to differ). Padded
/// positions are never multiplied (convolutions skip them) and never win a max-pool.
///
/// # Examples
///
/// ```
/// use incept::Padding;
///
/// assert_eq!(Padding::same(5), Padding::uniform(2));
/// // ONNX `pads = [top, left, bottom, right]` = [0, 1, 1, 0]:
/// let onnx = Padding { top: 0, left: 1, bottom: 1, right: 0 };
/// assert_ne!(onnx, Padding::default());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Padding {
    /// Rows above.
    pub top: usize,
    /// Columns on the left.
    pub left: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the right.
    pub right: usize,
}

impl Padding {
    /// `p` on every side.
    ///
    /// # Examples
    ///
    /// ```
    /// let p = incept::Padding::uniform(1);
    /// assert_eq!((p.top, p.left, p.bottom, p.right), (1, 1, 1, 1));
    /// ```
    pub const fn uniform(p: usize) -> Self {
        Padding {
            top: p,
            left: p,
            bottom: p,
            right: p,
        }
    }

    /// "Same" padding for an odd `kernel` at stride 1: `(kernel - 1) / 2` on every side, so
    /// the output has the input's height and width.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::Padding;
    ///
    /// assert_eq!(Padding::same(3), Padding::uniform(1));
    /// assert_eq!(Padding::same(1), Padding::uniform(0));
    /// ```
    pub const fn same(kernel: usize) -> Self {
        Self::uniform(kernel.saturating_sub(1) / 2)
    }
}

/// A window (rows x columns) with a stride per axis and per-side padding, validated.
/// [`Window::new`] builds a square one (the bottleneck and the module's convolutions),
/// [`Window::new_rect`] any (`Conv2d`, the max-pool).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    /// Window rows and columns.
    pub(crate) kernel: [usize; 2],
    /// Stride down the rows and along the columns.
    pub(crate) stride: [usize; 2],
    pub(crate) padding: Padding,
}

impl Window {
    /// A square window: checks `1 <= kernel <= max_kernel`, `stride >= 1` and every padding
    /// `< kernel`.
    pub(crate) fn new(
        op: &str,
        kernel: usize,
        stride: usize,
        padding: Padding,
        max_kernel: usize,
    ) -> Result<Self> {
        Self::new_rect(op, [kernel; 2], [stride; 2], padding, max_kernel)
    }

    /// A `kernel[0] x kernel[1]` window moving `stride[0]` rows and `stride[1]` columns: checks
    /// each side in `1..=max_kernel`, each stride `>= 1`, and the top and bottom padding below
    /// the window's height, the left and right below its width. Messages name the side of a
    /// square window "kernel" (a rectangle's "kernel height" or "kernel width"), and equal
    /// strides "stride" (else "vertical stride" or "horizontal stride").
    pub(crate) fn new_rect(
        op: &str,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Padding,
        max_kernel: usize,
    ) -> Result<Self> {
        let [side_h, side_w] = if kernel[0] == kernel[1] {
            ["kernel", "kernel"]
        } else {
            ["kernel height", "kernel width"]
        };
        for (name, k) in [(side_h, kernel[0]), (side_w, kernel[1])] {
            if k == 0 || k > max_kernel {
                return Err(invalid(format!(
                    "{op} {name} {k} must be in 1..={max_kernel}"
                )));
            }
        }
        let [stride_h, stride_w] = if stride[0] == stride[1] {
            ["stride", "stride"]
        } else {
            ["vertical stride", "horizontal stride"]
        };
        for (name, s) in [(stride_h, stride[0]), (stride_w, stride[1])] {
            if s == 0 {
                return Err(invalid(format!("{op} {name} is 0; it must be at least 1")));
            }
        }
        let p = padding;
        for (side, pad, name, k) in [
            ("top", p.top, side_h, kernel[0]),
            ("left", p.left, side_w, kernel[1]),
            ("bottom", p.bottom, side_h, kernel[0]),
            ("right", p.right, side_w, kernel[1]),
        ] {
            if pad >= k {
                return Err(invalid(format!(
                    "{op} {side} padding {pad} must be less than the {name} {k}"
                )));
            }
        }
        Ok(Window {
            kernel,
            stride,
            padding,
        })
    }

    /// Output (height, width) for `input`, or an error if the padded input is smaller than
    /// the window.
    pub(crate) fn output_size(&self, op: &str, input: Nhwc) -> Result<(usize, usize)> {
        let ([kh, kw], p) = (self.kernel, self.padding);
        let overflow = || crate::error::overflow(&format!("{op} padded input size"));
        let padded_h = input
            .h
            .checked_add(p.top)
            .and_then(|x| x.checked_add(p.bottom))
            .ok_or_else(overflow)?;
        let padded_w = input
            .w
            .checked_add(p.left)
            .and_then(|x| x.checked_add(p.right))
            .ok_or_else(overflow)?;
        if padded_h < kh || padded_w < kw {
            let window = if kh == kw {
                format!("kernel {kh}")
            } else {
                format!("window {kh}x{kw}")
            };
            return Err(invalid(format!(
                "{op} {window} is larger than the padded input {padded_h}x{padded_w} \
                 ({}x{} plus padding {}+{} rows, {}+{} columns)",
                input.h, input.w, p.top, p.bottom, p.left, p.right
            )));
        }
        Ok((
            (padded_h - kh) / self.stride[0] + 1,
            (padded_w - kw) / self.stride[1] + 1,
        ))
    }

    /// The window along `axis`: its side, stride and leading padding.
    fn along(&self, axis: Axis) -> (usize, usize, usize) {
        match axis {
            Axis::Rows => (self.kernel[0], self.stride[0], self.padding.top),
            Axis::Cols => (self.kernel[1], self.stride[1], self.padding.left),
        }
    }

    /// Valid taps `lo..hi` along `axis` for output coordinate `o` on an axis of `size` inputs.
    pub(crate) fn tap_range(&self, axis: Axis, o: usize, size: usize) -> (usize, usize) {
        let (kernel, stride, pad) = self.along(axis);
        let start = o.saturating_mul(stride); // input coordinate of tap 0, plus `pad`
        (
            pad.saturating_sub(start),
            kernel.min(size.saturating_add(pad).saturating_sub(start)),
        )
    }

    /// Valid taps summed over all outputs of one axis (for counting the work actually done).
    pub(crate) fn valid_taps(&self, axis: Axis, outputs: usize, size: usize) -> u64 {
        let (kernel, stride, pad) = self.along(axis);
        // Outputs whose window is entirely valid form one run in the middle; only the (at most
        // ~kernel / stride) outputs on each side need counting one by one.
        let first_full = pad.div_ceil(stride).min(outputs);
        let last_full = size
            .saturating_add(pad)
            .checked_sub(kernel)
            .map_or(0, |x| x / stride + 1)
            .min(outputs);
        if first_full < last_full {
            let edges = (0..first_full).chain(last_full..outputs);
            let edge_taps: u64 = edges
                .map(|o| self.tap_range(axis, o, size))
                .map(|(lo, hi)| (hi - lo) as u64)
                .sum();
            return edge_taps
                .saturating_add(((last_full - first_full) as u64).saturating_mul(kernel as u64));
        }
        (0..outputs)
            .map(|o| self.tap_range(axis, o, size))
            .map(|(lo, hi)| (hi - lo) as u64)
            .sum()
    }

    /// Whether whole output rows can run as lines whose edge taps skip pixels, on a kernel that
    /// skips up to `max_skip`: stride 1 (a skip is then the padding left or right, at most),
    /// and no tap of a row clipped on both sides (`left + right <= kernel`).
    pub(crate) fn rows_as_lines(&self, max_skip: usize) -> bool {
        let p = self.padding;
        self.stride == [1, 1]
            && p.left <= max_skip
            && p.right <= max_skip
            && p.left + p.right <= self.kernel[1]
    }

    /// Calls `f(n, y0, y1, ky)` for every run `y0..y1` of output rows of image `n` within `rows`
    /// (global row indices `n * out_h + y`) whose windows share the valid taps `ky.0..ky.1`.
    pub(crate) fn for_each_row_run(
        &self,
        input: Nhwc,
        out_h: usize,
        rows: std::ops::Range<usize>,
        mut f: impl FnMut(usize, usize, usize, (usize, usize)) -> Result<()>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        for n in rows.start / out_h..=(rows.end - 1) / out_h {
            let ya = rows.start.max(n * out_h) - n * out_h;
            let yb = rows.end.min((n + 1) * out_h) - n * out_h;
            for (y0, y1, ky) in runs(ya..yb, |y| self.tap_range(Axis::Rows, y, input.h)) {
                f(n, y0, y1, ky)?;
            }
        }
        Ok(())
    }

    /// Calls `f` for every rectangle of output rows `rows` (global row indices `n * out_h + y`)
    /// of an `input` whose output is `out_h x out_w`.
    pub(crate) fn for_each_rect(
        &self,
        input: Nhwc,
        (out_h, out_w): (usize, usize),
        rows: std::ops::Range<usize>,
        mut f: impl FnMut(&Rect) -> Result<()>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (p, h, w) = (self.padding, input.h, input.w);
        let [stride_y, stride_x] = self.stride;
        for n in rows.start / out_h..=(rows.end - 1) / out_h {
            let ya = rows.start.max(n * out_h) - n * out_h;
            let yb = rows.end.min((n + 1) * out_h) - n * out_h;
            for (y0, y1, ky) in runs(ya..yb, |y| self.tap_range(Axis::Rows, y, h)) {
                for (x0, x1, kx) in runs(0..out_w, |x| self.tap_range(Axis::Cols, x, w)) {
                    // Input coordinates of output (y, x)'s first valid tap: never negative.
                    let origin = |y: usize, x: usize| {
                        (y * stride_y + ky.0 - p.top, x * stride_x + kx.0 - p.left)
                    };
                    f(&Rect {
                        n,
                        y0,
                        y1,
                        x0,
                        x1,
                        ky,
                        kx,
                        origin_y0x0: origin(y0, x0),
                    })?;
                }
            }
        }
        Ok(())
    }
}

/// Output pixels `[y0, y1) x [x0, x1)` of image `n` whose windows share the valid taps
/// `ky.0..ky.1` x `kx.0..kx.1`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rect {
    pub(crate) n: usize,
    pub(crate) y0: usize,
    pub(crate) y1: usize,
    pub(crate) x0: usize,
    pub(crate) x1: usize,
    pub(crate) ky: (usize, usize),
    pub(crate) kx: (usize, usize),
    /// Input (row, column) of the first valid tap of output (y0, x0).
    origin_y0x0: (usize, usize),
}

/// One line of a rectangle: `len` outputs from `(y, x)`, stepping along x (`along_x`) or y.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Line {
    pub(crate) y: usize,
    pub(crate) x: usize,
    /// Input (row, column) of the first valid tap of output (y, x).
    pub(crate) origin: (usize, usize),
    pub(crate) len: usize,
    pub(crate) along_x: bool,
}

impl Rect {
    /// The rectangle as lines: rows when it is at least as wide as tall, else columns
    /// (`stride`: the window's, rows then columns).
    pub(crate) fn lines(&self, stride: [usize; 2]) -> impl Iterator<Item = Line> + '_ {
        let (h, w) = (self.y1 - self.y0, self.x1 - self.x0);
        let along_x = w >= h;
        let (count, len) = if along_x { (h, w) } else { (w, h) };
        (0..count).map(move |i| {
            let (dy, dx) = if along_x { (i, 0) } else { (0, i) };
            Line {
                y: self.y0 + dy,
                x: self.x0 + dx,
                origin: (
                    self.origin_y0x0.0 + dy * stride[0],
                    self.origin_y0x0.1 + dx * stride[1],
                ),
                len,
                along_x,
            }
        })
    }
}

/// An axis of the output: rows (height) or columns (width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Axis {
    Rows,
    Cols,
}

/// Splits `range` into maximal runs with equal `key`: yields `(start, end, key)`.
fn runs<K: PartialEq + Copy>(
    range: std::ops::Range<usize>,
    key: impl Fn(usize) -> K,
) -> impl Iterator<Item = (usize, usize, K)> {
    let mut start = range.start;
    std::iter::from_fn(move || {
        if start >= range.end {
            return None;
        }
        let k = key(start);
        let mut end = start + 1;
        while end < range.end && key(end) == k {
            end += 1;
        }
        let run = (start, end, k);
        start = end;
        Some(run)
    })
}
