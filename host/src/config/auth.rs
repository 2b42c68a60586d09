//! `[auth]`: the admin token and the ingest tokens, secrets resolved.
//! Which destinations a token names is checked with the other references
//! (`references.rs`).

use std::collections::BTreeMap;

use super::raw::RawAuth;
use super::secret::{Resolver, Secret, SecretSource};
use super::{Auth, IngestToken};
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};
use crate::route::globs;

/// Checks `[auth]` and builds it.
pub(super) fn auth(raw: &RawAuth, resolver: &Resolver<'_>, f: &mut Findings) -> Auth {
    let p = KeyPath::root().key("auth");
    let admin_token = raw
        .admin_token
        .as_ref()
        .and_then(|s| secret(f, &s.0, &p.key("admin_token"), resolver));
    let mut ingest = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen_tokens: Vec<(usize, Secret)> = Vec::new();
    for (i, t) in raw.ingest.iter().enumerate() {
        let tp = p.key("ingest").index(i);
        if !valid_name(&t.name) {
            f.add(&tp.key("name"), NAME_RULE);
        } else if let Some(first) = names.get(t.name.as_str()) {
            f.add(
                &tp.key("name"),
                format!("{:?} is already the name of auth.ingest[{first}]", t.name),
            );
        } else {
            names.insert(&t.name, i);
        }
        let token = secret(f, &t.token.0, &tp.key("token"), resolver);
        if let Some(token) = &token {
            if let Some((first, _)) = seen_tokens.iter().find(|(_, s)| s == token) {
                f.add(
                    &tp.key("token"),
                    format!("is the same token as auth.ingest[{first}]; each token must be unique"),
                );
            } else if admin_token.as_ref() == Some(token) {
                f.add(
                    &tp.key("token"),
                    "is the same as auth.admin_token; use a separate admin token",
                );
            }
            seen_tokens.push((i, token.clone()));
        }
        let event_types = match &t.event_types {
            Some(list) => {
                let globs = globs(list, &tp.key("event_types"), f);
                (globs.len() == list.len()).then_some(Some(globs))
            }
            None => Some(None),
        };
        if let (Some(token), Some(event_types)) = (token, event_types) {
            ingest.push(IngestToken {
                name: t.name.clone(),
                token,
                event_types,
                destinations: t.destinations.clone(),
            });
        }
    }
    Auth {
        admin_token,
        ingest,
    }
}

/// A secret, resolved; a problem (and `None`) when it cannot be, or is empty.
fn secret(f: &mut Findings, text: &str, path: &KeyPath, resolver: &Resolver<'_>) -> Option<Secret> {
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
        Ok(secret) => Some(secret),
        Err(e) => {
            f.add(path, e.to_string());
            None
        }
    }
}
