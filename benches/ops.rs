//! Criterion benchmarks of incept's operators on GoogLeNet inception 3a shapes (28x28, bias +
//! ReLU), on every ISA this CPU has, at 1 thread and all threads. Throughput is in FLOP (2 per
//! multiply-add, every tap counted as `../shared/peers` counts), so reports read as FLOP/s;
//! max-pool's is in bytes (input read + output written).
//! Names: convolutions `conv<k>x<k>_<cin>x<cout>/<isa>/t<threads>` (e.g.
//! `conv3x3_192x128/avx512/t1`); the other operators `<op>/<isa>/t<threads>` with the
//! workloads of `incept bench` (the same code, `src/cli/workloads.rs`): `maxpool`, `pool-proj`,
//! `bottleneck`, `bottleneck-unfused`, `inception3a`, `inception3a-unfused` (batch 1).
//! The CPU and its measured FMA peak are printed first.
//!
//! `cargo bench --bench ops`; a quick look: `cargo bench --bench ops -- --quick`; one operator:
//! `cargo bench --bench ops -- conv3x3`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use incept::{
    isa, Conv1x1, Conv2d, Conv2dDesc, Epilogue, Nhwc, OpOptions, Parallelism, TensorView,
    TensorViewMut,
};

/// The `incept bench` workloads and the FMA-peak probe, shared with the command line.
#[allow(dead_code)]
#[path = "../src/cli/workloads.rs"]
mod workloads;

#[allow(dead_code)]
#[path = "../src/cli/peak.rs"]
mod peak;

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect()
}

/// Thread counts to run: 1 and all cores (once if they are the same).
fn thread_counts() -> Vec<usize> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all == 1 {
        vec![1]
    } else {
        vec![1, all]
    }
}

/// Benchmarks a `k x k` "same" convolution `28x28xcin -> cout` on every ISA and thread count.
fn conv(c: &mut Criterion, k: usize, cin: usize, cout: usize) {
    let (h, w) = (28, 28);
    let input = workloads::Activations::from_iter(64, values(h * w * cin, 1));
    let weights = values(cout * k * k * cin, 2);
    let bias = values(cout, 3);
    let in_shape = Nhwc::new(1, h, w, cin);
    let out_shape = Nhwc::new(1, h, w, cout);
    let mut group = c.benchmark_group(format!("conv{k}x{k}_{cin}x{cout}"));
    group.throughput(Throughput::Elements(
        2 * (h * w * k * k * cin * cout) as u64,
    ));
    for &isa in isa::available() {
        let options = OpOptions::with_max_isa(Some(isa));
        // Boxed: a `Conv2d` is several times the size of a `Conv1x1`.
        enum Op {
            Pointwise(Conv1x1),
            Direct(Box<Conv2d>),
        }
        let op = if k == 1 {
            Op::Pointwise(
                Conv1x1::with_options(cin, cout, &weights, Some(&bias), Epilogue::Relu, options)
                    .unwrap(),
            )
        } else {
            let desc = Conv2dDesc::same(cin, cout, k, Epilogue::Relu);
            Op::Direct(Box::new(
                Conv2d::with_options(&desc, &weights, Some(&bias), options).unwrap(),
            ))
        };
        let mut out = workloads::zeros(out_shape.element_count().unwrap());
        let view = TensorView::new(&input, in_shape).unwrap();
        for threads in thread_counts() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let par = if threads == 1 {
                Parallelism::Sequential
            } else {
                Parallelism::Pool(&pool)
            };
            group.bench_function(BenchmarkId::new(isa.name(), format!("t{threads}")), |b| {
                b.iter(|| {
                    let mut out_view = TensorViewMut::new(&mut out, out_shape).unwrap();
                    match &op {
                        Op::Pointwise(conv) => conv.run(&view, &mut out_view, par).unwrap(),
                        Op::Direct(conv) => conv.run(&view, &mut out_view, par).unwrap(),
                    }
                })
            });
        }
    }
    group.finish();
}

fn convolutions(c: &mut Criterion) {
    conv(c, 1, 192, 64); // the 1x1 branch
    conv(c, 3, 192, 128); // `incept bench --workload conv3x3`
    conv(c, 5, 192, 32); // `incept bench --workload conv5x5`
    conv(c, 3, 96, 128); // GoogLeNet's 3x3 after its 1x1 reduction
    conv(c, 5, 16, 32); // GoogLeNet's 5x5 after its 1x1 reduction
}

/// Prints the CPU and its measured f32 FMA peak per ISA, the yardstick for the FLOP/s below.
fn setup(_: &mut Criterion) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cpu: {cpu}, {all} threads");
    for &isa in isa::available() {
        let one = peak::gflops_1t(isa, 9);
        let many = peak::gflops(isa, all, 9);
        println!(
            "measured f32 FMA peak on {isa}: {one:.1} GFLOP/s on 1 thread, {many:.1} on {all}"
        );
    }
}

/// Benchmarks an `incept bench` workload (batch 1) on every ISA and thread count.
fn workload(c: &mut Criterion, group_name: &str, name: &'static str) {
    workload_with(c, group_name, name, OpOptions::default());
}

/// [`workload`] with options (their ISA cap is set per ISA).
fn workload_with(c: &mut Criterion, group_name: &str, name: &'static str, options: OpOptions) {
    let spec = workloads::Spec::Named(name);
    let mut group = c.benchmark_group(group_name);
    for &isa in isa::available() {
        let options = OpOptions {
            max_isa: Some(isa),
            ..options
        };
        let mut prepared = workloads::prepare(&spec, 1, options).unwrap();
        if prepared.flops > 0.0 {
            group.throughput(Throughput::Elements(prepared.flops as u64));
        } else {
            group.throughput(Throughput::Bytes(prepared.bytes as u64));
        }
        for threads in thread_counts() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let par = if threads == 1 {
                Parallelism::Sequential
            } else {
                Parallelism::Pool(&pool)
            };
            group.bench_function(BenchmarkId::new(isa.name(), format!("t{threads}")), |b| {
                b.iter(|| (prepared.run)(par).unwrap())
            });
        }
    }
    group.finish();
}

fn operators(c: &mut Criterion) {
    workload(c, "maxpool", "maxpool"); // 3x3 stride 1 of 28x28x192
    workload(c, "pool-proj", "pool-proj"); // then 1x1 192 -> 32, fused
    workload(c, "bottleneck", "bottleneck"); // 1x1 192 -> 16, 5x5 16 -> 32, fused
    workload(c, "bottleneck-unfused", "bottleneck-unfused");
    workload(c, "inception3a", "inception"); // the whole module
    workload(c, "inception3a-unfused", "inception-unfused");
    // Accuracy::Relaxed: the 3x3 and 5x5 convolutions as Winograd F(4x4, 3x3) and F(2x2, 5x5).
    let relaxed = OpOptions {
        accuracy: incept::Accuracy::Relaxed,
        ..OpOptions::default()
    };
    workload_with(c, "conv3x3_192x128-winograd", "conv3x3", relaxed);
    workload_with(c, "conv5x5_192x32-winograd", "conv5x5", relaxed);
    workload_with(c, "inception3a-winograd", "inception", relaxed);
}

criterion_group!(benches, setup, convolutions, operators);
criterion_main!(benches);
