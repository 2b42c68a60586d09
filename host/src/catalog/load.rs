//! Loading one plugin file for the [`Reloader`]: read it, hash it, load
//! and check it (the pin, then every destination's config against its
//! schema and `validate`), and record the result in the file's slot.

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::file_name;
use super::metrics::LoadResult;
use super::reload::{Reloader, Trigger};
use super::scan::Stamp;
use super::state::{FileError, ReloadState, Slot};
use crate::config::Config;
use crate::plugin::Plugin;

impl Reloader {
    /// Reads, loads and checks one file; records the result in its slot.
    /// Returns whether anything was loaded (or failed to).
    pub(super) async fn load_file(
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
                self.record(
                    state,
                    path,
                    stamp,
                    None,
                    None,
                    Err(FileError::NotLoaded(reason)),
                );
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
            Err(e) => Err(FileError::NotLoaded(e.to_string())),
            Ok(plugin) => match config.plugin_pin(plugin.name()) {
                Some(pin) if pin != plugin.sha256() => Err(FileError::Refused(format!(
                    "{} {} has SHA-256 {}, but [channels.{}] pins sha256 = \"{pin}\"",
                    plugin.name(),
                    plugin.manifest().version,
                    plugin.sha256(),
                    plugin.name(),
                ))),
                _ if trigger != Trigger::Start => match self.validate(&plugin, config).await {
                    Ok(()) => Ok(plugin),
                    Err(reason) => Err(FileError::Refused(reason)),
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
            Err(error) => tracing::error!(
                file = %path.display(),
                error = %error.reason(),
                "plugin file {}; what served before keeps serving",
                match error {
                    FileError::NotLoaded(_) => "not loaded",
                    FileError::Refused(_) => "refused",
                }
            ),
        }
        let metric_name = loaded_name
            .clone()
            .or_else(|| state.files.get(path).and_then(|s| s.name.clone()))
            .unwrap_or(file);
        let label = match &result {
            Ok(_) => LoadResult::Loaded,
            Err(error) => error.load_result(),
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
        result: Result<Arc<Plugin>, FileError>,
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
            Err(error) => {
                slot.error = Some(error);
            }
        }
    }

    /// Checks every destination of `plugin`'s name against it: the JSON
    /// Schema, then the plugin's own `validate`.
    pub(super) async fn validate(&self, plugin: &Plugin, config: &Config) -> Result<(), String> {
        self.validate_where(plugin, config, |_| true).await
    }

    /// [`validate`](Self::validate), for the destinations `wanted` names.
    pub(super) async fn validate_where(
        &self,
        plugin: &Plugin,
        config: &Config,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        for (name, d) in config
            .destinations
            .iter()
            .filter(|(name, d)| d.plugin == plugin.name() && wanted(name))
        {
            // Messages may quote the config: hide what this build declares
            // secret as well as what the config itself marks.
            let shown = d.config.with_secrets(&plugin.manifest().secret_fields);
            let issues = self
                .runtime
                .validate(plugin, d.config.expose())
                .await
                .map_err(|e| {
                    format!(
                        "validate() failed for destination {name:?}: {}",
                        shown.scrub(&e.to_string())
                    )
                })?;
            if !issues.is_empty() {
                let list: Vec<String> = issues
                    .iter()
                    .map(|i| {
                        let at = if i.path.is_empty() { "/" } else { &i.path };
                        format!("{at}: {}", shown.scrub(&i.message))
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
}
