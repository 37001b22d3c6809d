//! The Inception module against the reference composition of separate layers: all nine
//! GoogLeNet configurations at their spatial sizes, the variants without reductions, batch > 1,
//! a channel slice of a wider output, every ISA, bit-identical for any thread count.

mod common;

use common::{activations, bias, isas_for_full_size_tests, thread_pool, weights, Mode};
use incept::{
    inception_reference, Accuracy, ConvAlgorithm, ConvParams, Inception, InceptionConfig,
    InceptionWeights, Isa, Nhwc, OpOptions, Parallelism, PoolSchedule, TensorView, TensorViewMut,
};

/// Owned weights for a config.
struct Owned {
    w: Vec<Vec<f32>>,
    b: Vec<Vec<f32>>,
}

fn make_weights(cfg: &InceptionConfig, mode: Mode, seed: u64) -> Owned {
    let cin = cfg.in_channels;
    let shapes = [
        (cfg.c1x1, cin),
        (cfg.c3x3_reduce.unwrap_or(0), cin),
        (cfg.c3x3, 9 * cfg.c3x3_reduce.unwrap_or(cin)),
        (cfg.c5x5_reduce.unwrap_or(0), cin),
        (cfg.c5x5, 25 * cfg.c5x5_reduce.unwrap_or(cin)),
        (cfg.pool_proj.unwrap_or(0), cin),
    ];
    let w = shapes
        .iter()
        .enumerate()
        .map(|(i, &(o, k))| weights(mode, o * k, seed + i as u64))
        .collect();
    let b = shapes
        .iter()
        .enumerate()
        .map(|(i, &(o, _))| bias(mode, o, seed + 10 + i as u64))
        .collect();
    Owned { w, b }
}

fn borrow<'a>(cfg: &InceptionConfig, o: &'a Owned) -> InceptionWeights<'a> {
    let p = |i: usize| ConvParams {
        weights: &o.w[i],
        bias: Some(&o.b[i]),
    };
    InceptionWeights {
        conv1x1: p(0),
        reduce3x3: cfg.c3x3_reduce.map(|_| p(1)),
        conv3x3: p(2),
        reduce5x5: cfg.c5x5_reduce.map(|_| p(3)),
        conv5x5: p(4),
        pool_proj: cfg.pool_proj.map(|_| p(5)),
    }
}

