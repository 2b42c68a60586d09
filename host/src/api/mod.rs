//! The HTTP API: ingest for applications, the admin API for operators,
//! and the operational endpoints (metrics, health, readiness, OpenAPI).
//!
//! Handlers are thin: they authenticate, read the body within the limit,
//! and call the library (event parsing, routing, rendering, the outbox).
//! Every failure is an [`ApiError`], which owns the status code and the
//! stable `code` of the JSON error body.

mod admin;
mod auth;
mod body;
pub mod error;
mod ingest;
pub mod metrics;
mod monitor_run;
mod monitors;
mod ops;
pub mod serve;
pub mod stored;
mod timer_fire;
mod timers;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{delete, get, post};
use carillon_outbox::{Clock, Outbox};

pub use self::error::ApiError;
pub(crate) use self::ingest::prepare;
use self::metrics::ApiMetrics;
pub use self::monitor_run::run as run_monitors;
pub use self::timer_fire::{fire_due, run as run_timers};

/// A listing's `limit` query parameter: 100 when absent, 1 to 1,000 (a
/// page is read and answered whole, so its size is bounded).
fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(100);
    if (1..=1000).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::InvalidParameter {
            name: "limit",
            message: "must be between 1 and 1000".into(),
        })
    }
}
use crate::catalog::{Catalog, Reloader};
use crate::config::Config;
use crate::dispatch::Waker;
use crate::dispatch::registry::DestinationRegistry;
use crate::plugin::Runtime;
use crate::render::Renderer;
use crate::route::Router as EventRouter;

/// Everything that comes from the configuration, swapped as a whole.
pub struct Live {
    /// The validated config (tokens filled in).
    pub config: Config,
    /// The routing rules.
    pub router: EventRouter,
    /// The compiled templates.
    pub renderer: Renderer,
}

/// The state every handler shares.
pub struct State {
    live: RwLock<Arc<Live>>,
    /// The durable outbox.
    pub outbox: Arc<Outbox>,
    /// The plugin runtime (test pushes).
    pub runtime: Runtime,
    /// Destinations and plugins, shared with the dispatcher.
    pub destinations: Arc<DestinationRegistry>,
    /// Installed plugins, their load status, and reloading them.
    pub plugins: Arc<Reloader>,
    /// Request and event metrics.
    pub metrics: Arc<ApiMetrics>,
    /// The task timers' metrics (armed refreshed at scrape time).
    pub timer_metrics: Arc<crate::timeout::metrics::TimerMetrics>,
    /// The dispatcher's metrics (refreshed at scrape time).
    pub dispatch_metrics: Arc<crate::dispatch::metrics::Metrics>,
    /// The resource monitors: rules, the pairs they watch, metrics.
    pub monitors: Arc<crate::monitor::Monitors>,
    registry: prometheus_client::registry::Registry,
    /// Wakes the dispatcher after an enqueue.
    pub waker: Waker,
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    ready: AtomicBool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

/// The parts a [`State`] is built from.
#[allow(missing_docs)]
pub struct Parts {
    pub live: Live,
    pub outbox: Arc<Outbox>,
    pub runtime: Runtime,
    pub destinations: Arc<DestinationRegistry>,
    pub plugins: Arc<Reloader>,
    pub dispatch_metrics: Arc<crate::dispatch::metrics::Metrics>,
    pub monitors: Arc<crate::monitor::Monitors>,
    pub waker: Waker,
    pub clock: Arc<dyn Clock>,
}

impl State {
    /// Builds the state (not ready until [`State::set_ready`]).
    pub fn new(parts: Parts) -> Arc<State> {
        let metrics = Arc::new(ApiMetrics::default());
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        parts.dispatch_metrics.register(&mut registry);
        parts.plugins.metrics().register(&mut registry);
        let timer_metrics = Arc::new(crate::timeout::metrics::TimerMetrics::default());
        timer_metrics.register(&mut registry);
        parts.monitors.metrics.register(&mut registry);
        Arc::new(State {
            live: RwLock::new(Arc::new(parts.live)),
            outbox: parts.outbox,
            runtime: parts.runtime,
            destinations: parts.destinations,
            plugins: parts.plugins,
            metrics,
            timer_metrics,
            dispatch_metrics: parts.dispatch_metrics,
            monitors: parts.monitors,
            registry,
            waker: parts.waker,
            clock: parts.clock,
            ready: AtomicBool::new(false),
        })
    }

