//! Ingest: `POST /v1/events` (Carillon's envelope, single or batch, and
//! CloudEvents in structured, batch and binary mode), `POST
//! /v1/alertmanager`, and the published event schema.
//!
//! Per event: check the token may post its type (and name its
//! destinations), route it, render one message per destination (a render
//! error is a 422 now, never a surprise at send time), then enqueue the
//! event and its deliveries in the outbox and answer only once that is
//! durable.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use carillon_outbox::{Enqueued, NewDelivery, NewEvent};
use futures_util::future::join_all;
use serde::Serialize;

use super::error::ApiError;
use super::quota_gate::QuotaGate;
use super::stored::{Routing, Skipped, StoredEvent, Target};
use super::{Live, Principal, State, auth, body};
use crate::config::{ServerLimits, Token};
use crate::event::{self, Event, FieldError, ParseError, Parsed};
use crate::message::Message;

/// `GET /v1/schema/event`: the JSON Schema of Carillon's event envelope.
pub async fn schema() -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/schema+json")],
        Json(event::schema().clone()),
    )
}

/// `POST /v1/events`.
pub async fn events(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    ingest(state, principal, headers, request, event::parse_events).await
}

/// `POST /v1/alertmanager`: Alertmanager's webhook (version 4); one event
/// per alert.
pub async fn alertmanager(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let (max_alerts, expansion) = {
        let limits = &principal.live.config.server.limits;
        (
            limits.alertmanager_max_alerts,
            limits.alertmanager_max_expansion,
        )
    };
    ingest(state, principal, headers, request, move |_, b, now| {
        let limits = event::AlertLimits {
            max_alerts,
            max_stored_bytes: b
                .len()
                .saturating_mul(expansion)
                .saturating_add(ServerLimits::EXPANSION_ALLOWANCE),
        };
        event::parse_alertmanager_within(b, now, limits)
    })
    .await
}

async fn ingest(
    state: Arc<State>,
    principal: Principal,
    headers: HeaderMap,
    request: Body,
    parse: impl FnOnce(&HeaderMap, &[u8], jiff::Timestamp) -> Result<Parsed, ParseError>,
) -> Result<Response, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "the gateway is not ready (starting or shutting down)".into(),
        ));
    }
    let live = principal.live.clone();
    let token = principal.token();
    let header_key = idempotency_header(&headers)?;
    let bytes = body::read(&headers, request, &live.config.server).await?;
    let parsed = match parse(&headers, &bytes, super::view::to_jiff(state.clock.now())) {
        Ok(parsed) => parsed,
        Err(e) => {
            state.metrics.event(&token.name, "invalid");
            return Err(parse_error(e));
        }
    };
    let single = !parsed.batch && parsed.items.len() == 1;
    let work = parsed.items.into_iter().map(|item| {
        let (state, live, header_key) = (&state, &live, header_key.clone());
        async move {
            let mut event = item.map_err(ApiError::InvalidEvent)?;
            if single && event.idempotency_key.is_none() {
                event.idempotency_key = header_key;
            }
            accept(state, live, token, event).await
        }
    });
    let results = join_all(work).await;
    for r in &results {
        let outcome = match r {
            Ok(a) if a.duplicate => "duplicate",
            Ok(_) => "accepted",
            Err(e) => e.code(),
        };
        state.metrics.event(&token.name, outcome);
    }
    if single {
        return match results.into_iter().next() {
            Some(Ok(accepted)) => Ok(accepted.into_response()),
            Some(Err(e)) => Err(e),
            None => Err(ApiError::Internal("no item".into())),
        };
    }
    // A batch: one result per item, in order. If nothing was taken
    // because the outbox is full, the whole request is a 503 to retry.
    if !results.is_empty()
        && results
            .iter()
            .all(|r| matches!(r, Err(ApiError::Backpressure { .. })))
    {
        if let Some(Err(e)) = results.into_iter().next() {
            return Err(e);
        }
        return Err(ApiError::Internal("no item".into()));
    }
    let items: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(a) => {
                let mut v = serde_json::to_value(&a.body).unwrap_or_default();
                if let Some(map) = v.as_object_mut() {
                    map.insert("status".into(), a.status().as_u16().into());
                }
                v
            }
            Err(e) => serde_json::json!({
                "status": e.status().as_u16(),
                "error": e.body().error,
            }),
        })
        .collect();
    Ok((StatusCode::OK, Json(serde_json::json!({ "items": items }))).into_response())
}

