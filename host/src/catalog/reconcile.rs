//! Choosing the build that serves each plugin name (a file, else the
//! built-in one, subject to pins and to every destination validating) and
//! swapping it, with its destinations' entries, into the
//! [`DestinationRegistry`](crate::dispatch::registry::DestinationRegistry).

use std::sync::Arc;

use super::metrics::LoadResult;
use super::reload::{Reloader, Trigger};
use super::state::{FileError, ReloadState, Serving, plugin_names};
use super::{Candidate, Origin, preferred};
use crate::config::Config;
use crate::dispatch::registry::DestinationEntry;
use crate::plugin::{Plugin, Runtime};

/// Deliveries to one destination running at once, unless configured.
pub const DEFAULT_CONCURRENCY: usize = 4;

impl Reloader {
    /// Chooses the serving build of every plugin and swaps what changed
    /// into the destination registry.
    pub(super) async fn reconcile(
        &self,
        state: &mut ReloadState,
        config: &Config,
        trigger: Trigger,
    ) {
        for name in plugin_names(state, config) {
            let pin = config.plugin_pin(&name);
            // Files that name this plugin; a pin set after they loaded
            // refuses them now.
            let mut paths = Vec::new();
            for (path, slot) in &mut state.files {
                let Some(plugin) = &slot.plugin else { continue };
                if plugin.name() != name {
                    continue;
                }
                if let Some(pin) = pin
                    && pin != plugin.sha256()
                {
                    slot.error.get_or_insert_with(|| {
                        FileError::Refused(format!(
                            "{name} {} has SHA-256 {}, but [channels.{name}] pins sha256 = \"{pin}\"",
                            plugin.manifest().version,
                            plugin.sha256()
                        ))
                    });
                    continue;
                }
                paths.push((path.clone(), plugin.clone()));
            }
            let candidates: Vec<Candidate<'_>> = paths
                .iter()
                .map(|(path, plugin)| Candidate {
                    path,
                    version: &plugin.manifest().version,
                })
                .collect();
            let current = state.serving.get(&name).cloned();
            let chosen = match preferred(&candidates) {
                Some(i) => Some(Serving {
                    plugin: paths[i].1.clone(),
                    origin: Origin::File(paths[i].0.clone()),
                }),
                None => match state.builtin.get(&name).cloned() {
                    None => None,
                    Some(builtin) => match pin {
                        Some(pin) if pin != builtin.sha256() => {
                            state.notes.insert(
                                name.clone(),
                                format!(
                                    "the built-in {name} {} (SHA-256 {}) is refused: [channels.{name}] pins sha256 = \"{pin}\"",
                                    builtin.manifest().version,
                                    builtin.sha256()
                                ),
                            );
                            None
                        }
                        _ => {
                            let serving_already = current
                                .as_ref()
                                .is_some_and(|c| Arc::ptr_eq(&c.plugin, &builtin));
                            let check = if serving_already || trigger == Trigger::Start {
                                Ok(())
                            } else {
                                self.validate(&builtin, config).await
                            };
                            match check {
                                Ok(()) => Some(Serving {
                                    plugin: builtin,
                                    origin: Origin::Builtin,
                                }),
                                Err(reason) => {
                                    self.metrics.count(&name, LoadResult::Refused);
                                    state.notes.insert(
                                        name.clone(),
                                        format!("the built-in {name} is refused: {reason}"),
                                    );
                                    None
                                }
                            }
                        }
                    },
                },
            };
            match (current, chosen) {
                (Some(current), Some(chosen)) if Arc::ptr_eq(&current.plugin, &chosen.plugin) => {
                    state.notes.remove(&name);
                }
                (current, Some(chosen)) => {
                    state.notes.remove(&name);
                    let entries = destination_entries(&self.runtime, config, &chosen.plugin);
                    self.destinations
                        .swap_plugin(chosen.plugin.clone(), entries);
                    if trigger != Trigger::Start {
                        tracing::info!(
                            plugin = %name,
                            version = %chosen.plugin.manifest().version,
                            sha256 = chosen.plugin.sha256(),
                            origin = %origin_text(&chosen.origin),
                            previous = %current.as_ref().map_or_else(|| "none".to_owned(), |c| c.plugin.manifest().version.to_string()),
                            "plugin swapped in; deliveries already running finish on the previous build"
                        );
                    }
                    state.serving.insert(name.clone(), chosen);
                }
                (Some(current), None) => {
                    self.destinations.remove_plugin(&name);
                    state.serving.remove(&name);
                    let waiting: Vec<&str> = config
                        .destinations
                        .iter()
                        .filter(|(_, d)| d.plugin == name)
                        .map(|(n, _)| n.as_str())
                        .collect();
                    let note = state.notes.entry(name.clone()).or_insert_with(|| {
                        format!(
                            "no build of {name} is left ({} was removed and no other file or built-in plugin provides it)",
                            origin_text(&current.origin)
                        )
                    });
                    tracing::warn!(plugin = %name, reason = %note, destinations = ?waiting, "plugin missing; its destinations' deliveries wait");
                }
                (None, None) => {}
            }
        }
    }
}

/// The destination entries of every destination that uses `plugin`, with
/// grants computed for its manifest.
pub(super) fn destination_entries(
    runtime: &Runtime,
    config: &Config,
    plugin: &Plugin,
) -> Vec<DestinationEntry> {
    destination_entries_where(runtime, config, plugin, |_| true)
}

/// [`destination_entries`] of the destinations `wanted` names.
pub(super) fn destination_entries_where(
    runtime: &Runtime,
    config: &Config,
    plugin: &Plugin,
    wanted: impl Fn(&str) -> bool,
) -> Vec<DestinationEntry> {
    config
        .destinations
        .iter()
        .filter(|(name, d)| d.plugin == plugin.name() && wanted(name))
        .filter_map(|(name, _)| destination_entry(runtime, config, name, plugin))
        .collect()
}

/// The registry entry of destination `name` served by `plugin`: the grant
/// for `plugin`'s manifest, the secrets scrubbed from its calls, the rate limits (the config's, else the
/// manifest's), the concurrency and whether it is active. `None` when the
/// config has no such destination.
fn destination_entry(
    runtime: &Runtime,
    config: &Config,
    name: &str,
    plugin: &Plugin,
) -> Option<DestinationEntry> {
    let d = config.destinations.get(name)?;
    // What a call of this destination says is scrubbed of the secrets the
    // API hides: the config's own and the plugin's declared secret fields.
    let secrets = d
        .config
        .with_secrets(&plugin.manifest().secret_fields)
        .secrets();
    let destination = runtime
        .destination(plugin, name, d.config.expose().clone(), &d.allow_hosts)
        .with_secrets(secrets);
    Some(DestinationEntry {
        name: name.to_owned(),
        plugin: d.plugin.clone(),
        destination,
        fallback: d.fallback.clone(),
        rate_limits: d
            .rate_limits
            .clone()
            .unwrap_or_else(|| plugin.manifest().rate_limits.clone()),
        concurrency: d.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        enabled: config.destination_active(name),
        retry: d.retry.clone(),
    })
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Builtin => "the built-in plugin".to_owned(),
        Origin::File(path) => path.display().to_string(),
    }
}
