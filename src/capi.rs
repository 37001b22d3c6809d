//! The C ABI (feature `capi`): opaque handles for every operator, plain `#[repr(C)]` descriptors,
//! status codes and a thread-local error message. `include/incept.h` is generated from this file
//! by cbindgen (see `cbindgen.toml`); the README's "C and C++" section shows how to link it.
//!
//! Rules that hold at every entry point:
//! * No panic crosses the boundary: each function runs under `catch_unwind` and reports a panic
//!   as `INCEPT_PANIC` (with `panic = "abort"` builds a panic aborts instead).
//! * Every pointer is checked for NULL and alignment, every length for overflow, and every tensor
//!   against its length (as `TensorView::with_layout` does) before a slice is formed. An
//!   operator's input and output must not overlap in memory (`INCEPT_OVERLAP`): Rust's borrow
//!   rules cannot check that for a C caller, so it is checked here.
//! * Handles are not pointers to memory but ids into a registry of live operators, so a NULL,
//!   destroyed, never-created or wrong-kind handle is reported (`INCEPT_INVALID_HANDLE`) rather
//!   than dereferenced; ids are never reused. A run holds a reference to the operator, so even a
//!   destroy racing with a run is memory-safe (the operator is freed when the run ends).
//!
//! Input types are plain integers and floats (no Rust enums), so no bit pattern a C caller
//! passes is undefined behaviour.
//!
//! # Using it from C
//!
//! The model is the Rust API's (see the crate docs): describe an operator with a plain struct,
//! create a handle once (this validates the descriptor and packs the weights, which the caller
//! may free afterwards), run it any number of times on `incept_tensor` / `incept_tensor_mut`
//! descriptions of your own buffers, destroy it once. Every call returns an `incept_status`; on
//! anything but `INCEPT_OK`, `incept_last_error()` says what was wrong, for the calling thread.
//!
//! ```c
//! #include <stdio.h>
//! #include "incept.h"
//!
//! int main(void) {
//!   /* 1x1 convolution, 3 -> 2 channels, bias + ReLU, on a 2x2 image. */
//!   const float weights[2 * 3] = {1, 1, 1, /* out 1: */ 0, -1, 0}; /* OHWI: [out][in] */
//!   const float bias[2] = {0.5f, 0};
//!   const float input[2 * 2 * 3] = {1, 2, 3, 0, 1, 0, -1, 0, 0, 2, 2, 2};
//!   float output[2 * 2 * 2];
//!
//!   incept_conv1x1_desc desc = {.in_channels = 3, .out_channels = 2,
//!                               .epilogue = {.kind = INCEPT_EPILOGUE_RELU}};
//!   incept_conv_params params = {weights, 2 * 3, bias, 2};
//!   incept_conv1x1 *conv = NULL;
//!   if (incept_conv1x1_create(&desc, &params, &conv) != INCEPT_OK) {
//!     fprintf(stderr, "create: %s\n", incept_last_error());
//!     return 1;
//!   }
//!
//!   /* pixel_stride 0 means dense; a wider stride and an offset select a channel slice. */
//!   incept_tensor x = {input, 12, .n = 1, .h = 2, .w = 2, .c = 3};
//!   incept_tensor_mut y = {output, 8, .n = 1, .h = 2, .w = 2, .c = 2};
//!   /* threads: 0 = rayon's global pool, 1 = this thread, n = a pool of n threads in the handle. */
//!   if (incept_conv1x1_run(conv, &x, &y, 1) != INCEPT_OK) {
//!     fprintf(stderr, "run: %s\n", incept_last_error());
//!   }
//!   incept_conv1x1_destroy(conv);
//!   return 0;
//! }
//! ```
//!
//! Any number of threads may run one handle at once, and the result is bit-identical for every
//! `threads`. `examples/c/inception.c` runs a whole Inception module this way and checks it
//! against a C reference; the README shows how to link `libincept.a` or `libincept.so` from a
//! Makefile or CMake.
//!
//! The same calls work from Rust, which is how `tests/capi.rs` tests them:
//!
//! ```
//! use incept::capi::*;
//!
//! let weights = [1.0f32, 1.0, 1.0, 0.0, -1.0, 0.0];
//! let bias = [0.5f32, 0.0];
//! let input = [1.0f32, 2.0, 3.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 2.0, 2.0, 2.0];
//! let mut output = [0.0f32; 8];
//! let desc = incept_conv1x1_desc {
//!     in_channels: 3,
//!     out_channels: 2,
//!     epilogue: incept_epilogue { kind: INCEPT_EPILOGUE_RELU, min: 0.0, max: 0.0 },
//!     max_isa: INCEPT_ISA_AUTO,
//! };
//! let params = incept_conv_params {
//!     weights: weights.as_ptr(),
//!     weights_len: weights.len(),
//!     bias: bias.as_ptr(),
//!     bias_len: bias.len(),
//! };
//! let mut conv = std::ptr::null_mut();
//! // SAFETY: every pointer is valid for the call and the buffers' lengths are the ones given.
//! let status = unsafe { incept_conv1x1_create(&desc, &params, &mut conv) };
//! assert_eq!(status, incept_status::INCEPT_OK);
//!
//! let x = incept_tensor {
//!     data: input.as_ptr(), len: input.len(), n: 1, h: 2, w: 2, c: 3, pixel_stride: 0, offset: 0,
//! };
//! let y = incept_tensor_mut {
//!     data: output.as_mut_ptr(), len: 8, n: 1, h: 2, w: 2, c: 2, pixel_stride: 0, offset: 0,
//! };
//! // SAFETY: `x` and `y` describe live, disjoint buffers of the lengths they give, and nothing
//! // else touches them during the call.
//! let status = unsafe { incept_conv1x1_run(conv, &x, &y, 1) };
//! assert_eq!(status, incept_status::INCEPT_OK);
//! assert_eq!(output, [6.5, 0.0, 1.5, 0.0, 0.0, 0.0, 6.5, 0.0]);
//!
//! assert_eq!(incept_conv1x1_destroy(conv), incept_status::INCEPT_OK);
//! // A destroyed handle is reported, never freed twice.
//! assert_eq!(incept_conv1x1_destroy(conv), incept_status::INCEPT_INVALID_HANDLE);
//! ```
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

use crate::error::{Error, ErrorKind};
use crate::isa::Isa;
use crate::ops::{
    Accuracy, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc,
    ConvAlgorithm, ConvParams, Epilogue, Inception, InceptionConfig, InceptionWeights, MaxPool2d,
    MaxPool2dDesc, OpOptions, Padding, PoolProjection,
};
use crate::parallel::Parallelism;
use crate::tensor::{Nhwc, TensorView, TensorViewMut};

