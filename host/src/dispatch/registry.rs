//! What the dispatcher delivers to: destinations by name and the loaded
//! plugins they use. Lookups happen per delivery, so a plugin swapped in
//! later serves later deliveries while running ones finish on the version
//! they started with (they hold its `Arc`).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::limit::RateKey;
use super::pause::Pauses;
use super::retry::RetryPolicy;
use crate::plugin::types::RateLimit;
use crate::plugin::{Destination, Plugin};

/// One configured destination, ready to deliver to.
#[derive(Debug, Clone)]
pub struct DestinationEntry {
    /// The name events and routes use.
    pub name: String,
    /// The plugin's name (looked up per delivery).
    pub plugin: String,
    /// Config and grant, as the runtime takes them.
    pub destination: Destination,
    /// Where a dead delivery goes next, if anywhere.
    pub fallback: Option<String>,
    /// The rate limits to shape to (the config's override or the manifest's).
    pub rate_limits: Vec<RateLimit>,
    /// Deliveries to this destination that may run at once.
    pub concurrency: usize,
    /// A disabled destination keeps its deliveries waiting.
    pub enabled: bool,
    /// Its own retry schedule; `None`: the dispatcher's.
    pub retry: Option<RetryPolicy>,
}

impl DestinationEntry {
    /// The credential the vendor counts this destination's sends against
    /// (its endpoint values as `plugin`'s manifest names them); its own
    /// while no version of its plugin is loaded.
    pub fn rate_key(&self, plugin: Option<&Plugin>) -> RateKey {
        match plugin {
            Some(plugin) => RateKey::derive(
                &self.plugin,
                &plugin.manifest().endpoint_fields,
                &self.destination.config,
                &self.name,
            ),
            None => RateKey::own(&self.plugin, &self.name),
        }
    }
}

/// Destinations and plugins, shared by the dispatcher and the API.
#[derive(Debug, Default)]
pub struct DestinationRegistry {
    destinations: RwLock<HashMap<String, Arc<DestinationEntry>>>,
    plugins: RwLock<HashMap<String, Arc<Plugin>>>,
    global_fallback: RwLock<Option<String>>,
    pauses: Pauses,
    /// Contacts' methods not activated yet: an escalation passes them by.
    inactive: RwLock<std::collections::HashSet<String>>,
}

impl DestinationRegistry {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a destination.
    pub fn set_destination(&self, entry: DestinationEntry) {
        let mut map = self.destinations.write().unwrap_or_else(|p| p.into_inner());
        map.insert(entry.name.clone(), Arc::new(entry));
    }

    /// Adds or replaces a plugin under its manifest name.
    pub fn set_plugin(&self, plugin: Arc<Plugin>) {
        let mut map = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        map.insert(plugin.name().to_owned(), plugin);
    }

    /// Swaps in `plugin` and, in the same step, the entries of the
    /// destinations that use it (their grants follow the new manifest). An
    /// attempt that [`resolve`](Self::resolve)s meanwhile sees either the
    /// old plugin with the old entry or the new plugin with the new one.
    pub fn swap_plugin(&self, plugin: Arc<Plugin>, entries: Vec<DestinationEntry>) {
        // Lock order: destinations, then plugins (as in `resolve`).
        let mut destinations = self.destinations.write().unwrap_or_else(|p| p.into_inner());
        let mut plugins = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        for entry in entries {
            destinations.insert(entry.name.clone(), Arc::new(entry));
        }
        plugins.insert(plugin.name().to_owned(), plugin);
    }

    /// A destination and the plugin serving it now, read together (see
    /// [`swap_plugin`](Self::swap_plugin)); the plugin is `None` while no
    /// version of it is loaded.
    pub fn resolve(
        &self,
        destination: &str,
    ) -> Option<(Arc<DestinationEntry>, Option<Arc<Plugin>>)> {
        let destinations = self.destinations.read().unwrap_or_else(|p| p.into_inner());
        let entry = destinations.get(destination)?.clone();
        let plugins = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        let plugin = plugins.get(&entry.plugin).cloned();
        Some((entry, plugin))
    }

    /// Removes a plugin; its destinations' deliveries wait until one returns.
    pub fn remove_plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        let mut map = self.plugins.write().unwrap_or_else(|p| p.into_inner());
        map.remove(name)
    }

    /// The destinations paused by an `invalid-config` answer.
    pub fn pauses(&self) -> &Pauses {
        &self.pauses
    }

    /// Sets the destination every chain of fallbacks ends at.
    pub fn set_global_fallback(&self, name: Option<String>) {
        *self
            .global_fallback
            .write()
            .unwrap_or_else(|p| p.into_inner()) = name;
    }

    /// A destination by name.
    pub fn destination(&self, name: &str) -> Option<Arc<DestinationEntry>> {
        let map = self.destinations.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// A plugin by name.
    pub fn plugin(&self, name: &str) -> Option<Arc<Plugin>> {
        let map = self.plugins.read().unwrap_or_else(|p| p.into_inner());
        map.get(name).cloned()
    }

    /// Sets the contact methods that are not active yet.
    pub fn set_inactive(&self, destinations: std::collections::HashSet<String>) {
        *self.inactive.write().unwrap_or_else(|p| p.into_inner()) = destinations;
    }

    /// Is `destination` a contact's method that is not active yet?
    pub fn is_inactive(&self, destination: &str) -> bool {
        self.inactive
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(destination)
    }

    /// Where a delivery to `destination` goes when it is dead-lettered: the
    /// destination's own fallback, else the global fallback, never itself.
    pub fn fallback_for(&self, destination: &str) -> Option<String> {
        let own = self
            .destination(destination)
            .and_then(|d| d.fallback.clone());
        let global = self
            .global_fallback
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        own.or(global).filter(|next| next != destination)
    }
}
