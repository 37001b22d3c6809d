//! Winograd F(4x4, 3x3) and F(2x2, 5x5) (`ConvAlgorithm::Winograd`) against references, on
//! every ISA this CPU supports: the measured error against an f64 direct convolution on
//! GoogLeNet-scale layers (the documented bound), property tests against the f32 reference on
//! odd sizes, every padding, channel slices and epilogues, thread-count determinism, and the
//! algorithm choice.

mod common;

use common::{Mode, Spec, OUTPUT_SENTINEL};
use incept::reference::Window;
use incept::{
    Accuracy, Conv2d, Conv2dDesc, ConvAlgorithm, Epilogue, ErrorKind, Isa, OpOptions, Padding,
    Parallelism,
};
use proptest::prelude::*;

/// The documented bound: max |winograd - exact| / max |exact| on random data.
const DOCUMENTED_RELATIVE_ERROR: f64 = 1e-4;

fn options(isa: Isa, algorithm: ConvAlgorithm) -> OpOptions {
    OpOptions {
        algorithm,
        ..OpOptions::with_max_isa(Some(isa))
    }
}

fn winograd_for(isa: Isa, desc: &Conv2dDesc, weights: &[f32], bias: Option<&[f32]>) -> Conv2d {
    let conv = Conv2d::with_options(desc, weights, bias, options(isa, ConvAlgorithm::Winograd))
        .unwrap_or_else(|e| panic!("Winograd {desc:?} on {isa}: {e}"));
    assert_eq!(conv.isa(), isa);
    assert_eq!(conv.algorithm(), ConvAlgorithm::Winograd);
    conv
}

/// Direct `k x k` stride-1 convolution in f64 over dense NHWC, no epilogue, per-side padding.
#[allow(clippy::too_many_arguments)]
fn conv_f64(
    k: usize,
    input: &[f32],
    (n, h, w, cin): (usize, usize, usize, usize),
    weights: &[f32],
    bias: &[f32],
    cout: usize,
    p: Padding,
) -> (Vec<f64>, (usize, usize)) {
    let (oh, ow) = (h + p.top + p.bottom + 1 - k, w + p.left + p.right + 1 - k);
    let mut out = vec![0.0f64; n * oh * ow * cout];
    for b in 0..n {
        for y in 0..oh {
            for x in 0..ow {
                for o in 0..cout {
                    let mut s = f64::from(bias[o]);
                    for ky in 0..k {
                        let Some(iy) = (y + ky).checked_sub(p.top).filter(|&iy| iy < h) else {
                            continue;
                        };
                        for kx in 0..k {
                            let Some(ix) = (x + kx).checked_sub(p.left).filter(|&ix| ix < w) else {
                                continue;
                            };
                            let a = &input[((b * h + iy) * w + ix) * cin..][..cin];
                            let g = &weights[((o * k + ky) * k + kx) * cin..][..cin];
                            s += a
                                .iter()
                                .zip(g)
                                .map(|(&a, &g)| f64::from(a) * f64::from(g))
                                .sum::<f64>();
                        }
                    }
                    out[((b * oh + y) * ow + x) * cout + o] = s;
                }
            }
        }
    }
    (out, (oh, ow))
}

/// Runs Winograd for a `k x k` kernel on `isa` and returns max |y - exact| / max |exact|.
fn measured_error(
    isa: Isa,
    k: usize,
    (h, w, cin, cout): (usize, usize, usize, usize),
    seed: u64,
) -> f64 {
    let p = Padding::same(k);
    let input = common::activations(Mode::Random, h * w * cin, seed);
    let weights = common::weights(Mode::Random, cout * k * k * cin, seed);
    let bias = common::bias(Mode::Random, cout, seed);
    let desc = Conv2dDesc::same(cin, cout, k, Epilogue::None);
    let conv = winograd_for(isa, &desc, &weights, Some(&bias));
    let mut out = vec![0.0f32; h * w * cout];
    let spec_in = Spec::dense(1, h, w, cin);
    let spec_out = Spec::dense(1, h, w, cout);
    conv.run(
        &spec_in.view(&input),
        &mut spec_out.view_mut(&mut out),
        Parallelism::Sequential,
    )
    .unwrap();
    let (exact, _) = conv_f64(k, &input, (1, h, w, cin), &weights, &bias, cout, p);
    let scale = exact.iter().fold(0.0f64, |m, &v| m.max(v.abs()));
    let err = out
        .iter()
        .zip(&exact)
        .fold(0.0f64, |m, (&y, &e)| m.max((f64::from(y) - e).abs()));
    err / scale
}

