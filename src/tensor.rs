//! NHWC activation views over caller-owned slices.
//!
//! A view is a shape `(n, h, w, c)`, a *pixel stride* (elements between neighbouring pixels,
//! `>= c`) and an element *offset*. Pixel `(b, y, x)`, channel `ch` lives at
//! `offset + ((b*h + y)*w + x) * pixel_stride + ch`. A view whose pixel stride is wider than
//! its channel count is a channel slice of a wider tensor: that is how an operator reads part of
//! a tensor and how the Inception module writes each branch into its slice of the concatenated
//! output without copying. Input views borrow shared, output views borrow exclusively, so an
//! operator's input and output can never overlap.
//!
//! Any `f32` slice works, but the kernels load and store whole vectors of channels: allocate
//! tensors 64-byte aligned (e.g. `aligned_vec::AVec<f32, ConstAlign<64>>`, as oneDNN and
//! XNNPACK allocate theirs) and keep pixel strides and channel offsets multiples of 16, so no
//! vector straddles two cache lines. On the 28x28x192 max-pool a 16-byte-aligned buffer took
//! 1.4-1.6x the time of a 64-byte-aligned one; the convolutions, which broadcast their inputs,
//! are less sensitive.

use crate::error::{checked_product, invalid, mismatch, Error, ErrorKind, Result};

/// The logical shape of an NHWC tensor: `n` images of `h` rows of `w` pixels of `c` channels,
/// channels fastest.
///
/// # Examples
///
/// ```
/// use incept::Nhwc;
///
/// let shape = Nhwc::new(2, 28, 28, 192);
/// assert_eq!(shape.pixels(), 2 * 28 * 28);
/// assert_eq!(shape.element_count()?, 2 * 28 * 28 * 192);
/// assert_eq!(shape.to_string(), "2x28x28x192");
/// # Ok::<(), incept::Error>(())
/// ```
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
    /// Shorthand constructor, usable in `const` items.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::Nhwc;
    ///
    /// const GOOGLENET_3A: Nhwc = Nhwc::new(1, 28, 28, 192);
    /// assert_eq!(GOOGLENET_3A, Nhwc { n: 1, h: 28, w: 28, c: 192 });
    /// ```
    pub const fn new(n: usize, h: usize, w: usize, c: usize) -> Self {
        Nhwc { n, h, w, c }
    }

    /// Number of pixels, `n * h * w` (saturating at `usize::MAX`; a view's shape never does).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::Nhwc;
    ///
    /// assert_eq!(Nhwc::new(2, 3, 4, 100).pixels(), 24);
    /// assert_eq!(Nhwc::new(usize::MAX, 2, 1, 1).pixels(), usize::MAX);
    /// ```
    pub fn pixels(&self) -> usize {
        self.n.saturating_mul(self.h).saturating_mul(self.w)
    }

    /// Number of elements of a dense tensor of this shape, checked for overflow.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Overflow`] if `n * h * w * c` does not fit in `usize`.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ErrorKind, Nhwc};
    ///
    /// assert_eq!(Nhwc::new(1, 2, 3, 4).element_count()?, 24);
    /// let huge = Nhwc::new(usize::MAX, 2, 1, 1);
    /// assert_eq!(huge.element_count().unwrap_err().kind(), ErrorKind::Overflow);
    /// # Ok::<(), incept::Error>(())
    /// ```
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
        ///
        /// # Examples
        ///
        /// ```
        /// use incept::{Nhwc, TensorView, TensorViewMut};
        ///
        /// let shape = Nhwc::new(1, 2, 2, 3);
        /// let mut data = [0.0; 12];
        /// assert_eq!(TensorViewMut::new(&mut data, shape)?.shape(), shape);
        /// let view = TensorView::new(&data, shape)?;
        /// // A channel slice keeps the batch and spatial size.
        /// assert_eq!(view.channels(1, 2)?.shape(), Nhwc { c: 2, ..shape });
        /// # Ok::<(), incept::Error>(())
        /// ```
        pub fn shape(&self) -> Nhwc {
            self.shape
        }
        /// Elements between neighbouring pixels.
        ///
        /// # Examples
        ///
        /// ```
        /// use incept::{Nhwc, TensorView, TensorViewMut};
        ///
        /// let mut data = [0.0; 16];
        /// // Dense: each pixel right after the previous one.
        /// assert_eq!(TensorView::new(&data, Nhwc::new(1, 2, 2, 4))?.pixel_stride(), 4);
        /// // Two of four channels: the stride stays that of the wider tensor.
        /// let half = TensorViewMut::with_layout(&mut data, Nhwc::new(1, 2, 2, 2), 4, 2)?;
        /// assert_eq!(half.pixel_stride(), 4);
        /// # Ok::<(), incept::Error>(())
        /// ```
        pub fn pixel_stride(&self) -> usize {
            self.pixel_stride
        }
        /// Index in the underlying slice of pixel 0, channel 0.
        ///
        /// # Examples
        ///
        /// ```
        /// use incept::{Nhwc, TensorView, TensorViewMut};
        ///
        /// let mut data = [0.0; 12];
        /// assert_eq!(TensorView::new(&data, Nhwc::new(1, 1, 4, 3))?.offset(), 0);
        /// let mut view = TensorViewMut::new(&mut data, Nhwc::new(1, 1, 4, 3))?;
        /// // The last channel of every pixel: its first element is element 2.
        /// assert_eq!(view.channels(2, 1)?.offset(), 2);
        /// # Ok::<(), incept::Error>(())
        /// ```
        pub fn offset(&self) -> usize {
            self.offset
        }
        /// Number of elements from `offset` to the last element of the last pixel, inclusive.
        ///
        /// # Examples
        ///
        /// ```
        /// use incept::{Nhwc, TensorView, TensorViewMut};
        ///
        /// let mut data = [0.0; 20];
        /// // Dense: exactly the shape's elements.
        /// assert_eq!(TensorView::new(&data[..12], Nhwc::new(1, 2, 2, 3))?.span(), 12);
        /// // Channel 4 of 5 on 4 pixels: three whole strides, then one element of the last pixel.
        /// let last = TensorViewMut::with_layout(&mut data, Nhwc::new(1, 2, 2, 1), 5, 4)?;
        /// assert_eq!(last.span(), 3 * 5 + 1);
        /// # Ok::<(), incept::Error>(())
        /// ```
        pub fn span(&self) -> usize {
            (self.shape.pixels() - 1) * self.pixel_stride + self.shape.c
        }
        /// Index of element `(b, y, x, ch)` in the underlying slice:
        /// `offset + ((b*h + y)*w + x) * pixel_stride + ch`.
        ///
        /// # Examples
        ///
        /// ```
        /// use incept::{Nhwc, TensorView, TensorViewMut};
        ///
        /// let shape = Nhwc::new(2, 2, 3, 2);
        /// let mut data = [0.0; 2 * 2 * 3 * 2];
        /// // Image 1, row 0, column 2 is pixel (1 * 2 + 0) * 3 + 2 = 8; channel 1 of it:
        /// assert_eq!(TensorView::new(&data, shape)?.index(1, 0, 2, 1), 8 * 2 + 1);
        /// let mut view = TensorViewMut::new(&mut data, shape)?;
        /// // In the slice of channel 1 alone, the same element is channel 0.
        /// assert_eq!(view.channels(1, 1)?.index(1, 0, 2, 0), 17);
        /// # Ok::<(), incept::Error>(())
        /// ```
        pub fn index(&self, b: usize, y: usize, x: usize, ch: usize) -> usize {
            self.offset + ((b * self.shape.h + y) * self.shape.w + x) * self.pixel_stride + ch
        }
    };
}

