//! One test per error case: each returns an `Error` (never panics) with the right `ErrorKind`
//! and a message naming the field and the numbers.

use incept::{
    to_ohwi, Conv1x1, Epilogue, Error, ErrorKind, Isa, Nhwc, OpOptions, Parallelism, TensorView,
    TensorViewMut, WeightLayout, WeightShape,
};

/// Asserts `result` is an error of `kind` whose message contains every one of `needles`.
#[track_caller]
fn assert_error<T: std::fmt::Debug>(
    result: Result<T, Error>,
    kind: ErrorKind,
    needles: &[&str],
) -> Error {
    let err = match result {
        Ok(v) => panic!("expected a {kind:?} error mentioning {needles:?}, got Ok({v:?})"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), kind, "message: {}", err.message());
    for needle in needles {
        assert!(
            err.message().contains(needle),
            "message {:?} should mention {needle:?}",
            err.message()
        );
    }
    assert_eq!(err.to_string(), err.message(), "Display prints the message");
    err
}

fn conv(cin: usize, cout: usize) -> Conv1x1 {
    Conv1x1::new(cin, cout, &vec![1.0; cin * cout], None, Epilogue::None).expect("valid conv")
}

#[test]
fn weights_of_the_wrong_length() {
    let short = Conv1x1::new(3, 2, &[0.0; 5], None, Epilogue::None);
    assert_error(
        short,
        ErrorKind::BufferTooSmall,
        &["weights have 5", "2 out", "3 in", "needs 6"],
    );
    let long = Conv1x1::new(3, 2, &[0.0; 7], None, Epilogue::None);
    assert_error(
        long,
        ErrorKind::BufferTooSmall,
        &["weights have 7", "needs 6"],
    );
    let empty = Conv1x1::new(3, 2, &[], None, Epilogue::None);
    assert_error(
        empty,
        ErrorKind::BufferTooSmall,
        &["weights have 0", "needs 6"],
    );
}

#[test]
fn bias_of_the_wrong_length() {
    let r = Conv1x1::new(3, 2, &[0.0; 6], Some(&[0.0; 3]), Epilogue::None);
    assert_error(
        r,
        ErrorKind::ShapeMismatch,
        &["bias has 3", "2 output channels"],
    );
    let r = Conv1x1::new(3, 2, &[0.0; 6], Some(&[]), Epilogue::None);
    assert_error(
        r,
        ErrorKind::ShapeMismatch,
        &["bias has 0", "2 output channels"],
    );
}

#[test]
fn zero_input_or_output_channels() {
    let r = Conv1x1::new(0, 4, &[], None, Epilogue::None);
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["in_channels 0", "out_channels 4"],
    );
    let r = Conv1x1::new(4, 0, &[], None, Epilogue::None);
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["in_channels 4", "out_channels 0"],
    );
    let r = Conv1x1::new(0, 0, &[], Some(&[]), Epilogue::None);
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["in_channels 0", "out_channels 0"],
    );
}

#[test]
fn weight_count_overflowing_usize() {
    let r = Conv1x1::new(usize::MAX, 2, &[0.0; 4], None, Epilogue::None);
    assert_error(r, ErrorKind::Overflow, &["weight count", "overflows"]);
}

#[test]
fn input_channels_do_not_match_the_weights() {
    let conv = conv(192, 4);
    let x = vec![0.0; 2 * 2 * 190];
    let mut y = vec![0.0; 2 * 2 * 4];
    let r = conv.run(
        &TensorView::new(&x, Nhwc::new(1, 2, 2, 190)).unwrap(),
        &mut TensorViewMut::new(&mut y, Nhwc::new(1, 2, 2, 4)).unwrap(),
        Parallelism::Sequential,
    );
    let e = assert_error(r, ErrorKind::ShapeMismatch, &["input channels 190", "192"]);
    assert_eq!(e.message(), "input channels 190 do not match weights' 192");
    assert!(y.iter().all(|&v| v == 0.0), "a failed run writes nothing");
}

