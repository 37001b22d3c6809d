//! Command-line front end. Hand-parsed: a handful of flags does not need a parser crate.

/// `println!` that returns from the enclosing function (with `Err`) when stdout fails. A closed
/// pipe (`incept bench --workload all | head -1`) then ends the command quietly, where
/// `println!` would panic.
macro_rules! outln {
    () => {
        $crate::cli::write_stdout(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::write_stdout(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

mod bench;
mod demo;
mod layer;
mod npy;
mod peak;
mod workloads;

use incept::cost::{thousands, BottleneckCost};
use incept::{isa, Isa};

const USAGE: &str = "\
usage: incept [COMMAND]

commands:
  (none)          run the demo: GoogLeNet inception 3a branch by branch, timed, checked against the reference
  info            this CPU's ISAs, the chosen one and the cap
  cost            the multiply table of a module, with and without its 1x1 reductions
                    [--h --w --c --c1x1 --c3x3-reduce --c3x3 --c5x5-reduce --c5x5 --pool-proj] (default: 3a)
  bench           time a workload:
                    --workload NAME        conv1x1 | conv3x3 | conv5x5 | bottleneck | maxpool | pool-proj |
                                           inception (GoogLeNet 3a on 28x28x192), *-unfused variants, all;
                                           inception-3a ... inception-5b (each GoogLeNet module at its size)
                    --conv H,W,CIN,COUT,K[,STRIDE[,PAD]]   any convolution (bias + ReLU)
                    --batch N              (default 1)
                    --threads T            (default: all cores)
                    --isa auto|scalar|avx2|avx512|neon   (default auto)
                    --algorithm auto|direct|winograd     3x3 and 5x5 stride-1 convolutions (default auto)
                    --accuracy exact|relaxed             what auto may use (default exact: direct only)
                    --pool-schedule auto|separate|interleaved   pool + projection (default auto)
                    --seconds S            (timed window, default 1)
                    --json                 (one JSON object per line)
  layer OP        run one operator on .npy files: conv | pool | bottleneck | inception
                  (see incept layer --help)
  help            this text

environment: INCEPT_MAX_ISA=scalar|avx2|avx512|neon caps the ISA for everything.";

/// Runs the command line; returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let result = match args.first().map(String::as_str) {
        None => demo::run(),
        Some("info") => no_more_args(&args[1..]).and_then(|()| info()),
        Some("cost") => cost(&args[1..]),
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|opts| bench::run(&opts)),
        Some("layer") => layer::run(&args[1..]),
        Some("help" | "-h" | "--help") => write_stdout(format_args!("{USAGE}\n")),
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => 0,
        // The reader went away (`| head`): nothing left to say, and no one to say it to.
        Err(message) if message == STDOUT_CLOSED => 0,
        Err(message) => {
            eprintln!("incept: {message}");
            2
        }
    }
}

/// Parses an `--algorithm` value.
fn parse_algorithm(v: &str) -> Result<incept::ConvAlgorithm, String> {
    match v {
        "auto" => Ok(incept::ConvAlgorithm::Auto),
        "direct" => Ok(incept::ConvAlgorithm::Direct),
        "winograd" => Ok(incept::ConvAlgorithm::Winograd),
        v => Err(format!(
            "--algorithm must be auto, direct or winograd, got '{v}'"
        )),
    }
}

/// Parses a `--pool-schedule` value.
fn parse_pool_schedule(v: &str) -> Result<incept::PoolSchedule, String> {
    match v {
        "auto" => Ok(incept::PoolSchedule::Auto),
        "separate" => Ok(incept::PoolSchedule::Separate),
        "interleaved" => Ok(incept::PoolSchedule::Interleaved),
        v => Err(format!(
            "--pool-schedule must be auto, separate or interleaved, got '{v}'"
        )),
    }
}

/// Parses an `--accuracy` value.
fn parse_accuracy(v: &str) -> Result<incept::Accuracy, String> {
    match v {
        "exact" => Ok(incept::Accuracy::Exact),
        "relaxed" => Ok(incept::Accuracy::Relaxed),
        v => Err(format!("--accuracy must be exact or relaxed, got '{v}'")),
    }
}

fn no_more_args(rest: &[String]) -> Result<(), String> {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(format!("unexpected argument '{arg}'")),
    }
}

/// The CPU's model name, from /proc/cpuinfo where there is one.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The error [`write_stdout`] returns when stdout is a closed pipe.
const STDOUT_CLOSED: &str = "stdout closed";

/// Writes `text` to stdout; a closed pipe is [`STDOUT_CLOSED`], any other failure a message.
fn write_stdout(text: std::fmt::Arguments<'_>) -> Result<(), String> {
    use std::io::Write;
    std::io::stdout().lock().write_fmt(text).map_err(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_CLOSED.to_string()
        } else {
            format!("cannot write to stdout: {e}")
        }
    })
}

