//! Helpers shared by the fuzz targets: thread pools built once, the ISA and parallelism a case
//! runs on, deterministic data from a seed, views laid out inside wider buffers (channel slices,
//! margins), and the comparisons against the reference.
//!
//! Data modes (as in `tests/common`):
//! * **exact**: small integers, about half of the activations zero. Every partial sum is an
//!   integer far below 2^24, so any summation order (and FMA) gives the same bits: every ISA
//!   must match the reference bit for bit.
//! * **special**: exact data with a few NaN, +inf and -inf activations. Whether a sum is NaN or
//!   infinite does not depend on the order either, so the result must still match bit for bit,
//!   except that any NaN matches any NaN (the payload is not specified).
//! * **random**: floats in `[-1, 1)`; within the rounding bound of the reduction.

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use incept::reference::Layout;
use incept::{
    ConvAlgorithm, Epilogue, Isa, Nhwc, OpOptions, Parallelism, TensorView, TensorViewMut,
};
use rayon::{ThreadPool, ThreadPoolBuilder};

/// Fills the input buffer outside the view: a kernel that reads outside its view gets a NaN.
pub const INPUT_PAD: f32 = f32::from_bits(0x7fc0_0bad);

/// Fills the output buffer before a run; elements outside the output view must keep these bits.
pub const OUTPUT_SENTINEL: f32 = f32::from_bits(0x7fc0_beef);

/// Rayon pools of 2 and 3 threads, built once per process (building a pool per input would
/// dominate the run time and leak threads).
pub fn pool(threads: usize) -> &'static ThreadPool {
    static POOLS: OnceLock<[ThreadPool; 2]> = OnceLock::new();
    let pools = POOLS.get_or_init(|| {
        [2, 3].map(|t| {
            ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .expect("thread pool")
        })
    });
    &pools[threads.clamp(2, 3) - 2]
}

/// Where a case runs.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Par {
    /// The calling thread.
    Sequential,
    /// Rayon's global pool.
    Global,
    /// A pool of 2 threads.
    Pool2,
    /// A pool of 3 threads.
    Pool3,
}

impl Par {
    /// The library's parallelism.
    pub fn get(self) -> Parallelism<'static> {
        match self {
            Par::Sequential => Parallelism::Sequential,
            Par::Global => Parallelism::Global,
            Par::Pool2 => Parallelism::Pool(pool(2)),
            Par::Pool3 => Parallelism::Pool(pool(3)),
        }
    }
}

/// One of the ISAs this CPU supports (`incept::isa::available()`), chosen by `sel`.
pub fn pick_isa(sel: u8) -> Isa {
    let isas = incept::isa::available();
    isas[sel as usize % isas.len()]
}

/// Options capped at `isa`, with the 3x3/5x5 convolutions forced to Winograd if `winograd`
/// (else the default algorithm choice).
pub fn options(isa: Isa, winograd: bool) -> OpOptions {
    OpOptions {
        algorithm: if winograd {
            ConvAlgorithm::Winograd
        } else {
            ConvAlgorithm::Auto
        },
        ..OpOptions::with_max_isa(Some(isa))
    }
}

/// SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
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

/// Which data a case uses (see the crate docs).
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Small integers: bit-exact on every ISA.
    Exact,
    /// Small integers and a few NaN / infinities: bit-exact, any NaN matches any NaN.
    Special,
    /// Floats in `[-1, 1)`: within the rounding bound.
    Random,
}

/// Activations: exact `-2..=2` (about half zeros, some `-0.0`); special adds NaN and infinities
/// at about one element in `1 + special_rate`; random `[-1, 1)`.
pub fn activations(mode: Mode, len: usize, seed: u64, special_rate: u8) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0xA11);
    let rate = 1 + u64::from(special_rate);
    (0..len)
        .map(|_| match mode {
            Mode::Random => rng.unit(),
            Mode::Special if rng.below(rate) == 0 => {
                [f32::NAN, f32::INFINITY, f32::NEG_INFINITY][rng.below(3) as usize]
            }
            Mode::Exact | Mode::Special => match rng.below(8) {
                0..=2 => 0.0,
                3 => -0.0,
                _ => rng.int(-2, 2),
            },
        })
        .collect()
}

