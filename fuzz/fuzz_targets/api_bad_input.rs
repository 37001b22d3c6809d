//! Bad-input fuzzing of the whole public API: arbitrary descriptors, channel counts, slice
//! lengths, pixel strides, offsets and channel slices (small, medium and huge values, near
//! `usize::MAX`), for the views, every operator constructor and `run`, `inception_reference`,
//! `to_ohwi` and ISA names. Every call must return `Ok` or `Err`, never panic, never report
//! `ErrorKind::Internal` (a validation hole), and:
//! * views and `Conv1x1` / `Conv2d` / `MaxPool2d` constructors succeed exactly when a model of
//!   the documented rules says they should, with the documented `ErrorKind`;
//! * a successful `run` writes every element of the output view (none is NaN afterwards: the
//!   data is finite) and leaves every element outside it untouched (sentinel bits);
//! * a failed `run` writes nothing.
//!
//! Known library bugs (see `tests/fuzz_regressions.rs`) are filtered out by [`known_bug`], so the
//! fuzzer keeps exploring; run with `INCEPT_FUZZ_KNOWN_BUGS=1` to let them crash.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use incept::isa::ALL_ISAS;
use incept::{
    inception_reference, to_ohwi, Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d,
    Conv2dDesc, ConvParams, Epilogue, Error, ErrorKind, Inception, InceptionConfig,
    InceptionWeights, Isa, MaxPool2d, MaxPool2dDesc, Nhwc, OpOptions, Padding, PoolProjection,
    Result, TensorView, TensorViewMut, WeightLayout, WeightShape, MAX_KERNEL, MAX_POOL_KERNEL,
};
use incept_fuzz::{EpilogueSel, Par, Rng, OUTPUT_SENTINEL};
use libfuzzer_sys::fuzz_target;

/// Largest buffer the target itself allocates, in elements.
const MAX_LEN: usize = 1 << 14;
/// Largest convolution work a `run` may do (so each execution stays fast).
const MAX_WORK: u64 = 2_000_000;

/// Values near the limits: products and sums of these overflow `usize` in many ways.
const HUGE: [usize; 16] = [
    usize::MAX,
    usize::MAX - 1,
    usize::MAX / 2,
    usize::MAX / 2 + 1,
    usize::MAX / 3 + 1,
    usize::MAX / 4 + 1,
    usize::MAX / 6 + 1,
    usize::MAX / 14 + 1,
    isize::MAX as usize,
    1 << 62,
    1 << 48,
    1 << 40,
    1 << 32,
    (1 << 32) + 1,
    1 << 31,
    u32::MAX as usize,
];

/// A size, offset or stride as the fuzzer picks it.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Size {
    Small(u8),
    Medium(u16),
    Huge(u8),
    Any(u64),
}

impl Size {
    fn get(self) -> usize {
        match self {
            Size::Small(v) => usize::from(v % 9),
            Size::Medium(v) => usize::from(v),
            Size::Huge(i) => HUGE[usize::from(i) % HUGE.len()],
            Size::Any(v) => v as usize,
        }
    }
}

/// A slice length: relative to what the shape needs, or any.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Len {
    Exact,
    Plus(u8),
    Minus(u8),
    Raw(u16),
}

impl Len {
    /// The length for a slice that needs `needed` elements (`None`: overflows), capped.
    fn resolve(self, needed: Option<usize>) -> usize {
        let needed = needed.filter(|&n| n <= MAX_LEN);
        match (self, needed) {
            (Len::Exact, Some(n)) => n,
            (Len::Plus(d), Some(n)) => (n + usize::from(d % 4)).min(MAX_LEN),
            (Len::Minus(d), Some(n)) => n.saturating_sub(1 + usize::from(d % 4)),
            (Len::Raw(v), _) => usize::from(v),
            (_, None) => MAX_LEN,
        }
    }
}

/// An epilogue, including NaN and reversed clamps.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Epi {
    Sel(EpilogueSel),
    Raw(f32, f32),
}

impl Epi {
    fn get(self) -> Epilogue {
        match self {
            Epi::Sel(sel) => sel.get(),
            Epi::Raw(min, max) => Epilogue::Clamp { min, max },
        }
    }
}

fn epilogue_ok(e: Epilogue) -> bool {
    match e {
        Epilogue::Clamp { min, max } => !min.is_nan() && !max.is_nan() && min <= max,
        _ => true,
    }
}

