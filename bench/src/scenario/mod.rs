//! The scenarios: each starts its own gateway (fresh data directory) and
//! its own receiver paths, so no scenario sees another's stragglers.

mod backlog;
mod burst;
mod failing;
mod peers;
mod soak;
mod startup;
mod steady;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

pub use backlog::{Backlog, backlog};
pub use burst::burst;
pub use failing::{Failing, FailingRun, failing};
pub use peers::{PeerPaths, PeerRun, Peers, peers};
pub use soak::{
    Drained, Probe, Reload, Sample, SeriesVerdict, Soak, Verdict, chart as soak_chart, soak,
};
pub use startup::{Startup, startup};
pub use steady::steady;

use crate::driver::{Destination, Gateway, Setup};
use crate::latency::Latency;
use crate::load::{self, LoadReport, Until};
use crate::receiver::Receiver;
use crate::usage::Usage;

/// How big each scenario is.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// Load connections (requests in flight).
    pub connections: usize,
    /// `steady`: how long to send.
    pub steady_secs: f64,
    /// `burst`: events sent as fast as possible.
    pub burst_events: u64,
    /// `failing`: how long each of its two runs sends.
    pub failing_secs: f64,
    /// `failing`: destinations, one of which fails.
    pub failing_destinations: usize,
    /// `backlog`: deliveries queued while the receiver is paused.
    pub backlog_deliveries: u64,
    /// Each ceiling's duration.
    pub ceiling_secs: f64,
    /// How long to wait for deliveries after the load.
    pub drain_timeout_secs: f64,
    /// Per-destination concurrency (the gateway's default when `None`).
    pub destination_concurrency: Option<u32>,
    /// `peers`: alerts handed to Alertmanager, one run per size.
    pub peer_alerts: Vec<u64>,
    /// `peers`: messages sent through Apprise (one at a time).
    pub peer_messages: u64,
    /// `soak`: seconds of load.
    pub soak_secs: f64,
    /// `soak`: events a second (half the probe's maximum when `None`).
    pub soak_rate: Option<f64>,
    /// `soak`: seconds of the probe that measures the maximum.
    pub soak_probe_secs: f64,
    /// `soak`: seconds between plugin reloads.
    pub soak_reload_secs: f64,
    /// `soak`: seconds between samples.
    pub soak_sample_secs: f64,
    /// `soak`: the gateway's retention of delivered deliveries, unrouted
    /// events and idempotency keys.
    pub soak_retention_secs: u64,
    /// `soak`: the data directory size at which the load stops early.
    pub soak_disk_limit_bytes: u64,
}

impl Sizes {
    /// The sizes.
    pub fn full() -> Sizes {
        Sizes {
            connections: 64,
            steady_secs: 60.0,
            burst_events: 100_000,
            failing_secs: 30.0,
            failing_destinations: 10,
            backlog_deliveries: 1_000_000,
            ceiling_secs: 5.0,
            drain_timeout_secs: 1800.0,
            destination_concurrency: None,
            peer_alerts: vec![10_000],
            peer_messages: 2_000,
            soak_secs: 3600.0,
            soak_rate: None,
            soak_probe_secs: 10.0,
            soak_reload_secs: 180.0,
            soak_sample_secs: 60.0,
            soak_retention_secs: 600,
            soak_disk_limit_bytes: 10 << 30,
        }
    }

    /// Every scenario in seconds, for CI and for trying the suite out.
    pub fn smoke() -> Sizes {
        Sizes {
            connections: 8,
            steady_secs: 1.0,
            burst_events: 200,
            failing_secs: 1.0,
            failing_destinations: 10,
            backlog_deliveries: 200,
            ceiling_secs: 0.3,
            drain_timeout_secs: 60.0,
            destination_concurrency: None,
            // Never used: --smoke skips the peers.
            peer_alerts: vec![100],
            peer_messages: 50,
            // A few windows and one reload, to see that the pieces work.
            soak_secs: 4.0,
            soak_rate: None,
            soak_probe_secs: 1.0,
            soak_reload_secs: 0.5,
            soak_sample_secs: 1.0,
            soak_retention_secs: 60,
            soak_disk_limit_bytes: 10 << 30,
        }
    }
}

/// What every scenario needs.
#[derive(Debug)]
pub struct Context {
    /// The `carillon` binary.
    pub carillon: PathBuf,
    /// Where gateways' directories go.
    pub work: PathBuf,
    /// The one receiver of the run.
    pub receiver: Receiver,
    /// Scenario sizes.
    pub sizes: Sizes,
    /// A compiled-plugin cache copied into each new data directory, so only
    /// the `startup` scenario pays for compiling the plugins.
    cache_seed: PathBuf,
}

impl Context {
    /// A context whose gateways live under `work`.
    pub fn new(carillon: PathBuf, work: PathBuf, sizes: Sizes) -> anyhow::Result<Context> {
        Ok(Context {
            carillon,
            cache_seed: work.join("cache-seed"),
            work,
            receiver: Receiver::start()?,
            sizes,
        })
    }

