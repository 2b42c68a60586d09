//! Taking a reloaded config in (the API's `reconfigure`): the
//! destinations it adds or changes are checked by the plugins serving them
//! (their `validate`), and only when every one passes are the registry
//! entries of every serving plugin's destinations that it changes rebuilt
//! from it (an unchanged destination keeps its entry, which is the same),
//! in one step per plugin, and the catalog published anew.

use std::sync::Arc;

use super::reconcile::destination_entries_where;
use super::reload::Reloader;
use super::snapshot::snapshot;
use crate::config::Config;

impl Reloader {
    /// Swaps `new` in for `old`: every destination that `new` adds or
    /// changes (plugin or settings) must pass its serving plugin's
    /// `validate`; on any refusal nothing changes and each reason is
    /// returned. Destinations `new` drops keep their registry entries, so
    /// deliveries already queued for them still go out with their last
    /// settings; no new event is routed to them.
    ///
    /// `gate` runs after every check passed and before anything is
    /// swapped; its refusal also changes nothing (the API's store write
    /// goes there, so a stored object is always one that is served).
    pub async fn apply_config<E>(
        &self,
        old: &Config,
        new: &Config,
        gate: impl AsyncFnOnce() -> Result<(), E>,
    ) -> Result<(), Refusal<E>> {
        // Holding the state keeps a rescan from swapping a build in with
        // entries of the other config meanwhile.
        let state = self.state.lock().await;
        let mut refused = Vec::new();
        for serving in state.serving.values() {
            let changed = |name: &str| destination_changed(old, new, name);
            if let Err(reason) = self.validate_where(&serving.plugin, new, changed).await {
                refused.push(reason);
            }
        }
        if !refused.is_empty() {
            return Err(Refusal::Plugins(refused));
        }
        gate().await.map_err(Refusal::Gate)?;
        for serving in state.serving.values() {
            let rebuilt = |name: &str| self.entry_outdated(old, new, name);
            let entries = destination_entries_where(&self.runtime, new, &serving.plugin, rebuilt);
            self.destinations
                .swap_plugin(serving.plugin.clone(), entries);
        }
        let catalog = Arc::new(snapshot(&state, new));
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = catalog;
        Ok(())
    }
}

impl Reloader {
    /// Must destination `name`'s registry entry be built from `new`? Not
    /// when `old` has the very same destination, equally active, and the
    /// registry's entry is for its plugin and config: that entry is what
    /// building it again would give (the serving plugin does not change
    /// here), and building thousands of entries dominates a write to a
    /// large directory.
    fn entry_outdated(&self, old: &Config, new: &Config, name: &str) -> bool {
        let (Some(was), Some(is)) = (old.destinations.get(name), new.destinations.get(name)) else {
            return true;
        };
        let current = self.destinations.destination(name);
        was != is
            || old.destination_active(name) != new.destination_active(name)
            || current.is_none_or(|e| {
                e.plugin != is.plugin
                    || e.enabled != new.destination_active(name)
                    || e.destination.config != *is.config.expose()
            })
    }
}

/// Why [`Reloader::apply_config`] changed nothing.
#[derive(Debug)]
pub enum Refusal<E> {
    /// Plugins refuse destinations' settings: each reason.
    Plugins(Vec<String>),
    /// The gate refused.
    Gate(E),
}

/// Is destination `name` new in `new`, or served by another plugin or with
/// other settings than in `old`?
fn destination_changed(old: &Config, new: &Config, name: &str) -> bool {
    match (old.destinations.get(name), new.destinations.get(name)) {
        (Some(was), Some(is)) => {
            was.plugin != is.plugin || was.config.expose() != is.config.expose()
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use crate::catalog::Reloader;
    use crate::config::{Config, Resolver};
    use crate::dispatch::registry::DestinationRegistry;
    use crate::plugin::{Runtime, RuntimeConfig};

    fn config(plugin_dir: &Path, destinations: &[(&str, &str, bool)]) -> Config {
        let mut text = format!(
            "[server]\nplugin_dir = {:?}\n",
            plugin_dir.display().to_string()
        );
        for (name, url, enabled) in destinations {
            text.push_str(&format!(
                "[destinations.{name}]\nplugin = \"webhook\"\nenabled = {enabled}\nconfig = {{ url = \"{url}\" }}\n"
            ));
        }
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: Path::new("."),
        };
        Config::from_toml(&text, &resolver).expect("valid")
    }

    #[tokio::test]
    async fn a_write_rebuilds_the_entries_of_changed_destinations_and_keeps_the_others() {
        let cache = tempfile::tempdir().expect("tempdir");
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            cache_dir: Some(cache.path().to_path_buf()),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        let registry = Arc::new(DestinationRegistry::new());
        let reloader = Reloader::new(
            runtime,
            registry.clone(),
            dir.path().to_path_buf(),
            Duration::from_secs(3600),
        );
        let old = config(
            dir.path(),
            &[
                ("same", "https://a.example/1", true),
                ("moved", "https://a.example/2", true),
                ("paused", "https://a.example/3", true),
            ],
        );
        reloader.start(&old).await.expect("start");
        let entry = |name: &str| registry.destination(name).expect(name);
        let (same, moved, paused) = (entry("same"), entry("moved"), entry("paused"));
        let new = config(
            dir.path(),
            &[
                ("same", "https://a.example/1", true),
                ("moved", "https://b.example/2", true),
                ("paused", "https://a.example/3", false),
                ("added", "https://a.example/4", true),
            ],
        );
        reloader
            .apply_config(&old, &new, async || Ok::<(), ()>(()))
            .await
            .expect("applied");
        assert!(Arc::ptr_eq(&same, &entry("same")), "kept");
        let now = entry("moved");
        assert!(!Arc::ptr_eq(&moved, &now));
        assert_eq!(now.destination.config["url"], "https://b.example/2");
        assert!(now.destination.grant().allows("b.example", 443));
        assert!(paused.enabled && !entry("paused").enabled);
        assert!(entry("added").enabled);

        // An entry that is not what the old config gives is rebuilt even
        // when the destination did not change.
        let stale = config(dir.path(), &[("same", "https://c.example/9", true)]);
        reloader
            .apply_config(&new, &stale, async || Ok::<(), ()>(()))
            .await
            .expect("applied");
        reloader
            .apply_config(&new, &new, async || Ok::<(), ()>(()))
            .await
            .expect("applied");
        assert_eq!(
            entry("same").destination.config["url"],
            "https://a.example/1"
        );
    }
}
