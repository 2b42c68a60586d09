//! The runtime configuration API: workspaces, and each workspace's
//! destinations, routes and templates under `/v1/workspaces/{ws}/…`.
//!
//! A write builds the config the running file text and the API's objects
//! (with this change) make, checks it with the file's own validators and
//! the plugins (`reconfigure::apply`), stores the object with its audit
//! record, and swaps the live config, all or nothing; a delivery already
//! queued keeps what it was rendered with. Objects the file declares are
//! provisioned: shown, never edited (409 naming the file's key).
//! Optimistic concurrency: every API object has a version, sent as the
//! `ETag`; `If-Match` (that version, or `*`) and `If-None-Match: *` make a
//! write conditional (412 when it does not hold).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use carillon_store::{Actor, AuditQuery, Change, Expect};
use serde::Deserialize;
use serde_json::Value;

use super::config_store::{StoredObject, api_error, millis};
use super::error::ApiError;
use super::object_view::{self, from_api, workspace_of};
use super::reconfigure::{ApplyError, ReloadError, apply};
use super::{Live, Principal, State, body};
use crate::config::{Kind, overlay::relative_pointer};
use crate::event::FieldError;

/// `GET /v1/workspaces`: the workspaces the token sees.
pub async fn workspaces(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let live = &principal.live;
    let stored = stored_of(&state, Kind::Workspace, None).await?;
    let items: Vec<Value> = live
        .config
        .workspaces
        .keys()
        .filter(|ws| principal.sees(ws))
        .map(|ws| view(&state, live, Kind::Workspace, ws, stored.get(ws)))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `GET /v1/workspaces/{ws}`.
pub async fn workspace(
    state: Extract<Arc<State>>,
    principal: Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    get_one(state, principal, Kind::Workspace, ws.clone(), ws).await
}

/// `PUT /v1/workspaces/{ws}`: creates a workspace (instance admins) or
/// changes its channel settings.
pub async fn put_workspace(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    if !principal.sees(&ws) {
        return Err(ApiError::NotFound(format!("no workspace {ws:?}")));
    }
    let bytes = body::read(&headers, request, &principal.live.config.server).await?;
    let body: Value = body::json(&bytes)?;
    let target = Target::new(Kind::Workspace, ws.clone(), ws);
    write(&state, &principal, &target, &headers, Some(body)).await
}

/// `DELETE /v1/workspaces/{ws}`: refused while objects belong to it.
pub async fn delete_workspace(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    let target = Target::new(Kind::Workspace, ws.clone(), ws);
    write(&state, &principal, &target, &headers, None).await
}

/// The handlers of one kind inside a workspace: list, get, put, delete.
macro_rules! kind_handlers {
    ($kind:expr, $list:ident, $get:ident, $put:ident, $delete:ident) => {
        #[doc = concat!("`GET /v1/workspaces/{ws}/…`: the ", stringify!($list), " of a workspace.")]
        pub async fn $list(
            state: Extract<Arc<State>>,
            principal: Extension<Principal>,
            ws: Result<Path<String>, PathRejection>,
        ) -> Result<Json<Value>, ApiError> {
            let ws = super::admin::path_param(ws, "ws")?;
            list($kind, state, principal, ws).await
        }

        #[doc = "`GET /v1/workspaces/{ws}/…/{name}`: one object, with its `ETag`."]
        pub async fn $get(
            state: Extract<Arc<State>>,
            principal: Extension<Principal>,
            path: Result<Path<(String, String)>, PathRejection>,
        ) -> Result<Response, ApiError> {
            let (ws, name) = two_params(path)?;
            get_one(state, principal, $kind, ws, name).await
        }

        #[doc = "`PUT /v1/workspaces/{ws}/…/{name}`: creates or replaces an API object."]
        pub async fn $put(
            Extract(state): Extract<Arc<State>>,
            Extension(principal): Extension<Principal>,
            path: Result<Path<(String, String)>, PathRejection>,
            headers: HeaderMap,
            request: Body,
        ) -> Result<Response, ApiError> {
            let (ws, name) = two_params(path)?;
            // Before the body: another workspace's token learns nothing.
            visible_workspace(&principal, &principal.live, &ws)?;
            let bytes = body::read(&headers, request, &principal.live.config.server).await?;
            let body: Value = body::json(&bytes)?;
            let target = Target::new($kind, ws, name);
            write(&state, &principal, &target, &headers, Some(body)).await
        }

        #[doc = "`DELETE /v1/workspaces/{ws}/…/{name}`: deletes an API object."]
        pub async fn $delete(
            Extract(state): Extract<Arc<State>>,
            Extension(principal): Extension<Principal>,
            path: Result<Path<(String, String)>, PathRejection>,
            headers: HeaderMap,
        ) -> Result<Response, ApiError> {
            let (ws, name) = two_params(path)?;
            let target = Target::new($kind, ws, name);
            write(&state, &principal, &target, &headers, None).await
        }
    };
}

kind_handlers!(
    Kind::Destination,
    destinations,
    destination,
    put_destination,
    delete_destination
);
kind_handlers!(Kind::Route, routes, route, put_route, delete_route);
kind_handlers!(
    Kind::Template,
    templates,
    template,
    put_template,
    delete_template
);
kind_handlers!(
    Kind::Contact,
    contacts,
    contact,
    put_contact,
    delete_contact
);
kind_handlers!(Kind::Group, groups, group, put_group, delete_group);

/// Query of `GET /v1/workspaces/{ws}/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Only records of this kind (`destination`, `route`, …).
    kind: Option<String>,
    /// Only records of the object of this name.
    name: Option<String>,
    /// Page size, 1–1000 (default 100).
    limit: Option<usize>,
    /// The `next` of the previous page.
    before: Option<i64>,
}

