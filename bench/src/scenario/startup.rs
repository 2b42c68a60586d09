//! `startup`: time from spawning `carillon serve` to `/readyz` answering
//! 200, with one destination per built-in channel (six plugins). Cold: an
//! empty data directory, so every plugin is compiled; warm: the same
//! directory started again, so the compiled plugins come from the cache.

use serde::Serialize;
use serde_json::json;

use super::Context;
use crate::driver::{Destination, Gateway, Setup};
use crate::usage::Usage;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Startup {
    /// Destinations configured.
    pub destinations: usize,
    /// Spawn → ready with an empty plugin cache.
    pub cold_ms: f64,
    /// Spawn → ready again on the same data directory.
    pub warm_ms: f64,
    /// The warm gateway once ready.
    pub warm_usage: Usage,
}

/// Runs it.
pub async fn startup(ctx: &Context) -> anyhow::Result<Startup> {
    let url = |channel: &str, query: &str| ctx.receiver.url(&format!("/startup/{channel}{query}"));
    let destination = |plugin: &str, config: serde_json::Value| {
        (
            plugin.to_owned(),
            Destination {
                plugin: plugin.to_owned(),
                concurrency: None,
                config,
            },
        )
    };
    let setup = Setup {
        destinations: [
            destination("webhook", json!({ "url": url("webhook", "") })),
            destination(
                "dingtalk",
                json!({ "webhook": url("dingtalk", "?access_token=bench") }),
            ),
            destination("lark", json!({ "webhook": url("lark", "") })),
            destination("wecom", json!({ "webhook": url("wecom", "?key=bench") })),
            destination("teams", json!({ "webhook": url("teams", "") })),
            destination(
                "email",
                json!({
                    "server": { "host": "127.0.0.1", "port": 2525, "security": "none" },
                    "from": "bench@example.com",
                    "to": ["oncall@example.com"],
                }),
            ),
        ]
        .into(),
        ..Setup::default()
    };
    // Not `ctx.gateway`: this one must start without a seeded cache.
    let dir = ctx.work.join("startup");
    let cold = Gateway::start(&ctx.carillon, &dir, &setup).await?;
    let cold_ms = cold.ready_after.as_secs_f64() * 1e3;
    ctx.keep_cache(&cold)?;
    cold.stop().await?;
    let warm = Gateway::start(&ctx.carillon, &dir, &setup).await?;
    let warm_usage = warm.usage()?;
    let warm_ms = warm.ready_after.as_secs_f64() * 1e3;
    warm.stop().await?;
    Ok(Startup {
        destinations: setup.destinations.len(),
        cold_ms,
        warm_ms,
        warm_usage,
    })
}
