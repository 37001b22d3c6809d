//! Differential fuzzing of `MaxPool2d` against `incept::reference::max_pool2d`, and of the fused
//! `PoolProjection` against the reference pool followed by the reference 1x1 convolution: windows
//! of 1..=9 rows and columns (sometimes up to 64), square or not, strides 1..=4 per axis, per-side
//! padding below the window's side along it, 1..=80 channels (every
//! vector remainder and channel block of every ISA), channel slices with margins, every ISA this
//! CPU has, sequential and threaded runs, and each `PoolSchedule` of the projection (the
//! Inception-shaped pool over multiples of 16 channels, which the interleaved one runs, is drawn
//! apart). Inputs hold NaN, infinities, signed zeros and huge finite values at positions the
//! fuzzer picks.
//!
//! Max-pool: the maximum is exact, so results must be equal (`==`, so `-0.0` matches `0.0`:
//! which zero wins a tie is not specified), and a NaN anywhere in a window must give a NaN (any
//! payload). Pool projection: bit for bit as the convolutions (NaN matches NaN), or within the
//! rounding bound for random data.
#![no_main]

use arbitrary::Arbitrary;
use incept::reference::{self, Layout, Window};
use incept::{
    ConvParams, MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, PoolProjection, PoolSchedule,
};
use incept_fuzz::{
    activations, assert_matches, biases, clamp_of, epilogue_is_valid, pick_isa, same, weights,
    EpilogueSel, Mode, Par, SliceSel, Spec, INPUT_PAD, OUTPUT_SENTINEL,
};
use libfuzzer_sys::fuzz_target;

const MAC_BUDGET: usize = 600_000;

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Special {
    Nan,
    NegativeNan,
    Inf,
    NegInf,
    NegZero,
    Max,
    Lowest,
}

