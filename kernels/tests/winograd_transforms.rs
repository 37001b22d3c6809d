//! The Winograd transforms on rows of tiles, on every ISA this CPU supports: a row of tiles in
//! one call gives the bits of the same tiles transformed one call each (whatever the step
//! between tiles, the padding on either side, absent pixel rows and the channel count around
//! the vector widths), and addresses outside the slices are refused before anything runs.

use incept_kernels::winograd::{
    transform_input, transform_output, TileRow, Transformed, Variant, ALPHA, ELEMENTS, MAX_TILE,
};
use incept_kernels::{Clamp, IsaToken, KernelIsa, TileError};

fn tokens() -> Vec<IsaToken> {
    [
        KernelIsa::Scalar,
        KernelIsa::Avx2,
        KernelIsa::Avx512,
        KernelIsa::Neon,
    ]
    .into_iter()
    .filter_map(IsaToken::new)
    .collect()
}

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// An image of `N` pixel rows `width` wide, `channels` per pixel and two spare floats between
/// pixels; rows in `absent` are left out of the [`TileRow`].
struct Strip {
    channels: usize,
    pixel_stride: usize,
    row_stride: usize,
}

impl Strip {
    fn new(width: usize, channels: usize) -> Self {
        let pixel_stride = channels + 2;
        Strip {
            channels,
            pixel_stride,
            row_stride: width * pixel_stride,
        }
    }

    fn rows<const N: usize>(&self, absent: &[usize]) -> [Option<usize>; N] {
        std::array::from_fn(|i| (!absent.contains(&i)).then_some(i * self.row_stride))
    }
}

#[test]
fn input_rows_match_tile_by_tile() {
    for token in tokens() {
        for channels in [1, 5, 16, 17, 33] {
            for width in [1, 2, 5, 7, 12] {
                let strip = Strip::new(width, channels);
                let src = values(ALPHA * strip.row_stride, (channels * 31 + width) as u64);
                for (step, tiles, first_column, absent) in [1, 2, 3, 4, 5, 6]
                    .into_iter()
                    .flat_map(|step| [1, 2, 3, 5].map(move |tiles| (step, tiles)))
                    .flat_map(|(step, tiles)| {
                        [
                            (-3, &[][..]),
                            (-1, &[0, 5][..]),
                            (0, &[2][..]),
                            (2, &[][..]),
                        ]
                        .map(move |(first, absent)| (step, tiles, first, absent))
                    })
                {
                    let row = TileRow {
                        rows: strip.rows(absent),
                        first_column,
                        step,
                        width,
                        pixel_stride: strip.pixel_stride,
                        tiles,
                    };
                    let at = Transformed {
                        offset: 3,
                        tile_stride: channels,
                        element_stride: tiles * channels,
                    };
                    let len = 3 + ELEMENTS * tiles * channels;
                    let mut whole = vec![f32::NAN; len];
                    transform_input(token, &src, &row, channels, &mut whole, at).unwrap();
                    let mut single = vec![f32::NAN; len];
                    for t in 0..tiles {
                        let one = TileRow {
                            first_column: first_column + (t * step) as isize,
                            tiles: 1,
                            ..row
                        };
                        let at_t = Transformed {
                            offset: at.offset + t * at.tile_stride,
                            ..at
                        };
                        transform_input(token, &src, &one, channels, &mut single, at_t).unwrap();
                    }
                    let what = format!("{token:?} {channels} ch, {width} wide, step {step}, {tiles} tiles, from {first_column}, rows {absent:?} absent");
                    assert!(
                        whole[..3].iter().all(|v| v.is_nan()),
                        "{what}: wrote before"
                    );
                    for (i, (a, b)) in whole.iter().zip(&single).enumerate() {
                        assert_eq!(a.to_bits(), b.to_bits(), "{what}: element {i}");
                    }
                }
            }
        }
    }
}

