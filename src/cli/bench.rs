//! `incept bench`: warm up, time many runs, report the median.

use std::time::{Duration, Instant};

use incept::{Conv1x1, Epilogue, Isa, Nhwc, OpOptions, Parallelism, TensorView, TensorViewMut};

/// Parsed `bench` flags.
pub struct Options {
    workload: String,
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
            batch: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            isa: None,
            seconds: 1.0,
            json: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--workload" => opts.workload = value(flag, &mut it)?.clone(),
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
        if opts.workload != "conv1x1" {
            return Err(format!(
                "bench: unknown workload '{}' (available: conv1x1)",
                opts.workload
            ));
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

pub fn run(opts: &Options) -> Result<(), String> {
    let err = |e: incept::Error| e.to_string();
    let (h, w, cin, cout) = (28, 28, 192, 64);
    let shape = Nhwc::new(opts.batch, h, w, cin);
    let input = uniform(shape.element_count().map_err(err)?, 1);
    let weights = uniform(cin * cout, 2);
    let bias = uniform(cout, 3);
    let conv = Conv1x1::with_options(
        cin,
        cout,
        &weights,
        Some(&bias),
        Epilogue::Relu,
        OpOptions { max_isa: opts.isa },
    )
    .map_err(err)?;
    let mut out = vec![0.0; opts.batch * h * w * cout];
    let pool = pool(opts.threads)?;
    let par = pool
        .as_ref()
        .map_or(Parallelism::Sequential, Parallelism::Pool);
    let view = TensorView::new(&input, shape).map_err(err)?;
    let mut result = Ok(());
    let timing = time(opts.seconds, || {
        let mut out_view =
            TensorViewMut::new(&mut out, Nhwc::new(opts.batch, h, w, cout)).expect("valid shape");
        result = conv.run(&view, &mut out_view, par);
    });
    result.map_err(err)?;
    let flops = 2.0 * conv.macs(shape.pixels()) as f64;
    let median_ms = timing.median.as_secs_f64() * 1e3;
    let min_ms = timing.min.as_secs_f64() * 1e3;
    let gflops = flops / timing.median.as_secs_f64() / 1e9;
    if opts.json {
        println!(
            "{{\"workload\":\"{}\",\"batch\":{},\"threads\":{},\"isa\":\"{}\",\"kernel\":\"{}\",\"median_ms\":{median_ms:.4},\"min_ms\":{min_ms:.4},\"runs\":{},\"gflops\":{gflops:.1}}}",
            opts.workload, opts.batch, opts.threads, conv.isa(), conv.kernel_name(), timing.runs
        );
    } else {
        println!(
            "{:<10} {:>5} {:>7} {:<7} {:>10} {:>10} {:>8}",
            "workload", "batch", "threads", "isa", "median ms", "min ms", "GFLOP/s"
        );
        println!(
            "{:<10} {:>5} {:>7} {:<7} {median_ms:>10.4} {min_ms:>10.4} {gflops:>8.1}",
            opts.workload,
            opts.batch,
            opts.threads,
            conv.isa().name()
        );
    }
    Ok(())
}
