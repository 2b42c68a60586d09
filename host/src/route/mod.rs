//! The routing engine: which destinations an event goes to, and with which
//! template.
//!
//! This module owns what a route means: its file syntax (`raw.rs`), its
//! validated form and checks ([`Route`], [`validate`] in `rule.rs`), the
//! globs and conditions it matches with (`matcher.rs`) and their evaluation.
//! `config` calls [`validate`] on `[[routes]]` and checks the references to
//! other sections. A [`Router`] evaluates the routes against an [`Event`]:
//!
//! - routes are tried by `order` (lower first; default 0), ties in file
//!   order, then the API's routes in creation order; a route matches when every criterion it
//!   gives holds (event-type globs, source globs, severity, conditions on
//!   `labels.NAME` / `data.PATH`); a route without criteria matches all;
//! - a matching route adds its destinations and stops the evaluation, unless
//!   it sets `continue = true`;
//! - each destination is reached once per event: the first route that
//!   reaches it decides its template;
//! - an event that names its own `destinations` is not routed: those are the
//!   targets (the API checks that the token may do that).
//!
//! The result, a [`Decision`], is stored with the event and shown by the
//! admin API, so it is `Serialize`.

use serde::{Deserialize, Serialize};

use std::collections::HashMap;

use crate::event::Event;

mod condition;
mod matcher;
pub mod raw;
mod rule;

pub use self::condition::{display_text, json_equals, lookup_data};
pub use self::matcher::{Condition, FieldRef, Glob, GlobError, Scope, Test};
pub use self::raw::{OneOrMany, RawCondition, RawMatch, RawRoute};
pub use self::rule::{Route, SeverityMatch, globs, validate};

/// One place an event goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The destination's name.
    pub destination: String,
    /// The template to render with; `None`: the built-in one for the
    /// event's family.
    pub template: Option<String>,
    /// The route that chose it; `None` for destinations the event named.
    pub route: Option<String>,
}

/// Where an event goes, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The names of the routes that matched, in evaluation order.
    pub matched: Vec<String>,
    /// The destinations, each once, in the order they were reached.
    pub targets: Vec<Target>,
    /// The event named its destinations itself (routes were not evaluated).
    pub explicit: bool,
}

impl Decision {
    /// Does the event go nowhere?
    pub fn is_unrouted(&self) -> bool {
        self.targets.is_empty()
    }

    /// Adds `destination` unless an earlier route (or name) already reached it.
    fn add(&mut self, destination: &str, template: Option<&str>, route: Option<&str>) {
        if self.targets.iter().any(|t| t.destination == destination) {
            return;
        }
        self.targets.push(Target {
            destination: destination.to_owned(),
            template: template.map(str::to_owned),
            route: route.map(str::to_owned),
        });
    }
}

/// The routes of one config, ready to evaluate. Cheap to share (`Send +
/// Sync`); build one per loaded config.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Workspace → the indexes of its routes, in order: an event is
    /// evaluated against its workspace's routes only, however many other
    /// workspaces there are.
    by_workspace: HashMap<String, Vec<usize>>,
}

impl Router {
    /// A router over `routes`, evaluated by `order` (lower first), ties in
    /// the order given (the file's, then the API's).
    pub fn new(mut routes: Vec<Route>) -> Router {
        // Stable: equal orders keep the order given.
        routes.sort_by_key(|r| r.order);
        let mut by_workspace: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in routes.iter().enumerate() {
            by_workspace.entry(r.workspace.clone()).or_default().push(i);
        }
        Router {
            routes,
            by_workspace,
        }
    }

    /// The routes, in evaluation order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Route `name` of `workspace`, looked up among that workspace's routes
    /// only (ingest asks once per target).
    pub fn route(&self, workspace: &str, name: &str) -> Option<&Route> {
        self.by_workspace
            .get(workspace)?
            .iter()
            .map(|i| &self.routes[*i])
            .find(|r| r.name == name)
    }

    /// Decides where `event`, posted into `workspace`, goes: only that
    /// workspace's routes are evaluated.
    pub fn decide(&self, workspace: &str, event: &Event) -> Decision {
        let mut decision = Decision::default();
        if let Some(named) = &event.destinations {
            decision.explicit = true;
            for destination in named {
                decision.add(destination, None, None);
            }
            return decision;
        }
        let indexes = self
            .by_workspace
            .get(workspace)
            .map_or(&[][..], Vec::as_slice);
        for route in indexes.iter().map(|i| &self.routes[*i]) {
            if !route_matches(route, event) {
                continue;
            }
            decision.matched.push(route.name.clone());
            for destination in route.destinations.iter().chain(&route.people) {
                decision.add(destination, route.template.as_deref(), Some(&route.name));
            }
            if !route.continue_ {
                break;
            }
        }
        decision
    }
}

/// Does every criterion of `route` hold for `event`?
pub fn route_matches(route: &Route, event: &Event) -> bool {
    let any_glob =
        |globs: &[Glob], text: &str| globs.is_empty() || globs.iter().any(|g| g.matches(text));
    any_glob(&route.event, &event.event_type)
        && any_glob(&route.source, &event.source)
        && severity_matches(&route.severity, event)
        && route.conditions.iter().all(|c| condition_holds(c, event))
}

fn severity_matches(criterion: &SeverityMatch, event: &Event) -> bool {
    match criterion {
        SeverityMatch::Any => true,
        SeverityMatch::OneOf(list) => list.contains(&event.severity),
        SeverityMatch::AtLeast(min) => event.severity >= *min,
    }
}

/// Does `condition` hold for `event`? A missing field fails every test but
/// `exists = false`.
pub fn condition_holds(condition: &Condition, event: &Event) -> bool {
    let path = &condition.field.path;
    let value = match condition.field.scope {
        // Labels are flat: `labels.app.kubernetes.io/name` names the label
        // `app.kubernetes.io/name`.
        Scope::Labels => event
            .labels
            .get(&path.join("."))
            .map(|s| serde_json::Value::String(s.clone())),
        Scope::Data => lookup_data(&event.data, path).cloned(),
    };
    match (&condition.test, value) {
        (Test::Exists(wanted), value) => value.is_some() == *wanted,
        (_, None) => false,
        (Test::Equals(expected), Some(value)) => json_equals(expected, &value),
        (Test::Regex(re), Some(value)) => re.is_match(&display_text(&value)),
    }
}

#[cfg(test)]
mod tests;
