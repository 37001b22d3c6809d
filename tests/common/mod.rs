//! Helpers shared by the integration tests: deterministic data, view layouts (including channel
//! slices of wider tensors), the reference oracle with an error bound, and the ISAs to test.
//!
//! Two kinds of data:
//! * **exact**: small integers (activations in `-2..=2`, about half of them zero; weights in
//!   `-2..=2`; integer biases in `-8..=8`). With at most a few hundred input channels every
//!   partial sum is an integer far below 2^24, so it is exact in f32 whatever the summation order
//!   or FMA use: every ISA must match the reference bit for bit.
//! * **random**: floats in `[-1, 1)`. Results may differ from the reference by rounding only; see
//!   [`error_bounds`] and [`assert_within_bounds`].
#![allow(dead_code)]

use incept::reference::Clamp;
use incept::reference::{self, Layout, Window};
use incept::{Epilogue, Isa, Nhwc, TensorView, TensorViewMut};

/// Fills the input buffer outside the view: a NaN, so a kernel that reads outside its view
/// produces NaN outputs and fails the comparison.
pub const INPUT_PAD: f32 = f32::from_bits(0x7fc0_0bad);

/// Fills the output buffer before a run: a NaN with a recognisable payload. Elements outside the
/// output view must still hold exactly these bits afterwards (and a kernel that accumulated
/// into the output instead of overwriting it would produce NaN).
pub const OUTPUT_SENTINEL: f32 = f32::from_bits(0x7fc0_beef);

/// Every ISA this CPU (and this build) supports, lowest first.
pub fn isas() -> Vec<Isa> {
    let isas = incept::isa::available().to_vec();
    assert!(
        isas.contains(&Isa::Scalar),
        "scalar must always be available, got {isas:?}"
    );
    isas
}

/// The ISAs for the full-size module tests: [`isas`], except that an aarch64 build (run under
/// qemu in CI) leaves out the portable kernels. Those are the same Rust on every target (no
/// fused multiply-adds are contracted, so the same bits), and the x86 run of these tests covers
/// them; under emulation they cost more than the NEON runs (tests/inception.rs under qemu:
/// 174 s with them, 100 s without).
pub fn isas_for_full_size_tests() -> Vec<Isa> {
    let mut isas = isas();
    if cfg!(target_arch = "aarch64") {
        isas.retain(|&isa| isa != Isa::Scalar);
    }
    isas
}

/// A small deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform integer in `lo..=hi`, as f32.
    pub fn int(&mut self, lo: i32, hi: i32) -> f32 {
        (lo + self.below((hi - lo + 1) as u64) as i32) as f32
    }

    /// Uniform in `[-1, 1)`, a multiple of 2^-23.
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32) / (1u64 << 23) as f32 - 1.0
    }
}

/// Which kind of data a test uses (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Exact,
    Random,
}

/// Activations: exact mode `-2..=2` with about half zeros; random mode `[-1, 1)`.
pub fn activations(mode: Mode, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0xA11);
    (0..len)
        .map(|_| match mode {
            Mode::Exact => {
                if rng.below(2) == 0 {
                    0.0
                } else {
                    rng.int(-2, 2)
                }
            }
            Mode::Random => rng.unit(),
        })
        .collect()
}

/// Weights: exact mode `-2..=2`; random mode `[-1, 1)`.
pub fn weights(mode: Mode, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0x3E16);
    (0..len)
        .map(|_| match mode {
            Mode::Exact => rng.int(-2, 2),
            Mode::Random => rng.unit(),
        })
        .collect()
}

/// Biases: exact mode integers `-8..=8`; random mode `[-1, 1)`.
pub fn bias(mode: Mode, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0xB1A5);
    (0..len)
        .map(|_| match mode {
            Mode::Exact => rng.int(-8, 8),
            Mode::Random => rng.unit(),
        })
        .collect()
}

/// Where a view lives in its buffer: `lead` elements, then per pixel `start` foreign channels,
/// the view's `c` channels and `extra` foreign channels, then `tail` elements. With
/// `start == extra == 0` it is dense (apart from `lead`/`tail`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub c: usize,
    /// Channels of the wider tensor before the view's first channel.
    pub start: usize,
    /// Channels of the wider tensor after the view's last channel.
    pub extra: usize,
    /// Elements before pixel 0 of the wider tensor.
    pub lead: usize,
    /// Elements after the last pixel of the wider tensor.
    pub tail: usize,
}

