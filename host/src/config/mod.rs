//! Carillon's configuration, `carillon.toml`: read raw, then validated.
//!
//! 1. `parse` reads the TOML into the serde types of `raw`
//!    (`deny_unknown_fields` everywhere), section by section, keeping spans;
//!    a bad key is reported and taken out, and the rest is read.
//! 2. `validate` checks each section with one function: `sections.rs`,
//!    `auth.rs` (secrets resolved), `destinations.rs`, and the validators
//!    of the modules that own a section's meaning: [`crate::route::validate`]
//!    for `[[routes]]`, [`crate::render::validate_templates`] (which
//!    compiles them) and [`crate::render::RawRender::validate`].
//!    `references.rs` then checks the names one section gives another
//!    (route → destination → fallback, route → template).
//! 3. [`Config::check_plugins`] (`plugins.rs`) checks what needs the loaded
//!    plugins: each destination's plugin exists and its config passes the
//!    plugin's JSON Schema.
//!
//! [`Checked`] runs the phases and reports *all* their problems in one run,
//! each with its dotted key path and, where the file shows it, the line and
//! column; a later phase runs on what the earlier ones could build, and a
//! note names each check an earlier problem made impossible. Secrets are held in
//! [`Secret`] and never printed. With no file, the gateway runs on the
//! embedded `defaults.toml` ([`Config::embedded_defaults`]), plus tokens
//! generated once into the data directory ([`LocalTokens`]).
//! The file format is documented in `docs/configuration.md`.

mod auth;
mod check;
pub mod contacts;
mod defaults;
mod destinations;
pub mod export;
mod monitor_rule;
pub mod monitors;
pub mod overlay;
mod parse;
mod plugin_config;
mod plugins;
mod quotas;
pub mod raw;
mod raw_cache;
mod references;
mod secret;
mod sections;
pub mod sources;
pub mod timeouts;
mod validate;
mod workspaces;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use self::auth::ADMIN_TOKEN_NAME;
pub use self::check::Checked;
pub use self::contacts::{Contact, Group, Method};
pub use self::defaults::{DEFAULTS_TOML, LocalTokens, TokenFileError};
pub use self::monitors::{MonitorRule, MonitorSettings};
pub use self::overlay::{Kind, Overlay};
pub use self::plugin_config::PluginConfig;
pub use self::plugins::PluginCatalog;
pub use self::raw_cache::RawCache;
pub use self::secret::{
    BadReference, REDACTED, Resolver, Secret, SecretError, SecretSource, process_env,
};
pub use self::timeouts::TimeoutSettings;
// `config`'s own API reports its problems in these types (`ConfigError`).
use crate::access::{DEFAULT_WORKSPACE, Role, TokenHash};
use crate::dispatch::retry::RetryPolicy;
use crate::egress::{EgressPolicy, HostPattern};
use crate::plugin::types::RateLimit;
use crate::plugin::{Limits, RuntimeConfig};
pub use crate::problem::{KeyPath, Problem, Problems, Segment};
use crate::render::{RenderSettings, Template};
use crate::route::{Glob, Route};

/// The configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has problems; all of them are listed.
    #[error("the config has {count} problem(s):\n{0}", count = .0.len())]
    Invalid(Problems),
}

