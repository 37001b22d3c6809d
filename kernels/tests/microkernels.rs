//! One tester run against every microkernel this CPU supports (XNNPACK's
//! `GemmMicrokernelTester` idea): every `mr` up to MR, `nr` around NR, reduction lengths around
//! the unroll, several taps with negative offsets, strided input and output, each epilogue.
//! Inputs are small integers so every sum is exact: each kernel must match bit for bit.

use incept_kernels::{
    conv_kernel, run_tile, run_tiles, Clamp, IsaToken, KernelInfo, KernelIsa, Tap, TapSet, Tile,
    TileError, TileRepeat,
};

const ALL_ISAS: [KernelIsa; 4] = [
    KernelIsa::Scalar,
    KernelIsa::Avx2,
    KernelIsa::Avx512,
    KernelIsa::Neon,
];

fn supported_kernels() -> Vec<(&'static KernelInfo, IsaToken)> {
    ALL_ISAS
        .iter()
        .filter_map(|&isa| Some((conv_kernel(isa)?, IsaToken::new(isa)?)))
        .collect()
}

/// Deterministic small integers in -3..=3, about a third of them zero.
fn ints(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (s >> 33) % 10;
            if r < 3 {
                0.0
            } else {
                (r as f32) - 6.0
            }
        })
        .map(|x: f32| x.clamp(-3.0, 3.0))
        .collect()
}

struct Case {
    mr: usize,
    nr: usize,
    k: usize,
    taps: Vec<Tap>,
    a_stride: usize,
    c_stride: usize,
    clamp: Clamp,
}

fn check(kernel: &KernelInfo, token: IsaToken, case: &Case, seed: u64) {
    let Case {
        mr,
        nr,
        k,
        ref taps,
        a_stride,
        c_stride,
        clamp,
    } = *case;
    // Input: room for negative tap offsets before pixel 0.
    let lead = taps
        .iter()
        .map(|t| (-t.input_offset).max(0) as usize)
        .max()
        .unwrap_or(0);
    let max_off = taps
        .iter()
        .map(|t| t.input_offset.max(0) as usize)
        .max()
        .unwrap_or(0);
    let mut a = ints(lead + (mr - 1) * a_stride + max_off + k + 3, seed);
    // Every element no pixel may read (its tap skips it) becomes NaN: a kernel that read one
    // would add it and give NaN.
    let mut read = vec![false; a.len()];
    for t in taps {
        for i in (0..mr).filter(|&i| t.reads(i, mr)) {
            let first = (lead + i * a_stride) as isize + t.input_offset;
            read[first as usize..first as usize + k].fill(true);
        }
    }
    for (x, _) in a.iter_mut().zip(&read).filter(|(_, &r)| !r) {
        *x = f32::NAN;
    }
    let taps_len = taps.len();
    let w = ints(kernel.nr + taps_len * k * kernel.nr, seed ^ 0xABCD);
    let sentinel = 1234.5f32;
    let mut c = vec![sentinel; (mr - 1) * c_stride + kernel.nr + 2];
    let tile = Tile {
        mr,
        nr,
        k,
        a_offset: lead,
        a_pixel_stride: a_stride,
        w_offset: 0,
        c_offset: 1,
        c_pixel_stride: c_stride,
        clamp,
    };
    run_tile(kernel, &tile, &TapSet::new(taps), &a, &w, &mut c, token).unwrap();
    for (idx, &got) in c.iter().enumerate() {
        let in_tile = idx >= 1 && (idx - 1) % c_stride < nr && (idx - 1) / c_stride < mr;
        if !in_tile {
            assert_eq!(
                got.to_bits(),
                sentinel.to_bits(),
                "{}: wrote outside the tile at {idx}",
                kernel.name
            );
            continue;
        }
        let (i, j) = ((idx - 1) / c_stride, (idx - 1) % c_stride);
        let mut acc = w[j];
        for t in taps.iter().filter(|t| t.reads(i, mr)) {
            for q in 0..k {
                let ai = (lead + i * a_stride) as isize + t.input_offset + q as isize;
                acc += a[ai as usize] * w[kernel.nr + t.weight_offset + q * kernel.nr + j];
            }
        }
        let want = if k == 0 { w[j] } else { acc };
        let want = clamp.apply(want);
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{}: mr={mr} nr={nr} k={k} taps={taps_len} pixel {i} channel {j}: got {got}, want {want}",
            kernel.name
        );
    }
}

