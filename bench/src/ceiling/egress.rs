//! Ceiling (c): delivery without a gateway. Raw reqwest posts of the body
//! Carillon delivered (the first one the receiver kept) to the same
//! receiver, 64 in flight, for the ceiling duration.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Tally, closed_loop};
use crate::load;
use crate::marker;
use crate::scenario::Context;

/// Requests in flight.
pub const IN_FLIGHT: usize = 64;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Egress {
    /// Posts answered 200 (`delivered`), those that failed or got another
    /// status, the rate and post → answer; flat in the report's JSON.
    #[serde(flatten)]
    pub posts: Tally,
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
    let bytes = body.len();
    let call = move || {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        async move {
            match client
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
            {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    };
    Ok(Egress {
        posts: closed_loop(IN_FLIGHT, ctx.sizes.ceiling_secs, call).await?,
        body_bytes: bytes,
        body_from,
    })
}
