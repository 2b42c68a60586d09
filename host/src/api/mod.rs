//! The HTTP API: ingest for applications, the admin API for operators,
//! and the operational endpoints (metrics, health, readiness, OpenAPI).
//!
//! Handlers are thin: they authenticate, read the body within the limit,
//! and call the library (event parsing, routing, rendering, the outbox).
//! Every failure is an [`ApiError`], which owns the status code and the
//! stable `code` of the JSON error body.

pub mod activation;
mod admin;
mod auth;
mod body;
pub mod config_diff;
mod config_reload;
pub mod config_store;
mod contact_import;
pub mod error;
mod ingest;
mod method_keys;
pub mod metrics;
mod monitor_run;
mod monitors;
mod object_view;
mod objects;
mod ops;
pub(crate) mod quota_digest;
mod quota_gate;
pub mod reconfigure;
pub mod serve;
mod sources;
pub mod stored;
mod test_push_record;
mod timer_fire;
mod timers;
mod variables;
pub mod view;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::MethodRouter;
use carillon_outbox::{Clock, Outbox};

pub use self::auth::Principal;
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
use crate::access::Permission;
use crate::catalog::{Catalog, Reloader};
use crate::config::{Config, Overlay};
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
    /// The objects created through the API, merged into `config`.
    pub overlay: Overlay,
    /// Which contact methods are active (shared by every config version).
    pub activations: Arc<activation::Activations>,
    /// The alert quotas' open windows (shared by every config version).
    pub quotas: Arc<crate::quota::Quotas>,
    /// `config`'s view, to tell which sections the next reload changes.
    pub views: config_diff::SectionViews,
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
    /// Where the config came from (a reload reads it again).
    pub source: reconfigure::ConfigSource,
    /// The file text last checked, read (every write checks it again).
    pub raw_cache: crate::config::RawCache,
    /// One config reload or API write at a time.
    pub reload_lock: tokio::sync::Mutex<()>,
    /// The objects created through the API, and the audit log.
    pub store: Arc<carillon_store::Store>,
    /// Which contact methods are active.
    pub activations: Arc<activation::Activations>,
    /// The data sources' pools (`[sources]`, read at start).
    pub sources: Arc<sources::Sources>,
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
    pub source: reconfigure::ConfigSource,
    pub store: Arc<carillon_store::Store>,
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
        let activations = parts.live.activations.clone();
        let sources = Arc::new(sources::Sources::new(&parts.live.config));
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
            source: parts.source,
            raw_cache: Default::default(),
            reload_lock: tokio::sync::Mutex::new(()),
            store: parts.store,
            activations,
            sources,
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

/// One route: method and path as the router and the OpenAPI document
/// spell them, the [`Permission`] its caller's role must hold, and its
/// handler. The router is built from [`ROUTES`] alone, so no route exists
/// without a declared permission.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The path, with `{param}`s.
    pub path: &'static str,
    /// What the caller's role must hold (`docs/roles.md`).
    pub permission: Permission,
    handler: fn() -> MethodRouter<Arc<State>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.method, self.path, self.permission)
    }
}

/// `at!(POST "/v1/path", Permission, handler)`: one [`Endpoint`].
macro_rules! at {
    (GET $path:literal, $permission:ident, $handler:path) => {
        at!(@ "GET", get, $path, $permission, $handler)
    };
    (POST $path:literal, $permission:ident, $handler:path) => {
        at!(@ "POST", post, $path, $permission, $handler)
    };
    (PUT $path:literal, $permission:ident, $handler:path) => {
        at!(@ "PUT", put, $path, $permission, $handler)
    };
    (PATCH $path:literal, $permission:ident, $handler:path) => {
        at!(@ "PATCH", patch, $path, $permission, $handler)
    };
    (DELETE $path:literal, $permission:ident, $handler:path) => {
        at!(@ "DELETE", delete, $path, $permission, $handler)
    };
    (@ $method:literal, $routing:ident, $path:literal, $permission:ident, $handler:path) => {
        Endpoint {
            method: $method,
            path: $path,
            permission: Permission::$permission,
            handler: || axum::routing::$routing($handler),
        }
    };
}

