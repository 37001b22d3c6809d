//! The 1x1 branch of GoogLeNet inception 3a as a plain GEMM, incept against two Rust GEMM
//! crates, all on one thread: `C[784 x 64] = A[784 x 192] x W^T` (A = the 28x28x192 NHWC input,
//! W = the OHWI weights `[64][192]`), no bias, no activation.
//!
//! * `incept`: `Conv1x1` with `Epilogue::None`, `Parallelism::Sequential`; weights packed once
//!   at creation.
//! * `gemm`: the `gemm` crate, `Parallelism::None`, with its AVX-512 path (`x86-v4`).
//! * `matrixmultiply`: `sgemm`, built without its `threading` feature (single-threaded).
//!
//! Both peers pack their operands inside every call; that is part of what a GEMM call costs.
//! Names: `gemm_784x192x64/<library>/t1`; throughput in FLOP (2 per multiply-add).
//! `cargo bench --features peers --bench peers` (add `-- --quick` for a fast look).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use incept::{Conv1x1, Epilogue, Nhwc, Parallelism, TensorView, TensorViewMut};

const M: usize = 28 * 28;
const K: usize = 192;
const N: usize = 64;

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32
                / (1u32 << 24) as f32
                - 0.5
        })
        .collect()
}

/// `c = a x w^T` with the `gemm` crate on the calling thread.
fn run_gemm(a: &[f32], w: &[f32], c: &mut [f32]) {
    assert!(a.len() == M * K && w.len() == N * K && c.len() == M * N);
    // SAFETY: the asserts above: lhs is M x K (row stride K, column stride 1), rhs = w^T is
    // K x N read from w (row stride 1, column stride K), dst is M x N (row stride N); all in
    // bounds, dst does not alias the inputs (it is a distinct `&mut`). read_dst is false, so
    // dst = 1 * a * w^T.
    unsafe {
        gemm::gemm(
            M,
            N,
            K,
            c.as_mut_ptr(),
            1,
            N as isize,
            false,
            a.as_ptr(),
            1,
            K as isize,
            w.as_ptr(),
            K as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `c = a x w^T` with `matrixmultiply::sgemm` (single-threaded: no `threading` feature).
fn run_matrixmultiply(a: &[f32], w: &[f32], c: &mut [f32]) {
    assert!(a.len() == M * K && w.len() == N * K && c.len() == M * N);
    // SAFETY: as in `run_gemm`: A is M x K (rsa K, csa 1), B = w^T is K x N (rsb 1, csb K),
    // C is M x N (rsc N, csc 1), all within the asserted lengths; beta = 0, so C is only written.
    unsafe {
        matrixmultiply::sgemm(
            M,
            K,
            N,
            1.0,
            a.as_ptr(),
            K as isize,
            1,
            w.as_ptr(),
            1,
            K as isize,
            0.0,
            c.as_mut_ptr(),
            N as isize,
            1,
        );
    }
}

fn peers(c: &mut Criterion) {
    let a = values(M * K, 1);
    let w = values(N * K, 2);
    let shape_in = Nhwc::new(1, 28, 28, K);
    let shape_out = Nhwc::new(1, 28, 28, N);
    let conv = Conv1x1::new(K, N, &w, None, Epilogue::None).unwrap();
    let x = TensorView::new(&a, shape_in).unwrap();
    let incept_run = |out: &mut [f32]| {
        let mut y = TensorViewMut::new(out, shape_out).unwrap();
        conv.run(&x, &mut y, Parallelism::Sequential).unwrap();
    };

    // The three compute the same product (up to summation order).
    let (mut c0, mut c1, mut c2) = (vec![0.0; M * N], vec![0.0; M * N], vec![0.0; M * N]);
    incept_run(&mut c0);
    run_gemm(&a, &w, &mut c1);
    run_matrixmultiply(&a, &w, &mut c2);
    for (i, ((&x0, &x1), &x2)) in c0.iter().zip(&c1).zip(&c2).enumerate() {
        assert!(
            (x0 - x1).abs() < 1e-3 && (x0 - x2).abs() < 1e-3,
            "element {i}: incept {x0}, gemm {x1}, matrixmultiply {x2}"
        );
    }
    println!(
        "peers: {M}x{K}x{N} GEMM on 1 thread; incept on {} ({})",
        conv.isa(),
        conv.kernel_name()
    );

    let mut group = c.benchmark_group(format!("gemm_{M}x{K}x{N}"));
    group.throughput(Throughput::Elements(2 * (M * K * N) as u64));
    let mut out = vec![0.0; M * N];
    group.bench_function(BenchmarkId::new("incept", "t1"), |b| {
        b.iter(|| incept_run(&mut out))
    });
    group.bench_function(BenchmarkId::new("gemm", "t1"), |b| {
        b.iter(|| run_gemm(&a, &w, &mut out))
    });
    group.bench_function(BenchmarkId::new("matrixmultiply", "t1"), |b| {
        b.iter(|| run_matrixmultiply(&a, &w, &mut out))
    });
    group.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