#[test]
fn output_channels_do_not_match_the_weights() {
    let conv = conv(3, 4);
    let x = vec![0.0; 6 * 3];
    let mut y = vec![0.0; 6 * 5];
    let r = conv.run(
        &TensorView::new(&x, Nhwc::new(1, 2, 3, 3)).unwrap(),
        &mut TensorViewMut::new(&mut y, Nhwc::new(1, 2, 3, 5)).unwrap(),
        Parallelism::Sequential,
    );
    assert_error(
        r,
        ErrorKind::ShapeMismatch,
        &["output channels 5", "weights' 4"],
    );
}

#[test]
fn output_spatial_shape_does_not_match_the_input() {
    let conv = conv(3, 2);
    let x = vec![0.0; 2 * 3 * 4 * 3];
    let input = TensorView::new(&x, Nhwc::new(2, 3, 4, 3)).unwrap();
    for (shape, numbers) in [
        (Nhwc::new(1, 3, 4, 2), "1x3x4"),
        (Nhwc::new(2, 4, 4, 2), "2x4x4"),
        (Nhwc::new(2, 3, 3, 2), "2x3x3"),
        (Nhwc::new(2, 4, 3, 2), "2x4x3"),
    ] {
        let mut y = vec![0.0; 64];
        let r = conv.run(
            &input,
            &mut TensorViewMut::new(&mut y, shape).unwrap(),
            Parallelism::Sequential,
        );
        assert_error(
            r,
            ErrorKind::ShapeMismatch,
            &["output batch x height x width", numbers, "2x3x4"],
        );
    }
}

#[test]
fn views_with_a_zero_dimension() {
    let data = vec![0.0; 16];
    let mut out = vec![0.0; 16];
    for (shape, field) in [
        (Nhwc::new(0, 2, 2, 2), "batch"),
        (Nhwc::new(1, 0, 2, 2), "height"),
        (Nhwc::new(1, 2, 0, 2), "width"),
        (Nhwc::new(1, 2, 2, 0), "channels"),
    ] {
        let msg = format!("input {field} is 0");
        assert_error(
            TensorView::new(&data, shape),
            ErrorKind::InvalidArgument,
            &[&msg],
        );
        assert_error(
            TensorView::with_layout(&data, shape, 4, 1),
            ErrorKind::InvalidArgument,
            &[&msg],
        );
        let msg = format!("output {field} is 0");
        assert_error(
            TensorViewMut::new(&mut out, shape),
            ErrorKind::InvalidArgument,
            &[&msg],
        );
    }
    // Even on an empty slice.
    assert_error(
        TensorView::new(&[], Nhwc::new(0, 0, 0, 0)),
        ErrorKind::InvalidArgument,
        &["is 0"],
    );
}

#[test]
fn pixel_stride_below_channels() {
    let data = vec![0.0; 64];
    let r = TensorView::with_layout(&data, Nhwc::new(1, 2, 2, 4), 3, 0);
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["input pixel stride 3", "channels 4", "overlap"],
    );
    let mut out = vec![0.0; 64];
    let r = TensorViewMut::with_layout(&mut out, Nhwc::new(1, 1, 1, 4), 0, 0);
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["output pixel stride 0", "channels 4"],
    );
}

#[test]
fn slice_too_short_for_the_layout() {
    // Dense: 1x2x2x3 needs 12.
    let data = vec![0.0; 11];
    let r = TensorView::new(&data, Nhwc::new(1, 2, 2, 3));
    assert_error(
        r,
        ErrorKind::BufferTooSmall,
        &[
            "input slice has 11",
            "1x2x2x3",
            "stride 3",
            "offset 0",
            "needs 12",
        ],
    );
    // Strided with an offset: 3 pixels apart by 5, 2 channels, from 4: needs 4 + 2*5 + 2 = 16.
    let data = vec![0.0; 15];
    let r = TensorView::with_layout(&data, Nhwc::new(1, 1, 3, 2), 5, 4);
    assert_error(
        r,
        ErrorKind::BufferTooSmall,
        &[
            "input slice has 15",
            "1x1x3x2",
            "stride 5",
            "offset 4",
            "needs 16",
        ],
    );
    // Exactly enough is fine (the last pixel need not have its padding).
    let data = vec![0.0; 16];
    TensorView::with_layout(&data, Nhwc::new(1, 1, 3, 2), 5, 4).expect("16 elements are enough");
    // Output too.
    let mut out = vec![0.0; 15];
    let r = TensorViewMut::with_layout(&mut out, Nhwc::new(1, 1, 3, 2), 5, 4);
    assert_error(
        r,
        ErrorKind::BufferTooSmall,
        &["output slice has 15", "needs 16"],
    );
}