// ---------------------------------------------------------------------------------------------
// Status codes and constants
// ---------------------------------------------------------------------------------------------

/// What a call returns. `INCEPT_OK` is 0; on any other value `incept_last_error()` has a message
/// naming the field and the numbers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum incept_status {
    /// Success.
    INCEPT_OK = 0,
    /// A size, stride, offset or parameter is out of range (e.g. zero channels, misaligned pointer).
    INCEPT_INVALID_ARGUMENT = 1,
    /// Two shapes that must agree do not (e.g. input channels vs the weights').
    INCEPT_SHAPE_MISMATCH = 2,
    /// A buffer is shorter than its shape, strides and offset require.
    INCEPT_BUFFER_TOO_SMALL = 3,
    /// A size computation overflows.
    INCEPT_OVERFLOW = 4,
    /// The requested ISA is unknown or this CPU lacks it.
    INCEPT_UNSUPPORTED_ISA = 5,
    /// An internal consistency check failed (a bug in incept, reported instead of undefined behaviour).
    INCEPT_INTERNAL = 6,
    /// A required pointer is NULL.
    INCEPT_NULL_POINTER = 7,
    /// The input and output tensors overlap in memory.
    INCEPT_OVERLAP = 8,
    /// The handle is not a live handle of this operator (destroyed, never created, or another kind).
    INCEPT_INVALID_HANDLE = 9,
    /// The handle's thread pool could not be created.
    INCEPT_THREAD_POOL = 10,
    /// incept panicked (a bug); the panic was caught at the boundary.
    INCEPT_PANIC = 11,
}

use incept_status::*;

/// `incept_epilogue.kind`: store the sums as they are.
pub const INCEPT_EPILOGUE_NONE: u32 = 0;
/// `incept_epilogue.kind`: `max(x, 0)`.
pub const INCEPT_EPILOGUE_RELU: u32 = 1;
/// `incept_epilogue.kind`: `min(max(x, 0), 6)`.
pub const INCEPT_EPILOGUE_RELU6: u32 = 2;
/// `incept_epilogue.kind`: `min(max(x, min), max)`.
pub const INCEPT_EPILOGUE_CLAMP: u32 = 3;

/// `max_isa` field of a descriptor: no per-operator cap (the best ISA the global cap allows).
pub const INCEPT_ISA_AUTO: u32 = 0;
/// `max_isa`: portable code.
pub const INCEPT_ISA_SCALAR: u32 = 1;
/// `max_isa`: x86-64 AVX2 + FMA.
pub const INCEPT_ISA_AVX2: u32 = 2;
/// `max_isa`: x86-64 AVX-512F.
pub const INCEPT_ISA_AVX512: u32 = 3;
/// `max_isa`: AArch64 NEON.
pub const INCEPT_ISA_NEON: u32 = 4;

/// `algorithm` field of a convolution descriptor: direct, or Winograd where `accuracy` allows
/// it and it is faster (3x3 and 5x5 at stride 1 with at least 16 input and output channels).
pub const INCEPT_ALGORITHM_AUTO: u32 = 0;
/// `algorithm`: always the direct convolution.
pub const INCEPT_ALGORITHM_DIRECT: u32 = 1;
/// `algorithm`: Winograd (F(4x4, 3x3) or F(2x2, 5x5)); creating anything but a stride-1 3x3 or
/// 5x5 convolution with it fails with `INCEPT_INVALID_ARGUMENT`.
pub const INCEPT_ALGORITHM_WINOGRAD: u32 = 2;

/// `accuracy` field of a convolution descriptor: direct sums of products only (exact whenever
/// the exact sum is representable).
pub const INCEPT_ACCURACY_EXACT: u32 = 0;
/// `accuracy`: `INCEPT_ALGORITHM_AUTO` may pick Winograd (error below 1e-4 of the largest
/// output, see the README).
pub const INCEPT_ACCURACY_RELAXED: u32 = 1;

/// Largest `threads` argument a run accepts.
pub const INCEPT_MAX_THREADS: u32 = 1024;

// ---------------------------------------------------------------------------------------------
// Plain data types
// ---------------------------------------------------------------------------------------------

/// The activation fused into an operator's store: `kind` is one of `INCEPT_EPILOGUE_*`; `min`
/// and `max` are read only for `INCEPT_EPILOGUE_CLAMP` (`min <= max`, neither NaN).
/// A zero-initialised struct means no epilogue.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct incept_epilogue {
    /// `INCEPT_EPILOGUE_NONE`, `_RELU`, `_RELU6` or `_CLAMP`.
    pub kind: u32,
    /// Lower bound of `INCEPT_EPILOGUE_CLAMP` (may be -INFINITY).
    pub min: f32,
    /// Upper bound of `INCEPT_EPILOGUE_CLAMP` (may be INFINITY).
    pub max: f32,
}

/// Zero padding on each side of the input, in pixels; each side must be less than the window
/// along it (top and bottom: its rows, left and right: its columns).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct incept_padding {
    /// Rows above.
    pub top: usize,
    /// Columns on the left.
    pub left: usize,
    /// Rows below.
    pub bottom: usize,
    /// Columns on the right.
    pub right: usize,
}

/// Weights and optional bias of one convolution, copied (packed) at creation: the caller may
/// free them afterwards. `weights` is OHWI (`[out][kh][kw][in]`; `[out][in]` for 1x1) and holds
/// exactly `weights_len` floats. `bias` holds `bias_len` = out floats, or is NULL with
/// `bias_len` 0 for no bias.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct incept_conv_params {
    /// OHWI weights.
    pub weights: *const f32,
    /// Number of floats at `weights`.
    pub weights_len: usize,
    /// Bias, one per output channel, or NULL.
    pub bias: *const f32,
    /// Number of floats at `bias` (0 when `bias` is NULL).
    pub bias_len: usize,
}

/// A read-only NHWC tensor: pixel `(b, y, x)`, channel `ch` is
/// `data[offset + ((b*h + y)*w + x) * pixel_stride + ch]`. `pixel_stride` 0 means `c` (dense);
/// a wider stride makes the tensor a channel slice of a wider one. `len` is the number of floats
/// at `data`; it must cover the last element. Every dimension must be at least 1.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct incept_tensor {
    /// The elements (only read).
    pub data: *const f32,
    /// Number of floats at `data`.
    pub len: usize,
    /// Batch.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Floats between neighbouring pixels, at least `c`; 0 means `c`.
    pub pixel_stride: usize,
    /// Index of pixel 0, channel 0.
    pub offset: usize,
}

