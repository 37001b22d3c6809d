//! One tester run against every max-pool kernel this CPU supports: every pixel count up to 20,
//! every channel count up to 70 (every remainder around the 16/8/4-lane vectors and the
//! blocks of several vectors), wider lines up to 200 channels (AVX-512's 96-channel blocks),
//! windows up to 4x4 moving 1 column per output pixel (the sliding path) or 2, along a row or
//! down a column, padding columns clipped at either end, stacks of lines, gaps between pixels
//! and rows, strided output with sentinels around it.
//!
//! Inputs are small integers (and signed zeros), so the max is exact: every kernel must match
//! a naive loop (zeros compare with `==`). Every input element that no window covers is a NaN:
//! a kernel that reads one (past `channels`, between pixels, between rows) produces a NaN.

use incept_kernels::pool::*;
use incept_kernels::{IsaToken, KernelIsa};

/// Every max-pool kernel compiled for this target, taken from the ISA modules themselves so
/// the suite covers them even if [`pool_kernel`] does not dispatch to one yet.
fn compiled_kernels() -> Vec<&'static PoolKernelInfo> {
    let mut kernels = vec![&incept_kernels::scalar::pool::MAXPOOL];
    #[cfg(target_arch = "x86_64")]
    kernels.extend([
        &incept_kernels::x86_avx2::pool::MAXPOOL,
        &incept_kernels::x86_avx512::pool::MAXPOOL,
    ]);
    #[cfg(target_arch = "aarch64")]
    kernels.push(&incept_kernels::aarch64_neon::pool::MAXPOOL);
    kernels
}

/// The compiled kernels this CPU can run, each with its ISA token.
fn supported_kernels() -> Vec<(&'static PoolKernelInfo, IsaToken)> {
    compiled_kernels()
        .into_iter()
        .filter_map(|k| Some((k, IsaToken::new(k.isa)?)))
        .collect()
}

#[test]
fn pool_kernel_dispatches_to_the_isa_modules() {
    let compiled = compiled_kernels();
    for isa in [
        KernelIsa::Scalar,
        KernelIsa::Avx2,
        KernelIsa::Avx512,
        KernelIsa::Neon,
    ] {
        if let Some(k) = pool_kernel(isa) {
            assert_eq!(k.isa, isa, "{}", k.name);
            assert!(
                compiled.iter().any(|c| c.name == k.name),
                "{} is not tested here",
                k.name
            );
        }
    }
    assert_eq!(
        pool_kernel(KernelIsa::Scalar).unwrap().name,
        "maxpool__scalar"
    );
}

const SENTINEL: f32 = 1234.5;

/// Shape of one stack of lines and of the buffers around it.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    lines: usize,
    pixels: usize,
    channels: usize,
    rows: usize,
    cols: usize,
    /// Window columns between consecutive output pixels.
    step: usize,
    /// Padding columns before the first window and after the last (each less than `cols`).
    pad: (usize, usize),
    /// Rows between the windows of consecutive lines.
    line_step: usize,
    /// The lines run down columns of the image instead of along rows.
    vertical: bool,
    /// Unused elements after each input pixel's channels.
    a_pad: usize,
    /// Unused elements after each output pixel's channels.
    c_pad: usize,
}

impl Geometry {
    /// Input columns of a line (its windows' span less the padding); 0 if none.
    fn in_cols(&self) -> usize {
        ((self.pixels - 1) * self.step + self.cols).saturating_sub(self.pad.0 + self.pad.1)
    }

    /// Whether the contract allows this geometry (every window keeps a column).
    fn valid(&self) -> bool {
        self.pad.0 < self.cols && self.pad.1 < self.cols && self.in_cols() > 0
    }

    fn line(&self) -> PoolLine {
        let col = self.channels + self.a_pad;
        let in_cols = self.in_cols();
        // One unused input column after each line's last column, a few unused elements at the
        // end of each image row.
        let across = (self.lines - 1) * self.line_step + self.rows;
        let width = if self.vertical { across } else { in_cols } + 1;
        let row = width * col + 5;
        let (a_col_stride, a_row_stride) = if self.vertical {
            (row, col)
        } else {
            (col, row)
        };
        let c_pixel_stride = self.channels + self.c_pad;
        PoolLine {
            lines: self.lines,
            pixels: self.pixels,
            channels: self.channels,
            a_offset: col + 2,
            a_line_stride: self.line_step * a_row_stride,
            window_rows: self.rows,
            window_cols: self.cols,
            a_row_stride,
            a_col_stride,
            col_step: self.step,
            pad_left: self.pad.0,
            in_cols,
            c_offset: 3,
            c_pixel_stride,
            c_line_stride: self.pixels * c_pixel_stride + 3,
        }
    }