#[test]
fn offsets_and_shapes_overflowing_usize() {
    let data = vec![0.0; 8];
    // Offset + extent.
    let r = TensorView::with_layout(&data, Nhwc::new(1, 1, 2, 2), 2, usize::MAX);
    assert_error(
        r,
        ErrorKind::Overflow,
        &[
            "input offset",
            &usize::MAX.to_string(),
            "extent 4",
            "overflows",
        ],
    );
    let mut out = vec![0.0; 8];
    let r = TensorViewMut::with_layout(&mut out, Nhwc::new(1, 1, 1, 1), 1, usize::MAX);
    assert_error(r, ErrorKind::Overflow, &["output offset", "overflows"]);
    // Pixel count.
    let r = TensorView::new(&data, Nhwc::new(usize::MAX, 2, 1, 1));
    assert_error(r, ErrorKind::Overflow, &["input pixel count", "overflows"]);
    // Pixels fit, pixels x stride does not.
    let r = TensorView::with_layout(&data, Nhwc::new(1 << 40, 1, 1, 1), 1 << 30, 0);
    assert_error(
        r,
        ErrorKind::Overflow,
        &["input extent", "pixel stride 1073741824", "overflows"],
    );
    // Huge channel count: the stride check and the extent.
    let r = TensorView::with_layout(&data, Nhwc::new(2, 1, 1, usize::MAX), usize::MAX, 0);
    assert_error(r, ErrorKind::Overflow, &["overflows"]);
    // The dense element count helper.
    assert_error(
        Nhwc::new(usize::MAX, 2, 1, 1).element_count(),
        ErrorKind::Overflow,
        &["tensor element count", "overflows"],
    );
}

#[test]
fn channel_slice_out_of_range() {
    let data = vec![0.0; 2 * 4];
    let view = TensorView::new(&data, Nhwc::new(1, 1, 2, 4)).unwrap();
    assert_error(
        view.channels(2, 3),
        ErrorKind::InvalidArgument,
        &["input channel slice 2..5", "4 channels"],
    );
    assert_error(
        view.channels(1, 0),
        ErrorKind::InvalidArgument,
        &["1..1", "empty"],
    );
    assert_error(view.channels(4, 1), ErrorKind::InvalidArgument, &["4..5"]);
    let huge = usize::MAX.to_string();
    assert_error(
        view.channels(usize::MAX, 2),
        ErrorKind::InvalidArgument,
        &[&huge, "4 channels"],
    );
    assert_error(
        view.channels(1, usize::MAX),
        ErrorKind::InvalidArgument,
        &[&huge, "4 channels"],
    );
    // A valid slice of a slice is checked against the slice's channels.
    let inner = view.channels(1, 2).unwrap();
    assert_error(
        inner.channels(1, 2),
        ErrorKind::InvalidArgument,
        &["1..3", "2 channels"],
    );

    let mut out = vec![0.0; 2 * 4];
    let mut view = TensorViewMut::new(&mut out, Nhwc::new(1, 1, 2, 4)).unwrap();
    assert_error(
        view.channels(3, 2),
        ErrorKind::InvalidArgument,
        &["output channel slice 3..5", "4 channels"],
    );
    assert_error(
        view.channels(usize::MAX, usize::MAX),
        ErrorKind::InvalidArgument,
        &["output channel slice"],
    );
}