/// Every route, with the permission it requires: one line each. Tests keep
/// it equal to `openapi.json`, walk it × every role, and check
/// `docs/roles.md` lists it.
pub const ROUTES: &[Endpoint] = &[
    at!(POST "/v1/events", Ingest, ingest::events),
    at!(POST "/v1/alertmanager", Ingest, ingest::alertmanager),
    at!(GET "/v1/schema/event", Public, ingest::schema),
    at!(GET "/v1/variables", Read, variables::list),
    at!(POST "/v1/variables", Read, variables::for_event),
    at!(GET "/v1/events/{id}", Read, admin::event),
    at!(GET "/v1/deliveries", Read, admin::deliveries),
    at!(POST "/v1/deliveries/{id}/retry", Operate, admin::retry),
    at!(GET "/v1/plugins", Read, admin::plugins),
    at!(POST "/v1/plugins/reload", Instance, admin::reload_plugins),
    at!(POST "/v1/config/reload", Instance, config_reload::reload),
    at!(GET "/v1/destinations", Read, admin::destinations),
    at!(POST "/v1/destinations/{name}/test", Operate, admin::test_push),
    at!(POST "/v1/destinations/{name}/retry-dead", Operate, admin::retry_dead),
    at!(POST "/v1/destinations/{name}/resume", Operate, admin::resume),
    at!(GET "/v1/workspaces", Read, objects::workspaces),
    at!(GET "/v1/workspaces/{ws}", Read, objects::workspace),
    at!(PUT "/v1/workspaces/{ws}", Edit, objects::put_workspace),
    at!(DELETE "/v1/workspaces/{ws}", Instance, objects::delete_workspace),
    at!(GET "/v1/workspaces/{ws}/audit", Read, objects::audit),
    at!(GET "/v1/workspaces/{ws}/destinations", Read, objects::destinations),
    at!(GET "/v1/workspaces/{ws}/destinations/{name}", Read, objects::destination),
    at!(PUT "/v1/workspaces/{ws}/destinations/{name}", Edit, objects::put_destination),
    at!(DELETE "/v1/workspaces/{ws}/destinations/{name}", Edit, objects::delete_destination),
    at!(GET "/v1/workspaces/{ws}/routes", Read, objects::routes),
    at!(GET "/v1/workspaces/{ws}/routes/{name}", Read, objects::route),
    at!(PUT "/v1/workspaces/{ws}/routes/{name}", Edit, objects::put_route),
    at!(DELETE "/v1/workspaces/{ws}/routes/{name}", Edit, objects::delete_route),
    at!(GET "/v1/workspaces/{ws}/templates", Read, objects::templates),
    at!(GET "/v1/workspaces/{ws}/templates/{name}", Read, objects::template),
    at!(PUT "/v1/workspaces/{ws}/templates/{name}", Edit, objects::put_template),
    at!(DELETE "/v1/workspaces/{ws}/templates/{name}", Edit, objects::delete_template),
    at!(GET "/v1/workspaces/{ws}/contacts", Read, objects::contacts),
    at!(GET "/v1/workspaces/{ws}/contacts/{name}", Read, objects::contact),
    at!(PUT "/v1/workspaces/{ws}/contacts/{name}", Edit, objects::put_contact),
    at!(DELETE "/v1/workspaces/{ws}/contacts/{name}", Edit, objects::delete_contact),
    at!(POST "/v1/workspaces/{ws}/contacts/{name}/methods/{index}/resend", Operate, activation::resend),
    at!(POST "/v1/workspaces/{ws}/contacts/{name}/methods/{index}/activate", Operate, activation::force),
    at!(GET "/v1/activate/{token}", Public, activation::open),
    at!(POST "/v1/workspaces/{ws}/import/contacts", Edit, contact_import::import),
    at!(GET "/v1/workspaces/{ws}/groups", Read, objects::groups),
    at!(GET "/v1/workspaces/{ws}/groups/{name}", Read, objects::group),
    at!(PUT "/v1/workspaces/{ws}/groups/{name}", Edit, objects::put_group),
    at!(DELETE "/v1/workspaces/{ws}/groups/{name}", Edit, objects::delete_group),
    at!(GET "/v1/workspaces/{ws}/sources", Read, sources::list),
    at!(POST "/v1/workspaces/{ws}/sources/{name}/describe", Edit, sources::describe),
    at!(POST "/v1/workspaces/{ws}/sources/{name}/query", Edit, sources::query),
    at!(GET "/v1/timers", Read, timers::list),
    at!(DELETE "/v1/timers/{id}", Operate, timers::cancel),
    at!(GET "/v1/monitors", Read, monitors::list),
    at!(POST "/v1/metrics", Ingest, monitors::push),
    at!(GET "/v1/openapi.json", Public, ops::openapi),
    at!(GET "/metrics", Instance, ops::metrics),
    at!(GET "/healthz", Public, ops::healthz),
    at!(GET "/readyz", Public, ops::readyz),
];