/// The `Idempotency-Key` header, which stands for the key of a single
/// event that does not carry one. It is remembered for the idempotency
/// window, so it has the envelope field's limits (1 to 256 characters).
fn idempotency_header(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let invalid = |message: String| {
        ApiError::InvalidEvent(vec![FieldError {
            path: "header:idempotency-key".into(),
            message,
        }])
    };
    let text = value
        .to_str()
        .map_err(|_| invalid("must be visible ASCII text".into()))?;
    event::check_idempotency_key(text).map_err(invalid)?;
    Ok(Some(text.to_owned()))
}

/// The answer for one accepted (or duplicate) event.
#[derive(Debug)]
struct Accepted {
    duplicate: bool,
    body: AcceptedBody,
}

/// `202`/`200` body.
#[derive(Debug, Serialize)]
struct AcceptedBody {
    /// The event id (the original one for a duplicate).
    id: String,
    /// `accepted`, or `duplicate` for a repeated idempotency key.
    result: &'static str,
    /// No route matched: recorded, delivered nowhere.
    unrouted: bool,
    /// One delivery per destination.
    deliveries: Vec<DeliveryRef>,
}

#[derive(Debug, Serialize)]
struct DeliveryRef {
    destination: String,
    id: String,
}

impl Accepted {
    fn status(&self) -> StatusCode {
        if self.duplicate {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        }
    }
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body)).into_response()
    }
}

/// Routes, renders and durably enqueues one event, in a span that carries
/// its id once it has one.
async fn accept(
    state: &State,
    live: &Live,
    token: &Token,
    event: Event,
) -> Result<Accepted, ApiError> {
    let span = tracing::info_span!(
        "event",
        r#type = %event.event_type,
        token = %token.name,
        event = tracing::field::Empty,
    );
    tracing::Instrument::instrument(
        accept_in_span(state, live, token, event, &span),
        span.clone(),
    )
    .await
}

async fn accept_in_span(
    state: &State,
    live: &Live,
    token: &Token,
    event: Event,
    span: &tracing::Span,
) -> Result<Accepted, ApiError> {
    if !auth::allows_type(token, &event.event_type) {
        return Err(ApiError::Forbidden(format!(
            "token {:?} may not post events of type {:?}",
            token.name, event.event_type
        )));
    }
    let workspace = token.ingest_workspace();
    if let Some(named) = &event.destinations {
        for (i, d) in named.iter().enumerate() {
            // Another workspace's destination does not exist for this token.
            if live.config.destination_workspace(d) != Some(workspace) {
                return Err(ApiError::InvalidEvent(vec![FieldError {
                    path: format!("/destinations/{i}"),
                    message: format!("no destination is named {d:?}"),
                }]));
            }
            if !auth::allows_destination(token, d) {
                return Err(ApiError::Forbidden(format!(
                    "token {:?} may not send to destination {d:?}",
                    token.name
                )));
            }
        }
    }
    // A task's timer (armed by `task.started`, disarmed by its
    // completion) is written with the event: nothing is armed unless it
    // is accepted.
    let timer = crate::timeout::plan(
        &live.config.timeouts,
        &event,
        &token.name,
        workspace,
        super::view::to_jiff(state.clock.now()),
    )
    .map_err(ApiError::InvalidEvent)?;
    let completion = timer.is_disarm().then(|| event.clone());
    // A gauge for the monitors: checked before anything is stored, fed to
    // them once the event is.
    let gauge = crate::monitor::gauge_reading(&event).map_err(ApiError::InvalidEvent)?;
    let prepared = prepare(live, &token.name, workspace, event)?;
    let unrouted = prepared.unrouted;
    // A window's digest timer is re-armed with every event it holds back,
    // in the event's write: the digest knows every acknowledged hold.
    let enqueued = state
        .outbox
        .enqueue_arming(
            prepared.event,
            prepared.deliveries,
            timer.into_op(),
            prepared.quota.arms,
        )
        .await;
    let (enqueued, effect) = match enqueued {
        Ok(ok) => ok,
        Err(e) => {
            live.quotas.release(&prepared.quota.claims);
            return Err(ApiError::from(e));
        }
    };
    let (duplicate, id, list) = match enqueued {
        Enqueued::Accepted {
            event_id,
            deliveries,
        } => (false, event_id, deliveries),
        Enqueued::Duplicate {
            event_id,
            deliveries,
        } => {
            // The first acceptance counted; this one is not a new alert.
            live.quotas.release(&prepared.quota.claims);
            (true, event_id, deliveries)
        }
    };
    span.record("event", tracing::field::display(&id));
    if !duplicate {
        state.waker.wake();
        if unrouted {
            state
                .metrics
                .unrouted
                .get_or_create(&super::metrics::TokenLabels {
                    token: token.name.clone(),
                })
                .inc();
        }
        if let Some(completion) = completion {
            super::timer_fire::after_completion(
                state,
                live,
                &token.name,
                workspace,
                completion,
                &effect,
            )
            .await;
        }
        if let Some(reading) = gauge {
            super::monitor_run::observe(
                state,
                std::slice::from_ref(&reading),
                super::monitor_run::Scope::Touched,
            )
            .await;
        }
    }
    tracing::info!(
        deliveries = list.len(),
        unrouted,
        duplicate,
        "event accepted"
    );
    Ok(Accepted {
        duplicate,
        body: AcceptedBody {
            id: id.to_string(),
            result: if duplicate { "duplicate" } else { "accepted" },
            unrouted,
            deliveries: list
                .into_iter()
                .map(|(destination, id)| DeliveryRef {
                    destination,
                    id: id.to_string(),
                })
                .collect(),
        },
    })
}

