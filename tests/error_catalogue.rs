//! The rows of the error catalogue (`src/error_catalogue.rs`) that `tests/errors.rs`,
//! `tests/conv2d.rs`, `tests/pool.rs` and `tests/inception.rs` do not already cover: each error
//! for every operator that can return it, the ISA cap from the environment (in a child process),
//! `inception_reference`, huge sizes refused before any allocation (a counting allocator), and
//! many threads sharing packed operators.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::{activations, bias, weights, Mode, OUTPUT_SENTINEL};
use incept::{
    inception_reference, to_ohwi, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d,
    Conv2dDesc, ConvParams, Epilogue, Error, ErrorKind, Inception, InceptionConfig,
    InceptionWeights, Isa, MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, Parallelism,
    PoolProjection, TensorView, TensorViewMut, WeightLayout, WeightShape,
};

// ---------------------------------------------------------------------------------------------
// A counting allocator: bytes requested by the current thread (each test runs on its own).

struct Counting;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(bytes)));
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the bytes the current thread allocated meanwhile.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let r = f();
    (r, ALLOCATED.with(Cell::get) - before)
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Asserts `result` is an error of `kind` whose message contains every one of `needles`.
#[track_caller]
fn assert_error<T>(result: Result<T, Error>, kind: ErrorKind, needles: &[&str]) -> Error {
    let err = match result {
        Ok(_) => panic!("expected a {kind:?} error mentioning {needles:?}, got Ok"),
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
    assert_eq!(err.to_string(), err.message());
    err
}

fn ones(len: usize) -> Vec<f32> {
    vec![1.0; len]
}

/// An ISA this CPU lacks (another architecture's).
fn missing_isa() -> Isa {
    #[cfg(target_arch = "aarch64")]
    let missing = Isa::Avx2;
    #[cfg(not(target_arch = "aarch64"))]
    let missing = Isa::Neon;
    assert!(!missing.is_available());
    missing
}

/// A bottleneck `cin -> r -> cout` with a `kernel` "same" window, ReLU, weights of the right
/// lengths unless overridden.
struct BottleneckParts {
    desc: BottleneckDesc,
    reduce: Vec<f32>,
    reduce_bias: Option<Vec<f32>>,
    conv: Vec<f32>,
    conv_bias: Option<Vec<f32>>,
}

impl BottleneckParts {
    fn new(cin: usize, r: usize, cout: usize, kernel: usize) -> Self {
        BottleneckParts {
            desc: BottleneckDesc::same_relu(cin, r, cout, kernel),
            reduce: ones(r * cin),
            reduce_bias: None,
            conv: ones(cout * kernel * kernel * r),
            conv_bias: None,
        }
    }

    fn build(&self, options: OpOptions) -> Result<Bottleneck, Error> {
        Bottleneck::with_options(
            &self.desc,
            &BottleneckWeights {
                reduce: &self.reduce,
                reduce_bias: self.reduce_bias.as_deref(),
                conv: &self.conv,
                conv_bias: self.conv_bias.as_deref(),
            },
            options,
        )
    }
}

fn pool_projection(
    pool: &MaxPool2dDesc,
    cin: usize,
    cout: usize,
    weights: &[f32],
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    options: OpOptions,
) -> Result<PoolProjection, Error> {
    PoolProjection::with_options(
        pool,
        cin,
        cout,
        ConvParams { weights, bias },
        epilogue,
        options,
    )
}

/// Weights (and biases) for an Inception config, each convolution of the right length.
struct InceptionParts {
    config: InceptionConfig,
    /// 1x1, 3x3 reduction, 3x3, 5x5 reduction, 5x5, projection.
    weights: [Vec<f32>; 6],
    biases: [Vec<f32>; 6],
}

impl InceptionParts {
    fn new(config: InceptionConfig) -> Self {
        let cin = config.in_channels;
        let r3 = config.c3x3_reduce.unwrap_or(cin);
        let r5 = config.c5x5_reduce.unwrap_or(cin);
        let outs = [
            config.c1x1,
            config.c3x3_reduce.unwrap_or(0),
            config.c3x3,
            config.c5x5_reduce.unwrap_or(0),
            config.c5x5,
            config.pool_proj.unwrap_or(0),
        ];
        let ins = [cin, cin, 9 * r3, cin, 25 * r5, cin];
        InceptionParts {
            config,
            weights: std::array::from_fn(|i| weights(Mode::Exact, outs[i] * ins[i], i as u64)),
            biases: std::array::from_fn(|i| bias(Mode::Exact, outs[i], 10 + i as u64)),
        }
    }

    fn tiny() -> Self {
        Self::new(InceptionConfig::googlenet(3, 2, 2, 3, 1, 2, 2))
    }

    fn params(&self, i: usize) -> ConvParams<'_> {
        ConvParams {
            weights: &self.weights[i],
            bias: Some(&self.biases[i]),
        }
    }

    /// The weights, with each optional convolution present as the config says.
    fn weights(&self) -> InceptionWeights<'_> {
        let c = &self.config;
        InceptionWeights {
            conv1x1: self.params(0),
            reduce3x3: c.c3x3_reduce.map(|_| self.params(1)),
            conv3x3: self.params(2),
            reduce5x5: c.c5x5_reduce.map(|_| self.params(3)),
            conv5x5: self.params(4),
            pool_proj: c.pool_proj.map(|_| self.params(5)),
        }
    }

    fn build(&self, weights: &InceptionWeights<'_>) -> Result<Inception, Error> {
        Inception::new(&self.config, weights)
    }
}

/// Runs `run` on dense views of `input` and `output` shapes; on error asserts the output
/// buffer is untouched.
fn run_dense(
    input: Nhwc,
    output: Nhwc,
    run: impl FnOnce(&TensorView<'_>, &mut TensorViewMut<'_>) -> Result<(), Error>,
) -> Result<(), Error> {
    let x = activations(Mode::Exact, input.element_count().unwrap(), 1);
    let mut y = vec![OUTPUT_SENTINEL; output.element_count().unwrap()];
    let result = run(
        &TensorView::new(&x, input).unwrap(),
        &mut TensorViewMut::new(&mut y, output).unwrap(),
    );
    if result.is_err() {
        assert!(
            y.iter().all(|v| v.to_bits() == OUTPUT_SENTINEL.to_bits()),
            "a refused run wrote the output"
        );
    }
    result
}

