//! `[auth]`: the admin token, the ingest tokens and the general token list,
//! all read into one list of [`Token`]s that keep only each secret's
//! SHA-256. Which workspaces and destinations a token names is checked
//! with the other references (`references.rs`).

use std::collections::BTreeMap;

use super::raw::{RawAuth, SecretText};
use super::secret::{Resolver, SecretSource};
use super::{Auth, Token};
use crate::access::{DEFAULT_WORKSPACE, Role, TokenHash};
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};
use crate::route::globs;

/// The name the `[auth] admin_token` goes by in logs.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// One token as written, whichever list it came from.
struct Entry<'a> {
    path: KeyPath,
    name: &'a str,
    role: Role,
    workspace: Option<&'a str>,
    token: Option<&'a SecretText>,
    sha256: Option<&'a str>,
    event_types: Option<&'a Vec<String>>,
    destinations: Option<&'a Vec<String>>,
}

/// Checks `[auth]` and builds it.
pub(super) fn auth(raw: &RawAuth, resolver: &Resolver<'_>, f: &mut Findings) -> Auth {
    let p = KeyPath::root().key("auth");
    let mut entries = Vec::new();
    if raw.admin_token.is_some() || raw.admin_token_sha256.is_some() {
        entries.push(Entry {
            path: p.clone(),
            name: ADMIN_TOKEN_NAME,
            role: Role::InstanceAdmin,
            workspace: None,
            token: raw.admin_token.as_ref(),
            sha256: raw.admin_token_sha256.as_deref(),
            event_types: None,
            destinations: None,
        });
    }
    for (i, t) in raw.ingest.iter().enumerate() {
        entries.push(Entry {
            path: p.key("ingest").index(i),
            name: &t.name,
            role: Role::Ingest,
            workspace: t.workspace.as_deref(),
            token: t.token.as_ref(),
            sha256: t.token_sha256.as_deref(),
            event_types: t.event_types.as_ref(),
            destinations: t.destinations.as_ref(),
        });
    }
    for (i, t) in raw.tokens.iter().enumerate() {
        entries.push(Entry {
            path: p.key("tokens").index(i),
            name: &t.name,
            role: t.role.0,
            workspace: t.workspace.as_deref(),
            token: t.token.as_ref(),
            sha256: t.token_sha256.as_deref(),
            event_types: t.event_types.as_ref(),
            destinations: t.destinations.as_ref(),
        });
    }

    let mut tokens: Vec<Token> = Vec::new();
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    let mut hashes: Vec<(TokenHash, String)> = Vec::new();
    for e in &entries {
        let is_admin_key = e.name == ADMIN_TOKEN_NAME && e.path == p;
        // The admin token's keys sit in `[auth]` itself.
        let (token_key, sha_key) = if is_admin_key {
            ("admin_token", "admin_token_sha256")
        } else {
            ("token", "token_sha256")
        };
        let at = |key: &str| e.path.key(key.to_owned());
        if !is_admin_key {
            if !valid_name(e.name) {
                f.add(&at("name"), NAME_RULE);
            } else if let Some(first) = names.get(e.name) {
                f.add(
                    &at("name"),
                    format!("{:?} is already the name of {first}", e.name),
                );
            } else {
                names.insert(e.name, e.path.to_string());
            }
        }
        let hash = match (e.token, e.sha256) {
            (Some(text), None) => secret_hash(f, &text.0, &at(token_key), resolver),
            (None, Some(hex)) => match TokenHash::from_hex(hex) {
                Some(h) => Some(h),
                None => {
                    f.add(
                        &at(sha_key),
                        "is not a SHA-256 in hex (64 digits 0-9, a-f); \
                         e.g. `printf %s \"$TOKEN\" | sha256sum`",
                    );
                    None
                }
            },
            (Some(_), Some(_)) => {
                f.add(
                    &at(sha_key),
                    format!("give either `{token_key}` or `{sha_key}`, not both"),
                );
                None
            }
            (None, None) => {
                f.add(
                    &e.path,
                    format!("needs `{token_key}` (the token) or `{sha_key}` (its SHA-256)"),
                );
                None
            }
        };
        if let Some(hash) = &hash {
            let given = at(if e.token.is_some() {
                token_key
            } else {
                sha_key
            });
            if let Some((_, first)) = hashes.iter().find(|(h, _)| h == hash) {
                f.add(
                    &given,
                    format!("is the same token as {first}; each token must be unique"),
                );
            }
            hashes.push((hash.clone(), given.to_string()));
        }
        let workspace = match (e.role.is_instance_wide(), e.workspace) {
            (true, Some(_)) => {
                f.add(
                    &at("workspace"),
                    "an instance-admin token acts in every workspace; remove `workspace`",
                );
                None
            }
            (true, None) => None,
            (false, ws) => Some(ws.unwrap_or(DEFAULT_WORKSPACE).to_owned()),
        };
        if e.role != Role::Ingest {
            for (key, given) in [
                ("event_types", e.event_types.is_some()),
                ("destinations", e.destinations.is_some()),
            ] {
                if given {
                    f.add(
                        &at(key),
                        format!("only an `ingest` token is limited by `{key}`"),
                    );
                }
            }
        }
        let event_types = match e.event_types {
            Some(list) => {
                let globs = globs(list, &at("event_types"), f);
                (globs.len() == list.len()).then_some(Some(globs))
            }
            None => Some(None),
        };
        if let (Some(hash), Some(event_types)) = (hash, event_types) {
            tokens.push(Token {
                name: e.name.to_owned(),
                role: e.role,
                workspace,
                hash,
                event_types,
                destinations: e.destinations.cloned(),
            });
        }
    }
    Auth { tokens }
}

/// A secret, resolved and hashed; a problem (and `None`) when it cannot be
/// resolved, or is empty.
fn secret_hash(
    f: &mut Findings,
    text: &str,
    path: &KeyPath,
    resolver: &Resolver<'_>,
) -> Option<TokenHash> {
    let source = match SecretSource::parse(text) {
        Ok(source) => source,
        Err(e) => {
            f.add(path, e.to_string());
            return None;
        }
    };
    match source.resolve(resolver) {
        Ok(secret) if secret.is_empty() => {
            f.add(path, "is empty; a token must not be empty");
            None
        }
        Ok(secret) => Some(TokenHash::of(secret.expose().as_bytes())),
        Err(e) => {
            f.add(path, e.to_string());
            None
        }
    }
}
