//! The fused 1x1 -> KxK bottleneck against the reference composition of two convolutions:
//! exact mode bit for bit on every ISA, any thread count, batches, strides and slices.

mod common;

use common::{activations, bias, isas, thread_pool, weights, Mode};
use incept::reference::{self, Clamp, Layout, Window};
use incept::{
    Accuracy, Bottleneck, BottleneckDesc, BottleneckWeights, Epilogue, Nhwc, OpOptions, Padding,
    Parallelism, TensorView, TensorViewMut,
};

const RELU: Clamp = Clamp {
    min: 0.0,
    max: f32::INFINITY,
};

struct Case {
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    r: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: Padding,
}

/// Runs the case on every ISA and parallelism; returns the outputs' bits for comparison.
fn check(case: &Case, mode: Mode) {
    check_with(case, mode, OpOptions::default());
}

/// [`check`] with options (the ISA cap is set per ISA). Under `Accuracy::Relaxed` (Winograd for
/// 3x3 stride 1) the bound is relative to the largest output.
fn check_with(case: &Case, mode: Mode, options: OpOptions) {
    let Case {
        n,
        h,
        w,
        cin,
        r,
        cout,
        k,
        stride,
        pad,
    } = *case;
    let seed = (n * 1000 + h * 100 + w * 10 + k) as u64;
    let x = activations(mode, n * h * w * cin, seed);
    let w1 = weights(mode, r * cin, seed + 1);
    let b1 = bias(mode, r, seed + 2);
    let w2 = weights(mode, cout * k * k * r, seed + 3);
    let b2 = bias(mode, cout, seed + 4);
    // Reference: the two layers one after the other, with a materialised intermediate.
    let mut mid = vec![0.0; n * h * w * r];
    reference::conv2d(
        &x,
        &Layout::dense(n, h, w, cin),
        &w1,
        Some(&b1),
        &Window::square(1, 1, 0),
        RELU,
        &mut mid,
        &Layout::dense(n, h, w, r),
    );
    let win = Window {
        kh: k,
        kw: k,
        stride_h: stride,
        stride_w: stride,
        pad_top: pad.top,
        pad_left: pad.left,
        pad_bottom: pad.bottom,
        pad_right: pad.right,
    };
    let (oh, ow) = win.output_size(h, w);
    // The output is channels 3.. of a wider tensor, to check slices and that nothing else is touched.
    let wide = cout + 5;
    let out_layout = Layout {
        n,
        h: oh,
        w: ow,
        c: cout,
        pixel_stride: wide,
        offset: 3,
    };
    let mut want = vec![-7.5; n * oh * ow * wide];
    reference::conv2d(
        &mid,
        &Layout::dense(n, h, w, r),
        &w2,
        Some(&b2),
        &win,
        RELU,
        &mut want,
        &out_layout,
    );

    let desc = BottleneckDesc {
        in_channels: cin,
        reduce_channels: r,
        out_channels: cout,
        kernel: k,
        stride,
        padding: pad,
        reduce_epilogue: Epilogue::Relu,
        epilogue: Epilogue::Relu,
    };
    let wts = BottleneckWeights {
        reduce: &w1,
        reduce_bias: Some(&b1),
        conv: &w2,
        conv_bias: Some(&b2),
    };
    let pools: Vec<rayon::ThreadPool> = [1, 2, 3].iter().map(|&t| thread_pool(t)).collect();
    for isa in isas() {
        let options = OpOptions {
            max_isa: Some(isa),
            ..options
        };
        let op = Bottleneck::with_options(&desc, &wts, options).unwrap();
        let mut first: Option<Vec<f32>> = None;
        let pars = [
            Parallelism::Sequential,
            Parallelism::Global,
            Parallelism::Pool(&pools[1]),
            Parallelism::Pool(&pools[2]),
        ];
        for par in pars {
            let mut got = vec![-7.5; want.len()];
            let input = TensorView::new(&x, Nhwc::new(n, h, w, cin)).unwrap();
            let mut output =
                TensorViewMut::with_layout(&mut got, Nhwc::new(n, oh, ow, cout), wide, 3).unwrap();
            op.run(&input, &mut output, par).unwrap();
            match mode {
                _ if options.accuracy == Accuracy::Relaxed => {
                    let largest = want.iter().fold(0.0f32, |m, b| m.max(b.abs()));
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(
                        worst <= 1e-4 * largest,
                        "{isa} {par:?} n{n} {h}x{w} pad {pad:?}: |error| {worst} vs largest output {largest}"
                    );
                }
                Mode::Exact => {
                    let bad = got
                        .iter()
                        .zip(&want)
                        .position(|(a, b)| a.to_bits() != b.to_bits());
                    assert!(bad.is_none(), "{isa} {par:?} n{n} {h}x{w}x{cin}->{r}->{cout} k{k} s{stride}: first mismatch at {bad:?}");
                }
                Mode::Random => {
                    let worst = got
                        .iter()
                        .zip(&want)
                        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                        .fold(0.0f32, f32::max);
                    assert!(worst < 1e-4, "{isa} {par:?}: relative error {worst}");
                }
            }
            match &first {
                None => first = Some(got),
                Some(f) => assert!(
                    f.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa}: thread counts differ"
                ),
            }
        }
    }
}

