//! Tiny-shape tests meant for Miri (and run as ordinary tests too): the views and their
//! validation, weight packing (channel counts around the kernels' NR, biases), ISA detection and
//! dispatch, and every operator (Conv1x1, Conv2d with borders and strides, MaxPool2d,
//! Bottleneck, PoolProjection, a tiny Inception) against the reference, bit for bit on exact
//! data, on every ISA this build can run.
//!
//! Under Miri there is no CPUID: `incept-kernels` reports the ISAs the crate was compiled for
//! (`cfg!(target_feature)`), so `cargo miri test` checks the portable kernels, with
//! `RUSTFLAGS=-Ctarget-feature=+avx2,+fma` also the AVX2 kernels, and with
//! `--target aarch64-unknown-linux-gnu` the NEON kernels. AVX-512 is never enabled under Miri.
//! The shapes are the smallest that still reach every path: several pixel tiles, a partial
//! output-channel block (masked stores), border rectangles, sliding and general pool paths, NaN.
//! Intrinsics Miri cannot run are left out by `cfg` (see [`pool_isas`]), never by weaker checks.
//!
//! ```sh
//! MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --test miri
//! RUSTFLAGS=-Ctarget-feature=+avx2,+fma MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --test miri
//! MIRIFLAGS=-Zmiri-disable-isolation cargo +nightly miri test --test miri --target aarch64-unknown-linux-gnu
//! ```

mod common;

use common::{
    activations, assert_bits_eq, bias, reference_conv, weights, Mode, Spec, INPUT_PAD,
    OUTPUT_SENTINEL,
};
use incept::reference::{self, Clamp, Layout, Window};
use incept::{
    inception_reference, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d,
    Conv2dDesc, ConvParams, Epilogue, ErrorKind, Inception, InceptionConfig, InceptionWeights, Isa,
    MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, Parallelism, PoolProjection, TensorView,
    TensorViewMut,
};

/// Every ISA this build and CPU can run (under Miri: the compiled-in target features).
fn isas() -> Vec<Isa> {
    common::isas()
}

/// The ISAs whose max-pool kernel can run here. Miri does not implement
/// `llvm.aarch64.neon.fmax` (`vmaxq_f32`), so under Miri on AArch64 the NEON max-pool kernel is
/// left out (its convolution kernels still run); ordinary and qemu runs test it.
fn pool_isas() -> Vec<Isa> {
    let mut isas = isas();
    if cfg!(all(miri, target_arch = "aarch64")) {
        isas.retain(|&isa| isa != Isa::Neon);
    }
    isas
}

fn options(isa: Isa) -> OpOptions {
    OpOptions::with_max_isa(Some(isa))
}

/// Output-channel counts around the kernel's NR for `isa`: a partial block, a full one, and a
/// full one plus a remainder.
fn couts(isa: Isa) -> [usize; 2] {
    let nr = match isa {
        Isa::Scalar => 8,
        Isa::Avx2 | Isa::Neon => 16,
        Isa::Avx512 => 32,
    };
    [nr - 3, nr + 1]
}

fn relu() -> Clamp {
    Clamp {
        min: 0.0,
        max: f32::INFINITY,
    }
}

#[test]
fn isa_detection_matches_the_build() {
    let available = incept::isa::available();
    assert_eq!(available.first(), Some(&Isa::Scalar));
    #[cfg(miri)]
    {
        // No CPUID under Miri: exactly the ISAs compiled in.
        let mut want = vec![Isa::Scalar];
        if cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "fma"
        )) {
            want.push(Isa::Avx2);
        }
        if cfg!(all(target_arch = "x86_64", target_feature = "avx512f")) {
            want.push(Isa::Avx512);
        }
        if cfg!(target_arch = "aarch64") {
            want.push(Isa::Neon);
        }
        assert_eq!(available, &want[..]);
    }
    // Dispatch: each available ISA is selectable per operator and reported back.
    for &isa in available {
        let conv = Conv1x1::with_options(2, 3, &[1.0; 6], None, Epilogue::None, options(isa))
            .expect("available ISA");
        assert_eq!(conv.isa(), isa);
        assert!(
            conv.kernel_name().contains("conv_"),
            "{}",
            conv.kernel_name()
        );
        assert_eq!(incept::isa::resolve(Some(isa)), Ok(isa));
    }
    // An ISA of the other architecture is refused, never run.
    #[cfg(target_arch = "aarch64")]
    let foreign = Isa::Avx2;
    #[cfg(not(target_arch = "aarch64"))]
    let foreign = Isa::Neon;
    let e =
        Conv1x1::with_options(2, 3, &[1.0; 6], None, Epilogue::None, options(foreign)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedIsa);
    assert_eq!("avx2".parse::<Isa>(), Ok(Isa::Avx2));
}

