//! Reproducers of the bugs found by fuzzing the API (`fuzz/`, target `api_bad_input`) and by
//! reading the code the fuzzer pointed at. Each test states what the API must do. The bugs of
//! the first round were fixed in b3e851a ("Fix overflows the fuzzer found"); the tests stay as
//! regression tests. A test that fails is `#[ignore]`d with the reason until its fix lands, and
//! `api_bad_input` skips its inputs (`known_bug`; run the target with
//! `INCEPT_FUZZ_KNOWN_BUGS=1` to see them crash).
//!
//! All of them are arithmetic on sizes the API allows (a single pixel may have any pixel
//! stride; strides and the shapes given to the helpers are not bounded by a slice): `usize`
//! overflow panics in debug builds (`cargo test`), and one of them panicked in release builds
//! too.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use incept::{
    inception_reference, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d,
    Conv2dDesc, ConvParams, Epilogue, ErrorKind, Inception, InceptionConfig, InceptionWeights,
    MaxPool2d, MaxPool2dDesc, Nhwc, Padding, Parallelism, PoolProjection, TensorView,
    TensorViewMut,
};

/// A named check.
type Check<'a> = (&'a str, Box<dyn FnOnce() + 'a>);

/// Runs each named check, catching panics; fails listing every check that panicked.
fn no_panics(checks: Vec<Check<'_>>) {
    let panicked: Vec<&str> = checks
        .into_iter()
        .filter_map(|(name, check)| {
            catch_unwind(AssertUnwindSafe(check))
                .is_err()
                .then_some(name)
        })
        .collect();
    assert!(panicked.is_empty(), "panicked: {panicked:?}");
}

fn tiny_inception_weights(w: &[f32]) -> InceptionWeights<'_> {
    let p = |len: usize| ConvParams {
        weights: &w[..len],
        bias: None,
    };
    InceptionWeights {
        conv1x1: p(1),
        reduce3x3: Some(p(1)),
        conv3x3: p(9),
        reduce5x5: Some(p(1)),
        conv5x5: p(25),
        pool_proj: Some(p(1)),
    }
}

/// `stride * pixel_stride` overflowed when the stride is huge: `Conv2d::run` at
/// `src/ops/conv2d.rs:250` (`conv_rows`: `s * in_ps`), `MaxPool2d::run` in `pool_rows`
/// (`src/ops/maxpool.rs`, `s * in_ps`), `Bottleneck::run` through `conv_rows`
/// (pixel stride = reduced channels). Any stride >= 1 is valid; with an output of one pixel per
/// row and column the step is never taken, so the product need not be computed (or may
/// saturate: `run_tile` checks every address anyway).
#[test]

fn huge_stride_times_pixel_stride_overflows_in_run() {
    let x = [1.0f32, 9.0, 2.0, 9.0, 3.0, 9.0, 4.0, 9.0];
    let input = || TensorView::with_layout(&x, Nhwc::new(1, 2, 2, 1), 2, 0).unwrap();
    let conv = Conv2d::new(
        &Conv2dDesc {
            stride: [usize::MAX; 2],
            ..Conv2dDesc::same(1, 1, 1, Epilogue::None)
        },
        &[2.0],
        None,
    )
    .unwrap();
    let pool = MaxPool2d::new(&MaxPool2dDesc::square(2, usize::MAX, Padding::default())).unwrap();
    let bottleneck = Bottleneck::new(
        &BottleneckDesc {
            stride: usize::MAX,
            padding: Padding::default(),
            ..BottleneckDesc::same_relu(1, 2, 1, 1)
        },
        &BottleneckWeights {
            reduce: &[1.0, 1.0],
            reduce_bias: None,
            conv: &[1.0, 1.0],
            conv_bias: None,
        },
    )
    .unwrap();
    let run = |f: &dyn Fn(&mut TensorViewMut<'_>) -> incept::Result<()>| {
        let mut y = [0.0f32];
        f(&mut TensorViewMut::new(&mut y, Nhwc::new(1, 1, 1, 1)).unwrap()).unwrap();
        y[0]
    };
    let seq = Parallelism::Sequential;
    no_panics(vec![
        (
            "conv2d",
            Box::new(|| assert_eq!(run(&|y| conv.run(&input(), y, seq)), 2.0)),
        ),
        (
            "maxpool",
            Box::new(|| assert_eq!(run(&|y| pool.run(&input(), y, seq)), 4.0)),
        ),
        (
            "bottleneck",
            Box::new(|| assert_eq!(run(&|y| bottleneck.run(&input(), y, seq)), 2.0)),
        ),
    ]);
}

