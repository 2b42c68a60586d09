//! What the [`Reloader`](super::Reloader) keeps between reloads: every
//! file's last result, the built-in plugins, and the build serving each
//! plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use super::Origin;
use super::metrics::LoadResult;
use super::scan::{Scanner, Stamp};
use crate::config::Config;
use crate::plugin::Plugin;

/// Why a file's current content does not serve.
#[derive(Debug, Clone)]
pub(super) enum FileError {
    /// It did not load: unreadable, not a plugin, a bad manifest.
    NotLoaded(String),
    /// It loaded, but the pin or a destination's config refuses it.
    Refused(String),
}

impl FileError {
    pub(super) fn reason(&self) -> &str {
        match self {
            FileError::NotLoaded(reason) | FileError::Refused(reason) => reason,
        }
    }

    /// How the load counts in `carillon_plugin_loads_total`.
    pub(super) fn load_result(&self) -> LoadResult {
        match self {
            FileError::NotLoaded(_) => LoadResult::Failed,
            FileError::Refused(_) => LoadResult::Refused,
        }
    }
}

/// One file of the plugin directory.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) stamp: Stamp,
    /// SHA-256 of the content last read.
    pub(super) sha256: Option<String>,
    /// The plugin this file provides or provided.
    pub(super) name: Option<String>,
    /// The last build of this file that loaded and was accepted; kept when
    /// newer content fails, so the previous version keeps serving.
    pub(super) plugin: Option<Arc<Plugin>>,
    /// Why the current content does not serve.
    pub(super) error: Option<FileError>,
}

/// The build serving a plugin.
#[derive(Debug, Clone)]
pub(super) struct Serving {
    pub(super) plugin: Arc<Plugin>,
    pub(super) origin: Origin,
}

/// Everything a reload reads and changes.
#[derive(Debug)]
pub(super) struct ReloadState {
    pub(super) scanner: Scanner,
    pub(super) builtin: BTreeMap<String, Arc<Plugin>>,
    pub(super) files: BTreeMap<PathBuf, Slot>,
    pub(super) serving: BTreeMap<String, Serving>,
    /// Problems of a plugin that belong to no file (the built-in one
    /// refused, no build left).
    pub(super) notes: BTreeMap<String, String>,
    pub(super) settling: Vec<PathBuf>,
}

/// Every plugin name worth a decision or a status line.
pub(super) fn plugin_names(state: &ReloadState, config: &Config) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = state.builtin.keys().cloned().collect();
    names.extend(state.files.values().filter_map(|s| s.name.clone()));
    names.extend(state.serving.keys().cloned());
    names.extend(config.destinations.values().map(|d| d.plugin.clone()));
    names.extend(config.plugin_pins.keys().cloned());
    names
}
