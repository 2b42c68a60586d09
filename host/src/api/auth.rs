//! Bearer tokens and roles. Every route of [`super::ROUTES`] names the
//! [`Permission`] it requires; [`authorize`] runs before the route's
//! handler (and before its extractors, so a request without a token
//! learns nothing from its path or body), finds the token by its SHA-256
//! in constant time, checks the role, and hands the handler a
//! [`Principal`]. Tokens are never logged.

use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use super::error::ApiError;
use super::{Live, State};
use crate::access::{Permission, Role};
use crate::config::Token;

/// The token presented with a request, if any.
fn presented(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at(value.iter().position(|b| *b == b' ')?);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| token.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Who is asking: the token found, in the configuration it was found in
/// (a handler acts on that same snapshot).
#[derive(Clone)]
pub struct Principal {
    /// The configuration the token was checked against.
    pub live: Arc<Live>,
    index: usize,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("name", &self.token().name)
            .field("role", &self.token().role)
            .finish()
    }
}

impl Principal {
    /// The token.
    pub fn token(&self) -> &Token {
        &self.live.config.auth.tokens[self.index]
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.token().role
    }

    /// The one workspace it sees; `None`: all of them (an instance admin).
    pub fn scope(&self) -> Option<&str> {
        self.token().workspace.as_deref()
    }

    /// May it see the objects of `workspace`?
    pub fn sees(&self, workspace: &str) -> bool {
        self.scope().is_none_or(|w| w == workspace)
    }

    /// May it see destination `name` (which must exist)?
    pub fn sees_destination(&self, name: &str) -> bool {
        self.live
            .config
            .destination_workspace(name)
            .is_some_and(|ws| self.sees(ws))
    }
}

/// What a route requires, with the state: the middleware's own state.
#[derive(Clone)]
pub struct Guard {
    /// The gateway's state (the configuration in force).
    pub state: Arc<State>,
    /// What the route requires.
    pub permission: Permission,
}

/// The check every route runs first: 401 without a known token, and for
/// an ingest token on a management route or a management token on an
/// ingest route (an application's credential is not an operator's, and
/// the other way round); 403 when a management token's role lacks the
/// route's permission; else the [`Principal`] goes to the handler as a
/// request extension.
pub async fn authorize(
    Extract(guard): Extract<Guard>,
    mut request: Request,
    next: Next,
) -> Response {
    if guard.permission == Permission::Public {
        return next.run(request).await;
    }
    let live = guard.state.live();
    let Some(index) = presented(request.headers()).and_then(|t| live.config.auth.find(t)) else {
        return ApiError::Unauthorized.into_response();
    };
    let role = live.config.auth.tokens[index].role;
    if (role == Role::Ingest) != (guard.permission == Permission::Ingest) {
        return ApiError::Unauthorized.into_response();
    }
    if !role.grants(guard.permission) {
        return ApiError::Forbidden(format!(
            "a {role} token may not do this (it needs the `{}` permission; see docs/roles.md)",
            guard.permission
        ))
        .into_response();
    }
    request.extensions_mut().insert(Principal { live, index });
    next.run(request).await
}

/// May `token` post events of this type?
pub fn allows_type(token: &Token, event_type: &str) -> bool {
    token
        .event_types
        .as_ref()
        .is_none_or(|globs| globs.iter().any(|g| g.matches(event_type)))
}

/// May `token` name this destination directly?
pub fn allows_destination(token: &Token, destination: &str) -> bool {
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
