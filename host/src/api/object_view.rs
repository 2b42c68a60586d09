//! How a configuration object looks in the API: its kind, name,
//! workspace, origin (`file`: provisioned by `carillon.toml`, read-only;
//! `api`: stored, with a version) and its `spec`, the body a `PUT` takes,
//! with secrets redacted. A redacted value sent back unchanged keeps the
//! stored secret, so "read, edit one field, write back" works.

use serde_json::{Value, json};

use super::Live;
use super::config_store::StoredObject;
use crate::config::{Kind, PluginConfig, REDACTED};
use crate::plugin::Plugin;

/// The object `name` of `kind` in `live`'s config, if any, and its
/// workspace.
pub fn workspace_of(live: &Live, kind: Kind, name: &str) -> Option<String> {
    let c = &live.config;
    match kind {
        Kind::Destination => c.destinations.get(name).map(|d| d.workspace.clone()),
        Kind::Route => c
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.workspace.clone()),
        Kind::Template => c.templates.get(name).map(|t| t.workspace.clone()),
        Kind::Workspace => c.workspaces.contains_key(name).then(|| name.to_owned()),
        Kind::Contact => c.contacts.get(name).map(|x| x.workspace.clone()),
        Kind::Group => c.groups.get(name).map(|g| g.workspace.clone()),
    }
}

/// The names of `workspace`'s objects of `kind`, in config order.
pub fn names_in(live: &Live, kind: Kind, workspace: &str) -> Vec<String> {
    let c = &live.config;
    match kind {
        // A contact's methods are shown with the contact.
        Kind::Destination => c
            .destinations
            .iter()
            .filter(|(_, d)| d.workspace == workspace && d.contact.is_none())
            .map(|(n, _)| n.clone())
            .collect(),
        Kind::Contact => c
            .contacts
            .iter()
            .filter(|(_, x)| x.workspace == workspace)
            .map(|(n, _)| n.clone())
            .collect(),
        Kind::Group => c
            .groups
            .iter()
            .filter(|(_, g)| g.workspace == workspace)
            .map(|(n, _)| n.clone())
            .collect(),
        Kind::Route => c
            .routes
            .iter()
            .filter(|r| r.workspace == workspace)
            .map(|r| r.name.clone())
            .collect(),
        Kind::Template => c
            .templates
            .iter()
            .filter(|(_, t)| t.workspace == workspace)
            .map(|(n, _)| n.clone())
            .collect(),
        Kind::Workspace => vec![workspace.to_owned()],
    }
}

/// The key path of a provisioned object in the file.
pub fn file_key(live: &Live, kind: Kind, name: &str) -> String {
    match kind {
        Kind::Route => {
            let index = live
                .config
                .routes
                .iter()
                .position(|r| r.name == name)
                .unwrap_or_default();
            format!("routes[{index}]")
        }
        _ => format!("{}.{name}", kind.section()),
    }
}

/// Is `name` an object the API created (rather than the file)?
pub fn from_api(live: &Live, kind: Kind, name: &str) -> bool {
    let o = &live.overlay;
    match kind {
        Kind::Destination => o.destinations.contains_key(name),
        Kind::Route => o.routes.iter().any(|r| r.name == name),
        Kind::Template => o.templates.contains_key(name),
        Kind::Workspace => o.workspaces.contains_key(name),
        Kind::Contact => o.contacts.contains_key(name),
        Kind::Group => o.groups.contains_key(name),
    }
}

/// The JSON view of one object: `stored` for an API object, else the
/// config's own (validated) view of the provisioned one.
pub fn view(
    live: &Live,
    kind: Kind,
    name: &str,
    stored: Option<&StoredObject>,
    plugin: impl Fn(&str) -> Option<std::sync::Arc<Plugin>>,
) -> Value {
    let workspace = workspace_of(live, kind, name).unwrap_or_default();
    match stored {
        Some(o) => json!({
            "kind": kind.name(),
            "name": name,
            "workspace": workspace,
            "origin": "api",
            "version": o.version,
            "created_at": o.created_at,
            "updated_at": o.updated_at,
            "spec": redact_spec(kind, &o.body, &plugin),
        }),
        None => json!({
            "kind": kind.name(),
            "name": name,
            "workspace": workspace,
            "origin": "file",
            "key": file_key(live, kind, name),
            "spec": provisioned_spec(live, kind, name, &plugin),
        }),
    }
}

