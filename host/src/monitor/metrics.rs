//! Prometheus metrics of the monitors: pairs firing (refreshed at scrape
//! time), events sent by kind, and readings dropped for want of room.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `kind`: `alert`, `repeat` or `resolved`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// What was sent.
    pub kind: &'static str,
}

/// The monitor metrics.
#[derive(Debug, Default)]
pub struct MonitorMetrics {
    /// Rule × series pairs firing.
    pub firing: Gauge,
    /// Events sent.
    pub sent: Family<KindLabels, Counter>,
    /// Readings dropped: `[monitors] max_series` pairs were watched.
    pub dropped: Counter,
}

impl MonitorMetrics {
    /// Registers every metric.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carillon_monitors_firing",
            "Monitor rule × series pairs firing",
            self.firing.clone(),
        );
        registry.register(
            "carillon_monitor_events",
            "Events monitors sent: alert, repeat, resolved",
            self.sent.clone(),
        );
        registry.register(
            "carillon_monitor_readings_dropped",
            "Readings no pair could take: [monitors] max_series pairs were watched",
            self.dropped.clone(),
        );
    }

    /// Counts an event sent.
    pub fn sent(&self, kind: &'static str) {
        self.sent.get_or_create(&KindLabels { kind }).inc();
    }
}
