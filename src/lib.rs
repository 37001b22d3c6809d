//! # incept
//!
//! Hand-written SIMD microkernels for Inception-style convolution blocks: f32, NHWC, any batch,
//! on AVX-512F, AVX2+FMA, NEON or portable Rust, chosen at run time. It is meant to sit inside
//! another inference engine as its CPU backend for these layers: the engine owns the tensors,
//! incept computes into them.
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
//!
//! The rest of this page explains the model behind that example, one idea per section.
//!
//! ## Operators
//!
//! | operator | computes |
//! |---|---|
//! | [`Conv1x1`] | pointwise convolution, as a GEMM whose A matrix is the NHWC input itself |
//! | [`Conv2d`] | KHxKW convolution ([`Conv2dDesc`]: any sides up to 16, e.g. Inception-v3's 1x7 and 7x1; a stride per axis, per-side padding): direct, or Winograd F(4x4, 3x3) / F(2x2, 5x5) for 3x3 / 5x5 stride 1 |
//! | [`MaxPool2d`] | max-pool ([`MaxPool2dDesc`]: any window up to 64x64, a stride per axis); padding never wins, NaN propagates |
//! | [`Bottleneck`] | 1x1 reduction then KxK, fused: the reduced tensor never exists |
//! | [`PoolProjection`] | max-pool then 1x1, fused: the pooled tensor never exists |
//! | [`Inception`] | a whole GoogLeNet module, its four branches concatenated in place |
//!
//! Every convolution adds an optional bias and applies an [`Epilogue`] (ReLU, ReLU6, a clamp)
//! in registers before it stores. [`reference`](mod@reference) and [`inception_reference`] are
//! plain-loop versions of the same layers, slow and obviously right; the tests compare every ISA
//! with them.
//!
//! ## Tensors: NHWC views with a pixel stride and an offset
//!
//! incept never owns activations. A [`TensorView`] (input) or [`TensorViewMut`] (output) is a
//! description laid over your `f32` slice:
//!
//! * a shape [`Nhwc`] `(n, h, w, c)`: batch, height, width, channels, channels fastest;
//! * a *pixel stride*: the number of elements from one pixel to the next, at least `c`;
//! * an *offset*: the index of pixel `(0, 0, 0)`, channel 0.
//!
//! Element `(b, y, x, ch)` is at `offset + ((b*h + y)*w + x) * pixel_stride + ch`. A dense
//! tensor has `pixel_stride == c` and offset 0 ([`TensorView::new`]). A pixel stride wider than
//! `c` makes the view a *channel slice* of a wider tensor ([`TensorView::with_layout`],
//! [`TensorView::channels`]): an operator reads only those channels, or writes only those and
//! leaves the others untouched. That is how the branches of an Inception module (or any
//! concatenation your engine does) write side by side into one output with no copy: in the
//! example above the convolution fills channels 1..3 of a 4-channel tensor and the 9.0s in
//! channels 0 and 3 survive.
//!
//! A view checks, when it is made, that the slice is long enough for its shape, stride and
//! offset; an operator never reads or writes outside it. An input view borrows its slice
//! shared and an output view borrows it exclusively, so the borrow checker already rules out an
//! operator whose output overlaps its input.
//!
//! ## Weights: OHWI, and converting to it
//!
//! Convolution weights are OHWI, `[out][kh][kw][in]` (for a 1x1 simply `[out][in]`), with an
//! optional bias `[out]`. Weights from PyTorch or ONNX (OIHW) or TensorFlow and TFLite (HWIO)
//! convert with [`to_ohwi`]:
//!
//! ```
//! use incept::{to_ohwi, WeightLayout, WeightShape};
//!
//! // A PyTorch weight of shape [out = 1][in = 2][kh = 1][kw = 2], flattened.
//! let oihw = [1.0, 2.0, /* input channel 1: */ 3.0, 4.0];
//! let shape = WeightShape { out_channels: 1, kh: 1, kw: 2, in_channels: 2 };
//! // OHWI puts the input channels innermost: tap (0, 0) holds 1 and 3, tap (0, 1) 2 and 4.
//! assert_eq!(to_ohwi(&oihw, WeightLayout::Oihw, shape)?, [1.0, 3.0, 2.0, 4.0]);
//! # Ok::<(), incept::Error>(())
//! ```
//!
//! Operators copy the weights when they are created (into a packed layout made for their
//! microkernel, bias folded in), so your buffers may be dropped right after.
//!
//! ## Create once, run many
//!
//! An operator's constructor (`new`, or `with_options` to pass [`OpOptions`]) does all the
//! one-time work: it checks the descriptor, channel counts, weight and bias lengths and the
//! epilogue, picks the ISA and the microkernel, and packs the weights into memory the operator
//! owns. Then `run(&input, &mut output, parallelism)` may be called any number of times, on any
//! inputs of a valid shape: it checks the views against the operator (`output_shape` tells what
//! output a given input needs), then computes, without allocating (the fused operators' scratch
//! is the one exception, on a thread's first run; see below). Every check comes before the first
//! write, so a refused `run` leaves the output as it was.
//!
//! Operators are `Send + Sync`, so any number of threads may call `run` on one operator at once
//! (share it by reference or through an `Arc`). They are also `Clone`, and a clone shares the
//! packed weights rather than copying them (`shares_weights_with` tells), so handing every worker
//! of your engine its own operator costs a few pointers, not another copy of the weights.
//!
//! ## Dispatch and the ISA cap
//!
//! When an operator is created it takes the best ISA this CPU supports (detected once per
//! process; [`isa::available`] lists them): AVX-512F, else AVX2+FMA, else NEON on AArch64, else
//! portable Rust. The choice is fixed for the operator's life ([`Conv1x1::isa`] and the like
//! report it). Caps lower it:
//!
//! * the process-wide cap: the one set with [`set_max_isa`] (`None` lifts it), else the
//!   environment variable `INCEPT_MAX_ISA=scalar|avx2|avx512|neon`, read once;
//! * [`OpOptions::max_isa`], for one operator; the lower of it and the process-wide cap wins.
//!
//! A cap affects operators created after it is set, not existing ones. A cap naming an ISA the
//! CPU (or this build) does not have is an error of kind [`ErrorKind::UnsupportedIsa`], never an
//! illegal-instruction crash. Caps are how one machine tests and benchmarks every path:
//!
//! ```
//! use incept::{Conv1x1, Epilogue, Isa, OpOptions};
//!
//! let scalar = OpOptions::with_max_isa(Some(Isa::Scalar));
//! let conv = Conv1x1::with_options(2, 1, &[1.0, 1.0], None, Epilogue::None, scalar)?;
//! assert_eq!(conv.isa(), Isa::Scalar);
//! # Ok::<(), incept::Error>(())
//! ```
//!
//! ## Threading
//!
//! The last argument of `run`, [`Parallelism`], says where the work goes:
//!
//! * [`Parallelism::Sequential`]: on the calling thread only;
//! * [`Parallelism::Global`]: on rayon's global pool (or the pool the caller is already running
//!   in);
//! * [`Parallelism::Pool`]: on a `rayon::ThreadPool` your engine owns, so incept shares threads
//!   with the rest of it instead of starting its own.
//!
//! An operator cuts its output into chunks of whole pixel tiles (or whole output rows) and each
//! chunk is one task: one per thread for a single image (every task repeats halo rows and fixed
//! costs), about one image per task once each thread gets two or more. Work under about 2^18
//! multiply-adds stays on the calling thread whatever you ask, since handing it to other threads
//! would cost more than it saves. Entering a pool from outside it costs a few microseconds per
//! run; see [`Parallelism::Pool`] for running many small operators.
//!
//! ```
//! use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};
//!
//! let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
//! let conv = Conv1x1::new(16, 16, &[0.25; 16 * 16], None, Epilogue::None)?;
//! let x = vec![1.0; 32 * 32 * 16];
//! let shape = Nhwc::new(1, 32, 32, 16);
//! let (mut a, mut b) = (vec![0.0; x.len()], vec![0.0; x.len()]);
//! let input = TensorView::new(&x, shape)?;
//! conv.run(&input, &mut TensorViewMut::new(&mut a, shape)?, Parallelism::Sequential)?;
//! conv.run(&input, &mut TensorViewMut::new(&mut b, shape)?, Parallelism::Pool(&pool))?;
//! assert_eq!(a, b);
//! assert!(a.iter().all(|&v| v == 4.0));
//! # Ok::<(), incept::Error>(())
//! ```
//!
//! ## Determinism
//!
//! A task computes every output channel of its pixels, each with the whole reduction (every tap,
//! every input channel) in one accumulator: a reduction is never split between threads. So each
//! output element is summed in the same order whatever the number of threads, and the output is
//! **bit-identical** for `Sequential`, `Global` and any `Pool`, for any thread count, and
//! between runs going on at the same time. Across ISAs it is not: the SIMD kernels use fused
//! multiply-adds and sum in their own order, so their results differ from the portable path's
//! by rounding (the tests bound that difference, and see none on small-integer data).
//!
//! ## Algorithms and the accuracy policy
//!
//! Every convolution is direct by default: each output is the reference's sum of products in
//! another order, exact whenever the exact sum is representable (small integers are exact on
//! every ISA). [`OpOptions::accuracy`] = [`Accuracy::Relaxed`] lets [`ConvAlgorithm::Auto`] (the
//! default algorithm) run stride-1 3x3 and 5x5 convolutions with at least
//! [`WINOGRAD_MIN_CHANNELS`] input and output channels with Winograd F(4x4, 3x3) and
//! F(2x2, 5x5), also inside
//! [`Bottleneck`] and [`Inception`]; [`ConvAlgorithm::Winograd`] asks for it explicitly.
//! Winograd does 4 multiplies per output where the direct 3x3 does 9 (9 where the direct 5x5
//! does 25), and its error is larger: measured against an f64 reference on random data, at most
//! 1e-5 of the largest output on GoogLeNet's layers (the tests hold it below 1e-4). It stays
//! bit-identical across thread counts.
//!
//! ```
//! use incept::{Accuracy, ConvAlgorithm, Conv2d, Conv2dDesc, Epilogue, OpOptions};
//!
//! let desc = Conv2dDesc::same(32, 32, 3, Epilogue::Relu);
//! let weights = vec![0.01; 32 * 9 * 32];
//! let exact = Conv2d::new(&desc, &weights, None)?;
//! assert_eq!(exact.algorithm(), ConvAlgorithm::Direct);
//! let relaxed = OpOptions { accuracy: Accuracy::Relaxed, ..OpOptions::default() };
//! let fast = Conv2d::with_options(&desc, &weights, None, relaxed)?;
//! assert_eq!(fast.algorithm(), ConvAlgorithm::Winograd);
//! # Ok::<(), incept::Error>(())
//! ```
//!
//! ## Scratch memory
//!
//! [`Conv1x1`], [`MaxPool2d`] and the direct [`Conv2d`] need no scratch: they read the input in
//! place and write the output directly, and `run` allocates nothing. A Winograd [`Conv2d`] keeps
//! its transformed tiles for a band of tile rows in a second per-thread cache like the one
//! below (the fused operators' figures include it): typically up to 1 MiB, or 4 MiB when its
//! filter transforms are large enough that re-reading them per short band would cost more
//! ([`Conv2d::scratch_bytes_per_thread`]). The fused operators
//! ([`Bottleneck`], [`PoolProjection`], [`Inception`]) keep a band of a few rows of their
//! intermediate tensor per task. That band lives in an internal per-thread cache: one 64-byte
//! aligned buffer per thread, shared by every operator that runs on the thread, grown when a run
//! needs more than it holds and kept until the thread exits. So the first run on a thread may
//! allocate, and later runs of the same or smaller sizes do not; with a long-lived pool (rayon's
//! global pool or yours) steady-state runs allocate nothing. There is no caller-provided
//! workspace.
//!
//! Each fused operator reports how much a thread needs: [`Bottleneck::scratch_bytes_per_thread`],
//! [`PoolProjection::scratch_bytes_per_thread`], [`Inception::scratch_bytes_per_thread`]. The
//! band does not depend on the image height, and the total is at most that figure times the
//! threads that take part in a run. One exception: when its tasks end inside images and the
//! whole batch's reduced rows take no more than the run's threads' reduced-row bands together,
//! [`Inception`] keeps those rows in one buffer held by the calling thread (a third per-thread
//! cache, kept like the others), and its tasks keep only their pool band. The calling thread's
//! buffer may then be up to the thread count times its reduced-row band.
//!
//! ## Errors
//!
//! Every failure is an [`Error`]: an [`ErrorKind`] to match on and a message that names the field
//! and the numbers, such as `input channels 190 do not match weights' 192`. No input makes incept
//! panic, sizes that overflow or cannot fit in memory are refused before anything is allocated,
//! and a refused `run` writes nothing. [`error_catalogue`] lists every error with its test.
//!
//! ```
//! use incept::{Conv1x1, Epilogue, ErrorKind};
//!
//! // Two output channels of three inputs need six weights, not five.
//! let err = Conv1x1::new(3, 2, &[0.0; 5], None, Epilogue::None).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
//! assert!(err.message().contains("needs 6"));
//! ```
//!
//! ## Crate features and the kernels
//!
//! * `capi`: the C ABI, in the module `capi` (opaque handles, status codes, the header
//!   `include/incept.h`), for `libincept.so` and `libincept.a`.
//! * `peers`: benchmark peers only, not part of the API.
//!
//! The microkernels themselves, with their contracts and a safe bounds-checked entry point, are
//! the `no_std` crate `incept-kernels`, for engines that want to drive them directly.
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
    MaxPool2d, MaxPool2dDesc, OpOptions, Padding, PoolProjection, PoolSchedule, MAX_KERNEL,
    MAX_POOL_KERNEL, WINOGRAD_MIN_CHANNELS,
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
