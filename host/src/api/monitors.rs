//! `GET /v1/monitors` (every rule × series pair: state, value, since, last
//! fired; a reading role that sees the `default` workspace, where the
//! instance's rules and their alerts live) and `POST /v1/metrics` (gauges
//! in the Prometheus text format, for the monitors; an ingest token allowed
//! `metric.gauge`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use super::auth::Principal;
use super::error::ApiError;
use super::view::time;
use super::{State, auth, body};
use crate::access::DEFAULT_WORKSPACE;
use crate::event::FieldError;
use crate::monitor::events::number;
use crate::monitor::{GAUGE, Phase, prom};

/// One rule × series pair.
#[derive(Debug, Serialize)]
pub struct PairOut {
    rule: String,
    metric: String,
    series: String,
    labels: BTreeMap<String, String>,
    /// `ok`, `pending` or `firing`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<serde_json::Value>,
    unit: String,
    op: &'static str,
    threshold: serde_json::Value,
    recovery: serde_json::Value,
    /// When it entered its state.
    since: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_fired: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    read_at: Option<String>,
}

/// Every pair, by rule then series.
#[derive(Debug, Serialize)]
pub struct MonitorsOut {
    items: Vec<PairOut>,
    /// How many pairs are firing.
    firing: usize,
}

/// `GET /v1/monitors`. At most `[monitors] max_series` pairs exist, so
/// the answer is bounded.
pub async fn list(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<MonitorsOut>, ApiError> {
    // The rules are the instance's, in `default`: another workspace's
    // token sees none of them.
    if !principal.sees(DEFAULT_WORKSPACE) {
        return Ok(Json(MonitorsOut {
            items: Vec::new(),
            firing: 0,
        }));
    }
    let engine = state.monitors.engine.lock().await;
    let items = engine
        .tracks()
        .map(|(rule, series, t)| PairOut {
            rule: rule.name.clone(),
            metric: rule.metric.clone(),
            series: series.to_owned(),
            labels: t.labels.clone(),
            state: t.phase.name(),
            value: t.value.map(number),
            unit: t.unit.clone(),
            op: rule.op.as_str(),
            threshold: number(rule.threshold),
            recovery: number(rule.recovery),
            since: match t.phase {
                Phase::Pending { since } | Phase::Firing { since, .. } => time(since),
                Phase::Ok => time(t.changed_at),
            },
            last_fired: match t.phase {
                Phase::Firing { last_fired, .. } => Some(time(last_fired)),
                _ => None,
            },
            read_at: t.read_at.map(time),
        })
        .collect();
    Ok(Json(MonitorsOut {
        items,
        firing: engine.firing(),
    }))
}

/// `POST /v1/metrics` answer.
#[derive(Debug, Serialize)]
struct PushOut {
    /// Samples read.
    samples: usize,
    /// Samples skipped (not a finite value).
    skipped: usize,
    /// Rule × series pairs that took a sample (the rest no rule watches).
    watched: usize,
}

/// `POST /v1/metrics`: a Prometheus text-format body; each sample is a
/// gauge reading for the monitors (not stored as an event). 202 once
/// evaluated; 400 naming the first bad line.
pub async fn push(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    if !state.is_ready() {
        return Err(ApiError::Unavailable(
            "the gateway is not ready (starting or shutting down)".into(),
        ));
    }
    let live = principal.live.clone();
    let token = principal.token();
    if !auth::allows_type(token, GAUGE) {
        return Err(ApiError::Forbidden(format!(
            "token {:?} may not post events of type {GAUGE:?}",
            token.name
        )));
    }
    if let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE)
        && !ct.to_str().unwrap_or("").starts_with("text/plain")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the Prometheus text format as text/plain".into(),
        ));
    }
    let bytes = body::read(&headers, request, &live.config.server).await?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        ApiError::InvalidEvent(vec![FieldError {
            path: "body".into(),
            message: format!("is not UTF-8 text: {e}"),
        }])
    })?;
    let (readings, skipped) = prom::parse(text, state.monitors.max_push_series).map_err(|e| {
        ApiError::InvalidEvent(vec![FieldError {
            path: format!("line {}", e.line),
            message: e.message,
        }])
    })?;
    let watched =
        super::monitor_run::observe(&state, &readings, super::monitor_run::Scope::Touched).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(PushOut {
            samples: readings.len(),
            skipped,
            watched,
        }),
    )
        .into_response())
}