/// A writable NHWC tensor, laid out as `incept_tensor`. Only the elements of the view are
/// written (other channels of a wider tensor are left alone). Its span (element `offset` to its
/// last element) must not overlap the input's, even where the channels would interleave
/// (INCEPT_OVERLAP); `data` and `len` may be those of a buffer the input also lies in.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct incept_tensor_mut {
    /// The elements (written).
    pub data: *mut f32,
    /// Number of floats at `data`.
    pub len: usize,
    /// Batch.
    pub n: usize,
    /// Height.
    pub h: usize,
    /// Width.
    pub w: usize,
    /// Channels.
    pub c: usize,
    /// Floats between neighbouring pixels, at least `c`; 0 means `c`.
    pub pixel_stride: usize,
    /// Index of pixel 0, channel 0.
    pub offset: usize,
}

/// A 1x1 convolution `in_channels -> out_channels`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct incept_conv1x1_desc {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Fused activation.
    pub epilogue: incept_epilogue,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
}

/// A `kernel_h x kernel_w` convolution with a stride per axis and per-side padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct incept_conv2d_desc {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel rows, 1..=16.
    pub kernel_h: usize,
    /// Kernel columns, 1..=16.
    pub kernel_w: usize,
    /// Stride down the rows, at least 1.
    pub stride_h: usize,
    /// Stride along the columns, at least 1.
    pub stride_w: usize,
    /// Zero padding: top and bottom below `kernel_h`, left and right below `kernel_w`.
    pub padding: incept_padding,
    /// Fused activation.
    pub epilogue: incept_epilogue,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
    /// `INCEPT_ALGORITHM_*` (0 = auto).
    pub algorithm: u32,
    /// `INCEPT_ACCURACY_*` (0 = exact).
    pub accuracy: u32,
}

/// A `kernel_h x kernel_w` max-pool; padded positions never win, NaN propagates.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct incept_maxpool2d_desc {
    /// Window rows, 1..=64.
    pub kernel_h: usize,
    /// Window columns, 1..=64.
    pub kernel_w: usize,
    /// Stride down the rows, at least 1.
    pub stride_h: usize,
    /// Stride along the columns, at least 1.
    pub stride_w: usize,
    /// Padding: top and bottom below `kernel_h`, left and right below `kernel_w`.
    pub padding: incept_padding,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
}

/// A fused 1x1 reduction `in_channels -> reduce_channels` followed by a `kernel x kernel`
/// convolution `reduce_channels -> out_channels`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct incept_bottleneck_desc {
    /// Input channels of the reduction.
    pub in_channels: usize,
    /// Output channels of the reduction.
    pub reduce_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// KxK kernel side, 1..=16.
    pub kernel: usize,
    /// KxK stride.
    pub stride: usize,
    /// KxK padding.
    pub padding: incept_padding,
    /// Activation after the reduction.
    pub reduce_epilogue: incept_epilogue,
    /// Activation after the KxK convolution.
    pub epilogue: incept_epilogue,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
    /// `INCEPT_ALGORITHM_*` for the KxK convolution (0 = auto).
    pub algorithm: u32,
    /// `INCEPT_ACCURACY_*` (0 = exact).
    pub accuracy: u32,
}

/// A max-pool followed by a 1x1 projection `in_channels -> out_channels`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct incept_pool_projection_desc {
    /// Pool window rows, 1..=64.
    pub pool_kernel_h: usize,
    /// Pool window columns, 1..=64.
    pub pool_kernel_w: usize,
    /// Pool stride down the rows, at least 1.
    pub pool_stride_h: usize,
    /// Pool stride along the columns, at least 1.
    pub pool_stride_w: usize,
    /// Pool padding: top and bottom below `pool_kernel_h`, left and right below `pool_kernel_w`.
    pub pool_padding: incept_padding,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the projection.
    pub out_channels: usize,
    /// Activation after the projection.
    pub epilogue: incept_epilogue,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
}

/// An Inception module's channel counts (GoogLeNet 3a: 192, 64, 96, 128, 16, 32, 32). A
/// reduction or the pool projection set to 0 is left out: the 3x3/5x5 then reads the input
/// directly, and the pool branch passes all `in_channels` pooled channels through. Output
/// channels: `c1x1 + c3x3 + c5x5 + (pool_proj ? pool_proj : in_channels)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct incept_inception_desc {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels of the 1x1 branch.
    pub c1x1: usize,
    /// Reduction before the 3x3 (0 = none).
    pub c3x3_reduce: usize,
    /// Output channels of the 3x3 branch.
    pub c3x3: usize,
    /// Reduction before the 5x5 (0 = none).
    pub c5x5_reduce: usize,
    /// Output channels of the 5x5 branch.
    pub c5x5: usize,
    /// Projection after the pool (0 = none).
    pub pool_proj: usize,
    /// Per-operator ISA cap, `INCEPT_ISA_*` (0 = none).
    pub max_isa: u32,
    /// `INCEPT_ALGORITHM_*` for the 3x3 and 5x5 (0 = auto).
    pub algorithm: u32,
    /// `INCEPT_ACCURACY_*` (0 = exact).
    pub accuracy: u32,
}

/// Weights of an Inception module (every convolution is followed by its bias and ReLU). A
/// reduction or projection the descriptor leaves out must have `weights` NULL and every length
/// 0; one it has must be given.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct incept_inception_weights {
    /// 1x1 branch, `c1x1 x in_channels`.
    pub conv1x1: incept_conv_params,
    /// 3x3 reduction, `c3x3_reduce x in_channels`.
    pub reduce3x3: incept_conv_params,
    /// 3x3, `c3x3 x 3 x 3 x (c3x3_reduce or in_channels)`.
    pub conv3x3: incept_conv_params,
    /// 5x5 reduction, `c5x5_reduce x in_channels`.
    pub reduce5x5: incept_conv_params,
    /// 5x5, `c5x5 x 5 x 5 x (c5x5_reduce or in_channels)`.
    pub conv5x5: incept_conv_params,
    /// Pool projection, `pool_proj x in_channels`.
    pub pool_proj: incept_conv_params,
}

// ---------------------------------------------------------------------------------------------
// Opaque handles
// ---------------------------------------------------------------------------------------------