const SEQ: Parallelism<'static> = Parallelism::Sequential;

/// An operator's `run`, boxed.
type Run<'a> = Box<
    dyn Fn(&TensorView<'_>, &mut TensorViewMut<'_>, Parallelism<'_>) -> Result<(), Error>
        + Sync
        + 'a,
>;

fn run_fn<'a>(
    f: impl Fn(&TensorView<'_>, &mut TensorViewMut<'_>, Parallelism<'_>) -> Result<(), Error>
        + Sync
        + 'a,
) -> Run<'a> {
    Box::new(f)
}

// ---------------------------------------------------------------------------------------------
// Creating an operator.

/// Rows 9-11: kernel, stride and padding for the bottleneck, the max-pool and the pool
/// projection (the convolution's are in tests/conv2d.rs).
#[test]
fn window_descriptors_in_every_operator() {
    // Bottleneck.
    for (kernel, stride, padding, needles) in [
        (0, 1, Padding::default(), ["bottleneck kernel 0", "1..=16"]),
        (
            17,
            1,
            Padding::default(),
            ["bottleneck kernel 17", "1..=16"],
        ),
        (
            3,
            0,
            Padding::uniform(1),
            ["bottleneck stride is 0", "at least 1"],
        ),
        (
            3,
            1,
            Padding {
                left: 3,
                ..Padding::uniform(1)
            },
            ["bottleneck left padding 3", "less than the kernel 3"],
        ),
    ] {
        let mut parts = BottleneckParts::new(2, 2, 2, kernel);
        parts.desc.stride = stride;
        parts.desc.padding = padding;
        assert_error(
            parts.build(OpOptions::default()),
            ErrorKind::InvalidArgument,
            &needles,
        );
    }
    // Max-pool and the pool projection's pool: the same messages.
    for (kernel, stride, padding, needles) in [
        (0, 1, Padding::default(), ["maxpool kernel 0", "1..=64"]),
        (65, 1, Padding::default(), ["maxpool kernel 65", "1..=64"]),
        (
            3,
            0,
            Padding::uniform(1),
            ["maxpool stride is 0", "at least 1"],
        ),
        (
            3,
            1,
            Padding {
                right: 3,
                ..Padding::uniform(1)
            },
            ["maxpool right padding 3", "less than the kernel 3"],
        ),
        (
            2,
            2,
            Padding {
                bottom: 2,
                ..Padding::default()
            },
            ["maxpool bottom padding 2", "less than the kernel 2"],
        ),
    ] {
        let desc = MaxPool2dDesc::square(kernel, stride, padding);
        assert_error(MaxPool2d::new(&desc), ErrorKind::InvalidArgument, &needles);
        assert_error(
            pool_projection(
                &desc,
                2,
                3,
                &ones(6),
                None,
                Epilogue::None,
                OpOptions::default(),
            ),
            ErrorKind::InvalidArgument,
            &needles,
        );
    }
    // The largest allowed values are accepted.
    let desc = MaxPool2dDesc::square(64, usize::MAX, Padding::uniform(63));
    MaxPool2d::new(&desc).expect("kernel 64, padding 63, any stride");
}

/// Row 12: a zero channel count in every convolution of every operator.
#[test]
fn zero_channels_in_every_operator() {
    let desc = Conv2dDesc::same(0, 4, 3, Epilogue::None);
    assert_error(
        Conv2d::new(&desc, &[], None),
        ErrorKind::InvalidArgument,
        &[
            "conv2d channels must be at least 1",
            "in_channels 0",
            "out_channels 4",
        ],
    );
    let desc = Conv2dDesc::same(3, 0, 3, Epilogue::None);
    assert_error(
        Conv2d::new(&desc, &[], None),
        ErrorKind::InvalidArgument,
        &["conv2d channels", "in_channels 3", "out_channels 0"],
    );
    for (cin, r, cout, needle) in [
        (
            0,
            2,
            2,
            "bottleneck reduction channels must be at least 1, got in_channels 0, out_channels 2",
        ),
        (
            3,
            0,
            2,
            "bottleneck reduction channels must be at least 1, got in_channels 3, out_channels 0",
        ),
        (
            3,
            2,
            0,
            "bottleneck conv channels must be at least 1, got in_channels 2, out_channels 0",
        ),
    ] {
        assert_error(
            BottleneckParts::new(cin, r, cout, 3).build(OpOptions::default()),
            ErrorKind::InvalidArgument,
            &[needle],
        );
    }
    for (cin, cout) in [(0, 2), (2, 0)] {
        assert_error(
            pool_projection(
                &MaxPool2dDesc::INCEPTION,
                cin,
                cout,
                &[],
                None,
                Epilogue::None,
                OpOptions::default(),
            ),
            ErrorKind::InvalidArgument,
            &[&format!(
                "pool projection channels must be at least 1, got in_channels {cin}, out_channels {cout}"
            )],
        );
    }
    // Inception: each convolution names itself.
    let base = InceptionConfig::googlenet(3, 2, 2, 3, 1, 2, 2);
    for (config, needle) in [
        (
            InceptionConfig { c1x1: 0, ..base },
            "1x1 branch channels must be at least 1, got in_channels 3, out_channels 0",
        ),
        (
            InceptionConfig {
                c3x3_reduce: Some(0),
                ..base
            },
            "3x3 reduction channels must be at least 1",
        ),
        (
            InceptionConfig { c3x3: 0, ..base },
            "3x3 branch channels must be at least 1, got in_channels 2, out_channels 0",
        ),
        (
            InceptionConfig {
                c5x5_reduce: Some(0),
                ..base
            },
            "5x5 reduction channels must be at least 1",
        ),
        (
            InceptionConfig { c5x5: 0, ..base },
            "5x5 branch channels must be at least 1",
        ),
        (
            InceptionConfig {
                pool_proj: Some(0),
                ..base
            },
            "pool projection channels must be at least 1",
        ),
        (
            InceptionConfig {
                in_channels: 0,
                ..base
            },
            "reduction channels must be at least 1, got in_channels 0",
        ),
    ] {
        let parts = InceptionParts::new(config);
        assert_error(
            parts.build(&parts.weights()),
            ErrorKind::InvalidArgument,
            &[needle],
        );
    }
}

