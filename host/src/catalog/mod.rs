//! The installed plugins: which build serves each plugin name, where it came
//! from, what it shadows, and why a file was refused — for the dispatcher
//! (through the [`DestinationRegistry`](crate::dispatch::registry::DestinationRegistry)), the
//! config check and `GET /v1/plugins`.
//!
//! # Which build serves a plugin
//!
//! - The first-party plugins are built in (embedded in the binary).
//! - A `.wasm` file in `server.plugin_dir` whose manifest has the same name
//!   as a built-in plugin overrides it, whatever its version.
//! - When several files name the same plugin, the newest semantic version
//!   wins (build metadata ignored); between equal versions, the later file
//!   name (byte order) wins. The others are listed as shadowed.
//! - `[channels.NAME] sha256 = "…"` pins a plugin: a file with another hash
//!   is refused, and so is the built-in one if its hash differs.
//! - A file that does not load (not a component, another world, an
//!   unsupported WIT version, a bad manifest) or is refused (the pin, or a
//!   destination's config that does not validate against it) changes
//!   nothing: whatever served before keeps serving, and the error is shown
//!   with the file name. A plugin is swapped only after it loaded and every
//!   destination using it validated against it (JSON Schema and
//!   `validate`).
//! - A removed file falls back to the next candidate: another file, else the
//!   built-in plugin; with none, the plugin is missing and its destinations'
//!   deliveries wait in the outbox until a version returns.
//!
//! Files are read at start, then whenever the directory changes (see
//! [`watch`]) or on `POST /v1/plugins/reload`; [`scan`] says which files
//! count and when a file being written is complete. [`Reloader`] owns the
//! mutable state (`state`) and publishes each result as an immutable
//! [`Catalog`] (`snapshot`).

mod load;
mod metrics;
mod reconcile;
mod reconfigure;
mod reload;
pub(crate) mod scan;
mod snapshot;
mod state;
pub mod watch;

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use self::metrics::{LoadLabels, LoadMetrics};
pub use self::reconcile::DEFAULT_CONCURRENCY;
pub use self::reconfigure::Refusal;
pub use self::reload::{Reloader, Trigger};
use crate::config::Config;
use crate::dispatch::registry::DestinationRegistry;
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

/// A build of a plugin that could serve but does not.
#[derive(Debug, Clone, Serialize)]
pub struct Shadowed {
    /// Where it is.
    pub origin: Origin,
    /// Its manifest version.
    pub version: String,
    /// SHA-256 of its `.wasm`.
    pub sha256: String,
    /// Why another build serves instead.
    pub reason: String,
}

/// One plugin's state as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// The manifest name, or the file name when it never loaded.
    pub name: String,
    /// The manifest version of the build serving now.
    pub version: Option<String>,
    /// The `carillon:plugin` WIT version it was built against.
    pub wit_version: Option<String>,
    /// SHA-256 of the build serving now.
    pub sha256: Option<String>,
    /// Where the serving build came from.
    pub origin: Option<Origin>,
    /// Whether a build serves.
    pub status: PluginState,
    /// The load errors and refusals of this plugin's files, `file: reason`.
    pub last_error: Option<String>,
    /// When the serving build was loaded (RFC 3339).
    pub loaded_at: Option<String>,
    /// The same, in ms since the Unix epoch.
    pub loaded_at_ms: Option<u64>,
    /// The other builds of this plugin that do not serve, and why.
    pub shadowed: Vec<Shadowed>,
}

/// One file of the plugin directory as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    /// The file name.
    pub file: String,
    /// Its path.
    pub path: PathBuf,
    /// What became of it.
    pub status: FileState,
    /// The plugin it provides (or provided), when known.
    pub plugin: Option<String>,
    /// The version it provides.
    pub version: Option<String>,
    /// SHA-256 of its content as last read.
    pub sha256: Option<String>,
    /// Why its current content does not serve. With `serving` or
    /// `shadowed`, the previous content of the file still does.
    pub error: Option<String>,
}

/// Whether a plugin serves (`status` in `GET /v1/plugins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// A build serves.
    Loaded,
    /// Destinations use it but no build serves: their deliveries wait.
    Missing,
    /// A file that never loaded.
    Failed,
}

/// What became of a file of the plugin directory (`status` in
/// `GET /v1/plugins`, per file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// Its plugin's serving build.
    Serving,
    /// Loaded, but another build serves.
    Shadowed,
    /// Does not load.
    Failed,
    /// Loads, but the pin or a destination's config refuses it.
    Refused,
    /// New, or changed since it was read, and still being written: not
    /// considered yet (a changed file's previous build serves meanwhile).
    Settling,
}

/// The installed plugins at one moment (immutable; a reload publishes a
/// new one).
#[derive(Default)]
pub struct Catalog {
    serving: BTreeMap<String, Arc<Plugin>>,
    statuses: Vec<PluginStatus>,
    files: Vec<FileStatus>,
    /// Why a plugin that does not serve was refused or lost, when known.
    missing: BTreeMap<String, String>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("serving", &self.serving.keys().collect::<Vec<_>>())
            .field("files", &self.files.len())
            .finish()
    }
}

impl Catalog {
    /// The plugins `config` would run on: the built-in ones and the files
    /// of `config.server.plugin_dir`, chosen by the rules above, taken as
    /// they are (no settle wait, no watching). What `config check` uses.
    pub async fn load(runtime: &Runtime, config: &Config) -> Result<Arc<Catalog>, CatalogError> {
        Reloader::new(
            runtime.clone(),
            Arc::new(DestinationRegistry::new()),
            config.server.plugin_dir.clone(),
            Duration::ZERO,
        )
        .start(config)
        .await
    }