/// A 1x1 convolution (opaque).
pub struct incept_conv1x1 {
    _opaque: [u8; 0],
}
/// A KHxKW convolution (opaque).
pub struct incept_conv2d {
    _opaque: [u8; 0],
}
/// A max-pool (opaque).
pub struct incept_maxpool2d {
    _opaque: [u8; 0],
}
/// A fused 1x1 -> KxK bottleneck (opaque).
pub struct incept_bottleneck {
    _opaque: [u8; 0],
}
/// A fused max-pool -> 1x1 projection (opaque).
pub struct incept_pool_projection {
    _opaque: [u8; 0],
}
/// A whole Inception module (opaque).
pub struct incept_inception {
    _opaque: [u8; 0],
}

/// An operator reachable through the C ABI.
trait Op: Send + Sync + 'static {
    /// The opaque C type of its handles.
    type CHandle;
    /// The C type name, for messages.
    const NAME: &'static str;
    fn run_views(
        &self,
        input: &TensorView<'_>,
        output: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> crate::Result<()>;
}

macro_rules! impl_op {
    ($op:ty, $handle:ty, $name:literal) => {
        impl Op for $op {
            type CHandle = $handle;
            const NAME: &'static str = $name;
            fn run_views(
                &self,
                input: &TensorView<'_>,
                output: &mut TensorViewMut<'_>,
                par: Parallelism<'_>,
            ) -> crate::Result<()> {
                self.run(input, output, par)
            }
        }
    };
}
impl_op!(Conv1x1, incept_conv1x1, "incept_conv1x1");
impl_op!(Conv2d, incept_conv2d, "incept_conv2d");
impl_op!(MaxPool2d, incept_maxpool2d, "incept_maxpool2d");
impl_op!(Bottleneck, incept_bottleneck, "incept_bottleneck");
impl_op!(
    PoolProjection,
    incept_pool_projection,
    "incept_pool_projection"
);
impl_op!(Inception, incept_inception, "incept_inception");

/// A live operator and the thread pool its runs with `threads > 1` use (created on first use).
struct Handle<T> {
    op: T,
    pool: Mutex<Option<Arc<ThreadPool>>>,
}

impl<T> Handle<T> {
    /// This handle's pool of `threads` threads, created (or replaced, if the count changed).
    fn pool(&self, threads: usize) -> Result<Arc<ThreadPool>, Failure> {
        let mut slot = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = slot.as_ref() {
            if pool.current_num_threads() == threads {
                return Ok(Arc::clone(pool));
            }
        }
        let pool = ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("incept-{i}"))
            .build()
            .map_err(|e| {
                Failure::new(
                    INCEPT_THREAD_POOL,
                    format!("could not create a pool of {threads} threads: {e}"),
                )
            })?;
        let pool = Arc::new(pool);
        *slot = Some(Arc::clone(&pool));
        Ok(pool)
    }
}

