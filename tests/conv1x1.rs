//! `Conv1x1` against the reference oracle (`reference::conv2d` with a 1x1 window), on every ISA
//! this CPU supports, selected per operator with `OpOptions::max_isa` (never the global cap:
//! tests run in parallel).

mod common;

use std::sync::OnceLock;

use common::{thread_pool, Mode, Spec, OUTPUT_SENTINEL};
use incept::reference::Clamp;
use incept::reference::Window;
use incept::{to_ohwi, Conv1x1, Epilogue, Isa, OpOptions, Parallelism, WeightLayout, WeightShape};
use proptest::prelude::*;
use rayon::ThreadPool;

fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: OnceLock<Vec<ThreadPool>> = OnceLock::new();
    let pools = POOLS.get_or_init(|| (1..=3).map(thread_pool).collect());
    &pools[threads - 1]
}

fn conv_for(
    isa: Isa,
    cin: usize,
    cout: usize,
    weights: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
) -> Conv1x1 {
    let conv = Conv1x1::with_options(
        cin,
        cout,
        weights,
        bias,
        epilogue,
        OpOptions::with_max_isa(Some(isa)),
    )
    .unwrap_or_else(|e| panic!("Conv1x1 {cin}->{cout} on {isa}: {e}"));
    assert_eq!(
        conv.isa(),
        isa,
        "max_isa {isa} must select {isa} (is INCEPT_MAX_ISA set?)"
    );
    conv
}

/// How a case builds its views and runs.
#[derive(Clone, Copy, Debug)]
enum Par {
    Sequential,
    Global,
    Pool3,
}

impl Par {
    fn get(self) -> Parallelism<'static> {
        match self {
            Par::Sequential => Parallelism::Sequential,
            Par::Global => Parallelism::Global,
            Par::Pool3 => Parallelism::Pool(pool(3)),
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
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

/// Runs one case on every available ISA and checks it against the oracle.
fn check_case(case: &Case) {
    let Case {
        in_spec,
        out_spec,
        epilogue,
        with_bias,
        mode,
        seed,
        ..
    } = *case;
    let (cin, cout) = (in_spec.c, out_spec.c);
    let input = in_spec.buffer_with(
        &common::activations(mode, in_spec.pixels() * cin, seed),
        common::INPUT_PAD,
    );
    let weights = common::weights(mode, cout * cin, seed);
    let bias = with_bias.then(|| common::bias(mode, cout, seed));
    let window = common::window_1x1();
    let clamp = common::clamp_of(epilogue);
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    let want = common::reference_conv(
        &input,
        &in_spec,
        &weights,
        bias.as_deref(),
        &window,
        clamp,
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
            cin + 1,
        )
    });

    for isa in common::isas() {
        let conv = conv_for(isa, cin, cout, &weights, bias.as_deref(), epilogue);
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
        result.unwrap_or_else(|e| panic!("{isa} run: {e}"));
        let what = format!("{isa} ({}) {case:?}", conv.kernel_name());
        match &bounds {
            None => common::assert_bits_eq(&got, &want, &out_spec, &what),
            Some(bounds) => common::assert_within_bounds(&got, &want, bounds, &out_spec, &what),
        }
    }
}

/// Channel counts: anything in 1..=70, often right around the tile sizes (NR 8/16/32, MR 4/6/14).
fn channels() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => 1usize..=70,
        3 => prop::sample::select(vec![
            1usize, 2, 3, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 70,
        ]),
    ]
}