/// An event routed and rendered for every target: what to enqueue.
pub(crate) struct Prepared {
    /// The outbox's event (its body is the [`StoredEvent`]).
    pub event: NewEvent,
    /// One delivery per target.
    pub deliveries: Vec<NewDelivery>,
    /// No route matched and no destination was named.
    pub unrouted: bool,
    /// What the alert quotas counted, and the digest timers to arm.
    pub quota: QuotaGate,
}

/// How [`prepare_with`] treats contacts' methods and alert quotas.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A posted or raised event: pending methods are skipped, quotas count.
    Alert,
    /// A contact's activation message: to its method while still pending.
    Activation,
    /// A quota's digest: past the quota it reports on.
    Digest,
}

/// Routes `event` (posted with the ingest token `token` into `workspace`)
/// and renders one message per target: what ingest enqueues for a posted
/// event, and what the gateway enqueues for an event it raises itself
/// (`task.timeout`).
pub(crate) fn prepare(
    live: &Live,
    token: &str,
    workspace: &str,
    event: Event,
) -> Result<Prepared, ApiError> {
    prepare_with(live, token, workspace, event, Mode::Alert)
}

/// [`prepare`] for a contact's activation message, which goes to its
/// method while that method is still pending.
pub(crate) fn prepare_unfiltered(
    live: &Live,
    token: &str,
    workspace: &str,
    event: Event,
) -> Result<Prepared, ApiError> {
    prepare_with(live, token, workspace, event, Mode::Activation)
}

/// [`prepare`] for a quota's digest, which no quota holds back.
pub(crate) fn prepare_digest(
    live: &Live,
    workspace: &str,
    event: Event,
) -> Result<Prepared, ApiError> {
    prepare_with(live, "carillon", workspace, event, Mode::Digest)
}

fn prepare_with(
    live: &Live,
    token: &str,
    workspace: &str,
    event: Event,
    mode: Mode,
) -> Result<Prepared, ApiError> {
    let skip_pending = mode != Mode::Activation;
    let mut quota = QuotaGate::default();
    let decision = live.router.decide(workspace, &event);
    let mut routing = Routing {
        unrouted: decision.is_unrouted(),
        explicit: decision.explicit,
        matched: decision.matched.clone(),
        targets: Vec::new(),
        skipped: Vec::new(),
        suppressed: Vec::new(),
    };
    let mut deliveries = Vec::new();
    for target in &decision.targets {
        // A contact's method receives alerts only once activated; each
        // skip is recorded on the event.
        if skip_pending && !live.activations.allows(&live.config, &target.destination) {
            let contact = live
                .config
                .destinations
                .get(&target.destination)
                .and_then(|d| d.contact.clone())
                .unwrap_or_default();
            routing.skipped.push(Skipped {
                destination: target.destination.clone(),
                contact,
                reason: "the contact has not activated this method yet".into(),
            });
            continue;
        }
        if mode == Mode::Alert
            && let Some(held) = quota.hold(live, workspace, &event, target)
        {
            routing.suppressed.push(held);
            continue;
        }
        let (mut message, template, locale) = render_for(
            live,
            &event,
            &target.destination,
            target.template.as_deref(),
        )?;
        add_route_mentions(live, workspace, target, &mut message);
        routing.targets.push(Target {
            destination: target.destination.clone(),
            route: target.route.clone(),
            template,
            locale,
        });
        let escalation = escalation(
            live,
            &event,
            &target.destination,
            target.template.as_deref(),
        );
        deliveries.push(NewDelivery {
            destination: target.destination.clone(),
            payload: message.to_payload_with(&escalation),
        });
    }
    let unrouted = routing.unrouted;
    let stored = StoredEvent {
        v: 1,
        token: token.to_owned(),
        workspace: workspace.to_owned(),
        event,
        routing,
    };
    let new_event = NewEvent {
        // Idempotency keys are scoped to the token and the event's source,
        // so one application cannot suppress another's events.
        source: format!("{token}/{}", stored.event.source),
        idempotency_key: stored.event.idempotency_key.clone(),
        body: stored.to_bytes(),
    };
    Ok(Prepared {
        event: new_event,
        deliveries,
        unrouted,
        quota,
    })
}

