//! The sections that stand alone: `[server]`, `[runtime]`, `[egress]`,
//! `[dispatch]`, `[channels]` and `[outbox]`, one function each. (`[auth]`
//! and `[destinations]` have their own files; `[render]`, `[templates]`
//! and `[[routes]]` are checked by `render` and `route`.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::raw::{RawChannel, RawDispatch, RawEgress, RawOutbox, RawRetry, RawRuntime, RawServer};
use super::secret::Resolver;
use super::{DispatchSettings, OutboxSettings, RuntimeSettings, Server};
use crate::dispatch::retry::RetryPolicy;
use crate::egress::EgressPolicy;
use crate::plugin::Limits;
use crate::problem::{Findings, KeyPath};

/// Checks `[server]` and builds it. An address that does not parse is a
/// problem; the server built then listens on the default address, so the
/// later checks can run (a config with problems never serves).
pub(super) fn server(raw: &RawServer, f: &mut Findings) -> Server {
    let p = KeyPath::root().key("server");
    let listen = match raw.listen.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            f.add(
                &p.key("listen"),
                format!(
                    "{:?} is not an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::]:8080\"",
                    raw.listen
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        }
    };
    f.positive(raw.body_limit_bytes, &p.key("body_limit_bytes"));
    f.positive(raw.plugin_rescan_secs, &p.key("plugin_rescan_secs"));
    for (key, value) in raw.limit_values() {
        f.positive(value, &p.key(key));
    }
    Server {
        listen,
        data_dir: raw.data_dir.clone(),
        plugin_dir: raw.plugin_dir.clone(),
        body_limit_bytes: usize::try_from(raw.body_limit_bytes).unwrap_or(usize::MAX),
        watch_plugins: raw.watch_plugins,
        plugin_rescan: Duration::from_secs(raw.plugin_rescan_secs.max(1)),
        limits: super::ServerLimits::from_raw(raw),
        public_url: raw
            .public_url
            .as_deref()
            .and_then(|u| match url::Url::parse(u) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                    Some(url)
                }
                _ => {
                    f.add(
                        &p.key("public_url"),
                        format!("{u:?} is not an http(s) URL, e.g. \"https://alerts.example.com\""),
                    );
                    None
                }
            }),
    }
}

/// Checks `[runtime]` and builds the plugin runtime's limits.
pub(super) fn runtime(r: &RawRuntime, f: &mut Findings) -> RuntimeSettings {
    let p = KeyPath::root().key("runtime");
    f.positive(r.memory_mib, &p.key("memory_mib"));
    if r.memory_mib > 4096 {
        f.add(
            &p.key("memory_mib"),
            "must be at most 4096 (a 32-bit WebAssembly memory is at most 4 GiB)",
        );
    }
    f.positive(r.cpu_time_ms, &p.key("cpu_time_ms"));
    f.positive(r.wall_time_ms, &p.key("wall_time_ms"));
    f.positive(r.max_output_bytes, &p.key("max_output_bytes"));
    f.positive(
        u64::from(r.max_concurrent_calls),
        &p.key("max_concurrent_calls"),
    );
    RuntimeSettings {
        limits: Limits {
            memory_bytes: usize::try_from(r.memory_mib.min(4096) << 20).unwrap_or(usize::MAX),
            cpu_time: Duration::from_millis(r.cpu_time_ms),
            wall_time: Duration::from_millis(r.wall_time_ms),
            max_output_bytes: usize::try_from(r.max_output_bytes).unwrap_or(usize::MAX),
            max_log_lines: r.max_log_lines,
        },
        max_concurrent_calls: r.max_concurrent_calls,
    }
}

/// Builds `[egress]`: the policy, and the PEM texts of `smtp_ca_files`
/// (read relative to the config file's directory).
pub(super) fn egress(
    raw: &RawEgress,
    resolver: &Resolver<'_>,
    f: &mut Findings,
) -> (EgressPolicy, Vec<String>) {
    let egress = EgressPolicy::allowing(raw.allow_private.iter().map(|n| n.0));
    let mut smtp_roots_pem = Vec::new();
    for (i, file) in raw.smtp_ca_files.iter().enumerate() {
        let at = KeyPath::root().key("egress").key("smtp_ca_files").index(i);
        let path = resolver.base_dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => smtp_roots_pem.push(pem),
            Ok(_) => f.add(&at, format!("{} holds no PEM certificate", path.display())),
            Err(e) => f.add(&at, format!("cannot read {}: {e}", path.display())),
        }
    }
    (egress, smtp_roots_pem)
}

