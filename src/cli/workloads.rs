//! The benchmark workloads: GoogLeNet inception 3a's layers on 28x28x192 (the shapes of
//! `../shared/peers`), each built on seeded data and ready to run many times.

use aligned_vec::{AVec, ConstAlign};
use incept::cost::conv_macs;
use incept::{
    Bottleneck, BottleneckDesc, BottleneckWeights, Conv1x1, Conv2d, Conv2dDesc, ConvParams,
    Epilogue, Inception, InceptionConfig, InceptionWeights, Isa, MaxPool2d, MaxPool2dDesc, Nhwc,
    OpOptions, Padding, Parallelism, PoolProjection, TensorView, TensorViewMut,
};

/// Every named workload, in the order `--workload all` runs them.
pub const NAMES: [&str; 10] = [
    "conv1x1",
    "conv3x3",
    "conv5x5",
    "bottleneck",
    "bottleneck-unfused",
    "maxpool",
    "pool-proj",
    "pool-proj-unfused",
    "inception",
    "inception-unfused",
];

/// The nine GoogLeNet modules as workloads (not in `all`), each on its own input size
/// ([`InceptionConfig::GOOGLENET`]); `inception` is `inception-3a`.
pub const MODULES: [&str; 9] = [
    "inception-3a",
    "inception-3b",
    "inception-4a",
    "inception-4b",
    "inception-4c",
    "inception-4d",
    "inception-4e",
    "inception-5a",
    "inception-5b",
];

/// The GoogLeNet module named by a [`MODULES`] entry, and its input side.
fn googlenet_module(workload: &str) -> Option<(InceptionConfig, usize)> {
    let id = workload.strip_prefix("inception-")?;
    InceptionConfig::GOOGLENET
        .iter()
        .find(|(name, ..)| *name == id)
        .map(|&(_, cfg, side)| (cfg, side))
}

/// A convolution `h x w x cin -> cout`, `k x k`, stride, symmetric padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub h: usize,
    pub w: usize,
    pub cin: usize,
    pub cout: usize,
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl ConvShape {
    /// `H,W,CIN,COUT,K[,STRIDE[,PAD]]`; the padding defaults to "same" for odd K.
    pub fn parse(text: &str) -> Result<ConvShape, String> {
        let bad = || {
            format!(
                "--conv expects H,W,CIN,COUT,K[,STRIDE[,PAD]] with positive integers, got '{text}'"
            )
        };
        let v: Vec<usize> = text
            .split(',')
            .map(|f| f.trim().parse::<usize>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if !(5..=7).contains(&v.len()) || v[..5].contains(&0) || v.get(5) == Some(&0) {
            return Err(bad());
        }
        Ok(ConvShape {
            h: v[0],
            w: v[1],
            cin: v[2],
            cout: v[3],
            k: v[4],
            stride: v.get(5).copied().unwrap_or(1),
            pad: v.get(6).copied().unwrap_or((v[4] - 1) / 2),
        })
    }

    fn same(cin: usize, cout: usize, k: usize) -> Self {
        ConvShape {
            h: 28,
            w: 28,
            cin,
            cout,
            k,
            stride: 1,
            pad: (k - 1) / 2,
        }
    }
}

/// What to build: a named workload or a custom convolution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    Named(&'static str),
    Conv(ConvShape),
}

impl Spec {
    pub fn parse_name(name: &str) -> Result<Spec, String> {
        NAMES
            .iter()
            .chain(&MODULES)
            .find(|&&n| n == name)
            .map(|&n| Spec::Named(n))
            .ok_or_else(|| {
                format!(
                    "unknown workload '{name}' (available: {}, all, inception-3a ... inception-5b)",
                    NAMES.join(", ")
                )
            })
    }

    /// Whether `--algorithm` and `--accuracy` can change what this workload runs: it contains a
    /// KxK convolution (a custom 1x1 runs as `Conv1x1`, which has one algorithm).
    pub fn has_conv_algorithm(&self) -> bool {
        match self {
            Spec::Named(n) => !matches!(
                *n,
                "conv1x1" | "maxpool" | "pool-proj" | "pool-proj-unfused"
            ),
            Spec::Conv(c) => !(c.k == 1 && c.stride == 1 && c.pad == 0),
        }
    }

