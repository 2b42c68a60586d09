//! Raw → validated: resolves secrets, checks values and cross-references,
//! and collects every problem with its key path instead of stopping at the
//! first. Also the checks that need the loaded plugins, and the redaction of
//! plugin configs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::matcher::{Condition, FieldRef, Glob, Test};
use super::parse::{Broken, Document};
use super::problem::{KeyPath, Problem};
use super::raw::{RawConfig, RawDestination, RawRoute};
use super::secret::{REDACTED, Resolver, Secret, SecretSource};
use super::{
    Auth, Config, DestinationConfig, DispatchSettings, IngestToken, OutboxSettings, PluginCatalog,
    PluginConfig, Route, RuntimeSettings, Server, SeverityMatch, Template, TemplateText,
};
use crate::dispatch::retry::RetryPolicy;
use crate::egress::EgressPolicy;
use crate::plugin::Limits;
use crate::plugin::types::RateLimit;
use crate::render::{RenderSettings, Renderer, builtin};

/// Collects problems against one document.
struct Check<'d, 'a> {
    doc: &'d Document<'a>,
    problems: &'d mut Vec<Problem>,
}

impl Check<'_, '_> {
    fn add(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.problems.push(self.doc.problem(path, message));
    }

    /// A secret, resolved; a problem (and `None`) when it cannot be, or is empty.
    fn secret(&mut self, text: &str, path: &KeyPath, resolver: &Resolver<'_>) -> Option<Secret> {
        let source = match SecretSource::parse(text) {
            Ok(source) => source,
            Err(e) => {
                self.add(path, e.to_string());
                return None;
            }
        };
        match source.resolve(resolver) {
            Ok(secret) if secret.is_empty() => {
                self.add(path, "is empty; a token must not be empty");
                None
            }
            Ok(secret) => Some(secret),
            Err(e) => {
                self.add(path, e.to_string());
                None
            }
        }
    }

    fn positive(&mut self, value: u64, path: &KeyPath) {
        if value == 0 {
            self.add(path, "must be greater than 0");
        }
    }

    fn globs(&mut self, patterns: &[String], path: &KeyPath) -> Vec<Glob> {
        let mut out = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match Glob::new(p) {
                Ok(g) => out.push(g),
                Err(e) => self.add(&path.index(i), e.to_string()),
            }
        }
        out
    }
}

/// Is `name` usable as a destination, route or token name?
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

const NAME_RULE: &str = "must be non-empty and use only letters, digits, `-`, `_` and `.`";