/// A one-pixel output may have any pixel stride. When the work is large enough to be split
/// (>= 2^18 multiply-adds) and the pool has several threads, `Conv1x1::run` rounds the chunk up
/// to a whole tile (MR pixels) and `for_each_output_chunk` computes `chunk * pixel_stride`
/// (`src/parallel.rs:76`): debug builds panicked on the overflow; release builds wrapped, here
/// to 0, and panicked in `par_chunks_mut(0)` ("chunk_size must not be zero").
#[test]

fn conv1x1_one_pixel_huge_output_stride_in_parallel() {
    let c = 512;
    let conv = Conv1x1::new(c, c, &vec![1.0; c * c], None, Epilogue::None).unwrap();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let x = vec![1.0f32; c];
    let mut y = vec![0.0f32; c];
    // 2^63 * MR wraps to 0 for every even MR (4, 6, 14).
    let mut out = TensorViewMut::with_layout(&mut y, Nhwc::new(1, 1, 1, c), 1 << 63, 0).unwrap();
    conv.run(
        &TensorView::new(&x, Nhwc::new(1, 1, 1, c)).unwrap(),
        &mut out,
        Parallelism::Pool(&pool),
    )
    .unwrap();
    assert!(y.iter().all(|&v| v == c as f32));
}

/// `output_shape` takes any `Nhwc`, not only a view's: `Window::output_size` added the padding
/// to the height and width unchecked (`src/ops/window.rs:90-91`). It must return the exact shape
/// when it fits (the output of a huge input is smaller than the padded input) or an
/// `ErrorKind::Overflow` error, never panic.
#[test]

fn output_shape_of_a_huge_input() {
    let huge = Nhwc::new(1, usize::MAX, usize::MAX - 1, 1);
    // Padding 1 on each side, kernel 3, stride 1: the output is exactly the input's size.
    let check = |shape: incept::Result<Nhwc>, c: usize| match shape {
        Ok(s) => assert_eq!(s, Nhwc { c, ..huge }),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Overflow, "{e}"),
    };
    let conv = Conv2d::new(&Conv2dDesc::same(1, 2, 3, Epilogue::None), &[0.0; 18], None).unwrap();
    let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION).unwrap();
    let bottleneck = Bottleneck::new(
        &BottleneckDesc::same_relu(1, 1, 2, 3),
        &BottleneckWeights {
            reduce: &[1.0],
            reduce_bias: None,
            conv: &[0.0; 18],
            conv_bias: None,
        },
    )
    .unwrap();
    let proj = PoolProjection::new(
        &MaxPool2dDesc::INCEPTION,
        1,
        2,
        ConvParams {
            weights: &[1.0, 1.0],
            bias: None,
        },
        Epilogue::None,
    )
    .unwrap();
    no_panics(vec![
        (
            "Conv2d::output_shape",
            Box::new(|| check(conv.output_shape(huge), 2)),
        ),
        (
            "MaxPool2d::output_shape",
            Box::new(|| check(pool.output_shape(huge), 1)),
        ),
        (
            "Bottleneck::output_shape",
            Box::new(|| check(bottleneck.output_shape(huge), 2)),
        ),
        (
            "PoolProjection::output_shape",
            Box::new(|| check(proj.output_shape(huge), 2)),
        ),
    ]);
}

/// The cost and scratch helpers take any shape or width: they multiplied unchecked
/// (`Conv2d::macs` at `src/ops/conv2d.rs:125`, `Inception::macs` through `Nhwc::pixels` at
/// `src/tensor.rs:34`, `scratch_bytes_per_thread` at `src/ops/bottleneck.rs:182`,
/// `src/ops/pool_proj.rs:84`, `src/ops/inception.rs:251`). They must not panic (saturate, or
/// `Err(Overflow)` where the helper returns a `Result`).
#[test]