/// Live operators by handle id. Ids count up from 1 and are never reused.
struct Registry {
    next: usize,
    live: BTreeMap<usize, Arc<dyn Any + Send + Sync>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 1,
    live: BTreeMap::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // Nothing panics while the lock is held; if something did, the map is still consistent.
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

fn invalid_handle<T: Op>(id: usize) -> Failure {
    Failure::new(
        INCEPT_INVALID_HANDLE,
        format!(
            "handle {id:#x} is not a live {}: destroyed, never created, or another operator's",
            T::NAME
        ),
    )
}

/// Registers `op` and returns its handle.
fn register<T: Op>(op: T) -> Result<*mut T::CHandle, Failure> {
    let mut reg = registry();
    let id = reg.next;
    reg.next = id
        .checked_add(1)
        .ok_or_else(|| Failure::new(INCEPT_OVERFLOW, "handle ids exhausted".to_string()))?;
    let handle: Arc<dyn Any + Send + Sync> = Arc::new(Handle {
        op,
        pool: Mutex::new(None),
    });
    reg.live.insert(id, handle);
    Ok(std::ptr::without_provenance_mut(id))
}

/// The live operator behind `handle`, kept alive while the caller holds it.
fn lookup<T: Op>(handle: *const T::CHandle) -> Result<Arc<Handle<T>>, Failure> {
    let id = handle.addr();
    if id == 0 {
        return Err(Failure::new(
            INCEPT_NULL_POINTER,
            format!("{} handle is NULL", T::NAME),
        ));
    }
    let entry = registry().live.get(&id).cloned();
    entry
        .and_then(|e| e.downcast::<Handle<T>>().ok())
        .ok_or_else(|| invalid_handle::<T>(id))
}

/// Removes `handle` from the registry (NULL: nothing). The operator is freed when the last run
/// holding it ends.
fn unregister<T: Op>(handle: *mut T::CHandle) -> Result<(), Failure> {
    let id = handle.addr();
    if id == 0 {
        return Ok(());
    }
    let removed = {
        let mut reg = registry();
        match reg.live.get(&id) {
            Some(entry) if entry.is::<Handle<T>>() => reg.live.remove(&id),
            _ => return Err(invalid_handle::<T>(id)),
        }
    };
    drop(removed); // outside the lock: dropping a thread pool may take a moment
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Errors, the last-error message, the panic guard
// ---------------------------------------------------------------------------------------------

/// A failed call: its status and message.
struct Failure {
    status: incept_status,
    message: String,
}

impl Failure {
    fn new(status: incept_status, message: String) -> Self {
        Failure { status, message }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let status = match e.kind() {
            ErrorKind::InvalidArgument => INCEPT_INVALID_ARGUMENT,
            ErrorKind::ShapeMismatch => INCEPT_SHAPE_MISMATCH,
            ErrorKind::BufferTooSmall => INCEPT_BUFFER_TOO_SMALL,
            ErrorKind::Overflow => INCEPT_OVERFLOW,
            ErrorKind::UnsupportedIsa => INCEPT_UNSUPPORTED_ISA,
            ErrorKind::Internal => INCEPT_INTERNAL,
        };
        Failure::new(status, e.message().to_string())
    }
}

thread_local! {
    /// The message of the last call on this thread ("" after a success).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // A thread being torn down has no thread-locals left; the message is then dropped.
    let _ = LAST_ERROR.try_with(|cell| *cell.borrow_mut() = message);
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs an entry point's body: catches panics, records the message, returns the status.
fn entry(body: impl FnOnce() -> Result<(), Failure>) -> incept_status {
    let (status, message) = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => (INCEPT_OK, String::new()),
        Ok(Err(failure)) => (failure.status, failure.message),
        Err(payload) => (
            INCEPT_PANIC,
            format!(
                "incept panicked (a bug, please report it): {}",
                panic_message(&*payload)
            ),
        ),
    };
    set_last_error(message);
    status
}

// ---------------------------------------------------------------------------------------------
// Reading what the caller passed
// ---------------------------------------------------------------------------------------------

fn null(what: &str) -> Failure {
    Failure::new(INCEPT_NULL_POINTER, format!("{what} is NULL"))
}

fn misaligned<T>(what: &str, ptr: *const T) -> Failure {
    Failure::new(
        INCEPT_INVALID_ARGUMENT,
        format!(
            "{what} pointer {ptr:p} is not aligned to {} bytes",
            std::mem::align_of::<T>()
        ),
    )
}

/// Copies the struct at `ptr`.
///
/// # Safety
/// `ptr` is NULL or points to a readable `T`.
unsafe fn read_struct<T: Copy>(ptr: *const T, what: &str) -> Result<T, Failure> {
    if ptr.is_null() {
        return Err(null(what));
    }
    if !ptr.is_aligned() {
        return Err(misaligned(what, ptr));
    }
    // SAFETY: non-NULL and aligned (checked), readable (the caller's contract); every `T` read
    // here is plain integers, floats and pointers, for which any initialised bits are valid.
    Ok(unsafe { ptr.read() })
}

/// Checks what `slice::from_raw_parts` requires of a float buffer beyond validity of the memory.
fn check_buffer(ptr: *const f32, len: usize, what: &str) -> Result<(), Failure> {
    if ptr.is_null() {
        return Err(null(what));
    }
    if !ptr.is_aligned() {
        return Err(misaligned(what, ptr));
    }
    let fits = len
        .checked_mul(std::mem::size_of::<f32>())
        .is_some_and(|bytes| {
            bytes <= isize::MAX as usize && ptr.addr().checked_add(bytes).is_some()
        });
    if !fits {
        return Err(Failure::new(
            INCEPT_OVERFLOW,
            format!("{what} length {len} floats at {ptr:p} overflows the address space"),
        ));
    }
    Ok(())
}

/// A float buffer the caller lends for the duration of the call.
///
/// # Safety
/// If `ptr` is non-NULL it points to `len` readable floats not written during `'a`.
unsafe fn buffer<'a>(ptr: *const f32, len: usize, what: &str) -> Result<&'a [f32], Failure> {
    check_buffer(ptr, len, what)?;
    // SAFETY: non-NULL, aligned, `len * 4 <= isize::MAX` and not wrapping (checked); readable
    // and unaliased by writes for 'a (the caller's contract).
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// An optional bias: NULL with length 0 is none.
///
/// # Safety
/// As [`buffer`].
unsafe fn optional_buffer<'a>(
    ptr: *const f32,
    len: usize,
    what: &str,
) -> Result<Option<&'a [f32]>, Failure> {
    if ptr.is_null() && len == 0 {
        return Ok(None);
    }
    if ptr.is_null() {
        return Err(Failure::new(
            INCEPT_NULL_POINTER,
            format!("{what} is NULL but its length is {len}; pass length 0 for none"),
        ));
    }
    // SAFETY: the caller's contract, forwarded.
    unsafe { buffer(ptr, len, what) }.map(Some)
}

/// The weights and bias of `p`.
///
/// # Safety
/// `p.weights` / `p.bias` are NULL or point to `weights_len` / `bias_len` readable floats not
/// written during `'a`.
unsafe fn conv_params<'a>(p: &incept_conv_params, what: &str) -> Result<ConvParams<'a>, Failure> {
    // SAFETY: the caller's contract, forwarded.
    let weights = unsafe { buffer(p.weights, p.weights_len, &format!("{what} weights")) }?;
    // SAFETY: the caller's contract, forwarded.
    let bias = unsafe { optional_buffer(p.bias, p.bias_len, &format!("{what} bias")) }?;
    Ok(ConvParams { weights, bias })
}

/// Like [`conv_params`] for a convolution a module may leave out: `weights` NULL is none (then
/// every other field must be empty).
///
/// # Safety
/// As [`conv_params`].
unsafe fn optional_conv_params<'a>(
    p: &incept_conv_params,
    what: &str,
) -> Result<Option<ConvParams<'a>>, Failure> {
    if p.weights.is_null() {
        if p.weights_len != 0 || !p.bias.is_null() || p.bias_len != 0 {
            return Err(Failure::new(
                INCEPT_INVALID_ARGUMENT,
                format!(
                    "{what} weights are NULL (left out) but weights_len is {}, bias_len {} and bias {:p}; a left-out convolution has all of them empty",
                    p.weights_len, p.bias_len, p.bias
                ),
            ));
        }
        return Ok(None);
    }
    // SAFETY: the caller's contract, forwarded.
    unsafe { conv_params(p, what) }.map(Some)
}

fn epilogue(e: &incept_epilogue, what: &str) -> Result<Epilogue, Failure> {
    match e.kind {
        INCEPT_EPILOGUE_NONE => Ok(Epilogue::None),
        INCEPT_EPILOGUE_RELU => Ok(Epilogue::Relu),
        INCEPT_EPILOGUE_RELU6 => Ok(Epilogue::Relu6),
        INCEPT_EPILOGUE_CLAMP => Ok(Epilogue::Clamp {
            min: e.min,
            max: e.max,
        }),
        kind => Err(Failure::new(
            INCEPT_INVALID_ARGUMENT,
            format!("{what} kind {kind} is not an INCEPT_EPILOGUE_* value (0..=3)"),
        )),
    }
}

fn options(max_isa: u32) -> Result<OpOptions, Failure> {
    let max_isa = match max_isa {
        INCEPT_ISA_AUTO => None,
        INCEPT_ISA_SCALAR => Some(Isa::Scalar),
        INCEPT_ISA_AVX2 => Some(Isa::Avx2),
        INCEPT_ISA_AVX512 => Some(Isa::Avx512),
        INCEPT_ISA_NEON => Some(Isa::Neon),
        other => {
            return Err(Failure::new(
                INCEPT_UNSUPPORTED_ISA,
                format!("max_isa {other} is not an INCEPT_ISA_* value (0..=4)"),
            ))
        }
    };
    Ok(OpOptions::with_max_isa(max_isa))
}

/// [`options`] plus a convolution's `algorithm` and `accuracy` fields.
fn conv_options(max_isa: u32, algorithm: u32, accuracy: u32) -> Result<OpOptions, Failure> {
    let invalid = |what: &str, value: u32, names: &str, range: &str| {
        Failure::new(
            INCEPT_INVALID_ARGUMENT,
            format!("{what} {value} is not an {names} value ({range})"),
        )
    };
    let algorithm = match algorithm {
        INCEPT_ALGORITHM_AUTO => ConvAlgorithm::Auto,
        INCEPT_ALGORITHM_DIRECT => ConvAlgorithm::Direct,
        INCEPT_ALGORITHM_WINOGRAD => ConvAlgorithm::Winograd,
        other => return Err(invalid("algorithm", other, "INCEPT_ALGORITHM_*", "0..=2")),
    };
    let accuracy = match accuracy {
        INCEPT_ACCURACY_EXACT => Accuracy::Exact,
        INCEPT_ACCURACY_RELAXED => Accuracy::Relaxed,
        other => return Err(invalid("accuracy", other, "INCEPT_ACCURACY_*", "0..=1")),
    };
    Ok(OpOptions {
        algorithm,
        accuracy,
        ..options(max_isa)?
    })
}

