//! References between sections: what a token, the global fallback, a
//! destination's fallback and a route name must exist. A name whose entry
//! did not parse counts as existing: the entry's own problem is reported,
//! and naming it again as missing would mislead.

use super::parse::Broken;
use super::raw::RawConfig;
use crate::problem::{Findings, KeyPath};
use crate::render::{builtin, builtin_names};

/// Checks every reference of `raw`.
pub(super) fn check(raw: &RawConfig, broken: &Broken, f: &mut Findings) {
    let root = KeyPath::root();
    let destination_exists =
        |name: &str| raw.destinations.contains_key(name) || broken.destinations.contains(name);
    let template_exists = |name: &str| {
        raw.templates.contains_key(name) || broken.templates.contains(name) || builtin::exists(name)
    };
    let destination = |f: &mut Findings, at: KeyPath, name: &str| {
        if !destination_exists(name) {
            f.add(&at, format!("no destination is named {name:?}"));
        }
    };

    for (i, t) in raw.auth.ingest.iter().enumerate() {
        let tp = root.key("auth").key("ingest").index(i);
        for (j, d) in t.destinations.iter().flatten().enumerate() {
            destination(f, tp.key("destinations").index(j), d);
        }
    }
    for (i, t) in raw.auth.tokens.iter().enumerate() {
        let tp = root.key("auth").key("tokens").index(i);
        for (j, d) in t.destinations.iter().flatten().enumerate() {
            destination(f, tp.key("destinations").index(j), d);
        }
    }
    if let Some(g) = &raw.dispatch.global_fallback {
        destination(f, root.key("dispatch").key("global_fallback"), g);
    }
    for (name, d) in &raw.destinations {
        if let Some(fallback) = d.fallback.as_deref().filter(|f| f != name) {
            let at = root.key("destinations").key(name.as_str()).key("fallback");
            destination(f, at, fallback);
        }
    }
    for (i, r) in &raw.routes {
        let rp = root.key("routes").index(*i);
        for (j, d) in r.destinations.iter().enumerate() {
            destination(f, rp.key("destinations").index(j), d);
        }
        if let Some(t) = &r.template
            && !template_exists(t)
        {
            let hint = if t.starts_with(builtin::PREFIX) {
                format!(" (built-in templates: {})", builtin_names())
            } else {
                String::new()
            };
            f.add(
                &rp.key("template"),
                format!("no template is named {t:?}{hint}"),
            );
        }
    }
}
