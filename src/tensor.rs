//! NHWC activation views over caller-owned slices.
//!
//! A view is a shape `(n, h, w, c)`, a *pixel stride* (elements between neighbouring pixels,
//! `>= c`) and an element *offset*. Pixel `(b, y, x)`, channel `ch` lives at
//! `offset + ((b*h + y)*w + x) * pixel_stride + ch`. A view whose pixel stride is wider than
//! its channel count is a channel slice of a wider tensor: that is how an operator reads part of
//! a tensor and how the Inception module writes each branch into its slice of the concatenated
//! output without copying. Input views borrow shared, output views borrow exclusively, so an
//! operator's input and output can never overlap.

use crate::error::{checked_product, invalid, mismatch, Error, ErrorKind, Result};

/// The logical shape of an NHWC tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Nhwc {
    /// Batch.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
}

impl Nhwc {
    /// Shorthand constructor.
    pub const fn new(n: usize, h: usize, w: usize, c: usize) -> Self {
        Nhwc { n, h, w, c }
    }

    /// Number of pixels, `n * h * w` (saturating at `usize::MAX`; a view's shape never does).
    pub fn pixels(&self) -> usize {
        self.n.saturating_mul(self.h).saturating_mul(self.w)
    }

    /// Number of elements of a dense tensor of this shape, checked for overflow.
    pub fn element_count(&self) -> Result<usize> {
        checked_product("tensor element count", &[self.n, self.h, self.w, self.c])
    }
}

impl std::fmt::Display for Nhwc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}x{}", self.n, self.h, self.w, self.c)
    }
}

/// Checks a layout against a slice length; returns the number of elements it spans from `offset`.
fn check_layout(
    what: &str,
    len: usize,
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
) -> Result<usize> {
    for (field, value) in [
        ("batch", shape.n),
        ("height", shape.h),
        ("width", shape.w),
        ("channels", shape.c),
    ] {
        if value == 0 {
            return Err(invalid(format!(
                "{what} {field} is 0; every dimension must be at least 1"
            )));
        }
    }
    if pixel_stride < shape.c {
        return Err(invalid(format!(
            "{what} pixel stride {pixel_stride} is less than its channels {}: pixels would overlap",
            shape.c
        )));
    }
    let pixels = checked_product(&format!("{what} pixel count"), &[shape.n, shape.h, shape.w])?;
    let span = (pixels - 1)
        .checked_mul(pixel_stride)
        .and_then(|x| x.checked_add(shape.c))
        .ok_or_else(|| Error::new(ErrorKind::Overflow, format!("{what} extent of shape {shape} with pixel stride {pixel_stride} overflows usize")))?;
    let end = offset.checked_add(span).ok_or_else(|| {
        Error::new(
            ErrorKind::Overflow,
            format!("{what} offset {offset} + extent {span} overflows usize"),
        )
    })?;
    if end > len {
        return Err(Error::new(
            ErrorKind::BufferTooSmall,
            format!(
                "{what} slice has {len} elements but shape {shape} with pixel stride {pixel_stride} and offset {offset} needs {end}"
            ),
        ));
    }
    Ok(span)
}

fn check_channel_slice(what: &str, c: usize, start: usize, count: usize) -> Result<()> {
    if count == 0 || start.checked_add(count).is_none_or(|end| end > c) {
        return Err(invalid(format!(
            "{what} channel slice {start}..{} is empty or outside its {c} channels",
            start.saturating_add(count)
        )));
    }
    Ok(())
}

