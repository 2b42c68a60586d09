//! Ceiling (b): the durable write behind every 202. Carillon's own outbox
//! enqueue at 128 concurrent writers (group commit: one transaction and one
//! fsync per batch), and a bare sled insert + flush loop (one fsync per
//! write), both from `carillon_outbox::throughput`, the code the outbox's
//! `enqueue` benchmark runs too.

use std::time::Duration;

use anyhow::Context as _;
use carillon_outbox::throughput::{self, Measurement};
use serde::Serialize;

use crate::scenario::Context;

/// Writers in the group-commit probe, as in BENCHMARKS.md.
pub const WRITERS: usize = 128;

/// One probe's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Rate {
    /// Operations per second.
    pub per_sec: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Writes per flush (group commit only).
    pub mean_batch: Option<f64>,
}

impl From<&Measurement> for Rate {
    fn from(p: &Measurement) -> Rate {
        Rate {
            per_sec: p.rate(),
            p50_ms: p.quantile(0.5).as_secs_f64() * 1e3,
            p99_ms: p.quantile(0.99).as_secs_f64() * 1e3,
            mean_batch: p.mean_batch,
        }
    }
}

/// Both probes.
#[derive(Debug, Clone, Serialize)]
pub struct Storage {
    /// `Outbox::enqueue` from [`WRITERS`] tasks.
    pub outbox_enqueue: Rate,
    /// sled insert + flush, one after the other.
    pub sled_flush_each: Rate,
}

/// Runs both in the suite's work directory (the gateways' disk).
pub async fn measure(ctx: &Context) -> anyhow::Result<Storage> {
    let dir = tempfile::tempdir_in(&ctx.work).context("cannot create a storage probe dir")?;
    let duration = Duration::from_secs_f64(ctx.sizes.ceiling_secs);
    let outbox = throughput::enqueue(&dir.path().join("outbox"), WRITERS, duration)
        .await
        .context("outbox enqueue probe")?;
    let sled_dir = dir.path().join("sled");
    let sled =
        tokio::task::spawn_blocking(move || throughput::bare_sled(&sled_dir, true, duration))
            .await?
            .context("sled probe")?;
    Ok(Storage {
        outbox_enqueue: Rate::from(&outbox),
        sled_flush_each: Rate::from(&sled),
    })
}