impl Special {
    fn value(self) -> f32 {
        match self {
            Special::Nan => f32::NAN,
            Special::NegativeNan => f32::from_bits(0xffc0_1234),
            Special::Inf => f32::INFINITY,
            Special::NegInf => f32::NEG_INFINITY,
            Special::NegZero => -0.0,
            Special::Max => f32::MAX,
            Special::Lowest => f32::MIN,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Case {
    projection: bool,
    n: u8,
    h: u8,
    w: u8,
    c: u8,
    cout: u8,
    kernel: u8,
    large_kernel: bool,
    stride: u8,
    /// Another window width and horizontal stride (else the window is square).
    rect: Option<(u8, u8)>,
    padding: [u8; 4],
    input: SliceSel,
    output: SliceSel,
    par: Par,
    isa: u8,
    mode: Mode,
    seed: u64,
    epilogue: EpilogueSel,
    bias: bool,
    /// (position mod the element count, value) written into the input.
    specials: Vec<(u16, Special)>,
    /// The Inception pool (3x3, stride 1, padded by 1) over a multiple of 16 channels, the shape
    /// the interleaved schedule runs.
    inception_shape: bool,
    /// The projection's `PoolSchedule`: Auto, Separate or Interleaved.
    schedule: u8,
}

fuzz_target!(|case: Case| check(&case));

fn check(case: &Case) {
    let n = 1 + usize::from(case.n) % 3;
    let h = 1 + usize::from(case.h) % 12;
    let w = 1 + usize::from(case.w) % 12;
    let c = if case.inception_shape {
        16 * (1 + usize::from(case.c) % 5)
    } else {
        1 + usize::from(case.c) % 80
    };
    let cout = 1 + usize::from(case.cout) % 40;
    let side = |k: u8| 1 + usize::from(k) % if case.large_kernel { 64 } else { 9 };
    let (kh, sh) = (side(case.kernel), 1 + usize::from(case.stride) % 4);
    let (kw, sw) = case
        .rect
        .map_or((kh, sh), |(k, s)| (side(k), 1 + usize::from(s) % 4));
    let p = [
        usize::from(case.padding[0]) % kh,
        usize::from(case.padding[1]) % kw,
        usize::from(case.padding[2]) % kh,
        usize::from(case.padding[3]) % kw,
    ];
    let (kh, kw, sh, sw, p) = if case.inception_shape {
        (3, 3, 1, 1, [1; 4])
    } else {
        (kh, kw, sh, sw, p)
    };
    let padding = Padding {
        top: p[0],
        left: p[1],
        bottom: p[2],
        right: p[3],
    };
    let desc = MaxPool2dDesc {
        kernel: [kh, kw],
        stride: [sh, sw],
        padding,
    };
    let isa = pick_isa(case.isa);
    let options = OpOptions::with_max_isa(Some(isa));
    let mode = case.mode;
    let seed = case.seed;
    let in_shape = Nhwc::new(n, h, w, c);
    let fits = h + p[0] + p[2] >= kh && w + p[1] + p[3] >= kw;
    let window = Window {
        kh,
        kw,
        stride_h: sh,
        stride_w: sw,
        pad_top: p[0],
        pad_left: p[1],
        pad_bottom: p[2],
        pad_right: p[3],
    };

    let pool = MaxPool2d::with_options(&desc, options).expect("valid max-pool");
    assert_eq!(pool.isa(), isa);
    if !fits {
        let e = pool
            .output_shape(in_shape)
            .expect_err("a window larger than the padded input must be refused");
        assert_eq!(e.kind(), incept::ErrorKind::InvalidArgument, "{e}");
        return;
    }
    let (oh, ow) = window.output_size(h, w);
    let pooled_shape = Nhwc::new(n, oh, ow, c);
    assert_eq!(pool.output_shape(in_shape).ok(), Some(pooled_shape));
    if n * oh * ow * c * (kh * kw + if case.projection { cout } else { 0 }) > MAC_BUDGET {
        return;
    }

    let in_spec = Spec::new(in_shape, case.input);
    // Special data is exact data plus the specials below.
    let data_mode = if mode == Mode::Random {
        Mode::Random
    } else {
        Mode::Exact
    };
    let mut x = activations(data_mode, in_spec.pixels() * c, seed, 0);
    if mode == Mode::Special {
        let len = x.len();
        for &(at, v) in &case.specials {
            // Huge finite values would make the projection's sums depend on the order and on
            // FMA (`MAX * 2 - MAX`): they are for the pool alone.
            let huge = matches!(v, Special::Max | Special::Lowest);
            x[usize::from(at) % len] = if huge && case.projection {
                -0.0
            } else {
                v.value()
            };
        }
    }
    let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
    let input = in_spec.view(&in_buf);

    if !case.projection {
        let out_spec = Spec::new(pooled_shape, case.output);
        let mut want = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
        let mut got = want.clone();
        reference::max_pool2d(
            &in_buf,
            &in_spec.layout(),
            &window,
            &mut want,
            &out_spec.layout(),
        );
        out_spec
            .with_view_mut(&mut got, |out| pool.run(&input, out, case.par.get()))
            .unwrap_or_else(|e| panic!("max-pool failed: {e}\n{case:?}"));
        assert_matches(&got, &want, &out_spec, case, |_, g, w| same(g, w) || g == w);
        return;
    }

    let epilogue = case.epilogue.get();
    let wts = weights(data_mode, cout * c, seed);
    let bias = case.bias.then(|| biases(data_mode, cout, seed));
    let params = ConvParams {
        weights: &wts,
        bias: bias.as_deref(),
    };
    let schedule = [
        PoolSchedule::Auto,
        PoolSchedule::Separate,
        PoolSchedule::Interleaved,
    ][usize::from(case.schedule) % 3];
    let interleavable = isa == incept::Isa::Avx512
        && (kh, kw, sh, sw, p) == (3, 3, 1, 1, [1; 4])
        && c % 16 == 0;
    let options = OpOptions {
        pool_schedule: schedule,
        ..options
    };
    let op = match PoolProjection::with_options(&desc, c, cout, params, epilogue, options) {
        Ok(op) => {
            assert!(epilogue_is_valid(epilogue), "invalid {epilogue:?} accepted");
            assert!(
                schedule != PoolSchedule::Interleaved || interleavable,
                "interleaved accepted where it cannot run\n{case:?}"
            );
            op
        }
        // The epilogue is checked first.
        Err(e)
            if schedule == PoolSchedule::Interleaved
                && !interleavable
                && epilogue_is_valid(epilogue) =>
        {
            assert!(
                e.to_string().contains("interleaved pool schedule needs"),
                "{e}\n{case:?}"
            );
            return;
        }
        Err(e) => {
            assert!(
                !epilogue_is_valid(epilogue),
                "valid case refused: {e}\n{case:?}"
            );
            return;
        }
    };
    assert_eq!(op.isa(), isa);
    let out_spec = Spec::new(
        Nhwc {
            c: cout,
            ..pooled_shape
        },
        case.output,
    );
    assert_eq!(op.output_shape(in_shape).ok(), Some(out_spec.shape));
    let pooled_layout = Layout::dense(n, oh, ow, c);
    let mut pooled = vec![0.0; n * oh * ow * c];
    reference::max_pool2d(
        &in_buf,
        &in_spec.layout(),
        &window,
        &mut pooled,
        &pooled_layout,
    );
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    let project = |pooled: &[f32], wts: &[f32], bias: Option<&[f32]>, clamp| {
        let mut out = init.clone();
        let one = Window::square(1, 1, 0);
        reference::conv2d(
            pooled,
            &pooled_layout,
            wts,
            bias,
            &one,
            clamp,
            &mut out,
            &out_spec.layout(),
        );
        out
    };
    let want = project(&pooled, &wts, bias.as_deref(), clamp_of(epilogue));
    let mut got = init.clone();
    out_spec
        .with_view_mut(&mut got, |out| op.run(&input, out, case.par.get()))
        .unwrap_or_else(|e| panic!("pool projection failed: {e}\n{case:?}"));
    if mode == Mode::Random {
        let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
        let abs_bias = bias.as_deref().map(abs);
        let magnitude = project(
            &abs(&pooled),
            &abs(&wts),
            abs_bias.as_deref(),
            reference::Clamp::NONE,
        );
        let reduction = (c + 1) as f32;
        assert_matches(&got, &want, &out_spec, case, |idx, g, w| {
            (g - w).abs() <= reduction * f32::EPSILON * magnitude[idx] + 1e-6
        });
    } else {
        assert_matches(&got, &want, &out_spec, case, |_, g, w| same(g, w));
    }
}