#[test]
fn views_and_validation() {
    let data = [0.0f32; 12];
    let v = TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 2), 3, 1).unwrap();
    assert_eq!((v.span(), v.index(0, 1, 1, 1)), (11, 1 + 3 * 3 + 1));
    let s = v.channels(1, 1).unwrap();
    assert_eq!((s.shape().c, s.offset(), s.pixel_stride()), (1, 2, 3));
    let kinds = [
        TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 2), 3, 2).map(|_| ()),
        TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 2), 1, 0).map(|_| ()),
        TensorView::with_layout(&data, Nhwc::new(0, 2, 2, 2), 2, 0).map(|_| ()),
        TensorView::with_layout(&data, Nhwc::new(1, 1, 1, 2), 2, usize::MAX).map(|_| ()),
        v.channels(1, 2).map(|_| ()),
    ]
    .map(|r| r.unwrap_err().kind());
    assert_eq!(
        kinds,
        [
            ErrorKind::BufferTooSmall,
            ErrorKind::InvalidArgument,
            ErrorKind::InvalidArgument,
            ErrorKind::Overflow,
            ErrorKind::InvalidArgument,
        ]
    );
    let mut out = [0.0f32; 4];
    let mut o = TensorViewMut::new(&mut out, Nhwc::new(1, 1, 2, 2)).unwrap();
    assert!(o.channels(2, 1).is_err());
    o.channels(1, 1).unwrap();
    // Operator validation, before any packing.
    let conv = Conv1x1::new(2, 2, &[1.0; 4], None, Epilogue::None).unwrap();
    assert_eq!(
        Conv1x1::new(2, 2, &[1.0; 3], None, Epilogue::None)
            .unwrap_err()
            .kind(),
        ErrorKind::BufferTooSmall
    );
    let x = TensorView::new(&data[..6], Nhwc::new(1, 1, 2, 3)).unwrap();
    let mut y = TensorViewMut::new(&mut out, Nhwc::new(1, 1, 2, 2)).unwrap();
    let e = conv.run(&x, &mut y, Parallelism::Sequential).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ShapeMismatch);
    assert_eq!(out, [0.0; 4], "a refused run writes nothing");
}

/// Runs a 1x1 convolution (as `Conv1x1`) from a channel slice into a channel slice, compares
/// with the reference bit for bit.
#[test]
fn conv1x1_every_isa_against_the_reference() {
    for isa in isas() {
        for cout in couts(isa) {
            let cin = 3;
            // 7 pixels: a full tile and a partial one on every kernel (MR = 4, 6, 14).
            let in_spec = Spec::slice(1, 1, 7, cin, 1, 1).with_margins(2, 1);
            let out_spec = Spec::slice(1, 1, 7, cout, 2, 1).with_margins(1, 2);
            let x = activations(Mode::Exact, 7 * cin, 1);
            let w = weights(Mode::Exact, cout * cin, 2);
            let b = bias(Mode::Exact, cout, 3);
            let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
            let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
            let epilogue = Epilogue::Clamp {
                min: -3.0,
                max: 5.0,
            };
            let conv =
                Conv1x1::with_options(cin, cout, &w, Some(&b), epilogue, options(isa)).unwrap();
            assert_eq!(conv.isa(), isa);
            let mut got = init.clone();
            conv.run(
                &in_spec.view(&in_buf),
                &mut out_spec.view_mut(&mut got),
                Parallelism::Sequential,
            )
            .unwrap();
            let want = reference_conv(
                &in_buf,
                &in_spec,
                &w,
                Some(&b),
                &Window::square(1, 1, 0),
                Clamp {
                    min: -3.0,
                    max: 5.0,
                },
                &init,
                &out_spec,
            );
            assert_bits_eq(
                &got,
                &want,
                &out_spec,
                &format!("conv1x1 {isa} cout {cout}"),
            );
        }
    }
}