/// Validates the raw config; `None` when a value could not be built (the
/// reason is in `problems`).
pub(super) fn validate(
    doc: &Document<'_>,
    raw: RawConfig,
    broken: &Broken,
    resolver: &Resolver<'_>,
    problems: &mut Vec<Problem>,
) -> Option<Config> {
    let mut c = Check { doc, problems };
    let root = KeyPath::root();
    let destination_exists =
        |name: &str| raw.destinations.contains_key(name) || broken.destinations.contains(name);

    // [server]
    let p = root.key("server");
    let listen = match raw.server.listen.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.add(
                &p.key("listen"),
                format!(
                    "{:?} is not an IP address and port, e.g. \"127.0.0.1:8080\" or \"[::]:8080\"",
                    raw.server.listen
                ),
            );
            None
        }
    };
    c.positive(raw.server.body_limit_bytes, &p.key("body_limit_bytes"));
    let body_limit_bytes = usize::try_from(raw.server.body_limit_bytes).unwrap_or(usize::MAX);
    c.positive(raw.server.plugin_rescan_secs, &p.key("plugin_rescan_secs"));
    for (key, value) in raw.server.limit_values() {
        c.positive(value, &p.key(key));
    }

    // [auth]
    let p = root.key("auth");
    let admin_token = raw
        .auth
        .admin_token
        .as_ref()
        .and_then(|s| c.secret(&s.0, &p.key("admin_token"), resolver));
    let mut ingest = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen_tokens: Vec<(usize, Secret)> = Vec::new();
    for (i, t) in raw.auth.ingest.iter().enumerate() {
        let tp = p.key("ingest").index(i);
        if !valid_name(&t.name) {
            c.add(&tp.key("name"), NAME_RULE);
        } else if let Some(first) = names.get(t.name.as_str()) {
            c.add(
                &tp.key("name"),
                format!("{:?} is already the name of auth.ingest[{first}]", t.name),
            );
        } else {
            names.insert(&t.name, i);
        }
        let token = c.secret(&t.token.0, &tp.key("token"), resolver);
        if let Some(token) = &token {
            if let Some((first, _)) = seen_tokens.iter().find(|(_, s)| s == token) {
                c.add(
                    &tp.key("token"),
                    format!("is the same token as auth.ingest[{first}]; each token must be unique"),
                );
            } else if admin_token.as_ref() == Some(token) {
                c.add(
                    &tp.key("token"),
                    "is the same as auth.admin_token; use a separate admin token",
                );
            }
            seen_tokens.push((i, token.clone()));
        }
        let event_types = match &t.event_types {
            Some(list) => {
                let globs = c.globs(list, &tp.key("event_types"));
                (globs.len() == list.len()).then_some(Some(globs))
            }
            None => Some(None),
        };
        if let Some(dests) = &t.destinations {
            for (j, d) in dests.iter().enumerate() {
                if !destination_exists(d) {
                    c.add(
                        &tp.key("destinations").index(j),
                        format!("no destination is named {d:?}"),
                    );
                }
            }
        }
        if let (Some(token), Some(event_types)) = (token, event_types) {
            ingest.push(IngestToken {
                name: t.name.clone(),
                token,
                event_types,
                destinations: t.destinations.clone(),
            });
        }
    }

    // [runtime]
    let p = root.key("runtime");
    let r = &raw.runtime;
    c.positive(r.memory_mib, &p.key("memory_mib"));
    if r.memory_mib > 4096 {
        c.add(
            &p.key("memory_mib"),
            "must be at most 4096 (a 32-bit WebAssembly memory is at most 4 GiB)",
        );
    }
    c.positive(r.cpu_time_ms, &p.key("cpu_time_ms"));
    c.positive(r.wall_time_ms, &p.key("wall_time_ms"));
    c.positive(r.max_output_bytes, &p.key("max_output_bytes"));
    c.positive(
        u64::from(r.max_concurrent_calls),
        &p.key("max_concurrent_calls"),
    );
    let runtime = RuntimeSettings {
        limits: Limits {
            memory_bytes: usize::try_from(r.memory_mib.min(4096) << 20).unwrap_or(usize::MAX),
            cpu_time: Duration::from_millis(r.cpu_time_ms),
            wall_time: Duration::from_millis(r.wall_time_ms),
            max_output_bytes: usize::try_from(r.max_output_bytes).unwrap_or(usize::MAX),
            max_log_lines: r.max_log_lines,
        },
        max_concurrent_calls: r.max_concurrent_calls,
    };

    // [egress]
    let egress = EgressPolicy::allowing(raw.egress.allow_private.iter().map(|n| n.0));
    let mut smtp_roots_pem = Vec::new();
    for (i, file) in raw.egress.smtp_ca_files.iter().enumerate() {
        let at = root.key("egress").key("smtp_ca_files").index(i);
        let path = resolver.base_dir.join(file);
        match std::fs::read_to_string(&path) {
            Ok(pem) if pem.contains("-----BEGIN CERTIFICATE-----") => smtp_roots_pem.push(pem),
            Ok(_) => c.add(&at, format!("{} holds no PEM certificate", path.display())),
            Err(e) => c.add(&at, format!("cannot read {}: {e}", path.display())),
        }
    }

    // [dispatch]
    let p = root.key("dispatch");
    let d = &raw.dispatch;
    c.positive(u64::from(d.workers), &p.key("workers"));
    let rp = p.key("retry");
    c.positive(d.retry.base_secs, &rp.key("base_secs"));
    if !(d.retry.multiplier.is_finite() && d.retry.multiplier >= 1.0) {
        c.add(&rp.key("multiplier"), "must be a number at least 1.0");
    }
    if d.retry.cap_secs < d.retry.min_delay_secs {
        c.add(&rp.key("cap_secs"), "must be at least min_delay_secs");
    }
    c.positive(u64::from(d.retry.max_attempts), &rp.key("max_attempts"));
    c.positive(d.retry.max_age_secs, &rp.key("max_age_secs"));
    if let Some(g) = &d.global_fallback
        && !destination_exists(g)
    {
        c.add(
            &p.key("global_fallback"),
            format!("no destination is named {g:?}"),
        );
    }
    let dispatch = DispatchSettings {
        workers: d.workers as usize,
        retry: RetryPolicy {
            base: Duration::from_secs(d.retry.base_secs),
            multiplier: d.retry.multiplier,
            cap: Duration::from_secs(d.retry.cap_secs),
            min_delay: Duration::from_secs(d.retry.min_delay_secs),
            max_attempts: d.retry.max_attempts,
            max_age: Duration::from_secs(d.retry.max_age_secs),
        },
        global_fallback: d.global_fallback.clone(),
    };

    // [channels]
    let channels = raw
        .channels
        .iter()
        .map(|(k, v)| (k.clone(), v.enabled))
        .collect();
    let mut plugin_pins = BTreeMap::new();
    for (name, channel) in &raw.channels {
        let Some(sha) = &channel.sha256 else { continue };
        let sha = sha.trim().to_ascii_lowercase();
        if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            plugin_pins.insert(name.clone(), sha);
        } else {
            c.add(
                &root.key("channels").key(name.as_str()).key("sha256"),
                "must be a SHA-256 in hex (64 characters), as `sha256sum` prints it or `GET /v1/plugins` shows it",
            );
        }
    }

    // [render]
    let p = root.key("render");
    let time_zone = match jiff::tz::TimeZone::get(&raw.render.time_zone) {
        Ok(zone) => zone,
        Err(_) => {
            c.add(
                &p.key("time_zone"),
                format!(
                    "{:?} is not an IANA time zone such as \"UTC\" or \"Asia/Shanghai\"",
                    raw.render.time_zone
                ),
            );
            jiff::tz::TimeZone::UTC
        }
    };
    if raw.render.default_locale == "default" || !valid_locale(&raw.render.default_locale) {
        c.add(
            &p.key("default_locale"),
            format!(
                "{:?} is not a locale such as `en`, `zh` or `zh-CN`",
                raw.render.default_locale
            ),
        );
    }
    let render = RenderSettings {
        time_zone,
        default_locale: raw.render.default_locale.clone(),
    };

    // [outbox]
    let p = root.key("outbox");
    let o = &raw.outbox;
    c.positive(o.max_pending, &p.key("max_pending"));
    c.positive(o.idempotency_window_secs, &p.key("idempotency_window_secs"));
    c.positive(o.cache_mib, &p.key("cache_mib"));
    // The idempotency index is rebuilt at start-up from the stored events:
    // a purge that drops an event inside the window would forget its key.
    if o.delivered_retention_secs < o.idempotency_window_secs {
        c.add(
            &p.key("delivered_retention_secs"),
            format!(
                "is {} but must be at least outbox.idempotency_window_secs ({}): \
                 idempotency keys are remembered through the events they accepted",
                o.delivered_retention_secs, o.idempotency_window_secs
            ),
        );
    }
    let outbox = OutboxSettings {
        max_pending: o.max_pending,
        idempotency_window: Duration::from_secs(o.idempotency_window_secs),
        delivered_retention: Duration::from_secs(o.delivered_retention_secs),
        cache_bytes: o.cache_mib.saturating_mul(1 << 20),
    };

    // [destinations]
    let p = root.key("destinations");
    let mut destinations = BTreeMap::new();
    for (name, d) in &raw.destinations {
        let dp = p.key(name.as_str());
        if !valid_name(name) {
            c.add(&dp, format!("the destination name {NAME_RULE}"));
        }
        if let Some(dest) = destination(&mut c, &dp, name, d, &destination_exists, resolver) {
            destinations.insert(name.clone(), dest);
        }
    }
    fallback_cycles(&mut c, &p, &raw.destinations);

    // [templates]
    let p = root.key("templates");
    let mut templates = BTreeMap::new();
    for (name, locales) in &raw.templates {
        let tp = p.key(name.as_str());
        if !valid_name(name) {
            c.add(&tp, format!("the template name {NAME_RULE}"));
        } else if name.starts_with(builtin::PREFIX) && !builtin::exists(name) {
            c.add(
                &tp,
                format!(
                    "no built-in template is named {name:?}; names starting with `builtin.` \
                     override a built-in: {}",
                    builtin_names()
                ),
            );
        }
        if locales.is_empty() {
            c.add(
                &tp,
                "has no locale; add e.g. [templates.NAME.en] with title and body",
            );
        }
        let mut texts = BTreeMap::new();
        for (locale, text) in locales {
            let lp = tp.key(locale.as_str());
            if !valid_locale(locale) {
                c.add(
                    &lp,
                    format!("{locale:?} is not a locale such as `en`, `zh-CN` or `default`"),
                );
            }
            // Whether they compile is checked below, all at once.
            for (field, value) in [("title", &text.title), ("body", &text.body)] {
                if value.trim().is_empty() {
                    c.add(&lp.key(field), "must not be empty");
                }
            }
            texts.insert(
                locale.clone(),
                TemplateText {
                    title: text.title.clone(),
                    body: text.body.clone(),
                },
            );
        }
        templates.insert(name.clone(), Template { locales: texts });
    }
    // Compiling the templates: a text that does not compile is reported at
    // `templates.NAME.LOCALE.title` or `.body`, with minijinja's reason and
    // the line inside the text.
    if let Err(errors) = Renderer::new(&templates, render.clone()) {
        for e in errors {
            let at = p
                .key(e.template.as_str())
                .key(e.locale.as_str())
                .key(e.part.key());
            let line = e
                .line
                .map(|l| format!(" (line {l} of the template)"))
                .unwrap_or_default();
            c.add(&at, format!("does not compile: {}{line}", e.reason));
        }
    }

    // [[routes]]
    let p = root.key("routes");
    let mut routes = Vec::new();
    let mut route_names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in &raw.routes {
        let rp = p.index(*i);
        if !valid_name(&r.name) {
            c.add(&rp.key("name"), NAME_RULE);
        } else if let Some(first) = route_names.get(r.name.as_str()) {
            c.add(
                &rp.key("name"),
                format!("{:?} is already the name of routes[{first}]", r.name),
            );
        } else {
            route_names.insert(&r.name, *i);
        }
        let template_exists = |t: &str| {
            raw.templates.contains_key(t) || broken.templates.contains(t) || builtin::exists(t)
        };
        if let Some(route) = route(&mut c, &rp, r, &destination_exists, &template_exists) {
            routes.push(route);
        }
    }

    let server = Server {
        listen: listen?,
        data_dir: raw.server.data_dir.clone(),
        plugin_dir: raw.server.plugin_dir.clone(),
        body_limit_bytes,
        watch_plugins: raw.server.watch_plugins,
        plugin_rescan: Duration::from_secs(raw.server.plugin_rescan_secs.max(1)),
        limits: super::ServerLimits::from_raw(&raw.server),
    };
    Some(Config {
        server,
        auth: Auth {
            admin_token,
            ingest,
        },
        runtime,
        egress,
        dispatch,
        channels,
        plugin_pins,
        destinations,
        routes,
        templates,
        render,
        outbox,
        smtp_roots_pem,
        source: Default::default(),
    })
}