/// Row 13: weight counts overflowing `usize` in every operator.
#[test]
fn weight_counts_overflowing_usize_in_every_operator() {
    // Twice this overflows.
    let huge = usize::MAX / 2 + 1;
    let desc = Conv2dDesc::same(huge, 3, 3, Epilogue::None);
    assert_error(
        Conv2d::new(&desc, &[0.0; 4], None),
        ErrorKind::Overflow,
        &["conv2d weight count overflows usize"],
    );
    let mut parts = BottleneckParts::new(2, 2, 2, 3);
    parts.desc.in_channels = huge;
    parts.desc.reduce_channels = 3;
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::Overflow,
        &["bottleneck reduction weight count overflows usize"],
    );
    let mut parts = BottleneckParts::new(2, 2, 2, 3);
    parts.desc.out_channels = huge;
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::Overflow,
        &["bottleneck conv weight count overflows usize"],
    );
    assert_error(
        pool_projection(
            &MaxPool2dDesc::INCEPTION,
            huge,
            3,
            &[],
            None,
            Epilogue::None,
            OpOptions::default(),
        ),
        ErrorKind::Overflow,
        &["pool projection weight count overflows usize"],
    );
    let base = InceptionConfig::googlenet(3, 2, 2, 3, 1, 2, 2);
    for (config, needle) in [
        (
            InceptionConfig {
                in_channels: huge,
                ..base
            },
            "3x3 reduction weight count overflows usize",
        ),
        (
            InceptionConfig { c3x3: huge, ..base },
            "3x3 branch weight count overflows usize",
        ),
        (
            InceptionConfig {
                c5x5_reduce: None,
                c5x5: usize::MAX / 25 + 1,
                ..base
            },
            "5x5 branch weight count overflows usize",
        ),
    ] {
        let parts = InceptionParts {
            config,
            ..InceptionParts::tiny()
        };
        let mut w = parts.weights();
        w.reduce5x5 = config.c5x5_reduce.map(|_| parts.params(3));
        assert_error(parts.build(&w), ErrorKind::Overflow, &[needle]);
    }
}

/// Row 14: weights of the wrong length in the fused operators and the module.
#[test]
fn weights_of_the_wrong_length_in_every_operator() {
    let mut parts = BottleneckParts::new(3, 2, 4, 3);
    parts.reduce.pop();
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::BufferTooSmall,
        &["bottleneck reduction weights have 5 elements but 2 out x 1 taps x 3 in (OHWI) needs 6"],
    );
    let mut parts = BottleneckParts::new(3, 2, 4, 3);
    parts.conv.push(0.0);
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::BufferTooSmall,
        &["bottleneck conv weights have 73 elements but 4 out x 9 taps x 2 in (OHWI) needs 72"],
    );
    assert_error(
        pool_projection(
            &MaxPool2dDesc::INCEPTION,
            3,
            2,
            &ones(5),
            None,
            Epilogue::None,
            OpOptions::default(),
        ),
        ErrorKind::BufferTooSmall,
        &["pool projection weights have 5 elements but 2 out x 1 taps x 3 in (OHWI) needs 6"],
    );
    let names = [
        "1x1 branch weights have 5 elements but 2 out x 1 taps x 3 in",
        "3x3 reduction weights have 5 elements",
        "3x3 branch weights have 53 elements but 3 out x 9 taps x 2 in (OHWI) needs 54",
        "5x5 reduction weights have 2 elements",
        "5x5 branch weights have 49 elements but 2 out x 25 taps x 1 in (OHWI) needs 50",
        "pool projection weights have 5 elements",
    ];
    for (i, needle) in names.iter().enumerate() {
        let mut parts = InceptionParts::tiny();
        parts.weights[i].pop();
        assert_error(
            parts.build(&parts.weights()),
            ErrorKind::BufferTooSmall,
            &[needle],
        );
    }
}

/// Row 15: biases of the wrong length in the fused operators and the module.
#[test]
fn bias_of_the_wrong_length_in_every_operator() {
    let mut parts = BottleneckParts::new(3, 2, 4, 3);
    parts.reduce_bias = Some(ones(3));
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::ShapeMismatch,
        &["bottleneck reduction bias has 3 elements but there are 2 output channels"],
    );
    let mut parts = BottleneckParts::new(3, 2, 4, 3);
    parts.conv_bias = Some(vec![]);
    assert_error(
        parts.build(OpOptions::default()),
        ErrorKind::ShapeMismatch,
        &["bottleneck conv bias has 0 elements but there are 4 output channels"],
    );
    assert_error(
        pool_projection(
            &MaxPool2dDesc::INCEPTION,
            3,
            2,
            &ones(6),
            Some(&ones(1)),
            Epilogue::None,
            OpOptions::default(),
        ),
        ErrorKind::ShapeMismatch,
        &["pool projection bias has 1 elements but there are 2 output channels"],
    );
    let names = [
        "1x1 branch bias has 1 elements but there are 2 output channels",
        "3x3 reduction bias has 1 elements",
        "3x3 branch bias has 2 elements but there are 3 output channels",
        "5x5 reduction bias has 0 elements",
        "5x5 branch bias has 1 elements",
        "pool projection bias has 1 elements",
    ];
    for (i, needle) in names.iter().enumerate() {
        let mut parts = InceptionParts::tiny();
        parts.biases[i].pop();
        assert_error(
            parts.build(&parts.weights()),
            ErrorKind::ShapeMismatch,
            &[needle],
        );
    }
}