/// Checks `[dispatch]` and builds it (whether `global_fallback` names a
/// destination is a reference, checked in `references.rs`).
pub(super) fn dispatch(d: &RawDispatch, f: &mut Findings) -> DispatchSettings {
    let p = KeyPath::root().key("dispatch");
    f.positive(u64::from(d.workers), &p.key("workers"));
    DispatchSettings {
        workers: d.workers as usize,
        retry: retry(&d.retry, &p.key("retry"), f),
        global_fallback: d.global_fallback.clone(),
    }
}

/// Checks a retry schedule at `rp` (`[dispatch.retry]`, or a destination's
/// own merged over it) and builds it.
pub(super) fn retry(r: &RawRetry, rp: &KeyPath, f: &mut Findings) -> RetryPolicy {
    f.positive(r.base_secs, &rp.key("base_secs"));
    if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
        f.add(&rp.key("multiplier"), "must be a number at least 1.0");
    }
    if r.cap_secs < r.min_delay_secs {
        f.add(&rp.key("cap_secs"), "must be at least min_delay_secs");
    }
    f.positive(u64::from(r.max_attempts), &rp.key("max_attempts"));
    f.positive(r.max_age_secs, &rp.key("max_age_secs"));
    RetryPolicy {
        base: Duration::from_secs(r.base_secs),
        multiplier: r.multiplier,
        cap: Duration::from_secs(r.cap_secs),
        min_delay: Duration::from_secs(r.min_delay_secs),
        max_attempts: r.max_attempts,
        max_age: Duration::from_secs(r.max_age_secs),
    }
}

/// Checks `[channels]`: which are switched on, and the pins (a SHA-256 in
/// hex, lower-cased).
pub(super) fn channels(
    raw: &BTreeMap<String, RawChannel>,
    f: &mut Findings,
) -> (BTreeMap<String, bool>, BTreeMap<String, String>) {
    let channels = raw.iter().map(|(k, v)| (k.clone(), v.enabled)).collect();
    let mut pins = BTreeMap::new();
    for (name, channel) in raw {
        let Some(sha) = &channel.sha256 else { continue };
        let sha = sha.trim().to_ascii_lowercase();
        if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            pins.insert(name.clone(), sha);
        } else {
            f.add(
                &KeyPath::root().key("channels").key(name.as_str()).key("sha256"),
                "must be a SHA-256 in hex (64 characters), as `sha256sum` prints it or `GET /v1/plugins` shows it",
            );
        }
    }
    (channels, pins)
}

/// Checks `[outbox]` and builds it.
pub(super) fn outbox(o: &RawOutbox, f: &mut Findings) -> OutboxSettings {
    let p = KeyPath::root().key("outbox");
    f.positive(o.max_pending, &p.key("max_pending"));
    f.positive(o.idempotency_window_secs, &p.key("idempotency_window_secs"));
    f.positive(o.cache_mib, &p.key("cache_mib"));
    f.positive(o.max_unrouted, &p.key("max_unrouted"));
    // The idempotency index is rebuilt at start-up from the stored events:
    // a purge that drops an event inside the window would forget its key.
    if o.delivered_retention_secs < o.idempotency_window_secs {
        f.add(
            &p.key("delivered_retention_secs"),
            format!(
                "is {} but must be at least outbox.idempotency_window_secs ({}): \
                 idempotency keys are remembered through the events they accepted",
                o.delivered_retention_secs, o.idempotency_window_secs
            ),
        );
    }
    if o.unrouted_retention_secs < o.idempotency_window_secs {
        f.add(
            &p.key("unrouted_retention_secs"),
            format!(
                "is {} but must be at least outbox.idempotency_window_secs ({}): \
                 idempotency keys are remembered through the events they accepted",
                o.unrouted_retention_secs, o.idempotency_window_secs
            ),
        );
    }
    OutboxSettings {
        max_pending: o.max_pending,
        idempotency_window: Duration::from_secs(o.idempotency_window_secs),
        delivered_retention: Duration::from_secs(o.delivered_retention_secs),
        max_unrouted: o.max_unrouted,
        unrouted_retention: Duration::from_secs(o.unrouted_retention_secs),
        min_free_bytes: o.min_free_mib.saturating_mul(1 << 20),
        cache_bytes: o.cache_mib.saturating_mul(1 << 20),
    }
}
