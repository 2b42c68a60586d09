//! The [`Reloader`]: reads the plugin directory, loads what changed off the
//! request path, checks it, swaps the chosen builds into the
//! [`DestinationRegistry`] and publishes the resulting [`Catalog`]. One reload runs at
//! a time (the watcher's and `POST /v1/plugins/reload` take turns).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};

use super::scan::{Scanner, Stamp};
use super::{
    Candidate, Catalog, CatalogError, FileStatus, Origin, PluginStatus, Shadowed, file_name,
    preferred, shadow_reason,
};
use crate::config::Config;
use crate::dispatch::registry::{DestinationEntry, DestinationRegistry};
use crate::plugin::{Plugin, Runtime};

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first load: files are taken as they are, and destinations are
    /// checked by the config check afterwards (a problem stops the start).
    Start,
    /// A change notification or the periodic rescan: files must have
    /// settled.
    Watch,
    /// `POST /v1/plugins/reload`: files are taken as they are, and files
    /// that failed are tried again.
    Forced,
}

/// Labels of `carillon_plugin_loads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoadLabels {
    /// The plugin's name, or the file name when it never loaded.
    pub plugin: String,
    /// `loaded`, `failed` or `refused`.
    pub result: String,
}

/// Plugin load metrics.
#[derive(Debug, Default)]
pub struct LoadMetrics {
    /// `carillon_plugin_loads_total`: loads of built-in plugins and files.
    pub loads: Family<LoadLabels, Counter>,
}

impl LoadMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carillon_plugin_loads",
            "Plugin loads by plugin (or file name) and result: loaded, failed (does not load), refused (SHA-256 pin or a destination's config)",
            self.loads.clone(),
        );
    }

    fn count(&self, plugin: &str, result: &str) {
        self.loads
            .get_or_create(&LoadLabels {
                plugin: plugin.to_owned(),
                result: result.to_owned(),
            })
            .inc();
    }
}

/// Why a file's current content does not serve.
#[derive(Debug, Clone)]
struct FileError {
    /// Loaded, but refused (pin, destination config); else it did not load.
    refused: bool,
    reason: String,
}

/// One file of the plugin directory.
#[derive(Debug)]
struct Slot {
    stamp: Stamp,
    /// SHA-256 of the content last read.
    sha256: Option<String>,
    /// The plugin this file provides or provided.
    name: Option<String>,
    /// The last build of this file that loaded and was accepted; kept when
    /// newer content fails, so the previous version keeps serving.
    plugin: Option<Arc<Plugin>>,
    /// Why the current content does not serve.
    error: Option<FileError>,
}

/// The build serving a plugin.
#[derive(Debug, Clone)]
struct Serving {
    plugin: Arc<Plugin>,
    origin: Origin,
}

/// Everything a reload reads and changes.
#[derive(Debug)]
struct ReloadState {
    scanner: Scanner,
    builtin: BTreeMap<String, Arc<Plugin>>,
    files: BTreeMap<PathBuf, Slot>,
    serving: BTreeMap<String, Serving>,
    /// Problems of a plugin that belong to no file (the built-in one
    /// refused, no build left).
    notes: BTreeMap<String, String>,
    settling: Vec<PathBuf>,
}

/// Owns the plugin directory's state; shared by the watcher and the API.
pub struct Reloader {
    runtime: Runtime,
    destinations: Arc<DestinationRegistry>,
    dir: PathBuf,
    settle: Duration,
    state: tokio::sync::Mutex<ReloadState>,
    current: RwLock<Arc<Catalog>>,
    metrics: LoadMetrics,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `dir` that swaps plugins into `directory`; a file is
    /// loaded once unchanged for `settle` (see [`super::scan`]). Nothing is
    /// loaded before [`start`](Self::start).
    pub fn new(
        runtime: Runtime,
        destinations: Arc<DestinationRegistry>,
        dir: PathBuf,
        settle: Duration,
    ) -> Self {
        Reloader {
            runtime,
            destinations,
            dir,
            settle,
            state: tokio::sync::Mutex::new(ReloadState {
                scanner: Scanner::new(settle),
                builtin: BTreeMap::new(),
                files: BTreeMap::new(),
                serving: BTreeMap::new(),
                notes: BTreeMap::new(),
                settling: Vec::new(),
            }),
            current: RwLock::new(Arc::new(Catalog::default())),
            metrics: LoadMetrics::default(),
        }
    }

