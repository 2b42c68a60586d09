//! Loading a component: sniff, hash, compile (or take from the cache), check
//! that it implements the `carillon:plugin` world at a supported version and
//! imports nothing beyond what the gateway offers, pre-instantiate, then ask
//! it to `describe` itself and check the manifest. Also the typed entry
//! points that run a loaded plugin's exports.

use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::PluginPre;
use super::bindings::carillon::plugin::types as w;
use super::call::{CallError, Exports, Op, OpResult};
use super::convert;
use super::host::HostState;
use super::runtime::{Destination, Runtime};
use super::types::{
    ConfigIssue, DeliverError, DeliveryContext, Manifest, Outgoing, RateLimit, Receipt,
};
use crate::egress::{Grant, HostPattern};
use crate::message::Message;

/// The WIT package versions this gateway loads: `carillon:plugin@0.1.x`.
pub const SUPPORTED_WIT: &str = "0.1";

const CHANNEL_INTERFACE: &str = "carillon:plugin/channel";

/// Imports a plugin may have. Anything else (filesystem, sockets, wasi:http)
/// is refused at load, not discovered at delivery time.
const ALLOWED_IMPORTS: &[&str] = &[
    "carillon:plugin/types@",
    "carillon:plugin/http@",
    "carillon:plugin/smtp@",
    "carillon:plugin/log@",
    "wasi:io/",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-",
    "wasi:clocks/",
    "wasi:random/",
];

/// Why a file could not be loaded as a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// Not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module rather than a component.
    #[error(
        "a core WebAssembly module, not a component: build the plugin with `cargo build --target wasm32-wasip2`"
    )]
    CoreModule,
    /// wasmtime could not compile it.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// It does not export Carillon's channel interface.
    #[error(
        "does not implement the carillon:plugin world (no `{CHANNEL_INTERFACE}@{SUPPORTED_WIT}.x` export); it exports: {exports}"
    )]
    WrongWorld {
        /// What it exports instead.
        exports: String,
    },
    /// It targets a contract version this gateway does not support.
    #[error(
        "targets carillon:plugin@{found}; this gateway supports carillon:plugin@{SUPPORTED_WIT}.x — rebuild the plugin against a supported SDK"
    )]
    UnsupportedVersion {
        /// The version it was built against.
        found: String,
    },
    /// It imports something the gateway does not provide.
    #[error(
        "imports `{0}`, which plugins may not use (no filesystem, sockets or other host access)"
    )]
    ForbiddenImport(String),
    /// Linking or export type-checking failed.
    #[error("does not match the carillon:plugin@{SUPPORTED_WIT} contract: {0}")]
    Link(String),
    /// `describe` failed.
    #[error("describe() failed: {0}")]
    Describe(CallError),
    /// The manifest is malformed.
    #[error("malformed manifest: {}", .0.join("; "))]
    Manifest(Vec<String>),
}

/// A loaded plugin: pre-instantiated, described and checked.
pub struct Plugin {
    pub(crate) pre: PluginPre<HostState>,
    pub(crate) exports: Exports,
    manifest: Manifest,
    schema: jsonschema::Validator,
    allowed_hosts: Vec<HostPattern>,
    sha256: String,
    wit_version: String,
    size: usize,
    loaded_at: SystemTime,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The checked manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 of the `.wasm`, lower-case hex.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The `carillon:plugin` version it was built against.
    pub fn wit_version(&self) -> &str {
        &self.wit_version
    }

    /// Size of the `.wasm` in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// The hosts a destination with `config` may reach: the manifest's
    /// allowed hosts, the hosts named by its endpoint fields, and `extra`
    /// (granted by the admin in the gateway config).
    pub fn grant_for(&self, config: &serde_json::Value, extra: &[HostPattern]) -> Grant {
        let mut patterns = self.allowed_hosts.clone();
        for pointer in &self.manifest.endpoint_fields {
            if let Some(value) = config.pointer(pointer).and_then(|v| v.as_str())
                && let Some(pattern) = endpoint_pattern(value)
            {
                patterns.push(pattern);
            }
        }
        patterns.extend_from_slice(extra);
        Grant::new(patterns)
    }

