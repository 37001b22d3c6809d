//! The pooling tile driver (`pooling_tile::pool_project`) against a naive 3x3 "same" max-pool
//! and 1x1 projection: random geometries (several images, runs starting and ending mid-row or
//! mid-image, pixel strides above the channels, every output-channel remainder), exact integer
//! data so every sum is exact, NaNs and infinities; then every check of its arguments.

use incept_kernels::pooling_tile::{
    pool_project, pooling_kernel, PoolInput, Projection, ProjectionOutput,
};
use incept_kernels::{Clamp, IsaToken, KernelIsa, TileError};

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A small integer, half of them zero: products and sums stay exact.
    fn int(&mut self) -> f32 {
        if self.below(2) == 0 {
            0.0
        } else {
            self.below(5) as f32 - 2.0
        }
    }
}

const SENTINEL: u32 = 0x7fc0_dead;
const NR: usize = 32;
const NO_CLAMP: Clamp = Clamp {
    min: f32::NEG_INFINITY,
    max: f32::INFINITY,
};

#[test]
fn pool_project_matches_pool_then_projection() {
    let Some(token) = IsaToken::new(KernelIsa::Avx512) else {
        eprintln!("skipped: this CPU has no AVX-512 (the only pooling tile)");
        return;
    };
    let kernel = pooling_kernel(KernelIsa::Avx512).expect("AVX-512 has a pooling tile");
    let mut rng = Rng(7);
    let (mut with_nan, mut clean_runs) = (0, 0);
    for case in 0..3000 {
        let (images, h, w) = (1 + rng.below(3), 1 + rng.below(5), 1 + rng.below(17));
        let channels = 16 * (1 + rng.below(3));
        let col = channels + 16 * rng.below(2);
        let offset = rng.below(5);
        let total = images * h * w;
        let mut data: Vec<f32> = (0..offset + (total - 1) * col + channels)
            .map(|_| rng.int())
            .collect();
        let start = rng.below(total);
        let end = start + 1 + rng.below(total - start);
        for _ in 0..rng.below(3) {
            let at = rng.below(data.len());
            data[at] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.below(3)];
        }
        let out_channels = 1 + rng.below(70);
        let block_len = NR + channels * NR;
        let weights: Vec<f32> = (0..out_channels.div_ceil(NR) * block_len)
            .map(|_| rng.int())
            .collect();
        let out_ps = out_channels + rng.below(3);
        let count = end - start;
        let mut out = vec![f32::from_bits(SENTINEL); 3 + (count - 1) * out_ps + out_channels + 3];
        let mut scratch = vec![0.0; 2 * 14 * channels];
        let input = PoolInput {
            data: &data,
            offset,
            images,
            h,
            w,
            pixel_stride: col,
            channels,
        };
        let proj = Projection {
            weights: &weights,
            block_len,
            out_channels,
            clamp: NO_CLAMP,
        };
        let dest = ProjectionOutput {
            data: &mut out,
            offset: 3,
            pixel_stride: out_ps,
        };
        let clean = pool_project(kernel, &input, start..end, &proj, &mut scratch, dest, token)
            .unwrap_or_else(|e| panic!("case {case}: {e:?}"));

        let mut read_nan = false;
        for (i, p) in (start..end).enumerate() {
            let (n, y, x) = (p / (h * w), p / w % h, p % w);
            let mut pooled = vec![f32::NEG_INFINITY; channels];
            for ty in y.saturating_sub(1)..(y + 2).min(h) {
                for tx in x.saturating_sub(1)..(x + 2).min(w) {
                    let q = (n * h + ty) * w + tx;
                    for (ch, m) in pooled.iter_mut().enumerate() {
                        let v = data[offset + q * col + ch];
                        read_nan |= v.is_nan();
                        if v > *m {
                            *m = v;
                        }
                    }
                }
            }
            if !clean {
                continue;
            }
            for o in 0..out_channels {
                let (block, lane) = (o / NR, o % NR);
                let w_at = |q: usize| weights[block * block_len + NR + q * NR + lane];
                let want = (0..channels).fold(weights[block * block_len + lane], |acc, q| {
                    acc + pooled[q] * w_at(q)
                });
                let got = out[3 + i * out_ps + o];
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "case {case}: {images}x{h}x{w}x{channels}, pixels {start}..{end}: pixel {p}, \
                     output {o}: got {got}, want {want}"
                );
            }
        }
        if read_nan {
            with_nan += 1;
            assert!(
                !clean,
                "case {case}: the pool read a NaN but reported clean"
            );
        }
        clean_runs += usize::from(clean);
        // Nothing written before, after, or between the pixels' output channels.
        for (i, v) in out.iter().enumerate() {
            let inside = i >= 3 && (i - 3) / out_ps < count && (i - 3) % out_ps < out_channels;
            if !inside {
                assert_eq!(v.to_bits(), SENTINEL, "case {case}: wrote element {i}");
            }
        }
    }
    assert!(
        with_nan > 100 && clean_runs > 1000,
        "{with_nan} NaN runs, {clean_runs} clean"
    );
}