    /// Whether `--pool-schedule` can change what this workload runs: it has a fused
    /// pool -> projection (the pool + projection and the fused module).
    pub fn has_fused_pool(&self) -> bool {
        matches!(self, Spec::Named(n) if *n == "pool-proj" || *n == "inception" || MODULES.contains(n))
    }

    pub fn label(&self) -> String {
        match self {
            Spec::Named(n) => n.to_string(),
            Spec::Conv(c) => format!(
                "conv:{},{},{},{},{},{},{}",
                c.h, c.w, c.cin, c.cout, c.k, c.stride, c.pad
            ),
        }
    }
}

/// An activation buffer, 64-byte aligned as oneDNN and XNNPACK allocate theirs: with an
/// unaligned buffer every vector load and store of a channel-vectorised kernel spans two cache
/// lines (measured 1.4-1.6x the time of the 28x28x192 max-pool on 16-byte-aligned buffers).
pub type Activations = AVec<f32, ConstAlign<64>>;

/// `len` zeros, 64-byte aligned.
pub fn zeros(len: usize) -> Activations {
    AVec::from_iter(64, std::iter::repeat_n(0.0, len))
}

/// [`uniform`] values, 64-byte aligned.
pub fn uniform_activations(len: usize, seed: u64) -> Activations {
    AVec::from_iter(64, uniform(len, seed))
}

/// Deterministic values in [-1, 1).
pub fn uniform(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(12345);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f64 / (1u64 << 24) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// A workload ready to run: `run` computes it once.
pub struct Prepared {
    pub isa: Isa,
    /// 2 x multiply-adds, every tap counted (padding included), as `../shared/peers` counts.
    pub flops: f64,
    /// Bytes read and written (input + output), for memory-bound workloads.
    pub bytes: f64,
    pub run: Box<dyn FnMut(Parallelism<'_>) -> incept::Result<()> + Send>,
}

type R<T> = Result<T, String>;

fn err(e: incept::Error) -> String {
    e.to_string()
}

fn conv_weights(cout: usize, k: usize, cin: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    // Scaled so activations stay O(1) through several layers.
    let scale = 1.0 / ((k * k * cin) as f32).sqrt();
    (
        uniform(cout * k * k * cin, seed)
            .iter()
            .map(|w| w * scale)
            .collect(),
        uniform(cout, seed + 1),
    )
}

/// A convolution (1x1 through `Conv1x1`, else `Conv2d`) with bias + ReLU.
fn conv(shape: ConvShape, batch: usize, options: OpOptions) -> R<Prepared> {
    let ConvShape {
        h,
        w,
        cin,
        cout,
        k,
        stride,
        pad,
    } = shape;
    let in_shape = Nhwc::new(batch, h, w, cin);
    let input = uniform_activations(in_shape.element_count().map_err(err)?, 1);
    let (wts, bias) = conv_weights(cout, k, cin, 2);
    if k == 1 && stride == 1 && pad == 0 {
        let op = Conv1x1::with_options(cin, cout, &wts, Some(&bias), Epilogue::Relu, options)
            .map_err(err)?;
        let out_shape = Nhwc {
            c: cout,
            ..in_shape
        };
        let mut out = zeros(out_shape.element_count().map_err(err)?);
        let flops = 2.0 * conv_macs(out_shape.pixels(), cout, 1, 1, cin) as f64;
        return Ok(Prepared {
            isa: op.isa(),
            flops,
            bytes: 0.0,
            run: Box::new(move |par| {
                op.run(
                    &TensorView::new(&input, in_shape)?,
                    &mut TensorViewMut::new(&mut out, out_shape)?,
                    par,
                )
            }),
        });
    }
    let desc = Conv2dDesc {
        in_channels: cin,
        out_channels: cout,
        kernel: [k; 2],
        stride: [stride; 2],
        padding: Padding::uniform(pad),
        epilogue: Epilogue::Relu,
    };
    let op = Conv2d::with_options(&desc, &wts, Some(&bias), options).map_err(err)?;
    let out_shape = op.output_shape(in_shape).map_err(err)?;
    let mut out = zeros(out_shape.element_count().map_err(err)?);
    let flops = 2.0 * conv_macs(out_shape.pixels(), cout, k, k, cin) as f64;
    Ok(Prepared {
        isa: op.isa(),
        flops,
        bytes: 0.0,
        run: Box::new(move |par| {
            op.run(
                &TensorView::new(&input, in_shape)?,
                &mut TensorViewMut::new(&mut out, out_shape)?,
                par,
            )
        }),
    })
}

/// Seeded weights for a whole module.
struct ModuleWeights {
    params: Vec<(Vec<f32>, Vec<f32>)>,
}

impl ModuleWeights {
    fn new(cfg: &InceptionConfig) -> Self {
        let cin = cfg.in_channels;
        let r3 = cfg.c3x3_reduce.unwrap_or(cin);
        let r5 = cfg.c5x5_reduce.unwrap_or(cin);
        let params = vec![
            conv_weights(cfg.c1x1, 1, cin, 10),
            conv_weights(cfg.c3x3_reduce.unwrap_or(0), 1, cin, 20),
            conv_weights(cfg.c3x3, 3, r3, 30),
            conv_weights(cfg.c5x5_reduce.unwrap_or(0), 1, cin, 40),
            conv_weights(cfg.c5x5, 5, r5, 50),
            conv_weights(cfg.pool_proj.unwrap_or(0), 1, cin, 60),
        ];
        ModuleWeights { params }
    }

    fn get(&self, i: usize) -> ConvParams<'_> {
        ConvParams {
            weights: &self.params[i].0,
            bias: Some(&self.params[i].1),
        }
    }

    fn borrow(&self, cfg: &InceptionConfig) -> InceptionWeights<'_> {
        InceptionWeights {
            conv1x1: self.get(0),
            reduce3x3: cfg.c3x3_reduce.map(|_| self.get(1)),
            conv3x3: self.get(2),
            reduce5x5: cfg.c5x5_reduce.map(|_| self.get(3)),
            conv5x5: self.get(4),
            pool_proj: cfg.pool_proj.map(|_| self.get(5)),
        }
    }
}