/// Runs `cfg` on an `n x size x size` input on every ISA and several parallelisms, writing into
/// channels `3..` of a wider output; checks against the reference.
fn check(cfg: &InceptionConfig, n: usize, size: usize, mode: Mode, pars: &[Parallelism<'_>]) {
    check_with(cfg, n, (size, size), mode, pars, OpOptions::default(), &[]);
}

/// The pool schedules to test on `isa`: both where interleaving exists (AVX-512), else the
/// separate one.
fn schedules(isa: Isa) -> Vec<PoolSchedule> {
    match isa {
        Isa::Avx512 => vec![PoolSchedule::Separate, PoolSchedule::Interleaved],
        _ => vec![PoolSchedule::Separate],
    }
}

/// [`check`] with options (the ISA cap and the pool schedule are set per ISA) and `specials`
/// (index modulo the input length, value) written into the input. Under `Accuracy::Relaxed`
/// (Winograd) the bound is relative to the largest output: Winograd spreads rounding over a
/// tile. Any NaN matches any NaN.
fn check_with(
    cfg: &InceptionConfig,
    n: usize,
    (h, w): (usize, usize),
    mode: Mode,
    pars: &[Parallelism<'_>],
    options: OpOptions,
    specials: &[(usize, f32)],
) {
    let relaxed = options.accuracy == Accuracy::Relaxed;
    let shape = Nhwc::new(n, h, w, cfg.in_channels);
    let mut x = activations(mode, shape.element_count().unwrap(), (h * w) as u64);
    for &(at, value) in specials {
        let len = x.len();
        x[at % len] = value;
    }
    let owned = make_weights(cfg, mode, cfg.in_channels as u64);
    let wts = borrow(cfg, &owned);
    let want = inception_reference(cfg, &wts, &x, shape).unwrap();
    let largest = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let total = cfg.out_channels();
    let wide = total + 4;
    for (isa, pool_schedule) in isas_for_full_size_tests()
        .into_iter()
        .flat_map(|isa| schedules(isa).into_iter().map(move |s| (isa, s)))
    {
        let options = OpOptions {
            max_isa: Some(isa),
            pool_schedule,
            ..options
        };
        let module = Inception::with_options(cfg, &wts, options).unwrap();
        let mut first: Option<Vec<f32>> = None;
        for &par in pars {
            let mut out = vec![f32::NAN; shape.pixels() * wide];
            let input = TensorView::new(&x, shape).unwrap();
            let mut view =
                TensorViewMut::with_layout(&mut out, Nhwc { c: total, ..shape }, wide, 3).unwrap();
            module.run(&input, &mut view, par).unwrap();
            for p in 0..shape.pixels() {
                for ch in 0..wide {
                    let got = out[p * wide + ch];
                    if ch < 3 || ch >= 3 + total {
                        assert!(
                            got.is_nan(),
                            "{isa}: wrote outside the view at pixel {p} channel {ch}"
                        );
                        continue;
                    }
                    let want = want[p * total + ch - 3];
                    let ok = match mode {
                        _ if want.is_nan() => got.is_nan(),
                        _ if relaxed => (got - want).abs() <= 1e-4 * largest,
                        Mode::Exact => got.to_bits() == want.to_bits(),
                        Mode::Random => (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                    };
                    assert!(ok, "{isa} {pool_schedule:?} {par:?} {cfg:?} n{n} {h}x{w}: pixel {p} channel {}: got {got}, want {want}", ch - 3);
                }
            }
            match &first {
                None => first = Some(out),
                Some(f) => assert!(
                    f.iter().zip(&out).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{isa} {pool_schedule:?}: results differ between parallelisms"
                ),
            }
        }
    }
}

#[test]
fn all_nine_googlenet_modules_are_exact() {
    let pool = thread_pool(3);
    for (name, cfg, size) in InceptionConfig::GOOGLENET {
        let n = if name == "3a" { 2 } else { 1 };
        check(
            &cfg,
            n,
            size,
            Mode::Exact,
            &[Parallelism::Sequential, Parallelism::Pool(&pool)],
        );
    }
}

#[test]
fn variants_without_reductions_or_projection() {
    let seed = InceptionConfig {
        in_channels: 24,
        c1x1: 8,
        c3x3_reduce: None,
        c3x3: 16,
        c5x5_reduce: None,
        c5x5: 4,
        pool_proj: None,
    };
    let bottleneck_5x5_only = InceptionConfig {
        c5x5_reduce: Some(6),
        ..seed
    };
    let pool = thread_pool(2);
    for cfg in [seed, bottleneck_5x5_only] {
        for (n, size) in [(1, 28), (2, 7), (1, 3), (1, 1)] {
            check(
                &cfg,
                n,
                size,
                Mode::Exact,
                &[Parallelism::Sequential, Parallelism::Pool(&pool)],
            );
        }
    }
}

#[test]
fn random_floats_and_thread_counts() {
    let cfg = InceptionConfig::GOOGLENET[0].1;
    let pools: Vec<rayon::ThreadPool> = (1..=3).map(thread_pool).collect();
    let pars = [
        Parallelism::Sequential,
        Parallelism::Global,
        Parallelism::Pool(&pools[0]),
        Parallelism::Pool(&pools[1]),
        Parallelism::Pool(&pools[2]),
    ];
    check(&cfg, 3, 28, Mode::Random, &pars);
}

#[test]
fn nan_and_infinities_in_the_input() {
    // 3a on two small images: NaNs anywhere (a band's own rows, the rows around it, image
    // borders) send the interleaved pool branch back to the exact pool; infinities do not.
    let cfg = InceptionConfig::GOOGLENET[0].1;
    let pool = thread_pool(3);
    let pars = [Parallelism::Sequential, Parallelism::Pool(&pool)];
    let c = cfg.in_channels;
    let at = |n: usize, y: usize, x: usize, ch: usize| ((n * 9 + y) * 9 + x) * c + ch;
    // A NaN in each row in turn: some lie just outside a band's or a task's rows.
    let one_nan_per_run = (0..18).map(|y| vec![(at(y / 9, y % 9, y % 9, 5 * y), f32::NAN)]);
    for specials in one_nan_per_run.chain([
        vec![
            (at(1, 0, 8, 191), f32::NAN),
            (at(0, 8, 0, 0), f32::INFINITY),
        ],
        vec![
            (at(0, 2, 3, 17), f32::NEG_INFINITY),
            (at(1, 5, 1, 64), f32::INFINITY),
        ],
    ]) {
        let options = OpOptions::default();
        check_with(&cfg, 2, (9, 9), Mode::Exact, &pars, options, &specials);
    }
}

#[test]
fn mismatched_weights_and_shapes_are_errors() {
    let cfg = InceptionConfig::GOOGLENET[0].1;
    let owned = make_weights(&cfg, Mode::Exact, 1);
    let mut wts = borrow(&cfg, &owned);
    wts.pool_proj = None;
    let err = Inception::new(&cfg, &wts).unwrap_err();
    assert!(err.to_string().contains("pool projection"), "{err}");
    let wts = borrow(&cfg, &owned);
    let module = Inception::new(&cfg, &wts).unwrap();
    let x = vec![0.0; 28 * 28 * 192];
    let mut out = vec![0.0; 28 * 28 * 255];
    let err = module
        .run(
            &TensorView::new(&x, Nhwc::new(1, 28, 28, 192)).unwrap(),
            &mut TensorViewMut::new(&mut out, Nhwc::new(1, 28, 28, 255)).unwrap(),
            Parallelism::Sequential,
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("28x28x255") && err.to_string().contains("256"),
        "{err}"
    );
}

/// Images taller than a band: each task walks several bands, keeping the reduced rows it
/// already has (the 3x3's reduction with a one-row halo, the 5x5's with two), and tasks of two
/// or three threads start and end inside images and cross from one image into the next; with
/// three threads the tasks also share one buffer of the whole batch's reductions (small enough
/// then). With each reduction alone, both, and none; exact and Winograd.
#[test]
fn tall_images_walk_several_bands_per_task() {
    let pools: Vec<rayon::ThreadPool> = [2, 3].iter().map(|&t| thread_pool(t)).collect();
    let pars = [
        Parallelism::Sequential,
        Parallelism::Pool(&pools[0]),
        Parallelism::Pool(&pools[1]),
    ];
    // 64 input channels: a multiple of 16, so the pool branch also runs interleaved; enough
    // work that the runs are split among threads.
    let both = InceptionConfig {
        in_channels: 64,
        c1x1: 8,
        c3x3_reduce: Some(12),
        c3x3: 8,
        c5x5_reduce: Some(4),
        c5x5: 6,
        pool_proj: Some(4),
    };
    let configs = [
        both,
        InceptionConfig {
            c5x5_reduce: None,
            ..both
        },
        InceptionConfig {
            c3x3_reduce: None,
            ..both
        },
        InceptionConfig {
            c3x3_reduce: None,
            c5x5_reduce: None,
            ..both
        },
    ];
    // Under qemu (CI's NEON run) fewer shapes: the reference layers are slow emulated.
    let shapes: &[(usize, (usize, usize))] = if cfg!(target_arch = "aarch64") {
        &[(3, (37, 5))]
    } else {
        &[(1, (75, 6)), (2, (45, 8)), (3, (37, 5))]
    };
    for cfg in &configs {
        for &(n, hw) in shapes {
            for (mode, accuracy, algorithm) in [
                (Mode::Exact, Accuracy::Exact, ConvAlgorithm::Auto),
                // Forced: `Auto` keeps these narrow convolutions direct.
                (Mode::Random, Accuracy::Relaxed, ConvAlgorithm::Winograd),
            ] {
                let options = OpOptions {
                    accuracy,
                    algorithm,
                    ..OpOptions::default()
                };
                check_with(cfg, n, hw, mode, &pars, options, &[]);
            }
        }
    }
}

/// Runs of the module from inside rayon tasks of the pool it runs on: a thread waiting for its
/// run's tasks may run another run's tasks, which then cannot take the batch's shared buffer of
/// reduced rows (the waiting run holds it) and compute their own. Every output stays the
/// sequential one, bit for bit.
#[test]
fn runs_nested_in_the_pool_they_use() {
    use rayon::prelude::*;
    let cfg = InceptionConfig::GOOGLENET[0].1;
    let owned = make_weights(&cfg, Mode::Random, 5);
    let module = Inception::new(&cfg, &borrow(&cfg, &owned)).unwrap();
    let shape = Nhwc::new(1, 14, 14, cfg.in_channels);
    let out_shape = module.output_shape(shape);
    let run = |x: &[f32], par| {
        let mut out = vec![0.0; out_shape.element_count().unwrap()];
        let input = TensorView::new(x, shape).unwrap();
        let mut view = TensorViewMut::new(&mut out, out_shape).unwrap();
        module.run(&input, &mut view, par).unwrap();
        out
    };
    let inputs: Vec<Vec<f32>> = (0..12)
        .map(|seed| activations(Mode::Random, shape.element_count().unwrap(), seed))
        .collect();
    let want: Vec<Vec<f32>> = inputs
        .iter()
        .map(|x| run(x, Parallelism::Sequential))
        .collect();
    let pool = thread_pool(3);
    for _ in 0..10 {
        let got: Vec<Vec<f32>> = pool.install(|| {
            inputs
                .par_iter()
                .map(|x| run(x, Parallelism::Global))
                .collect()
        });
        for (got, want) in got.iter().zip(&want) {
            assert!(got
                .iter()
                .zip(want)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

/// Under `Accuracy::Relaxed` the 3x3 branch runs with Winograd F(4x4, 3x3) and the 5x5 branch
/// with F(2x2, 5x5), fused behind their reductions: within 1e-4 of the largest output against
/// the exact reference layers, at the three GoogLeNet spatial sizes, batch 2 (bands and tasks
/// crossing images), every ISA, and bit-identical for any thread count.
#[test]
fn winograd_modules_match_the_reference() {
    let pool = thread_pool(3);
    let options = OpOptions {
        accuracy: Accuracy::Relaxed,
        ..OpOptions::default()
    };
    // Under qemu (CI's NEON run) the 7x7 module only: the reference layers are slow emulated.
    let names: &[&str] = if cfg!(target_arch = "aarch64") {
        &["5b"]
    } else {
        &["3a", "3b", "4e", "5b"]
    };
    for (name, cfg, size) in InceptionConfig::GOOGLENET {
        if !names.contains(&name) {
            continue;
        }
        check_with(
            &cfg,
            2,
            (size, size),
            Mode::Random,
            &[
                Parallelism::Sequential,
                Parallelism::Pool(&pool),
                Parallelism::Global,
            ],
            options,
            &[],
        );
    }
}
