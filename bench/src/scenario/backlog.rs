//! `backlog`: queue many deliveries to a paused receiver (503 with
//! `Retry-After: 1`, see `receiver`), measure what holding them costs
//! (memory, disk), then resume the receiver and measure the drain.

use std::time::Instant;

use serde::Serialize;

use super::{Context, rate_since};
use crate::driver::{Setup, disk_usage};
use crate::latency::Latency;
use crate::load::{self, LoadReport, Until};
use crate::receiver::Behaviour;
use crate::usage::Usage;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Backlog {
    /// Filling the queue.
    pub load: LoadReport,
    /// The gateway just before the load.
    pub idle: Usage,
    /// The gateway with the whole backlog queued.
    pub full: Usage,
    /// The gateway after the drain.
    pub drained: Usage,
    /// The data directory just before the load.
    pub disk_idle_bytes: u64,
    /// … with the whole backlog queued.
    pub disk_full_bytes: u64,
    /// … after the drain.
    pub disk_drained_bytes: u64,
    /// `(disk_full − disk_idle) ÷ queued deliveries`.
    pub disk_bytes_per_delivery: f64,
    /// Attempts the paused receiver refused.
    pub refused_while_paused: u64,
    /// Distinct events delivered after the resume.
    pub delivered: u64,
    /// Events delivered more than once.
    pub duplicates: u64,
    /// Whether every accepted event arrived before the drain timeout.
    pub complete: bool,
    /// From the resume to the last delivery.
    pub drain_secs: f64,
    /// `delivered ÷ drain_secs`.
    pub drain_per_sec: f64,
    /// Send → arrival (mostly time spent queued).
    pub end_to_end: Latency,
}

/// Runs it.
pub async fn backlog(ctx: &Context) -> anyhow::Result<Backlog> {
    let path = "/backlog";
    let count = ctx.sizes.backlog_deliveries;
    ctx.receiver.set(path, Behaviour::Pause);
    let setup = Setup {
        destinations: [("backlog".to_owned(), ctx.webhook(path))].into(),
        // Room for the whole backlog: the default bound is 1,000,000.
        max_pending: Some(count.saturating_mul(2).max(1_000_000)),
        ..Setup::default()
    };
    let mut gateway = ctx.gateway("backlog", &setup).await?;
    let data = gateway.dir().join("data");
    let idle = gateway.usage()?;
    let disk_idle_bytes = disk_usage(&data);
    let load = load::run(
        &gateway.ingest(),
        ctx.sizes.connections,
        Until::Count(count),
    )
    .await?;
    let full = gateway.usage()?;
    let disk_full_bytes = disk_usage(&data);
    let refused_while_paused = ctx.receiver.report(path).refused_requests;

    let resumed = Instant::now();
    ctx.receiver.set(path, Behaviour::Accept);
    let complete = ctx
        .wait_delivered(&mut gateway, &[path.to_owned()], load.accepted)
        .await?;
    let drained = gateway.usage()?;
    let disk_drained_bytes = disk_usage(&data);
    let got = ctx.receiver.report(path);
    gateway.stop().await?;
    let drain_secs = got
        .last
        .map_or(0.0, |l| l.saturating_duration_since(resumed).as_secs_f64());
    Ok(Backlog {
        idle,
        full,
        drained,
        disk_idle_bytes,
        disk_full_bytes,
        disk_drained_bytes,
        disk_bytes_per_delivery: if load.accepted == 0 {
            0.0
        } else {
            disk_full_bytes.saturating_sub(disk_idle_bytes) as f64 / load.accepted as f64
        },
        refused_while_paused,
        delivered: got.delivered,
        duplicates: got.duplicates,
        complete,
        drain_secs,
        drain_per_sec: rate_since(got.delivered, Some(resumed), got.last),
        end_to_end: got.latency,
        load,
    })
}
