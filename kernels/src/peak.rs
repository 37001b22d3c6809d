//! A probe of the CPU's f32 FMA throughput: enough independent accumulators to cover the FMA
//! latency, no loads. What every "% of peak" in incept is relative to.

use crate::{IsaToken, KernelIsa};

/// Independent accumulator chains: 12 covers 4-cycle latency x 2 FMA ports with room to spare.
const CHAINS: usize = 12;

/// Runs `iterations` rounds of `12` independent vector FMAs on `isa`; returns the number of
/// floating-point operations done (2 per lane per FMA). Time it to get FLOP/s.
///
/// # Examples
///
/// ```
/// use incept_kernels::peak::fma_probe;
/// use incept_kernels::{IsaToken, KernelIsa};
///
/// let token = IsaToken::new(KernelIsa::Scalar).unwrap();
/// let start = std::time::Instant::now();
/// let flops = fma_probe(token, 1000);
/// let _gflops = flops / start.elapsed().as_secs_f64() / 1e9;
/// assert_eq!(flops, 1000.0 * 12.0 * 2.0); // 12 chains x 1 lane x 2 FLOP
/// ```
pub fn fma_probe(isa: IsaToken, iterations: u64) -> f64 {
    let lanes = match isa.isa() {
        KernelIsa::Scalar => 1,
        KernelIsa::Avx2 => 8,
        KernelIsa::Avx512 => 16,
        KernelIsa::Neon => 4,
    };
    let sink = match isa.isa() {
        // SAFETY: the token proves the CPU supports the ISA of each probe.
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx2 => unsafe { x86::fma_avx2(iterations) },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        KernelIsa::Avx512 => unsafe { x86::fma_avx512(iterations) },
        // SAFETY: as above.
        #[cfg(target_arch = "aarch64")]
        KernelIsa::Neon => unsafe { neon::fma_neon(iterations) },
        _ => scalar(iterations),
    };
    core::hint::black_box(sink);
    (iterations as f64) * (CHAINS * lanes * 2) as f64
}

fn scalar(iterations: u64) -> f32 {
    let mut acc = [0.0f32; CHAINS];
    let (a, b) = (
        core::hint::black_box(0.999f32),
        core::hint::black_box(0.001f32),
    );
    for _ in 0..iterations {
        for x in acc.iter_mut() {
            *x = *x * a + b;
        }
    }
    acc.iter().sum()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use core::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_avx512(iterations: u64) -> f32 {
        let a = _mm512_set1_ps(core::hint::black_box(0.999));
        let b = _mm512_set1_ps(core::hint::black_box(0.001));
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().fold(0.0, |s, &x| s + _mm512_reduce_add_ps(x))
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_avx2(iterations: u64) -> f32 {
        let a = _mm256_set1_ps(core::hint::black_box(0.999));
        let b = _mm256_set1_ps(core::hint::black_box(0.001));
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut lanes = [0.0f32; 8];
        let mut sum = 0.0;
        for x in acc {
            // SAFETY: `lanes` holds 8 floats.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), x) };
            sum += lanes.iter().sum::<f32>();
        }
        sum
    }
}

#[cfg(target_arch = "aarch64")]
mod neon {
    use super::CHAINS;
    use core::arch::aarch64::*;

    /// # Safety
    /// The CPU must support NEON (always true on AArch64).
    #[target_feature(enable = "neon")]
    pub(super) unsafe fn fma_neon(iterations: u64) -> f32 {
        let a = vdupq_n_f32(core::hint::black_box(0.999));
        let b = vdupq_n_f32(core::hint::black_box(0.001));
        let mut acc = [vdupq_n_f32(0.0); CHAINS];
        for _ in 0..iterations {
            for x in acc.iter_mut() {
                *x = vfmaq_f32(b, *x, a);
            }
        }
        acc.iter().fold(0.0, |s, &x| s + vaddvq_f32(x))
    }
}