    /// Checks `config` against the manifest's JSON Schema only.
    pub fn schema_issues(&self, config: &serde_json::Value) -> Vec<ConfigIssue> {
        self.schema
            .iter_errors(config)
            .map(|e| ConfigIssue {
                path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect()
    }
}

/// The host (and port, if the value names one) of an endpoint value: a URL,
/// or a bare host name such as an SMTP server.
fn endpoint_pattern(value: &str) -> Option<HostPattern> {
    if let Ok(url) = url::Url::parse(value)
        && let Some(host) = url.host_str()
    {
        return Some(HostPattern::exact(host, url.port_or_known_default()));
    }
    value
        .parse::<HostPattern>()
        .ok()
        .filter(|p| !p.to_string().contains('*'))
}

impl Runtime {
    /// Loads a plugin from its `.wasm` bytes. Compilation runs on the
    /// blocking pool; a cached artifact is used when present.
    pub async fn load(&self, wasm: Vec<u8>) -> Result<Arc<Plugin>, LoadError> {
        sniff(&wasm)?;
        let sha256 = hex::encode(Sha256::digest(&wasm));
        let size = wasm.len();
        let runtime = self.clone();
        let hash = sha256.clone();
        let component = tokio::task::spawn_blocking(move || runtime.compile(&wasm, &hash))
            .await
            .map_err(|e| LoadError::Compile(format!("the compile task failed: {e}")))??;
        let wit_version = self.check_world(&component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        // The generated wrapper; calls look up only the export they run
        // (`Exports`), type-checked once when `describe` runs below.
        let pre = PluginPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let exports = Exports::find(&component, &format!("{CHANNEL_INTERFACE}@{wit_version}"))
            .map_err(LoadError::Link)?;
        let probe = Plugin {
            pre,
            exports,
            manifest: Manifest {
                name: "(loading)".into(),
                version: semver::Version::new(0, 0, 0),
                description: String::new(),
                config_schema: serde_json::Value::Bool(true),
                secret_fields: Vec::new(),
                endpoint_fields: Vec::new(),
                allowed_hosts: Vec::new(),
                max_payload_bytes: 0,
                rate_limits: Vec::new(),
            },
            schema: jsonschema::validator_for(&serde_json::Value::Bool(true))
                .map_err(|e| LoadError::Manifest(vec![e.to_string()]))?,
            allowed_hosts: Vec::new(),
            sha256,
            wit_version,
            size,
            loaded_at: SystemTime::now(),
        };
        let described = match self
            .call(&probe, Arc::new(Grant::default()), "(load)", Op::Describe)
            .await
            .map_err(LoadError::Describe)?
        {
            OpResult::Describe(m) => m,
            _ => {
                return Err(LoadError::Link(
                    "describe() returned another export's result".into(),
                ));
            }
        };
        let (manifest, schema, allowed_hosts) = check_manifest(described)?;
        Ok(Arc::new(Plugin {
            manifest,
            schema,
            allowed_hosts,
            // `describe` ran, so the exports were type-checked.
            exports: probe.exports.checked(),
            ..probe
        }))
    }

    fn compile(&self, wasm: &[u8], sha256: &str) -> Result<Component, LoadError> {
        let engine = &self.inner.engine;
        if let Some(component) = self
            .inner
            .cache
            .as_ref()
            .and_then(|c| c.get(engine, sha256))
        {
            return Ok(component);
        }
        let component =
            Component::new(engine, wasm).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(cache) = &self.inner.cache {
            cache.put(sha256, &component);
        }
        Ok(component)
    }

    /// Checks exports and imports; returns the contract version.
    fn check_world(&self, component: &Component) -> Result<String, LoadError> {
        let engine = &self.inner.engine;
        let ty = component.component_type();
        let exports: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        let channel = exports
            .iter()
            .find_map(|name| name.strip_prefix(&format!("{CHANNEL_INTERFACE}@")));
        let version = match channel {
            Some(version) => version.to_owned(),
            None => {
                return Err(LoadError::WrongWorld {
                    exports: if exports.is_empty() {
                        "nothing".to_owned()
                    } else {
                        exports.join(", ")
                    },
                });
            }
        };
        if !version.starts_with(&format!("{SUPPORTED_WIT}.")) || version.contains('-') {
            return Err(LoadError::UnsupportedVersion { found: version });
        }
        for (name, item) in ty.imports(engine) {
            let allowed = ALLOWED_IMPORTS
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if !allowed || !matches!(item.ty, ComponentItem::ComponentInstance(_)) {
                return Err(LoadError::ForbiddenImport(name.to_owned()));
            }
        }
        Ok(version)
    }

    /// Validates a destination config: the manifest's JSON Schema first,
    /// then (if that passes) the plugin's own `validate`.
    pub async fn validate(
        &self,
        plugin: &Plugin,
        config: &serde_json::Value,
    ) -> Result<Vec<ConfigIssue>, CallError> {
        let issues = plugin.schema_issues(config);
        if !issues.is_empty() {
            return Ok(issues);
        }
        match self
            .call(
                plugin,
                Arc::new(Grant::default()),
                "(validate)",
                Op::Validate(config.to_string()),
            )
            .await?
        {
            OpResult::Validate(Ok(())) => Ok(Vec::new()),
            OpResult::Validate(Err(issues)) => {
                Ok(issues.into_iter().map(convert::issue_from_wit).collect())
            }
            _ => Err(mismatch(plugin)),
        }
    }

    /// A destination of `plugin` with its grant computed.
    pub fn destination(
        &self,
        plugin: &Plugin,
        name: &str,
        config: serde_json::Value,
        extra_hosts: &[HostPattern],
    ) -> Destination {
        let grant = Arc::new(plugin.grant_for(&config, extra_hosts));
        Destination {
            name: name.to_owned(),
            config,
            grant,
        }
    }

    /// The exact request a delivery would make, with no side effects.
    pub async fn render(
        &self,
        plugin: &Plugin,
        destination: &Destination,
        ctx: &DeliveryContext,
        message: &Message,
    ) -> Result<Result<Outgoing, DeliverError>, CallError> {
        let op = Op::Render(
            convert::context_to_wit(ctx),
            wit_destination(destination),
            convert::message_to_wit(message),
        );
        // Rendering must not reach the network: no grant.
        match self
            .call(plugin, Arc::new(Grant::default()), &destination.name, op)
            .await?
        {
            OpResult::Render(Ok(outgoing)) => {
                let outgoing = convert::outgoing_from_wit(outgoing);
                let limit = self.limits().max_output_bytes;
                if outgoing.payload_len() > limit {
                    return Err(CallError::OutputTooLarge {
                        plugin: plugin.name().to_owned(),
                        bytes: outgoing.payload_len(),
                        limit,
                    });
                }
                Ok(Ok(outgoing))
            }
            OpResult::Render(Err(e)) => Ok(Err(convert::deliver_error_from_wit(e))),
            _ => Err(mismatch(plugin)),
        }
    }

    /// Delivers a message through the plugin.
    pub async fn deliver(
        &self,
        plugin: &Plugin,
        destination: &Destination,
        ctx: &DeliveryContext,
        message: &Message,
    ) -> Result<Result<Receipt, DeliverError>, CallError> {
        let op = Op::Deliver(
            convert::context_to_wit(ctx),
            wit_destination(destination),
            convert::message_to_wit(message),
        );
        match self
            .call(plugin, destination.grant.clone(), &destination.name, op)
            .await?
        {
            OpResult::Deliver(Ok(receipt)) => Ok(Ok(convert::receipt_from_wit(receipt))),
            OpResult::Deliver(Err(e)) => Ok(Err(convert::deliver_error_from_wit(e))),
            _ => Err(mismatch(plugin)),
        }
    }
}

fn mismatch(plugin: &Plugin) -> CallError {
    CallError::Host {
        plugin: plugin.name().to_owned(),
        reason: "the export returned another export's result".into(),
    }
}

pub(crate) fn wit_destination(destination: &Destination) -> w::Destination {
    w::Destination {
        name: destination.name.clone(),
        config: destination.config.to_string(),
    }
}

fn sniff(wasm: &[u8]) -> Result<(), LoadError> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Core modules are version 1 (`01 00 00 00`); components use layer 1.
    if wasm[4..8] == [1, 0, 0, 0] {
        return Err(LoadError::CoreModule);
    }
    Ok(())
}

/// Checks a described manifest; returns it with its compiled schema and
/// parsed host patterns, or every problem found.
fn check_manifest(
    m: w::Manifest,
) -> Result<(Manifest, jsonschema::Validator, Vec<HostPattern>), LoadError> {
    let mut problems = Vec::new();
    let name_ok = (1..=64).contains(&m.name.len())
        && m.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        problems.push(format!(
            "name {:?}: expected 1 to 64 lowercase letters, digits or -",
            m.name
        ));
    }
    let version = semver::Version::parse(&m.version).unwrap_or_else(|e| {
        problems.push(format!("version {:?}: {e}", m.version));
        semver::Version::new(0, 0, 0)
    });
    let schema_json =
        serde_json::from_str::<serde_json::Value>(&m.config_schema).unwrap_or_else(|e| {
            problems.push(format!("config-schema is not JSON: {e}"));
            serde_json::Value::Bool(true)
        });
    let schema = match jsonschema::validator_for(&schema_json) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(format!("config-schema is not a valid JSON Schema: {e}"));
            None
        }
    };
    for pointer in m.secret_fields.iter().chain(&m.endpoint_fields) {
        if !pointer.starts_with('/') {
            problems.push(format!(
                "{pointer:?} is not a JSON pointer (it must start with /)"
            ));
        }
    }
    let mut hosts = Vec::new();
    for pattern in &m.allowed_hosts {
        match pattern.parse::<HostPattern>() {
            Ok(p) => hosts.push(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if m.max_payload_bytes == 0 {
        problems.push("max-payload-bytes is 0".into());
    }
    for limit in &m.rate_limits {
        if limit.requests == 0 || limit.window_ms == 0 {
            problems.push(format!(
                "rate limit {} per {} ms: both must be positive",
                limit.requests, limit.window_ms
            ));
        }
    }
    match (problems.is_empty(), schema) {
        (true, Some(schema)) => Ok((
            Manifest {
                name: m.name,
                version,
                description: m.description,
                config_schema: schema_json,
                secret_fields: m.secret_fields,
                endpoint_fields: m.endpoint_fields,
                allowed_hosts: m.allowed_hosts,
                max_payload_bytes: m.max_payload_bytes,
                rate_limits: m
                    .rate_limits
                    .iter()
                    .map(|l| RateLimit {
                        requests: l.requests,
                        window: std::time::Duration::from_millis(u64::from(l.window_ms)),
                    })
                    .collect(),
            },
            schema,
            hosts,
        )),
        _ => Err(LoadError::Manifest(problems)),
    }
}