impl Spec {
    /// A dense tensor filling its buffer exactly.
    pub fn dense(n: usize, h: usize, w: usize, c: usize) -> Self {
        Spec {
            n,
            h,
            w,
            c,
            start: 0,
            extra: 0,
            lead: 0,
            tail: 0,
        }
    }

    /// Channels `start..start + c` of a `start + c + extra`-channel tensor.
    pub fn slice(n: usize, h: usize, w: usize, c: usize, start: usize, extra: usize) -> Self {
        Spec {
            n,
            h,
            w,
            c,
            start,
            extra,
            lead: 0,
            tail: 0,
        }
    }

    pub fn with_margins(self, lead: usize, tail: usize) -> Self {
        Spec { lead, tail, ..self }
    }

    pub fn pixels(&self) -> usize {
        self.n * self.h * self.w
    }

    pub fn pixel_stride(&self) -> usize {
        self.start + self.c + self.extra
    }

    pub fn offset(&self) -> usize {
        self.lead + self.start
    }

    pub fn shape(&self) -> Nhwc {
        Nhwc::new(self.n, self.h, self.w, self.c)
    }

    /// The shape of the wider tensor the view is a channel slice of.
    pub fn wide_shape(&self) -> Nhwc {
        Nhwc::new(self.n, self.h, self.w, self.pixel_stride())
    }

    pub fn buffer_len(&self) -> usize {
        self.lead + self.pixels() * self.pixel_stride() + self.tail
    }

    /// The oracle's description of the view.
    pub fn layout(&self) -> Layout {
        Layout {
            n: self.n,
            h: self.h,
            w: self.w,
            c: self.c,
            pixel_stride: self.pixel_stride(),
            offset: self.offset(),
        }
    }

    /// Buffer index of view element `(pixel, ch)`, pixels counted in NHW order.
    pub fn index(&self, pixel: usize, ch: usize) -> usize {
        self.offset() + pixel * self.pixel_stride() + ch
    }

    /// For every buffer element, whether it belongs to the view.
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.buffer_len()];
        for p in 0..self.pixels() {
            for ch in 0..self.c {
                mask[self.index(p, ch)] = true;
            }
        }
        mask
    }

    /// `(pixel, channel)` of a buffer index inside the view (for messages).
    pub fn locate(&self, idx: usize) -> (usize, usize) {
        let rel = idx - self.offset();
        (rel / self.pixel_stride(), rel % self.pixel_stride())
    }

    /// A buffer holding `values` (dense, `pixels x c`) in the view and `pad` elsewhere.
    pub fn buffer_with(&self, values: &[f32], pad: f32) -> Vec<f32> {
        assert_eq!(values.len(), self.pixels() * self.c);
        let mut buf = vec![pad; self.buffer_len()];
        for p in 0..self.pixels() {
            for ch in 0..self.c {
                buf[self.index(p, ch)] = values[p * self.c + ch];
            }
        }
        buf
    }

    /// The view through `TensorView::with_layout`.
    pub fn view<'a>(&self, data: &'a [f32]) -> TensorView<'a> {
        TensorView::with_layout(data, self.shape(), self.pixel_stride(), self.offset())
            .unwrap_or_else(|e| panic!("input view {self:?}: {e}"))
    }

    /// The same view built as `channels(start, c)` of a view of the whole wider tensor.
    pub fn view_via_channels<'a>(&self, data: &'a [f32]) -> TensorView<'a> {
        let wide = TensorView::with_layout(data, self.wide_shape(), self.pixel_stride(), self.lead)
            .unwrap_or_else(|e| panic!("wide input view {self:?}: {e}"));
        let view = wide
            .channels(self.start, self.c)
            .unwrap_or_else(|e| panic!("input channels {self:?}: {e}"));
        assert_eq!(
            (view.shape(), view.pixel_stride(), view.offset()),
            (self.shape(), self.pixel_stride(), self.offset())
        );
        view
    }

    /// The writable view through `TensorViewMut::with_layout`.
    pub fn view_mut<'a>(&self, data: &'a mut [f32]) -> TensorViewMut<'a> {
        TensorViewMut::with_layout(data, self.shape(), self.pixel_stride(), self.offset())
            .unwrap_or_else(|e| panic!("output view {self:?}: {e}"))
    }

    /// A writable view of the whole wider tensor; take the view with
    /// `.channels(spec.start, spec.c)`.
    pub fn wide_view_mut<'a>(&self, data: &'a mut [f32]) -> TensorViewMut<'a> {
        TensorViewMut::with_layout(data, self.wide_shape(), self.pixel_stride(), self.lead)
            .unwrap_or_else(|e| panic!("wide output view {self:?}: {e}"))
    }
}