/// The built-in template names, for messages.
fn builtin_names() -> String {
    builtin::NAMES
        .iter()
        .map(|n| format!("{}{n}", builtin::PREFIX))
        .collect::<Vec<_>>()
        .join(", ")
}

fn valid_locale(locale: &str) -> bool {
    locale == "default"
        || (!locale.is_empty()
            && locale.split('-').all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
            })
            && locale.split('-').next().is_some_and(|l| {
                (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
            }))
}

fn destination(
    c: &mut Check<'_, '_>,
    dp: &KeyPath,
    name: &str,
    d: &RawDestination,
    exists: &dyn Fn(&str) -> bool,
    resolver: &Resolver<'_>,
) -> Option<DestinationConfig> {
    if d.plugin.trim().is_empty() {
        c.add(&dp.key("plugin"), "must name a plugin, e.g. \"webhook\"");
    }
    if let Some(f) = &d.fallback {
        if f == name {
            c.add(
                &dp.key("fallback"),
                "a destination cannot be its own fallback",
            );
        } else if !exists(f) {
            c.add(
                &dp.key("fallback"),
                format!("no destination is named {f:?}"),
            );
        }
    }
    let rate_limits = d.rate_limit.as_ref().map(|list| {
        let rp = dp.key("rate_limit");
        let many = list.0.len() > 1;
        list.0
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let ip = if many { rp.index(i) } else { rp.clone() };
                c.positive(u64::from(l.requests), &ip.key("requests"));
                c.positive(l.per_secs, &ip.key("per_secs"));
                RateLimit {
                    requests: l.requests,
                    window: Duration::from_secs(l.per_secs),
                }
            })
            .collect::<Vec<_>>()
    });
    if let Some(n) = d.concurrency {
        c.positive(u64::from(n), &dp.key("concurrency"));
    }
    if let Some(locale) = &d.locale
        && (locale == "default" || !valid_locale(locale))
    {
        c.add(
            &dp.key("locale"),
            format!("{locale:?} is not a locale such as `en`, `zh` or `zh-CN`"),
        );
    }
    let cp = dp.key("config");
    let mut config = d.config.clone();
    if !config.is_object() {
        c.add(&cp, "must be a table of the plugin's settings");
        return None;
    }
    let mut secret_pointers = Vec::new();
    resolve_config(c, &cp, &mut config, "", resolver, &mut secret_pointers);
    Some(DestinationConfig {
        plugin: d.plugin.clone(),
        enabled: d.enabled,
        fallback: d.fallback.clone(),
        rate_limits,
        concurrency: d.concurrency.map(|n| n as usize),
        allow_hosts: d.allow_hosts.iter().map(|h| h.0.clone()).collect(),
        config: PluginConfig::new(config, secret_pointers),
        locale: d.locale.clone(),
    })
}