/// An operator's ISA cap: none, or any ISA (the CPU may lack it).
fn isa_cap(sel: Option<u8>) -> Option<Isa> {
    sel.map(|i| ALL_ISAS[usize::from(i) % ALL_ISAS.len()])
}

/// The pixel stride of a view: dense, `c + x`, or any value.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Stride {
    Dense,
    Plus(Size),
    Raw(Size),
}

impl Stride {
    fn get(self, c: usize) -> usize {
        match self {
            Stride::Dense => c,
            Stride::Plus(x) => c.saturating_add(x.get()),
            Stride::Raw(x) => x.get(),
        }
    }
}

/// A view's layout apart from its shape.
#[derive(Arbitrary, Clone, Copy, Debug)]
struct Layout {
    stride: Stride,
    offset: Size,
    len: Len,
    /// Build it as `channels(start, c)` of a view `start + c + extra` channels wide.
    slice: Option<(u8, u8)>,
}

/// Elements a view needs from the start of its slice, or why not (the documented rules).
fn view_model(shape: Nhwc, ps: usize, offset: usize) -> std::result::Result<usize, ErrorKind> {
    if shape.n == 0 || shape.h == 0 || shape.w == 0 || shape.c == 0 || ps < shape.c {
        return Err(ErrorKind::InvalidArgument);
    }
    shape
        .n
        .checked_mul(shape.h)
        .and_then(|p| p.checked_mul(shape.w))
        .and_then(|p| (p - 1).checked_mul(ps))
        .and_then(|x| x.checked_add(shape.c))
        .and_then(|x| x.checked_add(offset))
        .ok_or(ErrorKind::Overflow)
}

/// Checks a view constructor's result against the model.
fn check_view(result: &Result<()>, len: usize, shape: Nhwc, ps: usize, offset: usize) {
    let expected = view_model(shape, ps, offset).and_then(|end| {
        if end <= len {
            Ok(())
        } else {
            Err(ErrorKind::BufferTooSmall)
        }
    });
    match (result, expected) {
        (Ok(()), Ok(())) => {}
        (Err(e), Err(kind)) => assert_eq!(
            e.kind(),
            kind,
            "{e}: {shape} ps {ps} off {offset} len {len}"
        ),
        (r, want) => {
            panic!("view {shape} ps {ps} off {offset} len {len}: got {r:?}, model says {want:?}")
        }
    }
}

/// A view as placed in a buffer: the buffer and where the view is.
struct Placed {
    buf: Vec<f32>,
    shape: Nhwc,
    ps: usize,
    offset: usize,
    /// Built as `channels(start, c)` of a `wide_c`-channel view at `wide_offset`.
    wide: Option<(usize, usize, usize)>,
}

impl Placed {
    /// Places a view of `shape` with `layout`; `None` when the layout is invalid (after
    /// checking that the library refuses it as the model says).
    fn new(shape: Nhwc, layout: Layout, fill: f32) -> Option<Placed> {
        let (wide_c, start) = match layout.slice {
            Some((s, e)) => {
                let (s, e) = (usize::from(s % 5), usize::from(e % 5));
                (shape.c.checked_add(s)?.checked_add(e)?, Some(s))
            }
            None => (shape.c, None),
        };
        let wide_shape = Nhwc { c: wide_c, ..shape };
        let ps = layout.stride.get(wide_c);
        let offset = layout.offset.get();
        let len = layout.len.resolve(view_model(wide_shape, ps, offset).ok());
        let buf = vec![fill; len];
        let r = TensorView::with_layout(&buf, wide_shape, ps, offset).map(|_| ());
        check_view(&r, len, wide_shape, ps, offset);
        r.ok()?;
        if let Some(start) = start {
            // An empty channel slice (a view of 0 channels) is refused.
            let wide = TensorView::with_layout(&buf, wide_shape, ps, offset).expect("checked");
            let sliced = wide.channels(start, shape.c);
            assert_eq!(
                sliced.is_ok(),
                shape.c > 0,
                "channels({start}, {}) of {wide_shape}",
                shape.c
            );
            sliced.ok()?;
        }
        Some(Placed {
            buf,
            shape,
            ps,
            offset: offset + start.unwrap_or(0),
            wide: start.map(|s| (s, wide_c, offset)),
        })
    }

