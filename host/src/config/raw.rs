//! The file as written: serde types for `carillon.toml`, with
//! `deny_unknown_fields` everywhere and the documented defaults.
//!
//! These types check shapes and the values serde can check with a good error
//! (host patterns, networks, severities), so a typo fails
//! with its key and line. Everything that needs the whole file (references
//! between sections, listen addresses, regexes) is checked in `validate`.
//! The defaults here must match `defaults.toml`; a test compares them.
//!
//! The shapes of `[[routes]]`, `[render]` and `[templates]` are defined
//! with the modules that give them meaning (`route`, `render`) and
//! re-exported here, so the whole file's syntax is still read from one place.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::access::Role;
use crate::egress::HostPattern;
pub use crate::render::{RawRender, RawTemplate, RawTemplateText};
pub use crate::route::{OneOrMany, RawCondition, RawMatch, RawRoute};

/// A value parsed from a string with its `FromStr`, so its error message is
/// reported at the value's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed<T>(pub T);

impl<'de, T> Deserialize<'de> for Parsed<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(Parsed).map_err(de::Error::custom)
    }
}

/// A secret as written (a literal or a `${…}` reference), not yet read;
/// its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretText(<redacted>)")
    }
}

/// `[server]`: where the gateway listens and keeps its files.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    /// `address:port` to listen on.
    pub listen: String,
    /// Outbox, plugin cache and generated tokens.
    pub data_dir: PathBuf,
    /// Where `.wasm` plugins are loaded from (in addition to the built-in ones).
    pub plugin_dir: PathBuf,
    /// Largest request body the API accepts.
    pub body_limit_bytes: u64,
    /// Watch `plugin_dir` and hot-reload added, changed and removed files.
    pub watch_plugins: bool,
    /// How often `plugin_dir` is rescanned besides the change notifications.
    pub plugin_rescan_secs: u64,
    /// Most alerts one Alertmanager request may hold.
    pub alertmanager_max_alerts: u64,
    /// The events of one Alertmanager request may be this many times its size.
    pub alertmanager_max_expansion: u64,
    /// Time allowed for a request's head (line and headers).
    pub header_timeout_secs: u64,
    /// Time allowed for a request's body, once a handler reads it.
    pub body_timeout_secs: u64,
    /// A kept-alive connection with no request for this long is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: u64,
    /// On shutdown, how long open requests may take before their
    /// connections are closed.
    pub shutdown_grace_secs: u64,
    /// The gateway's address as people reach it (`https://alerts.example.com`),
    /// for the links it sends (contact activation); absent: `http://LISTEN`.
    pub public_url: Option<String>,
}

impl RawServer {
    /// The limits (issue 28's keys), each of which must be positive.
    pub fn limit_values(&self) -> [(&'static str, u64); 7] {
        [
            ("alertmanager_max_alerts", self.alertmanager_max_alerts),
            (
                "alertmanager_max_expansion",
                self.alertmanager_max_expansion,
            ),
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("max_connections", self.max_connections),
            ("shutdown_grace_secs", self.shutdown_grace_secs),
        ]
    }
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            data_dir: "./data".into(),
            plugin_dir: "./plugins".into(),
            body_limit_bytes: 1 << 20,
            watch_plugins: true,
            plugin_rescan_secs: 30,
            alertmanager_max_alerts: 1000,
            alertmanager_max_expansion: 16,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 512,
            shutdown_grace_secs: 10,
            public_url: None,
        }
    }
}

/// `[auth]`: the admin token, the ingest tokens and the general token list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// The instance admin's token (a literal or a `${…}` reference, read
    /// as a [`SecretSource`] in validation so every token's problem shows).
    pub admin_token: Option<SecretText>,
    /// The SHA-256 (hex) of the instance admin's token, instead of the token.
    pub admin_token_sha256: Option<String>,
    /// `[[auth.ingest]]`: tokens applications post events with.
    pub ingest: Vec<RawIngest>,
    /// `[[auth.tokens]]`: tokens of any role.
    pub tokens: Vec<RawToken>,
}

/// One `[[auth.ingest]]` token (role `ingest`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    /// A name for logs and metrics (never the token).
    pub name: String,
    /// The token (a literal or a `${…}` reference).
    pub token: Option<SecretText>,
    /// The SHA-256 (hex) of the token, instead of the token.
    pub token_sha256: Option<String>,
    /// The workspace its events are routed in; absent: `default`.
    pub workspace: Option<String>,
    /// Event-type globs this token may post; absent: any.
    pub event_types: Option<Vec<String>>,
    /// Destinations this token's events may reach; absent: any.
    pub destinations: Option<Vec<String>>,
}

