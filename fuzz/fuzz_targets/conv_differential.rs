//! Differential fuzzing of the convolutions against `incept::reference::conv2d`: `Conv2d`
//! (kernels of 1..=7 rows and columns, square or not, strides 1..=3 per axis, per-side padding
//! below the kernel's side along it), `Conv1x1`, and the fused
//! `Bottleneck` (1x1 then KxK, against the two reference layers), on every ISA this CPU has
//! (through `OpOptions::max_isa`), every epilogue (invalid clamps must be refused), channel
//! slices with margins on both views, and sequential / global / 2- and 3-thread pools.
//!
//! Exact and special data must match bit for bit (NaN matches NaN); random data must be within
//! the rounding bound and bit-identical to a sequential run. `Conv2d` also runs as Winograd
//! (`ConvAlgorithm::Winograd`): refused unless 3x3 or 5x5 at stride 1, else on random data within
//! a bound relative to the largest output (Winograd spreads rounding over a tile) and
//! bit-identical to a sequential run. Elements outside the output view
//! must keep their sentinel bits.
#![no_main]

use arbitrary::Arbitrary;
use incept::reference::{self, Layout, Window};
use incept::{
    Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc, ErrorKind, Isa,
    Nhwc, Padding, Parallelism, Result, TensorView, TensorViewMut,
};
use incept_fuzz::{
    activations, assert_matches, biases, clamp_of, epilogue_is_valid, options, pick_isa, same,
    weights, EpilogueSel, Mode, Par, SliceSel, Spec, INPUT_PAD, OUTPUT_SENTINEL,
};
use libfuzzer_sys::fuzz_target;

/// Largest reference work (multiply-adds) of one input, so each execution stays fast.
const MAC_BUDGET: usize = 600_000;

#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Conv2d,
    Conv1x1,
    Bottleneck,
}

#[derive(Arbitrary, Debug)]
struct Case {
    op: Op,
    n: u8,
    h: u8,
    w: u8,
    cin: u8,
    cout: u8,
    reduce: u8,
    kernel: u8,
    stride: u8,
    /// `Conv2d`: another kernel width and horizontal stride (else square).
    cols: Option<(u8, u8)>,
    padding: [u8; 4],
    epilogue: EpilogueSel,
    reduce_epilogue: EpilogueSel,
    bias: bool,
    reduce_bias: bool,
    input: SliceSel,
    output: SliceSel,
    par: Par,
    isa: u8,
    mode: Mode,
    special_rate: u8,
    seed: u64,
    /// Larger images and channel counts (work above the 2^18 threshold runs on several threads).
    big: bool,
    /// `Conv2d` forced to Winograd.
    winograd: bool,
}

enum Built {
    C1(Conv1x1),
    C2(Conv2d),
    B(Bottleneck),
}

impl Built {
    fn isa(&self) -> Isa {
        match self {
            Built::C1(op) => op.isa(),
            Built::C2(op) => op.isa(),
            Built::B(op) => op.isa(),
        }
    }

    fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        match self {
            Built::C1(op) => Ok(Nhwc {
                c: op.out_channels(),
                ..input
            }),
            Built::C2(op) => op.output_shape(input),
            Built::B(op) => op.output_shape(input),
        }
    }

    fn run(
        &self,
        x: &TensorView<'_>,
        y: &mut TensorViewMut<'_>,
        par: Parallelism<'_>,
    ) -> Result<()> {
        match self {
            Built::C1(op) => op.run(x, y, par),
            Built::C2(op) => op.run(x, y, par),
            Built::B(op) => op.run(x, y, par),
        }
    }
}

fuzz_target!(|case: Case| check(&case));

