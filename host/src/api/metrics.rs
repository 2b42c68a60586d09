//! The API's metrics: requests by route and status, request duration, and
//! events by token and outcome (accepted, duplicate, unrouted, refused).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `route` of a request no route matched (never the raw path).
pub const UNMATCHED: &str = "unmatched";

/// A request method as a label: a standard method, or `other` (a client
/// may send any token as a method, and each would be a new series).
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method: a standard one or `other` ([`method_label`]).
    pub method: String,
    /// The route pattern (`/v1/events/{id}`), never the raw path, or
    /// [`UNMATCHED`].
    pub route: String,
    /// The status code.
    pub status: u16,
}

/// Labels of an ingested event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// The ingest token's name.
    pub token: String,
    /// accepted, duplicate, invalid, forbidden, unrenderable, backpressure.
    pub outcome: String,
}

/// Labels of an unrouted event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The ingest token's name.
    pub token: String,
}

/// Every API metric.
#[derive(Debug)]
pub struct ApiMetrics {
    /// `carillon_http_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `carillon_http_request_duration_seconds`.
    pub duration: Histogram,
    /// `carillon_events_total`.
    pub events: Family<EventLabels, Counter>,
    /// `carillon_events_unrouted_total`: accepted events no route matched.
    pub unrouted: Family<TokenLabels, Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            // 0.5 ms … ~16 s, doubling.
            duration: Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0005, 2.0, 16,
            )),
            events: Family::default(),
            unrouted: Family::default(),
        }
    }
}

impl ApiMetrics {
    /// Registers every metric in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "carillon_http_requests",
            "HTTP requests by method, route and status",
            self.requests.clone(),
        );
        registry.register(
            "carillon_http_request_duration_seconds",
            "HTTP request duration",
            self.duration.clone(),
        );
        registry.register(
            "carillon_events",
            "Events received by ingest token and outcome",
            self.events.clone(),
        );
        registry.register(
            "carillon_events_unrouted",
            "Accepted events that matched no route",
            self.unrouted.clone(),
        );
    }

    /// Counts one request; `method` and `route` must come from a fixed set
    /// ([`method_label`], the router's paths or [`UNMATCHED`]).
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route: route.to_owned(),
                status,
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one event outcome.
    pub fn event(&self, token: &str, outcome: &str) {
        self.events
            .get_or_create(&EventLabels {
                token: token.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
