//! The data sources of `[sources]` through the API: `GET
//! /v1/workspaces/{ws}/sources` (each with the health of its databases,
//! never a URL) and `POST /v1/workspaces/{ws}/sources/{name}/query`,
//! which runs one read-only statement with bound parameters and answers
//! the table: what a data-push task's test run is built on.
//!
//! Running SQL on a company database is an edit-level right (`Edit`: an
//! instance admin, or the source's workspace's admin). The statement is
//! checked by `carillon_push` (one reading statement, parameters bound),
//! and runs in a read-only transaction with a row cap and a time limit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path, State as Extract};
use axum::http::HeaderMap;
use carillon_push::{QueryError, Source, SourceLimits, Statement, Value};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{Principal, State};
use crate::config::Config;
use crate::event::FieldError;

/// A health check waits this long at most.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Rows a query answers by default, and at most.
const DEFAULT_ROWS: usize = 100;
/// See [`DEFAULT_ROWS`].
const MAX_ROWS: usize = 10_000;
/// A query's time limit by default, and at most.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// See [`DEFAULT_TIMEOUT`].
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// One source's pools: production, and development when configured.
struct Pools {
    workspace: String,
    prod: Source,
    dev: Option<Source>,
}

/// Every configured source's pools, made at start (`[sources]` is read at
/// start only).
#[derive(Default)]
pub struct Sources(BTreeMap<String, Pools>);

impl Sources {
    /// Pools for `config`'s sources, connecting lazily (call within the
    /// runtime).
    pub fn new(config: &Config) -> Sources {
        let mut out = BTreeMap::new();
        for (name, s) in &config.sources {
            let limits = SourceLimits {
                max_connections: s.max_connections,
                ..SourceLimits::default()
            };
            let prod = Source::new(name, s.url.expose(), limits);
            let dev = s
                .dev_url
                .as_ref()
                .map(|d| Source::new(name, d.expose(), limits))
                .transpose();
            match (prod, dev) {
                (Ok(prod), Ok(dev)) => {
                    out.insert(
                        name.clone(),
                        Pools {
                            workspace: s.workspace.clone(),
                            prod,
                            dev,
                        },
                    );
                }
                // The config check parsed the same URLs: not reached.
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(source = %name, error = %e, "cannot make the data source's pool");
                }
            }
        }
        Sources(out)
    }

    /// Closes every pool.
    pub async fn close(&self) {
        for p in self.0.values() {
            p.prod.close().await;
            if let Some(d) = &p.dev {
                d.close().await;
            }
        }
    }
}

/// `GET /v1/workspaces/{ws}/sources`.
pub async fn list(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    super::objects::visible_workspace(&principal, &principal.live, &ws)?;
    let mine: Vec<(&String, &Pools)> = state
        .sources
        .0
        .iter()
        .filter(|(_, p)| p.workspace == ws)
        .collect();
    let items = join_all(mine.into_iter().map(|(name, p)| async move {
        let mut envs = vec![("prod", &p.prod)];
        if let Some(d) = &p.dev {
            envs.push(("dev", d));
        }
        let checks = join_all(envs.into_iter().map(|(env, s)| async move {
            let h = s.health(HEALTH_TIMEOUT).await;
            json!({ "env": env, "ok": h.ok, "latency_ms": h.latency_ms, "error": h.error })
        }))
        .await;
        json!({ "name": name, "driver": p.prod.driver(), "environments": checks })
    }))
    .await;
    Ok(Json(json!({ "items": items })))
}

/// `POST …/sources/{name}/query` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    /// One reading statement with `${name}` parameters.
    sql: String,
    /// A value for each parameter.
    #[serde(default)]
    params: BTreeMap<String, Value>,
    /// `dev` (the default when the source has one) or `prod`.
    env: Option<String>,
    /// Rows to answer (1 to 10,000; default 100).
    row_cap: Option<usize>,
    /// Seconds the run may take (1 to 300; default 30).
    timeout_secs: Option<u64>,
    /// The time parameters named like a time expression (`${yyyymmdd-1}`)
    /// are evaluated at (RFC 3339; default: now). A task's run uses its
    /// fire time.
    at: Option<String>,
    /// The IANA zone they are evaluated in (default: `[render]
    /// time_zone`).
    time_zone: Option<String>,
}

fn invalid(errors: Vec<FieldError>) -> ApiError {
    ApiError::InvalidQuery {
        message: format!(
            "the query cannot run: {}",
            errors.first().map_or("", |e| e.message.as_str())
        ),
        errors,
    }
}

fn at(path: &str, message: impl Into<String>) -> ApiError {
    invalid(vec![FieldError::new(path, message.into())])
}

/// `e` as the API's answer: an unreachable database is a 503, everything
/// else a 422 at its pointer (a timeout at `timeout_at`).
fn failed(e: QueryError, name: &str, env: &str, timeout_at: &str) -> ApiError {
    match e {
        QueryError::Missing(names) => invalid(
            names
                .iter()
                .map(|n| {
                    FieldError::new(
                        format!("/params/{n}"),
                        "the statement uses it; give it a value".to_owned(),
                    )
                })
                .collect(),
        ),
        QueryError::Connect(why) => ApiError::Unavailable(format!(
            "source {name:?} ({env}): cannot reach the database: {why}"
        )),
        QueryError::Timeout(_) => at(timeout_at, e.to_string()),
        QueryError::Database(_) | QueryError::Undecodable { .. } => at("/sql", e.to_string()),
    }
}

