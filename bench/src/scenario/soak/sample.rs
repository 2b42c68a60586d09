//! One minute of the soak as numbers: what the gateway holds (memory, file
//! descriptors, memory maps, disk, queue) read from outside (`/proc`, the
//! data directory, `/metrics`), and what the receiver got in the window.

use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::driver::{ADMIN_TOKEN, Gateway, disk_usage};
use crate::latency::Latency;

/// One reading, at the end of its window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Seconds since the load started (0: before it).
    pub at_secs: f64,
    /// Resident memory (`VmRSS`).
    pub rss_bytes: u64,
    /// Open file descriptors (entries of `/proc/PID/fd`).
    pub fds: u64,
    /// Memory mappings (lines of `/proc/PID/maps`): compiled plugin builds
    /// that are never unmapped show here first.
    pub maps: u64,
    /// Bytes on disk of the whole data directory (outbox and plugin cache).
    pub data_dir_bytes: u64,
    /// … of `data/outbox` alone.
    pub outbox_bytes: u64,
    /// Gateway CPU (user + system) in the window ÷ the window, in percent
    /// of one core.
    pub cpu_percent: f64,
    /// Events answered 202 in the window, per second.
    pub accepted_per_sec: f64,
    /// Distinct events first delivered in the window, per second.
    pub delivered_per_sec: f64,
    /// Accepted → delivered of those events (send time to arrival).
    pub latency: Latency,
    /// Deliveries not yet done (pending, claimed, scheduled), from
    /// `carillon_outbox_deliveries`.
    pub backlog: u64,
    /// Dead letters in the outbox.
    pub dead_letters: u64,
    /// Deliveries that arrived again, since the start.
    pub duplicates: u64,
    /// Plugin reloads done since the start.
    pub reloads: u64,
}

/// The parts of a sample read from the gateway itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Held {
    pub rss_bytes: u64,
    pub fds: u64,
    pub maps: u64,
    pub cpu_secs: f64,
    pub data_dir_bytes: u64,
    pub outbox_bytes: u64,
    pub backlog: u64,
    pub dead_letters: u64,
}

/// Reads what `gateway` holds now.
pub async fn held(gateway: &Gateway, http: &reqwest::Client) -> anyhow::Result<Held> {
    let pid = gateway.pid();
    let usage = gateway.usage()?;
    let data = gateway.dir().join("data");
    let metrics = http
        .get(gateway.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("GET /metrics")?
        .text()
        .await
        .context("GET /metrics")?;
    let depth = |state: &str| outbox_depth(&metrics, state).unwrap_or(0);
    Ok(Held {
        rss_bytes: usage.rss_bytes,
        fds: count_entries(&Path::new("/proc").join(pid.to_string()).join("fd")),
        maps: std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_or(0, |m| m.lines().count() as u64),
        cpu_secs: usage.cpu_secs,
        data_dir_bytes: disk_usage(&data),
        outbox_bytes: disk_usage(&data.join("outbox")),
        backlog: depth("pending") + depth("claimed") + depth("scheduled"),
        dead_letters: depth("dead"),
    })
}

fn count_entries(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |d| d.count() as u64)
}

/// `carillon_outbox_deliveries{state="STATE"} N` in a Prometheus text
/// exposition.
fn outbox_depth(metrics: &str, state: &str) -> Option<u64> {
    let key = format!("carillon_outbox_deliveries{{state=\"{state}\"}}");
    metrics.lines().find_map(|l| {
        let value = l.strip_prefix(&key)?.trim();
        // Gauges are integers; tolerate a float rendering.
        value
            .parse::<u64>()
            .ok()
            .or_else(|| value.parse::<f64>().ok().map(|v| v.max(0.0) as u64))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_depth_by_state() {
        let text = "# HELP x\ncarillon_outbox_deliveries{state=\"pending\"} 12\n\
                    carillon_outbox_deliveries{state=\"dead\"} 3\n";
        assert_eq!(outbox_depth(text, "pending"), Some(12));
        assert_eq!(outbox_depth(text, "dead"), Some(3));
        assert_eq!(outbox_depth(text, "claimed"), None);
        assert!(count_entries(Path::new("/proc/self/fd")) > 0);
    }
}
