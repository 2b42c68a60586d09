//! `carillon_plugin_loads_total`: loads of built-in plugins and files by
//! plugin and result.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

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

    pub(super) fn count(&self, plugin: &str, result: LoadResult) {
        self.loads
            .get_or_create(&LoadLabels {
                plugin: plugin.to_owned(),
                result: result.as_str().to_owned(),
            })
            .inc();
    }
}

/// The `result` label of `carillon_plugin_loads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoadResult {
    /// Loaded and accepted.
    Loaded,
    /// Did not load.
    Failed,
    /// Loaded, but the pin or a destination's config refuses it.
    Refused,
}

impl LoadResult {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            LoadResult::Loaded => "loaded",
            LoadResult::Failed => "failed",
            LoadResult::Refused => "refused",
        }
    }
}