macro_rules! view_accessors {
    () => {
        /// The logical shape.
        pub fn shape(&self) -> Nhwc {
            self.shape
        }
        /// Elements between neighbouring pixels.
        pub fn pixel_stride(&self) -> usize {
            self.pixel_stride
        }
        /// Index in the underlying slice of pixel 0, channel 0.
        pub fn offset(&self) -> usize {
            self.offset
        }
        /// Number of elements from `offset` to the last element of the last pixel, inclusive.
        pub fn span(&self) -> usize {
            (self.shape.pixels() - 1) * self.pixel_stride + self.shape.c
        }
        /// Index of element `(b, y, x, ch)` in the underlying slice.
        pub fn index(&self, b: usize, y: usize, x: usize, ch: usize) -> usize {
            self.offset + ((b * self.shape.h + y) * self.shape.w + x) * self.pixel_stride + ch
        }
    };
}

/// A read-only NHWC view (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    data: &'a [f32],
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
}

impl<'a> TensorView<'a> {
    /// A dense tensor: pixel stride = channels, offset 0.
    pub fn new(data: &'a [f32], shape: Nhwc) -> Result<Self> {
        Self::with_layout(data, shape, shape.c, 0)
    }

    /// A view with an explicit pixel stride and offset (e.g. a channel slice of a wider tensor).
    pub fn with_layout(
        data: &'a [f32],
        shape: Nhwc,
        pixel_stride: usize,
        offset: usize,
    ) -> Result<Self> {
        check_layout("input", data.len(), shape, pixel_stride, offset)?;
        Ok(TensorView {
            data,
            shape,
            pixel_stride,
            offset,
        })
    }

    /// The channels `start..start + count` of this view.
    pub fn channels(&self, start: usize, count: usize) -> Result<TensorView<'a>> {
        check_channel_slice("input", self.shape.c, start, count)?;
        Ok(TensorView {
            shape: Nhwc {
                c: count,
                ..self.shape
            },
            offset: self.offset + start,
            ..*self
        })
    }

    /// The whole underlying slice.
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    view_accessors!();
}

/// A writable NHWC view (see the module docs). Elements outside the view (other channels of a
/// wider tensor) are never written.
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    data: &'a mut [f32],
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
}

impl<'a> TensorViewMut<'a> {
    /// A dense tensor: pixel stride = channels, offset 0.
    pub fn new(data: &'a mut [f32], shape: Nhwc) -> Result<Self> {
        Self::with_layout(data, shape, shape.c, 0)
    }

    /// A view with an explicit pixel stride and offset (e.g. a channel slice of a wider tensor).
    pub fn with_layout(
        data: &'a mut [f32],
        shape: Nhwc,
        pixel_stride: usize,
        offset: usize,
    ) -> Result<Self> {
        check_layout("output", data.len(), shape, pixel_stride, offset)?;
        Ok(TensorViewMut {
            data,
            shape,
            pixel_stride,
            offset,
        })
    }

    /// The channels `start..start + count` of this view, borrowing it mutably.
    pub fn channels(&mut self, start: usize, count: usize) -> Result<TensorViewMut<'_>> {
        check_channel_slice("output", self.shape.c, start, count)?;
        Ok(TensorViewMut {
            data: &mut *self.data,
            shape: Nhwc {
                c: count,
                ..self.shape
            },
            pixel_stride: self.pixel_stride,
            offset: self.offset + start,
        })
    }

    /// The whole underlying slice.
    pub fn data(&self) -> &[f32] {
        self.data
    }

    /// The elements this view spans, from its first to its last element (other channels of a
    /// wider tensor are inside this range but must not be written).
    pub(crate) fn spanned_mut(&mut self) -> &mut [f32] {
        let span = self.span();
        &mut self.data[self.offset..self.offset + span]
    }

    view_accessors!();
}

/// Checks that two shapes agree in batch and spatial size.
pub(crate) fn check_same_pixels(input: Nhwc, output: Nhwc) -> Result<()> {
    if (input.n, input.h, input.w) != (output.n, output.h, output.w) {
        return Err(mismatch(format!(
            "output batch x height x width {}x{}x{} does not match input's {}x{}x{}",
            output.n, output.h, output.w, input.n, input.h, input.w
        )));
    }
    Ok(())
}
