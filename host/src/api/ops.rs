//! Operational endpoints: metrics, liveness, readiness, the OpenAPI
//! document, and the answer for unknown paths.

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::State;
use super::error::ApiError;

/// The OpenAPI 3 document of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /metrics` (instance admin): Prometheus text format.
pub async fn metrics(Extract(state): Extract<Arc<State>>) -> Result<Response, ApiError> {
    state.dispatch_metrics.refresh_outbox(&state.outbox);
    state.timer_metrics.refresh(&state.outbox);
    let firing = state.monitors.engine.lock().await.firing();
    state
        .monitors
        .metrics
        .firing
        .set(i64::try_from(firing).unwrap_or(i64::MAX));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &state.registry)
        .map_err(|e| ApiError::Internal(format!("cannot encode metrics: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /healthz`: the process answers.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /readyz`: plugins loaded and the outbox open; 503 before that and
/// while shutting down.
pub async fn readyz(Extract(state): Extract<Arc<State>>) -> Response {
    if state.is_ready() {
        axum::Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "status": "not_ready" })),
        )
            .into_response()
    }
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

/// Any path no route matches.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint at {}; see /v1/openapi.json",
        uri.path()
    ))
}