fn info() -> Result<(), String> {
    let names: Vec<&str> = isa::available().iter().map(|i| i.name()).collect();
    let cap = isa::max_isa().map_err(|e| e.to_string())?;
    let chosen = isa::resolve(None).map_err(|e| e.to_string())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    outln!("cpu:       {}", cpu_name());
    outln!("isas:      {}", names.join(", "));
    outln!("best:      {}", isa::best_available());
    outln!(
        "cap:       {}",
        cap.map_or("none".to_string(), |c: Isa| c.to_string())
    );
    outln!("chosen:    {chosen}");
    outln!("threads:   {threads}");
    for (level, size) in cache_sizes() {
        outln!("cache {level:<4} {size}");
    }
    outln!("measured f32 FMA peak (GFLOP/s, median of short probes):");
    for &isa in isa::available() {
        let one = peak::gflops(isa, 1, 15);
        let all = peak::gflops(isa, threads, 15);
        outln!(
            "  {:<7} 1 thread {one:>7.1}   {threads} threads {all:>7.1}",
            isa.name()
        );
    }
    Ok(())
}

/// Data and unified cache sizes from sysfs, where there is one.
fn cache_sizes() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for index in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let read = |f: &str| {
            std::fs::read_to_string(format!("{dir}/{f}"))
                .ok()
                .map(|s| s.trim().to_string())
        };
        let (Some(level), Some(kind), Some(size)) = (read("level"), read("type"), read("size"))
        else {
            break;
        };
        if kind != "Instruction" {
            out.push((format!("L{level}"), size));
        }
    }
    out
}

/// `incept cost [--h H] [--w W] [--c C] [--c1x1 N] [--c3x3-reduce N] [--c3x3 N]
/// [--c5x5-reduce N] [--c5x5 N] [--pool-proj N]`: the multiply table of a module (default:
/// GoogLeNet inception 3a on 28x28x192), branch by branch, with and without the 1x1 reductions.
fn cost(args: &[String]) -> Result<(), String> {
    let mut v = [
        ("--h", 28),
        ("--w", 28),
        ("--c", 192),
        ("--c1x1", 64),
        ("--c3x3-reduce", 96),
        ("--c3x3", 128),
        ("--c5x5-reduce", 16),
        ("--c5x5", 32),
        ("--pool-proj", 32),
    ];
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let slot = v
            .iter_mut()
            .find(|(name, _)| name == flag)
            .ok_or_else(|| format!("cost: unknown flag '{flag}'"))?;
        let text = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        slot.1 = text
            .parse::<usize>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("{flag} must be a positive integer, got '{text}'"))?;
    }
    let [h, w, c, c1, r3, c3, r5, c5, pp] = v.map(|(_, n)| n);
    let px = h * w;
    let b3 = BottleneckCost::new(h, w, c, r3, c3, 3);
    let b5 = BottleneckCost::new(h, w, c, r5, c5, 5);
    let one = incept::cost::conv_macs(px, c1, 1, 1, c);
    let proj = incept::cost::conv_macs(px, pp, 1, 1, c);
    let row = |name: &str, macs: u64| -> Result<(), String> {
        outln!("  {name:<34} {:>15}", thousands(macs));
        Ok(())
    };
    outln!(
        "Inception module on {h}x{w}x{c} -> {h}x{w}x{} (multiplies; padded taps counted):",
        c1 + c3 + c5 + pp
    );
    row(&format!("1x1 {c1}"), one)?;
    row(&format!("1x1 {c} -> {r3} (3x3 reduction)"), b3.reduce)?;
    row(&format!("3x3 {r3} -> {c3}"), b3.conv)?;
    row(&format!("1x1 {c} -> {r5} (5x5 reduction)"), b5.reduce)?;
    row(&format!("5x5 {r5} -> {c5}"), b5.conv)?;
    row(&format!("3x3 max-pool, then 1x1 {c} -> {pp}"), proj)?;
    let with = one + b3.with_bottleneck() + b5.with_bottleneck() + proj;
    row("module with the 1x1 reductions", with)?;
    outln!();
    outln!("without the reductions (3x3 and 5x5 straight on the {c}-channel input):");
    row(&format!("naive 3x3 {c} -> {c3}"), b3.naive)?;
    row(&format!("naive 5x5 {c} -> {c5}"), b5.naive)?;
    let without = one + b3.naive + b5.naive + proj;
    row("module without reductions", without)?;
    outln!();
    outln!(
        "the 5x5 branch: naive {} multiplies; with a 1x1 bottleneck to {r5} channels {} + {} = {} ({:.1}x fewer)",
        thousands(b5.naive),
        thousands(b5.reduce),
        thousands(b5.conv),
        thousands(b5.with_bottleneck()),
        b5.naive as f64 / b5.with_bottleneck() as f64
    );
    outln!(
        "the module: {:.1}x fewer multiplies with the reductions",
        without as f64 / with as f64
    );
    Ok(())
}
