//! The installed plugins: the built-in ones embedded in the binary and the
//! `.wasm` files in the plugin directory, each with its load status, so the
//! admin API can show what runs and why a file was refused.
//!
//! A file whose plugin has the same manifest name as a built-in one
//! replaces it (a vendor ships a newer version). A file that does not load
//! is recorded with its error and never stops the gateway: the other
//! plugins, and a previous version of the same one, keep serving.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::plugin::{Plugin, Runtime};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum Origin {
    /// Embedded in the binary.
    Builtin,
    /// A file in the plugin directory.
    File(PathBuf),
}

/// One plugin's state as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// The manifest name, or the file name when it never loaded.
    pub name: String,
    /// The manifest version of the version serving now.
    pub version: Option<String>,
    /// SHA-256 of the component serving now.
    pub sha256: Option<String>,
    /// Where the serving version came from.
    pub origin: Option<Origin>,
    /// `loaded`, or `failed` when no version of it serves.
    pub status: &'static str,
    /// The last load error for this name or file, if the last try failed.
    pub last_error: Option<String>,
    /// When the serving version was loaded (ms since the Unix epoch).
    pub loaded_at_ms: Option<u64>,
}

struct Loaded {
    plugin: Arc<Plugin>,
    origin: Origin,
}

/// The set of installed plugins.
#[derive(Default)]
pub struct Catalog {
    loaded: BTreeMap<String, Loaded>,
    /// Load errors by plugin name or file name.
    errors: BTreeMap<String, String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("loaded", &self.loaded.keys().collect::<Vec<_>>())
            .field("errors", &self.errors)
            .finish()
    }
}

impl Catalog {
    /// Loads the built-in plugins, then every `*.wasm` in `plugin_dir` (a
    /// missing directory is an empty one). Only a built-in plugin that
    /// fails is an error: that is a broken build, not a bad file.
    pub async fn load(runtime: &Runtime, plugin_dir: &Path) -> Result<Catalog, CatalogError> {
        let mut catalog = Catalog::default();
        for artifact in carillon_builtin::BUILTIN {
            let plugin = runtime
                .load(artifact.wasm.to_vec())
                .await
                .map_err(|e| CatalogError::Builtin {
                    crate_name: artifact.crate_name,
                    reason: e.to_string(),
                })?;
            catalog.loaded.insert(
                plugin.name().to_owned(),
                Loaded {
                    plugin,
                    origin: Origin::Builtin,
                },
            );
        }
        for path in wasm_files(plugin_dir) {
            catalog.load_file(runtime, &path).await;
        }
        Ok(catalog)
    }

    /// Loads one file; on failure records the error under the file name
    /// and keeps whatever served before.
    pub async fn load_file(&mut self, runtime: &Runtime, path: &Path) {
        let file = path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let loaded = match std::fs::read(path) {
            Ok(wasm) => runtime.load(wasm).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot read the file: {e}")),
        };
        match loaded {
            Ok(plugin) => {
                self.errors.remove(&file);
                self.errors.remove(plugin.name());
                tracing::info!(
                    plugin = plugin.name(),
                    version = %plugin.manifest().version,
                    file = %path.display(),
                    "plugin loaded"
                );
                self.loaded.insert(
                    plugin.name().to_owned(),
                    Loaded {
                        plugin,
                        origin: Origin::File(path.to_owned()),
                    },
                );
            }
            Err(error) => {
                tracing::error!(file = %path.display(), %error, "plugin not loaded");
                self.errors.insert(file, error);
            }
        }
    }

    /// A loaded plugin by manifest name.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.loaded.get(name).map(|l| l.plugin.clone())
    }

    /// Every loaded plugin by name (what config checks and the dispatcher use).
    pub fn plugins(&self) -> HashMap<String, Arc<Plugin>> {
        self.loaded
            .iter()
            .map(|(name, l)| (name.clone(), l.plugin.clone()))
            .collect()
    }

    /// Every plugin and every file that failed, sorted by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        let mut out: Vec<PluginStatus> = self
            .loaded
            .iter()
            .map(|(name, l)| PluginStatus {
                name: name.clone(),
                version: Some(l.plugin.manifest().version.to_string()),
                sha256: Some(l.plugin.sha256().to_owned()),
                origin: Some(l.origin.clone()),
                status: "loaded",
                last_error: self.errors.get(name).cloned(),
                loaded_at_ms: l
                    .plugin
                    .loaded_at()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| u64::try_from(d.as_millis()).ok()),
            })
            .collect();
        for (file, error) in &self.errors {
            if !self.loaded.contains_key(file) {
                out.push(PluginStatus {
                    name: file.clone(),
                    version: None,
                    sha256: None,
                    origin: None,
                    status: "failed",
                    last_error: Some(error.clone()),
                    loaded_at_ms: None,
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

/// The `*.wasm` files of a directory, sorted; none when it does not exist.
fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && p.is_file())
        .collect();
    paths.sort();
    paths
}

/// The plugins could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A plugin embedded in the binary does not load: the build is broken.
    #[error("the built-in plugin {crate_name} does not load: {reason}")]
    Builtin {
        /// Its crate.
        crate_name: &'static str,
        /// Why.
        reason: String,
    },
}