fn padding(p: &incept_padding) -> Padding {
    Padding {
        top: p.top,
        left: p.left,
        bottom: p.bottom,
        right: p.right,
    }
}

/// A tensor descriptor's layout, with pixel stride 0 meaning dense.
#[derive(Clone, Copy)]
struct Layout {
    shape: Nhwc,
    pixel_stride: usize,
    offset: usize,
    len: usize,
}

impl Layout {
    fn new(len: usize, n: usize, h: usize, w: usize, c: usize, ps: usize, offset: usize) -> Self {
        Layout {
            shape: Nhwc::new(n, h, w, c),
            pixel_stride: if ps == 0 { c } else { ps },
            offset,
            len,
        }
    }

    /// The element range `offset..offset + span` the view covers, if the layout is valid (the
    /// conditions `TensorView::with_layout` checks).
    fn extent(&self) -> Option<std::ops::Range<usize>> {
        let s = self.shape;
        if s.n == 0 || s.h == 0 || s.w == 0 || s.c == 0 || self.pixel_stride < s.c {
            return None;
        }
        let end =
            s.n.checked_mul(s.h)
                .and_then(|p| p.checked_mul(s.w))
                .and_then(|p| (p - 1).checked_mul(self.pixel_stride))
                .and_then(|x| x.checked_add(s.c))
                .and_then(|span| self.offset.checked_add(span))?;
        (end <= self.len).then_some(self.offset..end)
    }
}

/// Byte address range of elements `range` of the buffer at `base`.
fn byte_range(base: usize, range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    // Cannot overflow: `range.end <= len` and `base + len * 4` was checked by `check_buffer`.
    let size = std::mem::size_of::<f32>();
    base + range.start * size..base + range.end * size
}

/// Forms the input and output views and calls `f` with them.
///
/// # Safety
/// `input.data` is NULL or points to `input.len` readable floats, `output.data` is NULL or points
/// to `output.len` writable floats, neither written by anyone else during the call.
unsafe fn with_views(
    input: &incept_tensor,
    output: &incept_tensor_mut,
    f: impl FnOnce(&TensorView<'_>, &mut TensorViewMut<'_>) -> crate::Result<()>,
) -> Result<(), Failure> {
    check_buffer(input.data, input.len, "input data")?;
    check_buffer(output.data, output.len, "output data")?;
    let t = input;
    let il = Layout::new(t.len, t.n, t.h, t.w, t.c, t.pixel_stride, t.offset);
    let t = output;
    let ol = Layout::new(t.len, t.n, t.h, t.w, t.c, t.pixel_stride, t.offset);
    let (Some(ie), Some(oe)) = (il.extent(), ol.extent()) else {
        // An invalid layout: let the safe API report it, forming one view at a time (the buffers
        // may overlap, so a shared and a mutable slice must never coexist).
        if il.extent().is_none() {
            // SAFETY: checked by `check_buffer`; readable (the caller's contract); no mutable
            // slice of the output exists.
            let data = unsafe { std::slice::from_raw_parts(input.data, input.len) };
            TensorView::with_layout(data, il.shape, il.pixel_stride, il.offset)?;
        } else {
            // SAFETY: checked by `check_buffer`; writable (the caller's contract); no slice of
            // the input exists.
            let data = unsafe { std::slice::from_raw_parts_mut(output.data, output.len) };
            TensorViewMut::with_layout(data, ol.shape, ol.pixel_stride, ol.offset)?;
        }
        return Err(Failure::new(
            INCEPT_INTERNAL,
            "a tensor layout refused by the C ABI was accepted by the view".to_string(),
        ));
    };
    // Only the spans are borrowed, so tensors at different offsets of one buffer are fine, but
    // the spans must be disjoint even where channels would interleave: a mutable slice may not
    // alias a shared one.
    let (ib, ob) = (
        byte_range(input.data.addr(), &ie),
        byte_range(output.data.addr(), &oe),
    );
    if ib.start < ob.end && ob.start < ib.end {
        return Err(Failure::new(
            INCEPT_OVERLAP,
            format!(
                "input bytes {:#x}..{:#x} and output bytes {:#x}..{:#x} overlap: an operator cannot write over its input",
                ib.start, ib.end, ob.start, ob.end
            ),
        ));
    }
    // SAFETY: the span is inside the `input.len` floats at `input.data` (`extent` checked it
    // against `len`; pointer, alignment and size checked by `check_buffer`), readable (the
    // caller's contract), and disjoint from the output span (checked just above).
    let x = unsafe { std::slice::from_raw_parts(input.data.add(ie.start), ie.len()) };
    // SAFETY: as for the input, writable (the caller's contract) and disjoint from the input
    // span, so this is the only reference to these floats.
    let y = unsafe { std::slice::from_raw_parts_mut(output.data.add(oe.start), oe.len()) };
    let x = TensorView::with_layout(x, il.shape, il.pixel_stride, 0)?;
    let mut y = TensorViewMut::with_layout(y, ol.shape, ol.pixel_stride, 0)?;
    f(&x, &mut y)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generic entry points
// ---------------------------------------------------------------------------------------------

/// Creates an operator with `make` and stores its handle at `out` (NULL on failure).
///
/// # Safety
/// `out` is NULL or points to a writable handle pointer.
unsafe fn create<T: Op>(
    out: *mut *mut T::CHandle,
    make: impl FnOnce() -> Result<T, Failure>,
) -> incept_status {
    entry(|| {
        if out.is_null() {
            return Err(null("out (where the handle is stored)"));
        }
        if !out.is_aligned() {
            return Err(misaligned("out", out));
        }
        // SAFETY: non-NULL and aligned (checked), writable (the caller's contract).
        unsafe { out.write(std::ptr::null_mut()) };
        let handle = register(make()?)?;
        // SAFETY: as above.
        unsafe { out.write(handle) };
        Ok(())
    })
}

/// Runs the operator behind `handle`.
///
/// # Safety
/// `input` and `output` are NULL or point to readable descriptors whose buffers satisfy
/// [`with_views`]' contract.
unsafe fn run<T: Op>(
    handle: *const T::CHandle,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    entry(|| {
        let handle = lookup::<T>(handle)?;
        // SAFETY: the caller's contract, forwarded.
        let input = unsafe { read_struct(input, "input") }?;
        // SAFETY: the caller's contract, forwarded.
        let output = unsafe { read_struct(output, "output") }?;
        if threads > INCEPT_MAX_THREADS {
            return Err(Failure::new(
                INCEPT_INVALID_ARGUMENT,
                format!("threads {threads} is above INCEPT_MAX_THREADS ({INCEPT_MAX_THREADS})"),
            ));
        }
        let pool;
        let par = match threads {
            0 => Parallelism::Global,
            1 => Parallelism::Sequential,
            n => {
                pool = handle.pool(n as usize)?;
                Parallelism::Pool(&pool)
            }
        };
        // SAFETY: the caller's contract, forwarded.
        unsafe { with_views(&input, &output, |x, y| handle.op.run_views(x, y, par)) }
    })
}

fn destroy<T: Op>(handle: *mut T::CHandle) -> incept_status {
    entry(|| unregister::<T>(handle))
}

// ---------------------------------------------------------------------------------------------
// The exported functions
// ---------------------------------------------------------------------------------------------

/// The library version, e.g. "0.2.0" (a static string).
#[unsafe(no_mangle)]
pub extern "C" fn incept_version() -> *const c_char {
    const VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => panic!("the version contains a NUL"),
        };
    VERSION.as_ptr()
}