fn taps_for(count: usize, k: usize, nr: usize, spacing: isize) -> Vec<Tap> {
    (0..count)
        .map(|t| Tap::new((t as isize - (count as isize) / 2) * spacing, t * k * nr))
        .collect()
}

#[test]
fn every_tile_shape_matches_the_sums_bit_for_bit() {
    let kernels = supported_kernels();
    assert!(!kernels.is_empty());
    for (kernel, token) in kernels {
        let nrs = [
            1,
            kernel.nr / 2,
            kernel.nr / 2 + 1,
            kernel.nr - 1,
            kernel.nr,
        ];
        for mr in 1..=kernel.mr {
            for &nr in &nrs {
                for k in [0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 33] {
                    // Taps apart, and end to end (a window row of a dense input, which a
                    // kernel may sum as one longer tap).
                    for (tap_count, end_to_end) in [(1, false), (3, false), (3, true)] {
                        let a_stride = k + 2;
                        let spacing = if end_to_end { k } else { a_stride * 2 + 1 };
                        let case = Case {
                            mr,
                            nr,
                            k,
                            taps: taps_for(tap_count, k, kernel.nr, spacing as isize),
                            a_stride,
                            c_stride: kernel.nr + 3,
                            clamp: Clamp::NONE,
                        };
                        check(kernel, token, &case, (mr * 1000 + nr * 10 + k) as u64);
                    }
                }
            }
        }
    }
}

#[test]
fn taps_that_skip_edge_pixels_are_neither_read_nor_added() {
    for (kernel, token) in supported_kernels() {
        let max = kernel.max_skip.min(3) as u32;
        if max == 0 {
            // A kernel without skips refuses them.
            let tap = [Tap {
                skip_head: 1,
                ..Tap::new(0, 0)
            }];
            let tile = Tile {
                mr: 1,
                nr: 1,
                k: 1,
                a_offset: 0,
                a_pixel_stride: 1,
                w_offset: 0,
                c_offset: 0,
                c_pixel_stride: 1,
                clamp: Clamp::NONE,
            };
            let w = vec![0.0; 2 * kernel.nr];
            let result = run_tile(
                kernel,
                &tile,
                &TapSet::new(&tap),
                &[1.0],
                &w,
                &mut [0.0],
                token,
            );
            assert_eq!(result, Err(TileError::Taps), "{}", kernel.name);
            continue;
        }
        for mr in 1..=kernel.mr {
            // A dense row (the taps end to end) and a strided one.
            for (k, a_stride) in [1, 4, 7, 16].into_iter().flat_map(|k| [(k, k), (k, k + 1)]) {
                // A row of 2*max+1 taps one pixel apart, as across a padded window: the first
                // ones skip pixels at the head, the last ones at the tail.
                let count = 2 * max + 1;
                let taps: Vec<Tap> = (0..count)
                    .map(|t| {
                        let mut tap = Tap::new(
                            (t as isize - max as isize) * a_stride as isize,
                            t as usize * k * kernel.nr,
                        );
                        if t < max {
                            tap.skip_head = max - t;
                        } else if t > max {
                            tap.skip_tail = t - max;
                        }
                        tap
                    })
                    .collect();
                let case = Case {
                    mr,
                    nr: kernel.nr,
                    k,
                    taps,
                    a_stride,
                    c_stride: kernel.nr + 1,
                    clamp: Clamp::NONE,
                };
                check(kernel, token, &case, (mr * 100 + k) as u64);
            }
        }
        // Beyond the kernel's skips, or at both ends: refused.
        let a = vec![1.0; 64];
        let w = vec![0.0; 2 * kernel.nr];
        let mut c = vec![0.0; kernel.mr * kernel.nr];
        let tile = Tile {
            mr: kernel.mr,
            nr: 1,
            k: 1,
            a_offset: 0,
            a_pixel_stride: 1,
            w_offset: 0,
            c_offset: 0,
            c_pixel_stride: kernel.nr,
            clamp: Clamp::NONE,
        };
        let bad = [
            Tap {
                skip_head: 1,
                skip_tail: 1,
                ..Tap::new(0, 0)
            },
            Tap {
                skip_tail: kernel.max_skip.saturating_add(1).min(u32::MAX as usize) as u32,
                ..Tap::new(0, 0)
            },
        ];
        for tap in bad {
            if tap.skip_tail as usize <= kernel.max_skip && tap.skip_head == 0 {
                continue; // the portable kernel takes any skip
            }
            let result = run_tile(kernel, &tile, &TapSet::new(&[tap]), &a, &w, &mut c, token);
            assert_eq!(result, Err(TileError::Taps), "{}: {tap:?}", kernel.name);
        }
    }
}