/// The route's `mention`s: each named contact's mobile numbers and user
/// ids, as the destination's channel matches them, each once.
fn add_route_mentions(
    live: &Live,
    workspace: &str,
    target: &crate::route::Target,
    message: &mut Message,
) {
    let Some(route) = target.route.as_deref() else {
        return;
    };
    let Some(route) = live.router.route(workspace, route) else {
        return;
    };
    if route.mention.is_empty() {
        return;
    }
    let plugin = live
        .config
        .destinations
        .get(&target.destination)
        .map(|d| d.plugin.as_str())
        .unwrap_or_default();
    for name in &route.mention {
        let Some(contact) = live.config.contacts.get(name) else {
            continue;
        };
        for mention in crate::config::contacts::mentions_for(contact, plugin) {
            if !message.mentions.contains(&mention) {
                message.mentions.push(mention);
            }
        }
    }
}

/// Hops a contact's delivery escalates through at most (alternates, then
/// the global fallback): a bound on the renders one delivery costs.
const MAX_ESCALATION: usize = 8;

/// For a delivery to a contact's method: `event` rendered for each
/// destination its fallback chain reaches (the alternate contact's method,
/// in the alternate's language; then the global fallback), so that a
/// permanent failure pages the next person in their own language. Other
/// deliveries fall back with their own message.
fn escalation(
    live: &Live,
    event: &Event,
    destination: &str,
    template: Option<&str>,
) -> BTreeMap<String, Message> {
    let mut out = BTreeMap::new();
    let config = &live.config;
    if config
        .destinations
        .get(destination)
        .is_none_or(|d| d.contact.is_none())
    {
        return out;
    }
    let mut at = destination.to_owned();
    while out.len() < MAX_ESCALATION {
        let next = config
            .destinations
            .get(&at)
            .and_then(|d| d.fallback.clone())
            .or_else(|| config.dispatch.global_fallback.clone())
            .filter(|n| *n != at && *n != destination && !out.contains_key(n));
        let Some(next) = next else { break };
        // A hop the template cannot render for (another workspace's global
        // fallback) sends the message it is handed; the event is not
        // refused for it.
        if let Ok((message, _, _)) = render_for(live, event, &next, template) {
            out.insert(next.clone(), message);
        }
        at = next;
    }
    out
}

/// Renders `event` for `destination`: the message, the template used and
/// the locale chosen. A template that cannot render it is a 422.
pub(super) fn render_for(
    live: &Live,
    event: &Event,
    destination: &str,
    template: Option<&str>,
) -> Result<(Message, String, String), ApiError> {
    let locale = live
        .config
        .destinations
        .get(destination)
        .and_then(|d| d.locale.as_deref());
    let message = live
        .renderer
        .render(event, template, locale)
        .map_err(|e| ApiError::Unrenderable(format!("for destination {destination:?}: {e}")))?;
    let template = template.map_or_else(|| crate::render::family(event).to_owned(), str::to_owned);
    let locale = message.locale.clone();
    Ok((message, template, locale))
}

/// A parse failure as an API error.
pub(super) fn parse_error(e: ParseError) -> ApiError {
    match e {
        ParseError::UnsupportedMediaType { .. } => ApiError::UnsupportedMediaType(e.to_string()),
        ParseError::Json {
            line,
            column,
            message,
        } => ApiError::MalformedJson {
            line,
            column,
            message,
        },
        ParseError::Invalid(errors) => ApiError::InvalidEvent(errors),
        ParseError::TooManyAlerts { .. } | ParseError::TooMuchToStore { .. } => {
            ApiError::TooMuch(e.to_string())
        }
    }
}
