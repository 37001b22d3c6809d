//! Differential fuzzing of the whole `Inception` module against `incept::inception_reference`
//! (the module as separate reference layers): small channel counts, each reduction and the pool
//! projection present or not, batch 1..=3, images 1..=10 pixels a side (sometimes up to 20, so
//! the work is split over threads), channel slices with margins on both views, every ISA this
//! CPU has, sequential and threaded runs. Exact data must match bit for bit; with a few NaN and
//! infinities in the input (special mode) NaN matches NaN. With the 3x3 and 5x5 forced to
//! Winograd (exact data only), outputs must be within 1e-4 of the largest output. Elements
//! outside the output view must keep their sentinel bits.
#![no_main]

use arbitrary::Arbitrary;
use incept::{inception_reference, ConvParams, Inception, InceptionConfig, InceptionWeights, Nhwc};
use incept_fuzz::{
    activations, assert_matches, biases, options, pick_isa, same, weights, Mode, Par, SliceSel,
    Spec, INPUT_PAD, OUTPUT_SENTINEL,
};
use libfuzzer_sys::fuzz_target;

const MAC_BUDGET: u64 = 400_000;

#[derive(Arbitrary, Debug)]
struct Case {
    in_channels: u8,
    c1x1: u8,
    c3x3_reduce: Option<u8>,
    c3x3: u8,
    c5x5_reduce: Option<u8>,
    c5x5: u8,
    pool_proj: Option<u8>,
    /// Which convolutions have a bias (bit i: conv i in the order of `InceptionWeights`).
    bias_mask: u8,
    n: u8,
    h: u8,
    w: u8,
    big: bool,
    input: SliceSel,
    output: SliceSel,
    par: Par,
    isa: u8,
    special: bool,
    special_rate: u8,
    seed: u64,
    /// The 3x3 and 5x5 forced to Winograd (ignored with special data).
    winograd: bool,
}

struct Owned {
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl Owned {
    fn new(len: usize, cout: usize, with_bias: bool, seed: u64) -> Self {
        Owned {
            weights: weights(Mode::Exact, len, seed),
            bias: with_bias.then(|| biases(Mode::Exact, cout, seed)),
        }
    }

    fn params(&self) -> ConvParams<'_> {
        ConvParams {
            weights: &self.weights,
            bias: self.bias.as_deref(),
        }
    }
}

fuzz_target!(|case: Case| check(&case));

fn check(case: &Case) {
    let (side, chans) = if case.big { (20, 32) } else { (10, 12) };
    let small = |v: u8, max: usize| 1 + usize::from(v) % max;
    let config = InceptionConfig {
        in_channels: small(case.in_channels, chans),
        c1x1: small(case.c1x1, chans),
        c3x3_reduce: case.c3x3_reduce.map(|v| small(v, chans)),
        c3x3: small(case.c3x3, chans),
        c5x5_reduce: case.c5x5_reduce.map(|v| small(v, chans)),
        c5x5: small(case.c5x5, chans),
        pool_proj: case.pool_proj.map(|v| small(v, chans)),
    };
    let n = small(case.n, 3);
    let h = small(case.h, side);
    let w = small(case.w, side);
    let cin = config.in_channels;
    let seed = case.seed;
    let bias = |i: u32| case.bias_mask & (1 << i) != 0;

    let conv1 = Owned::new(config.c1x1 * cin, config.c1x1, bias(0), seed);
    let reduce3 = config
        .c3x3_reduce
        .map(|r| Owned::new(r * cin, r, bias(1), seed ^ 1));
    let conv3 = Owned::new(
        config.c3x3 * 9 * config.c3x3_reduce.unwrap_or(cin),
        config.c3x3,
        bias(2),
        seed ^ 2,
    );
    let reduce5 = config
        .c5x5_reduce
        .map(|r| Owned::new(r * cin, r, bias(3), seed ^ 3));
    let conv5 = Owned::new(
        config.c5x5 * 25 * config.c5x5_reduce.unwrap_or(cin),
        config.c5x5,
        bias(4),
        seed ^ 4,
    );
    let proj = config
        .pool_proj
        .map(|p| Owned::new(p * cin, p, bias(5), seed ^ 5));
    let weights = InceptionWeights {
        conv1x1: conv1.params(),
        reduce3x3: reduce3.as_ref().map(Owned::params),
        conv3x3: conv3.params(),
        reduce5x5: reduce5.as_ref().map(Owned::params),
        conv5x5: conv5.params(),
        pool_proj: proj.as_ref().map(Owned::params),
    };

    let isa = pick_isa(case.isa);
    // Winograd turns infinities into NaN where the direct sum has none: exact data only.
    let winograd = case.winograd && !case.special;
    let options = options(isa, winograd);
    let module = Inception::with_options(&config, &weights, options)
        .unwrap_or_else(|e| panic!("valid module refused: {e}\n{case:?}"));
    assert_eq!(module.isa(), isa);
    let in_shape = Nhwc::new(n, h, w, cin);
    if module.macs(in_shape) > MAC_BUDGET {
        return;
    }
    let out_shape = module.output_shape(in_shape);
    assert_eq!(
        out_shape,
        Nhwc {
            c: config.out_channels(),
            ..in_shape
        }
    );

    let mode = if case.special {
        Mode::Special
    } else {
        Mode::Exact
    };
    let x = activations(mode, n * h * w * cin, seed, case.special_rate);
    let dense = inception_reference(&config, &weights, &x, in_shape)
        .unwrap_or_else(|e| panic!("reference refused a valid module: {e}\n{case:?}"));

    let in_spec = Spec::new(in_shape, case.input);
    let out_spec = Spec::new(out_shape, case.output);
    let in_buf = in_spec.buffer_with(&x, INPUT_PAD);
    let init = vec![OUTPUT_SENTINEL; out_spec.buffer_len()];
    let mut want = init.clone();
    let total = out_shape.c;
    for p in 0..n * h * w {
        for ch in 0..total {
            want[out_spec.index(p, ch)] = dense[p * total + ch];
        }
    }
    let mut got = init;
    let input = in_spec.view(&in_buf);
    out_spec
        .with_view_mut(&mut got, |out| module.run(&input, out, case.par.get()))
        .unwrap_or_else(|e| panic!("module run failed: {e}\n{case:?}"));
    // Without a projection the pool branch stores pooled values, where which of `-0.0` and
    // `0.0` wins a tie is not specified: there zeros compare with `==`.
    let first_pooled = config.c1x1 + config.c3x3 + config.c5x5;
    let pooled_channel = |idx: usize| {
        config.pool_proj.is_none()
            && (idx - out_spec.offset()) % out_spec.pixel_stride() >= first_pooled
    };
    // Winograd: one bound for the whole output, from its largest value (the documented error).
    let largest = dense.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert_matches(&got, &want, &out_spec, case, |idx, g, w| {
        let zeros = pooled_channel(idx) && g == 0.0 && w == 0.0;
        if winograd {
            return (g - w).abs() <= 1e-4 * largest;
        }
        match mode {
            Mode::Exact => g.to_bits() == w.to_bits() || zeros,
            _ => same(g, w) || zeros,
        }
    });
}
