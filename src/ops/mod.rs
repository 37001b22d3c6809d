//! The operators. Each validates its descriptor and packs its weights once at creation, then
//! runs many times on caller-provided views without allocating.

mod conv1x1;

pub use conv1x1::Conv1x1;

use incept_kernels::{Clamp, TileError};

use crate::error::{invalid, Error, ErrorKind, Result};
use crate::isa::Isa;

/// The activation fused into an operator's store: applied in registers, never a second pass.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Epilogue {
    /// Store the sums as they are.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `min(max(x, min), max)`; requires `min <= max` and neither NaN.
    Clamp {
        /// Lower bound (may be `-inf`).
        min: f32,
        /// Upper bound (may be `+inf`).
        max: f32,
    },
}

impl Epilogue {
    /// The clamp the kernels apply. NaN outputs stay NaN; see [`incept_kernels::Clamp`].
    pub(crate) fn clamp(self) -> Result<Clamp> {
        let (min, max) = match self {
            Epilogue::None => return Ok(Clamp::NONE),
            Epilogue::Relu => (0.0, f32::INFINITY),
            Epilogue::Relu6 => (0.0, 6.0),
            Epilogue::Clamp { min, max } => (min, max),
        };
        if min.is_nan() || max.is_nan() || min > max {
            return Err(invalid(format!(
                "epilogue clamp min {min} must be <= max {max}, neither NaN"
            )));
        }
        Ok(Clamp { min, max })
    }
}

/// Options shared by every operator's constructor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpOptions {
    /// Cap this operator's ISA (on top of the global cap); `None` = the best allowed.
    pub max_isa: Option<Isa>,
}

/// Turns a refused tile (an internal inconsistency) into an error.
pub(crate) fn tile_error(op: &str, e: TileError) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("{op}: internal error, microkernel refused a tile ({e:?})"),
    )
}