/// `GET /v1/workspaces/{ws}/audit`: who changed what, newest first.
pub async fn audit(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
    query: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    let Query(q) = query.map_err(|e| ApiError::InvalidParameter {
        name: "query",
        message: e.body_text(),
    })?;
    visible_workspace(&principal, &principal.live, &ws)?;
    let limit = super::page_limit(q.limit)?;
    let records = state
        .store
        .audit(&AuditQuery {
            workspace: Some(ws.clone()),
            kind: q.kind,
            name: q.name,
            before_id: q.before,
            limit: u32::try_from(limit).unwrap_or(1000),
        })
        .await
        .map_err(|e| api_error(e, "the audit log"))?;
    let next = (records.len() == limit)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let items: Vec<Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "at": millis(r.at_ms),
                "token": r.actor,
                "role": r.role,
                "workspace": r.workspace,
                "action": r.action,
                "kind": r.kind,
                "name": r.name,
                "before": r.before,
                "after": r.after,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items, "next": next })))
}

/// What a write is about.
struct Target {
    kind: Kind,
    workspace: String,
    name: String,
}

impl Target {
    fn new(kind: Kind, workspace: String, name: String) -> Self {
        Target {
            kind,
            workspace,
            name,
        }
    }

    fn what(&self) -> String {
        format!(
            "{} {:?} of workspace {:?}",
            self.kind.name(),
            self.name,
            self.workspace
        )
    }
}

pub(super) fn two_params(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::InvalidParameter {
            name: "path",
            message: e.body_text(),
        })
}

/// 404 unless the workspace exists and the token sees it (another
/// workspace's existence is not revealed).
pub(super) fn visible_workspace(
    principal: &Principal,
    live: &Live,
    ws: &str,
) -> Result<(), ApiError> {
    if principal.sees(ws) && live.config.workspaces.contains_key(ws) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no workspace {ws:?}")))
    }
}

/// The stored objects of `kind` (in `workspace` when given), by name.
async fn stored_of(
    state: &State,
    kind: Kind,
    workspace: Option<&str>,
) -> Result<std::collections::BTreeMap<String, StoredObject>, ApiError> {
    let objects = state
        .store
        .objects_of(kind.name(), workspace)
        .await
        .map_err(|e| api_error(e, "the stored objects"))?;
    Ok(objects
        .iter()
        .map(|o| (o.name.clone(), StoredObject::from(o)))
        .collect())
}

fn view(
    state: &State,
    live: &Live,
    kind: Kind,
    name: &str,
    stored: Option<&StoredObject>,
) -> Value {
    let mut shown = object_view::view(live, kind, name, stored, |p| state.destinations.plugin(p));
    // A contact's methods' activation, by method (null: nothing to activate).
    if let (Kind::Contact, Some(contact)) = (kind, live.config.contacts.get(name)) {
        let states: Vec<Value> = contact
            .methods
            .iter()
            .map(|m| {
                m.destination()
                    .map(|d| match state.activations.state(d) {
                        Some(s) => serde_json::to_value(s).unwrap_or_default(),
                        None => serde_json::json!({ "state": "pending" }),
                    })
                    .unwrap_or(Value::Null)
            })
            .collect();
        shown["activation"] = Value::Array(states);
    }
    shown
}