/// Resolves every string that is exactly `${env:…}` or `${file:…}` inside a
/// plugin config, recording the pointers of the resolved values.
fn resolve_config(
    c: &mut Check<'_, '_>,
    cp: &KeyPath,
    value: &mut serde_json::Value,
    pointer: &str,
    resolver: &Resolver<'_>,
    secret_pointers: &mut Vec<String>,
) {
    match value {
        serde_json::Value::String(s) if s.starts_with("${env:") || s.starts_with("${file:") => {
            let at = cp.pointer(pointer);
            match SecretSource::parse(s) {
                Ok(source) => match source.resolve(resolver) {
                    Ok(secret) => {
                        *s = secret.expose().to_owned();
                        secret_pointers.push(pointer.to_owned());
                    }
                    Err(e) => c.add(&at, e.to_string()),
                },
                Err(e) => c.add(&at, e.to_string()),
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = format!("{pointer}/{}", escape(k));
                resolve_config(c, cp, v, &child, resolver, secret_pointers);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let child = format!("{pointer}/{i}");
                resolve_config(c, cp, v, &child, resolver, secret_pointers);
            }
        }
        _ => {}
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Reports each fallback cycle once, at its alphabetically first member.
fn fallback_cycles(
    c: &mut Check<'_, '_>,
    p: &KeyPath,
    destinations: &BTreeMap<String, RawDestination>,
) {
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
                    c.add(
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

fn route(
    c: &mut Check<'_, '_>,
    rp: &KeyPath,
    r: &RawRoute,
    destination_exists: &dyn Fn(&str) -> bool,
    template_exists: &dyn Fn(&str) -> bool,
) -> Option<Route> {
    let mp = rp.key("match");
    let event = c.globs(&r.matcher.event.0, &mp.key("event"));
    let source = c.globs(&r.matcher.source.0, &mp.key("source"));
    let severity = match (&r.matcher.severity.0[..], r.matcher.min_severity) {
        ([], None) => SeverityMatch::Any,
        (list, None) => SeverityMatch::OneOf(list.to_vec()),
        ([], Some(min)) => SeverityMatch::AtLeast(min),
        (_, Some(min)) => {
            c.add(
                &mp.key("min_severity"),
                "set either severity (exact) or min_severity (at least), not both",
            );
            SeverityMatch::AtLeast(min)
        }
    };
    let mut conditions = Vec::new();
    for (i, cond) in r.matcher.conditions.iter().enumerate() {
        let cp = mp.key("conditions").index(i);
        let field = FieldRef::parse(&cond.field);
        if field.is_none() {
            c.add(
                &cp.key("field"),
                format!(
                    "{:?} is not a field; write `labels.NAME` or `data.PATH` (e.g. `data.task.owner`)",
                    cond.field
                ),
            );
        }
        let tests = usize::from(cond.equals.is_some())
            + usize::from(cond.regex.is_some())
            + usize::from(cond.exists.is_some());
        if tests != 1 {
            c.add(&cp, "needs exactly one of `equals`, `regex` or `exists`");
        }
        let test = if let Some(v) = &cond.equals {
            Some(Test::Equals(v.clone()))
        } else if let Some(re) = &cond.regex {
            match regex::Regex::new(re) {
                Ok(re) => Some(Test::Regex(re)),
                Err(e) => {
                    // The syntax error's last line says what is wrong; the
                    // lines above it draw the pattern.
                    let text = e.to_string();
                    let reason = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                        .trim()
                        .trim_start_matches("error: ");
                    c.add(&cp.key("regex"), format!("invalid regex {re:?}: {reason}"));
                    None
                }
            }
        } else {
            cond.exists.map(Test::Exists)
        };
        if let (Some(field), Some(test)) = (field, test) {
            conditions.push(Condition { field, test });
        }
    }
    if r.destinations.is_empty() {
        c.add(&rp.key("destinations"), "lists no destination");
    }
    for (j, d) in r.destinations.iter().enumerate() {
        if !destination_exists(d) {
            c.add(
                &rp.key("destinations").index(j),
                format!("no destination is named {d:?}"),
            );
        }
    }
    if let Some(t) = &r.template
        && !template_exists(t)
    {
        let hint = if t.starts_with(builtin::PREFIX) {
            format!(" (built-in templates: {})", builtin_names())
        } else {
            String::new()
        };
        c.add(
            &rp.key("template"),
            format!("no template is named {t:?}{hint}"),
        );
    }
    Some(Route {
        name: r.name.clone(),
        event,
        source,
        severity,
        conditions,
        destinations: r.destinations.clone(),
        template: r.template.clone(),
        continue_: r.continue_,
    })
}

/// The checks that need the loaded plugins.
pub(super) fn check_plugins(
    config: &Config,
    doc: &Document<'_>,
    plugins: &dyn PluginCatalog,
    problems: &mut Vec<Problem>,
) {
    let mut c = Check { doc, problems };
    let known = |name: &str| {
        if let Some(why) = plugins.why_missing(name) {
            return why;
        }
        let names = plugins.plugin_names();
        if names.is_empty() {
            "no plugin is loaded".to_owned()
        } else {
            format!("loaded plugins: {}", names.join(", "))
        }
    };
    for name in config.channels.keys() {
        if !plugins.has_plugin(name) {
            c.add(
                &KeyPath::root().key("channels").key(name.as_str()),
                format!("no plugin is named {name:?} ({})", known(name)),
            );
        }
    }
    for (name, d) in &config.destinations {
        let dp = KeyPath::root().key("destinations").key(name.as_str());
        if !plugins.has_plugin(&d.plugin) {
            c.add(
                &dp.key("plugin"),
                format!("no plugin is named {:?} ({})", d.plugin, known(&d.plugin)),
            );
            continue;
        }
        let cp = dp.key("config");
        for issue in plugins.schema_issues(&d.plugin, d.config.expose()) {
            c.add(&cp.pointer(&issue.path), d.config.scrub(&issue.message));
        }
    }
}

/// Is `key` the name of a secret-carrying setting?
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "passwd",
        "credential",
        "authorization",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("key")
}

/// A URL's redacted form: scheme and host only, when it has more.
fn redact_url(s: &str) -> Option<String> {
    let url = url::Url::parse(s).ok()?;
    let host = url.host_str()?;
    let bare = (url.path().is_empty() || url.path() == "/")
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none();
    if bare {
        return None;
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}://{host}{port}/{REDACTED}", url.scheme()))
}

/// Replaces sensitive values in `value` (see [`PluginConfig`]).
pub(super) fn redact(value: &mut serde_json::Value, pointer: &str, secret_pointers: &[String]) {
    if secret_pointers.iter().any(|p| p == pointer) {
        *value = serde_json::Value::String(REDACTED.to_owned());
        return;
    }
    match value {
        serde_json::Value::String(s) => {
            if let Some(r) = redact_url(s) {
                *s = r;
            }
        }
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = format!("{pointer}/{}", escape(k));
                if secret_key(k) && !v.is_object() && !v.is_array() {
                    *v = serde_json::Value::String(REDACTED.to_owned());
                } else {
                    redact(v, &child, secret_pointers);
                }
            }
        }
        serde_json::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                redact(v, &format!("{pointer}/{i}"), secret_pointers);
            }
        }
        _ => {}
    }
}

