//! Durable enqueue throughput and latency at 1, 16, 128 and 1024 concurrent
//! writers, next to bare sled baselines measured in the same run
//! (insert + flush each; insert without flush). Run with
//! `cargo bench -p carillon-outbox --bench enqueue`; `OUTBOX_BENCH_SECS`
//! sets the duration of each row (default 3).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use carillon_outbox::{NewDelivery, NewEvent, Outbox, OutboxConfig};

struct Row {
    name: String,
    ops: u64,
    secs: f64,
    p50: Duration,
    p99: Duration,
    batch: Option<f64>,
}

fn pct(lat: &mut [Duration], p: f64) -> Duration {
    if lat.is_empty() {
        return Duration::ZERO;
    }
    lat.sort_unstable();
    let i = ((lat.len() - 1) as f64 * p) as usize;
    lat[i]
}

fn value() -> Vec<u8> {
    vec![b'x'; 600]
}

fn bare(dir: &std::path::Path, flush: bool, dur: Duration) -> Row {
    let db = sled::open(dir).unwrap();
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut n: u64 = 0;
    while start.elapsed() < dur && n < 5_000_000 {
        let t = Instant::now();
        db.insert(n.to_be_bytes(), value()).unwrap();
        if flush {
            db.flush().unwrap();
        }
        lat.push(t.elapsed());
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    Row {
        name: if flush {
            "sled insert + flush each".into()
        } else {
            "sled insert, no flush".into()
        },
        ops: n,
        secs,
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        batch: None,
    }
}

fn outbox(dir: &std::path::Path, writers: usize, dur: Duration) -> Row {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ob = Arc::new(
        Outbox::open(OutboxConfig {
            max_pending: u64::MAX,
            ..OutboxConfig::new(dir)
        })
        .unwrap(),
    );
    let start = Instant::now();
    let deadline = start + dur;
    let lats = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let ob = Arc::clone(&ob);
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = 0u64;
                while Instant::now() < deadline && i < 2_000_000 {
                    let t = Instant::now();
                    let event = NewEvent {
                        source: format!("app{w}"),
                        idempotency_key: Some(format!("k{i}")),
                        body: vec![b'e'; 300],
                    };
                    let d = vec![NewDelivery {
                        destination: "hook".into(),
                        payload: value(),
                    }];
                    ob.enqueue(event, d).await.unwrap();
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let secs = start.elapsed().as_secs_f64();
    let stats = ob.flush_stats();
    let mut lat = lats;
    Row {
        name: format!("outbox enqueue, {writers} writers"),
        ops: lat.len() as u64,
        secs,
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
        batch: Some(stats.mean_batch()),
    }
}

fn main() {
    let secs: u64 = std::env::var("OUTBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dur = Duration::from_secs(secs);
    let base =
        tempfile::tempdir_in(std::env::var("OUTBOX_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let mut rows = vec![
        bare(&base.path().join("flush"), true, dur),
        bare(&base.path().join("noflush"), false, dur),
    ];
    for w in [1, 16, 128, 1024] {
        rows.push(outbox(&base.path().join(format!("ob{w}")), w, dur));
    }
    let flush_each = rows[0].ops as f64 / rows[0].secs;
    let no_flush = rows[1].ops as f64 / rows[1].secs;
    println!("| mode | ops/s | p50 | p99 | avg batch | ÷ flush-each | ÷ no-flush |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        let rate = r.ops as f64 / r.secs;
        println!(
            "| {} | {:.0} | {:.0?} | {:.0?} | {} | {:.2} | {:.2} |",
            r.name,
            rate,
            r.p50,
            r.p99,
            r.batch.map_or("-".into(), |b| format!("{b:.1}")),
            rate / flush_each,
            rate / no_flush,
        );
    }
}
