//! Ceiling (d): the plugin call every delivery makes. The built-in webhook
//! plugin rendering a typical message in a fresh sandbox, through
//! `carillon::plugin::workload` (the workload of the `plugin_call` benchmark),
//! from as many concurrent callers as there are cores.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use carillon::plugin::workload::RenderWorkload;
use carillon::plugin::{Runtime, RuntimeConfig};
use serde::Serialize;

use crate::latency::Latency;
use crate::load;
use crate::scenario::Context;

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Sandbox {
    /// Concurrent callers.
    pub callers: usize,
    /// Calls completed.
    pub calls: u64,
    /// Calls per second, all callers together.
    pub per_sec: f64,
    /// One call's duration.
    pub latency: Latency,
}

/// Runs it.
pub async fn measure(ctx: &Context) -> anyhow::Result<Sandbox> {
    let callers = std::thread::available_parallelism().map_or(2, usize::from);
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 16,
        ..RuntimeConfig::default()
    })
    .context("cannot start the plugin runtime")?;
    let wasm = carillon_builtin::builtin("carillon-plugin-webhook")
        .ok_or_else(|| anyhow!("the webhook plugin is not built in"))?;
    let probe = Arc::new(
        RenderWorkload::webhook(&runtime, wasm.to_vec())
            .await
            .context("cannot load the webhook plugin")?,
    );
    // Warm up: the first calls fault in the instance pool.
    for _ in 0..50 {
        probe
            .render(&runtime)
            .await?
            .map_err(|e| anyhow!("render refused: {e:?}"))?;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(ctx.sizes.ceiling_secs);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (runtime, probe) = (runtime.clone(), Arc::clone(&probe));
        tasks.spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let out = probe.render(&runtime).await;
                lat.push(u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX));
                std::hint::black_box(out.map_err(|e| e.to_string())?.ok());
            }
            Ok::<_, String>(lat)
        });
    }
    let mut lat = Vec::new();
    while let Some(done) = tasks.join_next().await {
        lat.extend(
            done.context("a plugin caller failed")?
                .map_err(|e| anyhow!("plugin call failed: {e}"))?,
        );
    }
    let calls = lat.len() as u64;
    Ok(Sandbox {
        callers,
        calls,
        per_sec: load::per_sec(calls, started.elapsed().as_secs_f64()),
        latency: Latency::of(&mut lat),
    })
}