    /// A webhook destination delivering to the receiver's `path`.
    pub fn webhook(&self, path: &str) -> Destination {
        Destination {
            plugin: "webhook".into(),
            concurrency: self.sizes.destination_concurrency,
            config: serde_json::json!({ "url": self.receiver.url(path) }),
        }
    }

    /// Starts a gateway in a fresh directory `work/NAME`, with the plugin
    /// cache seeded when a previous gateway filled it.
    pub async fn gateway(&self, name: &str, setup: &Setup) -> anyhow::Result<Gateway> {
        let dir = self.work.join(name);
        let cache = dir.join("data").join("cache");
        if self.cache_seed.is_dir() {
            copy_dir(&self.cache_seed, &cache)?;
        }
        let gateway = Gateway::start(&self.carillon, &dir, setup)
            .await
            .with_context(|| format!("{name}: starting carillon"))?;
        self.keep_cache(&gateway)?;
        Ok(gateway)
    }

    /// Keeps `gateway`'s compiled plugins for the next gateways, once.
    pub fn keep_cache(&self, gateway: &Gateway) -> anyhow::Result<()> {
        let cache = gateway.dir().join("data").join("cache");
        if !self.cache_seed.exists() && cache.is_dir() {
            copy_dir(&cache, &self.cache_seed)?;
        }
        Ok(())
    }

    /// Waits until each of `paths` has `each` distinct deliveries, woken by
    /// the receiver on every delivery; gives up after the drain timeout or
    /// when the gateway dies. Returns whether all arrived.
    pub async fn wait_delivered(
        &self,
        gateway: &mut Gateway,
        paths: &[String],
        each: u64,
    ) -> anyhow::Result<bool> {
        self.wait_arrivals(paths, each, || gateway.check_alive())
            .await
    }

    /// [`Context::wait_delivered`] for any sender: `alive` is checked at
    /// least once a second and ends the wait with its error.
    pub async fn wait_arrivals(
        &self,
        paths: &[String],
        each: u64,
        alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let timeout = Duration::from_secs_f64(self.sizes.drain_timeout_secs);
        self.wait_arrivals_for(paths, each, timeout, alive).await
    }

    /// [`Context::wait_arrivals`] with its own `timeout`.
    pub async fn wait_arrivals_for(
        &self,
        paths: &[String],
        each: u64,
        timeout: Duration,
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut progress = self.receiver.progress();
        loop {
            progress.borrow_and_update();
            if self.receiver.delivered(paths).iter().all(|&n| n >= each) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // Wake on progress; at least once a second check the gateway lives.
            let wait = (deadline - now).min(Duration::from_secs(1));
            let _ = tokio::time::timeout(wait, progress.changed()).await;
            alive()?;
        }
    }
}

/// One load run through a gateway to one receiver path, and what arrived.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// What the load generator saw.
    pub load: LoadReport,
    /// Distinct events delivered.
    pub delivered: u64,
    /// Events delivered more than once.
    pub duplicates: u64,
    /// Whether every accepted event arrived before the drain timeout.
    pub complete: bool,
    /// `delivered` ÷ (last arrival − first send).
    pub delivered_per_sec: f64,
    /// Send → arrival at the receiver (includes the ack).
    pub end_to_end: Latency,
    /// The gateway's memory and CPU at the end.
    pub usage: Usage,
    /// Gateway CPU (user + system) from the first send to the last
    /// delivery, per 1,000 accepted events.
    pub cpu_secs_per_1000: f64,
}

/// Sends `until` to a gateway whose only destination delivers to `path`,
/// waits for the deliveries and measures.
async fn flow(
    ctx: &Context,
    gateway: &mut Gateway,
    path: &str,
    until: Until,
) -> anyhow::Result<Flow> {
    let before = gateway.usage()?;
    let load = load::run(&gateway.ingest(), ctx.sizes.connections, until).await?;
    let complete = ctx
        .wait_delivered(gateway, &[path.to_owned()], load.accepted)
        .await?;
    let usage = gateway.usage()?;
    let got = ctx.receiver.report(path);
    Ok(Flow {
        delivered: got.delivered,
        duplicates: got.duplicates,
        complete,
        delivered_per_sec: rate_since(got.delivered, load.started, got.last),
        end_to_end: got.latency,
        cpu_secs_per_1000: per_1000(usage.cpu_secs - before.cpu_secs, load.accepted),
        usage,
        load,
    })
}

/// `n` per second from `start` to `end`.
pub fn rate_since(n: u64, start: Option<Instant>, end: Option<Instant>) -> f64 {
    match (start, end) {
        (Some(s), Some(e)) => load::per_sec(n, e.saturating_duration_since(s).as_secs_f64()),
        _ => 0.0,
    }
}

fn per_1000(secs: f64, events: u64) -> f64 {
    if events == 0 {
        0.0
    } else {
        secs * 1000.0 / events as f64
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
