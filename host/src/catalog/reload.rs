//! The [`Reloader`]: reads the plugin directory, loads what changed off the
//! request path (one file: [`super::load`]), swaps the chosen builds into
//! the [`DestinationRegistry`] (choosing them: [`super::reconcile`]) and
//! publishes the resulting [`Catalog`]. One reload runs at a time (the
//! watcher's and `POST /v1/plugins/reload` take turns).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::metrics::{LoadMetrics, LoadResult};
use super::scan::Scanner;
use super::snapshot::snapshot;
use super::state::ReloadState;
use super::{Catalog, CatalogError};
use crate::config::Config;
use crate::dispatch::registry::DestinationRegistry;
use crate::plugin::Runtime;

/// What started a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first load: files are taken as they are, and destinations are
    /// checked by the config check afterwards (a problem stops the start).
    Start,
    /// A change notification or the periodic rescan: files must have
    /// settled.
    Watch,
    /// `POST /v1/plugins/reload`: files are taken as they are, every file
    /// is read and hashed again (a replacement the stamp misses is found),
    /// and files that failed are tried again.
    Forced,
}

/// Owns the plugin directory's state; shared by the watcher and the API.
pub struct Reloader {
    pub(super) runtime: Runtime,
    pub(super) destinations: Arc<DestinationRegistry>,
    pub(super) dir: PathBuf,
    pub(super) settle: Duration,
    pub(super) state: tokio::sync::Mutex<ReloadState>,
    pub(super) current: RwLock<Arc<Catalog>>,
    pub(super) metrics: LoadMetrics,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Reloader {
    /// A reloader of `dir` that swaps plugins into `destinations`; a file is
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
                self.metrics.count(plugin.name(), LoadResult::Loaded);
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
        for path in &scan.settling {
            if !state.settling.contains(path) {
                tracing::info!(
                    file = %path.display(),
                    known = state.files.contains_key(path),
                    settle = ?self.settle,
                    "plugin file changed; loading it once it has stayed unchanged for the settle time"
                );
            }
        }
        let mut changed = false;
        for (path, stamp) in &scan.ready {
            // A forced reload re-reads every file: only the content's hash
            // tells whether a file whose stamp looks the same was replaced.
            let fresh = trigger == Trigger::Forced
                || state
                    .files
                    .get(path)
                    .is_none_or(|slot| slot.stamp != *stamp);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::catalog::scan::Stamp;
    use crate::catalog::{FileState, LoadLabels, Origin, PluginState};
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
        assert_eq!(echo.status, PluginState::Missing);
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
        assert_eq!(refused.status, FileState::Refused);
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
        assert_eq!(file.status, FileState::Serving);
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

    /// `wasm` with a custom section appended: another build of the same
    /// plugin.
    fn distinct(mut wasm: Vec<u8>, n: u8) -> Vec<u8> {
        wasm.extend([0, 3, 1, b'n', n]);
        wasm
    }

    fn reloader_of(dir: &Path, cache: &Path) -> (Reloader, Arc<DestinationRegistry>) {
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            cache_dir: Some(cache.to_path_buf()),
            ..RuntimeConfig::default()
        })
        .unwrap();
        let destinations = Arc::new(DestinationRegistry::new());
        let reloader = Reloader::new(
            runtime,
            destinations.clone(),
            dir.to_path_buf(),
            Duration::from_secs(3600),
        );
        (reloader, destinations)
    }

    #[tokio::test]
    async fn a_forced_reload_rehashes_files_whose_stamp_looks_unchanged() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (reloader, destinations) = reloader_of(dir.path(), cache.path());
        let path = dir.path().join("echo.wasm");
        let a = distinct(fixture("carillon-fixture-echo-v1"), 1);
        let b = distinct(fixture("carillon-fixture-echo-v1"), 2);
        std::fs::write(&path, &a).unwrap();
        let config = config(dir.path(), "");
        reloader.start(&config).await.unwrap();
        std::fs::write(&path, &b).unwrap();
        // A file system whose stamp misses the replacement.
        reloader
            .state
            .lock()
            .await
            .files
            .get_mut(&path)
            .unwrap()
            .stamp = Stamp::of(&path).unwrap();
        let catalog = reloader.rescan(&config, Trigger::Forced).await;
        let sha_b = hex::encode(Sha256::digest(&b));
        assert_eq!(catalog.get("echo").unwrap().sha256(), sha_b);
        assert_eq!(destinations.plugin("echo").unwrap().sha256(), sha_b);
    }

    #[tokio::test]
    async fn removed_and_replaced_builds_are_dropped() {
        let cache = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (reloader, destinations) = reloader_of(dir.path(), cache.path());
        let config = config(dir.path(), "");
        reloader.start(&config).await.unwrap();
        let base = fixture("carillon-fixture-echo-v1");
        let mut builds = Vec::new();
        for n in 0..6u8 {
            // Installed beside the others, then removed.
            let path = dir.path().join(format!("echo-{n}.wasm"));
            std::fs::write(&path, distinct(base.clone(), n)).unwrap();
            let catalog = reloader.rescan(&config, Trigger::Forced).await;
            let serving = catalog.get("echo").unwrap();
            assert_eq!(
                serving.sha256(),
                hex::encode(Sha256::digest(distinct(base.clone(), n)))
            );
            builds.push(Arc::downgrade(&serving));
            drop((serving, catalog));
            std::fs::remove_file(&path).unwrap();
            reloader.rescan(&config, Trigger::Forced).await;
        }
        // Replaced in place, build after build; then removed.
        let path = dir.path().join("echo.wasm");
        for n in 10..16u8 {
            std::fs::write(&path, distinct(base.clone(), n)).unwrap();
            let catalog = reloader.rescan(&config, Trigger::Forced).await;
            builds.push(Arc::downgrade(&catalog.get("echo").unwrap()));
        }
        std::fs::remove_file(&path).unwrap();
        reloader.rescan(&config, Trigger::Forced).await;
        assert!(destinations.plugin("echo").is_none());
        let live: Vec<usize> = builds
            .iter()
            .enumerate()
            .filter(|(_, w)| w.strong_count() > 0)
            .map(|(i, _)| i)
            .collect();
        assert!(live.is_empty(), "builds still alive: {live:?}");
        // Each load ran `describe` on an instance of its own build; the pool
        // reused one slot set for them all rather than keeping a warm slot
        // (and its resident memory) per build.
        let warm = reloader.runtime.warm_memory_slots();
        assert!(
            warm <= 4,
            "{warm} warm memory slots after one call at a time"
        );
    }
}