/// The documented error bound, measured on the GoogLeNet 3a 3x3 shape (96 -> 128 on 28x28), the
/// 192-channel benchmark shapes and GoogLeNet 5x5 shapes, on every ISA.
#[test]
fn error_against_f64_is_below_the_documented_bound() {
    for isa in common::isas() {
        for (k, shape, seed) in [
            (3, (28, 28, 96, 128), 1),
            (3, (28, 28, 192, 32), 2),
            (3, (7, 7, 832, 16), 3),
            (5, (28, 28, 192, 32), 4),
            (5, (14, 14, 32, 128), 5),
            (5, (7, 7, 832, 16), 6),
        ] {
            let rel = measured_error(isa, k, shape, seed);
            eprintln!("winograd {k}x{k} {isa} {shape:?}: max |error| / max |output| = {rel:.3e}");
            assert!(
                rel < DOCUMENTED_RELATIVE_ERROR,
                "{isa} {shape:?}: relative error {rel:e} above {DOCUMENTED_RELATIVE_ERROR:e}"
            );
        }
    }
}

/// Runs one case on every ISA against the f32 reference, within a bound scaled by the
/// reduction length and the largest output magnitude (Winograd spreads rounding across a
/// tile, so the bound is per tensor, not per output), outside the view untouched.
#[allow(clippy::too_many_arguments)]
fn check_case(
    k: usize,
    (n, h, w): (usize, usize, usize),
    (cin, cout): (usize, usize),
    padding: Padding,
    (in_start, in_extra, out_start, out_extra): (usize, usize, usize, usize),
    epilogue: Epilogue,
    with_bias: bool,
    seed: u64,
) {
    let (oh, ow) = (
        h + padding.top + padding.bottom + 1 - k,
        w + padding.left + padding.right + 1 - k,
    );
    let in_spec = Spec::slice(n, h, w, cin, in_start, in_extra);
    let out_spec = Spec::slice(n, oh, ow, cout, out_start, out_extra);
    let values = common::activations(Mode::Random, n * h * w * cin, seed);
    let input = in_spec.buffer_with(&values, f32::NAN);
    let weights = common::weights(Mode::Random, cout * k * k * cin, seed);
    let bias = common::bias(Mode::Random, cout, seed);
    let bias = with_bias.then_some(&bias[..]);
    let desc = Conv2dDesc {
        in_channels: cin,
        out_channels: cout,
        kernel: [k; 2],
        stride: [1; 2],
        padding,
        epilogue,
    };
    let window = Window {
        kh: k,
        kw: k,
        stride_h: 1,
        stride_w: 1,
        pad_top: padding.top,
        pad_left: padding.left,
        pad_bottom: padding.bottom,
        pad_right: padding.right,
    };
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    let clamp = common::clamp_of(epilogue);
    let want = common::reference_conv(
        &input, &in_spec, &weights, bias, &window, clamp, &init, &out_spec,
    );
    // sum|a*b| per output: error_bounds with a reduction of 1 is `eps * sum + 1e-6`.
    let sums = common::error_bounds(&input, &in_spec, &weights, bias, &window, &out_spec, 1);
    let largest = sums
        .iter()
        .zip(out_spec.mask())
        .filter(|(_, inside)| *inside)
        .fold(0.0f32, |m, (&b, _)| m.max((b - 1e-6) / f32::EPSILON));
    let reduction = k * k * cin + 1;
    let bound = 16.0 * reduction as f32 * f32::EPSILON * largest + 1e-6;
    let bounds = vec![bound; out_spec.buffer_len()];
    for isa in common::isas() {
        let conv = winograd_for(isa, &desc, &weights, bias);
        let mut got = init.clone();
        conv.run(
            &in_spec.view(&input),
            &mut out_spec.view_mut(&mut got),
            Parallelism::Sequential,
        )
        .unwrap_or_else(|e| panic!("{isa}: {e}"));
        let what = format!("winograd {k}x{k} {isa} n{n} {h}x{w} {cin}->{cout} pad {padding:?}");
        common::assert_within_bounds(&got, &want, &bounds, &out_spec, &what);
        // Any thread count: the same bits.
        let mut again = init.clone();
        conv.run(
            &in_spec.view(&input),
            &mut out_spec.view_mut(&mut again),
            Parallelism::Global,
        )
        .unwrap();
        common::assert_bits_eq(&again, &got, &out_spec, &format!("{what} threads"));
    }
}

fn padding(k: usize) -> impl Strategy<Value = Padding> {
    let p = 0..k;
    (p.clone(), p.clone(), p.clone(), p).prop_map(|(top, left, bottom, right)| Padding {
        top,
        left,
        bottom,
        right,
    })
}