/// A 1x1 window, stride 1, no padding.
pub fn window_1x1() -> Window {
    Window::square(1, 1, 0)
}

/// The oracle: `reference::conv2d` into a copy of `out_init` (only the view's elements change).
#[allow(clippy::too_many_arguments)]
pub fn reference_conv(
    input: &[f32],
    in_spec: &Spec,
    weights: &[f32],
    bias: Option<&[f32]>,
    window: &Window,
    clamp: Clamp,
    out_init: &[f32],
    out_spec: &Spec,
) -> Vec<f32> {
    let mut out = out_init.to_vec();
    reference::conv2d(
        input,
        &in_spec.layout(),
        weights,
        bias,
        window,
        clamp,
        &mut out,
        &out_spec.layout(),
    );
    out
}

/// Per output element, the allowed difference from the reference for a reduction of
/// `reduction` terms (count the bias as one): `reduction * 2^-23 * sum|a*b| + 1e-6`, where
/// `sum|a*b|` (bias included) is the reference run on absolute values without a clamp.
/// Both the reference and the kernel are within `reduction * 2^-24 * sum|a*b|` of the exact
/// sum, whatever the order or FMA use; a clamp never increases a difference.
pub fn error_bounds(
    input: &[f32],
    in_spec: &Spec,
    weights: &[f32],
    bias: Option<&[f32]>,
    window: &Window,
    out_spec: &Spec,
    reduction: usize,
) -> Vec<f32> {
    let abs = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<f32>>();
    let abs_bias = bias.map(abs);
    let magnitudes = reference_conv(
        &abs(input),
        in_spec,
        &abs(weights),
        abs_bias.as_deref(),
        window,
        Clamp::NONE,
        &vec![0.0; out_spec.buffer_len()],
        out_spec,
    );
    let ulp = f32::EPSILON; // 2^-23
    magnitudes
        .iter()
        .map(|&s| reduction as f32 * ulp * s + 1e-6)
        .collect()
}

/// Asserts that `got` equals `want` bit for bit everywhere (view and outside it).
pub fn assert_bits_eq(got: &[f32], want: &[f32], out_spec: &Spec, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: buffer length");
    let mask = out_spec.mask();
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.to_bits() != w.to_bits() {
            if mask[idx] {
                let (p, ch) = out_spec.locate(idx);
                panic!("{what}: pixel {p} channel {ch} (index {idx}): got {g} ({:#x}), want {w} ({:#x})", g.to_bits(), w.to_bits());
            } else {
                panic!("{what}: element {idx} outside the output view changed: {g} ({:#x}), was {w} ({:#x})", g.to_bits(), w.to_bits());
            }
        }
    }
}

/// Asserts that `got` is within `bounds` of `want` inside the output view and bit-identical to
/// `want` (the untouched initial contents) outside it.
pub fn assert_within_bounds(
    got: &[f32],
    want: &[f32],
    bounds: &[f32],
    out_spec: &Spec,
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}: buffer length");
    let mask = out_spec.mask();
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        if mask[idx] {
            let (p, ch) = out_spec.locate(idx);
            assert!(
                (g - w).abs() <= bounds[idx],
                "{what}: pixel {p} channel {ch}: got {g}, want {w}, |diff| {} > bound {}",
                (g - w).abs(),
                bounds[idx]
            );
        } else {
            assert_eq!(
                g.to_bits(),
                w.to_bits(),
                "{what}: element {idx} outside the output view changed: {g}, was {w}"
            );
        }
    }
}

/// The kernel-side clamp of an epilogue (mirrors `Epilogue::clamp`, which is private).
pub fn clamp_of(epilogue: Epilogue) -> Clamp {
    match epilogue {
        Epilogue::None => Clamp::NONE,
        Epilogue::Relu => Clamp {
            min: 0.0,
            max: f32::INFINITY,
        },
        Epilogue::Relu6 => Clamp { min: 0.0, max: 6.0 },
        Epilogue::Clamp { min, max } => Clamp { min, max },
    }
}

/// A rayon pool of `threads` threads, for running an operator under `Parallelism::Pool`.
pub fn thread_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}
