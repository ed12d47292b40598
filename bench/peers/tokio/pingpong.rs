//! pingpong.rs: the tokio peer of bench/pingpong.c: round trips between two tasks.
//!
//! Usage: pingpong [roundtrips]   (default 2,000,000)
//!
//! A ping task serves a counter to a pong task over the pong's channel and checks that it comes
//! back one higher on its own. `pingpong` runs on tokio's default runtime (multi-thread, one
//! worker per CPU); the scheduler, not the program, decides whether the two tasks share a worker
//! (tokio cannot pin them). `pingpong_1core` runs the same game on a multi-thread runtime with one
//! worker, as Go's peer does with GOMAXPROCS=1. The channels are unbounded, as a mailbox is: a
//! send never waits. Time runs from the first serve to the last return, inside the ping task.

use bench::{arg_u64, fail, result, secs};
use std::time::Instant;
use tokio::runtime::{Builder, Runtime};
use tokio::sync::mpsc;

fn play(name: &'static str, rt: Runtime, roundtrips: u64) {
    let rate = rt.block_on(async move {
        let (serve_tx, mut serve_rx) = mpsc::unbounded_channel::<u64>();
        let (ret_tx, mut ret_rx) = mpsc::unbounded_channel::<u64>();
        tokio::spawn(async move {
            while let Some(n) = serve_rx.recv().await {
                if ret_tx.send(n + 1).is_err() {
                    break;
                }
            }
        });
        let ping = tokio::spawn(async move {
            let t0 = Instant::now();
            let mut returned = 0u64;
            while returned < roundtrips {
                serve_tx.send(returned).expect("pong is gone");
                let n = ret_rx.recv().await.expect("pong is gone");
                if n != returned + 1 {
                    fail(&format!("{name}: ball {} came back as {n}", returned + 1));
                }
                returned = n;
            }
            // Dropping serve_tx ends the pong task.
            roundtrips as f64 / secs(t0.elapsed())
        });
        ping.await.expect("ping panicked")
    });
    result(name, "roundtrips_per_s", rate, "1/s");
}

fn main() {
    let roundtrips = arg_u64(1, 2_000_000, u64::MAX / 2);
    play("pingpong", Runtime::new().expect("runtime"), roundtrips);
    let one = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    play("pingpong_1core", one, roundtrips);
}