#[test]
fn pool_project_refuses_what_does_not_fit() {
    let Some(token) = IsaToken::new(KernelIsa::Avx512) else {
        eprintln!("skipped: this CPU has no AVX-512 (the only pooling tile)");
        return;
    };
    let kernel = pooling_kernel(KernelIsa::Avx512).expect("AVX-512 has a pooling tile");
    let (images, h, w, channels) = (1, 3, 5, 16);
    let data = vec![1.0; images * h * w * channels];
    let weights = vec![1.0; NR + channels * NR];
    let input = PoolInput {
        data: &data,
        offset: 0,
        images,
        h,
        w,
        pixel_stride: channels,
        channels,
    };
    let proj = Projection {
        weights: &weights,
        block_len: NR + channels * NR,
        out_channels: 3,
        clamp: NO_CLAMP,
    };
    let run = |input: PoolInput<'_>, pixels, proj: Projection<'_>, scratch: usize, out: usize| {
        let mut scratch = vec![0.0; scratch];
        let mut out = vec![0.0; out];
        let dest = ProjectionOutput {
            data: &mut out,
            offset: 0,
            pixel_stride: 3,
        };
        pool_project(kernel, &input, pixels, &proj, &mut scratch, dest, token)
    };
    let (scratch, out) = (28 * channels, 15 * 3);
    assert_eq!(run(input, 0..15, proj, scratch, out), Ok(true));
    let side = Err(TileError::PoolSide);
    for bad in [
        PoolInput {
            channels: 8,
            pixel_stride: 8,
            ..input
        },
        PoolInput {
            pixel_stride: 15,
            ..input
        },
        PoolInput { offset: 1, ..input },
        PoolInput { images: 2, ..input },
        PoolInput { h: 0, ..input },
    ] {
        assert_eq!(run(bad, 0..1, proj, scratch, out), side, "{bad:?}");
    }
    assert_eq!(run(input, 0..16, proj, scratch, out), side);
    assert_eq!(run(input, 0..15, proj, scratch - 1, out), side);
    assert_eq!(
        run(input, 0..15, proj, scratch, out - 1),
        Err(TileError::Output)
    );
    let short = Projection {
        weights: &weights[1..],
        ..proj
    };
    assert_eq!(
        run(input, 0..15, short, scratch, out),
        Err(TileError::Weights)
    );
    let narrow = Projection {
        block_len: NR,
        ..proj
    };
    assert_eq!(
        run(input, 0..15, narrow, scratch, out),
        Err(TileError::Weights)
    );
    let none = Projection {
        out_channels: 0,
        ..proj
    };
    assert_eq!(
        run(input, 0..15, none, scratch, out),
        Err(TileError::Weights)
    );
    // An empty run is clean and writes nothing.
    assert_eq!(run(input, 4..4, proj, scratch, 0), Ok(true));
    // A token of another ISA.
    let scalar = IsaToken::new(KernelIsa::Scalar).expect("scalar always exists");
    let mut out = vec![0.0; out];
    let dest = ProjectionOutput {
        data: &mut out,
        offset: 0,
        pixel_stride: 3,
    };
    let mut scratch = vec![0.0; scratch];
    let result = pool_project(kernel, &input, 0..15, &proj, &mut scratch, dest, scalar);
    assert_eq!(result, Err(TileError::Isa));
}
