//! `incept bench`: warm up, time many runs, report the median.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use incept::{Accuracy, ConvAlgorithm, Isa, OpOptions, Parallelism, PoolSchedule};

use super::peak;
use super::workloads::{prepare, ConvShape, Spec, NAMES};

/// Parsed `bench` flags.
pub struct Options {
    specs: Vec<Spec>,
    batch: usize,
    threads: usize,
    options: OpOptions,
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
            specs: vec![Spec::Named("conv1x1")],
            batch: 1,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            options: OpOptions::default(),
            seconds: 1.0,
            json: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--workload" => {
                    let name = value(flag, &mut it)?;
                    opts.specs = if name == "all" {
                        NAMES.iter().map(|n| Spec::Named(n)).collect()
                    } else {
                        vec![Spec::parse_name(name)?]
                    };
                }
                "--conv" => opts.specs = vec![Spec::Conv(ConvShape::parse(value(flag, &mut it)?)?)],
                "--batch" => opts.batch = positive(flag, value(flag, &mut it)?)?,
                "--threads" => opts.threads = positive(flag, value(flag, &mut it)?)?,
                "--isa" => {
                    let v = value(flag, &mut it)?;
                    opts.options.max_isa = if v == "auto" {
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
                "--algorithm" => {
                    opts.options.algorithm = super::parse_algorithm(value(flag, &mut it)?)?
                }
                "--accuracy" => {
                    opts.options.accuracy = super::parse_accuracy(value(flag, &mut it)?)?
                }
                "--pool-schedule" => {
                    opts.options.pool_schedule = super::parse_pool_schedule(value(flag, &mut it)?)?
                }
                "--json" => opts.json = true,
                other => return Err(format!("bench: unknown flag '{other}'")),
            }
        }
        Ok(opts)
    }
}