/// A validated configuration. Secrets inside are [`Secret`]s (or redacted
/// inside [`PluginConfig`]), so `Debug` and `Serialize` never show them.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// `[server]`.
    pub server: Server,
    /// `[auth]`.
    pub auth: Auth,
    /// `[runtime]`.
    pub runtime: RuntimeSettings,
    /// `[egress]`: networks allowed although private.
    #[serde(serialize_with = "view::egress")]
    pub egress: EgressPolicy,
    /// `[dispatch]`.
    pub dispatch: DispatchSettings,
    /// `[channels]`: channel types switched off (or explicitly on) as a whole.
    pub channels: BTreeMap<String, bool>,
    /// `[channels.NAME] sha256`: plugins pinned to one build (lower-case
    /// hex SHA-256 of the `.wasm`); any other build is refused.
    pub plugin_pins: BTreeMap<String, String>,
    /// `[destinations.NAME]`.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// `[[routes]]`, in file order (see [`crate::route`]).
    pub routes: Vec<Route>,
    /// `[templates.NAME]` (compiled by [`crate::render::Renderer::new`];
    /// validation has checked that they compile).
    pub templates: BTreeMap<String, Template>,
    /// `[render]`: the time zone and the default locale of templates.
    #[serde(serialize_with = "view::render")]
    pub render: RenderSettings,
    /// `[outbox]`.
    #[serde(serialize_with = "view::outbox")]
    pub outbox: OutboxSettings,
    /// `[timeouts]`: task timeouts by task type (see `crate::timeout`).
    pub timeouts: TimeoutSettings,
    /// `[workspaces]`, with `default` always present.
    pub workspaces: BTreeMap<String, Workspace>,
    /// `[monitors]`: sampling and alert rules (see `crate::monitor`).
    pub monitors: MonitorSettings,
    /// `[contacts]`: people, their methods and alternates.
    pub contacts: BTreeMap<String, Contact>,
    /// `[groups]`: rosters of contacts.
    pub groups: BTreeMap<String, Group>,
    /// `[sources]`: the databases data-push tasks query.
    pub sources: BTreeMap<String, sources::SourceSettings>,
    /// Which destinations are contacts' methods (to report their problems
    /// at the method).
    #[serde(skip)]
    pub origins: contacts::Origins,
    /// `[egress] smtp_ca_files`, read: extra roots for SMTP TLS (PEM).
    #[serde(skip)]
    pub smtp_roots_pem: Vec<String>,
    /// The text it came from, to locate problems found later.
    #[serde(skip)]
    source: Source,
}

/// `[outbox]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Unfinished deliveries before ingest answers 503.
    pub max_pending: u64,
    /// How long idempotency keys are remembered.
    pub idempotency_window: Duration,
    /// How long delivered deliveries stay visible.
    pub delivered_retention: Duration,
    /// Stored unrouted events before ingest answers 503 to more of them.
    pub max_unrouted: u64,
    /// How long unrouted events stay visible.
    pub unrouted_retention: Duration,
    /// Free bytes kept on the outbox's file system.
    pub min_free_bytes: u64,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

/// `[server]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// The address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Outbox, plugin cache and generated tokens.
    pub data_dir: PathBuf,
    /// Extra `.wasm` plugins.
    pub plugin_dir: PathBuf,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Watch `plugin_dir` and hot-reload its files.
    pub watch_plugins: bool,
    /// How often `plugin_dir` is rescanned besides change notifications.
    #[serde(rename = "plugin_rescan_secs", serialize_with = "view::secs")]
    pub plugin_rescan: Duration,
    /// What one request or connection may cost.
    #[serde(flatten)]
    pub limits: ServerLimits,
    /// `public_url`: where the links the gateway sends point.
    #[serde(serialize_with = "view::url_opt")]
    pub public_url: Option<url::Url>,
}

/// `[server]`'s limits on requests and connections, validated (each is
/// explained in `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerLimits {
    /// Most alerts one Alertmanager request may hold.
    pub alertmanager_max_alerts: usize,
    /// The events of one Alertmanager request may take this many times the
    /// request's size (plus [`ServerLimits::EXPANSION_ALLOWANCE`]).
    pub alertmanager_max_expansion: usize,
    /// Time allowed for a request's head.
    #[serde(rename = "header_timeout_secs", serialize_with = "view::secs")]
    pub header_timeout: Duration,
    /// Time allowed for a request's body.
    #[serde(rename = "body_timeout_secs", serialize_with = "view::secs")]
    pub body_timeout: Duration,
    /// A kept-alive connection idle this long is closed.
    #[serde(rename = "idle_timeout_secs", serialize_with = "view::secs")]
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// How long open requests may take after shutdown begins.
    #[serde(rename = "shutdown_grace_secs", serialize_with = "view::secs")]
    pub shutdown_grace: Duration,
}

impl ServerLimits {
    /// Bytes an Alertmanager request may store beyond its expansion limit,
    /// so a small group's fixed per-event overhead is never refused.
    pub const EXPANSION_ALLOWANCE: usize = 64 << 10;