#[test]
fn epilogues_and_nan_pass_through() {
    for (kernel, token) in supported_kernels() {
        for clamp in [
            Clamp::NONE,
            Clamp {
                min: 0.0,
                max: f32::INFINITY,
            },
            Clamp {
                min: -2.0,
                max: 6.0,
            },
            Clamp { min: 1.0, max: 1.0 },
        ] {
            let case = Case {
                mr: kernel.mr,
                nr: kernel.nr,
                k: 7,
                taps: vec![Tap::new(0, 0)],
                a_stride: 9,
                c_stride: kernel.nr,
                clamp,
            };
            check(kernel, token, &case, 7);
        }
        // NaN and infinities follow IEEE arithmetic and survive the clamp.
        let k = 2;
        let a = [f32::NAN, 1.0, f32::INFINITY, 1.0, 1.0, 1.0];
        let mut w = vec![0.0; kernel.nr + k * kernel.nr];
        w[kernel.nr] = 1.0; // channel 0 weight for q = 0
        let mut c = vec![0.0; 3 * kernel.nr];
        let tile = Tile {
            mr: 3,
            nr: 1,
            k,
            a_offset: 0,
            a_pixel_stride: 2,
            w_offset: 0,
            c_offset: 0,
            c_pixel_stride: kernel.nr,
            clamp: Clamp { min: 0.0, max: 6.0 },
        };
        let taps = [Tap::new(0, 0)];
        run_tile(kernel, &tile, &TapSet::new(&taps), &a, &w, &mut c, token).unwrap();
        assert!(
            c[0].is_nan(),
            "{}: NaN must propagate through ReLU6, got {}",
            kernel.name,
            c[0]
        );
        assert_eq!(c[kernel.nr], 6.0, "{}", kernel.name);
        assert_eq!(c[2 * kernel.nr], 1.0, "{}", kernel.name);
    }
}

#[test]
fn run_tile_refuses_out_of_bounds_tiles() {
    for (kernel, token) in supported_kernels() {
        let taps = [Tap::new(-1, 0)];
        let set = TapSet::new(&taps);
        let a = vec![1.0; 16];
        let w = vec![1.0; 2 * kernel.nr];
        let mut c = vec![0.0; kernel.nr];
        let base = Tile {
            mr: 1,
            nr: 1,
            k: 1,
            a_offset: 1,
            a_pixel_stride: 1,
            w_offset: 0,
            c_offset: 0,
            c_pixel_stride: 1,
            clamp: Clamp::NONE,
        };
        assert_eq!(run_tile(kernel, &base, &set, &a, &w, &mut c, token), Ok(()));
        let bad = |t: Tile| run_tile(kernel, &t, &set, &a, &w, &mut c.clone(), token);
        assert_eq!(
            bad(Tile {
                a_offset: 0,
                ..base
            }),
            Err(TileError::Input)
        );
        assert_eq!(
            bad(Tile {
                a_offset: 17,
                ..base
            }),
            Err(TileError::Input)
        );
        assert_eq!(bad(Tile { k: 2, ..base }), Err(TileError::Weights));
        assert_eq!(
            bad(Tile {
                mr: kernel.mr + 1,
                ..base
            }),
            Err(TileError::TileSize)
        );
        assert_eq!(bad(Tile { nr: 0, ..base }), Err(TileError::TileSize));
        assert_eq!(
            bad(Tile {
                c_offset: kernel.nr,
                ..base
            }),
            Err(TileError::Output)
        );
        assert_eq!(
            bad(Tile {
                a_pixel_stride: usize::MAX,
                mr: 2,
                ..base
            }),
            Err(TileError::Input)
        );
        let other = if token.isa() == KernelIsa::Scalar {
            None
        } else {
            IsaToken::new(KernelIsa::Scalar)
        };
        if let Some(scalar) = other {
            assert_eq!(
                run_tile(kernel, &base, &set, &a, &w, &mut c, scalar),
                Err(TileError::Isa)
            );
        }
    }
}

