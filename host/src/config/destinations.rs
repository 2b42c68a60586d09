//! `[destinations]`: each destination's values, its plugin config with
//! `${env:…}` / `${file:…}` resolved, and fallback cycles. Whether a
//! fallback names a destination is checked in `references.rs`; the plugin
//! config against the plugin's schema in `plugins.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::plugin_config::escape;
use super::raw::{RawDestination, RawRetry};
use super::secret::{Resolver, SecretSource};
use super::{DestinationConfig, PluginConfig};
use crate::plugin::types::RateLimit;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};
use crate::render::valid_locale;

/// The destinations built, and those whose config cannot be checked
/// against their plugin (name → why).
pub(super) struct Destinations {
    pub built: BTreeMap<String, DestinationConfig>,
    pub unchecked: BTreeMap<String, String>,
}

/// Checks `[destinations]` and builds them.
pub(super) fn destinations(
    raw: &BTreeMap<String, RawDestination>,
    global_retry: &RawRetry,
    resolver: &Resolver<'_>,
    generated: &super::contacts::Origins,
    f: &mut Findings,
) -> Destinations {
    let p = KeyPath::root().key("destinations");
    let mut out = Destinations {
        built: BTreeMap::new(),
        unchecked: BTreeMap::new(),
    };
    for (name, d) in raw {
        let dp = p.key(name.as_str());
        if !valid_name(name) && !generated.contains(name) {
            f.add(&dp, format!("the destination name {NAME_RULE}"));
        }
        match destination(f, &dp, name, d, global_retry, resolver) {
            Ok(dest) => {
                out.built.insert(name.clone(), dest);
            }
            Err(why) => {
                out.unchecked.insert(name.clone(), why.to_owned());
            }
        }
        if d.plugin.trim().is_empty() {
            out.unchecked
                .insert(name.clone(), "it names no plugin".to_owned());
        }
    }
    fallback_cycles(f, &p, raw);
    out
}

/// One destination; `Err` says why its plugin config cannot be checked.
fn destination(
    f: &mut Findings,
    dp: &KeyPath,
    name: &str,
    d: &RawDestination,
    global_retry: &RawRetry,
    resolver: &Resolver<'_>,
) -> Result<DestinationConfig, &'static str> {
    if d.plugin.trim().is_empty() {
        f.add(&dp.key("plugin"), "must name a plugin, e.g. \"webhook\"");
    }
    if d.fallback.as_deref() == Some(name) {
        f.add(
            &dp.key("fallback"),
            "a destination cannot be its own fallback",
        );
    }
    let rate_limits = d.rate_limit.as_ref().map(|list| {
        let rp = dp.key("rate_limit");
        let many = list.0.len() > 1;
        list.0
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let ip = if many { rp.index(i) } else { rp.clone() };
                f.positive(u64::from(l.requests), &ip.key("requests"));
                f.positive(l.per_secs, &ip.key("per_secs"));
                RateLimit {
                    requests: l.requests,
                    window: Duration::from_secs(l.per_secs),
                }
            })
            .collect::<Vec<_>>()
    });
    let retry = d
        .retry
        .as_ref()
        .map(|own| super::sections::retry(&own.over(global_retry), &dp.key("retry"), f));
    if let Some(n) = d.concurrency {
        f.positive(u64::from(n), &dp.key("concurrency"));
    }
    if let Some(locale) = &d.locale
        && (locale == "default" || !valid_locale(locale))
    {
        f.add(
            &dp.key("locale"),
            format!("{locale:?} is not a locale such as `en`, `zh` or `zh-CN`"),
        );
    }
    let cp = dp.key("config");
    let mut config = d.config.clone();
    if !config.is_object() {
        f.add(&cp, "must be a table of the plugin's settings");
        return Err("its config is not a table");
    }
    let mut secret_pointers = Vec::new();
    let mut resolved = true;
    resolve_config(
        f,
        &cp,
        &mut config,
        "",
        resolver,
        &mut secret_pointers,
        &mut resolved,
    );
    if !resolved {
        return Err("a secret in its config did not resolve");
    }
    Ok(DestinationConfig {
        plugin: d.plugin.clone(),
        enabled: d.enabled,
        fallback: d.fallback.clone(),
        rate_limits,
        concurrency: d.concurrency.map(|n| n as usize),
        allow_hosts: d.allow_hosts.iter().map(|h| h.0.clone()).collect(),
        config: PluginConfig::new(config, secret_pointers),
        locale: d.locale.clone(),
        retry,
        workspace: d
            .workspace
            .clone()
            .unwrap_or_else(|| crate::access::DEFAULT_WORKSPACE.to_owned()),
        contact: None,
    })
}

