//! A route as the [`Router`](super::Router) evaluates it, and the checks
//! that build it from the file's [`RawRoute`]: names, globs, the severity
//! criterion, conditions (a regex that does not compile is a problem).
//! Whether the destinations and template a route names exist is a question
//! about other sections, so `config` checks those references.

use std::collections::BTreeMap;

use serde::Serialize;

use super::matcher::{Condition, FieldRef, Glob, Test};
use super::raw::RawRoute;
use crate::access::DEFAULT_WORKSPACE;
use crate::message::Severity;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};

/// A route, validated; [`Router`](super::Router) evaluates them.
#[derive(Debug, Clone, Serialize)]
pub struct Route {
    /// Its name.
    pub name: String,
    /// The workspace whose events it routes.
    pub workspace: String,
    /// Event-type globs; empty: any type.
    pub event: Vec<Glob>,
    /// Source globs; empty: any source.
    pub source: Vec<Glob>,
    /// The severity criterion.
    pub severity: SeverityMatch,
    /// Conditions that must all hold.
    pub conditions: Vec<Condition>,
    /// Where matching events go.
    pub destinations: Vec<String>,
    /// The contacts it names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// The groups it names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The contacts its messages @mention.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mention: Vec<String>,
    /// The destinations of those contacts' and groups' methods (filled in
    /// once contacts are validated), after `destinations`.
    #[serde(skip)]
    pub people: Vec<String>,
    /// The template (a `[templates]` name or `builtin.NAME`), if any.
    pub template: Option<String>,
    /// Its place in the evaluation (lower first; see [`RawRoute::order`]).
    #[serde(skip_serializing_if = "is_zero")]
    pub order: i64,
    /// Its alert quota (filled in by `config`, which reads durations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<crate::quota::Quota>,
    /// Keep evaluating later routes after a match.
    #[serde(rename = "continue")]
    pub continue_: bool,
}

/// The largest `order` either way.
pub const MAX_ORDER: i64 = 1_000_000;

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// How a route looks at severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeverityMatch {
    /// Any severity.
    Any,
    /// One of these.
    OneOf(Vec<Severity>),
    /// This one or a more urgent one.
    AtLeast(Severity),
}

/// Checks `[[routes]]` (each with its index in the file) and builds them,
/// in file order; every problem goes to `findings` at `routes[i]…`.
pub fn validate(routes: &[(usize, RawRoute)], findings: &mut Findings) -> Vec<Route> {
    let p = KeyPath::root().key("routes");
    let mut out = Vec::new();
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, r) in routes {
        let rp = p.index(*i);
        if !valid_name(&r.name) {
            findings.add(&rp.key("name"), NAME_RULE);
        } else if let Some(first) = names.get(r.name.as_str()) {
            findings.add(
                &rp.key("name"),
                format!("{:?} is already the name of routes[{first}]", r.name),
            );
        } else {
            names.insert(&r.name, *i);
        }
        out.push(route(findings, &rp, r));
    }
    out
}

/// Parses each pattern into a [`Glob`]; a refused one is a problem at
/// `path[i]`.
pub fn globs(patterns: &[String], path: &KeyPath, findings: &mut Findings) -> Vec<Glob> {
    let mut out = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        match Glob::new(p) {
            Ok(g) => out.push(g),
            Err(e) => findings.add(&path.index(i), e.to_string()),
        }
    }
    out
}

fn route(f: &mut Findings, rp: &KeyPath, r: &RawRoute) -> Route {
    let mp = rp.key("match");
    let event = globs(&r.matcher.event.0, &mp.key("event"), f);
    let source = globs(&r.matcher.source.0, &mp.key("source"), f);
    let severity = match (&r.matcher.severity.0[..], r.matcher.min_severity) {
        ([], None) => SeverityMatch::Any,
        (list, None) => SeverityMatch::OneOf(list.to_vec()),
        ([], Some(min)) => SeverityMatch::AtLeast(min),
        (_, Some(min)) => {
            f.add(
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
            f.add(
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
            f.add(&cp, "needs exactly one of `equals`, `regex` or `exists`");
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
                    f.add(&cp.key("regex"), format!("invalid regex {re:?}: {reason}"));
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
    if r.order
        .is_some_and(|o| !(-MAX_ORDER..=MAX_ORDER).contains(&o))
    {
        f.add(
            &rp.key("order"),
            format!("must be from -{MAX_ORDER} to {MAX_ORDER}"),
        );
    }
    if r.destinations.is_empty() && r.contacts.is_empty() && r.groups.is_empty() {
        f.add(
            &rp.key("destinations"),
            "lists no destination, and the route names no contact or group",
        );
    }
    Route {
        name: r.name.clone(),
        workspace: r
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned()),
        event,
        source,
        severity,
        conditions,
        destinations: r.destinations.clone(),
        contacts: r.contacts.clone(),
        groups: r.groups.clone(),
        mention: r.mention.clone(),
        people: Vec::new(),
        template: r.template.clone(),
        order: r.order.unwrap_or(0),
        quota: None,
        continue_: r.continue_,
    }
}