async fn list(
    kind: Kind,
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: String,
) -> Result<Json<Value>, ApiError> {
    let live = &principal.live;
    visible_workspace(&principal, live, &ws)?;
    let stored = stored_of(&state, kind, Some(&ws)).await?;
    let items: Vec<Value> = object_view::names_in(live, kind, &ws)
        .iter()
        .map(|name| view(&state, live, kind, name, stored.get(name)))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

async fn get_one(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    kind: Kind,
    ws: String,
    name: String,
) -> Result<Response, ApiError> {
    let live = &principal.live;
    visible_workspace(&principal, live, &ws)?;
    let target = Target::new(kind, ws, name);
    if workspace_of(live, kind, &target.name).as_deref() != Some(target.workspace.as_str()) {
        return Err(ApiError::NotFound(format!("no {}", target.what())));
    }
    let stored = match from_api(live, kind, &target.name) {
        true => state
            .store
            .get(kind.name(), &target.name)
            .await
            .map_err(|e| api_error(e, &target.what()))?
            .as_ref()
            .map(StoredObject::from),
        false => None,
    };
    let shown = view(&state, live, kind, &target.name, stored.as_ref());
    Ok(with_etag(StatusCode::OK, shown, stored.as_ref()))
}

fn with_etag(status: StatusCode, shown: Value, stored: Option<&StoredObject>) -> Response {
    let mut response = (status, Json(shown)).into_response();
    if let Some(etag) =
        stored.and_then(|o| HeaderValue::from_str(&format!("\"{}\"", o.version)).ok())
    {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// What `If-Match` / `If-None-Match` ask for.
fn expectation(headers: &HeaderMap) -> Result<Expect, ApiError> {
    let text = |name: header::HeaderName| {
        headers
            .get(&name)
            .map(|v| v.to_str().map(str::trim).unwrap_or("\u{0}"))
    };
    if let Some(v) = text(header::IF_NONE_MATCH) {
        return match v {
            "*" => Ok(Expect::Absent),
            _ => Err(ApiError::InvalidParameter {
                name: "If-None-Match",
                message: "only `*` (create, never replace) is understood on writes".into(),
            }),
        };
    }
    match text(header::IF_MATCH) {
        None => Ok(Expect::Any),
        Some("*") => Ok(Expect::Exists),
        Some(v) => v
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<u64>()
            .map(Expect::Version)
            .map_err(|_| ApiError::InvalidParameter {
                name: "If-Match",
                message: format!("{v:?} is not an ETag this API sent (`\"<version>\"`)"),
            }),
    }
}

/// One write (a `PUT` when `body` is given, else a `DELETE`).
async fn write(
    state: &State,
    principal: &Principal,
    target: &Target,
    headers: &HeaderMap,
    body: Option<Value>,
) -> Result<Response, ApiError> {
    let expect = expectation(headers)?;
    let _one_at_a_time = state.reload_lock.lock().await;
    // The config now, not the one the token was checked in: writes queue.
    let live = state.live();
    let (kind, ws, name) = (target.kind, &target.workspace, &target.name);
    let creates_workspace = kind == Kind::Workspace && !live.config.workspaces.contains_key(ws);
    if creates_workspace {
        if !principal.sees(ws) {
            return Err(ApiError::NotFound(format!("no workspace {ws:?}")));
        }
        if principal.scope().is_some() || body.is_none() {
            return Err(match body {
                Some(_) => ApiError::Forbidden("only an instance admin creates workspaces".into()),
                None => ApiError::NotFound(format!("no workspace {ws:?}")),
            });
        }
    } else {
        visible_workspace(principal, &live, ws)?;
    }
    if kind == Kind::Workspace && body.is_none() && ws == crate::access::DEFAULT_WORKSPACE {
        return Err(ApiError::Conflict(
            "the default workspace always exists".into(),
        ));
    }
    match workspace_of(&live, kind, name) {
        Some(other) if other != *ws => {
            return Err(ApiError::Conflict(format!(
                "the name {name:?} is taken by another {}; names are unique per kind across workspaces",
                kind.name()
            )));
        }
        Some(_) if !from_api(&live, kind, name) => {
            return Err(ApiError::Conflict(format!(
                "{} is provisioned by the config file (key `{}`): edit the file and reload it \
                 (SIGHUP or POST /v1/config/reload)",
                target.what(),
                object_view::file_key(&live, kind, name)
            )));
        }
        _ => {}
    }
    let what = target.what();
    let previous = state
        .store
        .get(kind.name(), name)
        .await
        .map_err(|e| api_error(e, &what))?;
    precondition(
        expect,
        previous.as_ref().map(|o| o.version),
        &what,
        body.is_some(),
    )?;
    let plugin = |p: &str| state.destinations.plugin(p);
    let mut overlay = live.overlay.clone();
    let (change, after) = match body {
        Some(mut body) => {
            let unmatched = object_view::restore_secrets(
                kind,
                &mut body,
                previous.as_ref().map(|o| &o.body),
                &plugin,
            );
            if !unmatched.is_empty() {
                return Err(invalid(
                    &what,
                    unmatched
                        .into_iter()
                        .map(|at| {
                            FieldError::new(at, "holds a redacted value that matches no stored secret; send the real value")
                        })
                        .collect(),
                ));
            }
            overlay.put(kind, name, ws, &body).map_err(|errors| {
                invalid(
                    &what,
                    errors
                        .into_iter()
                        .map(|(at, m)| FieldError::new(at, m))
                        .collect(),
                )
            })?;
            let after = object_view::redact_spec(kind, &body, &plugin);
            let change = Change::Put {
                kind: kind.name().to_owned(),
                name: name.clone(),
                workspace: ws.clone(),
                body,
                expect,
            };
            (change, Some(after))
        }
        None => {
            if previous.is_none() || !overlay.remove(kind, name) {
                return Err(ApiError::NotFound(format!("no {what}")));
            }
            let change = Change::Delete {
                kind: kind.name().to_owned(),
                name: name.clone(),
                expect,
            };
            (change, None)
        }
    };
    let before = previous
        .as_ref()
        .map(|o| object_view::redact_spec(kind, &o.body, &plugin));
    let prefix = problem_prefix(&live, &overlay, kind, name);
    let actor = Actor {
        token: principal.token().name.clone(),
        role: principal.role().name().to_owned(),
    };
    let text = live.config.source_text().to_owned();
    let created = previous.is_none();
    let is_put = after.is_some();
    let mut written = None;
    let applied = apply(state, &text, overlay, async || {
        written = Some(state.store.write(change, &actor, before, after).await?);
        Ok(())
    })
    .await;
    match applied {
        Ok(_) => {}
        Err(ApplyError::Gate(e)) => return Err(api_error(e, &what)),
        Err(ApplyError::Reload(e)) => return Err(refused(&what, &prefix, e)),
    }
    tracing::info!(
        kind = kind.name(),
        name = %name,
        workspace = %ws,
        token = %principal.token().name,
        action = if !is_put { "delete" } else if created { "create" } else { "update" },
        "config object written"
    );
    let Some(object) = written.and_then(|w| w.object) else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let stored = StoredObject::from(&object);
    let live = state.live();
    let shown = view(state, &live, kind, name, Some(&stored));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(status, shown, Some(&stored)))
}

/// 412 early when the precondition already fails (the store checks again,
/// atomically, when it writes).
fn precondition(
    expect: Expect,
    current: Option<u64>,
    what: &str,
    put: bool,
) -> Result<(), ApiError> {
    let holds = match expect {
        Expect::Any => true,
        Expect::Absent => current.is_none(),
        Expect::Exists => current.is_some(),
        Expect::Version(v) => current == Some(v),
    };
    if holds || (!put && current.is_none()) {
        return Ok(());
    }
    Err(match current {
        Some(v) => ApiError::PreconditionFailed(format!(
            "{what} is at version {v} (ETag \"{v}\"), not what the request expects; read it again"
        )),
        None => ApiError::PreconditionFailed(format!("{what} does not exist")),
    })
}

/// Where the config's validators report problems of this object.
fn problem_prefix(live: &Live, overlay: &crate::config::Overlay, kind: Kind, name: &str) -> String {
    match kind {
        Kind::Route => {
            let base = live.config.routes.len() - live.overlay.routes.len();
            let at = overlay
                .routes
                .iter()
                .position(|r| r.name == name)
                .unwrap_or(overlay.routes.len());
            format!("routes[{}]", base + at)
        }
        _ => format!("{}.{name}", kind.section()),
    }
}

fn invalid(what: &str, errors: Vec<FieldError>) -> ApiError {
    ApiError::InvalidConfig {
        message: format!(
            "{what} has {} problem(s); nothing was changed",
            errors.len()
        ),
        errors,
    }
}

/// The config's refusal: problems inside the object as JSON pointers into
/// the body, problems it causes elsewhere by their config key path.
fn refused(what: &str, prefix: &str, e: ReloadError) -> ApiError {
    let errors = match e {
        ReloadError::Invalid(problems) => problems
            .iter()
            .map(|p| match relative_pointer(&p.path, prefix) {
                Some(pointer) => FieldError::new(pointer, p.message.clone()),
                None => FieldError::new(p.path.clone(), p.message.clone()),
            })
            .collect(),
        ReloadError::Refused(reasons) => reasons
            .into_iter()
            .map(|r| FieldError::new("/config", r))
            .collect(),
        ReloadError::Templates(reason) => vec![FieldError::new("", reason)],
        other => return ApiError::Internal(other.to_string()),
    };
    invalid(what, errors)
}