    fn view(&self) -> TensorView<'_> {
        match self.wide {
            Some((start, wide_c, wide_offset)) => TensorView::with_layout(
                &self.buf,
                Nhwc {
                    c: wide_c,
                    ..self.shape
                },
                self.ps,
                wide_offset,
            )
            .and_then(|v| v.channels(start, self.shape.c))
            .expect("checked view"),
            None => TensorView::with_layout(&self.buf, self.shape, self.ps, self.offset)
                .expect("checked view"),
        }
    }

    fn with_view_mut<R>(&mut self, f: impl FnOnce(&mut TensorViewMut<'_>) -> R) -> R {
        match self.wide {
            Some((start, wide_c, wide_offset)) => {
                let mut wide = TensorViewMut::with_layout(
                    &mut self.buf,
                    Nhwc {
                        c: wide_c,
                        ..self.shape
                    },
                    self.ps,
                    wide_offset,
                )
                .expect("checked view");
                let mut view = wide.channels(start, self.shape.c).expect("checked slice");
                f(&mut view)
            }
            None => {
                let mut view =
                    TensorViewMut::with_layout(&mut self.buf, self.shape, self.ps, self.offset)
                        .expect("checked view");
                f(&mut view)
            }
        }
    }

    /// Whether buffer element `idx` belongs to the view.
    fn contains(&self, idx: usize) -> bool {
        idx >= self.offset && {
            let rel = idx - self.offset;
            rel / self.ps < self.shape.n * self.shape.h * self.shape.w
                && rel % self.ps < self.shape.c
        }
    }
}

