//! Max-pool and the fused pool -> 1x1 projection against the reference, on every ISA: windows,
//! strides and paddings, slices, batches, NaN and infinities, thread counts.

mod common;

use common::{activations, bias, isas, thread_pool, weights, Mode, Rng, Spec, OUTPUT_SENTINEL};
use incept::reference::{self, Clamp, Layout, Window};
use incept::{
    ConvParams, Epilogue, Isa, MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, Parallelism,
    PoolProjection, PoolSchedule, TensorView, TensorViewMut,
};
use proptest::prelude::*;

fn ref_window(d: &MaxPool2dDesc) -> Window {
    let p = d.padding;
    Window {
        kh: d.kernel[0],
        kw: d.kernel[1],
        stride_h: d.stride[0],
        stride_w: d.stride[1],
        pad_top: p.top,
        pad_left: p.left,
        pad_bottom: p.bottom,
        pad_right: p.right,
    }
}

/// Pools `x` (dense n x h x w x c) on every ISA into channels `2..2+c` of a wider output and
/// compares with the reference: bit for bit, except that any NaN matches any NaN.
fn check_pool(
    desc: &MaxPool2dDesc,
    n: usize,
    h: usize,
    w: usize,
    c: usize,
    x: &[f32],
    par: Parallelism<'_>,
) {
    let win = ref_window(desc);
    let (oh, ow) = win.output_size(h, w);
    let wide = c + 3;
    let out_layout = Layout {
        n,
        h: oh,
        w: ow,
        c,
        pixel_stride: wide,
        offset: 2,
    };
    let mut want = vec![7.25; n * oh * ow * wide];
    reference::max_pool2d(x, &Layout::dense(n, h, w, c), &win, &mut want, &out_layout);
    for isa in isas() {
        let pool = MaxPool2d::with_options(desc, OpOptions::with_max_isa(Some(isa))).unwrap();
        let mut got = vec![7.25; want.len()];
        let input = TensorView::new(x, Nhwc::new(n, h, w, c)).unwrap();
        let mut output =
            TensorViewMut::with_layout(&mut got, Nhwc::new(n, oh, ow, c), wide, 2).unwrap();
        pool.run(&input, &mut output, par).unwrap();
        for (i, (g, e)) in got.iter().zip(&want).enumerate() {
            assert!(
                g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                "{isa} {desc:?} {n}x{h}x{w}x{c}: element {i}: got {g}, want {e}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn maxpool_matches_the_reference(
        kh in 1usize..=5, kw in 1usize..=5, sh in 1usize..=3, sw in 1usize..=3, square in any::<bool>(),
        pads in (0usize..5, 0usize..5, 0usize..5, 0usize..5),
        n in 1usize..=2, h in 1usize..=9, w in 1usize..=30, c in 1usize..=70, seed in any::<u64>(), threads in 0usize..3,
    ) {
        // Half the cases square (the common pools), half any rectangle.
        let (kw, sw) = if square { (kh, sh) } else { (kw, sw) };
        let padding = Padding { top: pads.0 % kh, left: pads.1 % kw, bottom: pads.2 % kh, right: pads.3 % kw };
        let (h, w) = (h.max(kh.saturating_sub(padding.top + padding.bottom)), w.max(kw.saturating_sub(padding.left + padding.right)));
        let desc = MaxPool2dDesc { kernel: [kh, kw], stride: [sh, sw], padding };
        let x = activations(Mode::Random, n * h * w * c, seed);
        let pool = thread_pool(threads + 1);
        let par = [Parallelism::Sequential, Parallelism::Global, Parallelism::Pool(&pool)][threads];
        check_pool(&desc, n, h, w, c, &x, par);
    }
}

/// Windows as long as the limit along one axis and one pixel across, with the most padding
/// each axis allows, and strides from 1 to past the input.
#[test]
fn wide_and_tall_windows() {
    let (n, h, w, c) = (1, 5, 70, 21);
    let x = activations(Mode::Random, n * h * w * c, 11);
    let xt = activations(Mode::Random, n * w * h * c, 12);
    for stride in [1, 3, 1000] {
        let wide = MaxPool2dDesc {
            kernel: [1, 64],
            stride: [1, stride],
            padding: Padding {
                top: 0,
                left: 63,
                bottom: 0,
                right: 63,
            },
        };
        check_pool(&wide, n, h, w, c, &x, Parallelism::Sequential);
        let tall = MaxPool2dDesc {
            kernel: [64, 1],
            stride: [stride, 1],
            padding: Padding {
                top: 63,
                left: 0,
                bottom: 63,
                right: 0,
            },
        };
        check_pool(&tall, n, w, h, c, &xt, Parallelism::Global);
    }
}

#[test]
fn inception_pool_with_nan_and_infinities() {
    let (n, h, w, c) = (2, 28, 28, 192);
    let mut x = activations(Mode::Random, n * h * w * c, 5);
    for (i, v) in x.iter_mut().enumerate() {
        match i % 997 {
            0 => *v = f32::NAN,
            1 => *v = f32::INFINITY,
            2 => *v = f32::NEG_INFINITY,
            _ => {}
        }
    }
    // A window that is all -inf gives -inf.
    x[..c].fill(f32::NEG_INFINITY);
    check_pool(
        &MaxPool2dDesc::INCEPTION,
        n,
        h,
        w,
        c,
        &x,
        Parallelism::Sequential,
    );
    check_pool(
        &MaxPool2dDesc::INCEPTION,
        n,
        h,
        w,
        c,
        &x,
        Parallelism::Global,
    );
    // Stride 2 3x3 (GoogLeNet's reductions between stages).
    let desc = MaxPool2dDesc::square(
        3,
        2,
        Padding {
            top: 0,
            left: 0,
            bottom: 1,
            right: 1,
        },
    );
    check_pool(&desc, n, h, w, c, &x, Parallelism::Global);
}

#[test]
fn pool_projection_matches_pool_then_conv() {
    let inception = MaxPool2dDesc::INCEPTION;
    // A rectangle with a stride per axis and uneven padding.
    let rect = MaxPool2dDesc {
        kernel: [2, 3],
        stride: [1, 2],
        padding: Padding {
            top: 1,
            left: 0,
            bottom: 0,
            right: 2,
        },
    };
    for (n, h, w, cin, cout, desc) in [
        (1, 28, 28, 192, 32, inception),
        (2, 5, 7, 13, 35, inception),
        (3, 1, 1, 4, 3, inception),
        (1, 14, 14, 480, 64, inception),
        (2, 9, 11, 20, 7, rect),
    ] {
        let x = activations(Mode::Exact, n * h * w * cin, 3);
        let wts = weights(Mode::Exact, cout * cin, 4);
        let b = bias(Mode::Exact, cout, 5);
        let win = ref_window(&desc);
        let (oh, ow) = win.output_size(h, w);
        let mut pooled = vec![0.0; n * oh * ow * cin];
        reference::max_pool2d(
            &x,
            &Layout::dense(n, h, w, cin),
            &win,
            &mut pooled,
            &Layout::dense(n, oh, ow, cin),
        );
        let mut want = vec![0.0; n * oh * ow * cout];
        let relu = Clamp {
            min: 0.0,
            max: f32::INFINITY,
        };
        reference::conv2d(
            &pooled,
            &Layout::dense(n, oh, ow, cin),
            &wts,
            Some(&b),
            &Window::square(1, 1, 0),
            relu,
            &mut want,
            &Layout::dense(n, oh, ow, cout),
        );
        let pool = thread_pool(3);
        for isa in isas() {
            let op = PoolProjection::with_options(
                &desc,
                cin,
                cout,
                ConvParams {
                    weights: &wts,
                    bias: Some(&b),
                },
                Epilogue::Relu,
                OpOptions::with_max_isa(Some(isa)),
            )
            .unwrap();
            for par in [Parallelism::Sequential, Parallelism::Pool(&pool)] {
                let mut got = vec![f32::NAN; want.len()];
                let input = TensorView::new(&x, Nhwc::new(n, h, w, cin)).unwrap();
                op.run(
                    &input,
                    &mut TensorViewMut::new(&mut got, Nhwc::new(n, oh, ow, cout)).unwrap(),
                    par,
                )
                .unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa} {par:?} {desc:?} {n}x{h}x{w}x{cin}->{cout}"
                );
            }
            assert!(op.scratch_bytes_per_thread(w) <= 512 * 1024);
        }
    }
}