/// Direct convolutions with borders on every side: 3x3 "same", 3x3 stride 2 with uneven
/// padding, a 5x5 larger than the image in one direction, and a "same" 1x3 and a 3x1 moving 2
/// rows.
#[test]
fn conv2d_with_borders_against_the_reference() {
    let cases = [
        ([3, 3], [1, 1], Padding::uniform(1), (2, 4, 5)),
        (
            [3, 3],
            [2, 2],
            Padding {
                top: 0,
                left: 2,
                bottom: 1,
                right: 0,
            },
            (1, 5, 4),
        ),
        ([5, 5], [1, 1], Padding::uniform(2), (1, 2, 6)),
        (
            [1, 3],
            [1, 1],
            Padding {
                left: 1,
                right: 1,
                ..Padding::default()
            },
            (1, 3, 5),
        ),
        ([3, 1], [2, 1], Padding::default(), (1, 5, 3)),
    ];
    for isa in isas() {
        for (i, &(kernel, stride, p, (n, h, w))) in cases.iter().enumerate() {
            let (cin, cout) = (2, couts(isa)[i % 2]);
            let window = Window {
                kh: kernel[0],
                kw: kernel[1],
                stride_h: stride[0],
                stride_w: stride[1],
                pad_top: p.top,
                pad_left: p.left,
                pad_bottom: p.bottom,
                pad_right: p.right,
            };
            let (oh, ow) = window.output_size(h, w);
            let in_spec = Spec::slice(n, h, w, cin, 1, 0).with_margins(1, 1);
            let out_spec = Spec::slice(n, oh, ow, cout, 0, 2);
            let x = activations(Mode::Exact, n * h * w * cin, 10 + i as u64);
            let wts = weights(
                Mode::Exact,
                cout * kernel[0] * kernel[1] * cin,
                20 + i as u64,
            );
            let b = bias(Mode::Exact, cout, 30 + i as u64);
            let desc = Conv2dDesc {
                in_channels: cin,
                out_channels: cout,
                kernel,
                stride,
                padding: p,
                epilogue: Epilogue::Relu,
            };
            let conv = Conv2d::with_options(&desc, &wts, Some(&b), options(isa)).unwrap();
            assert_eq!(
                conv.output_shape(in_spec.shape()).unwrap(),
                out_spec.shape()
            );
            let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
            let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
            let mut got = init.clone();
            conv.run(
                &in_spec.view_via_channels(&in_buf),
                &mut out_spec.view_mut(&mut got),
                Parallelism::Sequential,
            )
            .unwrap();
            let want = reference_conv(
                &in_buf,
                &in_spec,
                &wts,
                Some(&b),
                &window,
                relu(),
                &init,
                &out_spec,
            );
            assert_bits_eq(&got, &want, &out_spec, &format!("conv2d {isa} case {i}"));
        }
    }
}