/// The message of the last call on this thread: "" if it succeeded, else what failed, naming
/// the field and the numbers. Never NULL. Valid until the next incept call on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn incept_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|cell| cell.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Caps the ISA of operators created afterwards, process-wide: "scalar", "avx2", "avx512" or
/// "neon"; NULL, "" or "auto" removes the cap. Wins over the INCEPT_MAX_ISA environment variable.
/// An ISA this CPU lacks is INCEPT_UNSUPPORTED_ISA (the cap is then unchanged).
///
/// # Safety
/// `isa` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_set_max_isa(isa: *const c_char) -> incept_status {
    entry(|| {
        let cap = if isa.is_null() {
            None
        } else {
            // SAFETY: non-NULL and NUL-terminated (the caller's contract).
            let name = unsafe { CStr::from_ptr(isa) }.to_string_lossy();
            match name.trim() {
                "" | "auto" => None,
                name => Some(name.parse::<Isa>()?),
            }
        };
        crate::isa::set_max_isa(cap)?;
        Ok(())
    })
}

/// Creates a 1x1 convolution: validates `desc`, packs `params` (`weights_len` = out x in).
/// On success stores a handle at `*out`, else NULL. Destroy it with incept_conv1x1_destroy.
///
/// # Safety
/// Each pointer is NULL or valid: `desc` and `params` readable, their buffers readable for
/// their lengths, `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_conv1x1_create(
    desc: *const incept_conv1x1_desc,
    params: *const incept_conv_params,
    out: *mut *mut incept_conv1x1,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { conv_params(&read_struct(params, "params")?, "conv1x1") }?;
        let e = epilogue(&d.epilogue, "epilogue")?;
        let o = options(d.max_isa)?;
        Ok(Conv1x1::with_options(
            d.in_channels,
            d.out_channels,
            p.weights,
            p.bias,
            e,
            o,
        )?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs a 1x1 convolution: `output` (n x h x w x out) = epilogue(conv(input (n x h x w x in))).
/// `threads`: 0 = rayon's global pool, 1 = the calling thread, n > 1 = a pool of n threads owned
/// by the handle (created on first use, re-created if n changes). Any number of threads may run
/// one handle at once; the result is bit-identical for every `threads`. Input and output must
/// not overlap (INCEPT_OVERLAP).
///
/// # Safety
/// `input` / `output` are NULL or readable descriptors whose `data` is NULL or points to `len`
/// floats (readable / writable) that nothing else writes during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_conv1x1_run(
    handle: *const incept_conv1x1,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<Conv1x1>(handle, input, output, threads) }
}

/// Destroys a handle. NULL is a no-op. Destroy each handle exactly once and do not use it
/// afterwards: a destroyed (or otherwise unknown) handle is reported as INCEPT_INVALID_HANDLE,
/// never freed twice. Runs already in progress on other threads complete; the operator is freed
/// when the last one ends.
#[unsafe(no_mangle)]
pub extern "C" fn incept_conv1x1_destroy(handle: *mut incept_conv1x1) -> incept_status {
    destroy::<Conv1x1>(handle)
}

/// Creates a KHxKW convolution (`weights_len` = out x kernel_h x kernel_w x in, OHWI). See
/// incept_conv1x1_create.
///
/// # Safety
/// As incept_conv1x1_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_conv2d_create(
    desc: *const incept_conv2d_desc,
    params: *const incept_conv_params,
    out: *mut *mut incept_conv2d,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { conv_params(&read_struct(params, "params")?, "conv2d") }?;
        let desc = Conv2dDesc {
            in_channels: d.in_channels,
            out_channels: d.out_channels,
            kernel: [d.kernel_h, d.kernel_w],
            stride: [d.stride_h, d.stride_w],
            padding: padding(&d.padding),
            epilogue: epilogue(&d.epilogue, "epilogue")?,
        };
        Ok(Conv2d::with_options(
            &desc,
            p.weights,
            p.bias,
            conv_options(d.max_isa, d.algorithm, d.accuracy)?,
        )?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs a KHxKW convolution. Output height = (h + top + bottom - kernel_h) / stride_h + 1,
/// width (w + left + right - kernel_w) / stride_w + 1. See incept_conv1x1_run.
///
/// # Safety
/// As incept_conv1x1_run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_conv2d_run(
    handle: *const incept_conv2d,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<Conv2d>(handle, input, output, threads) }
}

/// Destroys a handle; see incept_conv1x1_destroy.
#[unsafe(no_mangle)]
pub extern "C" fn incept_conv2d_destroy(handle: *mut incept_conv2d) -> incept_status {
    destroy::<Conv2d>(handle)
}

/// Creates a max-pool. See incept_conv1x1_create.
///
/// # Safety
/// `desc` is NULL or readable; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_maxpool2d_create(
    desc: *const incept_maxpool2d_desc,
    out: *mut *mut incept_maxpool2d,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        let desc = MaxPool2dDesc {
            kernel: [d.kernel_h, d.kernel_w],
            stride: [d.stride_h, d.stride_w],
            padding: padding(&d.padding),
        };
        Ok(MaxPool2d::with_options(&desc, options(d.max_isa)?)?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs a max-pool (same channels in and out). See incept_conv1x1_run.
///
/// # Safety
/// As incept_conv1x1_run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_maxpool2d_run(
    handle: *const incept_maxpool2d,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<MaxPool2d>(handle, input, output, threads) }
}