    /// From `[server]` as written (zeros are reported by validation; they
    /// become the smallest value here).
    pub fn from_raw(raw: &raw::RawServer) -> Self {
        let count = |v: u64| usize::try_from(v.max(1)).unwrap_or(usize::MAX);
        let secs = |v: u64| Duration::from_secs(v.max(1));
        ServerLimits {
            alertmanager_max_alerts: count(raw.alertmanager_max_alerts),
            alertmanager_max_expansion: count(raw.alertmanager_max_expansion),
            header_timeout: secs(raw.header_timeout_secs),
            body_timeout: secs(raw.body_timeout_secs),
            idle_timeout: secs(raw.idle_timeout_secs),
            max_connections: count(raw.max_connections),
            shutdown_grace: secs(raw.shutdown_grace_secs),
        }
    }
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::from_raw(&raw::RawServer::default())
    }
}

/// `[auth]`, validated: every token of the file, of every role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Auth {
    /// `[auth] admin_token` (named `admin`), then `[[auth.ingest]]`, then
    /// `[[auth.tokens]]`, in file order.
    pub tokens: Vec<Token>,
}

impl Auth {
    /// The index of the token whose hash is `presented`'s. Every token is
    /// compared (no early exit), so timing does not tell which one nearly
    /// matched.
    pub fn find(&self, presented: &[u8]) -> Option<usize> {
        let hash = TokenHash::of(presented);
        let mut found = None;
        for (i, t) in self.tokens.iter().enumerate() {
            if t.hash.matches(&hash) && found.is_none() {
                found = Some(i);
            }
        }
        found
    }

    /// Is there an `instance-admin` token?
    pub fn has_instance_admin(&self) -> bool {
        self.tokens.iter().any(|t| t.role == Role::InstanceAdmin)
    }

    /// Is there an `ingest` token?
    pub fn has_ingest(&self) -> bool {
        self.tokens.iter().any(|t| t.role == Role::Ingest)
    }

    /// The ingest tokens.
    pub fn ingest(&self) -> impl Iterator<Item = &Token> {
        self.tokens.iter().filter(|t| t.role == Role::Ingest)
    }
}

/// One token: its role, the workspace it acts in, and what an ingest token
/// may post.
#[derive(Debug, Clone, Serialize)]
pub struct Token {
    /// Its name, for logs and metrics.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The workspace it acts in; `None` for an instance admin (every one).
    pub workspace: Option<String>,
    /// The SHA-256 of the token.
    pub hash: TokenHash,
    /// `ingest`: event types it may post; `None`: any.
    pub event_types: Option<Vec<Glob>>,
    /// `ingest`: destinations its events may reach; `None`: any.
    pub destinations: Option<Vec<String>>,
}

impl Token {
    /// The workspace an ingest token's events are routed in.
    pub fn ingest_workspace(&self) -> &str {
        self.workspace.as_deref().unwrap_or(DEFAULT_WORKSPACE)
    }
}

/// `[workspaces.NAME]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workspace {
    /// Which channel types its destinations may use.
    pub channels: WorkspaceChannels,
}

/// A workspace's channel settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "enabled")]
pub enum WorkspaceChannels {
    /// The instance's enabled channel types.
    Inherit,
    /// Only these channel types (plugin names), and only while the instance
    /// enables them too.
    Custom(std::collections::BTreeSet<String>),
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            channels: WorkspaceChannels::Inherit,
        }
    }
}

/// `[runtime]`, validated: the plugin runtime's limits.
#[derive(Debug, Clone, Serialize)]
pub struct RuntimeSettings {
    /// Per-call limits.
    #[serde(serialize_with = "view::limits")]
    pub limits: Limits,
    /// Plugin calls at once.
    pub max_concurrent_calls: u32,
}

/// `[dispatch]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct DispatchSettings {
    /// Deliveries running at once.
    pub workers: usize,
    /// The retry schedule.
    #[serde(serialize_with = "view::retry")]
    pub retry: RetryPolicy,
    /// Where dead deliveries go when their own fallbacks fail.
    pub global_fallback: Option<String>,
}

