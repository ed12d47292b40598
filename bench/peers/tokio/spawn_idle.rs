//! spawn_idle.rs: the tokio peer of bench/spawn_idle.c: what an idle task costs, in memory and in
//! spawn time.
//!
//! Usage: spawn_idle [tasks]   (default 1,000,000)
//!
//! The main thread (tokio runs main's body outside its workers, as libactor's spawn_idle spawns
//! from outside its pool) spawns `tasks` tasks, each waiting on its own channel (its mailbox)
//! and never sent anything, then reads the growth of the resident set size. bytes_per_actor is
//! that growth divided by the count: the task and its channel. The vector holding the senders is
//! allocated and filled before the first reading, so it is not counted, as spawn_idle.c does not
//! count its refs. spawns_per_s times the spawns. Then every sender is dropped, which ends every
//! task; main waits for the last one as tokio's shutdown guide does, on a channel whose senders
//! the tasks hold.

use bench::{arg_u64, fail, ms, result, rss_bytes, secs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() {
    let n = arg_u64(1, 1_000_000, 100_000_000);
    // Every slot written before the first reading, so the vector's pages are not counted.
    let mut mailboxes: Vec<Option<mpsc::UnboundedSender<()>>> = (0..n).map(|_| None).collect();
    let ended = Arc::new(AtomicU64::new(0));
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);

    let rss0 = rss_bytes();
    let t0 = Instant::now();
    for slot in mailboxes.iter_mut() {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        *slot = Some(tx);
        let (ended, done) = (ended.clone(), done_tx.clone());
        tokio::spawn(async move {
            while rx.recv().await.is_some() {}
            // Relaxed: a count read once, after the spawns; no other memory depends on it.
            ended.fetch_add(1, Ordering::Relaxed);
            drop(done);
        });
    }
    let t1 = Instant::now();
    let rss1 = rss_bytes();

    // Every task must still be alive (waiting on its mailbox).
    let gone = ended.load(Ordering::Relaxed);
    if gone != 0 {
        fail(&format!("spawn_idle: {gone} of {n} tasks ended early"));
    }
    let t2 = Instant::now();
    drop(mailboxes);
    drop(done_tx);
    let _ = done_rx.recv().await; // None once every task has dropped its sender
    if ended.load(Ordering::Relaxed) != n {
        fail("spawn_idle: not every task ended");
    }
    eprintln!(
        "spawn_idle: RSS {:.1} MB -> {:.1} MB; stop {:.1} ms",
        rss0 as f64 / 1e6,
        rss1 as f64 / 1e6,
        ms(t2.elapsed())
    );

    let name = if n == 1_000_000 {
        "spawn_idle_1m".to_string()
    } else {
        format!("spawn_idle_{n}")
    };
    let growth = rss1.saturating_sub(rss0) as f64;
    result(&name, "bytes_per_actor", growth / n as f64, "B");
    result(&name, "spawns_per_s", n as f64 / secs(t1 - t0), "1/s");
}