/// The reference pool (3x3 "same") then 1x1 + bias + ReLU of `x` (dense), dense output.
fn pool_then_project(x: &[f32], shape: Nhwc, wts: &[f32], b: &[f32], cout: usize) -> Vec<f32> {
    let Nhwc { n, h, w, c } = shape;
    let win = ref_window(&MaxPool2dDesc::INCEPTION);
    let mut pooled = vec![0.0; x.len()];
    let dense = Layout::dense(n, h, w, c);
    reference::max_pool2d(x, &dense, &win, &mut pooled, &dense);
    let mut want = vec![0.0; n * h * w * cout];
    let relu = Clamp {
        min: 0.0,
        max: f32::INFINITY,
    };
    let out = Layout::dense(n, h, w, cout);
    let one = Window::square(1, 1, 0);
    reference::conv2d(&pooled, &dense, wts, Some(b), &one, relu, &mut want, &out);
    want
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Both schedules of the pool -> projection against the reference, bit for bit (any NaN
    /// matching any NaN), on every ISA: shapes around the 14-pixel tile, channel slices in and
    /// out, batches, thread counts, and inputs with NaNs and infinities (which send the
    /// interleaved schedule back to the exact pool) or without.
    #[test]
    fn pool_projection_schedules_match_the_reference(
        (n, h, w) in (1usize..=3, 1usize..=9, 1usize..=31),
        (groups, cout) in (1usize..=4, 1usize..=70),
        (start, extra) in (0usize..=3, 0usize..=2),
        specials in prop_oneof![Just(0usize), 1usize..=3],
        threads in 1usize..=3,
        seed in any::<u64>(),
    ) {
        let cin = 16 * groups;
        let shape = Nhwc::new(n, h, w, cin);
        let mut x = activations(Mode::Exact, n * h * w * cin, seed);
        let mut rng = Rng::new(seed);
        for s in 0..specials {
            let at = rng.below(x.len() as u64) as usize;
            x[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][s % 3];
        }
        let wts = weights(Mode::Exact, cout * cin, seed ^ 1);
        let b = bias(Mode::Exact, cout, seed ^ 2);
        let want = pool_then_project(&x, shape, &wts, &b, cout);
        let ins = Spec::slice(n, h, w, cin, start, extra).with_margins(1, 2);
        let buf = ins.buffer_with(&x, f32::NAN);
        let outs = Spec::slice(n, h, w, cout, extra, start);
        let pool = thread_pool(threads);
        for isa in isas() {
            for schedule in [PoolSchedule::Separate, PoolSchedule::Interleaved] {
                let options = OpOptions { pool_schedule: schedule, ..OpOptions::with_max_isa(Some(isa)) };
                let params = ConvParams { weights: &wts, bias: Some(&b) };
                let desc = MaxPool2dDesc::INCEPTION;
                let op = PoolProjection::with_options(&desc, cin, cout, params, Epilogue::Relu, options);
                let op = match (op, isa, schedule) {
                    (Ok(op), _, _) => op,
                    // Interleaving is AVX-512's.
                    (Err(e), Isa::Scalar | Isa::Avx2 | Isa::Neon, PoolSchedule::Interleaved) => {
                        prop_assert!(e.to_string().contains("interleaved pool schedule needs AVX-512"), "{e}");
                        continue;
                    }
                    (Err(e), _, _) => panic!("{isa} {schedule:?}: {e}"),
                };
                prop_assert_eq!(op.pool_schedule(), schedule);
                let mut got = vec![OUTPUT_SENTINEL; outs.buffer_len()];
                op.run(&ins.view(&buf), &mut outs.view_mut(&mut got), Parallelism::Pool(&pool)).unwrap();
                for (i, (g, &inside)) in got.iter().zip(&outs.mask()).enumerate() {
                    if inside {
                        let (p, ch) = outs.locate(i);
                        let e = want[p * cout + ch];
                        prop_assert!(
                            g.to_bits() == e.to_bits() || (g.is_nan() && e.is_nan()),
                            "{} {:?} {}x{}x{}x{}->{}: pixel {}, channel {}: got {}, want {}",
                            isa, schedule, n, h, w, cin, cout, p, ch, g, e
                        );
                    } else {
                        prop_assert_eq!(g.to_bits(), OUTPUT_SENTINEL.to_bits(), "element {} outside the view", i);
                    }
                }
            }
        }
    }
}

#[test]
fn interleaving_needs_a_3x3_same_pool_and_channels_in_sixteens() {
    let interleaved = OpOptions {
        pool_schedule: PoolSchedule::Interleaved,
        ..OpOptions::default()
    };
    let params = |w| ConvParams {
        weights: w,
        bias: None,
    };
    let w = [1.0; 32];
    let stride2 = MaxPool2dDesc::square(3, 2, Padding::same(3));
    for (desc, cin) in [(MaxPool2dDesc::INCEPTION, 8), (stride2, 16)] {
        let op = PoolProjection::with_options(
            &desc,
            cin,
            1,
            params(&w[..cin]),
            Epilogue::None,
            interleaved,
        );
        let message = op.unwrap_err().to_string();
        assert!(
            message.contains("interleaved pool schedule needs"),
            "{message}"
        );
        assert!(message.contains(&format!("{cin} channels")), "{message}");
        // Auto and Separate run them (separately).
        for schedule in [PoolSchedule::Auto, PoolSchedule::Separate] {
            let options = OpOptions {
                pool_schedule: schedule,
                ..OpOptions::default()
            };
            let op = PoolProjection::with_options(
                &desc,
                cin,
                1,
                params(&w[..cin]),
                Epilogue::None,
                options,
            )
            .unwrap();
            assert_eq!(op.pool_schedule(), PoolSchedule::Separate);
        }
    }
}

#[test]
fn bad_pool_descriptors_are_errors() {
    let bad = [
        MaxPool2dDesc::square(0, 1, Padding::uniform(0)),
        MaxPool2dDesc::square(3, 0, Padding::uniform(1)),
        MaxPool2dDesc::square(3, 1, Padding::uniform(3)),
        MaxPool2dDesc::square(65, 1, Padding::uniform(0)),
    ];
    for desc in bad {
        let err = MaxPool2d::new(&desc).unwrap_err();
        assert_eq!(
            err.kind(),
            incept::ErrorKind::InvalidArgument,
            "{desc:?}: {err}"
        );
    }
    // Rectangles: each side and stride checked on its own, padding against its axis.
    let rect = |kernel, stride, padding| MaxPool2dDesc {
        kernel,
        stride,
        padding,
    };
    for (desc, message) in [
        (
            rect([3, 0], [1, 1], Padding::default()),
            "maxpool kernel width 0 must be in 1..=64",
        ),
        (
            rect([65, 2], [1, 1], Padding::default()),
            "maxpool kernel height 65 must be in 1..=64",
        ),
        (
            rect([2, 3], [1, 0], Padding::default()),
            "maxpool horizontal stride is 0",
        ),
        (
            rect([1, 3], [1, 1], Padding::uniform(1)),
            "maxpool top padding 1 must be less than the kernel height 1",
        ),
        (
            rect(
                [3, 2],
                [2, 1],
                Padding {
                    right: 2,
                    ..Padding::default()
                },
            ),
            "maxpool right padding 2 must be less than the kernel width 2",
        ),
    ] {
        let err = MaxPool2d::new(&desc).unwrap_err();
        assert_eq!(err.kind(), incept::ErrorKind::InvalidArgument);
        assert!(err.to_string().contains(message), "{desc:?}: {err}");
    }
    let tall = MaxPool2d::new(&rect([5, 2], [1, 1], Padding::default())).unwrap();
    let err = tall.output_shape(Nhwc::new(1, 4, 9, 3)).unwrap_err();
    assert!(err.to_string().contains("window 5x2"), "{err}");
    assert_eq!(
        tall.output_shape(Nhwc::new(1, 5, 9, 3)).unwrap(),
        Nhwc::new(1, 1, 8, 3)
    );
    let pool = MaxPool2d::new(&MaxPool2dDesc::square(5, 1, Padding::uniform(0))).unwrap();
    let err = pool.output_shape(Nhwc::new(1, 4, 9, 3)).unwrap_err();
    assert!(
        err.to_string().contains("kernel 5") && err.to_string().contains("4x9"),
        "{err}"
    );
}