/// The workload-name suffix for non-default algorithm options: `+winograd`, `+direct`,
/// `+relaxed` (auto under the relaxed accuracy policy).
fn variant(options: OpOptions) -> String {
    match (options.algorithm, options.accuracy) {
        (ConvAlgorithm::Winograd, _) => "+winograd".into(),
        (ConvAlgorithm::Direct, _) => "+direct".into(),
        (ConvAlgorithm::Auto, Accuracy::Relaxed) => "+relaxed".into(),
        (ConvAlgorithm::Auto, Accuracy::Exact) => String::new(),
    }
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

/// This CPU's measured f32 FMA peak on `isa` for one thread, GFLOP/s: the median of short
/// probes for about 0.1 s (at least 3, at most 25), measured once per process and cached.
pub fn peak_1t(isa: Isa) -> f64 {
    static PEAK: [OnceLock<f64>; 4] = [const { OnceLock::new() }; 4];
    let slot = match isa {
        Isa::Scalar => 0,
        Isa::Avx2 => 1,
        Isa::Avx512 => 2,
        Isa::Neon => 3,
    };
    *PEAK[slot].get_or_init(|| {
        let start = Instant::now();
        let mut rates = Vec::new();
        while rates.len() < 3 || (rates.len() < 25 && start.elapsed() < Duration::from_millis(100))
        {
            rates.push(peak::gflops_1t(isa, 1));
        }
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    })
}

/// One benchmark result.
pub struct Row {
    pub workload: String,
    pub batch: usize,
    pub threads: usize,
    pub isa: Isa,
    pub timing: Timing,
    pub flops: f64,
    pub bytes: f64,
}

impl Row {
    pub fn median_ms(&self) -> f64 {
        self.timing.median.as_secs_f64() * 1e3
    }

    /// GFLOP/s at the median, or GB/s for memory-bound workloads (no FLOP).
    pub fn rate(&self) -> (f64, &'static str) {
        let secs = self.timing.median.as_secs_f64();
        if self.flops > 0.0 {
            (self.flops / secs / 1e9, "GFLOP/s")
        } else {
            (self.bytes / secs / 1e9, "GB/s")
        }
    }

    /// GFLOP/s at the median as a percentage of this CPU's measured FMA peak on the row's ISA
    /// times its threads (at most the cores there are); `None` for memory-bound workloads.
    pub fn peak_pct(&self) -> Option<f64> {
        if self.flops <= 0.0 {
            return None;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let peak = peak_1t(self.isa) * self.threads.min(cores) as f64;
        let (rate, _) = self.rate();
        (peak > 0.0).then(|| 100.0 * rate / peak)
    }

    fn json(&self) -> String {
        let (rate, unit) = self.rate();
        let key = if unit == "GB/s" { "gbps" } else { "gflops" };
        let peak_pct = self
            .peak_pct()
            .map_or("null".to_string(), |p| format!("{p:.1}"));
        format!(
            "{{\"workload\":\"{}\",\"batch\":{},\"threads\":{},\"isa\":\"{}\",\"median_ms\":{:.4},\"min_ms\":{:.4},\"runs\":{},\"{key}\":{rate:.1},\"peak_pct\":{peak_pct}}}",
            self.workload,
            self.batch,
            self.threads,
            self.isa,
            self.median_ms(),
            self.timing.min.as_secs_f64() * 1e3,
            self.timing.runs
        )
    }
}

/// Builds and times one workload.
pub fn measure(
    spec: &Spec,
    batch: usize,
    threads: usize,
    options: OpOptions,
    seconds: f64,
) -> Result<Row, String> {
    let mut prepared = prepare(spec, batch, options)?;
    let mut result = Ok(());
    let mut timed = |par| {
        time(seconds, || {
            if result.is_ok() {
                result = (prepared.run)(par);
            }
        })
    };
    // With threads, the timed loop runs on one of the pool's threads, as an engine running a
    // network inside its pool would call us (and as OpenMP's master thread works in oneDNN):
    // each run forks and joins inside the pool. Entering a pool from outside instead blocks the
    // caller on a latch, about 6-8 us per run on this VM.
    let timing = match pool(threads)? {
        Some(pool) => pool.install(|| timed(Parallelism::Global)),
        None => timed(Parallelism::Sequential),
    };
    result.map_err(|e| e.to_string())?;
    Ok(Row {
        // Only workloads with a KxK convolution say which algorithm ran, and only those with a
        // fused pool branch a forced pool schedule.
        workload: spec.label()
            + &if spec.has_conv_algorithm() {
                variant(options)
            } else {
                String::new()
            }
            + match (spec.has_fused_pool(), options.pool_schedule) {
                (false, _) | (true, PoolSchedule::Auto) => "",
                (true, PoolSchedule::Separate) => "+separate",
                (true, PoolSchedule::Interleaved) => "+interleaved",
            },
        batch,
        threads,
        isa: prepared.isa,
        timing,
        flops: prepared.flops,
        bytes: prepared.bytes,
    })
}

pub fn run(opts: &Options) -> Result<(), String> {
    let progress = opts.specs.len() > 1 && std::io::stderr().is_terminal();
    if !opts.json {
        outln!(
            "{:<20} {:>5} {:>7} {:<7} {:>10} {:>10} {:>15} {:>6}",
            "workload",
            "batch",
            "threads",
            "isa",
            "median ms",
            "min ms",
            "rate",
            "peak"
        );
    }
    for (i, spec) in opts.specs.iter().enumerate() {
        if progress {
            eprint!("\r[{:>2}/{}] {:<24}", i + 1, opts.specs.len(), spec.label());
        }
        let row = measure(spec, opts.batch, opts.threads, opts.options, opts.seconds)?;
        if progress {
            eprint!("\r{:<40}\r", "");
        }
        if opts.json {
            outln!("{}", row.json());
        } else {
            let (rate, unit) = row.rate();
            let peak = row
                .peak_pct()
                .map_or("-".to_string(), |p| format!("{p:.0}%"));
            outln!(
                "{:<20} {:>5} {:>7} {:<7} {:>10.4} {:>10.4} {:>7.1} {unit:<7} {peak:>6}",
                row.workload,
                row.batch,
                row.threads,
                row.isa.name(),
                row.median_ms(),
                row.timing.min.as_secs_f64() * 1e3,
                rate
            );
        }
    }
    Ok(())
}