/// Weights: exact `-2..=2`; random `[-1, 1)`.
pub fn weights(mode: Mode, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0x3E16);
    (0..len)
        .map(|_| match mode {
            Mode::Random => rng.unit(),
            Mode::Exact | Mode::Special => rng.int(-2, 2),
        })
        .collect()
}

/// Biases: exact integers `-8..=8`; random `[-1, 1)`.
pub fn biases(mode: Mode, len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0xB1A5);
    (0..len)
        .map(|_| match mode {
            Mode::Random => rng.unit(),
            Mode::Exact | Mode::Special => rng.int(-8, 8),
        })
        .collect()
}

/// An epilogue as the fuzzer picks it; clamps may be invalid (min > max), which the
/// constructors must refuse.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum EpilogueSel {
    /// No epilogue.
    None,
    /// ReLU.
    Relu,
    /// ReLU6.
    Relu6,
    /// A clamp between two small integers (possibly min > max).
    Clamp(i8, i8),
    /// A clamp with an infinite side.
    HalfOpen {
        /// Which side is infinite.
        low_infinite: bool,
        /// The finite side.
        bound: i8,
    },
}

impl EpilogueSel {
    /// The epilogue.
    pub fn get(self) -> Epilogue {
        let small = |v: i8| f32::from(v % 17);
        match self {
            EpilogueSel::None => Epilogue::None,
            EpilogueSel::Relu => Epilogue::Relu,
            EpilogueSel::Relu6 => Epilogue::Relu6,
            EpilogueSel::Clamp(a, b) => Epilogue::Clamp {
                min: small(a),
                max: small(b),
            },
            EpilogueSel::HalfOpen {
                low_infinite: true,
                bound,
            } => Epilogue::Clamp {
                min: f32::NEG_INFINITY,
                max: small(bound),
            },
            EpilogueSel::HalfOpen { bound, .. } => Epilogue::Clamp {
                min: small(bound),
                max: f32::INFINITY,
            },
        }
    }
}

/// Whether `epilogue` is valid (the constructors must accept exactly these).
pub fn epilogue_is_valid(epilogue: Epilogue) -> bool {
    match epilogue {
        Epilogue::Clamp { min, max } => !min.is_nan() && !max.is_nan() && min <= max,
        _ => true,
    }
}

/// The oracle's clamp for a valid epilogue.
pub fn clamp_of(epilogue: Epilogue) -> incept::reference::Clamp {
    use incept::reference::Clamp;
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

/// How a view sits in its buffer, as the fuzzer picks it.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct SliceSel {
    /// Foreign channels before the view's (mod 4).
    pub start: u8,
    /// Foreign channels after the view's (mod 4).
    pub extra: u8,
    /// Elements before pixel 0 (mod 5).
    pub lead: u8,
    /// Elements after the last pixel (mod 5).
    pub tail: u8,
    /// Build the view as `channels()` of a view of the wider tensor (else `with_layout`).
    pub via_channels: bool,
}

/// A view's place in its buffer: `lead` elements, then per pixel `start` foreign channels, the
/// view's `c` channels and `extra` foreign ones, then `tail` elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The view's shape.
    pub shape: Nhwc,
    /// Channels before the view's.
    pub start: usize,
    /// Channels after the view's.
    pub extra: usize,
    /// Elements before pixel 0.
    pub lead: usize,
    /// Elements after the last pixel.
    pub tail: usize,
    /// Whether views go through `channels()`.
    pub via_channels: bool,
}

impl Spec {
    /// A view of `shape` placed as `sel` says.
    pub fn new(shape: Nhwc, sel: SliceSel) -> Self {
        Spec {
            shape,
            start: usize::from(sel.start % 4),
            extra: usize::from(sel.extra % 4),
            lead: usize::from(sel.lead % 5),
            tail: usize::from(sel.tail % 5),
            via_channels: sel.via_channels,
        }
    }

    /// Elements between neighbouring pixels.
    pub fn pixel_stride(&self) -> usize {
        self.start + self.shape.c + self.extra
    }

    /// Index of pixel 0, channel 0.
    pub fn offset(&self) -> usize {
        self.lead + self.start
    }

    /// Pixels of the view.
    pub fn pixels(&self) -> usize {
        self.shape.n * self.shape.h * self.shape.w
    }

    /// Length of the whole buffer.
    pub fn buffer_len(&self) -> usize {
        self.lead + self.pixels() * self.pixel_stride() + self.tail
    }

