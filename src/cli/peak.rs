//! This CPU's measured f32 FMA peak, the reference for every "% of peak".

use std::time::Instant;

use incept::Isa;
use incept_kernels::{peak::fma_probe, IsaToken, KernelIsa};

/// Median GFLOP/s of `reps` short FMA probes on `isa` on the calling thread.
pub fn gflops_1t(isa: Isa, reps: usize) -> f64 {
    let kernel_isa = match isa {
        Isa::Scalar => KernelIsa::Scalar,
        Isa::Avx2 => KernelIsa::Avx2,
        Isa::Avx512 => KernelIsa::Avx512,
        Isa::Neon => KernelIsa::Neon,
    };
    let Some(token) = IsaToken::new(kernel_isa) else {
        return 0.0;
    };
    let iterations = if isa == Isa::Scalar {
        200_000
    } else {
        1_000_000
    };
    fma_probe(token, iterations / 10); // warm up
    let mut rates: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            let flop = fma_probe(token, iterations);
            flop / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Median GFLOP/s with `threads` threads each running the probe at once.
pub fn gflops(isa: Isa, threads: usize, reps: usize) -> f64 {
    if threads <= 1 {
        return gflops_1t(isa, reps);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| gflops_1t(isa, reps)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}
