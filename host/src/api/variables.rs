//! `GET /v1/variables` and `POST /v1/variables`: the template variables,
//! discoverable ("type `$` and see what there is"): each named variable
//! with its meaning, an example and its value for a sample event, or for
//! the event the request gives; plus that event's data fields, which are
//! variables too.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, State as Extract};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::error::ApiError;
use super::{Principal, State, body};
use crate::event::Event;
use crate::render::variables::{self, VARIABLES};

/// The event `GET /v1/variables` shows values for.
fn sample_event() -> serde_json::Value {
    serde_json::json!({
        "type": "task.failed",
        "source": "etl",
        "title": "orders_daily failed",
        "message": "exit code 1 after 41 minutes",
        "severity": "error",
        "data": {
            "taskname": "orders_daily",
            "owner": "li.wei",
            "tasktype": "ETL",
            "rows": 1200
        },
        "labels": { "team": "data" }
    })
}

/// Body of `POST /v1/variables`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VariablesBody {
    event: serde_json::Value,
}

/// Every named variable with its value for a sample event.
pub async fn list(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let event = super::admin::parse_one(sample_event(), state.clock.now())?;
    Ok(Json(described(&principal, &event)))
}

/// Every named variable with its value for the event in the body.
pub async fn for_event(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bytes = body::read(&headers, request, &principal.live.config.server).await?;
    let parsed: VariablesBody = body::json(&bytes)?;
    let event = super::admin::parse_one(parsed.event, state.clock.now())?;
    Ok(Json(described(&principal, &event)))
}

/// The answer for `event`: the event, each named variable (its value, or
/// `defined: false`), and the event's data fields.
fn described(principal: &Principal, event: &Event) -> serde_json::Value {
    let zone = &principal.live.renderer.settings().time_zone;
    let mut values = variables::values(event, zone);
    let named: Vec<serde_json::Value> = VARIABLES
        .iter()
        .map(|v| {
            let value = values.remove(v.name);
            serde_json::json!({
                "name": v.name,
                "meaning": v.meaning,
                "example": v.example,
                "defined": value.is_some(),
                "value": value,
            })
        })
        .collect();
    serde_json::json!({
        "event": event,
        "variables": named,
        "data_fields": values,
    })
}

/// The variables of `event` for a test push's answer (values only).
pub fn values_for(principal: &Principal, event: &Event) -> serde_json::Value {
    let zone = &principal.live.renderer.settings().time_zone;
    serde_json::to_value(variables::values(event, zone)).unwrap_or_default()
}