    /// Loads the built-in plugins, then every file of the directory as it
    /// is. Only a built-in plugin that does not load is an error: that is a
    /// broken build, not a bad file.
    pub async fn start(&self, config: &Config) -> Result<Arc<Catalog>, CatalogError> {
        {
            let mut state = self.state.lock().await;
            for artifact in carillon_builtin::BUILTIN {
                let plugin = self
                    .runtime
                    .load(artifact.wasm.to_vec())
                    .await
                    .map_err(|e| CatalogError::Builtin {
                        crate_name: artifact.crate_name,
                        reason: e.to_string(),
                    })?;
                self.metrics.count(plugin.name(), "loaded");
                state.builtin.insert(plugin.name().to_owned(), plugin);
            }
        }
        Ok(self.rescan(config, Trigger::Start).await)
    }

    /// The catalog as of the last reload.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The load metrics (registered with the API's registry).
    pub fn metrics(&self) -> &LoadMetrics {
        &self.metrics
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long a file must stay unchanged before it is loaded.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// Reads the directory and applies what changed: loads new and changed
    /// files that are complete, checks them against `config`, swaps the
    /// chosen builds in, falls back (or pauses) for removed files, prunes
    /// the compiled-artifact cache, and publishes the new catalog.
    pub async fn rescan(&self, config: &Config, trigger: Trigger) -> Arc<Catalog> {
        let mut state = self.state.lock().await;
        let take_as_is = trigger != Trigger::Watch;
        let Some(scan) = state.scanner.scan(&self.dir, Instant::now(), take_as_is) else {
            return self.catalog();
        };
        let mut changed = false;
        for (path, stamp) in &scan.ready {
            let fresh = match state.files.get(path) {
                None => true,
                Some(slot) => {
                    slot.stamp != *stamp || (trigger == Trigger::Forced && slot.error.is_some())
                }
            };
            if fresh {
                changed |= self
                    .load_file(&mut state, path, *stamp, config, trigger)
                    .await;
            }
        }
        let gone: Vec<PathBuf> = state
            .files
            .keys()
            .filter(|p| !scan.holds(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some(slot) = state.files.remove(&path) {
                tracing::info!(file = %path.display(), plugin = slot.name.as_deref().unwrap_or("-"), "plugin file removed");
                changed = true;
            }
        }
        state.settling = scan.settling;
        self.reconcile(&mut state, config, trigger).await;
        if changed || trigger == Trigger::Start {
            self.prune(&state).await;
        }
        let catalog = Arc::new(snapshot(&state, config));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = catalog.clone();
        catalog
    }

    /// Reads, loads and checks one file; records the result in its slot.
    /// Returns whether anything was loaded (or failed to).
    async fn load_file(
        &self,
        state: &mut ReloadState,
        path: &Path,
        stamp: Stamp,
        config: &Config,
        trigger: Trigger,
    ) -> bool {
        let file = file_name(path);
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            // Gone since the listing: the next scan sees that.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                let reason = format!("cannot read the file: {e}");
                self.record(state, path, stamp, None, None, Err((false, reason)));
                return true;
            }
        };
        // Changed while it was read: the next scan sees the new stamp.
        if Stamp::of(path).ok() != Some(stamp) {
            return false;
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if let Some(slot) = state.files.get_mut(path)
            && slot.sha256.as_deref() == Some(sha256.as_str())
            && slot.error.is_none()
            && slot.plugin.is_some()
        {
            // Touched, not changed.
            slot.stamp = stamp;
            return false;
        }
        let loaded = self.runtime.load(bytes).await;
        let loaded_name = loaded.as_ref().ok().map(|p| p.name().to_owned());
        let result = match loaded {
            Err(e) => Err((false, e.to_string())),
            Ok(plugin) => match config.plugin_pin(plugin.name()) {
                Some(pin) if pin != plugin.sha256() => Err((
                    true,
                    format!(
                        "{} {} has SHA-256 {}, but [channels.{}] pins sha256 = \"{pin}\"",
                        plugin.name(),
                        plugin.manifest().version,
                        plugin.sha256(),
                        plugin.name(),
                    ),
                )),
                _ if trigger != Trigger::Start => match self.validate(&plugin, config).await {
                    Ok(()) => Ok(plugin),
                    Err(reason) => Err((true, reason)),
                },
                _ => Ok(plugin),
            },
        };
        match &result {
            Ok(plugin) => tracing::info!(
                file = %path.display(),
                plugin = plugin.name(),
                version = %plugin.manifest().version,
                sha256 = plugin.sha256(),
                "plugin file loaded"
            ),
            Err((refused, reason)) => tracing::error!(
                file = %path.display(),
                error = %reason,
                "plugin file {}; what served before keeps serving",
                if *refused { "refused" } else { "not loaded" }
            ),
        }
        let metric_name = loaded_name
            .clone()
            .or_else(|| state.files.get(path).and_then(|s| s.name.clone()))
            .unwrap_or(file);
        let label = match &result {
            Ok(_) => "loaded",
            Err((true, _)) => "refused",
            Err((false, _)) => "failed",
        };
        self.metrics.count(&metric_name, label);
        self.record(state, path, stamp, Some(sha256), loaded_name, result);
        true
    }

    /// Stores a file's result in its slot.
    fn record(
        &self,
        state: &mut ReloadState,
        path: &Path,
        stamp: Stamp,
        sha256: Option<String>,
        name: Option<String>,
        result: Result<Arc<Plugin>, (bool, String)>,
    ) {
        let slot = state.files.entry(path.to_owned()).or_insert(Slot {
            stamp,
            sha256: None,
            name: None,
            plugin: None,
            error: None,
        });
        slot.stamp = stamp;
        slot.sha256 = sha256;
        if name.is_some() {
            slot.name = name;
        }
        match result {
            Ok(plugin) => {
                slot.plugin = Some(plugin);
                slot.error = None;
            }
            Err((refused, reason)) => {
                slot.error = Some(FileError { refused, reason });
            }
        }
    }

    /// Checks every destination of `plugin`'s name against it: the JSON
    /// Schema, then the plugin's own `validate`.
    async fn validate(&self, plugin: &Plugin, config: &Config) -> Result<(), String> {
        for (name, d) in config
            .destinations
            .iter()
            .filter(|(_, d)| d.plugin == plugin.name())
        {
            let issues = self
                .runtime
                .validate(plugin, d.config.expose())
                .await
                .map_err(|e| {
                    format!(
                        "validate() failed for destination {name:?}: {}",
                        d.config.scrub(&e.to_string())
                    )
                })?;
            if !issues.is_empty() {
                let list: Vec<String> = issues
                    .iter()
                    .map(|i| {
                        let at = if i.path.is_empty() { "/" } else { &i.path };
                        format!("{at}: {}", d.config.scrub(&i.message))
                    })
                    .collect();
                return Err(format!(
                    "the config of destination {name:?} does not validate against {} {}: {}",
                    plugin.name(),
                    plugin.manifest().version,
                    list.join("; ")
                ));
            }
        }
        Ok(())
    }

    /// Chooses the serving build of every plugin and swaps what changed
    /// into the directory.
    async fn reconcile(&self, state: &mut ReloadState, config: &Config, trigger: Trigger) {
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
                    slot.error.get_or_insert_with(|| FileError {
                        refused: true,
                        reason: format!(
                            "{name} {} has SHA-256 {}, but [channels.{name}] pins sha256 = \"{pin}\"",
                            plugin.manifest().version,
                            plugin.sha256()
                        ),
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
                                    self.metrics.count(&name, "refused");
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

    /// Removes compiled artifacts of builds no longer in use.
    async fn prune(&self, state: &ReloadState) {
        let mut keep: BTreeSet<String> = state
            .builtin
            .values()
            .map(|p| p.sha256().to_owned())
            .collect();
        keep.extend(
            state
                .files
                .values()
                .filter_map(|s| s.plugin.as_ref().map(|p| p.sha256().to_owned())),
        );
        keep.extend(state.serving.values().map(|s| s.plugin.sha256().to_owned()));
        let keep: Vec<String> = keep.into_iter().collect();
        let runtime = self.runtime.clone();
        match tokio::task::spawn_blocking(move || runtime.prune_cache(&keep)).await {
            Ok(0) => {}
            Ok(removed) => {
                tracing::debug!(removed, "stale compiled plugins removed from the cache")
            }
            Err(error) => tracing::warn!(%error, "the cache pruning task failed"),
        }
    }
}

/// The destination entries of every destination that uses `plugin`, with
/// grants computed for its manifest.
fn destination_entries(
    runtime: &Runtime,
    config: &Config,
    plugin: &Plugin,
) -> Vec<DestinationEntry> {
    config
        .destinations
        .iter()
        .filter(|(_, d)| d.plugin == plugin.name())
        .filter_map(|(name, _)| crate::gateway::destination_entry(runtime, config, name, plugin))
        .collect()
}

/// Every plugin name worth a decision or a status line.
fn plugin_names(state: &ReloadState, config: &Config) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = state.builtin.keys().cloned().collect();
    names.extend(state.files.values().filter_map(|s| s.name.clone()));
    names.extend(state.serving.keys().cloned());
    names.extend(config.destinations.values().map(|d| d.plugin.clone()));
    names.extend(config.plugin_pins.keys().cloned());
    names
}

fn origin_text(origin: &Origin) -> String {
    match origin {
        Origin::Builtin => "the built-in plugin".to_owned(),
        Origin::File(path) => path.display().to_string(),
    }
}

fn time_fields(at: SystemTime) -> (Option<String>, Option<u64>) {
    let ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let text = jiff::Timestamp::try_from(at).ok().map(|t| t.to_string());
    (text, ms)
}

/// The catalog the API shows, from the state.
fn snapshot(state: &ReloadState, config: &Config) -> Catalog {
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
                    .map(|e| format!("{}: {}", file_name(path), e.reason))
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
            Some(_) => "loaded",
            None if used => "missing",
            None if !errors.is_empty() => "failed",
            None => continue,
        };
        if status != "loaded" && !errors.is_empty() {
            missing.insert(name.clone(), errors.join("; "));
        }
        if status == "missing" && errors.is_empty() {
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
                status: "failed",
                last_error: Some(error.reason.clone()),
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
            let status = match (&slot.plugin, &slot.error) {
                (Some(_), _) if serving => "serving",
                (Some(_), _) => "shadowed",
                (None, Some(e)) if e.refused => "refused",
                (None, _) => "failed",
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
                sha256: slot.sha256.clone(),
                error: slot.error.as_ref().map(|e| e.reason.clone()),
            }
        })
        .collect();
    for path in &state.settling {
        if !state.files.contains_key(path) {
            files.push(FileStatus {
                file: file_name(path),
                path: path.clone(),
                status: "settling",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Resolver;
    use crate::plugin::RuntimeConfig;

    fn fixture(crate_name: &str) -> Vec<u8> {
        let path = carillon_builtin::path(crate_name).unwrap();
        std::fs::read(path).unwrap()
    }

    fn config(plugin_dir: &Path, extra: &str) -> Config {
        let text = format!(
            "[server]\nplugin_dir = {:?}\n\n[destinations.e]\nplugin = \"echo\"\nconfig = {{ url = \"https://hooks.example.com/in\" }}\n{extra}",
            plugin_dir.display().to_string()
        );
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: Path::new("."),
        };
        Config::from_toml(&text, &resolver).unwrap()
    }

    fn origin_of(catalog: &Catalog, name: &str) -> Option<Origin> {
        catalog
            .statuses()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.origin)
    }

    #[tokio::test]
    async fn files_override_builtins_the_newest_wins_and_removals_fall_back() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        // Version 2 under the earlier name still wins over version 1.
        std::fs::write(
            dir.path().join("a.wasm"),
            fixture("carillon-fixture-echo-v2"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.wasm"),
            fixture("carillon-fixture-echo-v1"),
        )
        .unwrap();
        let webhook = carillon_builtin::builtin("carillon-plugin-webhook").unwrap();
        std::fs::write(dir.path().join("webhook.wasm"), webhook).unwrap();
        let config = config(dir.path(), "");
        let destinations = Arc::new(DestinationRegistry::new());
        let reloader = Reloader::new(
            runtime.clone(),
            destinations.clone(),
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
        );
        let catalog = reloader.start(&config).await.unwrap();
        assert_eq!(
            catalog.get("echo").unwrap().manifest().version.to_string(),
            "2.0.0"
        );
        assert_eq!(
            origin_of(&catalog, "echo"),
            Some(Origin::File(dir.path().join("a.wasm")))
        );
        let echo = catalog
            .statuses()
            .into_iter()
            .find(|s| s.name == "echo")
            .unwrap();
        assert_eq!(echo.shadowed.len(), 1);
        assert_eq!(echo.shadowed[0].version, "1.0.0");
        // A file overrides the built-in plugin of the same name.
        assert_eq!(
            origin_of(&catalog, "webhook"),
            Some(Origin::File(dir.path().join("webhook.wasm")))
        );
        let (entry, plugin) = destinations.resolve("e").unwrap();
        assert_eq!(plugin.unwrap().manifest().version.to_string(), "2.0.0");
        assert!(entry.destination.grant().allows("hooks.example.com", 443));

        // Removed files fall back: to the other file, then to nothing (the
        // destination stays, its plugin is missing); to the built-in one.
        std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
        std::fs::remove_file(dir.path().join("webhook.wasm")).unwrap();
        let catalog = reloader.rescan(&config, Trigger::Forced).await;
        assert_eq!(
            destinations
                .plugin("echo")
                .unwrap()
                .manifest()
                .version
                .to_string(),
            "1.0.0"
        );
        assert_eq!(origin_of(&catalog, "webhook"), Some(Origin::Builtin));
        std::fs::remove_file(dir.path().join("b.wasm")).unwrap();
        let catalog = reloader.rescan(&config, Trigger::Forced).await;
        assert!(destinations.plugin("echo").is_none());
        assert!(matches!(destinations.resolve("e"), Some((_, None))));
        let echo = catalog
            .statuses()
            .into_iter()
            .find(|s| s.name == "echo")
            .unwrap();
        assert_eq!(echo.status, "missing");
        assert!(echo.last_error.unwrap().contains("b.wasm was removed"));

        // Only the artifacts in use stay cached.
        let cached = std::fs::read_dir(cache.path()).unwrap().count();
        assert_eq!(cached, carillon_builtin::BUILTIN.len());
    }

    #[tokio::test]
    async fn a_pin_refuses_other_files_and_a_failed_file_keeps_the_previous_build() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let v1 = fixture("carillon-fixture-echo-v1");
        let pin = hex::encode(Sha256::digest(&v1));
        std::fs::write(dir.path().join("echo.wasm"), &v1).unwrap();
        std::fs::write(
            dir.path().join("echo-2.wasm"),
            fixture("carillon-fixture-echo-v2"),
        )
        .unwrap();
        let config = config(
            dir.path(),
            &format!("[channels.echo]\nsha256 = \"{pin}\"\n"),
        );
        let destinations = Arc::new(DestinationRegistry::new());
        let reloader = Reloader::new(
            runtime,
            destinations.clone(),
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
        );
        let catalog = reloader.start(&config).await.unwrap();
        assert_eq!(catalog.get("echo").unwrap().sha256(), pin);
        let refused = catalog
            .files()
            .iter()
            .find(|f| f.file == "echo-2.wasm")
            .unwrap();
        assert_eq!(refused.status, "refused");
        assert!(refused.error.as_deref().unwrap().contains("pins sha256"));

        // The serving file rewritten with garbage: its previous build serves on.
        std::fs::write(dir.path().join("echo.wasm"), b"not wasm at all").unwrap();
        let catalog = reloader.rescan(&config, Trigger::Forced).await;
        assert_eq!(catalog.get("echo").unwrap().sha256(), pin);
        let file = catalog
            .files()
            .iter()
            .find(|f| f.file == "echo.wasm")
            .unwrap();
        assert_eq!(file.status, "serving");
        assert!(
            file.error
                .as_deref()
                .unwrap()
                .starts_with("not a WebAssembly file")
        );
        assert_eq!(
            reloader
                .metrics()
                .loads
                .get_or_create(&LoadLabels {
                    plugin: "echo".into(),
                    result: "failed".into()
                })
                .get(),
            1
        );
    }
}
