//! `carillon config export`: the effective configuration (the file's text
//! plus the objects created through the API) as one TOML file that
//! `config check` accepts, for a backup, a review or a move to the file.
//!
//! The file's values are copied as written (a `${env:…}` reference stays a
//! reference); API objects are written as stored, so their secrets appear
//! in clear: the output is as sensitive as the data directory.

use super::overlay::Kind;

/// One object created through the API.
#[derive(Debug, Clone)]
pub struct ApiObject {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its workspace.
    pub workspace: String,
    /// The body as the API received it.
    pub body: serde_json::Value,
}

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file is not TOML (`config check` says where).
    #[error("the config file is not valid TOML: {0}")]
    Toml(String),
    /// An object cannot be written as TOML.
    #[error("{kind} {name:?} cannot be written as TOML: {reason}")]
    Object {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The file `text` with `objects` added; with `workspace`, only that
/// workspace's objects (its `[workspaces]` entry, destinations, routes and
/// templates) and `[render]`, which its templates compile with.
pub fn export(
    text: &str,
    objects: &[ApiObject],
    workspace: Option<&str>,
) -> Result<String, ExportError> {
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ExportError::Toml(e.to_string()))?;
    if let Some(ws) = workspace {
        doc = only_workspace(doc, ws);
    }
    for o in objects {
        if workspace.is_some_and(|ws| ws != o.workspace) {
            continue;
        }
        let mut value = to_toml(o)?;
        if let (Some(t), true) = (value.as_table_mut(), o.kind != Kind::Workspace) {
            t.insert("workspace".into(), o.workspace.clone().into());
            if o.kind == Kind::Route {
                t.insert("name".into(), o.name.clone().into());
            }
        }
        let section = o.kind.section();
        if o.kind == Kind::Route {
            let routes = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Array(Vec::new()));
            if let Some(list) = routes.as_array_mut() {
                list.push(value);
            }
        } else {
            let entries = doc
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let Some(table) = entries.as_table_mut() {
                table.insert(o.name.clone(), value);
            }
        }
    }
    let mut out = String::from(
        "# Exported by `carillon config export`: the config file with the objects\n\
         # created through the API. Those objects' secrets are written in clear.\n\n",
    );
    out.push_str(&toml::to_string(&doc).map_err(|e| ExportError::Toml(e.to_string()))?);
    Ok(out)
}

/// The sections of one workspace.
fn only_workspace(doc: toml::Table, ws: &str) -> toml::Table {
    let belongs = |v: &toml::Value| {
        v.get("workspace")
            .and_then(toml::Value::as_str)
            .unwrap_or(crate::access::DEFAULT_WORKSPACE)
            == ws
    };
    let mut out = toml::Table::new();
    for (key, value) in doc {
        match (key.as_str(), value) {
            ("render", v) => {
                out.insert(key, v);
            }
            ("workspaces", toml::Value::Table(t)) => {
                let kept: toml::Table = t.into_iter().filter(|(name, _)| name == ws).collect();
                out.insert(key, kept.into());
            }
            ("destinations" | "templates", toml::Value::Table(t)) => {
                let kept: toml::Table = t.into_iter().filter(|(_, v)| belongs(v)).collect();
                out.insert(key, kept.into());
            }
            ("routes", toml::Value::Array(list)) => {
                let kept: Vec<toml::Value> = list.into_iter().filter(belongs).collect();
                out.insert(key, kept.into());
            }
            _ => {}
        }
    }
    out
}

/// A JSON body as TOML: nulls (absent values) left out.
fn to_toml(o: &ApiObject) -> Result<toml::Value, ExportError> {
    fn strip(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
            serde_json::Value::Array(items) => items.iter().map(strip).collect(),
            other => other.clone(),
        }
    }
    toml::Value::try_from(strip(&o.body)).map_err(|e| ExportError::Object {
        kind: o.kind.name(),
        name: o.name.clone(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Checked, Resolver, process_env};
    use serde_json::json;

    #[test]
    fn an_export_is_a_config_that_checks_and_holds_both_origins() {
        let text = r#"
[destinations.file-hook]
plugin = "webhook"
config = { url = "https://hooks.example.com/a" }

[workspaces.ops]

[[routes]]
name = "all"
destinations = ["file-hook"]
"#;
        let objects = vec![
            ApiObject {
                kind: Kind::Destination,
                name: "api-hook".into(),
                workspace: "ops".into(),
                body: json!({"plugin": "webhook", "fallback": null,
                             "config": {"url": "https://hooks.example.com/b"}}),
            },
            ApiObject {
                kind: Kind::Route,
                name: "ops-all".into(),
                workspace: "ops".into(),
                body: json!({"destinations": ["api-hook"], "match": {"min_severity": "warning"}}),
            },
        ];
        let resolver = Resolver {
            env: &process_env,
            base_dir: std::path::Path::new("."),
        };
        let all = export(text, &objects, None).unwrap();
        let checked = Checked::text(&all, &resolver);
        assert!(
            checked.problems().is_empty(),
            "{}\n{all}",
            checked.problems()
        );
        let config = checked.into_config().unwrap();
        assert_eq!(config.routes.len(), 2);
        assert_eq!(config.destinations["api-hook"].workspace, "ops");

        let ops = export(text, &objects, Some("ops")).unwrap();
        let config = Checked::text(&ops, &resolver).into_config().unwrap();
        assert!(!config.destinations.contains_key("file-hook"), "{ops}");
        assert_eq!(config.routes.len(), 1);
        assert!(config.workspaces.contains_key("ops"));
    }
}