/// One destination, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationConfig {
    /// The plugin's name.
    pub plugin: String,
    /// Off: deliveries wait.
    pub enabled: bool,
    /// Where dead deliveries go next.
    pub fallback: Option<String>,
    /// The override of the plugin's rate limits.
    pub rate_limits: Option<Vec<RateLimit>>,
    /// Deliveries at once; `None`: the dispatcher's default.
    pub concurrency: Option<usize>,
    /// Hosts granted in addition to the plugin's.
    #[serde(serialize_with = "view::hosts")]
    pub allow_hosts: Vec<HostPattern>,
    /// The plugin config, secrets resolved.
    pub config: PluginConfig,
    /// The locale messages to it are rendered in; `None`: the event's.
    pub locale: Option<String>,
    /// Its own retry schedule (`[destinations.NAME.retry]` over
    /// `[dispatch.retry]`); `None`: `[dispatch.retry]`.
    #[serde(serialize_with = "view::retry_opt")]
    pub retry: Option<RetryPolicy>,
    /// The workspace it belongs to.
    pub workspace: String,
    /// The contact whose method this destination is (`CONTACT@INDEX`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// The config text, kept to locate problems found after validation. Its
/// `Debug` does not print it (it may hold literal secrets).
#[derive(Clone, Default)]
struct Source(Arc<str>);

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Source({} bytes)", self.0.len())
    }
}

impl Config {
    /// Reads and validates `path`, resolving `${env:…}` from the process
    /// environment and `${file:…}` relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Checked::file(path)?
            .into_config()
            .map_err(ConfigError::Invalid)
    }

    /// Parses and validates config text.
    pub fn from_toml(text: &str, resolver: &Resolver<'_>) -> Result<Config, Problems> {
        Checked::text(text, resolver).into_config()
    }

    /// The embedded defaults (`defaults.toml`): what `serve` runs on with no
    /// config file. They name no tokens; see [`LocalTokens`].
    pub fn embedded_defaults() -> Result<Config, Problems> {
        let resolver = Resolver {
            env: &process_env,
            base_dir: Path::new("."),
        };
        Config::from_toml(DEFAULTS_TOML, &resolver)
    }

    /// Checks the config against the loaded plugins: every destination's
    /// plugin is loaded and its config passes the plugin's JSON Schema, and
    /// every `[channels]` entry names a loaded plugin. Problems inside a
    /// destination's config carry the JSON pointer after the key path
    /// (`destinations.ops-bot.config/url`).
    pub fn check_plugins(&self, plugins: &dyn PluginCatalog) -> Problems {
        let mut findings = crate::problem::Findings::default();
        plugins::check(self, plugins, &BTreeMap::new(), &mut findings);
        let mut problems = Vec::new();
        self.locate(&mut findings, &mut problems);
        let mut problems = Problems(problems);
        problems.sort();
        problems
    }

    /// The text this config was read from (the file, or the embedded
    /// defaults): the seed the API's objects are merged over.
    pub fn source_text(&self) -> &str {
        &self.source.0
    }

    /// The SHA-256 `plugin` is pinned to, if any (`[channels.NAME] sha256`).
    pub fn plugin_pin(&self, plugin: &str) -> Option<&str> {
        self.plugin_pins.get(plugin).map(String::as_str)
    }

    /// Is `channel` (a plugin name) switched on? Channels are on unless
    /// `[channels]` switches them off.
    pub fn channel_enabled(&self, channel: &str) -> bool {
        self.channels.get(channel).copied().unwrap_or(true)
    }

    /// May `workspace` use `channel` (a plugin name)? The instance must
    /// enable it, and a `custom` workspace must list it.
    pub fn workspace_channel_enabled(&self, workspace: &str, channel: &str) -> bool {
        self.channel_enabled(channel)
            && match self.workspaces.get(workspace).map(|w| &w.channels) {
                Some(WorkspaceChannels::Custom(enabled)) => enabled.contains(channel),
                Some(WorkspaceChannels::Inherit) => true,
                None => false,
            }
    }

    /// Does `destination` take deliveries now: it exists, it is enabled, and
    /// its channel is enabled for its workspace?
    pub fn destination_active(&self, destination: &str) -> bool {
        self.destinations
            .get(destination)
            .is_some_and(|d| d.enabled && self.workspace_channel_enabled(&d.workspace, &d.plugin))
    }

    /// The workspace `destination` belongs to, if it exists.
    pub fn destination_workspace(&self, destination: &str) -> Option<&str> {
        self.destinations
            .get(destination)
            .map(|d| d.workspace.as_str())
    }

    /// The plugin runtime's configuration: these limits and egress policy,
    /// with the compiled-plugin cache in `data_dir/cache`.
    pub fn runtime_config(&self) -> RuntimeConfig {
        RuntimeConfig {
            limits: self.runtime.limits.clone(),
            max_concurrent_calls: self.runtime.max_concurrent_calls,
            cache_dir: Some(self.server.data_dir.join("cache")),
            egress: self.egress.clone(),
            smtp: crate::egress::smtp::SmtpSettings {
                extra_roots_pem: self.smtp_roots_pem.clone(),
                ..crate::egress::smtp::SmtpSettings::default()
            },
            ..RuntimeConfig::default()
        }
    }
}