    /// The build serving plugin `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.serving.get(name).cloned()
    }

    /// Every serving plugin by name (what config checks use).
    pub fn plugins(&self) -> HashMap<String, Arc<Plugin>> {
        self.serving
            .iter()
            .map(|(name, p)| (name.clone(), p.clone()))
            .collect()
    }

    /// Every plugin, and every file that never loaded, sorted by name.
    pub fn statuses(&self) -> Vec<PluginStatus> {
        self.statuses.clone()
    }

    /// Every file of the plugin directory, sorted by path.
    pub fn files(&self) -> &[FileStatus] {
        &self.files
    }

    /// Files still being written (not considered yet).
    pub fn settling(&self) -> usize {
        self.files
            .iter()
            .filter(|f| f.status == FileState::Settling)
            .count()
    }
}

impl crate::config::PluginCatalog for Catalog {
    fn has_plugin(&self, name: &str) -> bool {
        self.serving.contains_key(name)
    }

    fn plugin_names(&self) -> Vec<String> {
        self.serving.keys().cloned().collect()
    }

    fn schema_issues(
        &self,
        name: &str,
        config: &serde_json::Value,
    ) -> Vec<crate::plugin::types::ConfigIssue> {
        self.serving
            .get(name)
            .map(|p| p.schema_issues(config))
            .unwrap_or_default()
    }

    fn why_missing(&self, name: &str) -> Option<String> {
        self.missing.get(name).cloned()
    }

    fn secret_fields(&self, name: &str) -> Vec<String> {
        self.serving
            .get(name)
            .map(|p| p.manifest().secret_fields.clone())
            .unwrap_or_default()
    }
}

/// A loaded file that could serve its plugin, as the selection sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate<'a> {
    /// The file.
    pub path: &'a Path,
    /// Its manifest version.
    pub version: &'a semver::Version,
}

/// Orders candidates by preference: the newer version (by semver
/// precedence, so build metadata does not count) first, then the later
/// file name.
pub(crate) fn prefer(a: &Candidate<'_>, b: &Candidate<'_>) -> Ordering {
    a.version
        .cmp_precedence(b.version)
        .then_with(|| a.path.file_name().cmp(&b.path.file_name()))
        .then_with(|| a.path.cmp(b.path))
}

/// The index of the candidate that serves, if any.
pub(crate) fn preferred(candidates: &[Candidate<'_>]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .max_by(|(_, a), (_, b)| prefer(a, b))
        .map(|(i, _)| i)
}

/// Why `other` does not serve when `winner` does (both of one plugin).
pub(crate) fn shadow_reason(winner: &Candidate<'_>, other: &Candidate<'_>) -> String {
    match other.version.cmp_precedence(winner.version) {
        Ordering::Less => format!("an older version than {}", winner.version),
        Ordering::Equal => format!(
            "the same version as {}, whose file name sorts later",
            file_name(winner.path)
        ),
        Ordering::Greater => "not chosen".to_owned(),
    }
}

/// The file name of `path`, for messages.
pub(crate) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> semver::Version {
        semver::Version::parse(s).unwrap()
    }

    #[test]
    fn the_newest_version_wins_whatever_the_file_name() {
        let (a, b, c) = (v("1.2.0"), v("1.10.0"), v("1.9.9"));
        let files = [
            Candidate {
                path: Path::new("/p/z-echo.wasm"),
                version: &a,
            },
            Candidate {
                path: Path::new("/p/a-echo.wasm"),
                version: &b,
            },
            Candidate {
                path: Path::new("/p/m-echo.wasm"),
                version: &c,
            },
        ];
        assert_eq!(preferred(&files), Some(1));
        assert_eq!(
            shadow_reason(&files[1], &files[0]),
            "an older version than 1.10.0"
        );
    }

    #[test]
    fn between_equal_versions_the_later_file_name_wins() {
        // Build metadata does not make a version newer.
        let (a, b) = (v("2.0.0+build.9"), v("2.0.0+build.1"));
        let files = [
            Candidate {
                path: Path::new("/p/echo-b.wasm"),
                version: &a,
            },
            Candidate {
                path: Path::new("/p/echo-c.wasm"),
                version: &b,
            },
        ];
        assert_eq!(preferred(&files), Some(1));
        assert!(shadow_reason(&files[1], &files[0]).contains("echo-c.wasm"));
    }

    #[test]
    fn statuses_serialize_as_the_api_has_always_shown_them() {
        let plugin = [
            (PluginState::Loaded, "loaded"),
            (PluginState::Missing, "missing"),
            (PluginState::Failed, "failed"),
        ];
        for (state, shown) in plugin {
            assert_eq!(serde_json::to_value(state).unwrap(), shown);
        }
        let file = [
            (FileState::Serving, "serving"),
            (FileState::Shadowed, "shadowed"),
            (FileState::Failed, "failed"),
            (FileState::Refused, "refused"),
            (FileState::Settling, "settling"),
        ];
        for (state, shown) in file {
            assert_eq!(serde_json::to_value(state).unwrap(), shown);
        }
    }

    #[test]
    fn a_pre_release_is_older_than_its_release() {
        let (a, b) = (v("2.0.0-rc.1"), v("2.0.0"));
        let files = [
            Candidate {
                path: Path::new("/p/z.wasm"),
                version: &a,
            },
            Candidate {
                path: Path::new("/p/a.wasm"),
                version: &b,
            },
        ];
        assert_eq!(preferred(&files), Some(1));
        assert_eq!(preferred(&[]), None);
    }
}