/// Collects the strings [`redact`] hides, with what it shows instead: every
/// value of `original` that differs in `redacted`.
pub(super) fn sensitive_strings(
    original: &serde_json::Value,
    redacted: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) {
    use serde_json::Value;
    match (original, redacted) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                if let Some(w) = b.get(k) {
                    sensitive_strings(v, w, out);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (v, w) in a.iter().zip(b) {
                sensitive_strings(v, w, out);
            }
        }
        (Value::String(a), Value::String(b)) if a == b => {}
        (Value::String(a), Value::String(b)) => out.push((a.clone(), b.clone())),
        (Value::String(a), _) => out.push((a.clone(), REDACTED.to_owned())),
        (a, b) if a != b => out.push((a.to_string(), REDACTED.to_owned())),
        _ => {}
    }
}

/// The secrets of a resolved config, for tests.
#[cfg(test)]
pub(super) fn all_secrets(config: &Config) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    if let Some(t) = &config.auth.admin_token {
        out.insert(t.expose().to_owned());
    }
    for t in &config.auth.ingest {
        out.insert(t.token.expose().to_owned());
    }
    for d in config.destinations.values() {
        let mut v = Vec::new();
        sensitive_strings(d.config.expose(), &d.config.redacted(), &mut v);
        out.extend(v.into_iter().map(|(original, _)| original));
    }
    out
}
