//! Bearer tokens: ingest tokens for applications, one admin token for
//! operators. Tokens are compared in constant time, and never logged.

use axum::http::{HeaderMap, header};

use super::error::ApiError;
use crate::config::{Config, IngestToken};

/// The token presented with a request, if any.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// The ingest token a request carries. Every configured token is compared
/// (no early exit), so timing does not tell which one nearly matched.
pub fn ingest<'c>(config: &'c Config, headers: &HeaderMap) -> Result<&'c IngestToken, ApiError> {
    let token = presented(headers).ok_or(ApiError::Unauthorized)?;
    let mut found = None;
    for candidate in &config.auth.ingest {
        if candidate.token.matches(token) && found.is_none() {
            found = Some(candidate);
        }
    }
    found.ok_or(ApiError::Unauthorized)
}

/// Checks the admin token.
pub fn admin(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = presented(headers).ok_or(ApiError::Unauthorized)?;
    match &config.auth.admin_token {
        Some(admin) if admin.matches(token) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// May `token` post events of this type?
pub fn allows_type(token: &IngestToken, event_type: &str) -> bool {
    token
        .event_types
        .as_ref()
        .is_none_or(|globs| globs.iter().any(|g| g.matches(event_type)))
}

/// May `token` name this destination directly?
pub fn allows_destination(token: &IngestToken, destination: &str) -> bool {
    token
        .destinations
        .as_ref()
        .is_none_or(|list| list.iter().any(|d| d == destination))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn bearer_tokens_are_read_case_insensitively_and_trimmed() {
        assert_eq!(presented(&headers("Bearer abc")), Some(&b"abc"[..]));
        assert_eq!(presented(&headers("bearer  abc ")), Some(&b"abc"[..]));
        assert_eq!(presented(&headers("Basic abc")), None);
        assert_eq!(presented(&headers("Bearer ")), None);
        assert_eq!(presented(&headers("abc")), None);
        assert_eq!(presented(&HeaderMap::new()), None);
    }
}
