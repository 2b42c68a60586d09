//! The gateway's side of `carillon-store`: the API's objects read back as
//! an [`Overlay`] (at start and for `config export`), and the store's
//! answers as API errors.

use carillon_store::{Object, Store, StoreError};

use super::error::ApiError;
use crate::config::{Kind, Overlay, Problem, Problems};

/// The store's file in the data directory.
pub const STORE_FILE: &str = "config.db";

/// One stored object as the API shows it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    /// Bumped by every write; the `ETag` is `"<version>"`.
    pub version: u64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// The body as written (secrets in clear: never shown as is).
    pub body: serde_json::Value,
}

impl From<&Object> for StoredObject {
    fn from(o: &Object) -> Self {
        StoredObject {
            version: o.version,
            created_at: millis(o.created_at_ms),
            updated_at: millis(o.updated_at_ms),
            body: o.body.clone(),
        }
    }
}

/// Unix milliseconds as RFC 3339.
pub fn millis(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Every stored object as an overlay; an object that no longer decodes
/// (a newer gateway's kind, or a shape this version refuses) is a
/// problem at its key path, so the start names it.
pub fn overlay(objects: &[Object]) -> Result<Overlay, Problems> {
    let mut overlay = Overlay::default();
    let mut problems = Vec::new();
    for o in objects {
        let Some(kind) = Kind::from_name(&o.kind) else {
            problems.push(stored_problem(
                &o.kind,
                &o.name,
                "",
                "is a kind this gateway does not know",
            ));
            continue;
        };
        if let Err(errors) = overlay.put(kind, &o.name, &o.workspace, &o.body) {
            for (pointer, message) in errors {
                problems.push(stored_problem(kind.section(), &o.name, &pointer, &message));
            }
        }
    }
    if problems.is_empty() {
        Ok(overlay)
    } else {
        Err(Problems(problems))
    }
}

fn stored_problem(section: &str, name: &str, pointer: &str, message: &str) -> Problem {
    Problem {
        path: format!("{section}.{name}{pointer}"),
        line: None,
        column: None,
        message: format!("{message} (an object created through the API, in {STORE_FILE})"),
    }
}

/// The store's refusal as the API's answer.
pub fn api_error(e: StoreError, what: &str) -> ApiError {
    match e {
        StoreError::Conflict { current: Some(v) } => ApiError::PreconditionFailed(format!(
            "{what} changed since it was read: its version is now {v} (ETag \"{v}\"); read it again"
        )),
        StoreError::Conflict { current: None } => {
            ApiError::PreconditionFailed(format!("{what} does not exist (any more)"))
        }
        StoreError::NotFound => ApiError::NotFound(format!("no {what}")),
        StoreError::NameTaken { .. } => ApiError::Conflict(format!(
            "the name of {what} is taken; names are unique per kind"
        )),
        StoreError::Full { limit } => ApiError::TooMuch(format!(
            "the store holds its limit of {limit} objects; delete some first"
        )),
        other => {
            tracing::error!(error = %other, "the config store failed");
            ApiError::Internal(format!("the config store failed: {other}"))
        }
    }
}

/// Opens the store in `data_dir`.
pub async fn open(data_dir: &std::path::Path) -> Result<Store, StoreError> {
    Store::open(&data_dir.join(STORE_FILE)).await
}
