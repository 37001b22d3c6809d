//! Command-line front end. Hand-parsed: a handful of flags does not need a parser crate.

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
  (none)          run the demo: the 1x1 branch of GoogLeNet inception 3a, checked against the reference
  info            this CPU's ISAs, the chosen one and the cap
  cost            multiply counts of the seed example (5x5 branch with and without a 1x1 bottleneck)
  bench           time a workload:
                    --workload NAME        conv1x1 | conv3x3 | conv5x5 | bottleneck | maxpool | pool-proj |
                                           inception (GoogLeNet 3a on 28x28x192), *-unfused variants, all
                    --conv H,W,CIN,COUT,K[,STRIDE[,PAD]]   any convolution (bias + ReLU)
                    --batch N              (default 1)
                    --threads T            (default: all cores)
                    --isa auto|scalar|avx2|avx512|neon   (default auto)
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
        Some("cost") => no_more_args(&args[1..]).map(|()| cost()),
        Some("bench") => bench::Options::parse(&args[1..]).and_then(|opts| bench::run(&opts)),
        Some("layer") => layer::run(&args[1..]),
        Some("help" | "-h" | "--help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command '{other}'\n\n{USAGE}")),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("incept: {message}");
            2
        }
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

fn info() -> Result<(), String> {
    let names: Vec<&str> = isa::available().iter().map(|i| i.name()).collect();
    let cap = isa::max_isa().map_err(|e| e.to_string())?;
    let chosen = isa::resolve(None).map_err(|e| e.to_string())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cpu:       {}", cpu_name());
    println!("isas:      {}", names.join(", "));
    println!("best:      {}", isa::best_available());
    println!(
        "cap:       {}",
        cap.map_or("none".to_string(), |c: Isa| c.to_string())
    );
    println!("chosen:    {chosen}");
    println!("threads:   {threads}");
    for (level, size) in cache_sizes() {
        println!("cache {level:<4} {size}");
    }
    println!("measured f32 FMA peak (GFLOP/s, median of short probes):");
    for &isa in isa::available() {
        let one = peak::gflops(isa, 1, 15);
        let all = peak::gflops(isa, threads, 15);
        println!(
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

fn cost() {
    let c = BottleneckCost::new(28, 28, 192, 16, 32, 5);
    println!("5x5 branch of GoogLeNet inception 3a on 28x28x192 -> 32 channels:");
    println!(
        "  naive 5x5 conv:                 {:>13} multiplies",
        thousands(c.naive)
    );
    println!(
        "  1x1 192 -> 16 bottleneck:       {:>13} multiplies",
        thousands(c.reduce)
    );
    println!(
        "  then 5x5 16 -> 32:              {:>13} multiplies",
        thousands(c.conv)
    );
    println!(
        "  with the bottleneck:            {:>13} multiplies",
        thousands(c.with_bottleneck())
    );
    println!(
        "  saving:                         {:>12.1}x fewer",
        c.naive as f64 / c.with_bottleneck() as f64
    );
}
