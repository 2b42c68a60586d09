//! The admin API (each route's permission is in `ROUTES`; a workspace's
//! token sees and acts on that workspace's objects only): plugins, destinations and their test push,
//! events with their routing and attempts, dead letters and re-queueing.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, Query, State as Extract};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use carillon_outbox::{DeadCursor, DeliveryId, EventId, Requeue, StateKind};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::test_push_record::{self, TestPushRecord};
use super::view::{DeadOut, EventOut};
use super::{Principal, State, body};
use crate::catalog::{Catalog, Trigger};
use crate::event::Event;
use crate::message::Message;
use crate::plugin::types::{DeliveryContext, Outgoing};

/// Most pages a workspace's listing of dead letters reads for one answer.
const SCOPED_SCAN_PAGES: usize = 10;

/// `GET /v1/events/{id}`: the event, how it was routed, its deliveries and
/// every attempt.
pub async fn event(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<EventOut>, ApiError> {
    let id = path_param(id, "id")?;
    let not_found = || ApiError::NotFound(format!("no event {id:?}"));
    let event_id = EventId::parse(&id).ok_or_else(not_found)?;
    let view = state.outbox.event(&event_id)?.ok_or_else(not_found)?;
    let out = EventOut::new(view);
    // Another workspace's event is not there, as far as this token knows.
    if !principal.sees(&out.workspace) {
        return Err(not_found());
    }
    Ok(Json(out))
}

/// A path parameter, taken after the token check (so a request without a
/// token learns nothing from it) and refused with the API's JSON body
/// (axum's own rejection is plain text).
pub(super) fn path_param(
    param: Result<Path<String>, PathRejection>,
    name: &'static str,
) -> Result<String, ApiError> {
    param
        .map(|Path(value)| value)
        .map_err(|e| ApiError::InvalidParameter {
            name,
            message: e.body_text(),
        })
}

/// Query of `GET /v1/deliveries`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Only `dead` is listed.
    state: Option<String>,
    /// One destination's.
    destination: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` token of the previous page.
    after: Option<String>,
}

/// A page of dead letters.
#[derive(Debug, Serialize)]
pub struct DeadPageOut {
    /// The dead letters, by destination then delivery id.
    items: Vec<DeadOut>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// `GET /v1/deliveries?state=dead&destination=…&limit=…&after=…`.
pub async fn deliveries(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeadPageOut>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidParameter {
        name: "query",
        message: e.body_text(),
    })?;
    match q.state.as_deref() {
        Some("dead") => {}
        other => {
            return Err(ApiError::InvalidParameter {
                name: "state",
                message: format!(
                    "{other:?}: only `state=dead` is listed; see GET /v1/events/{{id}} for one event's deliveries"
                ),
            });
        }
    }
    let limit = super::page_limit(q.limit)?;
    let after = match q.after.as_deref() {
        Some(token) => Some(
            DeadCursor::from_token(token).ok_or(ApiError::InvalidParameter {
                name: "after",
                message: "is not a `next` token from a previous page".into(),
            })?,
        ),
        None => None,
    };
    if principal.scope().is_none() {
        let page = state
            .outbox
            .dead_letters(q.destination.as_deref(), after.as_ref(), limit)?;
        return Ok(Json(DeadPageOut {
            items: page.items.into_iter().map(DeadOut::new).collect(),
            next: page.next.map(|c| c.to_token()),
        }));
    }
    // A workspace's token: another workspace's destination has no dead
    // letters it may see.
    if let Some(d) = &q.destination
        && !principal.sees_destination(d)
    {
        return Ok(Json(DeadPageOut {
            items: Vec::new(),
            next: None,
        }));
    }
    // Pages are read and filtered, at most `SCOPED_SCAN_PAGES` of them per
    // request: a short page with a `next` goes on where the scan stopped.
    let mut items = Vec::new();
    let mut cursor = after;
    for _ in 0..SCOPED_SCAN_PAGES {
        let page = state.outbox.dead_letters(
            q.destination.as_deref(),
            cursor.as_ref(),
            limit - items.len(),
        )?;
        items.extend(
            page.items
                .into_iter()
                .filter(|d| principal.sees_destination(&d.destination)),
        );
        cursor = page.next;
        if cursor.is_none() || items.len() >= limit {
            break;
        }
    }
    Ok(Json(DeadPageOut {
        items: items.into_iter().map(DeadOut::new).collect(),
        next: cursor.map(|c| c.to_token()),
    }))
}

/// `POST /v1/deliveries/{id}/retry`: a dead delivery, pending again now.
pub async fn retry(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id, "id")?;
    let not_found = || ApiError::NotFound(format!("no delivery {id:?}"));
    let delivery = DeliveryId::parse(&id).ok_or_else(not_found)?;
    if principal.scope().is_some() {
        let view = state.outbox.delivery(&delivery)?.ok_or_else(not_found)?;
        if !principal.sees_destination(&view.destination) {
            return Err(not_found());
        }
    }
    match state.outbox.requeue_dead(&delivery, state.clock.now())? {
        Requeue::Requeued => {
            state.waker.wake();
            Ok((
                StatusCode::ACCEPTED,
                Json(serde_json::json!({ "id": id, "state": "pending" })),
            )
                .into_response())
        }
        Requeue::NotDead(kind) => Err(ApiError::Conflict(format!(
            "delivery {id} is {}, not dead; only dead deliveries are retried",
            kind_name(kind)
        ))),
        Requeue::NotFound => Err(not_found()),
    }
}

fn kind_name(kind: StateKind) -> &'static str {
    match kind {
        StateKind::Pending => "pending",
        StateKind::Claimed => "being delivered",
        StateKind::Scheduled => "scheduled for a retry",
        StateKind::Delivered => "delivered",
        StateKind::Dead => "dead",
    }
}

/// `POST /v1/destinations/{name}/retry-dead`: every dead delivery of the
/// destination, pending again now.
pub async fn retry_dead(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path_param(name, "name")?;
    if !principal.sees_destination(&name) {
        return Err(ApiError::NotFound(format!("no destination {name:?}")));
    }
    let requeued = state
        .outbox
        .requeue_dead_destination(&name, state.clock.now())?;
    if requeued > 0 {
        state.waker.wake();
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "destination": name, "requeued": requeued })),
    )
        .into_response())
}

/// `POST /v1/destinations/{name}/resume`: ends the pause an
/// `invalid-config` answer put the destination in; its waiting deliveries
/// are sent at their next look (within the dispatcher's wait). Logged, as
/// an admin's act.
pub async fn resume(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path_param(name, "name")?;
    if !principal.sees_destination(&name) {
        return Err(ApiError::NotFound(format!("no destination {name:?}")));
    }
    let ended = state.destinations.pauses().resume(&name);
    if let Some(pause) = &ended {
        state.dispatch_metrics.set_paused(&name, false);
        state.waker.wake();
        tracing::warn!(
            destination = %name,
            token = %principal.token().name,
            role = %principal.role(),
            paused_since = %super::view::time(pause.since),
            "destination resumed by an admin (POST /v1/destinations/{{name}}/resume)"
        );
    }
    Ok((
        StatusCode::OK,
        Json(serde_json::json!({
            "destination": name,
            "resumed": ended.is_some(),
            "paused_since": ended.map(|p| super::view::time(p.since)),
        })),
    )
        .into_response())
}

/// `GET /v1/plugins`: every installed plugin with its status, and every
/// file of the plugin directory.
pub async fn plugins(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(plugin_list(&principal.live.config, &state.catalog())))
}

/// `POST /v1/plugins/reload`: rescans the plugin directory now (files
/// taken as they are, failed ones tried again) and answers the resulting
/// list, as `GET /v1/plugins` does.
pub async fn reload_plugins(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = &principal.live;
    let catalog = state.plugins.rescan(&live.config, Trigger::Forced).await;
    Ok(Json(plugin_list(&live.config, &catalog)))
}

/// The body of `GET /v1/plugins`.
fn plugin_list(config: &crate::config::Config, catalog: &Catalog) -> serde_json::Value {
    let items: Vec<serde_json::Value> = catalog
        .statuses()
        .into_iter()
        .map(|s| {
            let enabled = config.channel_enabled(&s.name);
            let pinned = config.plugin_pin(&s.name).map(str::to_owned);
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            if let Some(map) = v.as_object_mut() {
                map.insert("enabled".into(), enabled.into());
                map.insert("pinned_sha256".into(), pinned.into());
            }
            v
        })
        .collect();
    serde_json::json!({ "items": items, "files": catalog.files() })
}

/// `GET /v1/destinations`: every destination, secrets redacted.
pub async fn destinations(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let live = &principal.live;
    let outbox = state.outbox.clone();
    let pushes = tokio::task::spawn_blocking(move || test_push_record::all(&outbox))
        .await
        .unwrap_or_default();
    let items: Vec<serde_json::Value> = live
        .config
        .destinations
        .iter()
        .filter(|(_, d)| principal.sees(&d.workspace))
        .map(|(name, d)| {
            let entry = state.destinations.destination(name);
            let plugin = state.destinations.plugin(&d.plugin);
            let paused = state.destinations.pauses().get(name).map(|p| {
                serde_json::json!({
                    "since": super::view::time(p.since),
                    "reason": shown_config(&d.config, plugin.as_deref()).scrub(&p.reason),
                })
            });
            let mut shown = serde_json::to_value(d).unwrap_or_default();
            shown["config"] = shown_config(&d.config, plugin.as_deref()).redacted();
            serde_json::json!({
                "name": name,
                "workspace": d.workspace,
                "plugin": d.plugin,
                "active": live.config.destination_active(name),
                "plugin_loaded": plugin.is_some(),
                "paused": paused,
                "rate_limits": entry.as_ref().map(|e| &e.rate_limits),
                "concurrency": entry.as_ref().map(|e| e.concurrency),
                "last_test_push": pushes.get(name),
                "config": shown,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// A destination's plugin config as it may be shown or quoted: with the
/// secret fields its serving plugin declares (first- or third-party alike)
/// hidden, besides what the config itself marks secret.
fn shown_config(
    config: &crate::config::PluginConfig,
    plugin: Option<&crate::plugin::Plugin>,
) -> crate::config::PluginConfig {
    match plugin {
        Some(plugin) => config.with_secrets(&plugin.manifest().secret_fields),
        None => config.clone(),
    }
}

/// Body of a test push: a message, or an event to render as routing would
/// for this destination; empty for a sample message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    message: Option<Message>,
    event: Option<serde_json::Value>,
    template: Option<String>,
}

/// Query of a test push.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestQuery {
    /// Really send it.
    #[serde(default)]
    send: bool,
}

/// `POST /v1/destinations/{name}/test[?send=true]`: the exact request the
/// plugin would send (secrets redacted), and with `send=true` the result
/// of really sending it.
pub async fn test_push(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<TestQuery>, axum::extract::rejection::QueryRejection>,
    request: Body,
) -> Result<Response, ApiError> {
    let live = principal.live.clone();
    let name = path_param(name, "name")?;
    if !principal.sees_destination(&name) {
        return Err(ApiError::NotFound(format!("no destination {name:?}")));
    }
    let Query(q) = query.map_err(|e| ApiError::InvalidParameter {
        name: "send",
        message: e.body_text(),
    })?;
    let config = live
        .config
        .destinations
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no destination {name:?}")))?;
    let entry = state.destinations.destination(&name).ok_or_else(|| {
        ApiError::Conflict(format!(
            "destination {name:?} is not set up (its plugin failed to load?)"
        ))
    })?;
    let plugin = state
        .destinations
        .plugin(&entry.plugin)
        .ok_or_else(|| ApiError::Conflict(format!("plugin {:?} is not loaded", entry.plugin)))?;
    let bytes = body::read(&headers, request, &live.config.server).await?;
    let test: TestBody = if bytes.iter().all(u8::is_ascii_whitespace) {
        TestBody::default()
    } else {
        body::json(&bytes)?
    };
    // The variables of a given event, shown beside the rendered message.
    let mut event_variables = None;
    let message = match (test.message, test.event) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidParameter {
                name: "body",
                message: "give either `message` or `event`, not both".into(),
            });
        }
        (Some(message), None) => message,
        (None, Some(event)) => {
            let event = parse_one(event, state.clock.now())?;
            // A template of another workspace is not there for this token.
            if let Some(t) = &test.template
                && let Some(template) = live.config.templates.get(t)
                && !principal.sees(&template.workspace)
            {
                return Err(ApiError::Unrenderable(format!(
                    "for destination {name:?}: cannot render template {t:?}: no template has this name"
                )));
            }
            event_variables = Some(super::variables::values_for(&principal, &event));
            super::ingest::render_for(&live, &event, &name, test.template.as_deref())?.0
        }
        (None, None) => Message::sample(),
    };
    let now = state.clock.now();
    let ctx = DeliveryContext {
        delivery_id: format!("test_{}", now.as_millis()),
        event_id: "test".into(),
        attempt: 1,
        now_ms: now.as_millis(),
    };
    let rendered = state
        .runtime
        .render(&plugin, &entry.destination, &ctx, &message)
        .await;
    // The rendered request carries the config's values (e.g. the webhook's
    // `/headers`): scrub what the plugin declares secret as well.
    let shown = shown_config(&config.config, Some(&plugin));
    let scrub = |v: serde_json::Value| -> serde_json::Value {
        let text = shown.scrub(&v.to_string());
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    };
    let mut out = serde_json::json!({
        "destination": name,
        "plugin": { "name": plugin.name(), "version": plugin.manifest().version.to_string() },
    });
    if let Some(vars) = event_variables {
        out["variables"] = vars;
    }
    match rendered {
        Ok(Ok(outgoing)) => {
            out["request"] = scrub(redact_outgoing(&outgoing));
        }
        Ok(Err(e)) => {
            out["render_error"] = scrub(serde_json::to_value(&e).unwrap_or_default());
        }
        Err(e) => {
            out["render_error"] = serde_json::json!({ "kind": "plugin_failure", "detail": shown.scrub(&e.to_string()) });
        }
    }
    // What the destination's record keeps: sent?, the result, a detail.
    let (sent, result, detail) = if let Some(error) = out.get("render_error") {
        (false, "render_failed", Some(error.to_string()))
    } else if q.send {
        let delivered = state
            .runtime
            .deliver(&plugin, &entry.destination, &ctx, &message)
            .await;
        out["sent"] = true.into();
        match delivered {
            Ok(Ok(receipt)) => {
                out["receipt"] = scrub(serde_json::to_value(&receipt).unwrap_or_default());
                let remote_id = out["receipt"]["remote_id"].as_str().map(str::to_owned);
                (true, "delivered", remote_id)
            }
            Ok(Err(e)) => {
                out["error"] = scrub(serde_json::to_value(&e).unwrap_or_default());
                (true, "failed", Some(out["error"].to_string()))
            }
            Err(e) => {
                out["error"] = serde_json::json!({ "kind": "plugin_failure", "detail": shown.scrub(&e.to_string()) });
                (true, "failed", Some(out["error"].to_string()))
            }
        }
    } else {
        out["sent"] = false.into();
        (false, "rendered", None)
    };
    let record = TestPushRecord::new(now, principal.token(), sent, result, detail);
    test_push_record::keep(&state.outbox, &name, &record).await;
    Ok((StatusCode::OK, Json(out)).into_response())
}

/// The outgoing request as JSON with credential headers hidden (signed
/// URLs and config secrets are scrubbed by the caller).
fn redact_outgoing(outgoing: &Outgoing) -> serde_json::Value {
    let mut value = serde_json::to_value(outgoing).unwrap_or_default();
    if let Some(headers) = value.get_mut("headers").and_then(|h| h.as_array_mut()) {
        for pair in headers {
            let sensitive = pair.get(0).and_then(|n| n.as_str()).is_some_and(|n| {
                let n = n.to_ascii_lowercase();
                n == "authorization"
                    || n.contains("token")
                    || n.contains("secret")
                    || n.contains("api-key")
            });
            if sensitive && let Some(v) = pair.get_mut(1) {
                *v = crate::config::REDACTED.into();
            }
        }
    }
    value
}

/// One native event from a JSON value (test pushes).
pub(super) fn parse_one(
    value: serde_json::Value,
    now: carillon_outbox::Timestamp,
) -> Result<Event, ApiError> {
    let bytes = serde_json::to_vec(&value).unwrap_or_default();
    // The event is the body's `/event`: its problems are located there.
    let under_event = |errors: Vec<crate::event::FieldError>| {
        ApiError::InvalidEvent(
            errors
                .into_iter()
                .map(|mut e| {
                    e.path = format!("/event{}", e.path);
                    e
                })
                .collect(),
        )
    };
    let parsed =
        crate::event::parse_native(&bytes, super::view::to_jiff(now)).map_err(|e| match e {
            crate::event::ParseError::Invalid(errors) => under_event(errors),
            other => super::ingest::parse_error(other),
        })?;
    match parsed.items.into_iter().next() {
        Some(Ok(event)) if !parsed.batch => Ok(event),
        Some(Err(errors)) => Err(under_event(errors)),
        _ => Err(ApiError::InvalidParameter {
            name: "event",
            message: "must be one event object".into(),
        }),
    }
}
