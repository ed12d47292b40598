//! counting.rs: the tokio peer of bench/counting.c: message throughput into one task, from one
//! sender and from four.
//!
//! Usage: counting [messages] [window]   (defaults 10,000,000 and 65536)
//!
//! Sender tasks send their share of `messages` on one channel to a counting task, which checks
//! that every message arrives exactly once and in order per sender, and returns the time the
//! total was reached. A message is the sender's index in the top byte and its sequence number
//! below, as in counting.c. The channel is bounded at `window`: a bounded channel is tokio's flow
//! control, doing what counting.c's credit protocol does for actors (a sender waits while
//! `window` messages wait), as in the Go peer.

use bench::{arg_u64, fail, result, secs};
use std::time::Instant;
use tokio::sync::mpsc;

const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

async fn count(name: &str, senders: u64, messages: u64, window: u64) {
    let (tx, mut rx) = mpsc::channel::<u64>(window as usize);
    let counter = tokio::spawn(async move {
        let mut next = vec![0u64; senders as usize];
        for _ in 0..messages {
            let v = rx.recv().await.expect("a sender quit early");
            let (idx, seq) = ((v >> SEQ_BITS) as usize, v & SEQ_MASK);
            if idx >= next.len() || seq != next[idx] {
                fail(&format!(
                    "counting: sender {idx}: got message {seq}, expected {}",
                    next[idx % next.len()]
                ));
            }
            next[idx] = seq + 1;
        }
        Instant::now()
    });

    let t0 = Instant::now();
    for i in 0..senders {
        let share = messages / senders + u64::from(i < messages % senders);
        let tx = tx.clone();
        tokio::spawn(async move {
            for seq in 0..share {
                if tx.send(i << SEQ_BITS | seq).await.is_err() {
                    return; // the counter failed and exited
                }
            }
        });
    }
    drop(tx);
    let t1 = counter.await.expect("counter panicked");
    result(name, "msgs_per_s", messages as f64 / secs(t1 - t0), "1/s");
}

#[tokio::main]
async fn main() {
    let messages = arg_u64(1, 10_000_000, SEQ_MASK);
    // tokio's bounded channel holds at most usize::MAX >> 3 messages; u32::MAX is well below.
    let window = arg_u64(2, 65536, u32::MAX as u64);
    if messages < 4 {
        fail("counting: need at least 4 messages");
    }
    count("counting_1to1", 1, messages, window).await;
    count("counting_4to1", 4, messages, window).await;
}
