//! The timer engine at scale: 100,000 armed timers (RSS they add, time to
//! reopen the outbox holding them) and lateness when 10,000 fall due in
//! the same second (fire time − deadline, fired the way the gateway's
//! timer task does: the due ones in chunks of 512, concurrently, so their
//! enqueues share group commits). Run with
//! `cargo bench -p carillon-outbox --bench timers`; `TIMERS_ARMED` and
//! `TIMERS_BURST` change the two sizes. `TIMERS_BASELINE=1` enqueues the
//! same events without arming anything, to tell the timers' share of the
//! RSS from the events'.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use carillon_outbox::{
    Clock, NewDelivery, NewEvent, NewTimer, Outbox, OutboxConfig, SystemClock, TimerOp,
};
use spawned::join_all;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `join_all` on spawned tasks (the crate does not depend on `futures`).
mod spawned {
    pub async fn join_all<F: std::future::Future + Send + 'static>(fs: Vec<F>) -> Vec<F::Output>
    where
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn config(dir: &std::path::Path) -> OutboxConfig {
    let mut c = OutboxConfig::new(dir);
    c.min_free_bytes = 0;
    c
}

fn event(i: usize) -> NewEvent {
    NewEvent {
        source: "etl/airflow".into(),
        idempotency_key: None,
        body: format!(r#"{{"type":"task.started","run_id":"run-{i}"}}"#).into_bytes(),
    }
}

fn timer(i: usize, deadline: carillon_outbox::Timestamp) -> NewTimer {
    NewTimer {
        key: format!(r#"task:["etl","airflow","run-{i:07}"]"#),
        kind: "task.timeout".into(),
        source: "airflow".into(),
        deadline,
        // About what a task.started payload holds.
        payload: vec![b'x'; payload_len()],
    }
}

/// Arms `n` timers from `first`, deadlines from `deadline(i)`, 256 at a time.
async fn arm(
    ob: &Arc<Outbox>,
    first: usize,
    n: usize,
    deadline: impl Fn(usize) -> carillon_outbox::Timestamp,
) {
    let mut i = first;
    while i < first + n {
        let end = (i + 256).min(first + n);
        let jobs: Vec<_> = (i..end)
            .map(|j| {
                let ob = Arc::clone(ob);
                let op = if baseline() {
                    TimerOp::None
                } else {
                    TimerOp::Arm(timer(j, deadline(j)))
                };
                async move { ob.enqueue_timed(event(j), Vec::new(), op).await.unwrap() }
            })
            .collect();
        join_all(jobs).await;
        i = end;
    }
}

/// `TIMERS_PAYLOAD` bytes of payload per timer (300 by default).
fn payload_len() -> usize {
    std::env::var("TIMERS_PAYLOAD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

fn baseline() -> bool {
    std::env::var("TIMERS_BASELINE").is_ok_and(|v| v == "1")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn main() {
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    let armed: usize = std::env::var("TIMERS_ARMED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let burst: usize = std::env::var("TIMERS_BURST")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let base =
        tempfile::tempdir_in(std::env::var("OUTBOX_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let dir = base.path().join("timers");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // 1. RSS added by `armed` timers due in a day.
    let day = SystemClock
        .now()
        .saturating_add(Duration::from_secs(86_400));
    let ob = Arc::new(Outbox::open(config(&dir)).unwrap());
    let before = rss_mib();
    let started = Instant::now();
    rt.block_on(arm(&ob, 0, armed, |_| day));
    let arm_secs = started.elapsed().as_secs_f64();
    let after = rss_mib();
    if baseline() {
        println!(
            "baseline: {armed} events without timers: {arm_secs:.1} s, RSS added {:.1} MiB",
            after - before
        );
        return;
    }
    assert_eq!(ob.armed_timers(), armed);
    Arc::try_unwrap(ob).unwrap().close().unwrap();

    // 2. Reopen with them: the index is rebuilt from the `timers` tree.
    let started = Instant::now();
    let ob = Arc::new(Outbox::open(config(&dir)).unwrap());
    let reopen = started.elapsed();
    assert_eq!(ob.armed_timers(), armed);
    let after_reopen = rss_mib();

    // 3. `burst` more timers due within one second, 3 s from now; fire
    //    like the gateway's task and record fire time − deadline.
    let t0 = SystemClock.now().saturating_add(Duration::from_secs(3));
    let step = 1_000_000 / burst.max(1) as u64; // µs between deadlines
    rt.block_on(arm(&ob, armed, burst, |j| {
        t0.saturating_add(Duration::from_micros((j - armed) as u64 * step))
    }));
    let lateness: Vec<u64> = rt.block_on(async {
        let mut late = Vec::with_capacity(burst);
        while late.len() < burst {
            let now = SystemClock.now();
            let due = ob.due_timers(now, 512).unwrap();
            if due.is_empty() {
                let next = ob.next_timer_deadline().unwrap();
                let wait = next
                    .as_millis()
                    .saturating_sub(SystemClock.now().as_millis());
                tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
                continue;
            }
            let jobs: Vec<_> = due
                .into_iter()
                .map(|t| {
                    let ob = Arc::clone(&ob);
                    async move {
                        let delivery = vec![NewDelivery {
                            destination: "ops".into(),
                            payload: vec![b'm'; 600],
                        }];
                        let fired = ob.fire_timer(&t.id, event(0), delivery).await.unwrap();
                        assert!(fired.is_some());
                        SystemClock
                            .now()
                            .as_millis()
                            .saturating_sub(t.deadline.as_millis())
                    }
                })
                .collect();
            late.extend(join_all(jobs).await);
        }
        late
    });
    let mut sorted = lateness;
    sorted.sort_unstable();
    println!("| measure | value |");
    println!("|---|---|");
    println!("| timers armed | {armed} |");
    println!(
        "| arming rate (256 concurrent enqueues) | {:.0}/s |",
        armed as f64 / arm_secs
    );
    println!(
        "| RSS added by arming them | {:.1} MiB ({before:.1} → {after:.1}) |",
        after - before
    );
    println!(
        "| reopen with them | {:.0} ms (RSS after: {after_reopen:.1} MiB) |",
        reopen.as_secs_f64() * 1000.0
    );
    println!("| burst falling due in one second | {burst} |");
    println!(
        "| lateness p50 / p99 / max | {} / {} / {} ms |",
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.99),
        sorted.last().copied().unwrap_or(0)
    );
}
