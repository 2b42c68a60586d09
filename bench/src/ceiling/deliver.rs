//! Ceiling (e): the plugin's side of a delivery without the outbox or the
//! dispatcher. The built-in webhook plugin's `deliver` in a fresh sandbox,
//! posting through the host's `http` import to the same receiver, from
//! [`IN_FLIGHT`] concurrent callers. Between (c), raw HTTP, and a drain, it
//! tells the sandbox's share of a delivery from the queue's.

use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use carillon::egress::EgressPolicy;
use carillon::plugin::workload::RenderWorkload;
use carillon::plugin::{Destination, Runtime, RuntimeConfig};

use super::egress::IN_FLIGHT;
use super::{Tally, closed_loop};
use crate::scenario::Context;

/// Runs it.
pub async fn measure(ctx: &Context) -> anyhow::Result<Tally> {
    let runtime = Runtime::new(RuntimeConfig {
        // As many calls at once as there are callers.
        max_concurrent_calls: u32::try_from(IN_FLIGHT).unwrap_or(u32::MAX),
        egress: EgressPolicy::allowing(["127.0.0.1/32".parse().context("loopback network")?]),
        ..RuntimeConfig::default()
    })
    .context("cannot start the plugin runtime")?;
    let wasm = carillon_builtin::builtin("carillon-plugin-webhook")
        .ok_or_else(|| anyhow!("the webhook plugin is not built in"))?;
    let probe = RenderWorkload::webhook(&runtime, wasm.to_vec())
        .await
        .context("cannot load the webhook plugin")?;
    // The backlog's destination: the receiver's URL, no signing secret.
    let destination = runtime.destination(
        &probe.plugin,
        "ceiling",
        serde_json::json!({ "url": ctx.receiver.url("/ceiling/deliver") }),
        &[],
    );
    let shared: Arc<(Runtime, RenderWorkload, Destination)> =
        Arc::new((runtime, probe, destination));
    let call = move || {
        let shared = shared.clone();
        async move {
            let (runtime, p, destination) = &*shared;
            matches!(
                runtime
                    .deliver(&p.plugin, destination, &p.context, &p.message)
                    .await,
                Ok(Ok(_))
            )
        }
    };
    // Warm up: the instance pool and the connection pool.
    for _ in 0..50 {
        if !call().await {
            bail!("a warm-up delivery failed");
        }
    }
    closed_loop(IN_FLIGHT, ctx.sizes.ceiling_secs, call).await
}