    /// Buffer index of view element (pixel in NHW order, channel).
    pub fn index(&self, pixel: usize, ch: usize) -> usize {
        self.offset() + pixel * self.pixel_stride() + ch
    }

    /// The oracle's layout.
    pub fn layout(&self) -> Layout {
        Layout {
            n: self.shape.n,
            h: self.shape.h,
            w: self.shape.w,
            c: self.shape.c,
            pixel_stride: self.pixel_stride(),
            offset: self.offset(),
        }
    }

    /// Per buffer element: inside the view?
    pub fn mask(&self) -> Vec<bool> {
        let mut mask = vec![false; self.buffer_len()];
        for p in 0..self.pixels() {
            for ch in 0..self.shape.c {
                mask[self.index(p, ch)] = true;
            }
        }
        mask
    }

    /// A buffer with `values` (dense `pixels x c`) in the view and `pad` elsewhere.
    pub fn buffer_with(&self, values: &[f32], pad: f32) -> Vec<f32> {
        assert_eq!(values.len(), self.pixels() * self.shape.c);
        let mut buf = vec![pad; self.buffer_len()];
        for p in 0..self.pixels() {
            for ch in 0..self.shape.c {
                buf[self.index(p, ch)] = values[p * self.shape.c + ch];
            }
        }
        buf
    }

    fn wide_shape(&self) -> Nhwc {
        Nhwc {
            c: self.pixel_stride(),
            ..self.shape
        }
    }

    /// The read-only view (a valid layout: panics otherwise, which would be a library bug).
    pub fn view<'a>(&self, data: &'a [f32]) -> TensorView<'a> {
        let view = if self.via_channels {
            TensorView::with_layout(data, self.wide_shape(), self.pixel_stride(), self.lead)
                .and_then(|v| v.channels(self.start, self.shape.c))
        } else {
            TensorView::with_layout(data, self.shape, self.pixel_stride(), self.offset())
        };
        let view = view.unwrap_or_else(|e| panic!("valid input view {self:?} refused: {e}"));
        assert_eq!(
            (view.shape(), view.pixel_stride(), view.offset()),
            (self.shape, self.pixel_stride(), self.offset())
        );
        view
    }

    /// Runs `f` on the writable view (through `channels()` when `via_channels`).
    pub fn with_view_mut<R>(
        &self,
        data: &mut [f32],
        f: impl FnOnce(&mut TensorViewMut<'_>) -> R,
    ) -> R {
        if self.via_channels {
            let mut wide =
                TensorViewMut::with_layout(data, self.wide_shape(), self.pixel_stride(), self.lead)
                    .unwrap_or_else(|e| panic!("valid wide output view {self:?} refused: {e}"));
            let mut view = wide
                .channels(self.start, self.shape.c)
                .unwrap_or_else(|e| panic!("valid output channels {self:?} refused: {e}"));
            f(&mut view)
        } else {
            let mut view =
                TensorViewMut::with_layout(data, self.shape, self.pixel_stride(), self.offset())
                    .unwrap_or_else(|e| panic!("valid output view {self:?} refused: {e}"));
            f(&mut view)
        }
    }
}

/// Whether two results agree: same bits, or both NaN (any payload).
pub fn same(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

/// Asserts `got` matches `want` inside the view (`agree(got, want)`) and equals it bit for bit
/// outside (`want` holds the untouched initial contents there).
pub fn assert_matches(
    got: &[f32],
    want: &[f32],
    spec: &Spec,
    what: &dyn std::fmt::Debug,
    agree: impl Fn(usize, f32, f32) -> bool,
) {
    assert_eq!(got.len(), want.len());
    let mask = spec.mask();
    for (idx, (&g, &w)) in got.iter().zip(want).enumerate() {
        if mask[idx] {
            if !agree(idx, g, w) {
                let rel = idx - spec.offset();
                panic!(
                    "pixel {} channel {} (index {idx}): got {g} ({:#x}), want {w} ({:#x})\n{what:?}",
                    rel / spec.pixel_stride(),
                    rel % spec.pixel_stride(),
                    g.to_bits(),
                    w.to_bits()
                );
            }
        } else if g.to_bits() != w.to_bits() {
            panic!(
                "element {idx} outside the output view changed: {g} ({:#x}), was {w} ({:#x})\n{what:?}",
                g.to_bits(),
                w.to_bits()
            );
        }
    }
}
