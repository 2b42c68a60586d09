//! `POST /v1/workspaces/{ws}/import/contacts`: contacts from a company
//! directory, as JSON or as CSV, matched by their `external_id`, so that
//! the people Carillon pages follow the directory without hand edits.
//!
//! Each row is created, changed, left unchanged, or refused with its
//! problems; the rows that pass are checked together (with everything
//! else, by the config's validators and the plugins) and written in one
//! store transaction, then applied at once. A row the checks refuse is
//! left out and reported, and the rest goes in.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query, State as Extract};
use axum::http::{HeaderMap, header};
use carillon_store::{Actor, Change, Expect};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config_store::api_error;
use super::error::ApiError;
use super::object_view;
use super::reconfigure::{ApplyError, ReloadError, apply};
use super::{Principal, State, body};
use crate::config::overlay::relative_pointer;
use crate::config::{Kind, Overlay};
use crate::event::FieldError;
use crate::problem::valid_name;

/// Rows one import may carry.
pub const MAX_ROWS: usize = 10_000;

/// Query of the import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// The email destination a CSV `email` column is sent through.
    email_via: Option<String>,
}

/// A JSON import: `{"contacts": [...]}`, each a contact body with its
/// `external_id` (and optionally its `name`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonImport {
    contacts: Vec<Value>,
}

/// What became of one row.
#[derive(Debug, Serialize)]
pub struct RowResult {
    /// 1-based (a CSV's header is row 0).
    row: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// `created`, `changed`, `unchanged` or `refused`.
    result: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<FieldError>,
}

/// One row read: its contact body, or why it cannot be one.
struct Row {
    external_id: Option<String>,
    name: Option<String>,
    body: Result<Value, Vec<FieldError>>,
}

/// The handler.
pub async fn import(
    Extract(state): Extract<Arc<State>>,
    Extension(principal): Extension<Principal>,
    ws: Result<Path<String>, PathRejection>,
    query: Result<Query<ImportParams>, QueryRejection>,
    headers: HeaderMap,
    request: Body,
) -> Result<Json<Value>, ApiError> {
    let ws = super::admin::path_param(ws, "ws")?;
    if !(principal.sees(&ws) && principal.live.config.workspaces.contains_key(&ws)) {
        return Err(ApiError::NotFound(format!("no workspace {ws:?}")));
    }
    let Query(q) = query.map_err(|e| ApiError::InvalidParameter {
        name: "query",
        message: e.body_text(),
    })?;
    let bytes = body::read(&headers, request, &principal.live.config.server).await?;
    let csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/csv"));
    let rows = if csv {
        csv_rows(&bytes, q.email_via.as_deref())?
    } else {
        let parsed: JsonImport = body::json(&bytes)?;
        parsed.contacts.into_iter().map(json_row).collect()
    };
    if rows.len() > MAX_ROWS {
        return Err(ApiError::TooMuch(format!(
            "{} rows; one import takes at most {MAX_ROWS}",
            rows.len()
        )));
    }
    run(&state, &principal, &ws, rows).await.map(Json)
}

fn json_row(mut body: Value) -> Row {
    let take = |body: &mut Value, key: &str| {
        body.as_object_mut()
            .and_then(|o| o.remove(key))
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let name = take(&mut body, "name");
    let external_id = body["external_id"].as_str().map(str::to_owned);
    Row {
        external_id,
        name,
        body: Ok(body),
    }
}

/// CSV as a directory exports it: a header row, then one contact per row.
fn csv_rows(bytes: &[u8], email_via: Option<&str>) -> Result<Vec<Row>, ApiError> {
    const COLUMNS: [&str; 7] = [
        "external_id",
        "name",
        "display_name",
        "locale",
        "alternate",
        "email",
        "mobile",
    ];
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| bad_csv(format!("the header row cannot be read: {e}")))?
        .clone();
    for h in &headers {
        if !COLUMNS.contains(&h) {
            return Err(bad_csv(format!(
                "unknown column {h:?}; the columns are {}",
                COLUMNS.join(", ")
            )));
        }
    }
    if !headers.iter().any(|h| h == "external_id") {
        return Err(bad_csv("the column external_id is required".into()));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad_csv(e.to_string()))?;
        if rows.len() >= MAX_ROWS {
            return Err(ApiError::TooMuch(format!(
                "more than {MAX_ROWS} rows; split the import"
            )));
        }
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let mut body = serde_json::Map::new();
        for key in ["external_id", "display_name", "locale", "alternate"] {
            if let Some(v) = cell(key) {
                body.insert(key.into(), v.into());
            }
        }
        let mut methods = Vec::new();
        let mut errors = Vec::new();
        if let Some(address) = cell("email") {
            match email_via {
                Some(via) => methods.push(json!({"type": "email", "address": address, "via": via})),
                None => errors.push(FieldError::new(
                    "/email",
                    "an email column needs the email destination to send through: ?email_via=NAME",
                )),
            }
        }
        if let Some(number) = cell("mobile") {
            methods.push(json!({"type": "mobile", "number": number}));
        }
        body.insert("methods".into(), methods.into());
        rows.push(Row {
            external_id: cell("external_id"),
            name: cell("name"),
            body: if errors.is_empty() {
                Ok(body.into())
            } else {
                Err(errors)
            },
        });
    }
    Ok(rows)
}

