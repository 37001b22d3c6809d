//! # incept
//!
//! Hand-written SIMD microkernels for Inception-style convolution blocks: f32, NHWC, batch N.
//!
//! * **Views, not copies.** Activations are [`TensorView`] / [`TensorViewMut`] over your own
//!   slices: a shape `(n, h, w, c)`, a pixel stride (elements between neighbouring pixels) and an
//!   offset. A view may be a channel slice of a wider tensor, which is how branch outputs are
//!   concatenated in place.
//! * **Create once, run many.** An operator validates its shapes and packs its weights (OHWI,
//!   bias folded in) when created; `run` checks the views and computes, allocating nothing.
//!   Operators are `Send + Sync`.
//! * **Dispatch.** The best ISA of this CPU (AVX-512F, AVX2+FMA, NEON, else portable) is chosen
//!   when an operator is created. Cap it with [`set_max_isa`], `INCEPT_MAX_ISA`, or
//!   [`OpOptions::max_isa`]; asking for an ISA the CPU lacks is an error. See [`isa`].
//! * **Threads.** [`Parallelism`]: sequential, rayon's global pool, or your own pool. Reductions
//!   are never split, so the output is bit-identical for any thread count.
//! * **Errors.** Every failure is an [`Error`] naming the field and the numbers; no input
//!   panics.
//!
//! ```
//! use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
//!
//! // 2x2 image, 3 input channels -> 2 output channels, bias + ReLU.
//! let input = [1.0, 2.0, 3.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 2.0, 2.0, 2.0];
//! let weights = [1.0, 1.0, 1.0, /* channel 1: */ 0.0, -1.0, 0.0]; // OHWI = [out][in] for 1x1
//! let bias = [0.5, 0.0];
//! let conv = Conv1x1::new(3, 2, &weights, Some(&bias), Epilogue::Relu)?;
//!
//! // Write into channels 1..3 of a wider 4-channel output (zero-copy concat).
//! let mut out = vec![9.0; 2 * 2 * 4];
//! let input = TensorView::new(&input, Nhwc::new(1, 2, 2, 3))?;
//! let mut output = TensorViewMut::with_layout(&mut out, Nhwc::new(1, 2, 2, 2), 4, 1)?;
//! conv.run(&input, &mut output, Parallelism::Sequential)?;
//! assert_eq!(out, [9.0, 6.5, 0.0, 9.0, 9.0, 1.5, 0.0, 9.0, 9.0, 0.0, 0.0, 9.0, 9.0, 6.5, 0.0, 9.0]);
//! # Ok::<(), incept::Error>(())
//! ```
#![deny(missing_docs)]
// `unsafe` lives in `incept-kernels` and the C ABI (`capi`) only.
#![deny(unsafe_code)]

#[cfg(feature = "capi")]
#[allow(unsafe_code)]
pub mod capi;
pub mod cost;
pub mod error;
pub mod error_catalogue;
pub mod isa;
mod ops;
mod pack;
mod parallel;
pub mod tensor;
pub mod weights;

pub use error::{Error, ErrorKind, Result};
pub use isa::{set_max_isa, Isa};
pub use ops::{
    inception_reference, Accuracy, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d,
    Conv2dDesc, ConvAlgorithm, ConvParams, Epilogue, Inception, InceptionConfig, InceptionWeights,
    MaxPool2d, MaxPool2dDesc, OpOptions, Padding, PoolProjection, MAX_KERNEL, MAX_POOL_KERNEL,
    WINOGRAD_MIN_CHANNELS,
};
pub use parallel::Parallelism;
pub use tensor::{Nhwc, TensorView, TensorViewMut};
pub use weights::{to_ohwi, WeightLayout, WeightShape};

/// The scalar reference implementations (the test oracle), re-exported from `incept-kernels`.
pub use incept_kernels::scalar::reference;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
