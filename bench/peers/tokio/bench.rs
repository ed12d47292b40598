//! bench.rs: what every tokio peer shares, as bench/bench.h does for the libactor benchmarks: the
//! one RESULT line format, argument parsing, and the resident set size.
//!
//! Each peer is one binary of this package (Cargo.toml), using tokio's defaults: the
//! multi-thread runtime with one worker thread per CPU, unless the environment sets
//! TOKIO_WORKER_THREADS (bench/compare.sh's scaling runs).

use std::time::Duration;

/// Prints one RESULT line, with the precision bench_result() uses.
pub fn result(name: &str, metric: &str, value: f64, unit: &str) {
    let prec = if value >= 10000.0 { 0 } else { 3 };
    println!("RESULT name={name} impl=tokio metric={metric} value={value:.prec$} unit={unit}");
}

/// The i-th argument as a whole number in [1, max], or `def` when absent; anything else exits.
pub fn arg_u64(i: usize, def: u64, max: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    let arg = match args.get(i) {
        Some(arg) => arg,
        None => return def,
    };
    match arg.parse::<u64>() {
        Ok(v) if v >= 1 && v <= max => v,
        _ => {
            eprintln!(
                "{}: argument {i}: expected a whole number in [1, {max}], got '{arg}'",
                args[0]
            );
            std::process::exit(2);
        }
    }
}

/// Reports a wrong result and exits non-zero: a benchmark that did not check out reports nothing.
pub fn fail(what: &str) -> ! {
    eprintln!("{what}");
    std::process::exit(1);
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The resident set size in bytes (VmRSS in /proc/self/status, the figure /proc/self/statm
/// gives in pages), or 0 without /proc.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
