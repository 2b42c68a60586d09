//! Durable enqueue throughput and latency at 1, 16, 128 and 1024 concurrent
//! writers, next to bare sled baselines measured in the same run
//! (insert + flush each; insert without flush; the outbox's own write
//! pattern, two keys per enqueue in batched transactions, without the
//! outbox around it). Run with
//! `cargo bench -p carillon-outbox --bench enqueue`; `OUTBOX_BENCH_SECS`
//! sets the duration of each row (default 3). The probes themselves are
//! `carillon_outbox::throughput`, shared with the benchmark suite.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    missing_docs
)]

use std::time::Duration;

use carillon_outbox::throughput::{self, Measurement};

/// The gateway binary's allocator (`host/src/main.rs`): under glibc's
/// malloc the committer spent a fifth of its time in `malloc`/`realloc`,
/// a cost the gateway does not pay.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Row {
    name: String,
    probe: Measurement,
}

fn main() {
    // As the gateway binary does: no transparent huge pages.
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        println!("note: could not opt out of transparent huge pages: {e}");
    }
    let secs: u64 = std::env::var("OUTBOX_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let dur = Duration::from_secs(secs);
    let base =
        tempfile::tempdir_in(std::env::var("OUTBOX_BENCH_DIR").unwrap_or_else(|_| ".".into()))
            .unwrap();
    let mut rows = vec![
        Row {
            name: "sled insert + flush each".into(),
            probe: throughput::bare_sled(&base.path().join("flush"), true, dur).unwrap(),
        },
        Row {
            name: "sled insert, no flush".into(),
            probe: throughput::bare_sled(&base.path().join("noflush"), false, dur).unwrap(),
        },
        Row {
            name: "sled, enqueue shape (1 key, batch of 64 + flush)".into(),
            probe: throughput::bare_sled_enqueue_shape(&base.path().join("shape"), 64, dur)
                .unwrap(),
        },
    ];
    for w in [1, 16, 128, 1024] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = base.path().join(format!("ob{w}"));
        rows.push(Row {
            name: format!("outbox enqueue, {w} writers"),
            probe: rt.block_on(throughput::enqueue(&dir, w, dur)).unwrap(),
        });
    }
    let flush_each = rows[0].probe.rate();
    let no_flush = rows[1].probe.rate();
    let shape = rows[2].probe.rate();
    println!(
        "| mode | ops/s | p50 | p99 | avg batch | ÷ flush-each | ÷ no-flush | ÷ enqueue shape |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let rate = r.probe.rate();
        println!(
            "| {} | {:.0} | {:.0?} | {:.0?} | {} | {:.2} | {:.2} | {:.2} |",
            r.name,
            rate,
            r.probe.quantile(0.5),
            r.probe.quantile(0.99),
            r.probe.mean_batch.map_or("-".into(), |b| format!("{b:.1}")),
            rate / flush_each,
            rate / no_flush,
            rate / shape,
        );
    }
}
