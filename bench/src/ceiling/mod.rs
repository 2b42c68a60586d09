//! Ceilings: the same work without Carillon's logic, measured in the same
//! run on the same machine, so each Carillon figure can be read as a
//! fraction of what the machine allows for that step (raw figures move
//! between runs on a shared machine; ratios move much less).
//!
//! - [`ingest`]: the fastest possible "parse the event, answer 202" server;
//! - [`storage`]: durable enqueues with group commit, and bare sled;
//! - [`egress`]: raw HTTP posts of a delivered body to the same receiver;
//! - [`sandbox`]: one fresh-sandbox plugin call;
//! - [`deliver`]: the plugin's whole delivery (sandbox and HTTP), no outbox.

pub mod deliver;
pub mod egress;
pub mod ingest;
pub mod sandbox;
pub mod storage;

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::latency::Latency;
use crate::load::{self, LoadReport};
use crate::scenario::Context;

/// Every ceiling that could be measured, and why the others could not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ceilings {
    /// (a) The minimal ingest server under the same load.
    pub ingest: Option<LoadReport>,
    /// (b) Storage.
    pub storage: Option<storage::Storage>,
    /// (c) Raw HTTP delivery.
    pub egress: Option<egress::Egress>,
    /// (d) One plugin call.
    pub sandbox: Option<sandbox::Sandbox>,
    /// (e) Plugin deliveries without the outbox.
    pub deliver: Option<Tally>,
    /// Ceilings that failed, with the reason.
    pub failures: Vec<String>,
}

/// Measures all five, one after the other; a ceiling that fails is
/// recorded, not fatal.
pub async fn measure(ctx: &Context) -> Ceilings {
    let mut c = Ceilings::default();
    let fail = |what: &str, e: anyhow::Error| format!("ceiling {what} failed: {e:#}");
    match ingest::measure(ctx).await {
        Ok(r) => c.ingest = Some(r),
        Err(e) => c.failures.push(fail("ingest", e)),
    }
    match storage::measure(ctx).await {
        Ok(r) => c.storage = Some(r),
        Err(e) => c.failures.push(fail("storage", e)),
    }
    match egress::measure(ctx).await {
        Ok(r) => c.egress = Some(r),
        Err(e) => c.failures.push(fail("egress", e)),
    }
    match sandbox::measure(ctx).await {
        Ok(r) => c.sandbox = Some(r),
        Err(e) => c.failures.push(fail("sandbox", e)),
    }
    match deliver::measure(ctx).await {
        Ok(r) => c.deliver = Some(r),
        Err(e) => c.failures.push(fail("deliver", e)),
    }
    c
}

/// What a closed loop of calls achieved.
#[derive(Debug, Clone, Serialize)]
pub struct Tally {
    /// Calls that succeeded.
    pub delivered: u64,
    /// Calls that failed.
    pub failed: u64,
    /// `delivered` per second.
    pub per_sec: f64,
    /// One successful call's duration.
    pub latency: Latency,
}

/// Runs `in_flight` loops of `call` (true = success) for `secs`.
pub async fn closed_loop<F, Fut>(in_flight: usize, secs: f64, call: F) -> anyhow::Result<Tally>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let call = call.clone();
        tasks.spawn(async move {
            let (mut ok, mut failed, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                if call().await {
                    ok += 1;
                    lat.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                } else {
                    failed += 1;
                }
            }
            (ok, failed, lat)
        });
    }
    let (mut delivered, mut failed, mut lat) = (0, 0, Vec::new());
    while let Some(done) = tasks.join_next().await {
        let (ok, bad, l) = done.context("a calling task failed")?;
        delivered += ok;
        failed += bad;
        lat.extend(l);
    }
    Ok(Tally {
        delivered,
        failed,
        per_sec: load::per_sec(delivered, started.elapsed().as_secs_f64()),
        latency: Latency::of(&mut lat),
    })
}
