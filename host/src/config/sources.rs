//! `[sources.NAME]`: the databases data-push tasks query (see
//! `carillon_push`). The connection URLs hold credentials: they may be
//! `${env:…}` / `${file:…}` references, are resolved here like every
//! secret, and are never shown (the config's JSON view redacts them, and
//! problems name the key, not the URL).
//!
//! ```toml
//! [sources.orders]
//! url = "${env:ORDERS_DB}"          # postgres://, mysql://, mariadb://, sqlite:PATH
//! dev_url = "${env:ORDERS_DEV_DB}"  # optional: test runs use it
//! workspace = "default"
//! max_connections = 4
//! ```

use serde::{Deserialize, Serialize};

use super::secret::{Resolver, Secret, SecretSource};
use crate::access::DEFAULT_WORKSPACE;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};

/// The most connections one source may hold.
pub const MAX_CONNECTIONS: u32 = 64;

/// `[sources.NAME]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// The production database (published tasks run here).
    pub url: String,
    /// The development database (test runs), if any.
    pub dev_url: Option<String>,
    /// The workspace; absent: `default`.
    pub workspace: Option<String>,
    /// Connections open at once, at most (default 4).
    pub max_connections: Option<u32>,
}

/// A data source, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceSettings {
    /// Its workspace.
    pub workspace: String,
    /// Its database engine.
    pub driver: carillon_push::Driver,
    /// The production URL (shown redacted).
    pub url: Secret,
    /// The development URL, if any (shown redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dev_url: Option<Secret>,
    /// Connections at most, per URL.
    pub max_connections: u32,
}

fn url(
    text: &str,
    at: &KeyPath,
    resolver: &Resolver<'_>,
    f: &mut Findings,
) -> Option<(Secret, carillon_push::Driver)> {
    let secret = SecretSource::parse(text)
        .map_err(|e| e.to_string())
        .and_then(|s| s.resolve(resolver).map_err(|e| e.to_string()));
    let secret = match secret {
        Ok(s) => s,
        Err(e) => {
            f.add(at, e);
            return None;
        }
    };
    match carillon_push::check_url(secret.expose()) {
        Ok(driver) => Some((secret, driver)),
        Err(e) => {
            f.add(at, e.to_string());
            None
        }
    }
}

/// Checks `[sources]`; every problem at its key.
pub(super) fn sources(
    raw: &std::collections::BTreeMap<String, RawSource>,
    resolver: &Resolver<'_>,
    f: &mut Findings,
) -> std::collections::BTreeMap<String, SourceSettings> {
    let mut out = std::collections::BTreeMap::new();
    for (name, s) in raw {
        let sp = KeyPath::root().key("sources").key(name.as_str());
        if !valid_name(name) {
            f.add(&sp, format!("the source name {NAME_RULE}"));
        }
        let max_connections = s.max_connections.unwrap_or(4);
        if !(1..=MAX_CONNECTIONS).contains(&max_connections) {
            f.add(
                &sp.key("max_connections"),
                format!("must be from 1 to {MAX_CONNECTIONS}"),
            );
        }
        let prod = url(&s.url, &sp.key("url"), resolver, f);
        let dev = s
            .dev_url
            .as_deref()
            .map(|d| url(d, &sp.key("dev_url"), resolver, f));
        if let (Some((_, p)), Some(Some((_, d)))) = (&prod, &dev)
            && p != d
        {
            f.add(
                &sp.key("dev_url"),
                format!("is a {d:?} database, but `url` is {p:?}: a task's SQL is checked for one driver"),
            );
        }
        let Some((url, driver)) = prod else {
            continue;
        };
        out.insert(
            name.clone(),
            SourceSettings {
                workspace: s
                    .workspace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned()),
                driver,
                url,
                dev_url: dev.flatten().map(|(s, _)| s),
                max_connections: max_connections.clamp(1, MAX_CONNECTIONS),
            },
        );
    }
    out
}
