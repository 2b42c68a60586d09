//! A loaded [`Plugin`]: its pre-instantiated component, where its exports
//! are, and its checked manifest, with what the gateway derives from that
//! manifest: a destination's grant and the JSON Schema check of its config.

use std::sync::Arc;
use std::time::SystemTime;

use super::bindings::PluginPre;
use super::bindings::carillon::plugin::types as w;
use super::exports::Exports;
use super::imports::HostState;
use super::secrets::Secrets;
use super::types::{ConfigIssue, Manifest, RateLimit};
use crate::egress::{Grant, HostPattern};

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

/// What a component is before it described itself: enough to call it.
pub(crate) struct Undescribed {
    pub(crate) pre: PluginPre<HostState>,
    pub(crate) exports: Exports,
    pub(crate) sha256: String,
    pub(crate) wit_version: String,
    pub(crate) size: usize,
}

/// A manifest that passed [`check_manifest`], with what was compiled from it.
pub(crate) struct CheckedManifest {
    manifest: Manifest,
    schema: jsonschema::Validator,
    allowed_hosts: Vec<HostPattern>,
}

impl Plugin {
    /// A plugin with a placeholder manifest (name `(loading)`, any config
    /// valid, no hosts), only to call `describe` on.
    pub(crate) fn undescribed(parts: Undescribed) -> Result<Self, String> {
        let anything = serde_json::Value::Bool(true);
        Ok(Plugin {
            pre: parts.pre,
            exports: parts.exports,
            schema: jsonschema::validator_for(&anything).map_err(|e| e.to_string())?,
            manifest: Manifest {
                name: "(loading)".into(),
                version: semver::Version::new(0, 0, 0),
                description: String::new(),
                config_schema: anything,
                secret_fields: Vec::new(),
                endpoint_fields: Vec::new(),
                allowed_hosts: Vec::new(),
                max_payload_bytes: 0,
                rate_limits: Vec::new(),
            },
            allowed_hosts: Vec::new(),
            sha256: parts.sha256,
            wit_version: parts.wit_version,
            size: parts.size,
            loaded_at: SystemTime::now(),
        })
    }

    /// This plugin with the manifest it described and `exports` (its own,
    /// marked checked by the caller once `describe` succeeded).
    pub(crate) fn described(self, checked: CheckedManifest, exports: Exports) -> Self {
        Plugin {
            manifest: checked.manifest,
            schema: checked.schema,
            allowed_hosts: checked.allowed_hosts,
            exports,
            ..self
        }
    }

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

/// A destination as the runtime sees it: its name, its resolved config,
/// the hosts it may reach and its secret strings (scrubbed from what its
/// calls say). Its `Debug` names the config's keys, never their values: the
/// config holds resolved secrets.
#[derive(Clone)]
pub struct Destination {
    /// The destination's name.
    pub name: String,
    /// The config with secrets resolved.
    pub config: serde_json::Value,
    pub(crate) grant: Arc<Grant>,
    pub(crate) secrets: Arc<Secrets>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self
            .config
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("config_keys", &keys)
            .field("grant", &self.grant)
            .finish()
    }
}

impl Destination {
    /// The hosts this destination may reach.
    pub fn grant(&self) -> &Grant {
        &self.grant
    }

    /// This destination with `secrets` (its config's, the serving plugin's
    /// declared secret fields included: `PluginConfig::secrets`) scrubbed
    /// from its calls' log lines, errors and receipts.
    pub fn with_secrets(mut self, secrets: Secrets) -> Self {
        self.secrets = Arc::new(secrets);
        self
    }

    /// `text` with this destination's secrets replaced.
    pub fn scrub(&self, text: &str) -> String {
        self.secrets.scrub(text)
    }
}

/// Checks a described manifest; returns it with its compiled schema and
/// parsed host patterns, or every problem found.
pub(crate) fn check_manifest(m: w::Manifest) -> Result<CheckedManifest, Vec<String>> {
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
        (true, Some(schema)) => Ok(CheckedManifest {
            manifest: Manifest {
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
            allowed_hosts: hosts,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Destination;
    use crate::egress::Grant;

    #[test]
    fn a_destination_debug_shows_no_config_value() {
        let destination = Destination {
            name: "ops".into(),
            config: serde_json::json!({
                "url": "https://hooks.example.com/t0ken-in-path",
                "signing_secret": "whsec_c2VjcmV0LXZhbHVl",
            }),
            grant: Arc::new(Grant::default()),
            secrets: Arc::default(),
        };
        let shown = format!("{destination:?}");
        assert!(
            shown.contains("signing_secret") && shown.contains("ops"),
            "{shown}"
        );
        assert!(
            !shown.contains("whsec_") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