/// Winograd F(4x4, 3x3) and F(2x2, 5x5): a 5x5 image (two or three tile rows and columns, the
/// last ones cut by the image edge), input channels with a full and a partial vector on NEON (a partial one on
/// AVX2), a partial output-channel block, channel slices on both sides; within 1e-4 of the
/// largest output against the reference.
#[test]
fn winograd_conv_against_the_reference() {
    let (n, h, w, cin) = (1, 5, 5, 5);
    for (isa, k) in isas().into_iter().flat_map(|isa| [(isa, 3), (isa, 5)]) {
        let window = Window::square(k, 1, k / 2);
        let cout = couts(isa)[0];
        let in_spec = Spec::slice(n, h, w, cin, 2, 1).with_margins(1, 1);
        let out_spec = Spec::slice(n, h, w, cout, 1, 2);
        let x = activations(Mode::Random, n * h * w * cin, 41);
        let wts = weights(Mode::Random, cout * k * k * cin, 42);
        let b = bias(Mode::Random, cout, 43);
        let options = OpOptions {
            algorithm: incept::ConvAlgorithm::Winograd,
            ..options(isa)
        };
        let desc = Conv2dDesc::same(cin, cout, k, Epilogue::Relu);
        let conv = Conv2d::with_options(&desc, &wts, Some(&b), options).unwrap();
        let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
        let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
        let mut got = init.clone();
        conv.run(
            &in_spec.view_via_channels(&in_buf),
            &mut out_spec.view_mut(&mut got),
            Parallelism::Sequential,
        )
        .unwrap();
        let want = reference_conv(
            &in_buf,
            &in_spec,
            &wts,
            Some(&b),
            &window,
            relu(),
            &init,
            &out_spec,
        );
        let mask = out_spec.mask();
        let largest = want
            .iter()
            .zip(&mask)
            .filter(|(_, &inside)| inside)
            .fold(0.0f32, |m, (v, _)| m.max(v.abs()));
        for (idx, (g, wv)) in got.iter().zip(&want).enumerate() {
            if mask[idx] {
                assert!(
                    (g - wv).abs() <= 1e-4 * largest,
                    "winograd {k}x{k} {isa}: element {idx}: got {g}, want {wv}"
                );
            } else {
                assert_eq!(
                    g.to_bits(),
                    wv.to_bits(),
                    "winograd {k}x{k} {isa}: element {idx} outside"
                );
            }
        }
    }
}

/// Max-pool: the sliding path (3x3 and 2x2 at stride 1, 3x3 at stride 2, a 2x3 window moving 1
/// row and 2 columns), the general path (a NaN in a window; a 3x1 window), and a channel count
/// with a full vector block and a partial vector.
#[test]
fn maxpool_against_the_reference() {
    let cases = [
        ([3, 3], [1, 1], Padding::uniform(1), 9),
        ([2, 2], [1, 1], Padding::default(), 33),
        ([3, 3], [2, 2], Padding::uniform(1), 5),
        ([2, 3], [1, 2], Padding::uniform(1), 17),
        (
            [3, 1],
            [2, 1],
            Padding {
                top: 2,
                ..Padding::default()
            },
            3,
        ),
    ];
    for isa in pool_isas() {
        for (i, &(kernel, stride, p, c)) in cases.iter().enumerate() {
            let (n, h, w) = (1, 3, 5);
            let desc = MaxPool2dDesc {
                kernel,
                stride,
                padding: p,
            };
            let pool = MaxPool2d::with_options(&desc, options(isa)).unwrap();
            let out = pool.output_shape(Nhwc::new(n, h, w, c)).unwrap();
            let in_spec = Spec::slice(n, h, w, c, 0, 1);
            let out_spec = Spec::slice(n, out.h, out.w, c, 1, 1);
            let mut x = activations(Mode::Exact, n * h * w * c, 40 + i as u64);
            if i == 0 {
                x[7 * c + 2] = f32::NAN; // pixel (1, 2), channel 2
                x[c + 1] = f32::INFINITY;
            }
            let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
            let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
            let mut got = init.clone();
            pool.run(
                &in_spec.view(&in_buf),
                &mut out_spec.view_mut(&mut got),
                Parallelism::Sequential,
            )
            .unwrap();
            let mut want = init.clone();
            let window = Window {
                kh: kernel[0],
                kw: kernel[1],
                stride_h: stride[0],
                stride_w: stride[1],
                pad_top: p.top,
                pad_left: p.left,
                pad_bottom: p.bottom,
                pad_right: p.right,
            };
            reference::max_pool2d(
                &in_buf,
                &in_spec.layout(),
                &window,
                &mut want,
                &out_spec.layout(),
            );
            let mask = out_spec.mask();
            for (idx, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let ok = if mask[idx] {
                    (g.is_nan() && w.is_nan()) || g == w
                } else {
                    g.to_bits() == w.to_bits()
                };
                assert!(ok, "maxpool {isa} case {i} index {idx}: got {g}, want {w}");
            }
        }
    }
}

