//! Resource monitors: Carillon raises `resource.alert` by itself when a
//! metric stays beyond a rule's threshold, repeats it while it does, and
//! sends one `resource.resolved` when it comes back.
//!
//! - Readings come from the sampler (`sample`: the host's CPU, memory and
//!   disks through `sysinfo`, and the gateway's own health from the
//!   outbox) every `[monitors] interval`, from `metric.gauge` events
//!   posted to `/v1/events` (`series::gauge_reading`), and from the
//!   Prometheus text format pushed to `/v1/metrics` (`prom`).
//! - Only series some rule matches are kept, at most `[monitors]
//!   max_series` rule × series pairs; a reading for a new pair past that
//!   is dropped (counted, logged).
//! - Each pair runs the state machine in `state` (ok → pending → firing →
//!   resolved). A change that sends an event (`Due`) is applied only once
//!   the event and the pair's kept record are written by one atomic
//!   enqueue (`Outbox::enqueue_kept`): firing writes the record, each
//!   repeat rewrites its last-fired time, resolving removes it. So a
//!   restart finds the firing pairs with when they last fired — no
//!   duplicate alert, no lost recovery. Pending is not kept: after a
//!   restart the `for` period starts again.
//! - The events (`events`) are routed and rendered like posted events
//!   (by the driver in `api/monitor_run.rs`), with the built-in
//!   `resource` template.

pub mod events;
pub mod metrics;
pub mod prom;
pub mod sample;
pub mod series;
pub mod state;

pub use sample::{Sampler, ScriptedSampler, SystemSampler};
pub use series::{Reading, gauge_reading};
pub use state::{Change, Due, Engine, Phase, Track};

/// The event type an application reports a gauge with.
pub const GAUGE: &str = "metric.gauge";
/// The event a rule raises when it fires (and at each repeat).
pub const ALERT: &str = "resource.alert";
/// The event a firing rule raises when it recovers.
pub const RESOLVED: &str = "resource.resolved";
/// The prefix of the monitors' kept records in the outbox.
pub const KEPT_PREFIX: &str = "monitor/";

use std::time::Duration;

use carillon_outbox::{Outbox, OutboxError};

use crate::config::MonitorSettings;

/// The engine the sampler task, ingest and the API share, and its
/// metrics.
#[derive(Debug)]
pub struct Monitors {
    /// Held across the writes of the events an evaluation sends, so two
    /// evaluations never send the same change.
    pub engine: tokio::sync::Mutex<Engine>,
    /// The metrics.
    pub metrics: metrics::MonitorMetrics,
    /// `[monitors] interval`.
    pub interval: Duration,
    /// `[monitors] max_push_series`.
    pub max_push_series: usize,
}

impl Monitors {
    /// The engine for `settings`, with the firing pairs `outbox` kept;
    /// records of rules no longer configured are removed.
    pub fn restore(
        settings: &MonitorSettings,
        outbox: &Outbox,
        now: carillon_outbox::Timestamp,
    ) -> Result<Monitors, OutboxError> {
        let kept = outbox.kept(KEPT_PREFIX)?;
        let (engine, orphans) = Engine::restore(
            settings.rules.clone(),
            settings.max_series,
            settings.stale_after,
            kept,
            now,
        );
        for key in orphans {
            tracing::info!(%key, "removing the kept state of a monitor rule no longer configured");
            outbox.remove_kept(&key)?;
        }
        let firing = engine.firing();
        if firing > 0 {
            tracing::info!(
                firing,
                "monitor rules still firing since before the restart"
            );
        }
        Ok(Monitors {
            engine: tokio::sync::Mutex::new(engine),
            metrics: metrics::MonitorMetrics::default(),
            interval: settings.interval,
            max_push_series: settings.max_push_series,
        })
    }
}

#[cfg(test)]
mod tests;
