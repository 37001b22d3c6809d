//! `cargo run --release`: GoogLeNet inception 3a on seeded data, branch by branch, timed,
//! costed and checked against the reference composition of separate layers.

use incept::cost::{thousands, BottleneckCost};
use incept::{inception_reference, isa, Inception, Nhwc, Parallelism, TensorView, TensorViewMut};

use super::bench::{measure, Row};
use super::peak;
use super::workloads::{uniform, Spec, MODULE_3A};

const SECONDS: f64 = 0.25;

pub fn run() -> Result<(), String> {
    let isa = isa::resolve(None).map_err(|e| e.to_string())?;
    let threads = rayon::current_num_threads();
    let peak_1t = peak::gflops_1t(isa, 7);
    let peak = peak_1t * threads as f64;
    outln!("incept: GoogLeNet inception 3a on a 28x28x192 input (seeded random data)");
    outln!("cpu:     {}", super::cpu_name());
    let names: Vec<&str> = isa::available().iter().map(|i| i.name()).collect();
    outln!(
        "isa:     {isa} (available: {}; cap with INCEPT_MAX_ISA)",
        names.join(", ")
    );
    outln!("threads: {threads}   measured FMA peak: {peak_1t:.1} GFLOP/s per thread, {peak:.1} for {threads}");
    outln!();

    let time = |spec: Spec| measure(&spec, 1, threads, incept::OpOptions::default(), SECONDS);
    let relaxed = incept::OpOptions {
        accuracy: incept::Accuracy::Relaxed,
        ..incept::OpOptions::default()
    };
    let row = |label: &str, shape: &str, macs: u64, r: &Row| -> Result<(), String> {
        let (rate, _) = r.rate();
        outln!(
            "{label:<34} {shape:<11} {:>13} {:>9.3} {:>8.1} {:>6.0}%",
            thousands(macs),
            r.median_ms(),
            rate,
            100.0 * rate / peak
        );
        Ok(())
    };
    outln!(
        "{:<34} {:<11} {:>13} {:>9} {:>8} {:>7}",
        "branch",
        "output",
        "multiplies",
        "ms",
        "GFLOP/s",
        "peak"
    );
    let px = 28 * 28;
    let b3 = BottleneckCost::new(28, 28, 192, 96, 128, 3);
    let b5 = BottleneckCost::new(28, 28, 192, 16, 32, 5);
    let c1 = 64 * 192 * px as u64;
    let proj = 32 * 192 * px as u64;
    row("1x1 64", "28x28x64", c1, &time(Spec::Named("conv1x1"))?)?;
    row(
        "1x1 96 -> 3x3 128 (fused)",
        "28x28x128",
        b3.with_bottleneck(),
        &bottleneck3(threads)?,
    )?;
    row(
        "1x1 16 -> 5x5 32 (fused)",
        "28x28x32",
        b5.with_bottleneck(),
        &time(Spec::Named("bottleneck"))?,
    )?;
    row(
        "3x3 max-pool -> 1x1 32 (fused)",
        "28x28x32",
        proj,
        &time(Spec::Named("pool-proj"))?,
    )?;
    let total = c1 + b3.with_bottleneck() + b5.with_bottleneck() + proj;
    row(
        "module, fused, concat in place",
        "28x28x256",
        total,
        &time(Spec::Named("inception"))?,
    )?;
    row(
        "module, layer by layer",
        "28x28x256",
        total,
        &time(Spec::Named("inception-unfused"))?,
    )?;
    row(
        "module, fused, Winograd 3x3 + 5x5",
        "28x28x256",
        total,
        &measure(&Spec::Named("inception"), 1, threads, relaxed, SECONDS)?,
    )?;
    outln!();

    let naive = time(Spec::Named("conv5x5"))?;
    let reduced = time(Spec::Named("bottleneck"))?;
    outln!("the bottleneck lesson (5x5 branch, 28x28x192 -> 32):");
    outln!(
        "  naive 5x5 conv:        {:>13} multiplies, {:.3} ms",
        thousands(b5.naive),
        naive.median_ms()
    );
    outln!(
        "  1x1 to 16, then 5x5:   {} + {} = {} multiplies, {:.3} ms ({:.1}x fewer multiplies, {:.1}x faster)",
        thousands(b5.reduce),
        thousands(b5.conv),
        thousands(b5.with_bottleneck()),
        reduced.median_ms(),
        b5.naive as f64 / b5.with_bottleneck() as f64,
        naive.median_ms() / reduced.median_ms()
    );
    outln!();
    check()
}

