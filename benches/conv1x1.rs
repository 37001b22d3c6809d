//! Criterion benchmarks of the 1x1 convolution (GoogLeNet inception 3a's 1x1 branch,
//! 28x28x192 -> 64, bias + ReLU) on every ISA this CPU has, at 1 thread and all threads.
//! Throughput is in FLOP (2 per multiply-add), so reports read as FLOP/s.
//!
//! `cargo bench --bench conv1x1`; a quick look: `cargo bench --bench conv1x1 -- --quick`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use incept::{isa, Conv1x1, Epilogue, Nhwc, OpOptions, Parallelism, TensorView, TensorViewMut};

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect()
}

fn conv1x1(c: &mut Criterion) {
    let (h, w, cin, cout) = (28, 28, 192, 64);
    let input = values(h * w * cin, 1);
    let weights = values(cout * cin, 2);
    let bias = values(cout, 3);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("conv1x1_192x64");
    group.throughput(Throughput::Elements(2 * (h * w * cin * cout) as u64));
    for &isa in isa::available() {
        let options = OpOptions { max_isa: Some(isa) };
        let conv = Conv1x1::with_options(cin, cout, &weights, Some(&bias), Epilogue::Relu, options)
            .unwrap();
        let mut out = vec![0.0; h * w * cout];
        let view = TensorView::new(&input, Nhwc::new(1, h, w, cin)).unwrap();
        for threads in [1, all] {
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
                    let mut out_view =
                        TensorViewMut::new(&mut out, Nhwc::new(1, h, w, cout)).unwrap();
                    conv.run(&view, &mut out_view, par).unwrap();
                })
            });
            if all == 1 {
                break;
            }
        }
    }
    group.finish();
}

criterion_group!(benches, conv1x1);
criterion_main!(benches);
