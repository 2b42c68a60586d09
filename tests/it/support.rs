//! Shared setup: runtimes with test-sized limits, loading the real `.wasm`
//! files built by `carillon-builtin`, sample messages.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carillon::egress::EgressPolicy;
use carillon::message::{Message, Severity};
use carillon::plugin::types::DeliveryContext;
use carillon::plugin::{Limits, Plugin, Runtime, RuntimeConfig};

/// A runtime whose egress policy allows exactly `allow` (e.g. 127.0.0.1/32).
pub fn runtime(allow: &[&str]) -> Runtime {
    runtime_with(
        allow,
        Limits {
            memory_bytes: 32 << 20,
            cpu_time: Duration::from_millis(500),
            wall_time: Duration::from_secs(3),
            max_output_bytes: 1 << 20,
            max_log_lines: 100,
        },
    )
}

/// Like [`runtime`], with explicit limits.
pub fn runtime_with(allow: &[&str], limits: Limits) -> Runtime {
    let policy = EgressPolicy::allowing(allow.iter().map(|n| n.parse().expect("test network")));
    Runtime::new(RuntimeConfig {
        limits,
        max_concurrent_calls: 8,
        cache_dir: Some(cache_dir()),
        egress: policy,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// One artifact cache shared by every test process on the machine, so each
/// plugin build is compiled once rather than once per test or per run (the
/// cache writes atomically and keys entries by content and engine hash, so
/// concurrent processes are safe; a per-process directory would leave
/// hundreds of megabytes behind per run).
pub fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("carillon-test-cache")
}

/// The bytes of the plugin built from `crate_name`.
pub fn wasm(crate_name: &str) -> Vec<u8> {
    let path =
        carillon_builtin::path(crate_name).unwrap_or_else(|| panic!("no plugin {crate_name}"));
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Loads the plugin built from `crate_name`.
pub async fn load(runtime: &Runtime, crate_name: &str) -> Arc<Plugin> {
    runtime
        .load(wasm(crate_name))
        .await
        .unwrap_or_else(|e| panic!("load {crate_name}: {e}"))
}

/// A context for attempt 1, now.
pub fn context(delivery_id: &str) -> DeliveryContext {
    DeliveryContext {
        delivery_id: delivery_id.to_owned(),
        event_id: "evt_1".to_owned(),
        attempt: 1,
        now_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
    }
}

/// A typical message.
pub fn message(title: &str) -> Message {
    Message {
        title: title.to_owned(),
        markdown: "Task **orders_daily** failed after 3 retries.".to_owned(),
        text: "Task orders_daily failed after 3 retries.".to_owned(),
        severity: Severity::Error,
        locale: "en".to_owned(),
        ..Message::sample()
    }
}
