//! One error type for every answer that is not a success, each with its
//! HTTP status and a stable, machine-readable `code`. Bodies are
//! `{"error": {"code": "...", "message": "...", "errors": [...]}}`.

use std::time::Duration;

use carillon_outbox::{EnqueueError, OutboxError};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::event::FieldError;

/// Everything the API can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that is not known.
    #[error("missing or unknown token; send `Authorization: Bearer <token>`")]
    Unauthorized,
    /// The token is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No such resource.
    #[error("{0}")]
    NotFound(String),
    /// The body is larger than `server.body_limit_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request is within the body limit but asks for more than one
    /// request may (too many alerts, too much to store).
    #[error("{0}")]
    TooMuch(String),
    /// The body did not arrive within `server.body_timeout_secs`.
    #[error("the request body did not arrive within {} s", .after.as_secs())]
    RequestTimeout {
        /// The deadline.
        after: Duration,
    },
    /// The Content-Type is not one this endpoint reads.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body is not JSON.
    #[error("the body is not valid JSON (line {line}, column {column}): {message}")]
    MalformedJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's words.
        message: String,
    },
    /// The event does not match the schema; every problem is listed.
    #[error("the event is invalid: {}", summary(.0))]
    InvalidEvent(Vec<FieldError>),
    /// A query or path parameter is wrong.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The event is valid but a template cannot render it.
    #[error("{0}")]
    Unrenderable(String),
    /// A config (a reloaded file) does not pass its checks; every problem
    /// is listed, with its key path.
    #[error("{message}")]
    InvalidConfig {
        /// What happened.
        message: String,
        /// Every problem.
        errors: Vec<FieldError>,
    },
    /// A data source query cannot run (its SQL, its parameters, or the
    /// database's refusal); every problem is listed at its pointer.
    #[error("{message}")]
    InvalidQuery {
        /// What happened.
        message: String,
        /// Every problem.
        errors: Vec<FieldError>,
    },
    /// The resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` / `If-None-Match` do not hold: the object changed since
    /// the client read it (or exists, or does not).
    #[error("{0}")]
    PreconditionFailed(String),
    /// The outbox is full; try again later.
    #[error("the gateway is at capacity; retry after {} s", .retry_after.as_secs().max(1))]
    Backpressure {
        /// The hint sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The outbox cannot store the event now (its disk is nearly full, or
    /// a write failed): nothing was stored or acknowledged.
    #[error("{message}; nothing was stored; retry after {} s", .retry_after.as_secs().max(1))]
    StorageUnavailable {
        /// Why, without the storage's own words (those are logged).
        message: &'static str,
        /// The hint sent as `Retry-After`.
        retry_after: Duration,
    },
    /// The gateway is starting or stopping.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed inside the gateway; details are in its log.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(errors: &[FieldError]) -> String {
    match errors {
        [] => "no details".to_owned(),
        [one] => format!("{}: {}", path_or_body(&one.path), one.message),
        [first, ..] => format!(
            "{}: {} (and {} more)",
            path_or_body(&first.path),
            first.message,
            errors.len() - 1
        ),
    }
}

fn path_or_body(path: &str) -> &str {
    if path.is_empty() { "(body)" } else { path }
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } | ApiError::TooMuch(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MalformedJson { .. }
            | ApiError::InvalidEvent(_)
            | ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unrenderable(_)
            | ApiError::InvalidConfig { .. }
            | ApiError::InvalidQuery { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Backpressure { .. }
            | ApiError::StorageUnavailable { .. }
            | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge { .. } | ApiError::TooMuch(_) => "payload_too_large",
            ApiError::RequestTimeout { .. } => "request_timeout",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::MalformedJson { .. } => "malformed_json",
            ApiError::InvalidEvent(_) => "invalid_event",
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::Unrenderable(_) => "unrenderable",
            ApiError::InvalidConfig { .. } => "invalid_config",
            ApiError::InvalidQuery { .. } => "invalid_query",
            ApiError::Conflict(_) => "conflict",
            ApiError::PreconditionFailed(_) => "precondition_failed",
            ApiError::Backpressure { .. } => "backpressure",
            ApiError::StorageUnavailable { .. } => "storage_unavailable",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            // The detail of an internal error is logged, not sent.
            ApiError::Internal(_) => "internal error; the gateway's log has the details".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                errors: match self {
                    ApiError::InvalidEvent(errors)
                    | ApiError::InvalidConfig { errors, .. }
                    | ApiError::InvalidQuery { errors, .. } => errors.clone(),
                    _ => Vec::new(),
                },
            },
        }
    }
}

/// `{"error": …}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error's fields.
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Every problem (`invalid_event`, `invalid_config`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!(error = %detail, "request failed");
        }
        let status = self.status();
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::Backpressure { retry_after }
        | ApiError::StorageUnavailable { retry_after, .. } = &self
        {
            let secs = retry_after.as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come; the connection is not
            // reused.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"carillon\""),
            );
        }
        response
    }
}

/// `Retry-After` when a write failed: sled refuses writes until the
/// gateway restarts, so sooner is pointless.
const STORAGE_FAILED_RETRY_AFTER: Duration = Duration::from_secs(30);

impl From<EnqueueError> for ApiError {
    fn from(e: EnqueueError) -> Self {
        match e {
            EnqueueError::Backpressure { retry_after } => ApiError::Backpressure { retry_after },
            EnqueueError::StorageFull {
                available,
                reserve,
                retry_after,
            } => {
                tracing::warn!(
                    available,
                    reserve,
                    "refusing events: the outbox's disk has less free space than outbox.min_free_mib"
                );
                ApiError::StorageUnavailable {
                    message: "the gateway's disk is nearly full",
                    retry_after,
                }
            }
            EnqueueError::Invalid { field, reason } => ApiError::InvalidEvent(vec![FieldError {
                path: format!("/{field}"),
                message: reason.to_owned(),
            }]),
            EnqueueError::Closed | EnqueueError::Outbox(OutboxError::Closed(_)) => {
                ApiError::Unavailable("the gateway is shutting down".into())
            }
            // Never acknowledged: the write or the flush covering it
            // failed (a full disk, an I/O error).
            EnqueueError::Flush(_) | EnqueueError::Outbox(OutboxError::Storage(_)) => {
                tracing::error!(
                    error = %e,
                    "the outbox cannot store events; the gateway needs a restart once the disk is fixed"
                );
                ApiError::StorageUnavailable {
                    message: "the gateway's storage failed (its log has the details)",
                    retry_after: STORAGE_FAILED_RETRY_AFTER,
                }
            }
            other => ApiError::Internal(format!("enqueue: {other}")),
        }
    }
}

impl From<carillon_outbox::OutboxError> for ApiError {
    fn from(e: carillon_outbox::OutboxError) -> Self {
        ApiError::Internal(format!("outbox: {e}"))
    }
}
