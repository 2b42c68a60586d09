//! The dispatcher's metrics, in the Prometheus/OpenMetrics text format:
//! attempts by destination and outcome, accepted → delivered latency,
//! paused destinations, and (read at scrape time) outbox depth by state
//! and flush batch sizes.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// The destination's name (bounded: destinations come from config).
    pub destination: String,
    /// delivered, retry, rate_limited, rejected, invalid_config,
    /// plugin_failure, dead, deferred, paused.
    pub outcome: String,
}

/// Labels of a destination's gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    /// The destination's name (bounded: destinations come from config).
    pub destination: String,
}

/// Labels of a depth gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// pending, claimed, scheduled, delivered, dead.
    pub state: String,
}

/// Every dispatcher metric.
#[derive(Debug)]
pub struct Metrics {
    /// `carillon_delivery_attempts_total`.
    pub attempts: Family<AttemptLabels, Counter>,
    /// `carillon_delivery_latency_seconds`: accepted → delivered.
    pub latency: Histogram,
    /// `carillon_outbox_deliveries`: depth by state, refreshed by `refresh_outbox`.
    pub depth: Family<StateLabels, Gauge>,
    /// `carillon_outbox_flushes_total`.
    pub flushes: Counter,
    /// `carillon_outbox_flushed_writes_total`: writes covered by flushes.
    pub flushed_writes: Counter,
    /// `carillon_destination_paused`: 1 while a destination is paused by
    /// an `invalid-config` answer.
    pub paused: Family<DestinationLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            attempts: Family::default(),
            // 10 ms … ~3 h, doubling.
            latency: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.01, 2.0, 20,
            )),
            depth: Family::default(),
            flushes: Counter::default(),
            flushed_writes: Counter::default(),
            paused: Family::default(),
        }
    }
}

impl Metrics {
    /// Registers every metric under its name in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carillon_delivery_attempts",
            "Delivery attempts by destination and outcome",
            self.attempts.clone(),
        );
        registry.register(
            "carillon_delivery_latency_seconds",
            "Time from acceptance to delivery",
            self.latency.clone(),
        );
        registry.register(
            "carillon_outbox_deliveries",
            "Deliveries in the outbox by state",
            self.depth.clone(),
        );
        registry.register(
            "carillon_outbox_flushes",
            "Outbox flushes",
            self.flushes.clone(),
        );
        registry.register(
            "carillon_outbox_flushed_writes",
            "Writes made durable by outbox flushes",
            self.flushed_writes.clone(),
        );
        registry.register(
            "carillon_destination_paused",
            "1 while a destination is paused by an invalid-config answer",
            self.paused.clone(),
        );
    }

    /// Marks a destination paused or not.
    pub fn set_paused(&self, destination: &str, paused: bool) {
        self.paused
            .get_or_create(&DestinationLabels {
                destination: destination.to_owned(),
            })
            .set(i64::from(paused));
    }

    /// Counts one attempt.
    pub fn attempt(&self, destination: &str, outcome: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                destination: destination.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Copies the outbox's depth and flush statistics into the gauges.
    pub fn refresh_outbox(&self, outbox: &carillon_outbox::Outbox) {
        let depth = outbox.depth();
        for (state, value) in [
            ("pending", depth.pending),
            ("claimed", depth.claimed),
            ("scheduled", depth.scheduled),
            ("delivered", depth.delivered),
            ("dead", depth.dead),
        ] {
            self.depth
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        let stats = outbox.flush_stats();
        let seen = self.flushes.get();
        self.flushes.inc_by(stats.flushes.saturating_sub(seen));
        let seen = self.flushed_writes.get();
        self.flushed_writes
            .inc_by(stats.writes.saturating_sub(seen));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_exported_with_their_labels() {
        let metrics = Metrics::default();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        metrics.attempt("ops-bot", "delivered");
        metrics.attempt("ops-bot", "delivered");
        metrics.attempt("ops-bot", "retry");
        metrics.latency.observe(0.25);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"carillon_delivery_attempts_total{destination="ops-bot",outcome="delivered"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"outcome="retry"} 1"#), "{text}");
        assert!(
            text.contains("carillon_delivery_latency_seconds_count 1"),
            "{text}"
        );
    }
}