/// GoogLeNet inception 3a.
pub const MODULE_3A: InceptionConfig = InceptionConfig::googlenet(192, 64, 96, 128, 16, 32, 32);

/// The whole module, fused, on `side x side` inputs.
pub fn inception(
    cfg: &InceptionConfig,
    side: usize,
    batch: usize,
    options: OpOptions,
) -> R<Prepared> {
    let in_shape = Nhwc::new(batch, side, side, cfg.in_channels);
    let input = uniform_activations(in_shape.element_count().map_err(err)?, 1);
    let weights = ModuleWeights::new(cfg);
    let op = Inception::with_options(cfg, &weights.borrow(cfg), options).map_err(err)?;
    let out_shape = op.output_shape(in_shape);
    let mut out = zeros(out_shape.element_count().map_err(err)?);
    Ok(Prepared {
        isa: op.isa(),
        flops: 2.0 * op.macs(in_shape) as f64,
        bytes: 0.0,
        run: Box::new(move |par| {
            op.run(
                &TensorView::new(&input, in_shape)?,
                &mut TensorViewMut::new(&mut out, out_shape)?,
                par,
            )
        }),
    })
}

/// The module as separate layers with materialised intermediates (each branch still writes its
/// slice of the output): what running it layer by layer costs.
fn inception_unfused(cfg: &InceptionConfig, batch: usize, options: OpOptions) -> R<Prepared> {
    let (h, w, cin) = (28, 28, cfg.in_channels);
    let in_shape = Nhwc::new(batch, h, w, cin);
    let input = uniform_activations(in_shape.element_count().map_err(err)?, 1);
    let mw = ModuleWeights::new(cfg);
    let (r3, r5, pp) = (
        cfg.c3x3_reduce.unwrap_or(0),
        cfg.c5x5_reduce.unwrap_or(0),
        cfg.pool_proj.unwrap_or(0),
    );
    let pw = |i| mw.get(i);
    let pointwise = |cout, p: ConvParams<'_>| {
        Conv1x1::with_options(cin, cout, p.weights, p.bias, Epilogue::Relu, options)
    };
    let conv1 = pointwise(cfg.c1x1, pw(0)).map_err(err)?;
    let red3 = pointwise(r3, pw(1)).map_err(err)?;
    let red5 = pointwise(r5, pw(3)).map_err(err)?;
    let proj = pointwise(pp, pw(5)).map_err(err)?;
    let conv3 = Conv2d::with_options(
        &Conv2dDesc::same(r3, cfg.c3x3, 3, Epilogue::Relu),
        pw(2).weights,
        pw(2).bias,
        options,
    )
    .map_err(err)?;
    let conv5 = Conv2d::with_options(
        &Conv2dDesc::same(r5, cfg.c5x5, 5, Epilogue::Relu),
        pw(4).weights,
        pw(4).bias,
        options,
    )
    .map_err(err)?;
    let pool = MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options).map_err(err)?;
    let px = in_shape.pixels();
    let (mut m3, mut m5, mut mp) = (zeros(px * r3), zeros(px * r5), zeros(px * cin));
    let total = cfg.out_channels();
    let mut out = zeros(px * total);
    let isa = conv1.isa();
    let dense = move |c| Nhwc::new(batch, h, w, c);
    let flops = 2.0
        * Inception::with_options(cfg, &mw.borrow(cfg), options)
            .map_err(err)?
            .macs(in_shape) as f64;
    let (c1, c3, c5) = (cfg.c1x1, cfg.c3x3, cfg.c5x5);
    Ok(Prepared {
        isa,
        flops,
        bytes: 0.0,
        run: Box::new(move |par| {
            let x = TensorView::new(&input, in_shape)?;
            let mut y = TensorViewMut::new(&mut out, dense(total))?;
            conv1.run(&x, &mut y.channels(0, c1)?, par)?;
            red3.run(&x, &mut TensorViewMut::new(&mut m3, dense(r3))?, par)?;
            conv3.run(
                &TensorView::new(&m3, dense(r3))?,
                &mut y.channels(c1, c3)?,
                par,
            )?;
            red5.run(&x, &mut TensorViewMut::new(&mut m5, dense(r5))?, par)?;
            conv5.run(
                &TensorView::new(&m5, dense(r5))?,
                &mut y.channels(c1 + c3, c5)?,
                par,
            )?;
            pool.run(&x, &mut TensorViewMut::new(&mut mp, dense(cin))?, par)?;
            proj.run(
                &TensorView::new(&mp, dense(cin))?,
                &mut y.channels(total - pp, pp)?,
                par,
            )
        }),
    })
}