/// One `[[auth.tokens]]` entry: a token of any role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// A name for logs and metrics (never the token).
    pub name: String,
    /// `instance-admin`, `workspace-admin`, `operator`, `viewer` or `ingest`.
    pub role: Parsed<Role>,
    /// The workspace it acts in; absent: `default` (none for `instance-admin`).
    pub workspace: Option<String>,
    /// The token (a literal or a `${…}` reference).
    pub token: Option<SecretText>,
    /// The SHA-256 (hex) of the token, instead of the token.
    pub token_sha256: Option<String>,
    /// `ingest` only: event-type globs it may post; absent: any.
    pub event_types: Option<Vec<String>>,
    /// `ingest` only: destinations its events may reach; absent: any.
    pub destinations: Option<Vec<String>>,
}

/// `[workspaces.NAME]`: a workspace and its channel settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWorkspace {
    /// `inherit` (the instance's channel types) or `custom`
    /// (`enabled_channels` only).
    pub channels: Option<String>,
    /// With `channels = "custom"`: the channel types (plugin names) this
    /// workspace may use.
    pub enabled_channels: Option<Vec<String>>,
}

/// `[runtime]`: per-call plugin limits and the instance pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRuntime {
    /// Linear memory per call, in MiB.
    pub memory_mib: u64,
    /// CPU time per call running wasm, in milliseconds.
    pub cpu_time_ms: u64,
    /// Wall-clock time per call, host calls included, in milliseconds.
    pub wall_time_ms: u64,
    /// Largest rendered payload, in bytes.
    pub max_output_bytes: u64,
    /// Log lines per call.
    pub max_log_lines: u32,
    /// Plugin calls running at once.
    pub max_concurrent_calls: u32,
}

impl Default for RawRuntime {
    fn default() -> Self {
        RawRuntime {
            memory_mib: 64,
            cpu_time_ms: 10_000,
            wall_time_ms: 30_000,
            max_output_bytes: 4 << 20,
            max_log_lines: 100,
            max_concurrent_calls: 128,
        }
    }
}

/// `[egress]`: networks plugins may reach although they are not public.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawEgress {
    /// E.g. `["127.0.0.1/32"]` for a receiver on this machine.
    pub allow_private: Vec<Parsed<IpNet>>,
    /// PEM files of extra root certificates trusted for SMTP TLS (a company
    /// CA); relative to the config file's directory.
    pub smtp_ca_files: Vec<PathBuf>,
}

/// `[dispatch]`: workers, the retry schedule, the global fallback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawDispatch {
    /// Deliveries running at once.
    pub workers: u32,
    /// Destination that dead deliveries go to when their own fallbacks fail.
    pub global_fallback: Option<String>,
    /// `[dispatch.retry]`.
    pub retry: RawRetry,
}

impl Default for RawDispatch {
    fn default() -> Self {
        RawDispatch {
            workers: 64,
            global_fallback: None,
            retry: RawRetry::default(),
        }
    }
}

/// `[dispatch.retry]`: exponential backoff with full jitter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawRetry {
    /// Ceiling of the first retry, in seconds.
    pub base_secs: u64,
    /// Growth per attempt.
    pub multiplier: f64,
    /// Largest ceiling, in seconds.
    pub cap_secs: u64,
    /// Smallest wait, in seconds.
    pub min_delay_secs: u64,
    /// Counted attempts before dead-lettering.
    pub max_attempts: u32,
    /// Age after which a delivery is dead-lettered, in seconds.
    pub max_age_secs: u64,
}

impl Default for RawRetry {
    fn default() -> Self {
        RawRetry {
            base_secs: 5,
            multiplier: 5.0,
            cap_secs: 24 * 3600,
            min_delay_secs: 1,
            max_attempts: 12,
            max_age_secs: 48 * 3600,
        }
    }
}

/// `[destinations.NAME.retry]`: any of `[dispatch.retry]`'s keys; the
/// ones left out are `[dispatch.retry]`'s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetryOverride {
    /// Ceiling of the first retry, in seconds.
    pub base_secs: Option<u64>,
    /// Growth per attempt.
    pub multiplier: Option<f64>,
    /// Largest ceiling, in seconds.
    pub cap_secs: Option<u64>,
    /// Smallest wait, in seconds.
    pub min_delay_secs: Option<u64>,
    /// Counted attempts before dead-lettering.
    pub max_attempts: Option<u32>,
    /// Age after which a delivery is dead-lettered, in seconds.
    pub max_age_secs: Option<u64>,
}