fn cost_helpers_on_huge_shapes() {
    let conv = Conv2d::new(&Conv2dDesc::same(2, 2, 1, Epilogue::None), &[0.0; 4], None).unwrap();
    let w = [0.0f32; 25];
    let module = Inception::new(
        &InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1),
        &tiny_inception_weights(&w),
    )
    .unwrap();
    let bottleneck = Bottleneck::new(
        &BottleneckDesc::same_relu(1, 1, 1, 3),
        &BottleneckWeights {
            reduce: &[1.0],
            reduce_bias: None,
            conv: &[0.0; 9],
            conv_bias: None,
        },
    )
    .unwrap();
    let proj = PoolProjection::new(
        &MaxPool2dDesc::INCEPTION,
        1,
        1,
        ConvParams {
            weights: &[1.0],
            bias: None,
        },
        Epilogue::None,
    )
    .unwrap();
    no_panics(vec![
        (
            "Conv2d::macs",
            Box::new(|| {
                if let Ok(m) = conv.macs(Nhwc::new(usize::MAX, 1, 1, 2)) {
                    assert_eq!(m, u64::MAX, "saturated");
                }
            }),
        ),
        (
            "Inception::macs",
            Box::new(|| assert_eq!(module.macs(Nhwc::new(usize::MAX, 2, 1, 1)), u64::MAX)),
        ),
        (
            "Inception::scratch_bytes_per_thread",
            Box::new(|| {
                module.scratch_bytes_per_thread(usize::MAX);
            }),
        ),
        (
            "Bottleneck::scratch_bytes_per_thread",
            Box::new(|| {
                bottleneck.scratch_bytes_per_thread(Nhwc::new(1, 1, usize::MAX, 1));
            }),
        ),
        (
            "PoolProjection::scratch_bytes_per_thread",
            Box::new(|| {
                proj.scratch_bytes_per_thread(usize::MAX);
            }),
        ),
    ]);
}

/// `Conv2d::macs` counted valid taps one output row and column at a time
/// (`Window::valid_taps`): for a 2^40-row input it looped 2^40 times. It must answer in
/// constant time (the count has a closed form per border run).
#[test]

fn conv2d_macs_of_a_huge_image_returns_quickly() {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let conv =
            Conv2d::new(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &[0.0; 9], None).unwrap();
        let _ = tx.send(conv.macs(Nhwc::new(1, 1 << 40, 1, 1)));
    });
    // 3 taps per row except the first and last (2 each), one valid column tap.
    let want = (1u64 << 40) * 3 - 2;
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(m) => assert_eq!(m.unwrap(), want),
        Err(e) => panic!("Conv2d::macs did not return within 10 s: {e}"),
    }
}

/// `inception_reference` accepted a shape with a zero height or width when the input slice is
/// empty (0 elements match), then the reference layers computed `h + pads - kernel`
/// (`kernels/src/scalar/reference.rs:91`, `Window::output_size`) and underflowed. It must return
/// an error (a zero dimension, as the views report) or an empty output, never panic.
#[test]

fn inception_reference_with_an_empty_image() {
    let w = [0.0f32; 25];
    let cfg = InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1);
    let weights = tiny_inception_weights(&w);
    no_panics(vec![
        (
            "height 0",
            Box::new(
                || match inception_reference(&cfg, &weights, &[], Nhwc::new(1, 0, 3, 1)) {
                    Ok(out) => assert!(out.is_empty()),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}"),
                },
            ),
        ),
        (
            "width 0",
            Box::new(
                || match inception_reference(&cfg, &weights, &[], Nhwc::new(2, 3, 0, 1)) {
                    Ok(out) => assert!(out.is_empty()),
                    Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}"),
                },
            ),
        ),
    ]);
}

/// Second round (fixed), in the closed form of `Window::valid_taps` (`src/ops/window.rs`):
/// `(last_full - first_full) as u64 * kernel` and the sum with the edge taps overflow `u64`
/// when the output has close to `usize::MAX` rows, so `Conv2d::macs` panics in debug builds
/// instead of saturating like the rest of `macs`. Found by `api_bad_input` (`Helpers`, op 0)
/// with `INCEPT_FUZZ_KNOWN_BUGS=1`.
#[test]
fn conv2d_macs_of_a_huge_image_saturates() {
    let conv = Conv2d::new(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &[0.0; 9], None).unwrap();
    no_panics(vec![
        (
            "rows",
            Box::new(|| {
                let m = conv.macs(Nhwc::new(1, usize::MAX - 2, 1, 1)).unwrap();
                assert_eq!(m, u64::MAX, "saturated");
            }),
        ),
        (
            "columns",
            Box::new(|| {
                let m = conv.macs(Nhwc::new(1, 1, usize::MAX - 2, 1)).unwrap();
                assert_eq!(m, u64::MAX, "saturated");
            }),
        ),
    ]);
}
