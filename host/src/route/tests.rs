//! Unit tests of the routing engine: each criterion, stop and continue,
//! one target per destination, explicit destinations.

use serde_json::json;

use super::*;
use crate::message::Severity;

fn event(value: serde_json::Value) -> Event {
    let mut base = json!({
        "type": "task.failed",
        "source": "etl/nightly",
        "time": "2024-05-06T07:08:09Z",
        "severity": "error",
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("a valid event")
}

fn route(name: &str, destinations: &[&str]) -> Route {
    Route {
        name: name.to_owned(),
        workspace: "default".to_owned(),
        event: Vec::new(),
        source: Vec::new(),
        severity: SeverityMatch::Any,
        conditions: Vec::new(),
        destinations: destinations.iter().map(|d| (*d).to_owned()).collect(),
        contacts: Vec::new(),
        groups: Vec::new(),
        mention: Vec::new(),
        people: Vec::new(),
        template: None,
        order: 0,
        quota: None,
        continue_: false,
    }
}

fn globs(patterns: &[&str]) -> Vec<Glob> {
    patterns
        .iter()
        .map(|p| Glob::new(p).expect("a valid glob"))
        .collect()
}

fn cond(field: &str, test: Test) -> Condition {
    Condition {
        field: FieldRef::parse(field).expect("a valid field"),
        test,
    }
}

fn matches(r: Route, e: &Event) -> bool {
    route_matches(&r, e)
}

fn names(d: &Decision) -> Vec<&str> {
    d.targets.iter().map(|t| t.destination.as_str()).collect()
}

#[test]
fn a_route_without_criteria_matches_everything() {
    assert!(matches(route("all", &["a"]), &event(json!({}))));
}

#[test]
fn event_globs_match_any_of_them() {
    let e = event(json!({}));
    let mut r = route("r", &["a"]);
    r.event = globs(&["task.*"]);
    assert!(matches(r.clone(), &e));
    r.event = globs(&["resource.*", "*.failed"]);
    assert!(matches(r.clone(), &e));
    r.event = globs(&["task.succeeded"]);
    assert!(!matches(r, &e));
}

#[test]
fn source_globs_match_any_of_them() {
    let e = event(json!({}));
    let mut r = route("r", &["a"]);
    r.source = globs(&["etl/*"]);
    assert!(matches(r.clone(), &e));
    r.source = globs(&["billing", "crm/*"]);
    assert!(!matches(r, &e));
}

#[test]
fn severity_is_one_of_a_list_or_at_least_a_level() {
    let warning = event(json!({ "severity": "warning" }));
    let mut r = route("r", &["a"]);
    r.severity = SeverityMatch::OneOf(vec![Severity::Warning, Severity::Critical]);
    assert!(matches(r.clone(), &warning));
    r.severity = SeverityMatch::OneOf(vec![Severity::Error]);
    assert!(!matches(r.clone(), &warning));
    r.severity = SeverityMatch::AtLeast(Severity::Warning);
    assert!(matches(r.clone(), &warning));
    assert!(matches(
        r.clone(),
        &event(json!({ "severity": "critical" }))
    ));
    assert!(!matches(
        r.clone(),
        &event(json!({ "severity": "success" }))
    ));
    r.severity = SeverityMatch::AtLeast(Severity::Error);
    assert!(!matches(r, &warning));
}

#[test]
fn label_conditions_compare_strings() {
    let e = event(
        json!({ "labels": { "team": "data", "app.kubernetes.io/name": "etl", "shard": "3" } }),
    );
    let holds = |field: &str, test: Test| condition_holds(&cond(field, test), &e);
    assert!(holds("labels.team", Test::Equals(json!("data"))));
    assert!(!holds("labels.team", Test::Equals(json!("web"))));
    assert!(holds("labels.shard", Test::Equals(json!(3))));
    assert!(holds(
        "labels.app.kubernetes.io/name",
        Test::Equals(json!("etl"))
    ));
    let re = regex::Regex::new("^da").expect("regex");
    assert!(holds("labels.team", Test::Regex(re.clone())));
    assert!(!holds("labels.missing", Test::Regex(re)));
    assert!(holds("labels.team", Test::Exists(true)));
    assert!(!holds("labels.team", Test::Exists(false)));
    assert!(holds("labels.missing", Test::Exists(false)));
    assert!(!holds("labels.missing", Test::Equals(json!(""))));
}

#[test]
fn data_conditions_walk_objects_and_arrays() {
    let e = event(json!({ "data": {
        "task": { "name": "etl-orders", "owner": "ann" },
        "rows": 3,
        "ratio": 0.5,
        "ok": true,
        "items": [{ "id": "x" }, { "id": "y" }],
        "nothing": null,
    }}));
    let holds = |field: &str, test: Test| condition_holds(&cond(field, test), &e);
    assert!(holds("data.task.name", Test::Equals(json!("etl-orders"))));
    assert!(holds("data.items.1.id", Test::Equals(json!("y"))));
    assert!(!holds("data.items.2.id", Test::Exists(true)));
    assert!(!holds("data.items.+1.id", Test::Exists(true)));
    assert!(!holds("data.task.name.first", Test::Exists(true)));
    assert!(holds(
        "data.items",
        Test::Equals(json!([{ "id": "x" }, { "id": "y" }]))
    ));
    assert!(holds("data.task", Test::Exists(true)));
    assert!(holds("data.nothing", Test::Exists(true)));
    assert!(holds("data.absent", Test::Exists(false)));
    assert!(!holds(
        "data.absent",
        Test::Regex(regex::Regex::new("").expect("regex"))
    ));
}

#[test]
fn equals_compares_json_values_and_display_text() {
    let e =
        event(json!({ "data": { "rows": 3, "ratio": 3.0, "ok": true, "code": "3", "name": "x" } }));
    let holds =
        |field: &str, v: serde_json::Value| condition_holds(&cond(field, Test::Equals(v)), &e);
    assert!(holds("data.rows", json!(3)));
    assert!(holds("data.rows", json!(3.0)), "numbers compare by value");
    assert!(holds("data.ratio", json!(3)));
    assert!(
        holds("data.rows", json!("3")),
        "a string equals a number with its text"
    );
    assert!(holds("data.code", json!(3)), "and the other way round");
    assert!(holds("data.ok", json!(true)));
    assert!(holds("data.ok", json!("true")));
    assert!(!holds("data.ok", json!("yes")));
    assert!(!holds("data.rows", json!(4)));
    assert!(!holds("data.name", json!(true)));
    assert!(!holds("data.rows", json!("03")));
}

#[test]
fn regex_tests_the_display_text() {
    let e = event(
        json!({ "data": { "rows": 1234, "ok": false, "name": "etl-orders", "tags": ["a", "b"] } }),
    );
    let holds = |field: &str, re: &str| {
        condition_holds(
            &cond(field, Test::Regex(regex::Regex::new(re).expect("regex"))),
            &e,
        )
    };
    assert!(holds("data.name", "^etl-"));
    assert!(!holds("data.name", "^\"etl"), "strings are unquoted");
    assert!(holds("data.rows", "^\\d{4}$"));
    assert!(holds("data.ok", "^false$"));
    assert!(holds("data.tags", "\"a\""));
}

#[test]
fn all_conditions_must_hold() {
    let e = event(json!({ "labels": { "team": "data" }, "data": { "rows": 0 } }));
    let mut r = route("r", &["a"]);
    r.conditions = vec![
        cond("labels.team", Test::Equals(json!("data"))),
        cond("data.rows", Test::Exists(true)),
    ];
    assert!(matches(r.clone(), &e));
    r.conditions.push(cond("data.rows", Test::Equals(json!(1))));
    assert!(!matches(r, &e));
}

#[test]
fn the_first_matching_route_decides_unless_it_continues() {
    let mut first = route("first", &["a"]);
    first.event = globs(&["task.*"]);
    let second = route("second", &["b"]);
    let router = Router::new(vec![first.clone(), second.clone()]);
    let d = router.decide("default", &event(json!({})));
    assert_eq!(d.matched, ["first"]);
    assert_eq!(names(&d), ["a"]);
    assert!(!d.explicit && !d.is_unrouted());

    // A route that does not match is skipped.
    let d = router.decide("default", &event(json!({ "type": "resource.threshold" })));
    assert_eq!(d.matched, ["second"]);
    assert_eq!(names(&d), ["b"]);

    first.continue_ = true;
    let router = Router::new(vec![first, second]);
    let d = router.decide("default", &event(json!({})));
    assert_eq!(d.matched, ["first", "second"]);
    assert_eq!(names(&d), ["a", "b"]);
    assert_eq!(d.targets[1].route.as_deref(), Some("second"));
}

#[test]
fn each_destination_is_reached_once_with_the_first_routes_template() {
    let mut first = route("first", &["a", "b", "a"]);
    first.template = Some("short".into());
    first.continue_ = true;
    let mut second = route("second", &["b", "c"]);
    second.template = Some("long".into());
    let d = Router::new(vec![first, second]).decide("default", &event(json!({})));
    assert_eq!(names(&d), ["a", "b", "c"]);
    let template = |i: usize| d.targets[i].template.as_deref();
    assert_eq!(
        (template(0), template(1), template(2)),
        (Some("short"), Some("short"), Some("long"))
    );
    assert_eq!(d.targets[1].route.as_deref(), Some("first"));
    assert_eq!(d.targets[2].route.as_deref(), Some("second"));
}

#[test]
fn no_matching_route_means_unrouted() {
    let mut r = route("r", &["a"]);
    r.severity = SeverityMatch::OneOf(vec![Severity::Info]);
    let d = Router::new(vec![r]).decide("default", &event(json!({})));
    assert!(d.is_unrouted());
    assert!(d.matched.is_empty());
    assert!(
        Router::default()
            .decide("default", &event(json!({})))
            .is_unrouted()
    );
}

#[test]
fn explicit_destinations_skip_the_routes() {
    let router = Router::new(vec![route("all", &["a"])]);
    let d = router.decide(
        "default",
        &event(json!({ "destinations": ["x", "y", "x"] })),
    );
    assert!(d.explicit);
    assert!(d.matched.is_empty());
    assert_eq!(names(&d), ["x", "y"]);
    assert!(
        d.targets
            .iter()
            .all(|t| t.route.is_none() && t.template.is_none())
    );
    let d = router.decide("default", &event(json!({ "destinations": [] })));
    assert!(d.explicit && d.is_unrouted());
}

#[test]
fn a_decision_serializes_for_storage_and_the_api() {
    let mut r = route("failures", &["ops"]);
    r.template = Some("builtin.task-failed".into());
    let d = Router::new(vec![r]).decide("default", &event(json!({})));
    let value = serde_json::to_value(&d).expect("serializes");
    assert_eq!(
        value,
        json!({
            "matched": ["failures"],
            "targets": [{ "destination": "ops", "template": "builtin.task-failed", "route": "failures" }],
            "explicit": false,
        })
    );
    let back: Decision = serde_json::from_value(value).expect("deserializes");
    assert_eq!(back, d);
}

#[test]
fn an_event_is_routed_by_its_workspace_routes_only() {
    let mut team = route("team", &["team-bot"]);
    team.workspace = "team".to_owned();
    let router = Router::new(vec![route("ops", &["ops-bot"]), team]);
    let d = router.decide("default", &event(json!({})));
    assert_eq!(d.matched, ["ops"]);
    let d = router.decide("team", &event(json!({})));
    assert_eq!(d.matched, ["team"]);
    assert_eq!(d.targets[0].destination, "team-bot");
    assert!(router.decide("other", &event(json!({}))).is_unrouted());
}

#[test]
fn routes_go_by_order_and_ties_keep_the_order_given() {
    let mut catch_all = route("catch-all", &["archive"]);
    catch_all.order = 10;
    let first = route("first", &["ops"]);
    let mut urgent = route("urgent", &["pager"]);
    urgent.order = -1;
    let second = route("second", &["team"]);
    let router = Router::new(vec![catch_all, first, urgent, second]);
    let names: Vec<&str> = router.routes().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["urgent", "first", "second", "catch-all"]);
    let d = router.decide("default", &event(json!({})));
    assert_eq!(
        d.matched,
        ["urgent"],
        "the first match stops the evaluation"
    );
}