/// The router: every route of [`ROUTES`] behind its permission check, and
/// the request log.
pub fn router(state: Arc<State>) -> Router {
    let mut router = Router::new();
    for endpoint in ROUTES {
        let guard = auth::Guard {
            state: state.clone(),
            permission: endpoint.permission,
        };
        router = router.route(
            endpoint.path,
            (endpoint.handler)()
                .route_layer(axum::middleware::from_fn_with_state(guard, auth::authorize)),
        );
    }
    router
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

/// The tables of `docs/roles.md` drawn from [`ROUTES`] and
/// [`Role::grants`](crate::access::Role::grants): what each route requires
/// and which roles hold it.
pub fn roles_markdown() -> String {
    use crate::access::Role;
    let holders = |p: Permission| -> String {
        if p == Permission::Public {
            return "anyone, no token".to_owned();
        }
        Role::ALL
            .into_iter()
            .filter(|r| r.grants(p))
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("| permission | held by |\n| --- | --- |\n");
    for p in Permission::ALL {
        out.push_str(&format!("| `{p}` | {} |\n", holders(p)));
    }
    out.push_str("\n| route | permission |\n| --- | --- |\n");
    for e in ROUTES {
        out.push_str(&format!(
            "| `{} {}` | `{}` |\n",
            e.method, e.path, e.permission
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::ROUTES;

    /// `docs/roles.md` shows the route table as it is (rewritten with
    /// `UPDATE_EXPECT=1`).
    #[test]
    fn the_roles_doc_lists_every_route_and_its_permission() {
        const BEGIN: &str = "<!-- generated from api::ROUTES: begin -->\n";
        const END: &str = "<!-- generated from api::ROUTES: end -->";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/roles.md");
        let doc = std::fs::read_to_string(&path).expect("docs/roles.md");
        let start = doc.find(BEGIN).expect("the begin marker") + BEGIN.len();
        let end = doc.find(END).expect("the end marker");
        let want = super::roles_markdown();
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            let updated = format!("{}{want}{}", &doc[..start], &doc[end..]);
            std::fs::write(&path, updated).expect("write docs/roles.md");
            return;
        }
        assert_eq!(
            &doc[start..end],
            want,
            "docs/roles.md is out of date; run with UPDATE_EXPECT=1"
        );
    }

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
            .map(|e| (e.method.to_owned(), e.path.to_owned()))
            .collect();
        assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
        // Each operation names the permission its route table entry requires.
        for e in ROUTES {
            let op = &doc["paths"][e.path][e.method.to_lowercase()];
            assert_eq!(
                op["x-carillon-permission"].as_str(),
                Some(e.permission.name()),
                "{e:?}"
            );
        }
        assert_eq!(documented, routed);
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