/// A read-only NHWC view over a caller's slice (see the module docs): the input of every
/// operator. It is `Copy`: views are cheap descriptions, the data stay where they are.
///
/// # Examples
///
/// A 1x2x2x3 tensor stored as channels 1..4 of a 1x2x2x5 one (pixel stride 5, offset 1):
///
/// ```
/// use incept::{Nhwc, TensorView};
///
/// let data: Vec<f32> = (0..20).map(|i| i as f32).collect();
/// let view = TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 3), 5, 1)?;
/// assert_eq!((view.pixel_stride(), view.offset()), (5, 1));
/// // Pixel (y = 1, x = 0), channel 2 of the view is element 1 + 2 * 5 + 2 of the slice.
/// assert_eq!(view.index(0, 1, 0, 2), 13);
/// assert_eq!(view.data()[view.index(0, 1, 0, 2)], 13.0);
/// // From the first element of pixel 0 to the last of pixel 3: 3 * 5 + 3 elements.
/// assert_eq!(view.span(), 18);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TensorView<'a> {
    data: &'a [f32],
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
}

impl<'a> TensorView<'a> {
    /// A dense tensor: pixel stride = channels, offset 0.
    ///
    /// # Errors
    ///
    /// As [`TensorView::with_layout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorView};
    ///
    /// let data = [0.0; 2 * 3 * 4];
    /// let view = TensorView::new(&data, Nhwc::new(1, 2, 3, 4))?;
    /// assert_eq!(view.pixel_stride(), 4);
    /// assert_eq!(view.span(), data.len());
    /// assert!(TensorView::new(&data[1..], Nhwc::new(1, 2, 3, 4)).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(data: &'a [f32], shape: Nhwc) -> Result<Self> {
        Self::with_layout(data, shape, shape.c, 0)
    }

    /// A view with an explicit pixel stride and offset (e.g. a channel slice of a wider tensor).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] if a dimension is 0 or `pixel_stride < shape.c`;
    /// [`ErrorKind::Overflow`] if the extent overflows `usize`; [`ErrorKind::BufferTooSmall`]
    /// if `data` ends before the last element of the last pixel.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ErrorKind, Nhwc, TensorView};
    ///
    /// let data = [0.0; 16];
    /// // Channels 2..4 of a 2x2 image with 4 channels: pixel stride 4, offset 2.
    /// let view = TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 2), 4, 2)?;
    /// assert_eq!(view.offset() + view.span(), 16);
    /// // One more element of offset and the last pixel no longer fits.
    /// let err = TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 2), 4, 3).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
    /// # Ok::<(), incept::Error>(())
    /// ```
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

    /// The channels `start..start + count` of this view, as a view of the same slice.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] if `count` is 0 or the range ends past the view's channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorView};
    ///
    /// let data: Vec<f32> = (0..8).map(|i| i as f32).collect();
    /// let view = TensorView::new(&data, Nhwc::new(1, 1, 2, 4))?;
    /// let last_two = view.channels(2, 2)?;
    /// assert_eq!((last_two.shape().c, last_two.pixel_stride(), last_two.offset()), (2, 4, 2));
    /// assert_eq!(data[last_two.index(0, 0, 1, 0)], 6.0);
    /// assert!(view.channels(3, 2).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
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

    /// The whole underlying slice, including elements outside the view: index it with
    /// [`TensorView::index`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorView};
    ///
    /// let data = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    /// // Channel 1 of 3, on two pixels.
    /// let view = TensorView::with_layout(&data, Nhwc::new(1, 1, 2, 1), 3, 1)?;
    /// assert_eq!(view.data().len(), 6); // the whole slice, not only the view's two elements
    /// assert_eq!(view.data()[view.index(0, 0, 1, 0)], 4.0);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    view_accessors!();
}