/// A shape from four sizes, or one derived from the operator.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum ShapeSel {
    /// The operator's own channels (input) or expected output shape; small spatial sizes.
    Matching {
        n: u8,
        h: u8,
        w: u8,
    },
    Any([Size; 4]),
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct RunSel {
    input: ShapeSel,
    input_layout: Layout,
    output: ShapeSel,
    output_layout: Layout,
    par: Par,
    seed: u64,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct Window {
    kernel: Size,
    stride: Size,
    padding: [Size; 4],
    /// The window width and horizontal stride of a pool or a `Conv2d` (else as `kernel` and
    /// `stride`: square).
    cols: Option<(Size, Size)>,
}

impl Window {
    fn padding(&self) -> Padding {
        let [top, left, bottom, right] = self.padding.map(Size::get);
        Padding {
            top,
            left,
            bottom,
            right,
        }
    }

    fn ok(&self, max_kernel: usize) -> bool {
        let (k, p) = (self.kernel.get(), self.padding());
        (1..=max_kernel).contains(&k)
            && self.stride.get() >= 1
            && [p.top, p.left, p.bottom, p.right].iter().all(|&x| x < k)
    }

    /// `[rows, cols]` of the window and of the stride: rows from `kernel` and `stride`,
    /// columns from `cols`.
    fn rect(&self) -> ([usize; 2], [usize; 2]) {
        let (kw, sw) = self.cols.unwrap_or((self.kernel, self.stride));
        ([self.kernel.get(), kw.get()], [self.stride.get(), sw.get()])
    }

    /// Whether [`Window::rect`] with this padding is a valid window of sides up to `max_kernel`.
    fn rect_ok(&self, max_kernel: usize) -> bool {
        let ([kh, kw], stride) = self.rect();
        let p = self.padding();
        [kh, kw].iter().all(|k| (1..=max_kernel).contains(k))
            && stride.iter().all(|&s| s >= 1)
            && p.top.max(p.bottom) < kh
            && p.left.max(p.right) < kw
    }

    fn pool(&self) -> MaxPool2dDesc {
        let (kernel, stride) = self.rect();
        MaxPool2dDesc {
            kernel,
            stride,
            padding: self.padding(),
        }
    }
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct Params {
    weights: Len,
    bias: Option<Len>,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Action {
    View {
        shape: [Size; 4],
        layout: Layout,
        mutable: bool,
        channels: Option<(Size, Size)>,
    },
    Conv1x1 {
        cin: Size,
        cout: Size,
        params: Params,
        epilogue: Epi,
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    Conv2d {
        cin: Size,
        cout: Size,
        window: Window,
        params: Params,
        epilogue: Epi,
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    MaxPool {
        window: Window,
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    Bottleneck {
        cin: Size,
        reduce: Size,
        cout: Size,
        window: Window,
        reduce_params: Params,
        params: Params,
        reduce_epilogue: Epi,
        epilogue: Epi,
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    PoolProjection {
        window: Window,
        cin: Size,
        cout: Size,
        params: Params,
        epilogue: Epi,
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    Inception {
        channels: [Size; 4],
        optional: [Option<Size>; 3],
        params: [Params; 6],
        present: [bool; 3],
        isa: Option<u8>,
        run: Option<RunSel>,
    },
    InceptionReference {
        channels: [Size; 4],
        optional: [Option<Size>; 3],
        params: [Params; 6],
        present: [bool; 3],
        shape: [Size; 4],
        input: Len,
    },
    ToOhwi {
        shape: [Size; 4],
        layout: u8,
        len: Len,
    },
    Helpers {
        op: u8,
        shape: [Size; 4],
    },
}

fn known_bugs_allowed() -> bool {
    static ALLOWED: OnceLock<bool> = OnceLock::new();
    *ALLOWED.get_or_init(|| std::env::var_os("INCEPT_FUZZ_KNOWN_BUGS").is_some())
}

/// Inputs that hit a library bug already reported (each has a test in
/// `tests/fuzz_regressions.rs`), skipped unless `INCEPT_FUZZ_KNOWN_BUGS` is set.
#[allow(dead_code)] // kept for the next known bug
fn known_bug(bug: bool) -> bool {
    bug && !known_bugs_allowed()
}

fn shape_of(s: [Size; 4]) -> Nhwc {
    Nhwc::new(s[0].get(), s[1].get(), s[2].get(), s[3].get())
}

/// Asserts an error is not an internal one (a hole in the validation).
#[track_caller]
fn not_internal(e: &Error) {
    assert_ne!(e.kind(), ErrorKind::Internal, "internal error: {e}");
}

/// Data for weights or biases: `len` small integers.
fn data(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.int(-2, 2)).collect()
}

struct OwnedParams {
    weights: Vec<f32>,
    bias: Option<Vec<f32>>,
}

impl OwnedParams {
    /// Weights for `out x taps x cin` (as the sizes say, capped) and a bias for `out`.
    fn new(p: Params, out: usize, taps: usize, cin: usize, seed: u64) -> Self {
        let needed = out.checked_mul(taps).and_then(|x| x.checked_mul(cin));
        OwnedParams {
            weights: data(p.weights.resolve(needed), seed),
            bias: p.bias.map(|b| data(b.resolve(Some(out)), seed ^ 1)),
        }
    }

    fn get(&self) -> ConvParams<'_> {
        ConvParams {
            weights: &self.weights,
            bias: self.bias.as_deref(),
        }
    }

    fn ok(&self, out: usize, taps: usize, cin: usize) -> bool {
        out >= 1
            && cin >= 1
            && out.checked_mul(taps).and_then(|x| x.checked_mul(cin)) == Some(self.weights.len())
            && self.bias.as_ref().is_none_or(|b| b.len() == out)
    }
}

/// The operators behind one interface.
enum Op {
    Conv1x1(Conv1x1),
    Conv2d(Conv2d),
    MaxPool(MaxPool2d),
    Bottleneck(Bottleneck),
    /// With its input channels (not exposed by the operator).
    PoolProjection(PoolProjection, usize),
    Inception(Box<Inception>),
}

impl Op {
    fn isa(&self) -> Isa {
        match self {
            Op::Conv1x1(op) => op.isa(),
            Op::Conv2d(op) => op.isa(),
            Op::MaxPool(op) => op.isa(),
            Op::Bottleneck(op) => op.isa(),
            Op::PoolProjection(op, _) => op.isa(),
            Op::Inception(op) => op.isa(),
        }
    }

    /// Input channels (max-pool: any, `any` is used).
    fn in_channels(&self, any: usize) -> usize {
        match self {
            Op::Conv1x1(op) => op.in_channels(),
            Op::Conv2d(op) => op.desc().in_channels,
            Op::MaxPool(_) => any,
            Op::Bottleneck(op) => op.desc().in_channels,
            Op::PoolProjection(_, cin) => *cin,
            Op::Inception(op) => op.config().in_channels,
        }
    }

    fn output_shape(&self, input: Nhwc) -> Result<Nhwc> {
        match self {
            Op::Conv1x1(op) => Ok(Nhwc {
                c: op.out_channels(),
                ..input
            }),
            Op::Conv2d(op) => op.output_shape(input),
            Op::MaxPool(op) => op.output_shape(input),
            Op::Bottleneck(op) => op.output_shape(input),
            Op::PoolProjection(op, _) => op.output_shape(input),
            Op::Inception(op) => Ok(op.output_shape(input)),
        }
    }

    fn run(
        &self,
        x: &TensorView<'_>,
        y: &mut TensorViewMut<'_>,
        par: incept::Parallelism<'_>,
    ) -> Result<()> {
        match self {
            Op::Conv1x1(op) => op.run(x, y, par),
            Op::Conv2d(op) => op.run(x, y, par),
            Op::MaxPool(op) => op.run(x, y, par),
            Op::Bottleneck(op) => op.run(x, y, par),
            Op::PoolProjection(op, _) => op.run(x, y, par),
            Op::Inception(op) => op.run(x, y, par),
        }
    }
}

/// Checks a constructor's result: no panic, no internal error, an available ISA; and when the
/// model knows, `Ok` exactly when valid.
fn built<T>(result: Result<T>, valid: Option<bool>, wrap: impl FnOnce(T) -> Op) -> Option<Op> {
    match result {
        Ok(op) => {
            let op = wrap(op);
            assert!(
                op.isa().is_available(),
                "operator on unavailable {}",
                op.isa()
            );
            assert_ne!(valid, Some(false), "an invalid operator was accepted");
            Some(op)
        }
        Err(e) => {
            not_internal(&e);
            assert_ne!(valid, Some(true), "a valid operator was refused: {e}");
            None
        }
    }
}

fn cap_ok(isa: Option<Isa>) -> bool {
    isa.is_none_or(Isa::is_available)
}

/// Runs `op` on views picked by `sel`.
fn run(op: &Op, sel: &RunSel) {
    let in_shape = match sel.input {
        ShapeSel::Matching { n, h, w } => Nhwc::new(
            1 + usize::from(n % 3),
            1 + usize::from(h % 12),
            1 + usize::from(w % 12),
            op.in_channels(1 + (sel.seed % 40) as usize),
        ),
        ShapeSel::Any(s) => shape_of(s),
    };
    let out_shape = match sel.output {
        ShapeSel::Matching { .. } => match op.output_shape(in_shape) {
            Ok(s) => s,
            Err(e) => {
                not_internal(&e);
                return;
            }
        },
        ShapeSel::Any(s) => shape_of(s),
    };
    let Some(input) = Placed::new(in_shape, sel.input_layout, 0.0) else {
        return;
    };
    // Finite input data, so that no output element the run writes is NaN.
    let mut input = input;
    let mut rng = Rng::new(sel.seed);
    for v in input.buf.iter_mut() {
        *v = rng.int(-3, 3);
    }
    let Some(mut output) = Placed::new(out_shape, sel.output_layout, OUTPUT_SENTINEL) else {
        return;
    };
    // Keep each execution fast: bound the work of a valid run.
    let expected = op.output_shape(in_shape);
    if let Ok(exp) = expected {
        let taps = match op {
            Op::Conv2d(c) => (c.desc().kernel[0] * c.desc().kernel[1]) as u64,
            Op::Bottleneck(b) => (b.desc().kernel * b.desc().kernel) as u64 + 1,
            Op::MaxPool(m) => (m.desc().kernel[0] * m.desc().kernel[1]) as u64,
            Op::Inception(_) => 40,
            _ => 2,
        };
        let work = (exp.n as u64)
            .saturating_mul(exp.h as u64)
            .saturating_mul(exp.w as u64)
            .saturating_mul(exp.c as u64)
            .saturating_mul(in_shape.c as u64)
            .saturating_mul(taps);
        if work > MAX_WORK {
            return;
        }
    }
    let x = input.view();
    let before = output.buf.clone();
    let result = output.with_view_mut(|y| op.run(&x, y, sel.par.get()));
    match result {
        Ok(()) => {
            for (idx, (&g, &w)) in output.buf.iter().zip(&before).enumerate() {
                if output.contains(idx) {
                    // Finite inputs and weights never give a NaN (a clamp may give an infinity):
                    // a NaN is the sentinel, never overwritten.
                    assert!(!g.is_nan(), "output element {idx} not written: {g}");
                } else {
                    assert_eq!(
                        g.to_bits(),
                        w.to_bits(),
                        "element {idx} outside the output view changed"
                    );
                }
            }
        }
        Err(e) => {
            not_internal(&e);
            assert!(
                output
                    .buf
                    .iter()
                    .zip(&before)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "a failed run wrote the output: {e}"
            );
        }
    }
}

fuzz_target!(|action: Action| act(action));

fn act(action: Action) {
    match action {
        Action::View {
            shape,
            layout,
            mutable,
            channels,
        } => {
            let shape = shape_of(shape);
            let ps = layout.stride.get(shape.c);
            let offset = layout.offset.get();
            let len = layout.len.resolve(view_model(shape, ps, offset).ok());
            let mut buf = vec![0.0f32; len];
            let slice_ok = |start: usize, count: usize| {
                count > 0 && start.checked_add(count).is_some_and(|end| end <= shape.c)
            };
            if mutable {
                let r = TensorViewMut::with_layout(&mut buf, shape, ps, offset);
                check_view(
                    &r.as_ref().map(|_| ()).map_err(Clone::clone),
                    len,
                    shape,
                    ps,
                    offset,
                );
                if let (Ok(mut v), Some((s, c))) = (r, channels) {
                    let (s, c) = (s.get(), c.get());
                    let r = v.channels(s, c).map(|v| (v.shape(), v.offset()));
                    assert_eq!(
                        r.is_ok(),
                        slice_ok(s, c),
                        "channels({s}, {c}) of {shape}: {r:?}"
                    );
                    if let Ok((sh, off)) = r {
                        assert_eq!((sh.c, off), (c, offset + s));
                    }
                }
            } else {
                let r = TensorView::with_layout(&buf, shape, ps, offset);
                check_view(
                    &r.as_ref().map(|_| ()).map_err(Clone::clone),
                    len,
                    shape,
                    ps,
                    offset,
                );
                if let (Ok(v), Some((s, c))) = (r, channels) {
                    let (s, c) = (s.get(), c.get());
                    let r = v.channels(s, c);
                    assert_eq!(
                        r.is_ok(),
                        slice_ok(s, c),
                        "channels({s}, {c}) of {shape}: {r:?}"
                    );
                    if let Err(e) = r {
                        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
                    }
                }
            }
        }
        Action::Conv1x1 {
            cin,
            cout,
            params,
            epilogue,
            isa,
            run: r,
        } => {
            let (cin, cout) = (cin.get(), cout.get());
            let p = OwnedParams::new(params, cout, 1, cin, 11);
            let (epilogue, isa) = (epilogue.get(), isa_cap(isa));
            let valid = p.ok(cout, 1, cin) && epilogue_ok(epilogue) && cap_ok(isa);
            let result = Conv1x1::with_options(
                cin,
                cout,
                &p.weights,
                p.bias.as_deref(),
                epilogue,
                OpOptions::with_max_isa(isa),
            );
            if let (Some(op), Some(sel)) = (built(result, Some(valid), Op::Conv1x1), r) {
                run(&op, &sel);
            }
        }
        Action::Conv2d {
            cin,
            cout,
            window,
            params,
            epilogue,
            isa,
            run: r,
        } => {
            let (cin, cout) = (cin.get(), cout.get());
            let (kernel, stride) = window.rect();
            let taps = kernel[0].saturating_mul(kernel[1]);
            let p = OwnedParams::new(params, cout, taps, cin, 12);
            let (epilogue, isa) = (epilogue.get(), isa_cap(isa));
            let valid = window.rect_ok(MAX_KERNEL)
                && p.ok(cout, taps, cin)
                && epilogue_ok(epilogue)
                && cap_ok(isa);
            let desc = Conv2dDesc {
                in_channels: cin,
                out_channels: cout,
                kernel,
                stride,
                padding: window.padding(),
                epilogue,
            };
            let result = Conv2d::with_options(
                &desc,
                &p.weights,
                p.bias.as_deref(),
                OpOptions::with_max_isa(isa),
            );
            if let (Some(op), Some(sel)) = (built(result, Some(valid), Op::Conv2d), r) {
                run(&op, &sel);
            }
        }
        Action::MaxPool {
            window,
            isa,
            run: r,
        } => {
            let isa = isa_cap(isa);
            let valid = window.rect_ok(MAX_POOL_KERNEL) && cap_ok(isa);
            let desc = window.pool();
            let result = MaxPool2d::with_options(&desc, OpOptions::with_max_isa(isa));
            if let (Some(op), Some(sel)) = (built(result, Some(valid), Op::MaxPool), r) {
                run(&op, &sel);
            }
        }
        Action::Bottleneck {
            cin,
            reduce,
            cout,
            window,
            reduce_params,
            params,
            reduce_epilogue,
            epilogue,
            isa,
            run: r,
        } => {
            let (cin, reduce, cout, k) = (cin.get(), reduce.get(), cout.get(), window.kernel.get());
            let rp = OwnedParams::new(reduce_params, reduce, 1, cin, 13);
            let p = OwnedParams::new(params, cout, k.saturating_mul(k), reduce, 14);
            let desc = BottleneckDesc {
                in_channels: cin,
                reduce_channels: reduce,
                out_channels: cout,
                kernel: k,
                stride: window.stride.get(),
                padding: window.padding(),
                reduce_epilogue: reduce_epilogue.get(),
                epilogue: epilogue.get(),
            };
            let weights = BottleneckWeights {
                reduce: &rp.weights,
                reduce_bias: rp.bias.as_deref(),
                conv: &p.weights,
                conv_bias: p.bias.as_deref(),
            };
            let valid = window.ok(MAX_KERNEL)
                && rp.ok(reduce, 1, cin)
                && p.ok(cout, k.saturating_mul(k), reduce)
                && epilogue_ok(desc.epilogue)
                && epilogue_ok(desc.reduce_epilogue)
                && cap_ok(isa_cap(isa));
            let result =
                Bottleneck::with_options(&desc, &weights, OpOptions::with_max_isa(isa_cap(isa)));
            if let (Some(op), Some(sel)) = (built(result, Some(valid), Op::Bottleneck), r) {
                run(&op, &sel);
            }
        }
        Action::PoolProjection {
            window,
            cin,
            cout,
            params,
            epilogue,
            isa,
            run: r,
        } => {
            let (cin, cout) = (cin.get(), cout.get());
            let p = OwnedParams::new(params, cout, 1, cin, 15);
            let desc = window.pool();
            let epilogue = epilogue.get();
            let valid = window.rect_ok(MAX_POOL_KERNEL)
                && p.ok(cout, 1, cin)
                && epilogue_ok(epilogue)
                && cap_ok(isa_cap(isa));
            let result = PoolProjection::with_options(
                &desc,
                cin,
                cout,
                p.get(),
                epilogue,
                OpOptions::with_max_isa(isa_cap(isa)),
            );
            let wrap = |op| Op::PoolProjection(op, cin);
            if let (Some(op), Some(sel)) = (built(result, Some(valid), wrap), r) {
                run(&op, &sel);
            }
        }
        Action::Inception {
            channels,
            optional,
            params,
            present,
            isa,
            run: r,
        } => {
            let (config, owned) = inception_parts(channels, optional, params);
            let weights = inception_weights(&owned, present);
            let result =
                Inception::with_options(&config, &weights, OpOptions::with_max_isa(isa_cap(isa)));
            if let (Some(op), Some(sel)) =
                (built(result, None, |op| Op::Inception(Box::new(op))), r)
            {
                run(&op, &sel);
            }
        }
        Action::InceptionReference {
            channels,
            optional,
            params,
            present,
            shape,
            input,
        } => {
            let (config, owned) = inception_parts(channels, optional, params);
            let weights = inception_weights(&owned, present);
            let shape = shape_of(shape);
            let x = data(input.resolve(shape.element_count().ok()), 16);
            // Keep each execution fast.
            let module = Inception::with_options(&config, &weights, OpOptions::default());
            if let Ok(m) = &module {
                if shape.element_count().is_ok_and(|c| c == x.len()) && m.macs(shape) > MAX_WORK / 4
                {
                    return;
                }
            }
            match inception_reference(&config, &weights, &x, shape) {
                Ok(out) => {
                    assert!(module.is_ok());
                    assert_eq!(
                        out.len(),
                        shape.n * shape.h * shape.w * config.out_channels()
                    );
                }
                Err(e) => not_internal(&e),
            }
        }
        Action::ToOhwi { shape, layout, len } => {
            let [o, kh, kw, i] = shape.map(Size::get);
            let shape = WeightShape {
                out_channels: o,
                kh,
                kw,
                in_channels: i,
            };
            let layout = [WeightLayout::Ohwi, WeightLayout::Oihw, WeightLayout::Hwio]
                [usize::from(layout % 3)];
            let x = data(len.resolve(shape.element_count().ok()), 17);
            match to_ohwi(&x, layout, shape) {
                Ok(out) => assert_eq!(Ok(out.len()), shape.element_count()),
                Err(e) => {
                    not_internal(&e);
                    assert_ne!(shape.element_count().ok(), Some(x.len()), "{e}");
                }
            }
        }
        Action::Helpers { op, shape } => {
            // Public helpers taking arbitrary shapes and widths.
            let shape = shape_of(shape);
            let w = [1.0f32; 25];
            let p = |len: usize| ConvParams {
                weights: &w[..len],
                bias: None,
            };
            match op % 5 {
                0 => {
                    let desc = Conv2dDesc::same(1, 1, 5, Epilogue::None);
                    let c = Conv2d::new(&desc, &w, None).expect("valid");
                    if let Err(e) = c.output_shape(shape) {
                        not_internal(&e);
                    }
                    if let Err(e) = c.macs(shape) {
                        not_internal(&e);
                    }
                }
                1 => {
                    let m = MaxPool2d::new(&MaxPool2dDesc::INCEPTION).expect("valid");
                    if let Err(e) = m.output_shape(shape) {
                        not_internal(&e);
                    }
                }
                2 => {
                    let desc = BottleneckDesc::same_relu(1, 1, 1, 5);
                    let b = Bottleneck::new(
                        &desc,
                        &BottleneckWeights {
                            reduce: &w[..1],
                            reduce_bias: None,
                            conv: &w,
                            conv_bias: None,
                        },
                    )
                    .expect("valid");
                    let _ = b.output_shape(shape);
                    let _ = b.scratch_bytes_per_thread(shape);
                }
                3 => {
                    let pp =
                        PoolProjection::new(&MaxPool2dDesc::INCEPTION, 1, 1, p(1), Epilogue::None)
                            .expect("valid");
                    let _ = pp.output_shape(shape);
                    let _ = pp.scratch_bytes_per_thread(shape.w);
                }
                _ => {
                    let cfg = InceptionConfig::googlenet(1, 1, 1, 1, 1, 1, 1);
                    let weights = InceptionWeights {
                        conv1x1: p(1),
                        reduce3x3: Some(p(1)),
                        conv3x3: p(9),
                        reduce5x5: Some(p(1)),
                        conv5x5: p(25),
                        pool_proj: Some(p(1)),
                    };
                    let m = Inception::new(&cfg, &weights).expect("valid");
                    let _ = m.output_shape(shape);
                    let _ = m.macs(shape);
                    let _ = m.scratch_bytes_per_thread(shape.w);
                }
            }
        }
    }
}

/// An Inception config from fuzzed sizes and its weights (lengths as `params` say).
fn inception_parts(
    channels: [Size; 4],
    optional: [Option<Size>; 3],
    params: [Params; 6],
) -> (InceptionConfig, [OwnedParams; 6]) {
    let [cin, c1, c3, c5] = channels.map(Size::get);
    let [r3, r5, pp] = optional.map(|o| o.map(Size::get));
    let config = InceptionConfig {
        in_channels: cin,
        c1x1: c1,
        c3x3_reduce: r3,
        c3x3: c3,
        c5x5_reduce: r5,
        c5x5: c5,
        pool_proj: pp,
    };
    let owned = [
        OwnedParams::new(params[0], c1, 1, cin, 21),
        OwnedParams::new(params[1], r3.unwrap_or(1), 1, cin, 22),
        OwnedParams::new(params[2], c3, 9, r3.unwrap_or(cin), 23),
        OwnedParams::new(params[3], r5.unwrap_or(1), 1, cin, 24),
        OwnedParams::new(params[4], c5, 25, r5.unwrap_or(cin), 25),
        OwnedParams::new(params[5], pp.unwrap_or(1), 1, cin, 26),
    ];
    (config, owned)
}

fn inception_weights(owned: &[OwnedParams; 6], present: [bool; 3]) -> InceptionWeights<'_> {
    InceptionWeights {
        conv1x1: owned[0].get(),
        reduce3x3: present[0].then(|| owned[1].get()),
        conv3x3: owned[2].get(),
        reduce5x5: present[1].then(|| owned[3].get()),
        conv5x5: owned[4].get(),
        pool_proj: present[2].then(|| owned[5].get()),
    }
}