/// Pixels per row: 1..=40, often around multiples of MR.
fn width() -> impl Strategy<Value = usize> {
    prop_oneof![
        1 => 1usize..=40,
        1 => prop::sample::select(vec![1usize, 3, 4, 5, 6, 7, 12, 13, 14, 15, 27, 28, 29, 40]),
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
    prop_oneof![Just(Par::Sequential), Just(Par::Global), Just(Par::Pool3)]
}

/// A view of `c` channels: dense, or a slice of a wider tensor with a leading offset.
fn spec(n: usize, h: usize, w: usize, c: usize) -> impl Strategy<Value = Spec> {
    prop_oneof![
        1 => (0usize..=3).prop_map(move |tail| Spec::dense(n, h, w, c).with_margins(0, tail)),
        3 => (0usize..=37, 0usize..=9, 0usize..=5, 0usize..=3)
            .prop_map(move |(start, extra, lead, tail)| Spec::slice(n, h, w, c, start, extra).with_margins(lead, tail)),
    ]
}

fn case(mode: Mode) -> impl Strategy<Value = Case> {
    (1usize..=3, 1usize..=3, width(), channels(), channels())
        .prop_flat_map(move |(n, h, w, cin, cout)| {
            (
                spec(n, h, w, cin),
                spec(n, h, w, cout),
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
                in_spec,
                out_spec,
                epilogue,
                with_bias,
                seed,
                input_via_channels,
                output_via_channels,
                par,
            )| {
                Case {
                    in_spec,
                    out_spec,
                    epilogue,
                    with_bias,
                    mode,
                    seed,
                    input_via_channels,
                    output_via_channels,
                    par,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Small-integer data: every ISA must reproduce the oracle bit for bit, and leave every
    /// element outside the output view untouched.
    #[test]
    fn exact_inputs_match_the_reference_bit_for_bit(case in case(Mode::Exact)) {
        check_case(&case);
    }

    /// Random floats: every ISA within the rounding bound of the oracle.
    #[test]
    fn random_inputs_match_the_reference_within_rounding(case in case(Mode::Random)) {
        check_case(&case);
    }
}

/// Every output channel count 1..=70 (every NR remainder of every kernel) with pixel counts
/// 1..=29 (every MR remainder), into a strided, offset output slice.
#[test]
fn every_channel_remainder_and_pixel_tail() {
    let mut seed = 0;
    for cout in 1..=70 {
        for w in 1..=29 {
            seed += 1;
            check_case(&Case {
                in_spec: Spec::slice(1, 1, w, 3, 1, 2).with_margins(1, 0),
                out_spec: Spec::slice(1, 1, w, cout, 2, 1).with_margins(3, 1),
                epilogue: Epilogue::None,
                with_bias: seed % 2 == 0,
                mode: Mode::Exact,
                seed,
                input_via_channels: false,
                output_via_channels: false,
                par: Par::Sequential,
            });
        }
    }
    // Every reduction length 1..=70.
    for cin in 1..=70 {
        check_case(&Case {
            in_spec: Spec::slice(1, 1, 15, cin, 3, 0),
            out_spec: Spec::slice(1, 1, 15, 33, 0, 5),
            epilogue: Epilogue::Relu,
            with_bias: true,
            mode: Mode::Exact,
            seed: cin as u64,
            input_via_channels: true,
            output_via_channels: true,
            par: Par::Sequential,
        });
    }
}

/// Runs `conv` with `par` into a fresh sentinel-filled buffer for `out_spec`.
fn run_with(
    conv: &Conv1x1,
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
        // The seed shape of an Inception 3a bottleneck: 9.6M MACs.
        (Spec::dense(1, 28, 28, 192), Spec::dense(1, 28, 28, 64)),
        // Odd pixel count (no whole number of tiles of any MR), sliced input and output.
        (
            Spec::slice(2, 17, 23, 100, 5, 7).with_margins(3, 2),
            Spec::slice(2, 17, 23, 40, 32, 9).with_margins(1, 4),
        ),
    ];
    for (i, (in_spec, out_spec)) in shapes.iter().enumerate() {
        let (cin, cout) = (in_spec.c, out_spec.c);
        assert!(
            in_spec.pixels() * cin * cout >= 1 << 20,
            "shape {i} must be big enough to go parallel"
        );
        let seed = 77 + i as u64;
        let input = in_spec.buffer_with(
            &common::activations(Mode::Random, in_spec.pixels() * cin, seed),
            common::INPUT_PAD,
        );
        let weights = common::weights(Mode::Random, cout * cin, seed);
        let bias = common::bias(Mode::Random, cout, seed);
        let window = common::window_1x1();
        let epilogue = Epilogue::Clamp {
            min: -1.0,
            max: 1.5,
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
            cin + 1,
        );
        for isa in common::isas() {
            let conv = conv_for(isa, cin, cout, &weights, Some(&bias), epilogue);
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

/// Hand-checked layout conversions: OIHW (PyTorch) and HWIO (TensorFlow) into OHWI.
#[test]
fn to_ohwi_hand_example() {
    // 2 out, 2 in, 1x2 kernel. Element "o y x i" is written as the number oyxi + 1000.
    let shape = WeightShape {
        out_channels: 2,
        kh: 1,
        kw: 2,
        in_channels: 2,
    };
    let ohwi = [
        1000.0, 1001.0, 1010.0, 1011.0, 1100.0, 1101.0, 1110.0, 1111.0,
    ];
    // OIHW: [o][i][y][x].
    let oihw = [
        1000.0, 1010.0, 1001.0, 1011.0, 1100.0, 1110.0, 1101.0, 1111.0,
    ];
    // HWIO: [y][x][i][o].
    let hwio = [
        1000.0, 1100.0, 1001.0, 1101.0, 1010.0, 1110.0, 1011.0, 1111.0,
    ];
    assert_eq!(to_ohwi(&ohwi, WeightLayout::Ohwi, shape).unwrap(), ohwi);
    assert_eq!(to_ohwi(&oihw, WeightLayout::Oihw, shape).unwrap(), ohwi);
    assert_eq!(to_ohwi(&hwio, WeightLayout::Hwio, shape).unwrap(), ohwi);
}

/// A KxK weight tensor (and a non-square one) converted from OIHW and HWIO gives the same
/// convolution as the OHWI original, checked with the oracle (any window) and `Conv1x1` (1x1).
#[test]
fn to_ohwi_from_every_layout_gives_the_same_convolution() {
    for (o_n, kh, kw, i_n) in [(5, 3, 3, 4), (3, 2, 3, 6), (7, 1, 1, 9)] {
        let shape = WeightShape {
            out_channels: o_n,
            kh,
            kw,
            in_channels: i_n,
        };
        let ohwi = common::weights(
            Mode::Exact,
            o_n * kh * kw * i_n,
            (o_n * 100 + kh * 10 + kw) as u64,
        );
        let mut oihw = vec![0.0; ohwi.len()];
        let mut hwio = vec![0.0; ohwi.len()];
        for o in 0..o_n {
            for y in 0..kh {
                for x in 0..kw {
                    for i in 0..i_n {
                        let v = ohwi[((o * kh + y) * kw + x) * i_n + i];
                        oihw[((o * i_n + i) * kh + y) * kw + x] = v;
                        hwio[((y * kw + x) * i_n + i) * o_n + o] = v;
                    }
                }
            }
        }
        let from_ohwi = to_ohwi(&ohwi, WeightLayout::Ohwi, shape).unwrap();
        let from_oihw = to_ohwi(&oihw, WeightLayout::Oihw, shape).unwrap();
        let from_hwio = to_ohwi(&hwio, WeightLayout::Hwio, shape).unwrap();
        assert_eq!(from_ohwi, ohwi);
        assert_eq!(from_oihw, ohwi, "OIHW {o_n}x{i_n}x{kh}x{kw}");
        assert_eq!(from_hwio, ohwi, "HWIO {kh}x{kw}x{i_n}x{o_n}");

        // The convolutions agree ("same" padding where the kernel is odd).
        let in_spec = Spec::dense(2, 6, 5, i_n);
        let input = common::activations(Mode::Exact, in_spec.buffer_len(), 9);
        let window = Window {
            kh,
            kw,
            stride_h: 1,
            stride_w: 1,
            pad_top: kh / 2,
            pad_left: kw / 2,
            pad_bottom: kh / 2,
            pad_right: kw / 2,
        };
        let (oh, ow) = window.output_size(6, 5);
        let out_spec = Spec::dense(2, oh, ow, o_n);
        let init = vec![0.0; out_spec.buffer_len()];
        let results: Vec<Vec<f32>> = [&from_ohwi, &from_oihw, &from_hwio]
            .iter()
            .map(|w| {
                common::reference_conv(
                    &input,
                    &in_spec,
                    w,
                    None,
                    &window,
                    Clamp::NONE,
                    &init,
                    &out_spec,
                )
            })
            .collect();
        assert_eq!(results[1], results[0]);
        assert_eq!(results[2], results[0]);
        if kh == 1 && kw == 1 {
            for isa in common::isas() {
                let outs: Vec<Vec<f32>> = [&from_ohwi, &from_oihw, &from_hwio]
                    .iter()
                    .map(|w| {
                        let conv = conv_for(isa, i_n, o_n, w, None, Epilogue::None);
                        run_with(&conv, &input, &in_spec, &out_spec, Parallelism::Sequential)
                    })
                    .collect();
                common::assert_bits_eq(&outs[0], &results[0], &out_spec, &format!("{isa} OHWI"));
                common::assert_bits_eq(
                    &outs[1],
                    &results[0],
                    &out_spec,
                    &format!("{isa} from OIHW"),
                );
                common::assert_bits_eq(
                    &outs[2],
                    &results[0],
                    &out_spec,
                    &format!("{isa} from HWIO"),
                );
            }
        }
    }
}

/// The crate-level example's concat pattern: two operators writing neighbouring channel slices
/// of one output through `TensorViewMut::channels`, on every ISA.
#[test]
fn two_branches_concatenate_in_place() {
    let in_spec = Spec::dense(2, 3, 7, 11);
    let input = common::activations(Mode::Exact, in_spec.buffer_len(), 5);
    let (ca, cb) = (17, 9);
    let wa = common::weights(Mode::Exact, ca * 11, 1);
    let wb = common::weights(Mode::Exact, cb * 11, 2);
    let ba = common::bias(Mode::Exact, ca, 3);
    let window = common::window_1x1();
    let wide = Spec::dense(2, 3, 7, ca + cb);
    let init = vec![OUTPUT_SENTINEL; wide.buffer_len()];
    let spec_a = Spec::slice(2, 3, 7, ca, 0, cb);
    let spec_b = Spec::slice(2, 3, 7, cb, ca, 0);
    let want = common::reference_conv(
        &input,
        &in_spec,
        &wa,
        Some(&ba),
        &window,
        Clamp::NONE,
        &init,
        &spec_a,
    );
    let want = common::reference_conv(
        &input,
        &in_spec,
        &wb,
        None,
        &window,
        common::clamp_of(Epilogue::Relu6),
        &want,
        &spec_b,
    );
    assert!(
        want.iter().all(|x| !x.is_nan()),
        "the two slices cover the whole tensor"
    );
    for isa in common::isas() {
        let a = conv_for(isa, 11, ca, &wa, Some(&ba), Epilogue::None);
        let b = conv_for(isa, 11, cb, &wb, None, Epilogue::Relu6);
        let mut out = init.clone();
        let mut view = wide.view_mut(&mut out);
        let x = in_spec.view(&input);
        a.run(
            &x,
            &mut view.channels(0, ca).unwrap(),
            Parallelism::Sequential,
        )
        .unwrap();
        b.run(&x, &mut view.channels(ca, cb).unwrap(), Parallelism::Global)
            .unwrap();
        common::assert_bits_eq(&out, &want, &wide, &format!("{isa} concat"));
    }
}