#[test]
fn bottleneck_against_two_reference_layers() {
    for isa in isas() {
        let (n, h, w, cin, r, cout) = (1, 4, 3, 3, 2, couts(isa)[0]);
        let desc = BottleneckDesc::same_relu(cin, r, cout, 3);
        let rw = weights(Mode::Exact, r * cin, 50);
        let rb = bias(Mode::Exact, r, 51);
        let cw = weights(Mode::Exact, cout * 9 * r, 52);
        let cb = bias(Mode::Exact, cout, 53);
        let op = Bottleneck::with_options(
            &desc,
            &BottleneckWeights {
                reduce: &rw,
                reduce_bias: Some(&rb),
                conv: &cw,
                conv_bias: Some(&cb),
            },
            options(isa),
        )
        .unwrap();
        let in_spec = Spec::dense(n, h, w, cin);
        let out_spec = Spec::slice(n, h, w, cout, 1, 0);
        let x = activations(Mode::Exact, n * h * w * cin, 54);
        let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
        let mut got = init.clone();
        op.run(
            &in_spec.view(&x),
            &mut out_spec.view_mut(&mut got),
            Parallelism::Sequential,
        )
        .unwrap();
        let mid_spec = Spec::dense(n, h, w, r);
        let mid = reference_conv(
            &x,
            &in_spec,
            &rw,
            Some(&rb),
            &Window::square(1, 1, 0),
            relu(),
            &vec![0.0; mid_spec.buffer_len()],
            &mid_spec,
        );
        let want = reference_conv(
            &mid,
            &mid_spec,
            &cw,
            Some(&cb),
            &Window::square(3, 1, 1),
            relu(),
            &init,
            &out_spec,
        );
        assert_bits_eq(&got, &want, &out_spec, &format!("bottleneck {isa}"));
    }
}

#[test]
fn pool_projection_against_pool_then_conv() {
    for isa in pool_isas() {
        let (n, h, w, cin, cout) = (1, 3, 4, 5, couts(isa)[1]);
        let pw = weights(Mode::Exact, cout * cin, 60);
        let op = PoolProjection::with_options(
            &MaxPool2dDesc::INCEPTION,
            cin,
            cout,
            ConvParams {
                weights: &pw,
                bias: None,
            },
            Epilogue::Relu6,
            options(isa),
        )
        .unwrap();
        let in_spec = Spec::slice(n, h, w, cin, 2, 0);
        let out_spec = Spec::dense(n, h, w, cout).with_margins(3, 0);
        let x = activations(Mode::Exact, n * h * w * cin, 61);
        let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
        let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
        let mut got = init.clone();
        op.run(
            &in_spec.view(&in_buf),
            &mut out_spec.view_mut(&mut got),
            Parallelism::Sequential,
        )
        .unwrap();
        let pooled_spec = Spec::dense(n, h, w, cin);
        let mut pooled = vec![0.0; pooled_spec.buffer_len()];
        reference::max_pool2d(
            &in_buf,
            &in_spec.layout(),
            &Window::square(3, 1, 1),
            &mut pooled,
            &Layout::dense(n, h, w, cin),
        );
        let want = reference_conv(
            &pooled,
            &pooled_spec,
            &pw,
            None,
            &Window::square(1, 1, 0),
            Clamp { min: 0.0, max: 6.0 },
            &init,
            &out_spec,
        );
        assert_bits_eq(&got, &want, &out_spec, &format!("pool projection {isa}"));
    }
}