/// Row 16: invalid clamps in every operator that takes an epilogue.
#[test]
fn invalid_clamp_in_every_operator() {
    let bad = [
        (
            Epilogue::Clamp { min: 2.0, max: 1.0 },
            "min 2 must be <= max 1",
        ),
        (
            Epilogue::Clamp {
                min: f32::NAN,
                max: 1.0,
            },
            "min NaN",
        ),
        (
            Epilogue::Clamp {
                min: 0.0,
                max: f32::NAN,
            },
            "max NaN",
        ),
    ];
    for (epilogue, needle) in bad {
        let desc = Conv2dDesc::same(2, 2, 3, epilogue);
        assert_error(
            Conv2d::new(&desc, &ones(36), None),
            ErrorKind::InvalidArgument,
            &["epilogue clamp", needle],
        );
        for reduce_stage in [true, false] {
            let mut parts = BottleneckParts::new(2, 2, 2, 3);
            if reduce_stage {
                parts.desc.reduce_epilogue = epilogue;
            } else {
                parts.desc.epilogue = epilogue;
            }
            assert_error(
                parts.build(OpOptions::default()),
                ErrorKind::InvalidArgument,
                &["epilogue clamp", needle, "neither NaN"],
            );
        }
        assert_error(
            pool_projection(
                &MaxPool2dDesc::INCEPTION,
                3,
                2,
                &ones(6),
                None,
                epilogue,
                OpOptions::default(),
            ),
            ErrorKind::InvalidArgument,
            &["epilogue clamp", needle],
        );
    }
}

/// Row 17: an operator cap naming an ISA this CPU lacks, for every operator.
#[test]
fn unavailable_isa_cap_in_every_operator() {
    let missing = missing_isa();
    let options = OpOptions::with_max_isa(Some(missing));
    let needles = [
        &format!("ISA {missing} is not supported by this CPU") as &str,
        "available: scalar",
    ];
    let desc = Conv2dDesc::same(2, 2, 3, Epilogue::None);
    assert_error(
        Conv2d::with_options(&desc, &ones(36), None, options),
        ErrorKind::UnsupportedIsa,
        &needles,
    );
    assert_error(
        MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options),
        ErrorKind::UnsupportedIsa,
        &needles,
    );
    assert_error(
        BottleneckParts::new(2, 2, 2, 3).build(options),
        ErrorKind::UnsupportedIsa,
        &needles,
    );
    assert_error(
        pool_projection(
            &MaxPool2dDesc::INCEPTION,
            3,
            2,
            &ones(6),
            None,
            Epilogue::None,
            options,
        ),
        ErrorKind::UnsupportedIsa,
        &needles,
    );
    let parts = InceptionParts::tiny();
    assert_error(
        Inception::with_options(&parts.config, &parts.weights(), options),
        ErrorKind::UnsupportedIsa,
        &needles,
    );
    // Every available ISA is accepted.
    for &isa in incept::isa::available() {
        let options = OpOptions::with_max_isa(Some(isa));
        let op = Inception::with_options(&parts.config, &parts.weights(), options).unwrap();
        assert_eq!(op.isa(), isa);
    }
}

/// Rows 18-19: reductions and the projection present in the config but not the weights, and
/// the other way round.
#[test]
fn inception_weights_not_matching_the_config() {
    let parts = InceptionParts::tiny();
    let full = parts.weights();
    for (weights, needle) in [
        (
            InceptionWeights {
                reduce3x3: None,
                ..full
            },
            "inception config has a 3x3 reduction but no weights were given for it",
        ),
        (
            InceptionWeights {
                reduce5x5: None,
                ..full
            },
            "inception config has a 5x5 reduction but no weights were given for it",
        ),
        (
            InceptionWeights {
                pool_proj: None,
                ..full
            },
            "inception config has a pool projection but no weights were given for it",
        ),
    ] {
        assert_error(parts.build(&weights), ErrorKind::InvalidArgument, &[needle]);
    }
    let bare = InceptionParts::new(InceptionConfig {
        c3x3_reduce: None,
        c5x5_reduce: None,
        pool_proj: None,
        ..parts.config
    });
    let bare_weights = bare.weights();
    let extra = parts.params(1);
    for (weights, needle) in [
        (
            InceptionWeights {
                reduce3x3: Some(extra),
                ..bare_weights
            },
            "inception weights include a 3x3 reduction the config does not have",
        ),
        (
            InceptionWeights {
                reduce5x5: Some(extra),
                ..bare_weights
            },
            "inception weights include a 5x5 reduction the config does not have",
        ),
        (
            InceptionWeights {
                pool_proj: Some(extra),
                ..bare_weights
            },
            "inception weights include a pool projection the config does not have",
        ),
    ] {
        assert_error(bare.build(&weights), ErrorKind::InvalidArgument, &[needle]);
    }
    bare.build(&bare_weights)
        .expect("a module without reductions");
}

