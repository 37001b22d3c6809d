//! Instruction-set detection, the cap, and the choice of ISA for an operator.
//!
//! The best ISA this CPU supports is the default. A cap lowers it, so every path can be tested
//! and benchmarked on one machine:
//! - globally with [`set_max_isa`] (wins over the environment), or the environment variable
//!   `INCEPT_MAX_ISA=scalar|avx2|avx512|neon`, read once;
//! - per operator, with the `max_isa` field of [`crate::OpOptions`].
//!
//! A cap naming an ISA this CPU does not have (or an unknown name) is an error, never SIGILL.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use incept_kernels::{IsaToken, KernelIsa};

use crate::error::{Error, ErrorKind, Result};

/// An instruction set incept has kernels for. It parses from and prints as the names the CLI
/// and `INCEPT_MAX_ISA` use.
///
/// # Examples
///
/// ```
/// use incept::Isa;
///
/// let isa: Isa = " AVX2 ".parse()?; // trimmed, any case
/// assert_eq!(isa, Isa::Avx2);
/// assert_eq!(isa.to_string(), "avx2");
/// assert!("avx-1024".parse::<Isa>().is_err());
/// // The portable path runs everywhere.
/// assert!(Isa::Scalar.is_available());
/// # Ok::<(), incept::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, any CPU.
    Scalar,
    /// x86-64 AVX2 + FMA.
    Avx2,
    /// x86-64 AVX-512F.
    Avx512,
    /// AArch64 NEON.
    Neon,
}

/// Every ISA, lowest first within each family.
pub const ALL_ISAS: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

impl Isa {
    /// The name used by the CLI and `INCEPT_MAX_ISA` (also what `Display` prints).
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::Isa;
    ///
    /// assert_eq!(Isa::Avx512.name(), "avx512");
    /// assert_eq!(Isa::Avx512.name().parse::<Isa>()?, Isa::Avx512);
    /// # Ok::<(), incept::Error>(())
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Position within its family: scalar < avx2 < avx512, scalar < neon.
    fn rank(self) -> u8 {
        match self {
            Isa::Scalar => 0,
            Isa::Avx2 | Isa::Neon => 1,
            Isa::Avx512 => 2,
        }
    }

    pub(crate) fn kernel_isa(self) -> KernelIsa {
        match self {
            Isa::Scalar => KernelIsa::Scalar,
            Isa::Avx2 => KernelIsa::Avx2,
            Isa::Avx512 => KernelIsa::Avx512,
            Isa::Neon => KernelIsa::Neon,
        }
    }

    /// Whether this CPU (and this build) can run the ISA's kernels.
    ///
    /// # Examples
    ///
    /// ```
    /// use incept::{isa, Isa};
    ///
    /// for candidate in isa::ALL_ISAS {
    ///     assert_eq!(candidate.is_available(), isa::available().contains(&candidate));
    /// }
    /// ```
    pub fn is_available(self) -> bool {
        available().contains(&self)
    }

    /// A proof for the kernels that the CPU supports this ISA (and this build has its kernels).
    fn detect(self) -> Option<IsaToken> {
        IsaToken::new(self.kernel_isa())
            .filter(|_| incept_kernels::conv_kernel(self.kernel_isa()).is_some())
    }

    /// Like `detect`, with an error naming what is available.
    pub(crate) fn token(self) -> Result<IsaToken> {
        self.detect().ok_or_else(|| unsupported(self))
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isa {
    type Err = Error;
    fn from_str(s: &str) -> Result<Isa> {
        ALL_ISAS
            .into_iter()
            .find(|isa| isa.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnsupportedIsa,
                    format!("unknown ISA '{s}': expected one of scalar, avx2, avx512, neon"),
                )
            })
    }
}

fn unsupported(isa: Isa) -> Error {
    let have: Vec<&str> = available().iter().map(|i| i.name()).collect();
    Error::new(
        ErrorKind::UnsupportedIsa,
        format!(
            "ISA {isa} is not supported by this CPU (available: {})",
            have.join(", ")
        ),
    )
}

/// The ISAs this CPU supports, detected once, lowest first. Always includes [`Isa::Scalar`].
///
/// # Examples
///
/// ```
/// use incept::{isa, Isa};
///
/// let isas = isa::available();
/// assert_eq!(isas[0], Isa::Scalar);
/// assert!(isas.contains(&isa::best_available()));
/// ```
pub fn available() -> &'static [Isa] {
    static AVAILABLE: OnceLock<Vec<Isa>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        ALL_ISAS
            .into_iter()
            .filter(|isa| isa.detect().is_some())
            .collect()
    })
}