#[test]
fn epilogue_clamp_min_above_max_or_nan() {
    let w = [1.0; 6];
    let r = Conv1x1::new(3, 2, &w, None, Epilogue::Clamp { min: 2.0, max: 1.0 });
    assert_error(r, ErrorKind::InvalidArgument, &["clamp", "min 2", "max 1"]);
    let r = Conv1x1::new(
        3,
        2,
        &w,
        None,
        Epilogue::Clamp {
            min: f32::NAN,
            max: 1.0,
        },
    );
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["clamp", "min NaN", "max 1"],
    );
    let r = Conv1x1::new(
        3,
        2,
        &w,
        None,
        Epilogue::Clamp {
            min: 0.0,
            max: f32::NAN,
        },
    );
    assert_error(
        r,
        ErrorKind::InvalidArgument,
        &["clamp", "min 0", "max NaN"],
    );
    let r = Conv1x1::new(
        3,
        2,
        &w,
        None,
        Epilogue::Clamp {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        },
    );
    assert_error(r, ErrorKind::InvalidArgument, &["min inf", "max -inf"]);
    // Boundary cases that are valid.
    Conv1x1::new(3, 2, &w, None, Epilogue::Clamp { min: 1.0, max: 1.0 })
        .expect("min == max is valid");
    Conv1x1::new(
        3,
        2,
        &w,
        None,
        Epilogue::Clamp {
            min: f32::NEG_INFINITY,
            max: f32::INFINITY,
        },
    )
    .expect("infinite bounds are valid");
}

#[test]
fn unknown_isa_name() {
    assert_error(
        "foo".parse::<Isa>(),
        ErrorKind::UnsupportedIsa,
        &["'foo'", "scalar", "avx2", "avx512", "neon"],
    );
    assert_error(
        "".parse::<Isa>(),
        ErrorKind::UnsupportedIsa,
        &["unknown ISA ''"],
    );
    assert_error(
        "avx-512".parse::<Isa>(),
        ErrorKind::UnsupportedIsa,
        &["'avx-512'"],
    );
    // Names are trimmed and case-insensitive.
    assert_eq!(" AVX2 ".parse::<Isa>(), Ok(Isa::Avx2));
    assert_eq!("Scalar".parse::<Isa>(), Ok(Isa::Scalar));
}

#[test]
fn unsupported_isa_as_operator_cap() {
    #[cfg(target_arch = "aarch64")]
    let missing = Isa::Avx512;
    #[cfg(not(target_arch = "aarch64"))]
    let missing = Isa::Neon;
    assert!(!missing.is_available());
    let options = OpOptions::with_max_isa(Some(missing));
    let r = Conv1x1::with_options(3, 2, &[1.0; 6], None, Epilogue::None, options);
    let name = format!("ISA {missing} is not supported");
    let e = assert_error(r, ErrorKind::UnsupportedIsa, &[&name, "available: scalar"]);
    let available: Vec<&str> = incept::isa::available().iter().map(|i| i.name()).collect();
    assert!(
        e.message()
            .ends_with(&format!("(available: {})", available.join(", "))),
        "{}",
        e.message()
    );
    // The per-operator cap is checked without touching the global one.
    assert_error(
        incept::isa::resolve(Some(missing)),
        ErrorKind::UnsupportedIsa,
        &[&name],
    );
}

#[test]
fn to_ohwi_with_the_wrong_length() {
    let shape = WeightShape {
        out_channels: 4,
        kh: 3,
        kw: 3,
        in_channels: 2,
    };
    for layout in [WeightLayout::Ohwi, WeightLayout::Oihw, WeightLayout::Hwio] {
        let r = to_ohwi(&[0.0; 71], layout, shape);
        assert_error(
            r,
            ErrorKind::BufferTooSmall,
            &["weights have 71", "4x3x3x2", "needs 72"],
        );
        assert_error(
            to_ohwi(&[0.0; 73], layout, shape),
            ErrorKind::BufferTooSmall,
            &["73", "needs 72"],
        );
    }
    let huge = WeightShape {
        out_channels: usize::MAX,
        kh: 3,
        kw: 3,
        in_channels: 2,
    };
    assert_error(
        to_ohwi(&[0.0; 4], WeightLayout::Oihw, huge),
        ErrorKind::Overflow,
        &["weight count", "overflows"],
    );
}
