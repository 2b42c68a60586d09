//! A destination's plugin config, secrets resolved, and how it is shown:
//! redacted wherever it could leak (`Debug`, `Serialize`, messages that may
//! quote it).

use std::fmt;

use serde::{Serialize, Serializer};

use super::secret::REDACTED;
use crate::plugin::Secrets;

/// A destination's plugin config with its secrets resolved. `Debug` and
/// `Serialize` show it redacted: values that came from `${env:…}` /
/// `${file:…}`, values under keys that name secrets (`*secret*`, `*token*`,
/// `*password*`, `*key`) and the path and query of URLs (which often carry
/// tokens). [`PluginConfig::expose`] gives the real value to the runtime.
#[derive(Clone, PartialEq)]
pub struct PluginConfig {
    value: serde_json::Value,
    secret_pointers: Vec<String>,
}

impl PluginConfig {
    /// A config whose values at `secret_pointers` are secrets.
    pub fn new(value: serde_json::Value, secret_pointers: Vec<String>) -> Self {
        PluginConfig {
            value,
            secret_pointers,
        }
    }

    /// The real config, for the plugin runtime only.
    pub fn expose(&self) -> &serde_json::Value {
        &self.value
    }

    /// Marks one more pointer as secret (e.g. a manifest's `secret-fields`).
    pub fn mark_secret(&mut self, pointer: &str) {
        if !self.secret_pointers.iter().any(|p| p == pointer) {
            self.secret_pointers.push(pointer.to_owned());
        }
    }

    /// This config with `pointers` (the serving plugin's declared secret
    /// fields) marked secret too, to show or quote it. A pointer to an
    /// object or array hides every value under it and keeps the keys.
    pub fn with_secrets<'a>(&self, pointers: impl IntoIterator<Item = &'a String>) -> Self {
        let mut config = self.clone();
        for pointer in pointers {
            config.mark_secret(pointer);
        }
        config
    }

    /// The config with every sensitive value replaced by `<redacted>`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = self.value.clone();
        redact(&mut value, "", &self.secret_pointers);
        value
    }

    /// `text` with every sensitive string of this config replaced by
    /// `<redacted>` (for messages that may quote values, e.g. a schema's).
    pub fn scrub(&self, text: &str) -> String {
        self.secrets().scrub(text)
    }

    /// Every sensitive string of this config with what is shown instead,
    /// for the plugin runtime to scrub what a call of this destination says
    /// (log lines, errors, receipts).
    pub fn secrets(&self) -> Secrets {
        let mut sensitive = Vec::new();
        sensitive_strings(&self.value, &self.redacted(), &mut sensitive);
        Secrets::new(sensitive)
    }
}

impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginConfig({})", self.redacted())
    }
}

impl Serialize for PluginConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.redacted().serialize(s)
    }
}

/// A JSON pointer step for `key` (RFC 6901 escaping).
pub(super) fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Is `key` the name of a secret-carrying setting?
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("key")
}

/// A URL's redacted form: scheme and host only, when it has more.
fn redact_url(s: &str) -> Option<String> {
    let url = url::Url::parse(s).ok()?;
    let host = url.host_str()?;
    let bare = (url.path().is_empty() || url.path() == "/")
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none();
    if bare {
        return None;
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}://{host}{port}/{REDACTED}", url.scheme()))
}

/// Replaces sensitive values in `value` (see [`PluginConfig`]).
fn redact(value: &mut serde_json::Value, pointer: &str, secret_pointers: &[String]) {
    if secret_pointers.iter().any(|p| p == pointer) {
        hide_all(value);
        return;
    }
    match value {
        serde_json::Value::String(s) => {
            if let Some(r) = redact_url(s) {
                *s = r;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = format!("{pointer}/{}", escape(k));
                if secret_key(k) && !v.is_object() && !v.is_array() {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact(v, &child, secret_pointers);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                redact(v, &format!("{pointer}/{i}"), secret_pointers);
            }
        }
        _ => {}
    }
}

/// Replaces every string in `value` (itself, or each one under an object
/// or array) with `<redacted>`. Keys stay, so `/headers` still names its
/// headers; numbers, booleans and nulls stay too (secrets are strings, and
/// [`PluginConfig::scrub`] must not replace every `1` or `true` in a text).
fn hide_all(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => map.values_mut().for_each(hide_all),
        serde_json::Value::Array(items) => items.iter_mut().for_each(hide_all),
        serde_json::Value::String(_) => *value = serde_json::Value::String(REDACTED.to_owned()),
        _ => {}
    }
}

/// Collects the strings [`redact`] hides, with what it shows instead: every
/// value of `original` that differs in `redacted`.
fn sensitive_strings(
    original: &serde_json::Value,
    redacted: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    match (original, redacted) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    sensitive_strings(v, w, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (v, w) in a.iter().zip(b) {
                sensitive_strings(v, w, out);
            }
        }
        (Value::String(a), Value::String(b)) if a == b => {}
        (Value::String(a), Value::String(b)) => out.push((a.clone(), b.clone())),
        (Value::String(a), _) => out.push((a.clone(), REDACTED.to_owned())),
        (a, b) if a != b => out.push((a.to_string(), REDACTED.to_owned())),
        _ => {}
    }
}

/// The secrets of a resolved config, for tests.
#[cfg(test)]
pub(super) fn all_secrets(config: &super::Config) -> std::collections::BTreeSet<String> {
    // Tokens are kept only as hashes.
    let mut out = std::collections::BTreeSet::new();
    for d in config.destinations.values() {
        let mut v = Vec::new();
        sensitive_strings(d.config.expose(), &d.config.redacted(), &mut v);
        out.extend(v.into_iter().map(|(original, _)| original));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::PluginConfig;

    #[test]
    fn declared_secret_fields_hide_every_value_under_them() {
        let config = PluginConfig::new(
            serde_json::json!({
                "url": "https://hooks.example.com/",
                "headers": { "X-Tenant": "s3cr3t", "X-Team": "ops-7f3a" },
                "list": ["one-2b9c", 42],
            }),
            Vec::new(),
        );
        // Nothing in the config itself says these are secret.
        assert!(config.redacted().to_string().contains("s3cr3t"));
        let declared = ["/headers".to_owned(), "/list".to_owned()];
        let shown = config.with_secrets(&declared);
        let redacted = shown.redacted();
        assert_eq!(redacted["headers"]["X-Tenant"], "<redacted>");
        assert_eq!(redacted["headers"]["X-Team"], "<redacted>");
        assert_eq!(redacted["list"], serde_json::json!(["<redacted>", 42]));
        assert_eq!(redacted["url"], "https://hooks.example.com/");
        let text = shown.scrub("sent X-Tenant: s3cr3t, X-Team: ops-7f3a, one-2b9c");
        assert!(
            !text.contains("s3cr3t") && !text.contains("ops-7f3a") && !text.contains("one-2b9c"),
            "{text}"
        );
        assert_eq!(shown.expose(), config.expose());
    }
}
