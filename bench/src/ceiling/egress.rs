//! Ceiling (c): delivery without a gateway. Raw reqwest posts of the body
//! Carillon delivered (the first one the receiver kept) to the same
//! receiver, 64 in flight, for the ceiling duration.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;

use crate::latency::Latency;
use crate::load;
use crate::marker;
use crate::scenario::Context;

/// Requests in flight.
pub const IN_FLIGHT: usize = 64;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Egress {
    /// Posts answered 200.
    pub delivered: u64,
    /// Posts that failed or got another status.
    pub failed: u64,
    /// `delivered` per second.
    pub per_sec: f64,
    /// Post → answer.
    pub latency: Latency,
    /// The body's size.
    pub body_bytes: usize,
    /// Where the body came from: a Carillon delivery, or a bare event
    /// when no scenario delivered anything before.
    pub body_from: &'static str,
}

/// Runs it.
pub async fn measure(ctx: &Context) -> anyhow::Result<Egress> {
    let (body, body_from) = match ctx.receiver.sample_body() {
        Some(b) => (b, "a body Carillon delivered in this run"),
        None => (
            load::event(0, marker::now_unix_nanos()).into_bytes(),
            "a bench event (no delivery to copy)",
        ),
    };
    let url = ctx.receiver.url("/ceiling/egress");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(IN_FLIGHT)
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(ctx.sizes.ceiling_secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.spawn(async move {
            let (mut ok, mut failed, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < deadline {
                let t = Instant::now();
                let answer = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let delivered = match answer {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if delivered {
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
        let (ok, bad, l) = done.context("an egress task failed")?;
        delivered += ok;
        failed += bad;
        lat.extend(l);
    }
    Ok(Egress {
        delivered,
        failed,
        per_sec: load::per_sec(delivered, started.elapsed().as_secs_f64()),
        latency: Latency::of(&mut lat),
        body_bytes: body.len(),
        body_from,
    })
}