#[test]
fn output_rows_match_tile_by_tile() {
    for token in tokens() {
        for variant in [Variant::F4x4_3x3, Variant::F2x2_5x5] {
            let m = variant.tile();
            for channels in [1, 5, 16, 17, 33] {
                for width in [1, 3, 8, 9] {
                    let strip = Strip::new(width, channels);
                    let bias = values(channels, 7);
                    for (tiles, absent) in [(1, &[][..]), (2, &[1][..]), (3, &[0][..])] {
                        let at = Transformed {
                            offset: 1,
                            tile_stride: channels,
                            element_stride: tiles * channels,
                        };
                        let transformed = values(1 + ELEMENTS * tiles * channels, width as u64);
                        let row = TileRow::<MAX_TILE> {
                            rows: strip.rows(absent),
                            first_column: 0,
                            step: m,
                            width,
                            pixel_stride: strip.pixel_stride,
                            tiles,
                        };
                        let clamp = Clamp {
                            min: -0.5,
                            max: 0.75,
                        };
                        let len = MAX_TILE * strip.row_stride;
                        let run = |row: &TileRow<MAX_TILE>, at: Transformed, out: &mut [f32]| {
                            transform_output(
                                token,
                                variant,
                                &transformed,
                                at,
                                strip.channels,
                                &bias,
                                clamp,
                                out,
                                row,
                            )
                            .unwrap()
                        };
                        let mut whole = vec![f32::NAN; len];
                        run(&row, at, &mut whole);
                        let mut single = vec![f32::NAN; len];
                        for t in 0..tiles {
                            let one = TileRow {
                                first_column: (t * m) as isize,
                                tiles: 1,
                                ..row
                            };
                            let at_t = Transformed {
                                offset: at.offset + t * at.tile_stride,
                                ..at
                            };
                            run(&one, at_t, &mut single);
                        }
                        let what = format!(
                            "{token:?} {variant:?} {channels} ch, {width} wide, {tiles} tiles, rows {absent:?} absent"
                        );
                        for (i, (a, b)) in whole.iter().zip(&single).enumerate() {
                            assert_eq!(a.to_bits(), b.to_bits(), "{what}: element {i}");
                        }
                        // Only the first `m` pixel rows, and only columns inside the image.
                        let written = whole.iter().filter(|v| !v.is_nan()).count();
                        let rows = (0..m).filter(|i| !absent.contains(i)).count();
                        assert_eq!(written, rows * (tiles * m).min(width) * channels, "{what}");
                    }
                }
            }
        }
    }
}

#[test]
fn addresses_outside_the_slices_are_refused() {
    let token = IsaToken::new(KernelIsa::Scalar).unwrap();
    let channels = 4;
    let strip = Strip::new(6, channels);
    let src = values(ALPHA * strip.row_stride, 1);
    let row = TileRow {
        rows: strip.rows(&[]),
        first_column: -1,
        step: 2,
        width: 6,
        pixel_stride: strip.pixel_stride,
        tiles: 3,
    };
    let at = Transformed {
        offset: 0,
        tile_stride: channels,
        element_stride: 3 * channels,
    };
    let mut dst = vec![0.0; ELEMENTS * 3 * channels];
    assert_eq!(
        transform_input(token, &src, &row, channels, &mut dst, at),
        Ok(())
    );
    // One column wider than the data.
    let wide = TileRow { width: 7, ..row };
    assert_eq!(
        transform_input(token, &src, &wide, channels, &mut dst, at),
        Err(TileError::Input)
    );
    // One tile more than the destination holds.
    let more = TileRow { tiles: 4, ..row };
    assert_eq!(
        transform_input(token, &src, &more, channels, &mut dst, at),
        Err(TileError::Output)
    );
    // Offsets that overflow.
    let far = TileRow {
        first_column: isize::MAX - 2,
        ..row
    };
    assert_eq!(
        transform_input(token, &src, &far, channels, &mut dst, at),
        Err(TileError::Input)
    );

    let out_row = TileRow::<MAX_TILE> {
        rows: strip.rows(&[]),
        first_column: 0,
        step: 2,
        width: 6,
        pixel_stride: strip.pixel_stride,
        tiles: 3,
    };
    let bias = [0.0; 4];
    let mut out = vec![0.0; MAX_TILE * strip.row_stride];
    let run = |row: &TileRow<MAX_TILE>, bias: &[f32], out: &mut [f32]| {
        transform_output(
            token,
            Variant::F2x2_5x5,
            &dst,
            at,
            channels,
            bias,
            Clamp::NONE,
            out,
            row,
        )
    };
    assert_eq!(run(&out_row, &bias, &mut out), Ok(()));
    assert_eq!(run(&out_row, &bias[..3], &mut out), Err(TileError::Input));
    // The last float F(2x2, 5x5) writes: pixel row 1, column 5, the last channel.
    let short = strip.row_stride + 5 * strip.pixel_stride + channels - 1;
    assert_eq!(
        run(&out_row, &bias, &mut out[..short]),
        Err(TileError::Output)
    );
}