/// Times the 3x3 branch as a fused bottleneck (1x1 192 -> 96, 3x3 96 -> 128).
fn bottleneck3(threads: usize) -> Result<Row, String> {
    use incept::{Bottleneck, BottleneckDesc, BottleneckWeights};
    let x = uniform(28 * 28 * 192, 1);
    let (w1, b1) = (
        uniform(96 * 192, 2)
            .iter()
            .map(|v| v / 14.0)
            .collect::<Vec<f32>>(),
        uniform(96, 3),
    );
    let (w2, b2) = (
        uniform(128 * 9 * 96, 4)
            .iter()
            .map(|v| v / 30.0)
            .collect::<Vec<f32>>(),
        uniform(128, 5),
    );
    let op = Bottleneck::new(
        &BottleneckDesc::same_relu(192, 96, 128, 3),
        &BottleneckWeights {
            reduce: &w1,
            reduce_bias: Some(&b1),
            conv: &w2,
            conv_bias: Some(&b2),
        },
    )
    .map_err(|e| e.to_string())?;
    let mut out = vec![0.0; 28 * 28 * 128];
    let pool = super::bench::pool(threads)?;
    let par = pool
        .as_ref()
        .map_or(Parallelism::Sequential, Parallelism::Pool);
    let (i, o) = (Nhwc::new(1, 28, 28, 192), Nhwc::new(1, 28, 28, 128));
    let mut result = Ok(());
    let timing = super::bench::time(SECONDS, || {
        if result.is_ok() {
            result = TensorView::new(&x, i)
                .and_then(|x| op.run(&x, &mut TensorViewMut::new(&mut out, o)?, par));
        }
    });
    result.map_err(|e| e.to_string())?;
    let flops = 2.0 * BottleneckCost::new(28, 28, 192, 96, 128, 3).with_bottleneck() as f64;
    Ok(Row {
        workload: "bottleneck3x3".into(),
        batch: 1,
        threads,
        isa: op.isa(),
        timing,
        flops,
        bytes: 0.0,
    })
}

/// Runs the fused module once and compares it with the reference composition of layers.
fn check() -> Result<(), String> {
    let err = |e: incept::Error| e.to_string();
    let shape = Nhwc::new(1, 28, 28, 192);
    let x = uniform(shape.element_count().map_err(err)?, 7);
    let params: Vec<(Vec<f32>, Vec<f32>)> = [
        (64, 192),
        (96, 192),
        (128, 9 * 96),
        (16, 192),
        (32, 25 * 16),
        (32, 192),
    ]
    .iter()
    .enumerate()
    .map(|(i, &(o, k))| {
        let scale = 1.0 / (k as f32).sqrt();
        (
            uniform(o * k, 10 + i as u64)
                .iter()
                .map(|v| v * scale)
                .collect(),
            uniform(o, 20 + i as u64),
        )
    })
    .collect();
    let p = |i: usize| incept::ConvParams {
        weights: &params[i].0,
        bias: Some(&params[i].1),
    };
    let weights = incept::InceptionWeights {
        conv1x1: p(0),
        reduce3x3: Some(p(1)),
        conv3x3: p(2),
        reduce5x5: Some(p(3)),
        conv5x5: p(4),
        pool_proj: Some(p(5)),
    };
    let want = inception_reference(&MODULE_3A, &weights, &x, shape).map_err(err)?;
    let max_ref = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (label, accuracy) in [
        ("fused module", incept::Accuracy::Exact),
        (
            "fused module, Winograd 3x3 + 5x5",
            incept::Accuracy::Relaxed,
        ),
    ] {
        let options = incept::OpOptions {
            accuracy,
            ..incept::OpOptions::default()
        };
        let module = Inception::with_options(&MODULE_3A, &weights, options).map_err(err)?;
        let out_shape = module.output_shape(shape);
        let mut got = vec![0.0; out_shape.element_count().map_err(err)?];
        let input = TensorView::new(&x, shape).map_err(err)?;
        module
            .run(
                &input,
                &mut TensorViewMut::new(&mut got, out_shape).map_err(err)?,
                Parallelism::Global,
            )
            .map_err(err)?;
        let max_err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        outln!(
            "check: {label} vs the reference layers (f32 loops): max |difference| = {max_err:.2e} \
             (outputs up to {max_ref:.2}), {} outputs",
            thousands(got.len() as u64)
        );
        if max_err > 1e-3 * max_ref.max(1.0) {
            return Err(format!(
                "the {label} differs from the reference by {max_err}"
            ));
        }
    }
    Ok(())
}