/// The smallest module that has every branch and both kinds of 3x3/5x5 input (a reduction, and
/// none: the 5x5 reads the module input).
#[test]
fn tiny_inception_against_the_reference() {
    for isa in pool_isas() {
        for with_reduce5 in [true, false] {
            let cfg = InceptionConfig {
                in_channels: 3,
                c1x1: 2,
                c3x3_reduce: Some(2),
                c3x3: 3,
                c5x5_reduce: with_reduce5.then_some(1),
                c5x5: 2,
                pool_proj: with_reduce5.then_some(2),
            };
            let cin = cfg.in_channels;
            let w1 = weights(Mode::Exact, 2 * cin, 70);
            let r3 = weights(Mode::Exact, 2 * cin, 71);
            let w3 = weights(Mode::Exact, 3 * 9 * 2, 72);
            let r5 = weights(Mode::Exact, cin, 73);
            let w5 = weights(Mode::Exact, 2 * 25 * cfg.c5x5_reduce.unwrap_or(cin), 74);
            let pp = weights(Mode::Exact, 2 * cin, 75);
            let b = bias(Mode::Exact, 3, 76);
            let p = |w: &[f32], c: usize| -> (Vec<f32>, Vec<f32>) { (w.to_vec(), b[..c].to_vec()) };
            let (w1, b1) = p(&w1, 2);
            let (r3, br3) = p(&r3, 2);
            let (w3, b3) = p(&w3, 3);
            let weights = InceptionWeights {
                conv1x1: ConvParams {
                    weights: &w1,
                    bias: Some(&b1),
                },
                reduce3x3: Some(ConvParams {
                    weights: &r3,
                    bias: Some(&br3),
                }),
                conv3x3: ConvParams {
                    weights: &w3,
                    bias: Some(&b3),
                },
                reduce5x5: with_reduce5.then_some(ConvParams {
                    weights: &r5,
                    bias: None,
                }),
                conv5x5: ConvParams {
                    weights: &w5,
                    bias: None,
                },
                pool_proj: with_reduce5.then_some(ConvParams {
                    weights: &pp,
                    bias: None,
                }),
            };
            let module = Inception::with_options(&cfg, &weights, options(isa)).unwrap();
            let (n, h, w) = (1, 3, 4);
            let in_shape = Nhwc::new(n, h, w, cin);
            let x = activations(Mode::Exact, n * h * w * cin, 77);
            let dense = inception_reference(&cfg, &weights, &x, in_shape).unwrap();
            let total = cfg.out_channels();
            let out_spec = Spec::slice(n, h, w, total, 1, 2);
            let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
            let mut want = init.clone();
            for px in 0..n * h * w {
                for ch in 0..total {
                    want[out_spec.index(px, ch)] = dense[px * total + ch];
                }
            }
            let mut got = init;
            let mut wide = out_spec.wide_view_mut(&mut got);
            module
                .run(
                    &TensorView::new(&x, in_shape).unwrap(),
                    &mut wide.channels(1, total).unwrap(),
                    Parallelism::Sequential,
                )
                .unwrap();
            // Pooled values passed through (no projection) may differ in the sign of a zero.
            let mask = out_spec.mask();
            for (idx, (&g, &w)) in got.iter().zip(&want).enumerate() {
                let ok = g.to_bits() == w.to_bits() || (mask[idx] && g == 0.0 && w == 0.0);
                assert!(
                    ok,
                    "inception {isa} reduce5 {with_reduce5} index {idx}: got {g}, want {w}"
                );
            }
        }
    }
}

/// Two threads run the same packed operators on different data at once (Miri checks for data
/// races); each result equals the single-threaded one.
#[test]
fn operators_are_shared_between_threads() {
    let isa = *isas().last().unwrap();
    let desc = Conv2dDesc::same(2, 3, 3, Epilogue::None);
    let conv = Conv2d::with_options(
        &desc,
        &weights(Mode::Exact, 3 * 9 * 2, 80),
        None,
        options(isa),
    )
    .unwrap();
    let bottleneck = Bottleneck::with_options(
        &BottleneckDesc::same_relu(2, 1, 2, 3),
        &BottleneckWeights {
            reduce: &[1.0, -1.0],
            reduce_bias: None,
            conv: &weights(Mode::Exact, 2 * 9, 81),
            conv_bias: None,
        },
        options(isa),
    )
    .unwrap();
    let shape = Nhwc::new(1, 3, 2, 2);
    let inputs: Vec<Vec<f32>> = (0..2)
        .map(|s| activations(Mode::Exact, 12, 90 + s))
        .collect();
    let run = |x: &[f32]| {
        let mut a = vec![0.0; 3 * 2 * 3];
        let mut b = vec![0.0; 3 * 2 * 2];
        let input = TensorView::new(x, shape).unwrap();
        conv.run(
            &input,
            &mut TensorViewMut::new(&mut a, Nhwc::new(1, 3, 2, 3)).unwrap(),
            Parallelism::Sequential,
        )
        .unwrap();
        bottleneck
            .run(
                &input,
                &mut TensorViewMut::new(&mut b, Nhwc::new(1, 3, 2, 2)).unwrap(),
                Parallelism::Sequential,
            )
            .unwrap();
        (a, b)
    };
    let alone: Vec<_> = inputs.iter().map(|x| run(x)).collect();
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs.iter().map(|x| s.spawn(|| run(x))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(alone, together);
}