fn check(case: &Case) {
    let op = case.op;
    let (side, chans) = if case.big { (24, 72) } else { (10, 20) };
    let n = 1 + usize::from(case.n) % 3;
    let h = 1 + usize::from(case.h) % side;
    let w = 1 + usize::from(case.w) % side;
    let cin = 1 + usize::from(case.cin) % chans;
    let cout = 1 + usize::from(case.cout) % chans;
    let reduce = 1 + usize::from(case.reduce) % chans;
    // [rows, cols] of the kernel and the stride.
    let (kernel, stride, padding) = if op == Op::Conv1x1 {
        ([1, 1], [1, 1], Padding::default())
    } else {
        let (kh, sh) = (
            1 + usize::from(case.kernel) % 7,
            1 + usize::from(case.stride) % 3,
        );
        let (kw, sw) = match case.cols {
            Some((k, s)) if op == Op::Conv2d => (1 + usize::from(k) % 7, 1 + usize::from(s) % 3),
            _ => (kh, sh),
        };
        let p = case.padding;
        let padding = Padding {
            top: usize::from(p[0]) % kh,
            left: usize::from(p[1]) % kw,
            bottom: usize::from(p[2]) % kh,
            right: usize::from(p[3]) % kw,
        };
        ([kh, kw], [sh, sw], padding)
    };
    let taps = kernel[0] * kernel[1];
    let winograd = case.winograd && op == Op::Conv2d;
    // The bottleneck's reference is two layers: its random-mode bound would need both stages'.
    // Winograd's results are not sums of exact products, and infinities make it NaN: random data.
    let mode = match (op, case.mode) {
        _ if winograd => Mode::Random,
        (Op::Bottleneck, Mode::Random) => Mode::Exact,
        (_, mode) => mode,
    };
    let seed = case.seed;
    let isa = pick_isa(case.isa);
    let options = options(isa, winograd);
    let epilogue = case.epilogue.get();
    let reduce_epilogue = case.reduce_epilogue.get();
    let conv_cin = if op == Op::Bottleneck { reduce } else { cin };

    let wts = weights(mode, cout * taps * conv_cin, seed);
    let bias = case.bias.then(|| biases(mode, cout, seed));
    let reduce_wts = weights(mode, reduce * cin, seed ^ 0x5EED);
    let reduce_bias = case
        .reduce_bias
        .then(|| biases(mode, reduce, seed ^ 0x5EED));

    let built = match op {
        Op::Conv1x1 => Conv1x1::with_options(cin, cout, &wts, bias.as_deref(), epilogue, options)
            .map(Built::C1),
        Op::Conv2d => {
            let desc = Conv2dDesc {
                in_channels: cin,
                out_channels: cout,
                kernel,
                stride,
                padding,
                epilogue,
            };
            Conv2d::with_options(&desc, &wts, bias.as_deref(), options).map(Built::C2)
        }
        Op::Bottleneck => {
            let desc = BottleneckDesc {
                in_channels: cin,
                reduce_channels: reduce,
                out_channels: cout,
                kernel: kernel[0],
                stride: stride[0],
                padding,
                reduce_epilogue,
                epilogue,
            };
            let weights = BottleneckWeights {
                reduce: &reduce_wts,
                reduce_bias: reduce_bias.as_deref(),
                conv: &wts,
                conv_bias: bias.as_deref(),
            };
            Bottleneck::with_options(&desc, &weights, options).map(Built::B)
        }
    };
    if winograd_refused(winograd, kernel, stride, &built) {
        return;
    }
    let valid =
        epilogue_is_valid(epilogue) && (op != Op::Bottleneck || epilogue_is_valid(reduce_epilogue));
    let built = match (built, valid) {
        (Ok(built), true) => built,
        (Err(e), false) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(e.message().contains("clamp"), "{e}");
            return;
        }
        (Ok(_), false) => panic!("an invalid epilogue was accepted: {case:?}"),
        (Err(e), true) => panic!("a valid operator was refused: {e}\n{case:?}"),
    };
    assert_eq!(built.isa(), isa, "max_isa {isa} must select {isa}");

    let window = Window {
        kh: kernel[0],
        kw: kernel[1],
        stride_h: stride[0],
        stride_w: stride[1],
        pad_top: padding.top,
        pad_left: padding.left,
        pad_bottom: padding.bottom,
        pad_right: padding.right,
    };
    let in_shape = Nhwc::new(n, h, w, cin);
    let fits = h + padding.top + padding.bottom >= kernel[0]
        && w + padding.left + padding.right >= kernel[1];
    if !fits {
        let e = built
            .output_shape(in_shape)
            .expect_err("a kernel larger than the padded input must be refused");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
        return;
    }
    let (oh, ow) = window.output_size(h, w);
    let out_shape = Nhwc::new(n, oh, ow, cout);
    assert_eq!(
        built.output_shape(in_shape).ok(),
        Some(out_shape),
        "{case:?}"
    );
    let macs = n * oh * ow * taps * conv_cin * cout
        + if op == Op::Bottleneck {
            n * h * w * cin * reduce
        } else {
            0
        };
    if macs > MAC_BUDGET {
        return;
    }

    let in_spec = Spec::new(in_shape, case.input);
    let out_spec = Spec::new(out_shape, case.output);
    let x = activations(mode, in_spec.pixels() * cin, seed, case.special_rate);
    let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];

    // The oracle, on `input` (the random-mode bound runs it on absolute values).
    let oracle = |input: &[f32], wts: &[f32], bias: Option<&[f32]>, clamped: bool| {
        let clamp = |e| {
            if clamped {
                clamp_of(e)
            } else {
                reference::Clamp::NONE
            }
        };
        let mut out = init.clone();
        if op == Op::Bottleneck {
            let mid_layout = Layout::dense(n, h, w, reduce);
            let mut mid = vec![0.0; n * h * w * reduce];
            let one = Window::square(1, 1, 0);
            reference::conv2d(
                input,
                &in_spec.layout(),
                &reduce_wts,
                reduce_bias.as_deref(),
                &one,
                clamp(reduce_epilogue),
                &mut mid,
                &mid_layout,
            );
            reference::conv2d(
                &mid,
                &mid_layout,
                wts,
                bias,
                &window,
                clamp(epilogue),
                &mut out,
                &out_spec.layout(),
            );
        } else {
            reference::conv2d(
                input,
                &in_spec.layout(),
                wts,
                bias,
                &window,
                clamp(epilogue),
                &mut out,
                &out_spec.layout(),
            );
        }
        out
    };
    let want = oracle(&in_buf, &wts, bias.as_deref(), true);

    let input = in_spec.view(&in_buf);
    let run = |par: Par| {
        let mut got = init.clone();
        out_spec
            .with_view_mut(&mut got, |out| built.run(&input, out, par.get()))
            .unwrap_or_else(|e| panic!("run failed: {e}\n{case:?}"));
        got
    };
    let got = run(case.par);
    match mode {
        Mode::Exact => assert_matches(&got, &want, &out_spec, case, |_, g, w| {
            g.to_bits() == w.to_bits()
        }),
        Mode::Special => assert_matches(&got, &want, &out_spec, case, |_, g, w| same(g, w)),
        Mode::Random => {
            let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
            let abs_bias = bias.as_deref().map(abs);
            let mut magnitude = oracle(&abs(&in_buf), &abs(&wts), abs_bias.as_deref(), false);
            let reduction = (taps * cin + 1) as f32;
            if winograd {
                // One bound for the whole tensor, from its largest magnitude.
                let largest = magnitude
                    .iter()
                    .zip(out_spec.mask())
                    .filter(|(_, inside)| *inside)
                    .fold(0.0f32, |m, (&v, _)| m.max(v));
                magnitude.fill(16.0 * largest);
            }
            assert_matches(&got, &want, &out_spec, case, |idx, g, w| {
                (g - w).abs() <= reduction * f32::EPSILON * magnitude[idx] + 1e-6
            });
            if case.par != Par::Sequential {
                let seq = run(Par::Sequential);
                assert_matches(&got, &seq, &out_spec, case, |_, g, w| {
                    g.to_bits() == w.to_bits()
                });
            }
        }
    }
}

/// Whether Winograd was (rightly) refused: asked for anything but a 3x3 or 5x5 at stride 1, the
/// operator must be an `InvalidArgument` naming Winograd.
fn winograd_refused(
    winograd: bool,
    kernel: [usize; 2],
    stride: [usize; 2],
    built: &Result<Built>,
) -> bool {
    if !winograd || (matches!(kernel, [3, 3] | [5, 5]) && stride == [1, 1]) {
        return false;
    }
    match built {
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
            assert!(e.message().contains("Winograd"), "{e}");
        }
        Ok(_) => panic!("Winograd accepted a {kernel:?} stride-{stride:?} convolution"),
    }
    true
}