/// A writable NHWC view over a caller's slice (see the module docs): the output of every
/// operator. Elements outside the view (other channels of a wider tensor) are never written.
///
/// # Examples
///
/// Two operators writing side by side into one 3-channel tensor (a concatenation with no copy):
///
/// ```
/// use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
///
/// let x = [1.0, 2.0]; // one pixel, two channels
/// let sum = Conv1x1::new(2, 1, &[1.0, 1.0], None, Epilogue::None)?;
/// let copy = Conv1x1::new(2, 2, &[1.0, 0.0, 0.0, 1.0], None, Epilogue::None)?;
///
/// let mut out = [0.0; 3];
/// let input = TensorView::new(&x, Nhwc::new(1, 1, 1, 2))?;
/// let mut concat = TensorViewMut::new(&mut out, Nhwc::new(1, 1, 1, 3))?;
/// sum.run(&input, &mut concat.channels(0, 1)?, Parallelism::Sequential)?;
/// copy.run(&input, &mut concat.channels(1, 2)?, Parallelism::Sequential)?;
/// assert_eq!(out, [3.0, 1.0, 2.0]);
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Debug)]
pub struct TensorViewMut<'a> {
    data: &'a mut [f32],
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
}

impl<'a> TensorViewMut<'a> {
    /// A dense tensor: pixel stride = channels, offset 0.
    ///
    /// # Errors
    ///
    /// As [`TensorViewMut::with_layout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorViewMut};
    ///
    /// let mut data = vec![0.0; 2 * 2 * 8];
    /// let view = TensorViewMut::new(&mut data, Nhwc::new(1, 2, 2, 8))?;
    /// assert_eq!(view.index(0, 1, 1, 7), 31);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn new(data: &'a mut [f32], shape: Nhwc) -> Result<Self> {
        Self::with_layout(data, shape, shape.c, 0)
    }

    /// A view with an explicit pixel stride and offset (e.g. a channel slice of a wider tensor).
    ///
    /// # Errors
    ///
    /// As [`TensorView::with_layout`] (messages say `output` instead of `input`).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorViewMut};
    ///
    /// // The last 4 of 10 channels of a 3x3 image.
    /// let mut data = vec![0.0; 3 * 3 * 10];
    /// let view = TensorViewMut::with_layout(&mut data, Nhwc::new(1, 3, 3, 4), 10, 6)?;
    /// assert_eq!(view.offset() + view.span(), 90);
    /// # Ok::<(), incept::Error>(())
    /// ```
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

    /// The channels `start..start + count` of this view, borrowing it mutably (one slice at a
    /// time; see the type's example for filling a tensor slice by slice).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidArgument`] if `count` is 0 or the range ends past the view's channels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorViewMut};
    ///
    /// let mut data = [0.0; 6];
    /// let mut view = TensorViewMut::new(&mut data, Nhwc::new(1, 1, 2, 3))?;
    /// let slice = view.channels(1, 2)?;
    /// assert_eq!((slice.shape().c, slice.pixel_stride(), slice.offset()), (2, 3, 1));
    /// assert!(view.channels(0, 0).is_err());
    /// # Ok::<(), incept::Error>(())
    /// ```
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

    /// The whole underlying slice, read-only (an operator's results, once it has run).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
    ///
    /// let double = Conv1x1::new(1, 1, &[2.0], None, Epilogue::None)?;
    /// let (x, mut out) = ([1.0, 2.0, 3.0], [0.0; 3]);
    /// let shape = Nhwc::new(1, 1, 3, 1);
    /// let mut y = TensorViewMut::new(&mut out, shape)?;
    /// double.run(&TensorView::new(&x, shape)?, &mut y, Parallelism::Sequential)?;
    /// assert_eq!(y.data(), [2.0, 4.0, 6.0]); // read through the view, no need to drop it first
    /// # Ok::<(), incept::Error>(())
    /// ```
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
