//! The crate's error type: every failure names the field and the numbers involved.

use std::fmt;

/// What kind of mistake an [`Error`] reports. The message says which field and which numbers.
/// The enum is `non_exhaustive`: match it with a wildcard arm.
///
/// # Examples
///
/// ```
/// use incept::{ErrorKind, Nhwc, TensorView};
///
/// let err = TensorView::new(&[0.0; 3], Nhwc::new(1, 1, 1, 4)).unwrap_err();
/// let advice = match err.kind() {
///     ErrorKind::BufferTooSmall => "pass a longer slice",
///     ErrorKind::InvalidArgument | ErrorKind::ShapeMismatch => "fix the shapes",
///     _ => "see the message",
/// };
/// assert_eq!(advice, "pass a longer slice");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A size, stride, offset or parameter is out of its allowed range (e.g. zero channels).
    InvalidArgument,
    /// Two shapes that must agree do not (e.g. input channels vs the weights').
    ShapeMismatch,
    /// A slice is shorter than the shape, strides and offset require.
    BufferTooSmall,
    /// A size computation overflows `usize`, or an allocation would be impossibly large.
    Overflow,
    /// The requested ISA is unknown or this CPU does not support it.
    UnsupportedIsa,
    /// An internal consistency check failed: a bug in incept, reported instead of undefined behaviour.
    Internal,
}

/// An error from incept: an [`ErrorKind`] and a message such as
/// `"input channels 190 do not match weights' 192"`. It implements [`std::error::Error`], so it
/// converts into `Box<dyn Error>` and friends with `?`.
///
/// # Examples
///
/// ```
/// use incept::{Conv1x1, Epilogue, ErrorKind};
///
/// // A bias needs one value per output channel.
/// let err = Conv1x1::new(4, 2, &[0.0; 8], Some(&[0.0; 3]), Epilogue::None).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::ShapeMismatch);
/// assert_eq!(err.to_string(), "conv1x1 bias has 3 elements but there are 2 output channels");
/// assert_eq!(err.message(), err.to_string());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// The kind of mistake.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{ErrorKind, Isa};
    ///
    /// let err = "sse2".parse::<Isa>().unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::UnsupportedIsa);
    /// assert!(err.message().contains("unknown ISA 'sse2'"));
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message (also what `Display` prints).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{Nhwc, TensorView};
    ///
    /// let err = TensorView::new(&[0.0; 5], Nhwc::new(1, 2, 3, 1)).unwrap_err();
    /// assert_eq!(
    ///     err.message(),
    ///     "input slice has 5 elements but shape 1x2x3x1 with pixel stride 1 and offset 0 needs 6"
    /// );
    /// assert_eq!(err.message(), err.to_string());
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `Result` with incept's [`Error`]. Doc examples end with `Ok::<(), incept::Error>(())` so
/// that `?` works in them.
///
/// # Examples
///
/// ```
/// use incept::{Nhwc, Result};
///
/// // A helper of your own that passes incept's errors on with `?`.
/// fn dense_len(shape: Nhwc) -> Result<usize> {
///     shape.element_count()
/// }
/// assert_eq!(dense_len(Nhwc::new(2, 3, 4, 5))?, 120);
/// // The error type is only a default: it can be named like std's.
/// let parsed: Result<u8, std::num::ParseIntError> = "7".parse();
/// assert_eq!(parsed, Ok(7));
/// # Ok::<(), incept::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shorthand constructors used across the crate.
pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidArgument, message)
}
pub(crate) fn mismatch(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::ShapeMismatch, message)
}
pub(crate) fn overflow(what: &str) -> Error {
    Error::new(ErrorKind::Overflow, format!("{what} overflows usize"))
}

/// `a * b * ...` with overflow reported as an [`ErrorKind::Overflow`] naming `what`.
pub(crate) fn checked_product(what: &str, factors: &[usize]) -> Result<usize> {
    factors
        .iter()
        .try_fold(1usize, |acc, &f| acc.checked_mul(f))
        .ok_or_else(|| overflow(what))
}