/// `run_tiles` is `run_tile` repeated: rows of tiles and runs of output-channel blocks give
/// the same bits as one call per tile, and a repetition whose last tile would leave a slice is
/// refused before anything is written.
#[test]
fn run_tiles_matches_one_call_per_tile_and_checks_the_last() {
    for (kernel, token) in supported_kernels() {
        let (k, blocks, rows) = (5, 3, 4);
        let mr = kernel.mr.min(3);
        let taps = [Tap::new(0, 0), Tap::new(k as isize, k * kernel.nr)];
        let set = TapSet::new(&taps);
        let block_len = kernel.nr + 2 * k * kernel.nr;
        let w = ints(blocks * block_len, 7);
        let row_in = (mr + 1) * k;
        let a = ints(rows * row_in + k, 8);
        let row_out = blocks * kernel.nr * mr + 1;
        let tile = Tile {
            mr,
            nr: kernel.nr,
            k,
            a_offset: 0,
            a_pixel_stride: k,
            w_offset: 0,
            c_offset: 1,
            c_pixel_stride: blocks * kernel.nr,
            clamp: Clamp {
                min: 0.0,
                max: f32::INFINITY,
            },
        };
        let mut want = vec![0.5; rows * row_out];
        for r in 0..rows {
            for b in 0..blocks {
                let t = Tile {
                    a_offset: r * row_in,
                    w_offset: b * block_len,
                    c_offset: 1 + r * row_out + b * kernel.nr,
                    ..tile
                };
                run_tile(kernel, &t, &set, &a, &w, &mut want, token).unwrap();
            }
        }
        let mut got = vec![0.5; rows * row_out];
        for r in 0..rows {
            let t = Tile {
                a_offset: r * row_in,
                c_offset: 1 + r * row_out,
                ..tile
            };
            let run_of_blocks = TileRepeat {
                count: blocks,
                a_step: 0,
                w_step: block_len,
                c_step: kernel.nr,
            };
            run_tiles(kernel, &t, run_of_blocks, &set, &a, &w, &mut got, token).unwrap();
        }
        assert!(
            got.iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}: blocks",
            kernel.name
        );
        let mut got = vec![0.5; rows * row_out];
        for b in 0..blocks {
            let t = Tile {
                w_offset: b * block_len,
                c_offset: 1 + b * kernel.nr,
                ..tile
            };
            let column = TileRepeat {
                count: rows,
                a_step: row_in,
                w_step: 0,
                c_step: row_out,
            };
            run_tiles(kernel, &t, column, &set, &a, &w, &mut got, token).unwrap();
        }
        assert!(
            got.iter()
                .zip(&want)
                .all(|(x, y)| x.to_bits() == y.to_bits()),
            "{}: rows",
            kernel.name
        );
        // One tile too many along each buffer: refused, nothing written.
        let too_many = |repeat: TileRepeat| {
            let mut c = vec![0.5; rows * row_out];
            let result = run_tiles(kernel, &tile, repeat, &set, &a, &w, &mut c, token);
            assert!(c.iter().all(|&x| x == 0.5), "{}: wrote", kernel.name);
            result
        };
        let steps = |count, a_step, w_step, c_step| TileRepeat {
            count,
            a_step,
            w_step,
            c_step,
        };
        assert_eq!(
            too_many(steps(rows + 2, row_in, 0, 0)),
            Err(TileError::Input)
        );
        assert_eq!(
            too_many(steps(blocks + 1, 0, block_len, 0)),
            Err(TileError::Weights)
        );
        assert_eq!(
            too_many(steps(rows + 1, 0, 0, row_out)),
            Err(TileError::Output)
        );
        assert_eq!(
            too_many(steps(2, 0, usize::MAX, 0)),
            Err(TileError::Weights)
        );
        assert_eq!(
            too_many(steps(0, usize::MAX, usize::MAX, usize::MAX)),
            Ok(())
        );
    }
}