fn bad_csv(message: String) -> ApiError {
    ApiError::InvalidParameter {
        name: "body",
        message: format!("the CSV cannot be read: {message}"),
    }
}

/// A name for a new contact from its directory id.
fn name_from(external_id: &str) -> String {
    external_id
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A row on its way in.
struct Pending {
    index: usize,
    name: String,
    body: Value,
    previous: Option<(u64, Value)>,
}

async fn run(
    state: &State,
    principal: &Principal,
    ws: &str,
    rows: Vec<Row>,
) -> Result<Value, ApiError> {
    let _one_at_a_time = state.reload_lock.lock().await;
    let live = state.live();
    let stored: HashMap<String, (u64, Value)> = state
        .store
        .objects_of(Kind::Contact.name(), Some(ws))
        .await
        .map_err(|e| api_error(e, "the stored contacts"))?
        .into_iter()
        .map(|o| (o.name, (o.version, o.body)))
        .collect();
    // Directory id → contact name, over the workspace's contacts.
    let by_external: HashMap<&str, &str> = live
        .config
        .contacts
        .iter()
        .filter(|(_, c)| c.workspace == ws)
        .filter_map(|(n, c)| Some((c.external_id.as_deref()?, n.as_str())))
        .collect();
    let mut results: Vec<RowResult> = Vec::with_capacity(rows.len());
    let mut pending: Vec<Pending> = Vec::new();
    let refuse = |r: &mut RowResult, errors: Vec<FieldError>| {
        r.result = "refused";
        r.errors = errors;
    };
    for (i, row) in rows.into_iter().enumerate() {
        let mut result = RowResult {
            row: i + 1,
            external_id: row.external_id.clone(),
            name: None,
            result: "unchanged",
            errors: Vec::new(),
        };
        let body = match (row.body, &row.external_id) {
            (Err(errors), _) => {
                refuse(&mut result, errors);
                results.push(result);
                continue;
            }
            (Ok(_), None) => {
                refuse(
                    &mut result,
                    vec![FieldError::new(
                        "/external_id",
                        "is required to match the directory",
                    )],
                );
                results.push(result);
                continue;
            }
            (Ok(body), Some(_)) => body,
        };
        let external = row.external_id.as_deref().unwrap_or_default();
        let matched = by_external.get(external).map(|n| (*n).to_owned());
        let name = matched
            .clone()
            .or_else(|| row.name.clone())
            .unwrap_or_else(|| name_from(external));
        result.name = Some(name.clone());
        if !valid_name(&name) {
            refuse(
                &mut result,
                vec![FieldError::new(
                    "/name",
                    "must use only letters, digits, `-`, `_` and `.`",
                )],
            );
        } else if pending.iter().any(|p| p.name == name) {
            refuse(
                &mut result,
                vec![FieldError::new(
                    "/external_id",
                    "another row of this import has this contact",
                )],
            );
        } else if matched.is_some() && !stored.contains_key(&name) {
            refuse(
                &mut result,
                vec![FieldError::new(
                    "",
                    format!("contact {name:?} is provisioned by the config file"),
                )],
            );
        } else if matched.is_none()
            && (live.config.contacts.contains_key(&name) || stored.contains_key(&name))
        {
            refuse(
                &mut result,
                vec![FieldError::new(
                    "/name",
                    format!("the name {name:?} is taken by another contact"),
                )],
            );
        } else {
            let previous = stored.get(&name).cloned();
            match &previous {
                Some((_, was)) if *was == body => {}
                _ => {
                    result.result = if previous.is_some() {
                        "changed"
                    } else {
                        "created"
                    };
                    pending.push(Pending {
                        index: i,
                        name,
                        body,
                        previous,
                    });
                }
            }
        }
        results.push(result);
    }

    // Check the rows together; a row the checks refuse is left out and the
    // rest checked again (each round leaves out every row found wrong).
    let plugin = |p: &str| state.destinations.plugin(p);
    let actor = Actor {
        token: principal.token().name.clone(),
        role: principal.role().name().to_owned(),
    };
    let text = live.config.source_text().to_owned();
    for _round in 0..4 {
        if pending.is_empty() {
            break;
        }
        let mut overlay: Overlay = live.overlay.clone();
        let mut decode_failed = Vec::new();
        for (k, p) in pending.iter().enumerate() {
            if let Err(errors) = overlay.put(Kind::Contact, &p.name, ws, &p.body) {
                decode_failed.push((
                    k,
                    errors
                        .into_iter()
                        .map(|(a, m)| FieldError::new(a, m))
                        .collect(),
                ));
            }
        }
        if !decode_failed.is_empty() {
            drop_rows(&mut pending, &mut results, decode_failed);
            continue;
        }
        let changes: Vec<(Change, Option<Value>, Option<Value>)> = pending
            .iter()
            .map(|p| {
                let change = Change::Put {
                    kind: Kind::Contact.name().to_owned(),
                    name: p.name.clone(),
                    workspace: ws.to_owned(),
                    body: p.body.clone(),
                    expect: p
                        .previous
                        .as_ref()
                        .map_or(Expect::Absent, |(v, _)| Expect::Version(*v)),
                };
                let before = p
                    .previous
                    .as_ref()
                    .map(|(_, b)| object_view::redact_spec(Kind::Contact, b, &plugin));
                let after = Some(object_view::redact_spec(Kind::Contact, &p.body, &plugin));
                (change, before, after)
            })
            .collect();
        let applied = apply(state, &text, overlay, async || {
            state.store.write_batch(changes, &actor).await.map(|_| ())
        })
        .await;
        match applied {
            Ok(_) => {
                tracing::info!(workspace = %ws, rows = pending.len(), token = %actor.token, "contacts imported");
                pending.clear();
                break;
            }
            Err(ApplyError::Gate(e)) => return Err(api_error(e, "the imported contacts")),
            Err(ApplyError::Reload(ReloadError::Invalid(problems))) => {
                let mut by_row: BTreeMap<usize, Vec<FieldError>> = BTreeMap::new();
                let mut elsewhere = Vec::new();
                for problem in problems.iter() {
                    let owner = pending.iter().position(|p| {
                        relative_pointer(&problem.path, &format!("contacts.{}", p.name)).is_some()
                    });
                    match owner {
                        Some(k) => {
                            let at = relative_pointer(
                                &problem.path,
                                &format!("contacts.{}", pending[k].name),
                            )
                            .unwrap_or_default();
                            by_row
                                .entry(k)
                                .or_default()
                                .push(FieldError::new(at, problem.message.clone()));
                        }
                        None => elsewhere.push(FieldError::new(
                            problem.path.clone(),
                            problem.message.clone(),
                        )),
                    }
                }
                if by_row.is_empty() {
                    return Err(ApiError::InvalidConfig {
                        message: "the import breaks the config elsewhere; nothing was changed"
                            .into(),
                        errors: elsewhere,
                    });
                }
                drop_rows(&mut pending, &mut results, by_row.into_iter().collect());
            }
            Err(ApplyError::Reload(other)) => {
                return Err(ApiError::InvalidConfig {
                    message: format!("the import was refused; nothing was changed: {other}"),
                    errors: Vec::new(),
                });
            }
        }
    }
    if !pending.is_empty() {
        return Err(ApiError::InvalidConfig {
            message: "the import did not settle; nothing was changed".into(),
            errors: Vec::new(),
        });
    }
    let count = |what: &str| results.iter().filter(|r| r.result == what).count();
    Ok(json!({
        "created": count("created"),
        "changed": count("changed"),
        "unchanged": count("unchanged"),
        "refused": count("refused"),
        "rows": results,
    }))
}

/// Takes the `failed` pending rows (by their index in `pending`) out and
/// marks their results refused.
fn drop_rows(
    pending: &mut Vec<Pending>,
    results: &mut [RowResult],
    failed: Vec<(usize, Vec<FieldError>)>,
) {
    let mut failed: BTreeMap<usize, Vec<FieldError>> = failed.into_iter().collect();
    let mut k = 0;
    pending.retain(|p| {
        let keep = match failed.remove(&k) {
            Some(errors) => {
                results[p.index].result = "refused";
                results[p.index].errors = errors;
                false
            }
            None => true,
        };
        k += 1;
        keep
    });
}
