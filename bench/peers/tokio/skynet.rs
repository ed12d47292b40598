//! skynet.rs: the tokio peer of bench/skynet.c: a tree of 1,111,111 tasks summing their numbers
//! back up to the root.
//!
//! Usage: skynet [leaves]   (default 1,000,000; a power of ten, at least 10)
//!
//! The skynet benchmark as the Go peer writes it, with tasks and channels: each task spawns 10
//! children, each with its part of the number range, and adds up what they send back on its
//! channel; a leaf sends its number. The root's total must be leaves*(leaves-1)/2. A parent's
//! channel holds its ten replies, so no child ever waits to reply, as with a mailbox.
//!
//! Each run is timed from the root's spawn to its total. first_run_time is the first of three
//! runs, best_time the fastest.

use bench::{arg_u64, fail, ms, result};
use std::time::Instant;
use tokio::sync::mpsc;

const FANOUT: u64 = 10;
const RUNS: usize = 3;

/// Spawns the task for `size` leaves from `num` on, which sends their sum to `parent`. A plain
/// function around tokio::spawn, so that a task can spawn its own kind.
fn skynet(parent: mpsc::Sender<u64>, num: u64, size: u64) {
    tokio::spawn(async move {
        if size == 1 {
            let _ = parent.send(num).await;
            return;
        }
        let child = size / FANOUT;
        let (tx, mut rx) = mpsc::channel(FANOUT as usize);
        for i in 0..FANOUT {
            skynet(tx.clone(), num + i * child, child);
        }
        let mut sum = 0;
        for _ in 0..FANOUT {
            sum += rx.recv().await.expect("a child quit without replying");
        }
        let _ = parent.send(sum).await;
    });
}

async fn run_once(leaves: u64) -> f64 {
    let (tx, mut rx) = mpsc::channel(1);
    let t0 = Instant::now();
    skynet(tx, 0, leaves);
    let sum = rx.recv().await.expect("the root quit without replying");
    let elapsed = t0.elapsed();
    let want = leaves * (leaves - 1) / 2;
    if sum != want {
        fail(&format!("skynet: sum {sum}, expected {want}"));
    }
    eprintln!("skynet: sum {sum} in {:.1} ms", ms(elapsed));
    ms(elapsed)
}

#[tokio::main]
async fn main() {
    let leaves = arg_u64(1, 1_000_000, 100_000_000);
    let mut p = 1;
    while p < leaves {
        p *= FANOUT;
    }
    if p != leaves || leaves < FANOUT {
        eprintln!("skynet: leaves must be a power of {FANOUT}, at least {FANOUT}");
        std::process::exit(2);
    }
    let name = if leaves == 1_000_000 {
        "skynet_1m".to_string()
    } else {
        format!("skynet_{leaves}")
    };

    let (mut first, mut best) = (0.0, 0.0);
    for r in 0..RUNS {
        let t = run_once(leaves).await;
        if r == 0 {
            first = t;
        }
        if r == 0 || t < best {
            best = t;
        }
    }
    result(&name, "first_run_time", first, "ms");
    result(&name, "best_time", best, "ms");
}
