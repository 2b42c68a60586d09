//! `GET /v1/timers` (armed timers, filtered by task type and source,
//! paginated) and `DELETE /v1/timers/{id}` (cancel one); a workspace's token
//! sees and cancels only the timers armed in its workspace.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State as Extract};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carillon_outbox::{Timer, TimerId};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::view::time;
use super::{Principal, State};
use crate::timeout::Started;

/// Query of `GET /v1/timers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimersQuery {
    /// Only timers of tasks of this type (`data.tasktype` of `task.started`).
    #[serde(rename = "type")]
    task_type: Option<String>,
    /// Only timers armed by events of this source.
    source: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    after: Option<String>,
}

/// One armed timer.
#[derive(Debug, Serialize)]
pub struct TimerOut {
    id: String,
    kind: String,
    source: String,
    armed_at: String,
    deadline: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    taskname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// A quota digest's scope (`contact:NAME`).
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<String>,
    /// A quota digest's held-back count so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<u64>,
}

/// A page of armed timers, in the order they were armed.
#[derive(Debug, Serialize)]
pub struct TimersPage {
    items: Vec<TimerOut>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

fn text(started: &Started, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| started.event.data.get(*k))
        .and_then(|v| v.as_str().map(str::to_owned))
}

/// May `principal` see `timer`? Its workspace is read from the payload
/// (only for a workspace's token; an instance admin sees every timer).
fn visible(principal: &Principal, timer: &Timer) -> bool {
    if principal.scope().is_none() {
        return true;
    }
    let workspace = if timer.kind == crate::quota::DIGEST {
        crate::quota::Pending::from_timer(timer).map(|p| p.workspace)
    } else {
        serde_json::from_slice::<Started>(&timer.payload)
            .map(|s| s.workspace)
            .map_err(|e| e.to_string())
    };
    workspace.is_ok_and(|w| principal.sees(&w))
}

/// A timer's task type, read from its payload alone (the filter runs on
/// every timer a page scans).
fn started_task_type(t: &Timer) -> Option<String> {
    let started: Started = serde_json::from_slice(&t.payload).ok()?;
    crate::timeout::task_type(&started.event).map(str::to_owned)
}

fn out(t: &Timer) -> TimerOut {
    let digest = (t.kind == crate::quota::DIGEST)
        .then(|| crate::quota::Pending::from_timer(t).ok())
        .flatten();
    let started: Option<Started> = if digest.is_some() {
        None
    } else {
        serde_json::from_slice(&t.payload).ok()
    };
    TimerOut {
        id: t.id.to_string(),
        kind: t.kind.clone(),
        source: t.source.clone(),
        armed_at: time(t.armed_at),
        deadline: time(t.deadline),
        run_id: started.as_ref().map(|s| s.run_id.clone()),
        task_type: started
            .as_ref()
            .and_then(|s| crate::timeout::task_type(&s.event))
            .map(str::to_owned),
        taskname: started
            .as_ref()
            .and_then(|s| text(s, &["taskname", "task_name"])),
        token: started.map(|s| s.token),
        quota: digest.as_ref().map(crate::quota::Pending::key),
        suppressed: digest.map(|d| d.window.suppressed),
    }
}

/// `GET /v1/timers?type=…&source=…&limit=…&after=…`.
pub async fn list(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<TimersQuery>, QueryRejection>,
) -> Result<Json<TimersPage>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::InvalidParameter {
        name: "query",
        message: e.body_text(),
    })?;
    let limit = super::page_limit(q.limit)?;
    let after = match q.after.as_deref() {
        Some(a) => Some(TimerId::parse(a).ok_or(ApiError::InvalidParameter {
            name: "after",
            message: "is not a `next` value from a previous page".into(),
        })?),
        None => None,
    };
    let (items, next) = state.outbox.timers_page(after.as_ref(), limit, |t| {
        visible(&principal, t)
            && q.source.as_ref().is_none_or(|s| &t.source == s)
            && q.task_type
                .as_ref()
                .is_none_or(|ty| started_task_type(t).as_deref() == Some(ty.as_str()))
    })?;
    Ok(Json(TimersPage {
        items: items.iter().map(out).collect(),
        next: next.map(|id| id.to_string()),
    }))
}

/// `DELETE /v1/timers/{id}`: cancels an armed timer (it will not fire);
/// 204, or 404 if no such timer is armed.
pub async fn cancel(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::InvalidParameter {
        name: "id",
        message: e.body_text(),
    })?;
    let not_found = || ApiError::NotFound(format!("no armed timer {id:?}"));
    let timer = TimerId::parse(&id).ok_or_else(not_found)?;
    if principal.scope().is_some() {
        let armed = state.outbox.timer(&timer)?.ok_or_else(not_found)?;
        if !visible(&principal, &armed) {
            return Err(not_found());
        }
    }
    let outbox = state.outbox.clone();
    let cancelled = tokio::task::spawn_blocking(move || outbox.cancel_timer(&timer))
        .await
        .map_err(|e| ApiError::Internal(format!("the cancel task failed: {e}")))??;
    if !cancelled {
        return Err(not_found());
    }
    tracing::info!(timer = %id, "timer cancelled by an admin");
    Ok(StatusCode::NO_CONTENT.into_response())
}