/// Serializers for the runtime's own types, in the file's shape.
mod view {
    use serde::Serializer;
    use serde::ser::{SerializeSeq as _, SerializeStruct as _};

    use crate::dispatch::retry::RetryPolicy;
    use crate::egress::{EgressPolicy, HostPattern};
    use crate::plugin::Limits;
    use crate::render::RenderSettings;

    pub fn egress<S: Serializer>(policy: &EgressPolicy, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(policy.allow_private.len()))?;
        for net in &policy.allow_private {
            seq.serialize_element(&net.to_string())?;
        }
        seq.end()
    }

    pub fn hosts<S: Serializer>(hosts: &[HostPattern], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(hosts.len()))?;
        for host in hosts {
            seq.serialize_element(&host.to_string())?;
        }
        seq.end()
    }

    pub fn limits<S: Serializer>(l: &Limits, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Limits", 5)?;
        st.serialize_field("memory_bytes", &l.memory_bytes)?;
        st.serialize_field("cpu_time_ms", &l.cpu_time.as_millis())?;
        st.serialize_field("wall_time_ms", &l.wall_time.as_millis())?;
        st.serialize_field("max_output_bytes", &l.max_output_bytes)?;
        st.serialize_field("max_log_lines", &l.max_log_lines)?;
        st.end()
    }

    pub fn outbox<S: Serializer>(o: &super::OutboxSettings, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("OutboxSettings", 7)?;
        st.serialize_field("max_pending", &o.max_pending)?;
        st.serialize_field("idempotency_window_secs", &o.idempotency_window.as_secs())?;
        st.serialize_field("delivered_retention_secs", &o.delivered_retention.as_secs())?;
        st.serialize_field("max_unrouted", &o.max_unrouted)?;
        st.serialize_field("unrouted_retention_secs", &o.unrouted_retention.as_secs())?;
        st.serialize_field("min_free_mib", &(o.min_free_bytes >> 20))?;
        st.serialize_field("cache_mib", &(o.cache_bytes >> 20))?;
        st.end()
    }

    pub fn render<S: Serializer>(r: &RenderSettings, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RenderSettings", 2)?;
        st.serialize_field("time_zone", &r.time_zone.iana_name().unwrap_or("UTC"))?;
        st.serialize_field("default_locale", &r.default_locale)?;
        st.end()
    }

    pub fn url_opt<S: Serializer>(u: &Option<url::Url>, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&u.as_ref().map(url::Url::as_str), s)
    }

    pub fn secs<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn retry_opt<S: Serializer>(r: &Option<RetryPolicy>, s: S) -> Result<S::Ok, S::Error> {
        match r {
            Some(r) => retry(r, s),
            None => s.serialize_none(),
        }
    }

    pub fn retry<S: Serializer>(r: &RetryPolicy, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("RetryPolicy", 6)?;
        st.serialize_field("base_secs", &r.base.as_secs())?;
        st.serialize_field("multiplier", &r.multiplier)?;
        st.serialize_field("cap_secs", &r.cap.as_secs())?;
        st.serialize_field("min_delay_secs", &r.min_delay.as_secs())?;
        st.serialize_field("max_attempts", &r.max_attempts)?;
        st.serialize_field("max_age_secs", &r.max_age.as_secs())?;
        st.end()
    }
}

#[cfg(test)]
mod access_tests;
#[cfg(test)]
mod tests;
