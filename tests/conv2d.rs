//! `Conv2d` against the reference oracle (`reference::conv2d`), on every ISA this CPU supports,
//! selected per operator with `OpOptions::max_isa` (never the global cap: tests run in
//! parallel). Property tests over kernels of 1..=7 rows and columns (square half the time),
//! strides 1..=3 per axis and independent padding on each side; the GoogLeNet shapes at reduced channel counts; thread-count determinism; and one
//! test per error case.

mod common;

use std::sync::OnceLock;

use common::{thread_pool, Mode, Spec, INPUT_PAD, OUTPUT_SENTINEL};
use incept::reference::Window;
use incept::{
    Conv2d, Conv2dDesc, Epilogue, Error, ErrorKind, Isa, Nhwc, OpOptions, Padding, Parallelism,
    TensorView, TensorViewMut,
};
use proptest::prelude::*;
use rayon::ThreadPool;

/// `incept::ops::conv2d::MAX_KERNEL` (not re-exported).
const MAX_KERNEL: usize = 16;

/// Below this many multiply-adds an operator runs on the calling thread
/// (`parallel::SEQUENTIAL_BELOW_MACS`, private).
const SEQUENTIAL_BELOW_MACS: u64 = 1 << 18;

/// Largest reference work (output elements x window taps x input channels) of one generated
/// case, so the property tests stay fast in debug builds.
const CASE_MAC_BUDGET: usize = 1_500_000;

fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: OnceLock<Vec<ThreadPool>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| (1..=3).map(thread_pool).collect());
    &pools[threads - 1]
}

/// The oracle's window for a square kernel, one stride, per-side padding.
fn window_of(kernel: usize, stride: usize, p: Padding) -> Window {
    window_rect([kernel; 2], [stride; 2], p)
}

/// The oracle's window for a `kernel[0] x kernel[1]` kernel, a stride per axis.
fn window_rect(kernel: [usize; 2], stride: [usize; 2], p: Padding) -> Window {
    Window {
        kh: kernel[0],
        kw: kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top: p.top,
        pad_left: p.left,
        pad_bottom: p.bottom,
        pad_right: p.right,
    }
}

/// Output (height, width), or `None` when the kernel does not fit the padded input.
fn output_hw(
    h: usize,
    w: usize,
    kernel: usize,
    stride: usize,
    p: Padding,
) -> Option<(usize, usize)> {
    output_hw_rect(h, w, [kernel; 2], [stride; 2], p)
}

/// [`output_hw`] for a `kernel[0] x kernel[1]` kernel and a stride per axis.
fn output_hw_rect(
    h: usize,
    w: usize,
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    p: Padding,
) -> Option<(usize, usize)> {
    let (ph, pw) = (h + p.top + p.bottom, w + p.left + p.right);
    (ph >= kh && pw >= kw).then(|| ((ph - kh) / sh + 1, (pw - kw) / sw + 1))
}

/// Valid (non-padding) taps along one axis, summed over the outputs: counted tap by tap.
fn valid_taps(size: usize, out: usize, kernel: usize, stride: usize, pad: usize) -> u64 {
    (0..out)
        .map(|o| {
            (0..kernel)
                .filter(|t| matches!((o * stride + t).checked_sub(pad), Some(i) if i < size))
                .count() as u64
        })
        .sum()
}

fn desc_of(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    epilogue: Epilogue,
) -> Conv2dDesc {
    desc_rect(cin, cout, [kernel; 2], [stride; 2], padding, epilogue)
}

fn desc_rect(
    cin: usize,
    cout: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    epilogue: Epilogue,
) -> Conv2dDesc {
    Conv2dDesc {
        in_channels: cin,
        out_channels: cout,
        kernel,
        stride,
        padding,
        epilogue,
    }
}

fn conv_for(isa: Isa, desc: &Conv2dDesc, weights: &[f32], bias: Option<&[f32]>) -> Conv2d {
    let conv = Conv2d::with_options(desc, weights, bias, OpOptions::with_max_isa(Some(isa)))
        .unwrap_or_else(|e| panic!("Conv2d {desc:?} on {isa}: {e}"));
    assert_eq!(
        conv.isa(),
        isa,
        "max_isa {isa} must select {isa} (is INCEPT_MAX_ISA set?)"
    );
    assert_eq!(conv.desc(), desc);
    conv
}

/// How a case runs.
#[derive(Clone, Copy, Debug)]
enum Par {
    Sequential,
    Global,
    Pool(usize),
}

impl Par {
    fn get(self) -> Parallelism<'static> {
        match self {
            Par::Sequential => Parallelism::Sequential,
            Par::Global => Parallelism::Global,
            Par::Pool(t) => Parallelism::Pool(pool(t)),
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    in_spec: Spec,
    out_spec: Spec,
    epilogue: Epilogue,
    with_bias: bool,
    mode: Mode,
    seed: u64,
    /// Build the input view as `channels()` of the wider tensor's view (else `with_layout`).
    input_via_channels: bool,
    /// Build the output view as `channels()` of the wider tensor's view (else `with_layout`).
    output_via_channels: bool,
    par: Par,
}

impl Case {
    fn desc(&self) -> Conv2dDesc {
        desc_rect(
            self.in_spec.c,
            self.out_spec.c,
            self.kernel,
            self.stride,
            self.padding,
            self.epilogue,
        )
    }