/// Resolves every string that is exactly `${env:…}` or `${file:…}` inside a
/// plugin config, recording the pointers of the resolved values; `resolved`
/// turns false when one does not resolve.
fn resolve_config(
    f: &mut Findings,
    cp: &KeyPath,
    value: &mut serde_json::Value,
    pointer: &str,
    resolver: &Resolver<'_>,
    secret_pointers: &mut Vec<String>,
    resolved: &mut bool,
) {
    match value {
        serde_json::Value::String(s) if s.starts_with("${env:") || s.starts_with("${file:") => {
            let at = cp.pointer(pointer);
            let secret = SecretSource::parse(s)
                .map_err(|e| e.to_string())
                .and_then(|source| source.resolve(resolver).map_err(|e| e.to_string()));
            match secret {
                Ok(secret) => {
                    *s = secret.expose().to_owned();
                    secret_pointers.push(pointer.to_owned());
                }
                Err(e) => {
                    f.add(&at, e);
                    *resolved = false;
                }
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = format!("{pointer}/{}", escape(k));
                resolve_config(f, cp, v, &child, resolver, secret_pointers, resolved);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let child = format!("{pointer}/{i}");
                resolve_config(f, cp, v, &child, resolver, secret_pointers, resolved);
            }
        }
        _ => {}
    }
}

/// Reports each fallback cycle once, at its alphabetically first member.
fn fallback_cycles(f: &mut Findings, p: &KeyPath, destinations: &BTreeMap<String, RawDestination>) {
    for start in destinations.keys() {
        let mut chain = vec![start.as_str()];
        let mut at = start.as_str();
        while let Some(next) = destinations.get(at).and_then(|d| d.fallback.as_deref()) {
            if next == at {
                break; // reported as "its own fallback"
            }
            if let Some(pos) = chain.iter().position(|n| *n == next) {
                let cycle = &chain[pos..];
                if pos == 0 && cycle.iter().all(|n| *n >= start.as_str()) {
                    let mut text: Vec<&str> = cycle.to_vec();
                    text.push(start);
                    f.add(
                        &p.key(start.as_str()).key("fallback"),
                        format!("fallbacks form a cycle: {}", text.join(" → ")),
                    );
                }
                break;
            }
            chain.push(next);
            at = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{Config, Resolver};

    fn parse(text: &str) -> Result<Config, String> {
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: Path::new("."),
        };
        Config::from_toml(text, &resolver).map_err(|p| p.to_string())
    }

    #[test]
    fn a_destination_s_retry_keys_override_the_dispatch_schedule_one_by_one() {
        let config = parse(
            "[dispatch.retry]\nbase_secs = 7\nmax_attempts = 9\n\n\
             [destinations.bot]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/x\" }\n\n\
             [destinations.bot.retry]\nmax_attempts = 2\nmax_age_secs = 600\n\n\
             [destinations.mail]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/y\" }\n",
        )
        .expect("valid");
        let own = config.destinations["bot"]
            .retry
            .as_ref()
            .expect("own schedule");
        assert_eq!(own.max_attempts, 2);
        assert_eq!(own.max_age, Duration::from_secs(600));
        assert_eq!(
            own.base,
            Duration::from_secs(7),
            "inherited from [dispatch.retry]"
        );
        assert!(config.destinations["mail"].retry.is_none());
        let shown = serde_json::to_value(&config.destinations["bot"]).expect("json");
        assert_eq!(shown["retry"]["max_attempts"], 2, "{shown}");
    }

    #[test]
    fn a_bad_retry_key_of_a_destination_is_named_by_its_path() {
        let text = "[destinations.bot]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/x\" }\n\n\
                    [destinations.bot.retry]\nmultiplier = 0.5\nmax_attempts = 0\n";
        let problems = parse(text).expect_err("invalid");
        assert!(
            problems.contains("destinations.bot.retry.multiplier"),
            "{problems}"
        );
        assert!(
            problems.contains("destinations.bot.retry.max_attempts"),
            "{problems}"
        );
        let unknown = parse(
            "[destinations.bot]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/x\" }\n\n\
             [destinations.bot.retry]\nattempts = 3\n",
        )
        .expect_err("unknown key");
        assert!(unknown.contains("attempts"), "{unknown}");
    }
}