fn provisioned_spec(
    live: &Live,
    kind: Kind,
    name: &str,
    plugin: &impl Fn(&str) -> Option<std::sync::Arc<Plugin>>,
) -> Value {
    let c = &live.config;
    let mut spec = match kind {
        Kind::Destination => c.destinations.get(name).map(|d| {
            let mut shown = serde_json::to_value(d).unwrap_or_default();
            let config = match plugin(&d.plugin) {
                Some(p) => d.config.with_secrets(&p.manifest().secret_fields),
                None => d.config.clone(),
            };
            shown["config"] = config.redacted();
            shown
        }),
        Kind::Route => c
            .routes
            .iter()
            .find(|r| r.name == name)
            .map(|r| serde_json::to_value(r).unwrap_or_default()),
        Kind::Template => c
            .templates
            .get(name)
            .map(|t| serde_json::to_value(t).unwrap_or_default()),
        Kind::Workspace => c
            .workspaces
            .get(name)
            .map(|w| serde_json::to_value(w).unwrap_or_default()),
        Kind::Contact => c
            .contacts
            .get(name)
            .map(|x| serde_json::to_value(x).unwrap_or_default()),
        Kind::Group => c
            .groups
            .get(name)
            .map(|g| serde_json::to_value(g).unwrap_or_default()),
    }
    .unwrap_or_default();
    if let Some(fields) = spec.as_object_mut() {
        fields.remove("workspace");
        fields.remove("name");
    }
    spec
}

/// The plugin configs inside a body of `kind`: their JSON pointers and
/// the plugin each is for (a destination's `config`, a contact's robots').
fn plugin_configs(kind: Kind, body: &Value) -> Vec<(String, String)> {
    let plugin = |v: &Value| v["plugin"].as_str().unwrap_or_default().to_owned();
    match kind {
        Kind::Destination => vec![("/config".to_owned(), plugin(body))],
        Kind::Contact => body["methods"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter(|(_, m)| m["type"] == "robot")
            .map(|(i, m)| (format!("/methods/{i}/config"), plugin(m)))
            .collect(),
        _ => Vec::new(),
    }
}

/// A stored body as shown: its plugin configs redacted (the serving
/// plugin's `secret-fields`, secret-like keys, URL paths).
pub fn redact_spec(
    kind: Kind,
    body: &Value,
    plugin: &impl Fn(&str) -> Option<std::sync::Arc<Plugin>>,
) -> Value {
    let mut body = body.clone();
    for (at, name) in plugin_configs(kind, &body) {
        if let Some(config) = body.pointer_mut(&at) {
            let mut shown = PluginConfig::new(config.take(), Vec::new());
            if let Some(p) = plugin(&name) {
                shown = shown.with_secrets(&p.manifest().secret_fields);
            }
            *config = shown.redacted();
        }
    }
    body
}

/// Puts the stored secrets back where a client sent their redacted form:
/// every string of `new`'s plugin configs that still holds the redaction
/// marker takes the previous body's value at the same place, when that
/// value's redacted form is exactly what was sent. Returns the pointers of
/// markers that match nothing (a secret cannot be invented).
pub fn restore_secrets(
    kind: Kind,
    new: &mut Value,
    previous: Option<&Value>,
    plugin: &impl Fn(&str) -> Option<std::sync::Arc<Plugin>>,
) -> Vec<String> {
    let shown = previous.map(|p| redact_spec(kind, p, plugin));
    let mut unmatched = Vec::new();
    for (at, _) in plugin_configs(kind, new) {
        let previous_config = previous.and_then(|p| p.pointer(&at));
        let shown_config = shown.as_ref().and_then(|s| s.pointer(&at));
        if let Some(config) = new.pointer_mut(&at) {
            restore(config, &at, previous_config, shown_config, &mut unmatched);
        }
    }
    unmatched
}

fn restore(
    value: &mut Value,
    at: &str,
    previous: Option<&Value>,
    shown: Option<&Value>,
    unmatched: &mut Vec<String>,
) {
    match value {
        Value::String(s) if s.contains(REDACTED) => match (previous, shown) {
            (Some(p), Some(Value::String(sh))) if sh == s => *value = p.clone(),
            _ => unmatched.push(at.to_owned()),
        },
        Value::Object(fields) => {
            for (k, v) in fields.iter_mut() {
                let step = k.replace('~', "~0").replace('/', "~1");
                restore(
                    v,
                    &format!("{at}/{step}"),
                    previous.and_then(|p| p.get(k)),
                    shown.and_then(|s| s.get(k)),
                    unmatched,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                restore(
                    v,
                    &format!("{at}/{i}"),
                    previous.and_then(|p| p.get(i)),
                    shown.and_then(|s| s.get(i)),
                    unmatched,
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_secret_sent_back_keeps_the_stored_one() {
        let none = |_: &str| None;
        let previous = json!({"plugin": "webhook", "config": {
            "url": "https://hooks.example.com/T0/B0/XYZ", "secret": "s3cret", "n": 1}});
        let mut shown = redact_spec(Kind::Destination, &previous, &none);
        assert_ne!(shown["config"]["secret"], "s3cret");
        shown["config"]["n"] = json!(2);
        let unmatched = restore_secrets(Kind::Destination, &mut shown, Some(&previous), &none);
        assert!(unmatched.is_empty(), "{unmatched:?}");
        assert_eq!(shown["config"]["secret"], "s3cret");
        assert_eq!(
            shown["config"]["url"],
            "https://hooks.example.com/T0/B0/XYZ"
        );
        assert_eq!(shown["config"]["n"], 2);

        let mut invented = json!({"plugin": "webhook", "config": {"token": REDACTED}});
        let unmatched = restore_secrets(Kind::Destination, &mut invented, None, &none);
        assert_eq!(unmatched, ["/config/token"]);
    }
}
