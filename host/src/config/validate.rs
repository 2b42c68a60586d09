//! Raw → validated, one section at a time, then the references between
//! sections. Every problem is collected with its key path instead of
//! stopping at the first; the config is built even so, for the checks that
//! follow (a config with problems is never served).

use std::collections::BTreeMap;

use super::parse::Broken;
use super::raw::RawConfig;
use super::secret::Resolver;
use super::{
    Config, auth, contacts, destinations, monitors, quotas, references, sections, sources,
    timeouts, workspaces,
};
use crate::problem::{Findings, KeyPath};
use crate::{render, route};

/// A config built from a raw one, and what a later phase cannot check.
pub(super) struct Validated {
    pub config: Config,
    /// Destinations not to check against their plugin: name → why.
    pub unchecked: BTreeMap<String, String>,
}

/// Validates every section of `raw`; problems go to `f`.
pub(super) fn validate(
    mut raw: RawConfig,
    broken: &Broken,
    resolver: &Resolver<'_>,
    f: &mut Findings,
) -> Validated {
    // Contacts first: their methods that deliver become destinations, which
    // are then checked like every other.

    let (contacts, groups, origins) = contacts::contacts(&mut raw, broken, f);
    let raw = &raw;
    let server = sections::server(&raw.server, f);
    let auth = auth::auth(&raw.auth, resolver, f);
    let runtime = sections::runtime(&raw.runtime, f);
    let (egress, smtp_roots_pem) = sections::egress(&raw.egress, resolver, f);
    let dispatch = sections::dispatch(&raw.dispatch, f);
    let (channels, plugin_pins) = sections::channels(&raw.channels, f);
    let render = raw.render.validate(f);
    let outbox = sections::outbox(&raw.outbox, f);
    let timeouts = timeouts::timeouts(&raw.timeouts, f);
    let monitors = monitors::monitors(&raw.monitors, f);
    let destinations = destinations::destinations(
        &raw.destinations,
        &raw.dispatch.retry,
        resolver,
        &origins,
        f,
    );
    let templates = render::validate_templates(&raw.templates, &render, f);
    let mut routes = route::validate(&raw.routes, f);
    // `route::validate` builds one route per entry, in order.
    for ((i, r), built) in raw.routes.iter().zip(routes.iter_mut()) {
        if let Some(q) = &r.quota {
            let path = KeyPath::root().key("routes").index(*i).key("quota");
            built.quota = quotas::check(q, &path, f);
        }
    }
    contacts::route_references(raw, broken, &contacts, &groups, f);
    for r in &mut routes {
        r.people = contacts::people_destinations(&r.contacts, &r.groups, &contacts, &groups);
    }
    let mut destinations = destinations;
    for (name, d) in destinations.built.iter_mut() {
        if let Some(c) = name.split_once('@').map(|(c, _)| c) {
            d.contact = contacts.contains_key(c).then(|| c.to_owned());
        }
    }
    let sources = sources::sources(&raw.sources, resolver, f);
    let built_workspaces = workspaces::workspaces(&raw.workspaces, f);
    references::check(raw, broken, f);
    workspaces::references(raw, broken, &built_workspaces, f);
    Validated {
        config: Config {
            server,
            auth,
            runtime,
            egress,
            dispatch,
            channels,
            plugin_pins,
            destinations: destinations.built,
            routes,
            templates,
            render,
            outbox,
            timeouts,
            workspaces: built_workspaces,
            monitors,
            contacts,
            groups,
            sources,
            origins,
            smtp_roots_pem,
            source: Default::default(),
        },
        unchecked: destinations.unchecked,
    }
}

/// The notes for what did not parse: which checks it skipped.
pub(super) fn skipped(broken: &Broken) -> Vec<(KeyPath, String)> {
    let root = KeyPath::root();
    let mut notes = Vec::new();
    for name in &broken.sections {
        notes.push((
            root.key(name.as_str()),
            "skipped the checks of this section's values: it did not parse, so the other \
             checks used its defaults"
                .to_owned(),
        ));
    }
    for name in &broken.destinations {
        notes.push((
            root.key("destinations").key(name.as_str()),
            "skipped the checks of this destination's values, fallback and plugin config: \
             the entry did not parse"
                .to_owned(),
        ));
    }
    for name in &broken.templates {
        notes.push((
            root.key("templates").key(name.as_str()),
            "skipped compiling this template: the entry did not parse".to_owned(),
        ));
    }
    for i in &broken.routes {
        notes.push((
            root.key("routes").index(*i),
            "skipped the checks of this route's match, destinations and template: the entry \
             did not parse"
                .to_owned(),
        ));
    }
    notes
}