/// Row 20 (and rows 6, 13, 14): sizes whose products overflow `usize`, or fit but could never
/// be in memory, are refused before anything is allocated (only the error message is).
#[test]
fn huge_sizes_are_rejected_before_any_allocation() {
    /// Room for the error message.
    const MESSAGE_BYTES: usize = 512;
    #[track_caller]
    fn refused_within<T>(
        limit: usize,
        f: impl FnOnce() -> Result<T, Error>,
        kind: ErrorKind,
        needles: &[&str],
    ) {
        let (result, bytes) = allocated_by(f);
        let e = assert_error(result, kind, needles);
        assert!(
            bytes <= limit,
            "{bytes} bytes allocated before refusing ({e})"
        );
    }
    #[track_caller]
    fn refused<T>(f: impl FnOnce() -> Result<T, Error>, kind: ErrorKind, needles: &[&str]) {
        refused_within(MESSAGE_BYTES, f, kind, needles)
    }
    // Make sure ISA detection (allocated once per process) is not counted.
    let _ = incept::isa::available();
    // The counter sees the allocations of an accepted operator (its packed weights).
    let w64 = ones(64 * 64);
    let (conv, bytes) = allocated_by(|| Conv1x1::new(64, 64, &w64, None, Epilogue::None));
    conv.unwrap();
    assert!(
        bytes >= 64 * 64 * 4,
        "packing 64x64 weights allocated only {bytes} bytes"
    );
    let w = [0.0f32; 4];
    // 2^62 weights: fits usize, not memory.
    refused(
        || Conv1x1::new(1 << 31, 1 << 31, &w, None, Epilogue::None),
        ErrorKind::BufferTooSmall,
        &[
            "conv1x1 weights have 4 elements but 2147483648 out x 1 taps x 2147483648 in (OHWI) needs 4611686018427387904",
        ],
    );
    refused(
        || Conv1x1::new(usize::MAX / 2, 3, &w, None, Epilogue::None),
        ErrorKind::Overflow,
        &["conv1x1 weight count overflows usize"],
    );
    // 2^24 x 256 taps x 2^24 = 2^56.
    let desc = Conv2dDesc {
        kernel: [16; 2],
        ..Conv2dDesc::same(1 << 24, 1 << 24, 1, Epilogue::None)
    };
    refused(
        || Conv2d::new(&desc, &w, None),
        ErrorKind::BufferTooSmall,
        &["needs 72057594037927936"],
    );
    let mut parts = BottleneckParts::new(1, 1, 1, 3);
    parts.desc.reduce_channels = 1 << 40;
    refused(
        || parts.build(OpOptions::default()),
        ErrorKind::BufferTooSmall,
        &["bottleneck reduction weights have 1 elements"],
    );
    refused(
        || {
            pool_projection(
                &MaxPool2dDesc::INCEPTION,
                1 << 40,
                1 << 30,
                &w,
                None,
                Epilogue::None,
                OpOptions::default(),
            )
        },
        ErrorKind::Overflow,
        &["pool projection weight count overflows usize"],
    );
    let huge = InceptionParts {
        config: InceptionConfig::googlenet(1 << 30, 1 << 30, 1, 1, 1, 1, 1),
        ..InceptionParts::tiny()
    };
    refused(
        || huge.build(&huge.weights()),
        ErrorKind::BufferTooSmall,
        &["3x3 reduction weights have 6 elements but 1 out x 1 taps x 1073741824 in"],
    );
    // Views of 2^50 elements over a short slice; and the reference with a huge shape.
    let data = [0.0f32; 16];
    refused(
        || TensorView::new(&data, Nhwc::new(1 << 20, 1 << 20, 1 << 10, 1)),
        ErrorKind::BufferTooSmall,
        &["input slice has 16 elements", "needs 1125899906842624"],
    );
    let tiny = InceptionParts::tiny();
    // (The reference first validates the weights by building the module: a few KiB.)
    refused_within(
        16 << 10,
        || {
            let shape = Nhwc::new(1 << 20, 1 << 20, 1 << 20, 3);
            inception_reference(&tiny.config, &tiny.weights(), &data, shape)
        },
        ErrorKind::ShapeMismatch,
        &["reference input 1048576x1048576x1048576x3"],
    );
    // 2^40 OHWI weights to convert: refused before the output vector.
    let shape = WeightShape {
        out_channels: 1 << 16,
        kh: 16,
        kw: 16,
        in_channels: 1 << 16,
    };
    refused(
        || to_ohwi(&data, WeightLayout::Oihw, shape),
        ErrorKind::BufferTooSmall,
        &["needs 1099511627776"],
    );
}

// ---------------------------------------------------------------------------------------------
// Running an operator.

/// Row 21: input channels that are not the operator's.
#[test]
fn input_channels_mismatch_in_every_run() {
    let b = BottleneckParts::new(3, 2, 4, 3)
        .build(OpOptions::default())
        .unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 4, 4, 5), Nhwc::new(1, 4, 4, 4), |x, y| {
            b.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["input channels 5 do not match weights' 3"],
    );
    let p = pool_projection(
        &MaxPool2dDesc::INCEPTION,
        3,
        2,
        &ones(6),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 4, 4, 2), Nhwc::new(1, 4, 4, 2), |x, y| {
            p.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["input channels 2 do not match weights' 3"],
    );
    let parts = InceptionParts::tiny();
    let m = parts.build(&parts.weights()).unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 3, 3, 5), Nhwc::new(1, 3, 3, 9), |x, y| {
            m.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["input channels 5 do not match the module's 3"],
    );
}

/// Row 22: output channels that are not the operator's.
#[test]
fn output_channels_mismatch_in_every_run() {
    let b = BottleneckParts::new(3, 2, 4, 3)
        .build(OpOptions::default())
        .unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 4, 4, 3), Nhwc::new(1, 4, 4, 5), |x, y| {
            b.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["output channels 5 do not match weights' 4"],
    );
    let p = pool_projection(
        &MaxPool2dDesc::INCEPTION,
        3,
        2,
        &ones(6),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 4, 4, 3), Nhwc::new(1, 4, 4, 3), |x, y| {
            p.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["output channels 3 do not match weights' 2"],
    );
}