/// Destroys a handle; see incept_conv1x1_destroy.
#[unsafe(no_mangle)]
pub extern "C" fn incept_maxpool2d_destroy(handle: *mut incept_maxpool2d) -> incept_status {
    destroy::<MaxPool2d>(handle)
}

/// Creates a fused bottleneck: `reduce` (reduce_channels x in_channels) and `conv`
/// (out x kernel x kernel x reduce_channels). See incept_conv1x1_create.
///
/// # Safety
/// As incept_conv1x1_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_bottleneck_create(
    desc: *const incept_bottleneck_desc,
    reduce: *const incept_conv_params,
    conv: *const incept_conv_params,
    out: *mut *mut incept_bottleneck,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        // SAFETY: the caller's contract, forwarded.
        let r = unsafe { conv_params(&read_struct(reduce, "reduce")?, "reduce") }?;
        // SAFETY: the caller's contract, forwarded.
        let c = unsafe { conv_params(&read_struct(conv, "conv")?, "conv") }?;
        let desc = BottleneckDesc {
            in_channels: d.in_channels,
            reduce_channels: d.reduce_channels,
            out_channels: d.out_channels,
            kernel: d.kernel,
            stride: d.stride,
            padding: padding(&d.padding),
            reduce_epilogue: epilogue(&d.reduce_epilogue, "reduce_epilogue")?,
            epilogue: epilogue(&d.epilogue, "epilogue")?,
        };
        let weights = BottleneckWeights {
            reduce: r.weights,
            reduce_bias: r.bias,
            conv: c.weights,
            conv_bias: c.bias,
        };
        Ok(Bottleneck::with_options(
            &desc,
            &weights,
            conv_options(d.max_isa, d.algorithm, d.accuracy)?,
        )?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs a fused bottleneck. See incept_conv1x1_run.
///
/// # Safety
/// As incept_conv1x1_run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_bottleneck_run(
    handle: *const incept_bottleneck,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<Bottleneck>(handle, input, output, threads) }
}

/// Destroys a handle; see incept_conv1x1_destroy.
#[unsafe(no_mangle)]
pub extern "C" fn incept_bottleneck_destroy(handle: *mut incept_bottleneck) -> incept_status {
    destroy::<Bottleneck>(handle)
}

/// Creates a fused max-pool -> 1x1 projection (`proj`: out x in). See incept_conv1x1_create.
///
/// # Safety
/// As incept_conv1x1_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_pool_projection_create(
    desc: *const incept_pool_projection_desc,
    proj: *const incept_conv_params,
    out: *mut *mut incept_pool_projection,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { conv_params(&read_struct(proj, "proj")?, "proj") }?;
        let pool = MaxPool2dDesc {
            kernel: [d.pool_kernel_h, d.pool_kernel_w],
            stride: [d.pool_stride_h, d.pool_stride_w],
            padding: padding(&d.pool_padding),
        };
        Ok(PoolProjection::with_options(
            &pool,
            d.in_channels,
            d.out_channels,
            p,
            epilogue(&d.epilogue, "epilogue")?,
            options(d.max_isa)?,
        )?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs a fused max-pool -> 1x1 projection. See incept_conv1x1_run.
///
/// # Safety
/// As incept_conv1x1_run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_pool_projection_run(
    handle: *const incept_pool_projection,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<PoolProjection>(handle, input, output, threads) }
}

/// Destroys a handle; see incept_conv1x1_destroy.
#[unsafe(no_mangle)]
pub extern "C" fn incept_pool_projection_destroy(
    handle: *mut incept_pool_projection,
) -> incept_status {
    destroy::<PoolProjection>(handle)
}

/// Creates a whole Inception module (every convolution followed by bias + ReLU). See
/// incept_conv1x1_create and incept_inception_weights.
///
/// # Safety
/// As incept_conv1x1_create.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_inception_create(
    desc: *const incept_inception_desc,
    weights: *const incept_inception_weights,
    out: *mut *mut incept_inception,
) -> incept_status {
    let make = || {
        // SAFETY: the caller's contract, forwarded.
        let d = unsafe { read_struct(desc, "desc") }?;
        // SAFETY: the caller's contract, forwarded.
        let w = unsafe { read_struct(weights, "weights") }?;
        let some = |c: usize| (c != 0).then_some(c);
        let config = InceptionConfig {
            in_channels: d.in_channels,
            c1x1: d.c1x1,
            c3x3_reduce: some(d.c3x3_reduce),
            c3x3: d.c3x3,
            c5x5_reduce: some(d.c5x5_reduce),
            c5x5: d.c5x5,
            pool_proj: some(d.pool_proj),
        };
        // SAFETY: the caller's contract, forwarded (all six conversions).
        let weights = unsafe {
            InceptionWeights {
                conv1x1: conv_params(&w.conv1x1, "conv1x1")?,
                reduce3x3: optional_conv_params(&w.reduce3x3, "reduce3x3")?,
                conv3x3: conv_params(&w.conv3x3, "conv3x3")?,
                reduce5x5: optional_conv_params(&w.reduce5x5, "reduce5x5")?,
                conv5x5: conv_params(&w.conv5x5, "conv5x5")?,
                pool_proj: optional_conv_params(&w.pool_proj, "pool_proj")?,
            }
        };
        Ok(Inception::with_options(
            &config,
            &weights,
            conv_options(d.max_isa, d.algorithm, d.accuracy)?,
        )?)
    };
    // SAFETY: the caller's contract, forwarded.
    unsafe { create(out, make) }
}

/// Runs an Inception module: `output` (n x h x w x out channels, see incept_inception_desc)
/// receives [1x1 | 3x3 | 5x5 | pool]. See incept_conv1x1_run.
///
/// # Safety
/// As incept_conv1x1_run.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn incept_inception_run(
    handle: *const incept_inception,
    input: *const incept_tensor,
    output: *const incept_tensor_mut,
    threads: u32,
) -> incept_status {
    // SAFETY: the caller's contract, forwarded.
    unsafe { run::<Inception>(handle, input, output, threads) }
}

/// Destroys a handle; see incept_conv1x1_destroy.
#[unsafe(no_mangle)]
pub extern "C" fn incept_inception_destroy(handle: *mut incept_inception) -> incept_status {
    destroy::<Inception>(handle)
}