    fn window(&self) -> Window {
        window_rect(self.kernel, self.stride, self.padding)
    }
}

/// Runs one case on every available ISA and checks it against the oracle: bit for bit in exact
/// mode, within the rounding bound in random mode, and every element outside the output view
/// untouched. Also checks `output_shape` and `macs`.
fn check_case(case: &Case) {
    let Case {
        in_spec,
        out_spec,
        with_bias,
        mode,
        seed,
        kernel: [kh, kw],
        stride: [sh, sw],
        padding,
        ..
    } = *case;
    let (cin, cout) = (in_spec.c, out_spec.c);
    let desc = case.desc();
    let window = case.window();
    assert_eq!(
        window.output_size(in_spec.h, in_spec.w),
        (out_spec.h, out_spec.w),
        "test bug: output spec of {case:?}"
    );
    let input = in_spec.buffer_with(
        &common::activations(mode, in_spec.pixels() * cin, seed),
        INPUT_PAD,
    );
    let weights = common::weights(mode, cout * kh * kw * cin, seed);
    let bias = with_bias.then(|| common::bias(mode, cout, seed));
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    let want = common::reference_conv(
        &input,
        &in_spec,
        &weights,
        bias.as_deref(),
        &window,
        common::clamp_of(case.epilogue),
        &init,
        &out_spec,
    );
    let bounds = (mode == Mode::Random).then(|| {
        common::error_bounds(
            &input,
            &in_spec,
            &weights,
            bias.as_deref(),
            &window,
            &out_spec,
            kh * kw * cin + 1,
        )
    });
    let want_macs = valid_taps(in_spec.h, out_spec.h, kh, sh, padding.top)
        * valid_taps(in_spec.w, out_spec.w, kw, sw, padding.left)
        * (in_spec.n * cin * cout) as u64;

    for isa in common::isas() {
        let conv = conv_for(isa, &desc, &weights, bias.as_deref());
        assert_eq!(
            conv.output_shape(in_spec.shape()).expect("output_shape"),
            out_spec.shape(),
            "{isa} output_shape {case:?}"
        );
        assert_eq!(
            conv.macs(in_spec.shape()).expect("macs"),
            want_macs,
            "{isa} macs {case:?}"
        );
        let input_view = if case.input_via_channels {
            in_spec.view_via_channels(&input)
        } else {
            in_spec.view(&input)
        };
        let mut got = init.clone();
        let result = if case.output_via_channels {
            let mut wide = out_spec.wide_view_mut(&mut got);
            let mut view = wide
                .channels(out_spec.start, cout)
                .expect("output channels");
            conv.run(&input_view, &mut view, case.par.get())
        } else {
            conv.run(
                &input_view,
                &mut out_spec.view_mut(&mut got),
                case.par.get(),
            )
        };
        result.unwrap_or_else(|e| panic!("{isa} run {case:?}: {e}"));
        let what = format!("{isa} ({}) {case:?}", conv.kernel_name());
        match &bounds {
            None => common::assert_bits_eq(&got, &want, &out_spec, &what),
            Some(bounds) => common::assert_within_bounds(&got, &want, bounds, &out_spec, &what),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Channel counts 1..=40, often right around the tile sizes (NR 8/16/32, MR 4/6/14).
fn channels() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => 1usize..=40,
        3 => prop::sample::select(vec![
            1usize, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 23, 24, 25, 31, 32, 33, 40,
        ]),
    ]
}

/// Image height: tiny (raised later to the least the padded kernel needs) or up to 12.
fn height() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => prop::sample::select(vec![1usize, 2, 3]),
        3 => 1usize..=12,
    ]
}

/// Image width: tiny, up to 12, or a wide row (13..=30) so MR = 14 tiles and the border
/// strips next to them are exercised.
fn width() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => prop::sample::select(vec![1usize, 2, 3]),
        3 => 1usize..=12,
        1 => 13usize..=30,
    ]
}

/// Padding: each side independently in `0..kernel`, or the same on every side (including
/// `kernel - 1`, which makes a 1x1 image valid for any kernel).
fn padding([kh, kw]: [usize; 2]) -> impl Strategy<Value = Padding> {
    prop_oneof![
        3 => (0..kh, 0..kw, 0..kh, 0..kw).prop_map(|(top, left, bottom, right)| {
            Padding { top, left, bottom, right }
        }),
        1 => (0..kh.min(kw)).prop_map(Padding::uniform),
        1 => Just(Padding { top: kh - 1, left: kw - 1, bottom: kh - 1, right: kw - 1 }),
    ]
}

fn epilogue(mode: Mode) -> impl Strategy<Value = Epilogue> {
    // Exact mode: integer and half-integer bounds (the clamp is exact anyway); random mode:
    // bounds inside the typical output range so both sides are hit.
    let scale = if mode == Mode::Exact { 0.5 } else { 0.125 };
    prop_oneof![
        Just(Epilogue::None),
        Just(Epilogue::Relu),
        Just(Epilogue::Relu6),
        (-8i32..=2, 0i32..=12).prop_map(move |(lo, span)| Epilogue::Clamp {
            min: lo as f32 * scale,
            max: (lo + span) as f32 * scale
        }),
        Just(Epilogue::Clamp {
            min: f32::NEG_INFINITY,
            max: 1.0
        }),
        Just(Epilogue::Clamp { min: 1.0, max: 1.0 }),
    ]
}