/// The best ISA this CPU supports, ignoring any cap.
///
/// # Examples
///
/// ```
/// use incept::{isa, Conv1x1, Epilogue};
///
/// let conv = Conv1x1::new(1, 1, &[1.0], None, Epilogue::None)?;
/// // Without a cap (none is set here unless INCEPT_MAX_ISA is) an operator gets the best ISA.
/// if isa::max_isa()?.is_none() {
///     assert_eq!(conv.isa(), isa::best_available());
/// }
/// # Ok::<(), incept::Error>(())
/// ```
pub fn best_available() -> Isa {
    available()
        .iter()
        .copied()
        .max_by_key(|isa| isa.rank())
        .unwrap_or(Isa::Scalar)
}

/// 0 = no cap set through the API; otherwise 1 + index into `ALL_ISAS`.
static API_CAP: AtomicU8 = AtomicU8::new(0);

/// Sets (or with `None` clears) the process-wide cap. Operators created afterwards use at most
/// this ISA; existing operators keep theirs. Wins over `INCEPT_MAX_ISA`.
///
/// # Errors
///
/// [`ErrorKind::UnsupportedIsa`] if this CPU (or build) lacks `cap`; the cap in force is then
/// unchanged.
///
/// # Examples
///
/// ```
/// use incept::{isa, set_max_isa, Conv1x1, Epilogue, Isa};
///
/// set_max_isa(Some(Isa::Scalar))?;
/// let conv = Conv1x1::new(1, 1, &[2.0], None, Epilogue::None)?;
/// assert_eq!(conv.isa(), Isa::Scalar);
/// assert_eq!(isa::max_isa()?, Some(Isa::Scalar));
///
/// set_max_isa(None)?; // back to the environment's cap, if any
/// assert_eq!(conv.isa(), Isa::Scalar); // created under the cap, keeps its ISA
/// # Ok::<(), incept::Error>(())
/// ```
pub fn set_max_isa(cap: Option<Isa>) -> Result<()> {
    let code = match cap {
        Some(isa) => {
            isa.token()?;
            1 + ALL_ISAS.iter().position(|&i| i == isa).unwrap_or(0) as u8
        }
        None => 0,
    };
    API_CAP.store(code, Ordering::Relaxed);
    Ok(())
}

/// The process-wide cap in force: the one set by [`set_max_isa`], else `INCEPT_MAX_ISA`, else none.
///
/// # Errors
///
/// [`ErrorKind::UnsupportedIsa`] if `INCEPT_MAX_ISA` is not a known ISA name (and no
/// [`set_max_isa`] cap overrides it).
///
/// # Examples
///
/// ```
/// use incept::{isa, set_max_isa, Isa};
///
/// set_max_isa(Some(Isa::Scalar))?;
/// assert_eq!(isa::max_isa()?, Some(Isa::Scalar));
/// # set_max_isa(None)?;
/// # Ok::<(), incept::Error>(())
/// ```
pub fn max_isa() -> Result<Option<Isa>> {
    match API_CAP.load(Ordering::Relaxed) {
        0 => env_cap().clone(),
        code => Ok(ALL_ISAS.get(code as usize - 1).copied()),
    }
}

fn env_cap() -> &'static Result<Option<Isa>> {
    static ENV_CAP: OnceLock<Result<Option<Isa>>> = OnceLock::new();
    ENV_CAP.get_or_init(|| match std::env::var("INCEPT_MAX_ISA") {
        Ok(v) if !v.trim().is_empty() => v.parse::<Isa>().map(Some).map_err(|e| {
            Error::new(
                ErrorKind::UnsupportedIsa,
                format!("INCEPT_MAX_ISA: {}", e.message()),
            )
        }),
        _ => Ok(None),
    })
}

/// The ISA an operator runs on: the best available one not above the global cap nor `op_cap`.
/// Every constructor calls this with its [`OpOptions::max_isa`](crate::OpOptions::max_isa).
///
/// # Errors
///
/// [`ErrorKind::UnsupportedIsa`] if a cap names an ISA this CPU lacks, or `INCEPT_MAX_ISA` is
/// not an ISA name.
///
/// # Examples
///
/// ```
/// use incept::{isa, Isa};
///
/// assert_eq!(isa::resolve(Some(Isa::Scalar))?, Isa::Scalar);
/// // With no cap of its own an operator gets the best ISA the process-wide cap allows.
/// let best = isa::resolve(None)?;
/// assert!(isa::available().contains(&best));
/// # Ok::<(), incept::Error>(())
/// ```
pub fn resolve(op_cap: Option<Isa>) -> Result<Isa> {
    let mut limit = u8::MAX;
    for cap in [max_isa()?, op_cap].into_iter().flatten() {
        cap.token()?;
        limit = limit.min(cap.rank());
    }
    Ok(available()
        .iter()
        .copied()
        .filter(|isa| isa.rank() <= limit)
        .max_by_key(|isa| isa.rank())
        .unwrap_or(Isa::Scalar))
}
