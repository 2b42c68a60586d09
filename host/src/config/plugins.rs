//! The checks that need the loaded plugins: every destination's plugin
//! exists and its config passes the plugin's JSON Schema; every
//! `[channels]` entry and every workspace's `enabled_channels` names a
//! plugin.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::Config;
use crate::plugin::Plugin;
use crate::plugin::types::ConfigIssue;
use crate::problem::{Findings, KeyPath};

/// What the config needs to know about the loaded plugins. Implemented for
/// the runtime's plugin map; tests implement it without wasm.
pub trait PluginCatalog {
    /// Is a plugin with this name loaded?
    fn has_plugin(&self, name: &str) -> bool;
    /// The names of the loaded plugins, for messages.
    fn plugin_names(&self) -> Vec<String>;
    /// The JSON Schema problems of `config` for plugin `name` (empty when
    /// the plugin is unknown).
    fn schema_issues(&self, name: &str, config: &serde_json::Value) -> Vec<ConfigIssue>;
    /// Why no plugin of this name is loaded, when that is known (e.g. its
    /// files were refused), for messages.
    fn why_missing(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }
    /// The secret fields plugin `name` declares (JSON pointers), hidden
    /// from messages that quote its config.
    fn secret_fields(&self, name: &str) -> Vec<String> {
        let _ = name;
        Vec::new()
    }
}

impl<S: std::hash::BuildHasher> PluginCatalog for HashMap<String, Arc<Plugin>, S> {
    fn has_plugin(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn plugin_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.keys().cloned().collect();
        names.sort();
        names
    }

    fn schema_issues(&self, name: &str, config: &serde_json::Value) -> Vec<ConfigIssue> {
        self.get(name)
            .map(|p| p.schema_issues(config))
            .unwrap_or_default()
    }

    fn secret_fields(&self, name: &str) -> Vec<String> {
        self.get(name)
            .map(|p| p.manifest().secret_fields.clone())
            .unwrap_or_default()
    }
}

/// Checks `config` against `plugins`. Destinations in `unchecked` (name →
/// why) are not checked; a finding says which check was skipped and why.
pub(super) fn check(
    config: &Config,
    plugins: &dyn PluginCatalog,
    unchecked: &BTreeMap<String, String>,
    f: &mut Findings,
) {
    let known = |name: &str| {
        if let Some(why) = plugins.why_missing(name) {
            return why;
        }
        let names = plugins.plugin_names();
        if names.is_empty() {
            "no plugin is loaded".to_owned()
        } else {
            format!("loaded plugins: {}", names.join(", "))
        }
    };
    for name in config.channels.keys() {
        if !plugins.has_plugin(name) {
            f.add(
                &KeyPath::root().key("channels").key(name.as_str()),
                format!("no plugin is named {name:?} ({})", known(name)),
            );
        }
    }
    for (ws, w) in &config.workspaces {
        if let super::WorkspaceChannels::Custom(enabled) = &w.channels {
            for name in enabled {
                if !plugins.has_plugin(name) {
                    f.add(
                        &KeyPath::root()
                            .key("workspaces")
                            .key(ws.as_str())
                            .key("enabled_channels"),
                        format!("no plugin is named {name:?} ({})", known(name)),
                    );
                }
            }
        }
    }
    for (name, d) in &config.destinations {
        if unchecked.contains_key(name) {
            continue;
        }
        let dp = KeyPath::root().key("destinations").key(name.as_str());
        if !plugins.has_plugin(&d.plugin) {
            f.add(
                &dp.key("plugin"),
                format!("no plugin is named {:?} ({})", d.plugin, known(&d.plugin)),
            );
            continue;
        }
        let issues = plugins.schema_issues(&d.plugin, d.config.expose());
        if issues.is_empty() {
            continue;
        }
        let cp = dp.key("config");
        let shown = d.config.with_secrets(&plugins.secret_fields(&d.plugin));
        for issue in issues {
            f.add(&cp.pointer(&issue.path), shown.scrub(&issue.message));
        }
    }
}

/// The notes for the destinations [`check`] skipped.
pub(super) fn skipped(unchecked: &BTreeMap<String, String>) -> Vec<(KeyPath, String)> {
    unchecked
        .iter()
        .map(|(name, why)| {
            (
                KeyPath::root().key("destinations").key(name.as_str()),
                format!("skipped the check against its plugin: {why}"),
            )
        })
        .collect()
}