fn par() -> impl Strategy<Value = Par> {
    prop_oneof![Just(Par::Sequential), Just(Par::Global), Just(Par::Pool(3))]
}

/// A view of `c` channels: dense, or a slice of a wider tensor with a leading offset.
fn spec(n: usize, h: usize, w: usize, c: usize) -> impl Strategy<Value = Spec> {
    prop_oneof![
        1 => (0usize..=3).prop_map(move |tail| Spec::dense(n, h, w, c).with_margins(0, tail)),
        3 => (0usize..=19, 0usize..=9, 0usize..=5, 0usize..=3)
            .prop_map(move |(start, extra, lead, tail)| Spec::slice(n, h, w, c, start, extra).with_margins(lead, tail)),
    ]
}

/// Kernel, stride, padding, image and channel counts, shrunk to `CASE_MAC_BUDGET`: batch first,
/// then the larger channel count, so a large image keeps running with few channels.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
}

fn geometry() -> impl Strategy<Value = Geometry> {
    (
        1usize..=7,
        1usize..=7,
        1usize..=3,
        1usize..=3,
        any::<bool>(),
    )
        .prop_flat_map(|(kh, kw, sh, sw, square)| {
            // Half the cases square (the common convolutions), half any rectangle.
            let (kernel, stride) = if square {
                ([kh; 2], [sh; 2])
            } else {
                ([kh, kw], [sh, sw])
            };
            (
                Just(kernel),
                Just(stride),
                padding(kernel),
                1usize..=3,
                height(),
                width(),
                channels(),
                channels(),
            )
        })
        .prop_map(|(kernel, stride, padding, n, h, w, cin, cout)| {
            // Raise a too-small image to the least the padded kernel accepts.
            let h = h.max(kernel[0].saturating_sub(padding.top + padding.bottom));
            let w = w.max(kernel[1].saturating_sub(padding.left + padding.right));
            let mut g = Geometry {
                kernel,
                stride,
                padding,
                n,
                h,
                w,
                cin,
                cout,
            };
            let (oh, ow) = output_hw_rect(h, w, kernel, stride, padding).expect("valid geometry");
            let work = |g: &Geometry| g.n * oh * ow * kernel[0] * kernel[1] * g.cin * g.cout;
            while work(&g) > CASE_MAC_BUDGET && g.n > 1 {
                g.n -= 1;
            }
            while work(&g) > CASE_MAC_BUDGET && g.cin.max(g.cout) > 1 {
                if g.cin >= g.cout {
                    g.cin = g.cin.div_ceil(2);
                } else {
                    g.cout = g.cout.div_ceil(2);
                }
            }
            g
        })
}