    /// Exactly the input `run_pool_line` needs (no slack after the last element read).
    fn a_len(&self) -> usize {
        let l = self.line();
        l.a_offset
            + (l.lines - 1) * l.a_line_stride
            + (l.window_rows - 1) * l.a_row_stride
            + (l.in_cols - 1) * l.a_col_stride
            + l.channels
    }

    fn c_len(&self) -> usize {
        let l = self.line();
        l.c_offset
            + (l.lines - 1) * l.c_line_stride
            + (l.pixels - 1) * l.c_pixel_stride
            + l.channels
            + 4
    }

    /// Calls `f` with the index in `a` of every window element (some more than once).
    fn for_each_window_index(&self, mut f: impl FnMut(usize)) {
        let l = self.line();
        for line in 0..self.lines {
            for i in 0..self.pixels {
                for r in 0..self.rows {
                    for q in 0..self.cols {
                        if let Some(base) = a_index(&l, line, i, r, q) {
                            (base..base + self.channels).for_each(&mut f);
                        }
                    }
                }
            }
        }
    }

    /// Every index some window covers, in order.
    fn window_indices(&self) -> Vec<usize> {
        let mut idx = Vec::new();
        self.for_each_window_index(|i| idx.push(i));
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// NaN everywhere, deterministic small integers (some of them -0.0) in every window.
    fn input(&self, seed: u64) -> Vec<f32> {
        let mut a = vec![f32::NAN; self.a_len()];
        self.for_each_window_index(|idx| {
            let mut s = (idx as u64 ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s ^= s >> 29;
            s = s.wrapping_mul(0xBF58_476D_1CE4_E5B9);
            s ^= s >> 32;
            let v = (s % 23) as i32 - 11;
            a[idx] = if v == 0 && s & 64 != 0 {
                -0.0
            } else {
                v as f32
            };
        });
        a
    }
}

/// Index in `a` of window element (r, q), channel 0, of output pixel i of line `line`, or
/// `None` for a padding column.
fn a_index(l: &PoolLine, line: usize, i: usize, r: usize, q: usize) -> Option<usize> {
    let column = (i * l.col_step + q).checked_sub(l.pad_left)?;
    (column < l.in_cols)
        .then(|| l.a_offset + line * l.a_line_stride + r * l.a_row_stride + column * l.a_col_stride)
}

/// Naive max-pool: NaN if any window element is NaN.
fn expected(l: &PoolLine, a: &[f32], line: usize, i: usize, ch: usize) -> f32 {
    let mut best = f32::NEG_INFINITY;
    for r in 0..l.window_rows {
        for q in 0..l.window_cols {
            let Some(idx) = a_index(l, line, i, r, q) else {
                continue;
            };
            let v = a[idx + ch];
            if v.is_nan() {
                return v;
            }
            if v > best {
                best = v;
            }
        }
    }
    best
}

/// Runs `kernel` on `a` and checks every output against the naive loop and every other element
/// of the output buffer against the sentinel.
fn check(kernel: &PoolKernelInfo, token: IsaToken, g: &Geometry, a: &[f32]) {
    let l = g.line();
    let mut c = vec![SENTINEL; g.c_len()];
    run_pool_line(kernel, &l, a, &mut c, token).unwrap();
    for (idx, &got) in c.iter().enumerate() {
        let pos = idx.checked_sub(l.c_offset).map(|r| {
            let within = r % l.c_line_stride;
            (
                r / l.c_line_stride,
                within / l.c_pixel_stride,
                within % l.c_pixel_stride,
            )
        });
        match pos {
            Some((line, i, ch)) if line < g.lines && i < g.pixels && ch < g.channels => {
                let want = expected(&l, a, line, i, ch);
                let ok = if want.is_nan() {
                    got.is_nan()
                } else {
                    got == want
                };
                assert!(
                    ok,
                    "{}: {g:?} line {line} pixel {i} channel {ch}: got {got}, want {want}",
                    kernel.name
                );
            }
            _ => assert_eq!(
                got.to_bits(),
                SENTINEL.to_bits(),
                "{}: {g:?}: wrote outside the output at {idx}",
                kernel.name
            ),
        }
    }
}

/// Every kernel on every combination of `pixels` and `channels` with windows up to 4x4,
/// moving 1 or 2 columns per output pixel along a row (or, for lines up to 8 pixels, down a
/// column), some in stacks of 2 or 3 lines one or two rows apart, with varying padding columns and
/// gaps.
fn sweep(pixel_counts: &[usize], channel_counts: &[usize]) {
    for (kernel, token) in supported_kernels() {
        let mut n = 0usize;
        for &pixels in pixel_counts {
            for &channels in channel_counts {
                for rows in 1..=4 {
                    for cols in 1..=4 {
                        for (step, vertical) in [(1, false), (2, false), (1, true), (2, true)] {
                            if vertical && pixels > 8 {
                                continue;
                            }
                            n += 1;
                            let g = Geometry {
                                lines: [1, 2, 1, 1, 3, 1, 1][n % 7],
                                pixels,
                                channels,
                                rows,
                                cols,
                                step,
                                pad: (n % cols, (n / 7) % cols),
                                line_step: [1, 1, 2][(n / 5) % 3],
                                vertical,
                                a_pad: [0, 3, 16][n % 3],
                                c_pad: [0, 1, 5, 8][n % 4],
                            };
                            if g.valid() {
                                check(kernel, token, &g, &g.input(n as u64));
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_line_shape_matches_the_naive_loop() {
    let pixels: Vec<usize> = (1..=20).collect();
    let channels: Vec<usize> = (1..=70).collect();
    sweep(&pixels, &channels);
}

/// Channel counts past the largest block (96 on AVX-512) and its combinations with the
/// smaller blocks and the tail.
#[test]
fn wide_lines_match_the_naive_loop() {
    sweep(
        &[1, 2, 3, 4, 7, 12],
        &[
            95, 96, 97, 111, 112, 127, 128, 143, 159, 160, 161, 170, 176, 191, 192, 193, 200,
        ],
    );
}

/// Geometries for the NaN and infinity sweeps: the sliding shapes (3x3 and 2x2 stride 1, 3x3
/// stride 2, along a row or down a column), general ones (4x4, 3 columns moving 3), with and
/// without padding columns, in stacks of 2 lines one row apart or two rows apart (a NaN in
/// one line must not leak into the other's outputs), and channel counts that end in a tail
/// of one partial vector or of several vectors, the last partial, after zero, one or several
/// full blocks of each kernel (61, 70, 170).
fn special_geometries() -> Vec<Geometry> {
    let mut gs = Vec::new();
    for (rows, cols, step, pad, line_step, vertical) in [
        (3, 3, 1, (1, 1), 1, false),
        (3, 3, 1, (0, 0), 2, false),
        (2, 2, 1, (1, 0), 1, false),
        (3, 3, 2, (1, 2), 1, false),
        (1, 3, 1, (2, 0), 1, false),
        (4, 4, 1, (1, 2), 1, false),
        (2, 3, 3, (0, 1), 1, false),
        (3, 2, 1, (0, 1), 1, true),
        (3, 3, 2, (1, 1), 2, true),
    ] {
        for channels in [61, 70, 170] {
            gs.push(Geometry {
                lines: 2,
                pixels: 5,
                channels,
                rows,
                cols,
                step,
                pad,
                line_step,
                vertical,
                a_pad: 3,
                c_pad: 2,
            });
        }
    }
    gs
}

#[test]
fn a_nan_anywhere_in_a_window_gives_nan_and_spares_the_others() {
    let nans = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7FC0_1234),
        f32::from_bits(0xFF80_0001), // signalling
    ];
    for (kernel, token) in supported_kernels() {
        for (gi, g) in special_geometries().iter().enumerate() {
            let clean = g.input(gi as u64);
            check(kernel, token, g, &clean);
            // Every window element; every 5th of the widest lines (to bound the run time).
            let every = if g.channels > 100 { 5 } else { 1 };
            for (k, idx) in g.window_indices().into_iter().step_by(every).enumerate() {
                let mut a = clean.clone();
                a[idx] = nans[k % nans.len()];
                check(kernel, token, g, &a);
            }
        }
    }
}

#[test]
fn many_nans_in_one_line() {
    for (kernel, token) in supported_kernels() {
        for (gi, g) in special_geometries().iter().enumerate() {
            let mut a = g.input(gi as u64 + 100);
            // Every 7th window element (many windows, some with several NaNs), then a line
            // whose every element is NaN.
            for idx in g.window_indices().into_iter().step_by(7) {
                a[idx] = f32::NAN;
            }
            check(kernel, token, g, &a);
            for idx in g.window_indices() {
                a[idx] = -f32::NAN;
            }
            check(kernel, token, g, &a);
        }
    }
}

#[test]
fn infinities_are_exact() {
    for (kernel, token) in supported_kernels() {
        for (gi, g) in special_geometries().iter().enumerate() {
            let indices = g.window_indices();
            // All -inf: the max is -inf.
            let mut a = g.input(gi as u64);
            for &idx in &indices {
                a[idx] = f32::NEG_INFINITY;
            }
            check(kernel, token, g, &a);
            // Sprinkled +inf and -inf over integers.
            let mut a = g.input(gi as u64 + 7);
            for (k, &idx) in indices.iter().enumerate() {
                match k % 11 {
                    0 => a[idx] = f32::INFINITY,
                    3 | 5 => a[idx] = f32::NEG_INFINITY,
                    _ => {}
                }
            }
            check(kernel, token, g, &a);
            // Infinities and NaNs together: NaN wins.
            for (k, &idx) in indices.iter().enumerate() {
                if k % 13 == 4 {
                    a[idx] = f32::NAN;
                }
            }
            check(kernel, token, g, &a);
            // One +inf in a window of -inf, at every position.
            let mut a = g.input(gi as u64);
            for &idx in &indices {
                a[idx] = f32::NEG_INFINITY;
            }
            for &idx in indices.iter().step_by(5) {
                let mut b = a.clone();
                b[idx] = f32::INFINITY;
                check(kernel, token, g, &b);
            }
        }
    }
}

#[test]
fn run_pool_line_refuses_bad_lines() {
    for (kernel, token) in supported_kernels() {
        let g = Geometry {
            lines: 2,
            pixels: 3,
            channels: 5,
            rows: 2,
            cols: 2,
            step: 1,
            pad: (1, 0),
            line_step: 1,
            vertical: false,
            a_pad: 0,
            c_pad: 0,
        };
        let line = g.line();
        let a = g.input(1);
        let mut c = vec![0.0; g.c_len()];
        assert_eq!(run_pool_line(kernel, &line, &a, &mut c, token), Ok(()));
        let bad = |l: PoolLine, a: &[f32]| run_pool_line(kernel, &l, a, &mut c.clone(), token);
        use incept_kernels::TileError;
        assert_eq!(bad(line, &a[..a.len() - 1]), Err(TileError::Input));
        assert_eq!(
            bad(
                PoolLine {
                    c_offset: 100,
                    ..line
                },
                &a
            ),
            Err(TileError::Output)
        );
        assert_eq!(
            bad(
                PoolLine {
                    window_rows: 0,
                    ..line
                },
                &a
            ),
            Err(TileError::TileSize)
        );
        for (field, bad_line) in [
            ("lines", PoolLine { lines: 0, ..line }),
            ("in_cols", PoolLine { in_cols: 0, ..line }),
            (
                "pad_left",
                PoolLine {
                    pad_left: 2,
                    ..line
                },
            ),
            // The fifth window would start past the last column.
            ("pixels", PoolLine { pixels: 5, ..line }),
            (
                "col_step",
                PoolLine {
                    col_step: usize::MAX,
                    ..line
                },
            ),
        ] {
            assert_eq!(bad(bad_line, &a), Err(TileError::TileSize), "{field}");
        }
        for (field, bad_line) in [
            (
                "a_line_stride",
                PoolLine {
                    a_line_stride: usize::MAX,
                    ..line
                },
            ),
            (
                "a_col_stride",
                PoolLine {
                    a_col_stride: usize::MAX,
                    ..line
                },
            ),
            (
                "a_offset",
                PoolLine {
                    a_offset: line.a_offset + 1,
                    ..line
                },
            ),
        ] {
            assert_eq!(bad(bad_line, &a), Err(TileError::Input), "{field}");
        }
        assert_eq!(
            bad(
                PoolLine {
                    c_line_stride: usize::MAX,
                    ..line
                },
                &a
            ),
            Err(TileError::Output)
        );
        if token.isa() != KernelIsa::Scalar {
            let scalar = IsaToken::new(KernelIsa::Scalar).unwrap();
            assert_eq!(
                run_pool_line(kernel, &line, &a, &mut c, scalar),
                Err(TileError::Isa)
            );
        }
    }
}
