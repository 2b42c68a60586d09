//! Reading request bodies up to `server.body_limit_bytes` and within
//! `server.body_timeout_secs`, answering 413 or 408 with the API's own
//! error body (axum's default limit answers plain text).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

use super::error::ApiError;
use crate::config::Server;

/// A JSON body of type `T`: JSON of the wrong shape (a missing or unknown
/// field) is a bad `body` parameter, not malformed JSON.
pub fn json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidParameter {
            name: "body",
            message: e.to_string(),
        },
        _ => ApiError::MalformedJson {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        },
    })
}

/// The whole body: `PayloadTooLarge` as soon as it passes the size limit,
/// `RequestTimeout` when it has not all arrived within the body timeout.
pub async fn read(headers: &HeaderMap, body: Body, server: &Server) -> Result<Bytes, ApiError> {
    let deadline = server.limits.body_timeout;
    tokio::time::timeout(
        deadline,
        read_within(headers, body, server.body_limit_bytes),
    )
    .await
    .map_err(|_| ApiError::RequestTimeout { after: deadline })?
}

async fn read_within(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    // A declared length over the limit is refused before reading anything.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(e) => Err(ApiError::InvalidParameter {
            name: "body",
            message: format!("the request body could not be read: {e}"),
        }),
    }
}