/// 1x1 192 -> 16 then 5x5 16 -> 32: fused, or as two layers with the intermediate in memory.
fn bottleneck(batch: usize, options: OpOptions, fused: bool) -> R<Prepared> {
    let (h, w, cin, r, cout) = (28, 28, 192, 16, 32);
    let in_shape = Nhwc::new(batch, h, w, cin);
    let out_shape = Nhwc::new(batch, h, w, cout);
    let input = uniform_activations(in_shape.element_count().map_err(err)?, 1);
    let (w1, b1) = conv_weights(r, 1, cin, 2);
    let (w2, b2) = conv_weights(cout, 5, r, 3);
    let flops = 2.0
        * (conv_macs(in_shape.pixels(), r, 1, 1, cin) + conv_macs(in_shape.pixels(), cout, 5, 5, r))
            as f64;
    let mut out = zeros(out_shape.element_count().map_err(err)?);
    if fused {
        let desc = BottleneckDesc::same_relu(cin, r, cout, 5);
        let wts = BottleneckWeights {
            reduce: &w1,
            reduce_bias: Some(&b1),
            conv: &w2,
            conv_bias: Some(&b2),
        };
        let op = Bottleneck::with_options(&desc, &wts, options).map_err(err)?;
        return Ok(Prepared {
            isa: op.isa(),
            flops,
            bytes: 0.0,
            run: Box::new(move |par| {
                op.run(
                    &TensorView::new(&input, in_shape)?,
                    &mut TensorViewMut::new(&mut out, out_shape)?,
                    par,
                )
            }),
        });
    }
    let reduce =
        Conv1x1::with_options(cin, r, &w1, Some(&b1), Epilogue::Relu, options).map_err(err)?;
    let conv = Conv2d::with_options(
        &Conv2dDesc::same(r, cout, 5, Epilogue::Relu),
        &w2,
        Some(&b2),
        options,
    )
    .map_err(err)?;
    let mid_shape = Nhwc { c: r, ..in_shape };
    let mut mid = zeros(mid_shape.element_count().map_err(err)?);
    Ok(Prepared {
        isa: conv.isa(),
        flops,
        bytes: 0.0,
        run: Box::new(move |par| {
            reduce.run(
                &TensorView::new(&input, in_shape)?,
                &mut TensorViewMut::new(&mut mid, mid_shape)?,
                par,
            )?;
            conv.run(
                &TensorView::new(&mid, mid_shape)?,
                &mut TensorViewMut::new(&mut out, out_shape)?,
                par,
            )
        }),
    })
}

