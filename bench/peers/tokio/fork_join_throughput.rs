//! fork_join_throughput.rs: the tokio peer of bench/fork_join_throughput.c: one thread feeding
//! many tasks.
//!
//! Usage: fork_join_throughput [messages] [tasks]   (defaults 10,000 and 60)
//!
//! The main thread (tokio runs main's body outside its workers, as fork_join_throughput.c sends
//! from outside its pool) sends `messages` rounds of one message to each of `tasks` tasks, each
//! reading its own unbounded channel (a mailbox: the main thread never waits). Each message costs
//! its receiver Savina's small computation (the square of a sine); a task finishes after its last
//! message and returns how many it got and how many computations were not positive. Time runs
//! from the first spawn until the last task has finished.

use bench::{arg_u64, fail, ms, result};
use std::time::Instant;
use tokio::sync::mpsc;

const THETA: f64 = 37.2; // Savina's argument to performComputation

#[derive(Default)]
struct Report {
    processed: u64,
    bad: u64,
}

async fn worker(mut mailbox: mpsc::UnboundedReceiver<()>, expected: u64, theta: f64) -> Report {
    let mut r = Report::default();
    while mailbox.recv().await.is_some() {
        let s = theta.sin();
        if s * s <= 0.0 {
            r.bad += 1;
        }
        r.processed += 1;
        if r.processed == expected {
            break;
        }
    }
    r
}

#[tokio::main]
async fn main() {
    let messages = arg_u64(1, 10_000, u64::MAX / 2);
    let n = arg_u64(2, 60, 1_000_000) as usize;
    // A volatile read, so the compiler cannot fold the sine of a constant (std::hint::black_box
    // is not stable in Debian 12's Rust 1.63).
    let theta = unsafe { std::ptr::read_volatile(&THETA) };

    let t0 = Instant::now();
    let mut mailboxes = Vec::with_capacity(n);
    let mut workers = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        mailboxes.push(tx);
        workers.push(tokio::spawn(worker(rx, messages, theta)));
    }
    for _ in 0..messages {
        for mb in &mailboxes {
            mb.send(()).expect("a task quit early");
        }
    }
    let mut reports = Vec::with_capacity(n);
    for w in workers {
        reports.push(w.await.expect("a task panicked"));
    }
    let elapsed = t0.elapsed();

    for (i, r) in reports.iter().enumerate() {
        if r.processed != messages || r.bad != 0 {
            fail(&format!(
                "fork_join_throughput: task {i} processed {} of {messages} messages, {} bad results",
                r.processed, r.bad
            ));
        }
    }
    result("fork_join_throughput", "time", ms(elapsed), "ms");
}
