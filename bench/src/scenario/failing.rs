//! `failing`: every event goes to N webhook destinations. Run twice with
//! the same load: once all healthy (the baseline), once with the last
//! destination answering 500 to everything. Isolation holds when each
//! healthy destination's throughput is the same in both runs.

use std::time::Duration;

use serde::Serialize;

use super::{Context, rate_since};
use crate::driver::Setup;
use crate::latency::Latency;
use crate::load::{self, LoadReport, Until};
use crate::receiver::Behaviour;
use crate::usage::Usage;

/// One destination's deliveries in one run.
#[derive(Debug, Clone, Serialize)]
pub struct DestinationRate {
    /// The destination's name.
    pub name: String,
    /// Distinct events delivered.
    pub delivered: u64,
    /// `delivered` ÷ (last arrival − first send).
    pub per_sec: f64,
    /// Send → arrival.
    pub end_to_end: Latency,
}

/// One of the two runs.
#[derive(Debug, Clone, Serialize)]
pub struct FailingRun {
    /// What the load generator saw.
    pub load: LoadReport,
    /// The destination answering 500, if any.
    pub failing: Option<String>,
    /// Every destination, the failing one last.
    pub destinations: Vec<DestinationRate>,
    /// Whether every healthy destination got every accepted event.
    pub complete: bool,
    /// The gateway at the end.
    pub usage: Usage,
}

/// Both runs.
#[derive(Debug, Clone, Serialize)]
pub struct Failing {
    /// All healthy.
    pub baseline: FailingRun,
    /// The last destination failing.
    pub with_failure: FailingRun,
}

/// Runs it.
pub async fn failing(ctx: &Context) -> anyhow::Result<Failing> {
    Ok(Failing {
        baseline: run(ctx, "baseline", false).await?,
        with_failure: run(ctx, "one-failing", true).await?,
    })
}

async fn run(ctx: &Context, label: &str, fail_last: bool) -> anyhow::Result<FailingRun> {
    let n = ctx.sizes.failing_destinations.max(2);
    let names: Vec<String> = (0..n).map(|i| format!("d{i:02}")).collect();
    let path = |name: &str| format!("/failing-{label}/{name}");
    let failing = fail_last.then(|| names[n - 1].clone());
    if let Some(name) = &failing {
        ctx.receiver.set(&path(name), Behaviour::Fail);
    }
    let setup = Setup {
        destinations: names
            .iter()
            .map(|name| (name.clone(), ctx.webhook(&path(name))))
            .collect(),
        ..Setup::default()
    };
    let mut gateway = ctx.gateway(&format!("failing-{label}"), &setup).await?;
    let until = Until::Elapsed(Duration::from_secs_f64(ctx.sizes.failing_secs));
    let load = load::run(&gateway.ingest(), ctx.sizes.connections, until).await?;
    let healthy: Vec<String> = names
        .iter()
        .filter(|name| Some(*name) != failing.as_ref())
        .map(|name| path(name))
        .collect();
    let complete = ctx
        .wait_delivered(&mut gateway, &healthy, load.accepted)
        .await?;
    let usage = gateway.usage()?;
    let destinations = names
        .iter()
        .map(|name| {
            let got = ctx.receiver.report(&path(name));
            DestinationRate {
                name: name.clone(),
                delivered: got.delivered,
                per_sec: rate_since(got.delivered, load.started, got.last),
                end_to_end: got.latency,
            }
        })
        .collect();
    gateway.stop().await?;
    Ok(FailingRun {
        load,
        failing,
        destinations,
        complete,
        usage,
    })
}