fn case(mode: Mode) -> impl Strategy<Value = Case> {
    geometry()
        .prop_flat_map(move |g| {
            let (oh, ow) = output_hw_rect(g.h, g.w, g.kernel, g.stride, g.padding).expect("valid");
            (
                Just(g),
                spec(g.n, g.h, g.w, g.cin),
                spec(g.n, oh, ow, g.cout),
                epilogue(mode),
                any::<bool>(),
                any::<u64>(),
                any::<bool>(),
                any::<bool>(),
                par(),
            )
        })
        .prop_map(
            move |(
                g,
                in_spec,
                out_spec,
                epilogue,
                with_bias,
                seed,
                input_via_channels,
                output_via_channels,
                par,
            )| Case {
                kernel: g.kernel,
                stride: g.stride,
                padding: g.padding,
                in_spec,
                out_spec,
                epilogue,
                with_bias,
                mode,
                seed,
                input_via_channels,
                output_via_channels,
                par,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Small-integer data: every ISA must reproduce the oracle bit for bit, and leave every
    /// element outside the output view untouched.
    #[test]
    fn exact_inputs_match_the_reference_bit_for_bit(case in case(Mode::Exact)) {
        check_case(&case);
    }

    /// Random floats: every ISA within `(K+1) * 2^-23 * sum|a*b| + 1e-6` of the oracle,
    /// `K = kh * kw * cin`.
    #[test]
    fn random_inputs_match_the_reference_within_rounding(case in case(Mode::Random)) {
        check_case(&case);
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed shapes.

/// A dense case (no margins) with the given geometry.
#[allow(clippy::too_many_arguments)]
fn fixed_case(
    n: usize,
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    mode: Mode,
    par: Par,
) -> Case {
    let (oh, ow) = output_hw(h, w, kernel, stride, padding).expect("valid geometry");
    Case {
        kernel: [kernel; 2],
        stride: [stride; 2],
        padding,
        in_spec: Spec::dense(n, h, w, cin),
        out_spec: Spec::dense(n, oh, ow, cout),
        epilogue: Epilogue::None,
        with_bias: true,
        mode,
        seed: (n * 1000 + h * 100 + w * 10 + kernel) as u64,
        input_via_channels: false,
        output_via_channels: false,
        par,
    }
}

/// Every kernel side 1..=7 with every stride, on images from 1x1 up, with the largest padding
/// (`kernel - 1` on every side) and none: every border rectangle shape, exactly.
#[test]
fn every_kernel_and_stride_on_tiny_images() {
    for kernel in 1..=7 {
        for stride in 1..=3 {
            for (h, w) in [(1, 1), (1, 9), (9, 1), (2, 3), (kernel, kernel), (5, 17)] {
                for padding in [Padding::uniform(kernel - 1), Padding::default()] {
                    if output_hw(h, w, kernel, stride, padding).is_none() {
                        continue;
                    }
                    let mut case = fixed_case(
                        1,
                        h,
                        w,
                        3,
                        9,
                        kernel,
                        stride,
                        padding,
                        Mode::Exact,
                        Par::Sequential,
                    );
                    case.out_spec = Spec {
                        start: 2,
                        extra: 1,
                        ..case.out_spec
                    };
                    check_case(&case);
                }
            }
        }
    }
}

/// A dense exact case of a `kernel` window (rows, columns) with a stride per axis.
#[allow(clippy::too_many_arguments)]
fn rect_case(
    (n, h, w, cin, cout): (usize, usize, usize, usize, usize),
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: Padding,
    par: Par,
    seed: u64,
) -> Case {
    let (oh, ow) = output_hw_rect(h, w, kernel, stride, padding).expect("valid geometry");
    Case {
        kernel,
        stride,
        padding,
        in_spec: Spec::dense(n, h, w, cin),
        out_spec: Spec::dense(n, oh, ow, cout),
        epilogue: Epilogue::Relu,
        with_bias: true,
        mode: Mode::Exact,
        seed,
        input_via_channels: false,
        output_via_channels: false,
        par,
    }
}

/// Inception-v3's factorised convolutions, "same" on 17x17 (wider than one 14-pixel tile):
/// 1x7, 7x1, 1x5 and 5x1, channel counts around the vector widths, on one thread and two.
#[test]
fn inception_v3_factorised_kernels() {
    for (i, kernel) in [[1, 7], [7, 1], [1, 5], [5, 1]].into_iter().enumerate() {
        let padding = Conv2dDesc::same_rect(1, 1, kernel, Epilogue::None).padding;
        for par in [Par::Sequential, Par::Pool(2)] {
            let shape = (2, 17, 17, 17, 33);
            check_case(&rect_case(
                shape,
                kernel,
                [1, 1],
                padding,
                par,
                700 + i as u64,
            ));
        }
    }
}

/// Rectangles at the limits: 1x16 and 16x1 with padding 15 on the long axis around a 1x3 /
/// 3x1 image, and a square kernel moving unequal strides.
#[test]
fn largest_rectangles_and_unequal_strides() {
    let long_cols = Padding {
        left: 15,
        right: 15,
        ..Padding::default()
    };
    let long_rows = Padding {
        top: 15,
        bottom: 15,
        ..Padding::default()
    };
    let cases = [
        ((1, 1, 3, 5, 17), [1, 16], [1, 1], long_cols),
        ((1, 3, 1, 5, 17), [16, 1], [1, 1], long_rows),
        ((1, 9, 11, 4, 9), [3, 3], [1, 2], Padding::uniform(1)),
        ((2, 9, 11, 4, 9), [3, 3], [2, 1], Padding::uniform(1)),
    ];
    for (i, (shape, kernel, stride, padding)) in cases.into_iter().enumerate() {
        check_case(&rect_case(
            shape,
            kernel,
            stride,
            padding,
            Par::Sequential,
            750 + i as u64,
        ));
    }
    // Unequal strides are not Winograd's: refused when forced, direct under `Auto`.
    let desc = desc_rect(16, 16, [3, 3], [1, 2], Padding::uniform(1), Epilogue::None);
    let weights = vec![0.0; 16 * 9 * 16];
    let forced = OpOptions {
        algorithm: incept::ConvAlgorithm::Winograd,
        ..OpOptions::default()
    };
    assert_error(
        Conv2d::with_options(&desc, &weights, None, forced),
        ErrorKind::InvalidArgument,
        &["Winograd needs a 3x3 or 5x5 kernel with stride 1, got kernel 3x3, stride 1,2"],
    );
    let relaxed = OpOptions {
        accuracy: incept::Accuracy::Relaxed,
        ..OpOptions::default()
    };
    let conv = Conv2d::with_options(&desc, &weights, None, relaxed).unwrap();
    assert_eq!(conv.algorithm(), incept::ConvAlgorithm::Direct);
}

/// Each side and stride of a rectangle is checked on its own, padding against its axis.
#[test]
fn rectangle_errors_name_the_axis() {
    let none = Padding::default();
    let cases = [
        (
            [3, 17],
            [1, 1],
            none,
            "conv2d kernel width 17 must be in 1..=16",
        ),
        (
            [0, 3],
            [1, 1],
            none,
            "conv2d kernel height 0 must be in 1..=16",
        ),
        ([3, 3], [1, 0], none, "conv2d horizontal stride is 0"),
        (
            [7, 1],
            [1, 1],
            Padding::uniform(3),
            "conv2d left padding 3 must be less than the kernel width 1",
        ),
    ];
    for (kernel, stride, padding, message) in cases {
        let desc = desc_rect(2, 3, kernel, stride, padding, Epilogue::None);
        let taps = kernel[0] * kernel[1];
        assert_error(
            Conv2d::new(&desc, &vec![0.0; 3 * taps * 2], None),
            ErrorKind::InvalidArgument,
            &[message],
        );
    }
    // Weights sized for a square kernel of the rectangle's height.
    let desc = Conv2dDesc::same_rect(2, 3, [1, 7], Epilogue::None);
    assert_error(
        Conv2d::new(&desc, &[0.0; 3 * 2], None),
        ErrorKind::BufferTooSmall,
        &["weights"],
    );
    // A window taller than the padded input.
    let tall = desc_rect(2, 3, [7, 1], [1, 1], none, Epilogue::None);
    let conv = Conv2d::new(&tall, &[0.0; 3 * 7 * 2], None).unwrap();
    assert_error(
        conv.output_shape(Nhwc::new(1, 3, 4, 2)),
        ErrorKind::InvalidArgument,
        &["conv2d window 7x1 is larger than the padded input 3x4"],
    );
}

/// The largest kernel (16x16): padding 15 on every side around a 1x1 image (every output sees
/// one tap), one-sided padding, and no padding on an exactly fitting image.
#[test]
fn largest_kernel() {
    let k = MAX_KERNEL;
    let cases = [
        (1, 1, Padding::uniform(k - 1), 1),
        (
            3,
            2,
            Padding {
                top: 15,
                left: 0,
                bottom: 0,
                right: 14,
            },
            2,
        ),
        (16, 17, Padding::default(), 1),
    ];
    for (h, w, padding, stride) in cases {
        check_case(&fixed_case(
            1,
            h,
            w,
            5,
            17,
            k,
            stride,
            padding,
            Mode::Exact,
            Par::Sequential,
        ));
    }
}

/// The GoogLeNet 3a branches at reduced channel counts: 3x3 "same" and 5x5 "same" on 28x28,
/// 24 -> 40 channels, reading a channel slice of the reduce layers' output and writing
/// neighbouring channel slices of one concatenated output, exactly, on every ISA, in parallel.
#[test]
fn googlenet_branches_at_reduced_channels() {
    let (h, w, cin, cout) = (28, 28, 24, 40);
    // The input is channels 8..32 of a 40-channel tensor; the output has 3 foreign channels,
    // the 3x3 branch, the 5x5 branch and 5 more foreign channels per pixel.
    let in_spec = Spec::slice(1, h, w, cin, 8, 8);
    let spec3 = Spec::slice(1, h, w, cout, 3, cout + 5);
    let spec5 = Spec::slice(1, h, w, cout, 3 + cout, 5);
    let wide = Spec::slice(1, h, w, 2 * cout, 3, 5);
    let input = in_spec.buffer_with(
        &common::activations(Mode::Exact, in_spec.pixels() * cin, 3),
        INPUT_PAD,
    );
    let desc3 = Conv2dDesc::same(cin, cout, 3, Epilogue::Relu);
    let desc5 = Conv2dDesc::same(cin, cout, 5, Epilogue::Relu);
    assert_eq!(desc3.padding, Padding::uniform(1));
    assert_eq!(desc5.padding, Padding::uniform(2));
    let w3 = common::weights(Mode::Exact, cout * 9 * cin, 33);
    let w5 = common::weights(Mode::Exact, cout * 25 * cin, 55);
    let b3 = common::bias(Mode::Exact, cout, 3);
    let b5 = common::bias(Mode::Exact, cout, 5);
    let init = vec![OUTPUT_SENTINEL; wide.buffer_len()];
    let want = common::reference_conv(
        &input,
        &in_spec,
        &w3,
        Some(&b3),
        &window_of(3, 1, desc3.padding),
        common::clamp_of(Epilogue::Relu),
        &init,
        &spec3,
    );
    let want = common::reference_conv(
        &input,
        &in_spec,
        &w5,
        Some(&b5),
        &window_of(5, 1, desc5.padding),
        common::clamp_of(Epilogue::Relu),
        &want,
        &spec5,
    );
    for isa in common::isas() {
        let c3 = conv_for(isa, &desc3, &w3, Some(&b3));
        let c5 = conv_for(isa, &desc5, &w5, Some(&b5));
        let shape = Nhwc::new(1, h, w, cin);
        assert_eq!(c3.output_shape(shape).unwrap(), Nhwc::new(1, h, w, cout));
        assert_eq!(c5.output_shape(shape).unwrap(), Nhwc::new(1, h, w, cout));
        assert!(
            c3.macs(shape).unwrap() >= SEQUENTIAL_BELOW_MACS,
            "goes parallel"
        );
        for par in [Par::Sequential, Par::Global] {
            let mut out = init.clone();
            let x = in_spec.view(&input);
            let mut view = wide.view_mut(&mut out);
            c3.run(&x, &mut view.channels(0, cout).unwrap(), par.get())
                .unwrap_or_else(|e| panic!("{isa} 3x3: {e}"));
            c5.run(&x, &mut view.channels(cout, cout).unwrap(), par.get())
                .unwrap_or_else(|e| panic!("{isa} 5x5: {e}"));
            common::assert_bits_eq(
                &out,
                &want,
                &wide,
                &format!("{isa} ({}) GoogLeNet 3x3 + 5x5 {par:?}", c3.kernel_name()),
            );
        }
    }
}

/// Shapes big enough to go parallel, with padding on every side (asymmetric), strides, wide and
/// tall images and batches: tasks cut the border rectangles at arbitrary rows. Exact against
/// the oracle on pools of 2 and 3 threads.
#[test]
fn parallel_chunks_cut_border_rectangles_exactly() {
    let shapes = [
        // (n, h, w, cin, cout, kernel, stride, padding)
        (
            3,
            13,
            29,
            9,
            17,
            5,
            1,
            Padding {
                top: 4,
                left: 1,
                bottom: 0,
                right: 3,
            },
        ),
        (
            2,
            31,
            5,
            7,
            33,
            7,
            2,
            Padding {
                top: 6,
                left: 2,
                bottom: 5,
                right: 6,
            },
        ),
        (
            1,
            40,
            3,
            16,
            24,
            3,
            1,
            Padding {
                top: 0,
                left: 2,
                bottom: 2,
                right: 1,
            },
        ),
        (
            2,
            17,
            19,
            20,
            15,
            4,
            3,
            Padding {
                top: 1,
                left: 3,
                bottom: 2,
                right: 0,
            },
        ),
    ];
    for (i, (n, h, w, cin, cout, kernel, stride, padding)) in shapes.into_iter().enumerate() {
        for (j, par) in [Par::Pool(2), Par::Pool(3)].into_iter().enumerate() {
            let (oh, ow) = output_hw(h, w, kernel, stride, padding).unwrap();
            let case = Case {
                kernel: [kernel; 2],
                stride: [stride; 2],
                padding,
                in_spec: Spec::slice(n, h, w, cin, 1, 2).with_margins(2, 1),
                out_spec: Spec::slice(n, oh, ow, cout, 4, 3).with_margins(1, 2),
                epilogue: Epilogue::Clamp {
                    min: -20.0,
                    max: 20.0,
                },
                with_bias: j == 0,
                mode: Mode::Exact,
                seed: 900 + i as u64,
                input_via_channels: j == 1,
                output_via_channels: j == 0,
                par,
            };
            let conv =
                Conv2d::new(&case.desc(), &vec![0.0; cout * kernel * kernel * cin], None).unwrap();
            assert!(
                conv.macs(case.in_spec.shape()).unwrap() >= SEQUENTIAL_BELOW_MACS,
                "shape {i} must be big enough to go parallel"
            );
            check_case(&case);
        }
    }
}

/// Runs `conv` with `par` into a fresh sentinel-filled buffer for `out_spec`.
fn run_with(
    conv: &Conv2d,
    input: &[f32],
    in_spec: &Spec,
    out_spec: &Spec,
    par: Parallelism<'_>,
) -> Vec<f32> {
    let mut out = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    conv.run(&in_spec.view(input), &mut out_spec.view_mut(&mut out), par)
        .expect("run");
    out
}

/// The same ISA gives the same bits sequentially, on the global pool, and on pools of 1, 2 and 3
/// threads (reductions are never split), on shapes far above the 2^18-MAC sequential threshold,
/// with random data (exact data would hide a reordered reduction).
#[test]
fn results_are_bit_identical_for_every_thread_count() {
    let shapes = [
        // (input, output, kernel, stride, padding)
        (
            Spec::dense(1, 28, 28, 64),
            Spec::dense(1, 28, 28, 48),
            3,
            1,
            Padding::same(3),
        ),
        // Batch 2, stride 2, asymmetric padding, sliced input and output.
        (
            Spec::slice(2, 29, 31, 40, 5, 7).with_margins(3, 2),
            Spec::slice(2, 14, 15, 36, 32, 9).with_margins(1, 4),
            5,
            2,
            Padding {
                top: 2,
                left: 1,
                bottom: 1,
                right: 2,
            },
        ),
    ];
    for (i, (in_spec, out_spec, kernel, stride, padding)) in shapes.iter().enumerate() {
        let (cin, cout, kernel, stride, padding) =
            (in_spec.c, out_spec.c, *kernel, *stride, *padding);
        let window = window_of(kernel, stride, padding);
        assert_eq!(
            window.output_size(in_spec.h, in_spec.w),
            (out_spec.h, out_spec.w)
        );
        let seed = 177 + i as u64;
        let input = in_spec.buffer_with(
            &common::activations(Mode::Random, in_spec.pixels() * cin, seed),
            INPUT_PAD,
        );
        let weights = common::weights(Mode::Random, cout * kernel * kernel * cin, seed);
        let bias = common::bias(Mode::Random, cout, seed);
        let epilogue = Epilogue::Clamp {
            min: -2.0,
            max: 3.0,
        };
        let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
        let want = common::reference_conv(
            &input,
            in_spec,
            &weights,
            Some(&bias),
            &window,
            common::clamp_of(epilogue),
            &init,
            out_spec,
        );
        let bounds = common::error_bounds(
            &input,
            in_spec,
            &weights,
            Some(&bias),
            &window,
            out_spec,
            kernel * kernel * cin + 1,
        );
        let desc = desc_of(cin, cout, kernel, stride, padding, epilogue);
        for isa in common::isas() {
            let conv = conv_for(isa, &desc, &weights, Some(&bias));
            assert!(
                conv.macs(in_spec.shape()).unwrap() >= SEQUENTIAL_BELOW_MACS,
                "shape {i} must be big enough to go parallel"
            );
            let sequential = run_with(&conv, &input, in_spec, out_spec, Parallelism::Sequential);
            common::assert_within_bounds(
                &sequential,
                &want,
                &bounds,
                out_spec,
                &format!("{isa} shape {i} sequential"),
            );
            let run = |par: Parallelism<'_>| run_with(&conv, &input, in_spec, out_spec, par);
            let variants = [
                ("global", run(Parallelism::Global)),
                ("pool(1)", run(Parallelism::Pool(pool(1)))),
                ("pool(2)", run(Parallelism::Pool(pool(2)))),
                ("pool(3)", run(Parallelism::Pool(pool(3)))),
                (
                    "global inside pool(3)",
                    pool(3).install(|| run(Parallelism::Global)),
                ),
            ];
            for (name, got) in variants {
                let what = format!("{isa} shape {i} {name} vs sequential");
                common::assert_bits_eq(&got, &sequential, out_spec, &what);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: each returns an `Error` (never panics) of the right kind naming the numbers, and a
// failed run leaves the output untouched.

/// Asserts `result` is an error of `kind` whose message contains every one of `needles`.
#[track_caller]
fn assert_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    kind: ErrorKind,
    needles: &[&str],
) -> Error {
    let err = match result {
        Ok(v) => panic!("expected a {kind:?} error mentioning {needles:?}, got Ok({v:?})"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), kind, "message: {}", err.message());
    for needle in needles {
        assert!(
            err.message().contains(needle),
            "message {:?} should mention {needle:?}",
            err.message()
        );
    }
    assert_eq!(err.to_string(), err.message(), "Display prints the message");
    err
}

/// A valid operator: `cin -> cout`, `kernel`, stride 1, `padding`.
fn conv2d(cin: usize, cout: usize, kernel: usize, padding: Padding) -> Conv2d {
    let desc = desc_of(cin, cout, kernel, 1, padding, Epilogue::None);
    Conv2d::new(&desc, &vec![1.0; cout * kernel * kernel * cin], None).expect("valid conv2d")
}

/// Runs `conv` on dense views of the given shapes; asserts the output buffer is untouched.
fn run_shapes(conv: &Conv2d, input: Nhwc, output: Nhwc) -> Result<(), Error> {
    let data = vec![1.0; input.element_count().unwrap()];
    let mut out = vec![OUTPUT_SENTINEL; output.element_count().unwrap()];
    let result = conv.run(
        &TensorView::new(&data, input).unwrap(),
        &mut TensorViewMut::new(&mut out, output).unwrap(),
        Parallelism::Sequential,
    );
    if result.is_err() {
        assert!(
            out.iter().all(|x| x.to_bits() == OUTPUT_SENTINEL.to_bits()),
            "a failed run must not write the output"
        );
    }
    result
}

#[test]
fn kernel_larger_than_the_padded_input() {
    // 5x5 kernel, padding 1: a 2x3 image pads to 4x5, too short.
    let conv = conv2d(4, 2, 5, Padding::uniform(1));
    let input = Nhwc::new(1, 2, 3, 4);
    let needles = [
        "kernel 5",
        "padded input 4x5",
        "2x3",
        "1+1 rows",
        "1+1 columns",
    ];
    assert_error(
        conv.output_shape(input),
        ErrorKind::InvalidArgument,
        &needles,
    );
    assert_error(conv.macs(input), ErrorKind::InvalidArgument, &needles);
    // The output shape cannot be computed, so any output view is refused with the same error.
    assert_error(
        run_shapes(&conv, input, Nhwc::new(1, 1, 1, 2)),
        ErrorKind::InvalidArgument,
        &needles,
    );
    // Too narrow only (padding differs per side): 7x1 pads to 7+0 rows, 1+(0+3) columns.
    let conv = conv2d(
        4,
        2,
        5,
        Padding {
            top: 0,
            left: 0,
            bottom: 0,
            right: 3,
        },
    );
    let input = Nhwc::new(2, 7, 1, 4);
    let needles = [
        "kernel 5",
        "padded input 7x4",
        "7x1",
        "0+0 rows",
        "0+3 columns",
    ];
    assert_error(
        conv.output_shape(input),
        ErrorKind::InvalidArgument,
        &needles,
    );
    assert_error(
        run_shapes(&conv, input, Nhwc::new(2, 3, 1, 2)),
        ErrorKind::InvalidArgument,
        &needles,
    );
    // One more column of padding and it fits exactly.
    let conv = conv2d(
        4,
        2,
        5,
        Padding {
            top: 0,
            left: 1,
            bottom: 0,
            right: 3,
        },
    );
    assert_eq!(conv.output_shape(input).unwrap(), Nhwc::new(2, 3, 1, 2));
    run_shapes(&conv, input, Nhwc::new(2, 3, 1, 2)).unwrap();
}

#[test]
fn zero_stride() {
    let desc = Conv2dDesc {
        stride: [0; 2],
        ..Conv2dDesc::same(3, 4, 3, Epilogue::None)
    };
    assert_error(
        Conv2d::new(&desc, &[0.0; 4 * 9 * 3], None),
        ErrorKind::InvalidArgument,
        &["stride is 0"],
    );
}

#[test]
fn padding_not_less_than_the_kernel_on_each_side() {
    let k = 3;
    let base = Conv2dDesc::same(2, 3, k, Epilogue::None);
    let weights = vec![0.0; 3 * k * k * 2];
    for (side, set) in [
        (
            "top",
            (|p, v| Padding { top: v, ..p }) as fn(Padding, usize) -> Padding,
        ),
        ("left", |p, v| Padding { left: v, ..p }),
        ("bottom", |p, v| Padding { bottom: v, ..p }),
        ("right", |p, v| Padding { right: v, ..p }),
    ] {
        for pad in [k, k + 1, 100] {
            let desc = Conv2dDesc {
                padding: set(Padding::uniform(1), pad),
                ..base
            };
            assert_error(
                Conv2d::new(&desc, &weights, None),
                ErrorKind::InvalidArgument,
                &[&format!("{side} padding {pad}"), &format!("kernel {k}")],
            );
        }
        // `kernel - 1` is the largest allowed.
        let desc = Conv2dDesc {
            padding: set(Padding::default(), k - 1),
            ..base
        };
        Conv2d::new(&desc, &weights, None)
            .unwrap_or_else(|e| panic!("{side} padding {}: {e}", k - 1));
    }
    // A 1x1 kernel allows no padding at all.
    let desc = Conv2dDesc {
        padding: Padding::uniform(1),
        ..Conv2dDesc::same(2, 3, 1, Epilogue::None)
    };
    assert_error(
        Conv2d::new(&desc, &[0.0; 6], None),
        ErrorKind::InvalidArgument,
        &["top padding 1", "kernel 1"],
    );
}

#[test]
fn kernel_zero_or_above_the_maximum() {
    for kernel in [0, MAX_KERNEL + 1, 100] {
        let desc = desc_of(2, 3, kernel, 1, Padding::default(), Epilogue::None);
        assert_error(
            Conv2d::new(&desc, &vec![0.0; 3 * kernel * kernel * 2], None),
            ErrorKind::InvalidArgument,
            &[&format!("kernel {kernel}"), &format!("1..={MAX_KERNEL}")],
        );
    }
    let desc = desc_of(2, 3, MAX_KERNEL, 1, Padding::default(), Epilogue::None);
    Conv2d::new(&desc, &vec![0.0; 3 * MAX_KERNEL * MAX_KERNEL * 2], None)
        .expect("MAX_KERNEL is allowed");
}

#[test]
fn weights_of_the_wrong_length() {
    // 3x3 kernel, 4 -> 5 channels: 5 * 9 * 4 = 180 weights.
    let desc = Conv2dDesc::same(4, 5, 3, Epilogue::None);
    for len in [179, 181, 20, 0] {
        assert_error(
            Conv2d::new(&desc, &vec![0.0; len], None),
            ErrorKind::BufferTooSmall,
            &[
                &format!("weights have {len}"),
                "5 out",
                "9 taps",
                "4 in",
                "needs 180",
            ],
        );
    }
    // The bias must have one element per output channel.
    assert_error(
        Conv2d::new(&desc, &[0.0; 180], Some(&[0.0; 4])),
        ErrorKind::ShapeMismatch,
        &["bias has 4", "5 output channels"],
    );
}

#[test]
fn output_view_shape_does_not_match() {
    // 3x3, stride 2, padding top 1 / left 0 / bottom 1 / right 2 on a 2x9x7x3 input:
    // output 2 x (9+2-3)/2+1 = 5 x (7+2-3)/2+1 = 4.
    let desc = desc_of(
        3,
        6,
        3,
        2,
        Padding {
            top: 1,
            left: 0,
            bottom: 1,
            right: 2,
        },
        Epilogue::None,
    );
    let conv = Conv2d::new(&desc, &[0.0; 6 * 9 * 3], None).unwrap();
    let input = Nhwc::new(2, 9, 7, 3);
    assert_eq!(conv.output_shape(input).unwrap(), Nhwc::new(2, 5, 4, 6));
    run_shapes(&conv, input, Nhwc::new(2, 5, 4, 6)).expect("the expected shape runs");
    for wrong in [
        Nhwc::new(2, 5, 5, 6),
        Nhwc::new(2, 4, 4, 6),
        Nhwc::new(1, 5, 4, 6),
        Nhwc::new(2, 9, 7, 6),
    ] {
        assert_error(
            run_shapes(&conv, input, wrong),
            ErrorKind::ShapeMismatch,
            &[&format!("output shape {wrong}"), "expected 2x5x4x6"],
        );
    }
    // Output channels are checked against the weights.
    assert_error(
        run_shapes(&conv, input, Nhwc::new(2, 5, 4, 7)),
        ErrorKind::ShapeMismatch,
        &["output channels 7", "weights' 6"],
    );
}

#[test]
fn input_channels_do_not_match_the_weights() {
    let conv = conv2d(4, 2, 3, Padding::same(3));
    assert_error(
        run_shapes(&conv, Nhwc::new(1, 5, 5, 3), Nhwc::new(1, 5, 5, 2)),
        ErrorKind::ShapeMismatch,
        &["input channels 3", "weights' 4"],
    );
    assert_error(
        run_shapes(&conv, Nhwc::new(1, 5, 5, 5), Nhwc::new(1, 5, 5, 2)),
        ErrorKind::ShapeMismatch,
        &["input channels 5", "weights' 4"],
    );
}