/// Row 24: an output view whose shape is not the expected one.
#[test]
fn output_shape_mismatch_in_every_run() {
    let desc = MaxPool2dDesc::square(2, 2, Padding::default());
    let pool = MaxPool2d::new(&desc).unwrap();
    let input = Nhwc::new(1, 4, 4, 3);
    assert_eq!(pool.output_shape(input).unwrap(), Nhwc::new(1, 2, 2, 3));
    run_dense(input, Nhwc::new(1, 2, 2, 3), |x, y| pool.run(x, y, SEQ)).unwrap();
    for wrong in [
        Nhwc::new(1, 4, 4, 3),
        Nhwc::new(1, 2, 2, 4),
        Nhwc::new(2, 2, 2, 3),
        Nhwc::new(1, 2, 1, 3),
    ] {
        let e = assert_error(
            run_dense(input, wrong, |x, y| pool.run(x, y, SEQ)),
            ErrorKind::ShapeMismatch,
            &[&format!(
                "maxpool output shape {wrong} does not match the expected 1x2x2x3"
            )],
        );
        if wrong == Nhwc::new(1, 4, 4, 3) {
            assert_eq!(
                e.message(),
                "maxpool output shape 1x4x4x3 does not match the expected 1x2x2x3"
            );
        }
    }
    let mut parts = BottleneckParts::new(3, 2, 4, 3);
    parts.desc.stride = 2;
    let b = parts.build(OpOptions::default()).unwrap();
    assert_error(
        run_dense(Nhwc::new(1, 5, 5, 3), Nhwc::new(1, 5, 5, 4), |x, y| {
            b.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["bottleneck output shape 1x5x5x4 does not match the expected 1x3x3x4"],
    );
    let p = pool_projection(
        &desc,
        3,
        2,
        &ones(6),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    assert_error(
        run_dense(input, Nhwc::new(1, 4, 4, 2), |x, y| p.run(x, y, SEQ)),
        ErrorKind::ShapeMismatch,
        &["pool projection output shape 1x4x4x2 does not match the expected 1x2x2x2"],
    );
    let inception = InceptionParts::tiny();
    let m = inception.build(&inception.weights()).unwrap();
    assert_error(
        run_dense(Nhwc::new(2, 3, 3, 3), Nhwc::new(1, 3, 3, 9), |x, y| {
            m.run(x, y, SEQ)
        }),
        ErrorKind::ShapeMismatch,
        &["inception output shape 1x3x3x9 does not match the expected 2x3x3x9"],
    );
}

/// Row 25: a window larger than the padded input, for the max-pool's run, the bottleneck and
/// the pool projection (output_shape and run).
#[test]
fn window_larger_than_the_padded_input_in_every_run() {
    let pool = MaxPool2d::new(&MaxPool2dDesc::square(
        5,
        1,
        Padding {
            top: 1,
            left: 0,
            bottom: 0,
            right: 0,
        },
    ))
    .unwrap();
    let input = Nhwc::new(1, 3, 6, 2);
    let needles = [
        "maxpool kernel 5 is larger than the padded input 4x6",
        "3x6 plus padding 1+0 rows, 0+0 columns",
    ];
    assert_error(
        pool.output_shape(input),
        ErrorKind::InvalidArgument,
        &needles,
    );
    assert_error(
        run_dense(input, Nhwc::new(1, 1, 2, 2), |x, y| pool.run(x, y, SEQ)),
        ErrorKind::InvalidArgument,
        &needles,
    );
    let mut parts = BottleneckParts::new(2, 2, 3, 5);
    parts.desc.padding = Padding::default();
    let b = parts.build(OpOptions::default()).unwrap();
    let input = Nhwc::new(1, 6, 4, 2);
    let needles = ["bottleneck kernel 5 is larger than the padded input 6x4"];
    assert_error(b.output_shape(input), ErrorKind::InvalidArgument, &needles);
    assert_error(
        run_dense(input, Nhwc::new(1, 2, 1, 3), |x, y| b.run(x, y, SEQ)),
        ErrorKind::InvalidArgument,
        &needles,
    );
    let desc = MaxPool2dDesc::square(3, 1, Padding::default());
    let p = pool_projection(
        &desc,
        2,
        2,
        &ones(4),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    let input = Nhwc::new(1, 2, 9, 2);
    let needles = ["maxpool kernel 3 is larger than the padded input 2x9"];
    assert_error(p.output_shape(input), ErrorKind::InvalidArgument, &needles);
    assert_error(
        run_dense(input, Nhwc::new(1, 1, 7, 2), |x, y| p.run(x, y, SEQ)),
        ErrorKind::InvalidArgument,
        &needles,
    );
}

/// Row 26: `output_shape` (and `Conv2d::macs`) of a shape whose height or width plus the
/// padding overflows `usize`; a view is never that large, so only these helpers see it.
#[test]
fn padded_input_size_overflowing_usize() {
    let conv = Conv2d::new(&Conv2dDesc::same(1, 1, 3, Epilogue::None), &ones(9), None).unwrap();
    let tall = Nhwc::new(1, usize::MAX, 2, 1);
    let needles = ["conv2d padded input size overflows usize"];
    assert_error(conv.output_shape(tall), ErrorKind::Overflow, &needles);
    assert_error(conv.macs(tall), ErrorKind::Overflow, &needles);
    let wide = Nhwc::new(1, 2, usize::MAX - 1, 1);
    let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION).unwrap();
    assert_error(
        pool.output_shape(wide),
        ErrorKind::Overflow,
        &["maxpool padded input size overflows usize"],
    );
    let b = BottleneckParts::new(1, 1, 1, 3)
        .build(OpOptions::default())
        .unwrap();
    assert_error(
        b.output_shape(tall),
        ErrorKind::Overflow,
        &["bottleneck padded input size overflows usize"],
    );
    let p = pool_projection(
        &MaxPool2dDesc::INCEPTION,
        1,
        1,
        &ones(1),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    assert_error(
        p.output_shape(wide),
        ErrorKind::Overflow,
        &["maxpool padded input size overflows usize"],
    );
    // Without padding the same height fits: the output is computed exactly.
    let valid = Conv2d::new(
        &Conv2dDesc {
            padding: Padding::default(),
            ..Conv2dDesc::same(1, 1, 3, Epilogue::None)
        },
        &ones(9),
        None,
    )
    .unwrap();
    assert_eq!(
        valid.output_shape(Nhwc::new(1, usize::MAX, 3, 1)).unwrap(),
        Nhwc::new(1, usize::MAX - 2, 1, 1)
    );
}

// ---------------------------------------------------------------------------------------------
// ISA selection.

/// Row 28: `set_max_isa` with an ISA this CPU lacks leaves the cap in force as it was.
#[test]
fn set_max_isa_with_an_unavailable_isa() {
    let missing = missing_isa();
    let before = incept::isa::max_isa();
    assert_error(
        incept::set_max_isa(Some(missing)),
        ErrorKind::UnsupportedIsa,
        &[
            &format!("ISA {missing} is not supported by this CPU"),
            "(available: scalar",
        ],
    );
    assert_eq!(
        incept::isa::max_isa(),
        before,
        "a refused cap is not stored"
    );
}

/// Rows 29-30: `INCEPT_MAX_ISA` is read once per process, so each value runs in a child
/// process (this test binary, running only [`incept_max_isa_environment_child`]). Skipped where
/// the binary runs under an emulator (NEON under qemu): the child cannot be exec'd directly.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "spawns the test binary itself, which a cross-arch runner (qemu) cannot exec directly"
)]
fn incept_max_isa_environment() {
    let exe = std::env::current_exe().expect("test binary");
    for value in ["avx-1024", missing_isa().name()] {
        let out = std::process::Command::new(&exe)
            .args([
                "incept_max_isa_environment_child",
                "--exact",
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env("INCEPT_MAX_ISA", value)
            .output()
            .expect("run the child");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "INCEPT_MAX_ISA={value}: child failed\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Run by [`incept_max_isa_environment`] with `INCEPT_MAX_ISA` set.
#[test]
#[ignore = "run by incept_max_isa_environment in a child process with INCEPT_MAX_ISA set"]
fn incept_max_isa_environment_child() {
    let Ok(value) = std::env::var("INCEPT_MAX_ISA") else {
        eprintln!(
            "INCEPT_MAX_ISA is not set: nothing to check (run by incept_max_isa_environment)"
        );
        return;
    };
    let conv = || Conv1x1::new(2, 2, &[1.0; 4], None, Epilogue::None);
    let (kind, needle) = match value.parse::<Isa>() {
        Err(_) => (
            ErrorKind::UnsupportedIsa,
            format!(
                "INCEPT_MAX_ISA: unknown ISA '{value}': expected one of scalar, avx2, avx512, neon"
            ),
        ),
        Ok(isa) => {
            assert_eq!(incept::isa::max_isa(), Ok(Some(isa)));
            (
                ErrorKind::UnsupportedIsa,
                format!("ISA {isa} is not supported by this CPU (available: scalar"),
            )
        }
    };
    if value.parse::<Isa>().is_err() {
        assert_error(incept::isa::max_isa(), kind, &[&needle]);
    }
    assert_error(incept::isa::resolve(None), kind, &[&needle]);
    assert_error(conv(), kind, &[&needle]);
    assert_error(MaxPool2d::new(&MaxPool2dDesc::INCEPTION), kind, &[&needle]);
    // A cap set through the API wins over the environment, and clearing it brings the error back.
    incept::set_max_isa(Some(Isa::Scalar)).unwrap();
    assert_eq!(conv().unwrap().isa(), Isa::Scalar);
    incept::set_max_isa(None).unwrap();
    assert_error(conv(), kind, &[&needle]);
}

// ---------------------------------------------------------------------------------------------
// The reference.

/// Rows 33-35: `inception_reference` refuses what `Inception::new` refuses, mismatched shapes
/// and lengths, and overflowing element counts.
#[test]
fn inception_reference_errors() {
    let parts = InceptionParts::tiny();
    let x = activations(Mode::Exact, 2 * 2 * 3, 1);
    let full = parts.weights();
    assert_error(
        inception_reference(
            &parts.config,
            &InceptionWeights {
                reduce3x3: None,
                ..full
            },
            &x,
            Nhwc::new(1, 2, 2, 3),
        ),
        ErrorKind::InvalidArgument,
        &["inception config has a 3x3 reduction but no weights"],
    );
    let mut short = InceptionParts::tiny();
    short.weights[4].pop();
    assert_error(
        inception_reference(&short.config, &short.weights(), &x, Nhwc::new(1, 2, 2, 3)),
        ErrorKind::BufferTooSmall,
        &["5x5 branch weights have 49 elements"],
    );
    assert_error(
        inception_reference(&parts.config, &full, &x[..8], Nhwc::new(1, 2, 2, 4)),
        ErrorKind::ShapeMismatch,
        &["reference input 1x2x2x4 does not match the module's 3 channels"],
    );
    assert_error(
        inception_reference(&parts.config, &full, &x[..9], Nhwc::new(1, 2, 2, 3)),
        ErrorKind::ShapeMismatch,
        &["reference input 1x2x2x3"],
    );
    assert_error(
        inception_reference(&parts.config, &full, &x, Nhwc::new(usize::MAX, 2, 1, 3)),
        ErrorKind::Overflow,
        &["tensor element count overflows usize"],
    );
    let out = inception_reference(&parts.config, &full, &x, Nhwc::new(1, 2, 2, 3)).unwrap();
    assert_eq!(out.len(), 4 * parts.config.out_channels());
}

// ---------------------------------------------------------------------------------------------
// Concurrency.

/// Many threads run the same packed operators on different data at the same time, each with
/// sequential and parallel (rayon's global pool, nested) runs: every result is bit-identical to
/// what one thread alone computes.
#[test]
fn concurrent_runs_match_one_thread() {
    const THREADS: usize = 8;
    let (n, h, w, cin) = (2, 9, 10, 16);
    let input = Nhwc::new(n, h, w, cin);
    // Most of these are above the work threshold for splitting (2^18 multiply-adds).
    let conv1 = Conv1x1::new(
        cin,
        96,
        &weights(Mode::Random, 96 * cin, 1),
        Some(&bias(Mode::Random, 96, 1)),
        Epilogue::Relu,
    )
    .unwrap();
    let conv2 = Conv2d::new(
        &Conv2dDesc {
            padding: Padding {
                top: 0,
                left: 2,
                bottom: 1,
                right: 0,
            },
            ..Conv2dDesc::same(cin, 20, 3, Epilogue::Relu6)
        },
        &weights(Mode::Random, 20 * 9 * cin, 2),
        None,
    )
    .unwrap();
    let pool = MaxPool2d::new(&MaxPool2dDesc::INCEPTION).unwrap();
    let bottleneck = Bottleneck::new(
        &BottleneckDesc::same_relu(cin, 12, 18, 5),
        &BottleneckWeights {
            reduce: &weights(Mode::Random, 12 * cin, 3),
            reduce_bias: None,
            conv: &weights(Mode::Random, 18 * 25 * 12, 4),
            conv_bias: Some(&bias(Mode::Random, 18, 4)),
        },
    )
    .unwrap();
    let proj = pool_projection(
        &MaxPool2dDesc::INCEPTION,
        cin,
        8,
        &weights(Mode::Random, 8 * cin, 5),
        None,
        Epilogue::None,
        OpOptions::default(),
    )
    .unwrap();
    let module = InceptionParts::new(InceptionConfig::googlenet(cin, 8, 12, 16, 4, 8, 8));
    let inception = module.build(&module.weights()).unwrap();

    let ops: Vec<(&str, Nhwc, Run<'_>)> = vec![
        (
            "conv1x1",
            Nhwc { c: 96, ..input },
            run_fn(|x, y, p| conv1.run(x, y, p)),
        ),
        (
            "conv2d",
            conv2.output_shape(input).unwrap(),
            run_fn(|x, y, p| conv2.run(x, y, p)),
        ),
        ("maxpool", input, run_fn(|x, y, p| pool.run(x, y, p))),
        (
            "bottleneck",
            bottleneck.output_shape(input).unwrap(),
            run_fn(|x, y, p| bottleneck.run(x, y, p)),
        ),
        (
            "pool projection",
            proj.output_shape(input).unwrap(),
            run_fn(|x, y, p| proj.run(x, y, p)),
        ),
        (
            "inception",
            inception.output_shape(input),
            run_fn(|x, y, p| inception.run(x, y, p)),
        ),
    ];
    let inputs: Vec<Vec<f32>> = (0..THREADS)
        .map(|t| activations(Mode::Random, input.element_count().unwrap(), 100 + t as u64))
        .collect();
    let compute = |x: &[f32], par: Parallelism<'_>| -> Vec<Vec<f32>> {
        ops.iter()
            .map(|(name, out_shape, run)| {
                let mut y = vec![0.0; out_shape.element_count().unwrap()];
                run(
                    &TensorView::new(x, input).unwrap(),
                    &mut TensorViewMut::new(&mut y, *out_shape).unwrap(),
                    par,
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
                y
            })
            .collect()
    };
    let alone: Vec<_> = inputs.iter().map(|x| compute(x, SEQ)).collect();
    let together: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|x| s.spawn(|| (compute(x, SEQ), compute(x, Parallelism::Global))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, (seq, global)) in together.iter().enumerate() {
        for (i, (name, _, _)) in ops.iter().enumerate() {
            for (what, got) in [("sequential", &seq[i]), ("global pool", &global[i])] {
                assert!(
                    got.iter()
                        .zip(&alone[t][i])
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "thread {t}, {name}, {what}: differs from one thread alone"
                );
            }
        }
    }
}

/// Row 36: Winograd asked for a convolution it cannot compute, in each operator that takes it.
#[test]
fn interleaved_pool_schedule_where_it_cannot_run() {
    let interleaved = OpOptions {
        pool_schedule: incept::PoolSchedule::Interleaved,
        ..OpOptions::default()
    };
    let proj = ConvParams {
        weights: &[1.0; 8],
        bias: None,
    };
    let e = PoolProjection::with_options(
        &MaxPool2dDesc::INCEPTION,
        8,
        1,
        proj,
        Epilogue::None,
        interleaved,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    let isa = incept::isa::resolve(None).unwrap();
    assert_eq!(
        e.message(),
        format!(
            "pool projection: the interleaved pool schedule needs AVX-512, a 3x3 stride-1 pool \
             padded by 1 on every side and input channels a multiple of 16; got ISA {isa}, a 3x3 \
             pool with stride 1,1 and padding 1,1,1,1 (top, left, bottom, right), 8 channels"
        )
    );
    // The module names its pool projection; scalar cannot interleave at any size.
    let cfg = InceptionConfig::googlenet(16, 1, 1, 1, 1, 1, 1);
    let ws: Vec<Vec<f32>> = [16, 16, 9, 16, 25, 16]
        .iter()
        .map(|&k| vec![0.0; k])
        .collect();
    let params = |i: usize| ConvParams {
        weights: &ws[i],
        bias: None,
    };
    let weights = InceptionWeights {
        conv1x1: params(0),
        reduce3x3: Some(params(1)),
        conv3x3: params(2),
        reduce5x5: Some(params(3)),
        conv5x5: params(4),
        pool_proj: Some(params(5)),
    };
    let scalar = OpOptions {
        max_isa: Some(incept::Isa::Scalar),
        ..interleaved
    };
    let e = Inception::with_options(&cfg, &weights, scalar).unwrap_err();
    assert!(
        e.message()
            .starts_with("inception: the interleaved pool schedule needs AVX-512")
            && e.message().contains("got ISA scalar"),
        "{e}"
    );
}

#[test]
fn winograd_forced_on_a_shape_it_cannot_compute() {
    let winograd = OpOptions {
        algorithm: incept::ConvAlgorithm::Winograd,
        ..OpOptions::default()
    };
    let desc = Conv2dDesc::same(4, 5, 7, Epilogue::None);
    let e = Conv2d::with_options(&desc, &[0.0; 5 * 49 * 4], None, winograd).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        e.message(),
        "conv2d: Winograd needs a 3x3 or 5x5 kernel with stride 1, got kernel 7, stride 1"
    );
    let strided = Conv2dDesc {
        stride: [2; 2],
        ..Conv2dDesc::same(4, 5, 3, Epilogue::None)
    };
    let e = Conv2d::with_options(&strided, &[0.0; 5 * 9 * 4], None, winograd).unwrap_err();
    assert!(e.message().contains("got kernel 3, stride 2"), "{e}");
    let rect = Conv2dDesc::same_rect(4, 5, [1, 7], Epilogue::None);
    let e = Conv2d::with_options(&rect, &[0.0; 5 * 7 * 4], None, winograd).unwrap_err();
    assert_eq!(
        e.message(),
        "conv2d: Winograd needs a 3x3 or 5x5 kernel with stride 1, got kernel 1x7, stride 1,1"
    );
    // Auto under the relaxed policy runs it directly.
    let relaxed = OpOptions {
        accuracy: incept::Accuracy::Relaxed,
        ..OpOptions::default()
    };
    let rect = Conv2dDesc::same_rect(16, 16, [1, 7], Epilogue::None);
    let conv = Conv2d::with_options(&rect, &[0.0; 16 * 7 * 16], None, relaxed).unwrap();
    assert_eq!(conv.algorithm(), incept::ConvAlgorithm::Direct);
    let desc = BottleneckDesc {
        stride: 2,
        ..BottleneckDesc::same_relu(6, 4, 5, 3)
    };
    let weights = BottleneckWeights {
        reduce: &[0.0; 4 * 6],
        reduce_bias: None,
        conv: &[0.0; 5 * 9 * 4],
        conv_bias: None,
    };
    let e = Bottleneck::with_options(&desc, &weights, winograd).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.message().starts_with("bottleneck conv: Winograd"), "{e}");
}
