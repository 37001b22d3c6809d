//! `incept bench`: warm up, time many runs, report the median.

use std::time::{Duration, Instant};

use incept::cost::conv_macs;
use incept::{
    Conv1x1, Conv2d, Conv2dDesc, Epilogue, Isa, Nhwc, OpOptions, Padding, Parallelism, TensorView,
    TensorViewMut,
};

/// A convolution to time: `h x w x cin -> cout`, `k x k`, stride, symmetric padding.
#[derive(Clone, Copy, Debug)]
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
    /// The named workloads, with the shapes of `../shared/peers`.
    fn named(name: &str) -> Option<ConvShape> {
        let same = |cin, cout, k| ConvShape {
            h: 28,
            w: 28,
            cin,
            cout,
            k,
            stride: 1,
            pad: (k - 1) / 2,
        };
        match name {
            "conv1x1" => Some(same(192, 64, 1)),
            "conv3x3" => Some(same(192, 128, 3)),
            "conv5x5" => Some(same(192, 32, 5)),
            _ => None,
        }
    }

    /// `H,W,CIN,COUT,K[,STRIDE[,PAD]]`; the padding defaults to "same" for odd K.
    fn parse(text: &str) -> Result<ConvShape, String> {
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
}

/// Parsed `bench` flags.
pub struct Options {
    workload: String,
    conv: ConvShape,
    batch: usize,
    threads: usize,
    isa: Option<Isa>,
    seconds: f64,
    json: bool,
}

fn value<'a>(flag: &str, it: &mut impl Iterator<Item = &'a String>) -> Result<&'a String, String> {
    it.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn positive(flag: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{flag} must be a positive integer, got '{text}'")),
    }
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut opts = Options {
            workload: "conv1x1".into(),
            conv: ConvShape::named("conv1x1").expect("built-in workload"),
            batch: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isa: None,
            seconds: 1.0,
            json: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--workload" => {
                    let name = value(flag, &mut it)?;
                    opts.conv = ConvShape::named(name).ok_or_else(|| {
                        format!("bench: unknown workload '{name}' (available: conv1x1, conv3x3, conv5x5)")
                    })?;
                    opts.workload = name.clone();
                }
                "--conv" => {
                    let text = value(flag, &mut it)?;
                    opts.conv = ConvShape::parse(text)?;
                    opts.workload = format!("conv:{text}");
                }
                "--batch" => opts.batch = positive(flag, value(flag, &mut it)?)?,
                "--threads" => opts.threads = positive(flag, value(flag, &mut it)?)?,
                "--isa" => {
                    let v = value(flag, &mut it)?;
                    opts.isa = if v == "auto" {
                        None
                    } else {
                        Some(v.parse().map_err(|e: incept::Error| e.to_string())?)
                    };
                }
                "--seconds" => {
                    let v = value(flag, &mut it)?;
                    opts.seconds = v
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .ok_or_else(|| format!("--seconds must be a positive number, got '{v}'"))?;
                }
                "--json" => opts.json = true,
                other => return Err(format!("bench: unknown flag '{other}'")),
            }
        }
        Ok(opts)
    }
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

/// Timing summary of repeated runs.
pub struct Timing {
    pub median: Duration,
    pub min: Duration,
    pub runs: usize,
}

/// Warms up (3 runs and 50 ms), then times single runs for `seconds` and at least 15 runs.
pub fn time(seconds: f64, mut run: impl FnMut()) -> Timing {
    let warm = Instant::now();
    let mut n = 0;
    while n < 3 || warm.elapsed() < Duration::from_millis(50) {
        run();
        n += 1;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 15 || start.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        run();
        samples.push(t.elapsed());
    }
    samples.sort();
    Timing {
        median: samples[samples.len() / 2],
        min: samples[0],
        runs: samples.len(),
    }
}

/// A thread pool of `threads` threads, or none for 1 (run on the calling thread).
pub fn pool(threads: usize) -> Result<Option<rayon::ThreadPool>, String> {
    if threads == 1 {
        return Ok(None);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The operator under test.
enum Op {
    Pointwise(Conv1x1),
    Direct(Conv2d),
}

pub fn run(opts: &Options) -> Result<(), String> {
    let err = |e: incept::Error| e.to_string();
    let ConvShape {
        h,
        w,
        cin,
        cout,
        k,
        stride,
        pad,
    } = opts.conv;
    let in_shape = Nhwc::new(opts.batch, h, w, cin);
    let input = uniform(in_shape.element_count().map_err(err)?, 1);
    let weights = uniform(cout * k * k * cin, 2);
    let bias = uniform(cout, 3);
    let options = OpOptions { max_isa: opts.isa };
    let (op, out_shape) = if k == 1 && stride == 1 && pad == 0 {
        let conv = Conv1x1::with_options(cin, cout, &weights, Some(&bias), Epilogue::Relu, options)
            .map_err(err)?;
        (
            Op::Pointwise(conv),
            Nhwc {
                c: cout,
                ..in_shape
            },
        )
    } else {
        let desc = Conv2dDesc {
            in_channels: cin,
            out_channels: cout,
            kernel: k,
            stride,
            padding: Padding::uniform(pad),
            epilogue: Epilogue::Relu,
        };
        let conv = Conv2d::with_options(&desc, &weights, Some(&bias), options).map_err(err)?;
        let out_shape = conv.output_shape(in_shape).map_err(err)?;
        (Op::Direct(conv), out_shape)
    };
    let (isa, kernel) = match &op {
        Op::Pointwise(c) => (c.isa(), c.kernel_name()),
        Op::Direct(c) => (c.isa(), c.kernel_name()),
    };
    let mut out = vec![0.0; out_shape.element_count().map_err(err)?];
    let pool = pool(opts.threads)?;
    let par = pool
        .as_ref()
        .map_or(Parallelism::Sequential, Parallelism::Pool);
    let view = TensorView::new(&input, in_shape).map_err(err)?;
    let mut result = Ok(());
    let timing = time(opts.seconds, || {
        let mut out_view = TensorViewMut::new(&mut out, out_shape).expect("valid shape");
        result = match &op {
            Op::Pointwise(c) => c.run(&view, &mut out_view, par),
            Op::Direct(c) => c.run(&view, &mut out_view, par),
        };
    });
    result.map_err(err)?;
    // Every tap counted, padding included, as ../shared/peers counts.
    let flops = 2.0 * conv_macs(out_shape.pixels(), cout, k, k, cin) as f64;
    let median_ms = timing.median.as_secs_f64() * 1e3;
    let min_ms = timing.min.as_secs_f64() * 1e3;
    let gflops = flops / timing.median.as_secs_f64() / 1e9;
    if opts.json {
        println!(
            "{{\"workload\":\"{}\",\"batch\":{},\"threads\":{},\"isa\":\"{isa}\",\"kernel\":\"{kernel}\",\"median_ms\":{median_ms:.4},\"min_ms\":{min_ms:.4},\"runs\":{},\"gflops\":{gflops:.1}}}",
            opts.workload, opts.batch, opts.threads, timing.runs
        );
    } else {
        println!(
            "{:<12} {:>5} {:>7} {:<7} {:>10} {:>10} {:>8}",
            "workload", "batch", "threads", "isa", "median ms", "min ms", "GFLOP/s"
        );
        println!(
            "{:<12} {:>5} {:>7} {:<7} {median_ms:>10.4} {min_ms:>10.4} {gflops:>8.1}",
            opts.workload,
            opts.batch,
            opts.threads,
            isa.name()
        );
    }
    Ok(())
}