/// What both endpoints read first: the source's pools (as `principal`
/// may see them) and the JSON body.
async fn request<'a, T: serde::de::DeserializeOwned>(
    state: &'a State,
    principal: &Principal,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(&'a Pools, String, T), ApiError> {
    let (ws, name) = super::objects::two_params(path)?;
    let pools = pools_of(state, principal, &ws, &name)?;
    let bytes = super::body::read(headers, body, &principal.live.config.server).await?;
    Ok((pools, name, super::body::json(&bytes)?))
}

/// The database `env` names (default: `dev` when there is one).
fn pick<'a>(
    pools: &'a Pools,
    env: Option<&str>,
    name: &str,
) -> Result<(&'static str, &'a Source), ApiError> {
    match env {
        None => Ok(match &pools.dev {
            Some(d) => ("dev", d),
            None => ("prod", &pools.prod),
        }),
        Some("prod") => Ok(("prod", &pools.prod)),
        Some("dev") => match &pools.dev {
            Some(d) => Ok(("dev", d)),
            None => Err(at("/env", format!("source {name:?} has no dev_url"))),
        },
        Some(other) => Err(at(
            "/env",
            format!("{other:?} is neither \"dev\" nor \"prod\""),
        )),
    }
}

/// The pools of source `name` of workspace `ws`, as `principal` may see
/// them.
fn pools_of<'a>(
    state: &'a State,
    principal: &Principal,
    ws: &str,
    name: &str,
) -> Result<&'a Pools, ApiError> {
    super::objects::visible_workspace(principal, &principal.live, ws)?;
    state
        .sources
        .0
        .get(name)
        .filter(|p| p.workspace == ws)
        .ok_or_else(|| ApiError::NotFound(format!("no source {name:?} in workspace {ws:?}")))
}

/// `POST …/describe` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DescribeBody {
    /// The statement.
    sql: String,
    /// `dev` (the default when the source has one) or `prod`.
    env: Option<String>,
}

/// `POST /v1/workspaces/{ws}/sources/{name}/describe`: the statement's
/// parameters and the columns it would answer (its output parameters),
/// from the database's description, without running it.
pub async fn describe(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (pools, name, q): (_, _, DescribeBody) =
        self::request(&state, &principal, path, &headers, request).await?;
    let (env, source) = pick(pools, q.env.as_deref(), &name)?;
    let statement =
        Statement::parse(&q.sql, source.driver()).map_err(|e| at("/sql", e.to_string()))?;
    let columns = carillon_push::describe(source, &statement, DEFAULT_TIMEOUT)
        .await
        .map_err(|e| failed(e, &name, env, "/sql"))?;
    let zone = &principal.live.config.render.time_zone;
    let now = crate::timestamp::to_jiff(state.clock.now());
    let time_params: Vec<&str> = statement
        .params()
        .into_iter()
        .filter(|p| crate::render::time_expression(p, now, zone).is_some())
        .collect();
    Ok(Json(json!({
        "source": name,
        "env": env,
        "params": statement.params(),
        "time_params": time_params,
        "columns": columns,
    })))
}

/// `POST /v1/workspaces/{ws}/sources/{name}/query`.
pub async fn query(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (pools, name, q): (_, _, QueryBody) =
        self::request(&state, &principal, path, &headers, request).await?;
    let (env, source) = pick(pools, q.env.as_deref(), &name)?;
    let row_cap = q.row_cap.unwrap_or(DEFAULT_ROWS);
    if !(1..=MAX_ROWS).contains(&row_cap) {
        return Err(at("/row_cap", format!("must be from 1 to {MAX_ROWS}")));
    }
    let timeout = q.timeout_secs.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    if timeout.is_zero() || timeout > MAX_TIMEOUT {
        return Err(at(
            "/timeout_secs",
            format!("must be from 1 to {}", MAX_TIMEOUT.as_secs()),
        ));
    }
    let statement =
        Statement::parse(&q.sql, source.driver()).map_err(|e| at("/sql", e.to_string()))?;
    // Parameters named like a time expression and not given get their
    // value at `at` in `time_zone`.
    let when = match q.at.as_deref() {
        None => crate::timestamp::to_jiff(state.clock.now()),
        Some(t) => t.parse::<jiff::Timestamp>().map_err(|_| {
            at(
                "/at",
                format!("{t:?} is not an RFC 3339 time such as 2026-12-07T09:00:00+08:00"),
            )
        })?,
    };
    let zone = match q.time_zone.as_deref() {
        None => principal.live.config.render.time_zone.clone(),
        Some(z) => jiff::tz::TimeZone::get(z)
            .map_err(|_| at("/time_zone", format!("{z:?} is not an IANA time zone")))?,
    };
    let mut values = q.params;
    let mut timed = Vec::new();
    for name in statement.params() {
        if values.contains_key(name) {
            continue;
        }
        if let Some(v) = crate::render::time_expression(name, when, &zone) {
            let v = v.map_err(|e| at(&format!("/params/{name}"), e))?;
            values.insert(name.to_owned(), Value::Text(v));
            timed.push(name.to_owned());
        }
    }
    let started = Instant::now();
    let limits = carillon_push::Limits { row_cap, timeout };
    let table = carillon_push::run(source, &statement, &values, limits)
        .await
        .map_err(|e| failed(e, &name, env, "/timeout_secs"))?;
    tracing::info!(source = %name, env, rows = table.rows.len(), truncated = table.truncated, token = %principal.token().name, "data source queried");
    Ok(Json(json!({
        "source": name,
        "env": env,
        "params": statement.params(),
        "time_params": timed,
        "columns": table.columns,
        "rows": table.rows,
        "truncated": table.truncated,
        "elapsed_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })))
}
