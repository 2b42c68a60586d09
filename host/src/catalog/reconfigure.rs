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