#[test]
fn googlenet_branches_are_exact_on_every_isa() {
    // inception 3a's 5x5 branch (192 -> 16 -> 32) and a reduced 3x3 branch, 28x28.
    check(
        &Case {
            n: 1,
            h: 28,
            w: 28,
            cin: 192,
            r: 16,
            cout: 32,
            k: 5,
            stride: 1,
            pad: Padding::same(5),
        },
        Mode::Exact,
    );
    check(
        &Case {
            n: 1,
            h: 28,
            w: 28,
            cin: 64,
            r: 24,
            cout: 40,
            k: 3,
            stride: 1,
            pad: Padding::same(3),
        },
        Mode::Exact,
    );
}

#[test]
fn batches_strides_and_odd_shapes() {
    let cases = [
        Case {
            n: 3,
            h: 7,
            w: 9,
            cin: 5,
            r: 3,
            cout: 17,
            k: 3,
            stride: 1,
            pad: Padding::same(3),
        },
        Case {
            n: 2,
            h: 14,
            w: 14,
            cin: 33,
            r: 16,
            cout: 35,
            k: 5,
            stride: 2,
            pad: Padding::uniform(2),
        },
        Case {
            n: 2,
            h: 5,
            w: 3,
            cin: 4,
            r: 70,
            cout: 9,
            k: 5,
            stride: 1,
            pad: Padding {
                top: 4,
                left: 0,
                bottom: 1,
                right: 3,
            },
        },
        Case {
            n: 1,
            h: 1,
            w: 1,
            cin: 3,
            r: 2,
            cout: 2,
            k: 3,
            stride: 1,
            pad: Padding::same(3),
        },
        Case {
            n: 2,
            h: 40,
            w: 6,
            cin: 8,
            r: 4,
            cout: 8,
            k: 7,
            stride: 3,
            pad: Padding::uniform(3),
        },
    ];
    for case in &cases {
        check(case, Mode::Exact);
        check(case, Mode::Random);
    }
}

#[test]
fn scratch_does_not_grow_with_the_image_height() {
    let desc = BottleneckDesc::same_relu(192, 16, 32, 5);
    let (w1, w2) = (vec![0.0; 16 * 192], vec![0.0; 32 * 25 * 16]);
    let op = Bottleneck::new(
        &desc,
        &BottleneckWeights {
            reduce: &w1,
            reduce_bias: None,
            conv: &w2,
            conv_bias: None,
        },
    )
    .unwrap();
    let small = op.scratch_bytes_per_thread(Nhwc::new(1, 28, 28, 192));
    let tall = op.scratch_bytes_per_thread(Nhwc::new(8, 2800, 28, 192));
    assert_eq!(small, tall);
    assert!(small < 256 * 1024, "{small} bytes");
}

/// Under `Accuracy::Relaxed` the 3x3 stage runs with Winograd F(4x4, 3x3) and the 5x5 stage with
/// F(2x2, 5x5) from the band of reduced rows: GoogLeNet's branch shapes at reduced channels, odd
/// sizes, uneven padding, batch 2; every ISA and thread count (bit-identical across thread
/// counts).
#[test]
fn winograd_bottlenecks_match_the_reference() {
    let options = OpOptions {
        accuracy: Accuracy::Relaxed,
        ..OpOptions::default()
    };
    let same = Padding::same(3);
    let uneven = Padding {
        top: 2,
        left: 0,
        bottom: 1,
        right: 2,
    };
    let uneven5 = Padding {
        top: 4,
        left: 1,
        bottom: 0,
        right: 3,
    };
    for (k, n, h, w, cin, r, cout, pad) in [
        (3, 2, 28, 28, 48, 24, 32, same),
        (3, 2, 13, 11, 20, 17, 18, same),
        (3, 1, 9, 14, 16, 16, 40, uneven),
        (3, 3, 7, 7, 32, 16, 16, same),
        (5, 2, 14, 14, 48, 24, 64, Padding::same(5)),
        (5, 2, 13, 11, 20, 32, 40, uneven5),
        (5, 3, 7, 7, 32, 48, 16, Padding::same(5)),
    ] {
        let case = Case {
            n,
            h,
            w,
            cin,
            r,
            cout,
            k,
            stride: 1,
            pad,
        };
        check_with(&case, Mode::Random, options);
    }
}
