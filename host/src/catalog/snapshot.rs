//! The [`Catalog`] a reload publishes, built from the reloader's state:
//! per plugin its serving build, origin, shadowed builds and errors; per
//! file its state and error.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::state::{FileError, ReloadState, plugin_names};
use super::{
    Candidate, Catalog, FileState, FileStatus, Origin, PluginState, PluginStatus, Shadowed,
    file_name, shadow_reason,
};
use crate::config::Config;

fn time_fields(at: SystemTime) -> (Option<String>, Option<u64>) {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let text = jiff::Timestamp::try_from(at).ok().map(|t| t.to_string());
    (text, ms)
}

/// The catalog the API shows, from the state.
pub(super) fn snapshot(state: &ReloadState, config: &Config) -> Catalog {
    let mut statuses = Vec::new();
    let mut missing = BTreeMap::new();
    for name in plugin_names(state, config) {
        let serving = state.serving.get(&name);
        let mut errors: Vec<String> = state
            .files
            .iter()
            .filter(|(_, s)| s.name.as_deref() == Some(name.as_str()))
            .filter_map(|(path, s)| {
                s.error
                    .as_ref()
                    .map(|e| format!("{}: {}", file_name(path), e.reason()))
            })
            .collect();
        if let Some(note) = state.notes.get(&name) {
            errors.push(note.clone());
        }
        let mut shadowed = Vec::new();
        if let Some(serving) = serving {
            let winner_path = match &serving.origin {
                Origin::File(path) => Some(path.as_path()),
                Origin::Builtin => None,
            };
            for (path, slot) in &state.files {
                let Some(plugin) = &slot.plugin else { continue };
                if plugin.name() != name || Some(path.as_path()) == winner_path {
                    continue;
                }
                let reason = match (config.plugin_pin(&name), winner_path) {
                    (Some(pin), _) if pin != plugin.sha256() => {
                        "refused: does not match the pinned SHA-256".to_owned()
                    }
                    (_, Some(winner)) => shadow_reason(
                        &Candidate {
                            path: winner,
                            version: &serving.plugin.manifest().version,
                        },
                        &Candidate {
                            path,
                            version: &plugin.manifest().version,
                        },
                    ),
                    (_, None) => "not chosen".to_owned(),
                };
                shadowed.push(Shadowed {
                    origin: Origin::File(path.clone()),
                    version: plugin.manifest().version.to_string(),
                    sha256: plugin.sha256().to_owned(),
                    reason,
                });
            }
            if let (Some(builtin), Origin::File(path)) = (state.builtin.get(&name), &serving.origin)
            {
                shadowed.push(Shadowed {
                    origin: Origin::Builtin,
                    version: builtin.manifest().version.to_string(),
                    sha256: builtin.sha256().to_owned(),
                    reason: format!("overridden by {}", file_name(path)),
                });
            }
        }
        let used = config.destinations.values().any(|d| d.plugin == name)
            || config.plugin_pins.contains_key(&name);
        let status = match serving {
            Some(_) => PluginState::Loaded,
            None if used => PluginState::Missing,
            None if !errors.is_empty() => PluginState::Failed,
            None => continue,
        };
        if status != PluginState::Loaded && !errors.is_empty() {
            missing.insert(name.clone(), errors.join("; "));
        }
        if status == PluginState::Missing && errors.is_empty() {
            errors.push(format!(
                "no file in the plugin directory and no built-in plugin provides {name}"
            ));
        }
        let (loaded_at, loaded_at_ms) = serving
            .map(|s| time_fields(s.plugin.loaded_at()))
            .unwrap_or_default();
        statuses.push(PluginStatus {
            name: name.clone(),
            version: serving.map(|s| s.plugin.manifest().version.to_string()),
            wit_version: serving.map(|s| s.plugin.wit_version().to_owned()),
            sha256: serving.map(|s| s.plugin.sha256().to_owned()),
            origin: serving.map(|s| s.origin.clone()),
            status,
            last_error: (!errors.is_empty()).then(|| errors.join("; ")),
            loaded_at,
            loaded_at_ms,
            shadowed,
        });
    }
    // Files that never loaded: listed under their file name.
    for (path, slot) in &state.files {
        if slot.name.is_none()
            && let Some(error) = &slot.error
        {
            statuses.push(PluginStatus {
                name: file_name(path),
                version: None,
                wit_version: None,
                sha256: None,
                origin: Some(Origin::File(path.clone())),
                status: PluginState::Failed,
                last_error: Some(error.reason().to_owned()),
                loaded_at: None,
                loaded_at_ms: None,
                shadowed: Vec::new(),
            });
        }
    }
    statuses.sort_by(|a, b| a.name.cmp(&b.name));

    let mut files: Vec<FileStatus> = state
        .files
        .iter()
        .map(|(path, slot)| {
            let serving = slot
                .plugin
                .as_ref()
                .and_then(|p| state.serving.get(p.name()))
                .is_some_and(|s| s.origin == Origin::File(path.clone()));
            // Replaced or rewritten since it was read: its new content is
            // waiting to settle (the build it gave serves meanwhile).
            let settling = state.settling.contains(path);
            let status = match (&slot.plugin, &slot.error) {
                _ if settling => FileState::Settling,
                (Some(_), _) if serving => FileState::Serving,
                (Some(_), _) => FileState::Shadowed,
                (None, Some(FileError::Refused(_))) => FileState::Refused,
                (None, _) => FileState::Failed,
            };
            FileStatus {
                file: file_name(path),
                path: path.clone(),
                status,
                plugin: slot.name.clone(),
                version: slot
                    .plugin
                    .as_ref()
                    .map(|p| p.manifest().version.to_string()),
                // The hash of content no longer there would pass for the
                // file's.
                sha256: slot.sha256.clone().filter(|_| !settling),
                error: slot.error.as_ref().map(|e| e.reason().to_owned()),
            }
        })
        .collect();
    for path in &state.settling {
        if !state.files.contains_key(path) {
            files.push(FileStatus {
                file: file_name(path),
                path: path.clone(),
                status: FileState::Settling,
                plugin: None,
                version: None,
                sha256: None,
                error: None,
            });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Catalog {
        serving: state
            .serving
            .iter()
            .map(|(n, s)| (n.clone(), s.plugin.clone()))
            .collect(),
        statuses,
        files,
        missing,
    }
}