fn epilogue() -> impl Strategy<Value = Epilogue> {
    prop_oneof![
        Just(Epilogue::None),
        Just(Epilogue::Relu),
        Just(Epilogue::Relu6),
        Just(Epilogue::Clamp {
            min: -0.5,
            max: 0.25
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Odd sizes (not multiples of the 4x4 or 2x2 tile), tiny images, channels around every
    /// vector width, slices on both sides, every epilogue, both kernel sizes.
    #[test]
    fn matches_the_reference(
        (k, padding) in prop_oneof![Just(3usize), Just(5usize)].prop_flat_map(|k| (Just(k), padding(k))),
        n in 1..=2usize,
        h in 1..=13usize,
        w in 1..=13usize,
        cin in 1..=40usize,
        cout in 1..=40usize,
        slices in (0..=3usize, 0..=3usize, 0..=3usize, 0..=3usize),
        epilogue in epilogue(),
        with_bias in any::<bool>(),
        seed in any::<u64>(),
    ) {
        prop_assume!(h + padding.top + padding.bottom >= k && w + padding.left + padding.right >= k);
        check_case(k, (n, h, w), (cin, cout), padding, slices, epilogue, with_bias, seed);
    }
}

/// GoogLeNet-like shapes at batch 2 with several threads: spans band and chunk boundaries.
#[test]
fn googlenet_shapes_and_threads() {
    check_case(
        3,
        (2, 28, 28),
        (96, 128),
        Padding::same(3),
        (0, 0, 64, 64),
        Epilogue::Relu,
        true,
        7,
    );
    check_case(
        3,
        (1, 14, 14),
        (112, 224),
        Padding::same(3),
        (0, 0, 0, 0),
        Epilogue::Relu,
        true,
        8,
    );
    check_case(
        5,
        (2, 28, 28),
        (32, 96),
        Padding::same(5),
        (0, 0, 64, 64),
        Epilogue::Relu,
        true,
        9,
    );
    check_case(
        5,
        (3, 7, 7),
        (48, 128),
        Padding::same(5),
        (0, 0, 0, 0),
        Epilogue::Relu,
        true,
        10,
    );
}

/// `Auto` takes Winograd only under `Accuracy::Relaxed`, for 3x3 and 5x5 stride 1 with enough
/// channels; asking for Winograd on anything else is an error naming the numbers.
#[test]
fn algorithm_choice() {
    let weights = vec![0.5f32; 96 * 49 * 96];
    let auto = |accuracy, kernel: usize, cin: usize, cout: usize, stride| {
        let desc = Conv2dDesc {
            stride: [stride; 2],
            ..Conv2dDesc::same(cin, cout, kernel, Epilogue::None)
        };
        let options = OpOptions {
            accuracy,
            ..OpOptions::default()
        };
        Conv2d::with_options(
            &desc,
            &weights[..cout * kernel * kernel * cin],
            None,
            options,
        )
        .unwrap()
        .algorithm()
    };
    assert_eq!(auto(Accuracy::Exact, 3, 32, 32, 1), ConvAlgorithm::Direct);
    assert_eq!(
        auto(Accuracy::Relaxed, 3, 32, 32, 1),
        ConvAlgorithm::Winograd
    );
    assert_eq!(auto(Accuracy::Relaxed, 3, 32, 32, 2), ConvAlgorithm::Direct);
    assert_eq!(auto(Accuracy::Relaxed, 3, 8, 32, 1), ConvAlgorithm::Direct);
    assert_eq!(auto(Accuracy::Exact, 5, 32, 96, 1), ConvAlgorithm::Direct);
    assert_eq!(
        auto(Accuracy::Relaxed, 5, 32, 96, 1),
        ConvAlgorithm::Winograd
    );
    assert_eq!(auto(Accuracy::Relaxed, 5, 32, 96, 2), ConvAlgorithm::Direct);
    // GoogLeNet 3a's 16 -> 32 5x5, at the channel threshold.
    assert_eq!(
        auto(Accuracy::Relaxed, 5, 16, 32, 1),
        ConvAlgorithm::Winograd
    );
    assert_eq!(auto(Accuracy::Relaxed, 5, 8, 32, 1), ConvAlgorithm::Direct);
    assert_eq!(auto(Accuracy::Relaxed, 7, 32, 32, 1), ConvAlgorithm::Direct);
    let desc = Conv2dDesc::same(4, 4, 7, Epilogue::None);
    let err = Conv2d::with_options(
        &desc,
        &[0.0; 4 * 49 * 4],
        None,
        OpOptions {
            algorithm: ConvAlgorithm::Winograd,
            ..OpOptions::default()
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("kernel 7, stride 1"), "{err}");
}