    /// The configuration in force.
    pub fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Replaces the configuration (reload).
    pub fn set_live(&self, live: Live) {
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
    }

    /// The installed plugins, as of the last reload.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.plugins.catalog()
    }

    /// Marks the gateway ready (plugins loaded, outbox open) or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Is the gateway ready to accept events? Not once the outbox's
    /// storage failed: sled refuses every write after its first failed
    /// one, until the gateway restarts.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && self.outbox.storage_failure().is_none()
    }
}

/// Every route: method and path as the router and the OpenAPI document
/// spell them (a test keeps the three in step).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/events"),
    ("POST", "/v1/alertmanager"),
    ("GET", "/v1/schema/event"),
    ("GET", "/v1/events/{id}"),
    ("GET", "/v1/deliveries"),
    ("POST", "/v1/deliveries/{id}/retry"),
    ("GET", "/v1/plugins"),
    ("POST", "/v1/plugins/reload"),
    ("GET", "/v1/destinations"),
    ("POST", "/v1/destinations/{name}/test"),
    ("POST", "/v1/destinations/{name}/retry-dead"),
    ("GET", "/v1/timers"),
    ("DELETE", "/v1/timers/{id}"),
    ("GET", "/v1/monitors"),
    ("POST", "/v1/metrics"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
];

/// The router with every route and the request log.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/events", post(ingest::events))
        .route("/v1/alertmanager", post(ingest::alertmanager))
        .route("/v1/schema/event", get(ingest::schema))
        .route("/v1/events/{id}", get(admin::event))
        .route("/v1/deliveries", get(admin::deliveries))
        .route("/v1/deliveries/{id}/retry", post(admin::retry))
        .route("/v1/plugins", get(admin::plugins))
        .route("/v1/plugins/reload", post(admin::reload_plugins))
        .route("/v1/destinations", get(admin::destinations))
        .route("/v1/destinations/{name}/test", post(admin::test_push))
        .route(
            "/v1/destinations/{name}/retry-dead",
            post(admin::retry_dead),
        )
        .route("/v1/timers", get(timers::list))
        .route("/v1/timers/{id}", delete(timers::cancel))
        .route("/v1/monitors", get(monitors::list))
        .route("/v1/metrics", post(monitors::push))
        .route("/v1/openapi.json", get(ops::openapi))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(ops::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_log,
        ))
        .with_state(state)
}

/// Logs each request (method, route, status, time; never headers or
/// bodies) and counts it.
async fn request_log(
    axum::extract::State(state): axum::extract::State<Arc<State>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    // Both come from a fixed set, whatever the client sent: they are
    // metrics labels, which are never forgotten.
    let method = metrics::method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| metrics::UNMATCHED.to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!("request", method, route = %route);
    let response = tracing::Instrument::instrument(next.run(request), span.clone()).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.request(method, &route, status, elapsed);
    // Debug, not info: at ingest rates a line per request costs more than
    // the request's own parsing, and the request metrics count the same.
    // Each accepted event still logs one info line with its id.
    tracing::debug!(parent: &span, status, elapsed_ms = elapsed.as_millis() as u64, "request");
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ROUTES;

    /// The OpenAPI document describes exactly the routes the router has
    /// (the end-to-end tests check that the router serves each of them).
    #[test]
    fn openapi_documents_every_route_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(super::ops::OPENAPI).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, routed);
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