impl RawRetryOverride {
    /// `base` with the keys this override sets replaced.
    pub fn over(&self, base: &RawRetry) -> RawRetry {
        RawRetry {
            base_secs: self.base_secs.unwrap_or(base.base_secs),
            multiplier: self.multiplier.unwrap_or(base.multiplier),
            cap_secs: self.cap_secs.unwrap_or(base.cap_secs),
            min_delay_secs: self.min_delay_secs.unwrap_or(base.min_delay_secs),
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            max_age_secs: self.max_age_secs.unwrap_or(base.max_age_secs),
        }
    }
}

/// `[channels.NAME]`: a channel type switched on or off as a whole, and
/// optionally pinned to one build of its plugin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    /// Off: every destination of this plugin holds its deliveries.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The SHA-256 (hex) of the only `.wasm` allowed to serve this plugin.
    pub sha256: Option<String>,
}

/// `[destinations.NAME]`: one place messages go.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    /// The plugin's name (its manifest name, e.g. `webhook`).
    pub plugin: String,
    /// Off: deliveries wait (they are not dropped).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Destination that dead deliveries go to next.
    pub fallback: Option<String>,
    /// Replaces the plugin's declared rate limits.
    pub rate_limit: Option<OneOrMany<RawRateLimit>>,
    /// Deliveries to this destination at once.
    pub concurrency: Option<u32>,
    /// Hosts granted in addition to the manifest's and the endpoint fields'.
    #[serde(default)]
    pub allow_hosts: Vec<Parsed<HostPattern>>,
    /// The plugin's config, checked against its JSON Schema.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// The locale messages to this destination are rendered in (`en`,
    /// `zh-CN`); absent: the event's, else `render.default_locale`.
    pub locale: Option<String>,
    /// The workspace it belongs to; absent: `default`.
    pub workspace: Option<String>,
    /// `[destinations.NAME.retry]`: this destination's own retry schedule.
    pub retry: Option<RawRetryOverride>,
}

fn yes() -> bool {
    true
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// `{ requests = 20, per_secs = 60 }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// Requests per window.
    pub requests: u32,
    /// The window, in seconds.
    pub per_secs: u64,
}

/// `[outbox]`: how much the durable queue holds and for how long.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutbox {
    /// Unfinished deliveries (pending, scheduled, in progress) before ingest
    /// answers 503 with `Retry-After`.
    pub max_pending: u64,
    /// How long an idempotency key is remembered, in seconds.
    pub idempotency_window_secs: u64,
    /// How long delivered deliveries stay visible in the API, in seconds.
    pub delivered_retention_secs: u64,
    /// Stored unrouted events (no route matched) before ingest answers 503
    /// to events that match none.
    pub max_unrouted: u64,
    /// How long unrouted events stay visible in the API, in seconds.
    pub unrouted_retention_secs: u64,
    /// Free space (MiB) kept on the data directory's file system: below
    /// it, ingest answers 503 instead of writing.
    pub min_free_mib: u64,
    /// sled's page cache, in MiB.
    pub cache_mib: u64,
}

impl Default for RawOutbox {
    fn default() -> Self {
        RawOutbox {
            max_pending: 1_000_000,
            idempotency_window_secs: 86_400,
            delivered_retention_secs: 604_800,
            max_unrouted: 1_000_000,
            unrouted_retention_secs: 86_400,
            min_free_mib: 64,
            cache_mib: 64,
        }
    }
}

/// The whole file, section by section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawConfig {
    /// `[server]`.
    pub server: RawServer,
    /// `[auth]`.
    pub auth: RawAuth,
    /// `[runtime]`.
    pub runtime: RawRuntime,
    /// `[egress]`.
    pub egress: RawEgress,
    /// `[dispatch]`.
    pub dispatch: RawDispatch,
    /// `[channels]`.
    pub channels: BTreeMap<String, RawChannel>,
    /// `[render]`.
    pub render: RawRender,
    /// `[outbox]`.
    pub outbox: RawOutbox,
    /// `[destinations]`.
    pub destinations: BTreeMap<String, RawDestination>,
    /// `[[routes]]`, each with its index in the file.
    pub routes: Vec<(usize, RawRoute)>,
    /// `[templates]`.
    pub templates: BTreeMap<String, RawTemplate>,
    /// `[timeouts]`.
    pub timeouts: super::timeouts::RawTimeouts,
    /// `[workspaces]`.
    pub workspaces: BTreeMap<String, RawWorkspace>,
    /// `[monitors]`.
    pub monitors: super::monitors::RawMonitors,
    /// `[contacts]`.
    pub contacts: BTreeMap<String, super::contacts::RawContact>,
    /// `[groups]`.
    pub groups: BTreeMap<String, super::contacts::RawGroup>,
    /// `[sources]`.
    pub sources: BTreeMap<String, super::sources::RawSource>,
}
