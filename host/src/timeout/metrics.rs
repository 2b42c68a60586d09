//! Prometheus metrics of the task timers: how many are armed (read from
//! the outbox at scrape time) and how many fired, on time or late.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `late="true"` for a timer that fired past its deadline (see
/// `events::LATE_AFTER`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FiredLabels {
    /// `true` or `false`.
    pub late: &'static str,
}

/// The timer metrics.
#[derive(Debug, Default)]
pub struct TimerMetrics {
    /// Armed timers, refreshed at scrape time.
    pub armed: Gauge,
    /// Timers fired.
    pub fired: Family<FiredLabels, Counter>,
}

impl TimerMetrics {
    /// Registers every metric.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carillon_timers_armed",
            "Timers armed and not yet fired (task timeouts)",
            self.armed.clone(),
        );
        registry.register(
            "carillon_timers_fired",
            "Timers fired, by whether they fired late (the gateway was down or behind)",
            self.fired.clone(),
        );
    }

    /// Counts a fired timer.
    pub fn fired(&self, late: bool) {
        self.fired
            .get_or_create(&FiredLabels {
                late: if late { "true" } else { "false" },
            })
            .inc();
    }

    /// Sets the armed gauge from the outbox.
    pub fn refresh(&self, outbox: &carillon_outbox::Outbox) {
        self.armed
            .set(i64::try_from(outbox.armed_timers()).unwrap_or(i64::MAX));
    }
}