/// 3x3 stride-1 max-pool of 28x28x192.
fn maxpool(batch: usize, options: OpOptions) -> R<Prepared> {
    let shape = Nhwc::new(batch, 28, 28, 192);
    let input = uniform_activations(shape.element_count().map_err(err)?, 1);
    let mut out = zeros(input.len());
    let op = MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options).map_err(err)?;
    Ok(Prepared {
        isa: op.isa(),
        flops: 0.0,
        bytes: 2.0 * 4.0 * input.len() as f64,
        run: Box::new(move |par| {
            op.run(
                &TensorView::new(&input, shape)?,
                &mut TensorViewMut::new(&mut out, shape)?,
                par,
            )
        }),
    })
}

/// Max-pool then 1x1 192 -> 32: fused, or with the pooled tensor in memory.
fn pool_proj(batch: usize, options: OpOptions, fused: bool) -> R<Prepared> {
    let (cin, cout) = (192, 32);
    let in_shape = Nhwc::new(batch, 28, 28, cin);
    let out_shape = Nhwc {
        c: cout,
        ..in_shape
    };
    let input = uniform_activations(in_shape.element_count().map_err(err)?, 1);
    let (w, b) = conv_weights(cout, 1, cin, 2);
    let flops = 2.0 * conv_macs(in_shape.pixels(), cout, 1, 1, cin) as f64;
    let mut out = zeros(out_shape.element_count().map_err(err)?);
    if fused {
        let op = PoolProjection::with_options(
            &MaxPool2dDesc::INCEPTION,
            cin,
            cout,
            ConvParams {
                weights: &w,
                bias: Some(&b),
            },
            Epilogue::Relu,
            options,
        )
        .map_err(err)?;
        return Ok(Prepared {
            isa: op.isa(),
            flops,
            bytes: 0.0,
            run: Box::new(move |par| {
                op.run(
                    &TensorView::new(&input, in_shape)?,
                    &mut TensorViewMut::new(&mut out, out_shape)?,
                    par,
                )
            }),
        });
    }
    let pool = MaxPool2d::with_options(&MaxPool2dDesc::INCEPTION, options).map_err(err)?;
    let proj =
        Conv1x1::with_options(cin, cout, &w, Some(&b), Epilogue::Relu, options).map_err(err)?;
    let mut pooled = zeros(input.len());
    Ok(Prepared {
        isa: proj.isa(),
        flops,
        bytes: 0.0,
        run: Box::new(move |par| {
            pool.run(
                &TensorView::new(&input, in_shape)?,
                &mut TensorViewMut::new(&mut pooled, in_shape)?,
                par,
            )?;
            proj.run(
                &TensorView::new(&pooled, in_shape)?,
                &mut TensorViewMut::new(&mut out, out_shape)?,
                par,
            )
        }),
    })
}

/// Builds a workload for `batch` images with `options` (ISA cap, algorithm).
pub fn prepare(spec: &Spec, batch: usize, options: OpOptions) -> R<Prepared> {
    match spec {
        Spec::Conv(shape) => conv(*shape, batch, options),
        Spec::Named(name) => match *name {
            "conv1x1" => conv(ConvShape::same(192, 64, 1), batch, options),
            "conv3x3" => conv(ConvShape::same(192, 128, 3), batch, options),
            "conv5x5" => conv(ConvShape::same(192, 32, 5), batch, options),
            "bottleneck" => bottleneck(batch, options, true),
            "bottleneck-unfused" => bottleneck(batch, options, false),
            "maxpool" => maxpool(batch, options),
            "pool-proj" => pool_proj(batch, options, true),
            "pool-proj-unfused" => pool_proj(batch, options, false),
            "inception" => inception(&MODULE_3A, 28, batch, options),
            "inception-unfused" => inception_unfused(&MODULE_3A, batch, options),
            other => match googlenet_module(other) {
                Some((cfg, side)) => inception(&cfg, side, batch, options),
                None => Err(format!("unknown workload '{other}'")),
            },
        },
    }
}
