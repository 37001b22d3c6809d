//! The C ABI called from Rust as a C program would: every operator's results equal the Rust
//! API's bit for bit, channel slices work through pixel stride and offset, and every misuse a C
//! caller can make (NULL pointers, wrong lengths, overlapping tensors, bad enums, destroyed or
//! wrong-kind handles) is a status and a message, never undefined behaviour. One handle runs
//! from four threads at once with identical results.
#![cfg(feature = "capi")]

mod common;

use std::ffi::CStr;
use std::ptr::{null, null_mut};

use common::{activations, bias, weights, Mode};
use incept::capi::*;
use incept::{
    Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc, ConvParams,
    Epilogue, Inception, InceptionConfig, InceptionWeights, MaxPool2d, MaxPool2dDesc, Nhwc,
    Padding, Parallelism, PoolProjection, TensorView, TensorViewMut,
};

use incept_status::*;

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

fn last_error() -> String {
    // SAFETY: incept_last_error never returns NULL and the string is valid until the next call
    // on this thread; it is copied at once.
    unsafe { CStr::from_ptr(incept_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// Asserts `status` and that the last error mentions `needle` (or is empty for OK).
#[track_caller]
fn expect(status: incept_status, want: incept_status, needle: &str) {
    let message = last_error();
    assert_eq!(status, want, "message: {message}");
    if want == INCEPT_OK {
        assert_eq!(message, "", "a success leaves an empty message");
    } else {
        assert!(
            message.contains(needle),
            "message {message:?} should mention {needle:?}"
        );
    }
}

fn params(w: &[f32], b: Option<&[f32]>) -> incept_conv_params {
    incept_conv_params {
        weights: w.as_ptr(),
        weights_len: w.len(),
        bias: b.map_or(null(), <[f32]>::as_ptr),
        bias_len: b.map_or(0, <[f32]>::len),
    }
}

fn absent() -> incept_conv_params {
    incept_conv_params {
        weights: null(),
        weights_len: 0,
        bias: null(),
        bias_len: 0,
    }
}

fn tensor(data: &[f32], s: Nhwc) -> incept_tensor {
    incept_tensor {
        data: data.as_ptr(),
        len: data.len(),
        n: s.n,
        h: s.h,
        w: s.w,
        c: s.c,
        pixel_stride: 0,
        offset: 0,
    }
}

fn tensor_mut(data: &mut [f32], s: Nhwc) -> incept_tensor_mut {
    incept_tensor_mut {
        data: data.as_mut_ptr(),
        len: data.len(),
        n: s.n,
        h: s.h,
        w: s.w,
        c: s.c,
        pixel_stride: 0,
        offset: 0,
    }
}

const RELU: incept_epilogue = incept_epilogue {
    kind: INCEPT_EPILOGUE_RELU,
    min: 0.0,
    max: 0.0,
};

fn pad(p: usize) -> incept_padding {
    incept_padding {
        top: p,
        left: p,
        bottom: p,
        right: p,
    }
}

/// Exact-mode data (small integers): every ISA and thread count gives the same bits.
fn exact_input(shape: Nhwc, seed: u64) -> Vec<f32> {
    activations(Mode::Exact, shape.element_count().unwrap(), seed)
}

/// A 1x1 convolution 8 -> 5 with bias and ReLU, its weights, and a handle.
struct SmallConv {
    w: Vec<f32>,
    b: Vec<f32>,
    handle: *mut incept_conv1x1,
}

const CIN: usize = 8;
const COUT: usize = 5;

fn small_desc() -> incept_conv1x1_desc {
    incept_conv1x1_desc {
        in_channels: CIN,
        out_channels: COUT,
        epilogue: RELU,
        max_isa: INCEPT_ISA_AUTO,
    }
}

fn small_conv() -> SmallConv {
    let w = weights(Mode::Exact, COUT * CIN, 1);
    let b = bias(Mode::Exact, COUT, 2);
    let mut handle = null_mut();
    // SAFETY: every pointer is valid for the call.
    let status =
        unsafe { incept_conv1x1_create(&small_desc(), &params(&w, Some(&b)), &mut handle) };
    expect(status, INCEPT_OK, "");
    assert!(!handle.is_null());
    SmallConv { w, b, handle }
}

impl Drop for SmallConv {
    fn drop(&mut self) {
        assert_eq!(incept_conv1x1_destroy(self.handle), INCEPT_OK);
    }
}

const SHAPE_IN: Nhwc = Nhwc::new(2, 3, 4, CIN);
const SHAPE_OUT: Nhwc = Nhwc::new(2, 3, 4, COUT);

// ------------------------------------------------------------------------------------------
// Results equal the Rust API's
// ------------------------------------------------------------------------------------------

#[test]
fn conv1x1_matches_rust_api_with_channel_slices() {
    let conv = small_conv();
    let rust = Conv1x1::new(CIN, COUT, &conv.w, Some(&conv.b), Epilogue::Relu).unwrap();
    // The input is channels 2..10 of a 12-channel tensor, the output channels 1..6 of a
    // 7-channel one: pixel stride and offset, as for an Inception module's concatenation.
    let (wide_in, wide_out) = (12, 7);
    let pixels = SHAPE_IN.pixels();
    let x = exact_input(Nhwc::new(2, 3, 4, wide_in), 3);
    let mut want = vec![-7.0; pixels * wide_out];
    let xv = TensorView::with_layout(&x, SHAPE_IN, wide_in, 2).unwrap();
    let mut yv = TensorViewMut::with_layout(&mut want, SHAPE_OUT, wide_out, 1).unwrap();
    rust.run(&xv, &mut yv, Parallelism::Sequential).unwrap();
    for threads in [0, 1, 2, 3] {
        let mut got = vec![-7.0; pixels * wide_out];
        let input = incept_tensor {
            pixel_stride: wide_in,
            offset: 2,
            ..tensor(&x, SHAPE_IN)
        };
        let output = incept_tensor_mut {
            pixel_stride: wide_out,
            offset: 1,
            ..tensor_mut(&mut got, SHAPE_OUT)
        };
        // SAFETY: the descriptors point into live, disjoint vectors of the stated lengths.
        let status = unsafe { incept_conv1x1_run(conv.handle, &input, &output, threads) };
        expect(status, INCEPT_OK, "");
        assert_eq!(got, want, "threads {threads}");
    }
    assert!(want.iter().any(|&v| v > 0.0) && want.contains(&-7.0));
}

/// Runs a Rust conv2d sequentially; returns the output.
fn rust_conv2d(op: &Conv2d, x: &[f32], (ishape, oshape): (Nhwc, Nhwc)) -> Vec<f32> {
    let mut out = vec![0.0; oshape.element_count().unwrap()];
    op.run(
        &TensorView::new(x, ishape).unwrap(),
        &mut TensorViewMut::new(&mut out, oshape).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    out
}

/// Creates a C conv2d, runs it on 2 threads and destroys it; returns the output.
fn c_conv2d(
    desc: &incept_conv2d_desc,
    params: &incept_conv_params,
    x: &[f32],
    (ishape, oshape): (Nhwc, Nhwc),
) -> Vec<f32> {
    let mut handle = null_mut();
    // SAFETY: valid pointers for the call.
    let status = unsafe { incept_conv2d_create(desc, params, &mut handle) };
    expect(status, INCEPT_OK, "");
    let mut got = vec![f32::NAN; oshape.element_count().unwrap()];
    // SAFETY: valid, disjoint tensors.
    let status =
        unsafe { incept_conv2d_run(handle, &tensor(x, ishape), &tensor_mut(&mut got, oshape), 2) };
    expect(status, INCEPT_OK, "");
    expect(incept_conv2d_destroy(handle), INCEPT_OK, "");
    got
}

#[test]
fn conv2d_matches_rust_api() {
    // A 3x2 kernel moving 2 rows and 1 column: swapping rows and columns would show.
    let desc = incept_conv2d_desc {
        in_channels: 6,
        out_channels: 9,
        kernel_h: 3,
        kernel_w: 2,
        stride_h: 2,
        stride_w: 1,
        padding: incept_padding {
            top: 1,
            left: 0,
            bottom: 2,
            right: 1,
        },
        epilogue: incept_epilogue {
            kind: INCEPT_EPILOGUE_CLAMP,
            min: -4.0,
            max: 30.0,
        },
        max_isa: INCEPT_ISA_AUTO,
        algorithm: INCEPT_ALGORITHM_AUTO,
        accuracy: INCEPT_ACCURACY_EXACT,
    };
    let rust_desc = Conv2dDesc {
        in_channels: 6,
        out_channels: 9,
        kernel: [3, 2],
        stride: [2, 1],
        padding: Padding {
            top: 1,
            left: 0,
            bottom: 2,
            right: 1,
        },
        epilogue: Epilogue::Clamp {
            min: -4.0,
            max: 30.0,
        },
    };
    let w = weights(Mode::Exact, 9 * 3 * 2 * 6, 4);
    let b = bias(Mode::Exact, 9, 5);
    let rust = Conv2d::new(&rust_desc, &w, Some(&b)).unwrap();
    let ishape = Nhwc::new(1, 9, 7, 6);
    let oshape = rust.output_shape(ishape).unwrap();
    let x = exact_input(ishape, 6);
    let want = rust_conv2d(&rust, &x, (ishape, oshape));
    let got = c_conv2d(&desc, &params(&w, Some(&b)), &x, (ishape, oshape));
    assert_eq!(got, want);
}

#[test]
fn maxpool_matches_rust_api() {
    // A rectangle, so that swapping rows and columns would show.
    let desc = incept_maxpool2d_desc {
        kernel_h: 3,
        kernel_w: 2,
        stride_h: 2,
        stride_w: 1,
        padding: pad(1),
        max_isa: INCEPT_ISA_AUTO,
    };
    let rust = MaxPool2d::new(&MaxPool2dDesc {
        kernel: [3, 2],
        stride: [2, 1],
        padding: Padding::uniform(1),
    })
    .unwrap();
    let ishape = Nhwc::new(2, 7, 6, 19);
    let oshape = rust.output_shape(ishape).unwrap();
    let x = activations(Mode::Random, ishape.element_count().unwrap(), 7);
    let mut want = vec![0.0; oshape.element_count().unwrap()];
    rust.run(
        &TensorView::new(&x, ishape).unwrap(),
        &mut TensorViewMut::new(&mut want, oshape).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    expect(
        unsafe { incept_maxpool2d_create(&desc, &mut handle) },
        INCEPT_OK,
        "",
    );
    let mut got = vec![f32::NAN; want.len()];
    // SAFETY: valid, disjoint tensors.
    let status = unsafe {
        incept_maxpool2d_run(
            handle,
            &tensor(&x, ishape),
            &tensor_mut(&mut got, oshape),
            1,
        )
    };
    expect(status, INCEPT_OK, "");
    assert_eq!(got, want);
    expect(incept_maxpool2d_destroy(handle), INCEPT_OK, "");
}

#[test]
fn bottleneck_matches_rust_api() {
    let (cin, r, cout, k) = (10, 6, 7, 5);
    let desc = incept_bottleneck_desc {
        in_channels: cin,
        reduce_channels: r,
        out_channels: cout,
        kernel: k,
        stride: 1,
        padding: pad(2),
        reduce_epilogue: RELU,
        epilogue: RELU,
        max_isa: INCEPT_ISA_AUTO,
        algorithm: INCEPT_ALGORITHM_AUTO,
        accuracy: INCEPT_ACCURACY_EXACT,
    };
    let (rw, rb) = (weights(Mode::Exact, r * cin, 8), bias(Mode::Exact, r, 9));
    let (cw, cb) = (
        weights(Mode::Exact, cout * k * k * r, 10),
        bias(Mode::Exact, cout, 11),
    );
    let rust = Bottleneck::new(
        &BottleneckDesc::same_relu(cin, r, cout, k),
        &BottleneckWeights {
            reduce: &rw,
            reduce_bias: Some(&rb),
            conv: &cw,
            conv_bias: Some(&cb),
        },
    )
    .unwrap();
    let ishape = Nhwc::new(1, 11, 9, cin);
    let oshape = Nhwc { c: cout, ..ishape };
    let x = exact_input(ishape, 12);
    let mut want = vec![0.0; oshape.element_count().unwrap()];
    rust.run(
        &TensorView::new(&x, ishape).unwrap(),
        &mut TensorViewMut::new(&mut want, oshape).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status = unsafe {
        incept_bottleneck_create(
            &desc,
            &params(&rw, Some(&rb)),
            &params(&cw, Some(&cb)),
            &mut handle,
        )
    };
    expect(status, INCEPT_OK, "");
    let mut got = vec![f32::NAN; want.len()];
    // SAFETY: valid, disjoint tensors.
    let status = unsafe {
        incept_bottleneck_run(
            handle,
            &tensor(&x, ishape),
            &tensor_mut(&mut got, oshape),
            0,
        )
    };
    expect(status, INCEPT_OK, "");
    assert_eq!(got, want);
    expect(incept_bottleneck_destroy(handle), INCEPT_OK, "");
}

#[test]
fn pool_projection_matches_rust_api() {
    let (cin, cout) = (12, 5);
    // A rectangle, so that swapping rows and columns would show.
    let desc = incept_pool_projection_desc {
        pool_kernel_h: 2,
        pool_kernel_w: 3,
        pool_stride_h: 1,
        pool_stride_w: 2,
        pool_padding: pad(1),
        in_channels: cin,
        out_channels: cout,
        epilogue: incept_epilogue::default(),
        max_isa: INCEPT_ISA_AUTO,
    };
    // No bias: NULL with length 0.
    let w = weights(Mode::Exact, cout * cin, 13);
    let pool = MaxPool2dDesc {
        kernel: [2, 3],
        stride: [1, 2],
        padding: Padding::uniform(1),
    };
    let rust = PoolProjection::new(
        &pool,
        cin,
        cout,
        ConvParams {
            weights: &w,
            bias: None,
        },
        Epilogue::None,
    )
    .unwrap();
    let ishape = Nhwc::new(2, 5, 6, cin);
    let oshape = rust.output_shape(ishape).unwrap();
    assert_eq!(oshape, Nhwc::new(2, 6, 3, cout));
    let x = exact_input(ishape, 14);
    let mut want = vec![0.0; oshape.element_count().unwrap()];
    rust.run(
        &TensorView::new(&x, ishape).unwrap(),
        &mut TensorViewMut::new(&mut want, oshape).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status = unsafe { incept_pool_projection_create(&desc, &params(&w, None), &mut handle) };
    expect(status, INCEPT_OK, "");
    let mut got = vec![f32::NAN; want.len()];
    // SAFETY: valid, disjoint tensors.
    let status = unsafe {
        incept_pool_projection_run(
            handle,
            &tensor(&x, ishape),
            &tensor_mut(&mut got, oshape),
            1,
        )
    };
    expect(status, INCEPT_OK, "");
    assert_eq!(got, want);
    expect(incept_pool_projection_destroy(handle), INCEPT_OK, "");
}

/// Owned weights of an Inception module, in `incept_inception_weights` order.
struct ModuleWeights {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
}

fn module_weights(cfg: &InceptionConfig) -> ModuleWeights {
    let cin = cfg.in_channels;
    let shapes = [
        (cfg.c1x1, cin),
        (cfg.c3x3_reduce.unwrap_or(0), cin),
        (cfg.c3x3, 9 * cfg.c3x3_reduce.unwrap_or(cin)),
        (cfg.c5x5_reduce.unwrap_or(0), cin),
        (cfg.c5x5, 25 * cfg.c5x5_reduce.unwrap_or(cin)),
        (cfg.pool_proj.unwrap_or(0), cin),
    ];
    ModuleWeights {
        w: (0..6)
            .map(|i| weights(Mode::Exact, shapes[i].0 * shapes[i].1, 20 + i as u64))
            .collect(),
        b: (0..6)
            .map(|i| bias(Mode::Exact, shapes[i].0, 30 + i as u64))
            .collect(),
    }
}

fn c_desc(cfg: &InceptionConfig) -> incept_inception_desc {
    incept_inception_desc {
        in_channels: cfg.in_channels,
        c1x1: cfg.c1x1,
        c3x3_reduce: cfg.c3x3_reduce.unwrap_or(0),
        c3x3: cfg.c3x3,
        c5x5_reduce: cfg.c5x5_reduce.unwrap_or(0),
        c5x5: cfg.c5x5,
        pool_proj: cfg.pool_proj.unwrap_or(0),
        max_isa: INCEPT_ISA_AUTO,
        algorithm: INCEPT_ALGORITHM_AUTO,
        accuracy: INCEPT_ACCURACY_EXACT,
    }
}

fn c_weights(cfg: &InceptionConfig, m: &ModuleWeights) -> incept_inception_weights {
    let p = |i: usize| params(&m.w[i], Some(&m.b[i]));
    let opt = |present: bool, i: usize| if present { p(i) } else { absent() };
    incept_inception_weights {
        conv1x1: p(0),
        reduce3x3: opt(cfg.c3x3_reduce.is_some(), 1),
        conv3x3: p(2),
        reduce5x5: opt(cfg.c5x5_reduce.is_some(), 3),
        conv5x5: p(4),
        pool_proj: opt(cfg.pool_proj.is_some(), 5),
    }
}

fn rust_module(cfg: &InceptionConfig, m: &ModuleWeights) -> Inception {
    rust_module_with(cfg, m, incept::OpOptions::default())
}

fn rust_module_with(
    cfg: &InceptionConfig,
    m: &ModuleWeights,
    options: incept::OpOptions,
) -> Inception {
    let p = |i: usize| ConvParams {
        weights: &m.w[i],
        bias: Some(&m.b[i]),
    };
    let weights = InceptionWeights {
        conv1x1: p(0),
        reduce3x3: cfg.c3x3_reduce.map(|_| p(1)),
        conv3x3: p(2),
        reduce5x5: cfg.c5x5_reduce.map(|_| p(3)),
        conv5x5: p(4),
        pool_proj: cfg.pool_proj.map(|_| p(5)),
    };
    Inception::with_options(cfg, &weights, options).unwrap()
}

fn module_reference(cfg: &InceptionConfig, m: &ModuleWeights, x: &[f32], shape: Nhwc) -> Vec<f32> {
    let mut out = vec![0.0; shape.pixels() * cfg.out_channels()];
    rust_module(cfg, m)
        .run(
            &TensorView::new(x, shape).unwrap(),
            &mut TensorViewMut::new(
                &mut out,
                Nhwc {
                    c: cfg.out_channels(),
                    ..shape
                },
            )
            .unwrap(),
            Parallelism::Sequential,
        )
        .unwrap();
    out
}

#[test]
fn inception_without_reductions_matches_rust_api() {
    let cfg = InceptionConfig {
        in_channels: 7,
        c1x1: 3,
        c3x3_reduce: None,
        c3x3: 4,
        c5x5_reduce: Some(2),
        c5x5: 5,
        pool_proj: None,
    };
    let m = module_weights(&cfg);
    let shape = Nhwc::new(2, 6, 5, cfg.in_channels);
    let oshape = Nhwc {
        c: cfg.out_channels(),
        ..shape
    };
    let x = exact_input(shape, 40);
    let want = module_reference(&cfg, &m, &x, shape);
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status =
        unsafe { incept_inception_create(&c_desc(&cfg), &c_weights(&cfg, &m), &mut handle) };
    expect(status, INCEPT_OK, "");
    let mut got = vec![f32::NAN; want.len()];
    // SAFETY: valid, disjoint tensors.
    let status = unsafe {
        incept_inception_run(handle, &tensor(&x, shape), &tensor_mut(&mut got, oshape), 0)
    };
    expect(status, INCEPT_OK, "");
    assert_eq!(got, want);
    expect(incept_inception_destroy(handle), INCEPT_OK, "");
}

/// `algorithm` and `accuracy` reach the operators: a forced Winograd 5x5 and a relaxed module give
/// the Rust API's bits with the same options; values outside the enums and Winograd on a 7x7
/// are refused, naming the field.
#[test]
fn algorithm_and_accuracy_match_rust_api() {
    use incept::{Accuracy, ConvAlgorithm, OpOptions};
    // A Winograd F(2x2, 5x5).
    let (cin, cout) = (16, 24);
    let desc = incept_conv2d_desc {
        in_channels: cin,
        out_channels: cout,
        kernel_h: 5,
        kernel_w: 5,
        stride_h: 1,
        stride_w: 1,
        padding: pad(2),
        epilogue: RELU,
        max_isa: INCEPT_ISA_AUTO,
        algorithm: INCEPT_ALGORITHM_WINOGRAD,
        accuracy: INCEPT_ACCURACY_EXACT,
    };
    let w = weights(Mode::Random, cout * 25 * cin, 60);
    let b = bias(Mode::Random, cout, 61);
    let winograd = OpOptions {
        algorithm: ConvAlgorithm::Winograd,
        ..OpOptions::default()
    };
    let rust = Conv2d::with_options(
        &Conv2dDesc::same(cin, cout, 5, Epilogue::Relu),
        &w,
        Some(&b),
        winograd,
    )
    .unwrap();
    assert_eq!(rust.algorithm(), ConvAlgorithm::Winograd);
    let ishape = Nhwc::new(1, 9, 11, cin);
    let oshape = Nhwc { c: cout, ..ishape };
    let x = activations(Mode::Random, ishape.element_count().unwrap(), 62);
    let want = rust_conv2d(&rust, &x, (ishape, oshape));
    let got = c_conv2d(&desc, &params(&w, Some(&b)), &x, (ishape, oshape));
    assert_eq!(got, want);

    // The relaxed module (Winograd 3x3 and 5x5 inside).
    let (_, cfg, _) = InceptionConfig::GOOGLENET[0];
    let m = module_weights(&cfg);
    let shape = Nhwc::new(1, 9, 9, cfg.in_channels);
    let oshape = Nhwc {
        c: cfg.out_channels(),
        ..shape
    };
    let x = activations(Mode::Random, shape.element_count().unwrap(), 63);
    let relaxed = OpOptions {
        accuracy: Accuracy::Relaxed,
        ..OpOptions::default()
    };
    let rust = rust_module_with(&cfg, &m, relaxed);
    let mut want = vec![0.0; oshape.element_count().unwrap()];
    rust.run(
        &TensorView::new(&x, shape).unwrap(),
        &mut TensorViewMut::new(&mut want, oshape).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    let exact = module_reference(&cfg, &m, &x, shape);
    assert_ne!(want, exact, "the relaxed module rounds differently");
    let relaxed_desc = incept_inception_desc {
        accuracy: INCEPT_ACCURACY_RELAXED,
        ..c_desc(&cfg)
    };
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status =
        unsafe { incept_inception_create(&relaxed_desc, &c_weights(&cfg, &m), &mut handle) };
    expect(status, INCEPT_OK, "");
    let mut got = vec![f32::NAN; want.len()];
    // SAFETY: valid, disjoint tensors.
    let status = unsafe {
        incept_inception_run(handle, &tensor(&x, shape), &tensor_mut(&mut got, oshape), 2)
    };
    expect(status, INCEPT_OK, "");
    assert_eq!(got, want);
    expect(incept_inception_destroy(handle), INCEPT_OK, "");

    // Refusals.
    let w7 = weights(Mode::Random, cout * 49 * cin, 64);
    for (bad, w, needle) in [
        (
            incept_conv2d_desc {
                algorithm: 3,
                ..desc
            },
            &w,
            "algorithm 3 is not an INCEPT_ALGORITHM_*",
        ),
        (
            incept_conv2d_desc {
                accuracy: 2,
                ..desc
            },
            &w,
            "accuracy 2 is not an INCEPT_ACCURACY_*",
        ),
        (
            incept_conv2d_desc {
                kernel_h: 7,
                kernel_w: 7,
                padding: pad(3),
                ..desc
            },
            &w7,
            "Winograd needs a 3x3 or 5x5 kernel",
        ),
    ] {
        let mut h = null_mut();
        // SAFETY: valid pointers; nothing is created on failure.
        let status = unsafe { incept_conv2d_create(&bad, &params(w, None), &mut h) };
        expect(status, INCEPT_INVALID_ARGUMENT, needle);
    }
}

/// A handle shared by threads (the C ABI allows concurrent runs on one handle).
#[derive(Clone, Copy)]
struct Shared(*const incept_inception);
// SAFETY: incept handles are thread-safe; the test only passes the pointer back to incept.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

#[test]
fn inception_3a_from_four_threads_matches_rust_api() {
    let cfg = InceptionConfig::GOOGLENET[0].1;
    let m = module_weights(&cfg);
    let shape = Nhwc::new(1, 28, 28, cfg.in_channels);
    let oshape = Nhwc {
        c: cfg.out_channels(),
        ..shape
    };
    let x = exact_input(shape, 41);
    let want = module_reference(&cfg, &m, &x, shape);
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status =
        unsafe { incept_inception_create(&c_desc(&cfg), &c_weights(&cfg, &m), &mut handle) };
    expect(status, INCEPT_OK, "");
    drop(m); // the weights were copied at creation
    let shared = Shared(handle);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (x, want) = (&x, &want);
            s.spawn(move || {
                let shared = shared;
                for round in 0..2 {
                    // 0 = global pool, 1 = sequential, 2 and 3 = the handle's own pool (the
                    // threads asking for 2 and 3 replace each other's pool: still safe).
                    let threads = (t + round) % 4;
                    let mut got = vec![f32::NAN; want.len()];
                    // SAFETY: a live handle; valid, disjoint tensors owned by this thread.
                    let status = unsafe {
                        incept_inception_run(
                            shared.0,
                            &tensor(x, shape),
                            &tensor_mut(&mut got, oshape),
                            threads,
                        )
                    };
                    expect(status, INCEPT_OK, "");
                    assert!(
                        got == *want,
                        "thread {t}, threads {threads}: results differ"
                    );
                }
            });
        }
    });
    expect(incept_inception_destroy(handle), INCEPT_OK, "");
}

// ------------------------------------------------------------------------------------------
// Misuse: NULL pointers
// ------------------------------------------------------------------------------------------

#[test]
fn null_pointers_at_create() {
    let w = weights(Mode::Exact, COUT * CIN, 1);
    let p = params(&w, None);
    let d = small_desc();
    let mut handle: *mut incept_conv1x1 = std::ptr::dangling_mut();
    // SAFETY: each call passes NULL where tested and valid pointers elsewhere.
    unsafe {
        expect(
            incept_conv1x1_create(null(), &p, &mut handle),
            INCEPT_NULL_POINTER,
            "desc",
        );
        assert!(handle.is_null(), "a failed create stores NULL");
        expect(
            incept_conv1x1_create(&d, null(), &mut handle),
            INCEPT_NULL_POINTER,
            "params",
        );
        expect(
            incept_conv1x1_create(&d, &p, null_mut()),
            INCEPT_NULL_POINTER,
            "out",
        );
        let no_weights = incept_conv_params {
            weights: null(),
            ..p
        };
        expect(
            incept_conv1x1_create(&d, &no_weights, &mut handle),
            INCEPT_NULL_POINTER,
            "weights",
        );
        let bias_len_without_bias = incept_conv_params {
            bias_len: COUT,
            ..p
        };
        expect(
            incept_conv1x1_create(&d, &bias_len_without_bias, &mut handle),
            INCEPT_NULL_POINTER,
            "bias",
        );
        let mut pool = std::ptr::dangling_mut::<incept_maxpool2d>();
        expect(
            incept_maxpool2d_create(null(), &mut pool),
            INCEPT_NULL_POINTER,
            "desc",
        );
        assert!(pool.is_null());
        let mut module = null_mut();
        let cfg = InceptionConfig::GOOGLENET[0].1;
        expect(
            incept_inception_create(&c_desc(&cfg), null(), &mut module),
            INCEPT_NULL_POINTER,
            "weights",
        );
    }
    assert!(handle.is_null());
}

#[test]
fn null_pointers_at_run() {
    let conv = small_conv();
    let x = exact_input(SHAPE_IN, 1);
    let mut y = vec![0.0; SHAPE_OUT.element_count().unwrap()];
    let input = tensor(&x, SHAPE_IN);
    let output = tensor_mut(&mut y, SHAPE_OUT);
    // SAFETY: each call passes NULL where tested and valid pointers elsewhere.
    unsafe {
        expect(
            incept_conv1x1_run(null(), &input, &output, 1),
            INCEPT_NULL_POINTER,
            "handle",
        );
        expect(
            incept_conv1x1_run(conv.handle, null(), &output, 1),
            INCEPT_NULL_POINTER,
            "input",
        );
        expect(
            incept_conv1x1_run(conv.handle, &input, null(), 1),
            INCEPT_NULL_POINTER,
            "output",
        );
        let no_data = incept_tensor {
            data: null(),
            ..input
        };
        expect(
            incept_conv1x1_run(conv.handle, &no_data, &output, 1),
            INCEPT_NULL_POINTER,
            "input data",
        );
        let no_data = incept_tensor_mut {
            data: null_mut(),
            ..output
        };
        expect(
            incept_conv1x1_run(conv.handle, &input, &no_data, 1),
            INCEPT_NULL_POINTER,
            "output data",
        );
        expect(
            incept_conv1x1_run(conv.handle, &input, &output, 1),
            INCEPT_OK,
            "",
        );
    }
}

// ------------------------------------------------------------------------------------------
// Misuse: sizes, enums, alignment
// ------------------------------------------------------------------------------------------

#[test]
fn wrong_sizes_and_values_at_create() {
    let w = weights(Mode::Exact, COUT * CIN, 1);
    let b = bias(Mode::Exact, COUT, 2);
    let d = small_desc();
    let mut handle = null_mut();
    // SAFETY: every pointer is valid for the lengths passed.
    unsafe {
        let short = incept_conv_params {
            weights_len: w.len() - 1,
            ..params(&w, Some(&b))
        };
        expect(
            incept_conv1x1_create(&d, &short, &mut handle),
            INCEPT_BUFFER_TOO_SMALL,
            "weights have 39 elements",
        );
        let short_bias = incept_conv_params {
            bias_len: COUT - 1,
            ..params(&w, Some(&b))
        };
        expect(
            incept_conv1x1_create(&d, &short_bias, &mut handle),
            INCEPT_SHAPE_MISMATCH,
            "bias has 4 elements",
        );
        let zero = incept_conv1x1_desc {
            in_channels: 0,
            ..d
        };
        expect(
            incept_conv1x1_create(&zero, &params(&w, None), &mut handle),
            INCEPT_INVALID_ARGUMENT,
            "at least 1",
        );
        let bad_epilogue = incept_conv1x1_desc {
            epilogue: incept_epilogue {
                kind: 99,
                min: 0.0,
                max: 0.0,
            },
            ..d
        };
        expect(
            incept_conv1x1_create(&bad_epilogue, &params(&w, None), &mut handle),
            INCEPT_INVALID_ARGUMENT,
            "kind 99",
        );
        let bad_clamp = incept_conv1x1_desc {
            epilogue: incept_epilogue {
                kind: INCEPT_EPILOGUE_CLAMP,
                min: 1.0,
                max: f32::NAN,
            },
            ..d
        };
        expect(
            incept_conv1x1_create(&bad_clamp, &params(&w, None), &mut handle),
            INCEPT_INVALID_ARGUMENT,
            "clamp",
        );
        let bad_isa = incept_conv1x1_desc { max_isa: 17, ..d };
        expect(
            incept_conv1x1_create(&bad_isa, &params(&w, None), &mut handle),
            INCEPT_UNSUPPORTED_ISA,
            "max_isa 17",
        );
        let misaligned = incept_conv_params {
            weights: w.as_ptr().cast::<u8>().wrapping_add(1).cast(),
            weights_len: w.len() - 1,
            ..params(&w, None)
        };
        expect(
            incept_conv1x1_create(&d, &misaligned, &mut handle),
            INCEPT_INVALID_ARGUMENT,
            "not aligned",
        );
        let huge = incept_conv_params {
            weights_len: usize::MAX / 2,
            ..params(&w, None)
        };
        expect(
            incept_conv1x1_create(&d, &huge, &mut handle),
            INCEPT_OVERFLOW,
            "overflows",
        );
        let conv2d = incept_conv2d_desc {
            in_channels: CIN,
            out_channels: COUT,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 0,
            stride_w: 0,
            padding: pad(1),
            epilogue: RELU,
            max_isa: 0,
            algorithm: 0,
            accuracy: 0,
        };
        let mut h2 = null_mut();
        expect(
            incept_conv2d_create(&conv2d, &params(&w, None), &mut h2),
            INCEPT_INVALID_ARGUMENT,
            "stride",
        );
        // One axis alone: each field is checked and named.
        for (desc, needle) in [
            (
                incept_conv2d_desc {
                    stride_h: 1,
                    ..conv2d
                },
                "horizontal stride is 0",
            ),
            (
                incept_conv2d_desc {
                    stride_h: 1,
                    stride_w: 1,
                    kernel_w: 0,
                    ..conv2d
                },
                "kernel width 0",
            ),
        ] {
            expect(
                incept_conv2d_create(&desc, &params(&w, None), &mut h2),
                INCEPT_INVALID_ARGUMENT,
                needle,
            );
        }
        // A module's left-out reduction with a length is a contradiction.
        let cfg = InceptionConfig::GOOGLENET[0].1;
        let m = module_weights(&cfg);
        let mut cw = c_weights(&cfg, &m);
        cw.reduce5x5 = incept_conv_params {
            weights_len: 5,
            ..absent()
        };
        let mut module = null_mut();
        expect(
            incept_inception_create(&c_desc(&cfg), &cw, &mut module),
            INCEPT_INVALID_ARGUMENT,
            "reduce5x5",
        );
        // ... and a reduction the config has must be given.
        cw.reduce5x5 = absent();
        expect(
            incept_inception_create(&c_desc(&cfg), &cw, &mut module),
            INCEPT_INVALID_ARGUMENT,
            "5x5 reduction",
        );
        assert!(handle.is_null() && h2.is_null() && module.is_null());
    }
}

#[test]
fn wrong_sizes_at_run() {
    let conv = small_conv();
    let x = exact_input(SHAPE_IN, 1);
    let mut y = vec![0.0; SHAPE_OUT.element_count().unwrap()];
    let input = tensor(&x, SHAPE_IN);
    let output = tensor_mut(&mut y, SHAPE_OUT);
    let run = |i: &incept_tensor, o: &incept_tensor_mut, threads: u32| {
        // SAFETY: the data pointers are valid for the lengths passed (or shorter lengths).
        unsafe { incept_conv1x1_run(conv.handle, i, o, threads) }
    };
    let short_in = incept_tensor {
        len: x.len() - 1,
        ..input
    };
    expect(
        run(&short_in, &output, 1),
        INCEPT_BUFFER_TOO_SMALL,
        "input slice has 191 elements",
    );
    let short_out = incept_tensor_mut {
        len: y.len() - 1,
        ..output
    };
    expect(
        run(&input, &short_out, 1),
        INCEPT_BUFFER_TOO_SMALL,
        "output slice has 119 elements",
    );
    let offset_out = incept_tensor_mut {
        offset: 1,
        ..output
    };
    expect(
        run(&input, &offset_out, 1),
        INCEPT_BUFFER_TOO_SMALL,
        "offset 1",
    );
    let zero_h = incept_tensor { h: 0, ..input };
    expect(
        run(&zero_h, &output, 1),
        INCEPT_INVALID_ARGUMENT,
        "height is 0",
    );
    let narrow = incept_tensor {
        pixel_stride: CIN - 1,
        ..input
    };
    expect(
        run(&narrow, &output, 1),
        INCEPT_INVALID_ARGUMENT,
        "pixel stride 7",
    );
    let channels = incept_tensor {
        c: CIN - 1,
        len: x.len(),
        ..input
    };
    expect(
        run(&channels, &output, 1),
        INCEPT_SHAPE_MISMATCH,
        "input channels 7",
    );
    let overflow = incept_tensor {
        n: usize::MAX / 2,
        ..input
    };
    expect(run(&overflow, &output, 1), INCEPT_OVERFLOW, "overflows");
    let misaligned = incept_tensor_mut {
        data: y.as_mut_ptr().cast::<u8>().wrapping_add(2).cast(),
        len: y.len() - 1,
        ..output
    };
    expect(
        run(&input, &misaligned, 1),
        INCEPT_INVALID_ARGUMENT,
        "not aligned",
    );
    expect(
        run(&input, &output, INCEPT_MAX_THREADS + 1),
        INCEPT_INVALID_ARGUMENT,
        "threads 1025",
    );
    expect(run(&input, &output, 1), INCEPT_OK, "");
}

// ------------------------------------------------------------------------------------------
// Misuse: overlapping input and output
// ------------------------------------------------------------------------------------------

#[test]
fn overlapping_input_and_output_are_refused() {
    let conv = small_conv();
    let pixels = SHAPE_IN.pixels();
    // One buffer: room for the input, then the output.
    let mut buf = exact_input(Nhwc::new(1, 1, 1, pixels * (CIN + COUT)), 50);
    let whole = buf.len();
    let base = buf.as_mut_ptr();
    let s = SHAPE_IN;
    let input = incept_tensor {
        data: base,
        len: whole,
        n: s.n,
        h: s.h,
        w: s.w,
        c: CIN,
        pixel_stride: 0,
        offset: 0,
    };
    let output = incept_tensor_mut {
        data: base,
        len: whole,
        n: s.n,
        h: s.h,
        w: s.w,
        c: COUT,
        pixel_stride: 0,
        offset: 0,
    };
    let run = |i: &incept_tensor, o: &incept_tensor_mut| {
        // SAFETY: every view lies inside `buf` (or is refused before any access).
        unsafe { incept_conv1x1_run(conv.handle, i, o, 1) }
    };
    // In place: refused.
    expect(run(&input, &output), INCEPT_OVERLAP, "overlap");
    // The output starting inside the input's last pixel: refused.
    let late = incept_tensor_mut {
        offset: pixels * CIN - 1,
        ..output
    };
    expect(run(&input, &late), INCEPT_OVERLAP, "overlap");
    // Interleaved channels of one tensor (input channels 0..8, output 8..13 of a 13-channel
    // tensor): no element is shared but the spans overlap, so it is refused.
    let wide = CIN + COUT;
    let input_slice = incept_tensor {
        pixel_stride: wide,
        ..input
    };
    let output_slice = incept_tensor_mut {
        pixel_stride: wide,
        offset: CIN,
        ..output
    };
    expect(run(&input_slice, &output_slice), INCEPT_OVERLAP, "overlap");
    // Disjoint parts of one buffer, passed with the same base pointer and length: accepted.
    let after = incept_tensor_mut {
        offset: pixels * CIN,
        ..output
    };
    expect(run(&input, &after), INCEPT_OK, "");
    let x = buf[..pixels * CIN].to_vec();
    let rust = Conv1x1::new(CIN, COUT, &conv.w, Some(&conv.b), Epilogue::Relu).unwrap();
    let mut want = vec![0.0; pixels * COUT];
    rust.run(
        &TensorView::new(&x, SHAPE_IN).unwrap(),
        &mut TensorViewMut::new(&mut want, SHAPE_OUT).unwrap(),
        Parallelism::Sequential,
    )
    .unwrap();
    assert_eq!(&buf[pixels * CIN..], &want[..]);
}

// ------------------------------------------------------------------------------------------
// Handles
// ------------------------------------------------------------------------------------------

#[test]
fn destroy_null_is_a_no_op_and_double_destroy_is_reported() {
    expect(incept_conv1x1_destroy(null_mut()), INCEPT_OK, "");
    expect(incept_conv2d_destroy(null_mut()), INCEPT_OK, "");
    expect(incept_maxpool2d_destroy(null_mut()), INCEPT_OK, "");
    expect(incept_bottleneck_destroy(null_mut()), INCEPT_OK, "");
    expect(incept_pool_projection_destroy(null_mut()), INCEPT_OK, "");
    expect(incept_inception_destroy(null_mut()), INCEPT_OK, "");

    let w = weights(Mode::Exact, COUT * CIN, 1);
    let mut handle = null_mut();
    // SAFETY: valid pointers.
    let status = unsafe { incept_conv1x1_create(&small_desc(), &params(&w, None), &mut handle) };
    expect(status, INCEPT_OK, "");
    // The wrong kind of handle (a C cast) is refused by every entry point and left alive.
    let as_pool: *mut incept_maxpool2d = handle.cast();
    expect(
        incept_maxpool2d_destroy(as_pool),
        INCEPT_INVALID_HANDLE,
        "not a live incept_maxpool2d",
    );
    expect(incept_conv1x1_destroy(handle), INCEPT_OK, "");
    expect(
        incept_conv1x1_destroy(handle),
        INCEPT_INVALID_HANDLE,
        "not a live incept_conv1x1",
    );
    // Using a destroyed handle is reported too.
    let x = exact_input(SHAPE_IN, 1);
    let mut y = vec![0.0; SHAPE_OUT.element_count().unwrap()];
    // SAFETY: valid tensors; the handle is checked before use.
    let status = unsafe {
        incept_conv1x1_run(
            handle,
            &tensor(&x, SHAPE_IN),
            &tensor_mut(&mut y, SHAPE_OUT),
            1,
        )
    };
    expect(status, INCEPT_INVALID_HANDLE, "destroyed");
    // A pointer incept never returned.
    let bogus: *mut incept_conv1x1 = std::ptr::without_provenance_mut(usize::MAX - 7);
    expect(
        incept_conv1x1_destroy(bogus),
        INCEPT_INVALID_HANDLE,
        "never created",
    );
}

#[test]
fn each_operator_rejects_another_operators_handle() {
    let mut pool = null_mut();
    let desc = incept_maxpool2d_desc {
        kernel_h: 2,
        kernel_w: 2,
        stride_h: 2,
        stride_w: 2,
        padding: pad(0),
        max_isa: 0,
    };
    // SAFETY: valid pointers.
    expect(
        unsafe { incept_maxpool2d_create(&desc, &mut pool) },
        INCEPT_OK,
        "",
    );
    let x = exact_input(SHAPE_IN, 1);
    let mut y = vec![0.0; SHAPE_OUT.element_count().unwrap()];
    let (i, o) = (tensor(&x, SHAPE_IN), tensor_mut(&mut y, SHAPE_OUT));
    // SAFETY: valid tensors; handles are checked before use.
    unsafe {
        let h = pool as *const ();
        for status in [
            incept_conv1x1_run(h.cast(), &i, &o, 1),
            incept_conv2d_run(h.cast(), &i, &o, 1),
            incept_bottleneck_run(h.cast(), &i, &o, 1),
            incept_pool_projection_run(h.cast(), &i, &o, 1),
            incept_inception_run(h.cast(), &i, &o, 1),
        ] {
            assert_eq!(status, INCEPT_INVALID_HANDLE);
        }
    }
    expect(incept_maxpool2d_destroy(pool), INCEPT_OK, "");
}

// ------------------------------------------------------------------------------------------
// Globals
// ------------------------------------------------------------------------------------------

#[test]
fn version_and_isa_cap() {
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(incept_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    // SAFETY: NUL-terminated literals or NULL.
    unsafe {
        expect(
            incept_set_max_isa(c"sse9".as_ptr()),
            INCEPT_UNSUPPORTED_ISA,
            "unknown ISA 'sse9'",
        );
        // Other tests run concurrently: only set caps that change nothing (the best ISA, then
        // no cap), so their operators keep the same kernels.
        let best = std::ffi::CString::new(incept::isa::best_available().name()).unwrap();
        expect(incept_set_max_isa(best.as_ptr()), INCEPT_OK, "");
        expect(incept_set_max_isa(c"auto".as_ptr()), INCEPT_OK, "");
        expect(incept_set_max_isa(null()), INCEPT_OK, "");
        if !incept::Isa::Neon.is_available() {
            expect(
                incept_set_max_isa(c"neon".as_ptr()),
                INCEPT_UNSUPPORTED_ISA,
                "not supported",
            );
        }
    }
}
