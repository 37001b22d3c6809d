//! Max-pool and the fused pool -> 1x1 projection against the reference, on every ISA: windows,
//! strides and paddings, slices, batches, NaN and infinities, thread counts.

mod common;

use common::{activations, bias, isas, weights, Mode};
use incept::reference::{self, Clamp, Layout, Window};
use incept::{
    ConvParams, Epilogue, MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, Parallelism,
    PoolProjection, TensorView, TensorViewMut,
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
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads + 1).build().unwrap();
        let par = [Parallelism::Sequential, Parallelism::Global, Parallelism::Pool(&pool)][threads];
        check_pool(&desc, n, h, w, c, &x, par);
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
    for (n, h, w, cin, cout) in [
        (1, 28, 28, 192, 32),
        (2, 5, 7, 13, 35),
        (3, 1, 1, 4, 3),
        (1, 14, 14, 480, 64),
    ] {
        let x = activations(Mode::Exact, n * h * w * cin, 3);
        let wts = weights(Mode::Exact, cout * cin, 4);
        let b = bias(Mode::Exact, cout, 5);
        let win = ref_window(&MaxPool2dDesc::INCEPTION);
        let mut pooled = vec![0.0; n * h * w * cin];
        reference::max_pool2d(
            &x,
            &Layout::dense(n, h, w, cin),
            &win,
            &mut pooled,
            &Layout::dense(n, h, w, cin),
        );
        let mut want = vec![0.0; n * h * w * cout];
        let relu = Clamp {
            min: 0.0,
            max: f32::INFINITY,
        };
        reference::conv2d(
            &pooled,
            &Layout::dense(n, h, w, cin),
            &wts,
            Some(&b),
            &Window::square(1, 1, 0),
            relu,
            &mut want,
            &Layout::dense(n, h, w, cout),
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for isa in isas() {
            let op = PoolProjection::with_options(
                &MaxPool2dDesc::INCEPTION,
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
                    &mut TensorViewMut::new(&mut got, Nhwc::new(n, h, w, cout)).unwrap(),
                    par,
                )
                .unwrap();
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa} {par:?} {n}x{h}x{w}x{cin}->{cout}"
                );
            }
            assert!(op.scratch_bytes_per_thread(w) <= 512 * 1024);
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
