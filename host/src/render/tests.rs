//! Unit tests of rendering: the syntax, every variable, time expressions,
//! locales, errors, and golden files of the built-in templates
//! (`tests/golden/templates/*.txt`, rewritten with `UPDATE_EXPECT=1`).
//!
//! Longer than 600 lines on purpose: every test renders through the same
//! few fixtures at the top (an event, a renderer with given templates), and
//! splitting them by variable family would scatter those fixtures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use super::*;

fn event(value: serde_json::Value) -> Event {
    let mut base = json!({
        "type": "task.failed",
        "source": "etl",
        "time": "2024-05-06T23:30:05Z",
        "severity": "error",
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), value.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("a valid event")
}

fn shanghai() -> RenderSettings {
    RenderSettings {
        time_zone: jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone"),
        default_locale: "en".to_owned(),
    }
}

fn template(locales: &[(&str, &str, &str)]) -> Template {
    Template {
        workspace: "default".to_owned(),
        locales: locales
            .iter()
            .map(|(locale, title, body)| {
                (
                    (*locale).to_owned(),
                    TemplateText {
                        title: (*title).to_owned(),
                        body: (*body).to_owned(),
                    },
                )
            })
            .collect(),
    }
}

fn renderer(templates: &[(&str, Template)]) -> Renderer {
    let map: BTreeMap<String, Template> = templates
        .iter()
        .map(|(name, t)| ((*name).to_owned(), t.clone()))
        .collect();
    Renderer::new(&map, shanghai()).unwrap_or_else(|e| panic!("{e:?}"))
}

/// Renders `body` (title "t") for `event`.
fn body(source: &str, event: &Event) -> Result<String, RenderError> {
    let r = renderer(&[("t", template(&[("en", "t", source)]))]);
    r.render(event, Some("t"), None).map(|m| m.markdown)
}

fn ok(source: &str, event: &Event) -> String {
    body(source, event).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn renderer_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Renderer>();
}

#[test]
fn the_syntax_is_dollar_braces_with_jinja_blocks_and_no_escaping() {
    let e = event(json!({ "data": { "items": ["a", "b"], "html": "<b>&</b>" } }));
    assert_eq!(
        ok(
            "{# note #}${ type | upper }{% for i in items %} ${ loop.index }=${ i }{% endfor %} ${ html } {{ literal }}",
            &e
        ),
        "TASK.FAILED 1=a 2=b <b>&</b> {{ literal }}"
    );
    assert_eq!(
        ok(
            "{% if severity == \"error\" %}bad{% else %}fine{% endif %} ${ {\"x\": 1}[\"x\"] }",
            &e
        ),
        "bad 1"
    );
}

#[test]
fn times_are_in_the_configured_zone() {
    let e = event(json!({}));
    assert_eq!(
        ok("${date}|${time}|${timestamp}", &e),
        "2024-05-07|07:30:05|2024-05-07 07:30:05"
    );
    let utc = Renderer::new(&BTreeMap::new(), RenderSettings::default()).expect("compiles");
    let mut with = BTreeMap::new();
    with.insert(
        "t".to_owned(),
        template(&[("en", "t", "${timestamp} ${yyyymmdd}")]),
    );
    let utc_t = Renderer::new(&with, RenderSettings::default()).expect("compiles");
    assert_eq!(
        utc_t.render(&e, Some("t"), None).expect("renders").markdown,
        "2024-05-06 23:30:05 20240506"
    );
    assert!(utc.has_template("builtin.generic"));
}

#[test]
fn time_expressions_count_days_from_the_event() {
    let e = event(json!({}));
    assert_eq!(
        ok(
            "${yyyymmdd} ${yyyymmdd-1} ${yyyymmdd+7} ${yyyy-mm-dd} ${yyyy-mm-dd-1} ${hh24:mi:ss} ${hh24miss} ${yyyymm} ${yyyy} ${ YYYY/MM/DD - 10 }",
            &e
        ),
        "20240507 20240506 20240514 2024-05-07 2024-05-06 07:30:05 073005 202405 2024 2024/04/27"
    );
    assert_eq!(
        ok("{% set n = 2 %}${ timefmt(\"yyyymmdd\", -n) }", &e),
        "20240505"
    );
}

#[test]
fn task_variables_come_from_data_with_fallbacks() {
    let vars = |data: serde_json::Value, extra: serde_json::Value| {
        let mut v = extra;
        v["data"] = data;
        ok(
            "${ taskname | default('-') }|${ owner | default('-') }|${ resourceid | default('-') }|${ tasktype | default('-') }|${ message | default('-') }|${ status }",
            &event(v),
        )
    };
    assert_eq!(
        vars(
            json!({ "taskname": "a", "owner": "ann", "resourceid": "r1", "tasktype": "sql", "message": "m", "status": "queued" }),
            json!({})
        ),
        "a|ann|r1|sql|m|queued"
    );
    assert_eq!(
        vars(
            json!({ "task_name": "b", "resource_id": "r2", "task_type": "py" }),
            json!({ "message": "from event" })
        ),
        "b|-|r2|py|from event|failed"
    );
    assert_eq!(
        vars(
            json!({ "task": { "name": "c", "owner": "bob", "type": "shell" }, "resource": { "id": "r3" } }),
            json!({})
        ),
        "c|bob|r3|shell|-|failed"
    );
    assert_eq!(
        vars(json!({ "task": "d", "resource": "host-1" }), json!({})),
        "d|-|host-1|-|-|failed"
    );
    assert_eq!(
        vars(json!({}), json!({ "subject": "from-subject" })),
        "from-subject|-|-|-|-|failed"
    );
}

#[test]
fn status_is_derived_from_the_type_and_severity() {
    let status = |t: &str, s: &str| ok("${status}", &event(json!({ "type": t, "severity": s })));
    assert_eq!(status("task.succeeded", "info"), "succeeded");
    assert_eq!(status("job.completed", "info"), "succeeded");
    assert_eq!(status("task.failure", "info"), "failed");
    assert_eq!(status("task.timed_out", "warning"), "timeout");
    assert_eq!(status("alert.firing", "critical"), "firing");
    assert_eq!(status("alert.resolved", "info"), "resolved");
    assert_eq!(status("resource.threshold", "warning"), "firing");
    assert_eq!(status("resource.recovered", "info"), "resolved");
    assert_eq!(status("deploy.done", "success"), "succeeded");
    assert_eq!(status("deploy.done", "critical"), "failed");
    assert_eq!(status("deploy.done", "warning"), "warning");
}

#[test]
fn event_fields_and_data_are_variables() {
    let e = event(json!({
        "title": "T", "subject": "S", "source": "src",
        "labels": { "team": "data" },
        "data": { "rows": 5, "nested": { "x": [1, 2] }, "type": "shadowed", "nothing": null },
    }));
    assert_eq!(
        ok(
            "${type}|${source}|${severity}|${title}|${subject}|${rows}|${nested.x[1]}|${data.type}|${labels.team}|${event.labels.team}|[${nothing}]",
            &e
        ),
        "task.failed|src|error|T|S|5|2|shadowed|data|data|[]"
    );
}

#[test]
fn a_missing_variable_is_an_error_naming_it() {
    let e = event(json!({ "data": { "present": 1 } }));
    let err = body("Rows: ${ rows }", &e).expect_err("rows is missing");
    assert_eq!(err.variable.as_deref(), Some("rows"));
    assert_eq!((err.template.as_str(), err.locale.as_str()), ("t", "en"));
    let text = err.to_string();
    assert!(text.contains("`rows` is undefined"), "{text}");
    assert!(text.contains("line 1 of the body"), "{text}");
    let err = body("a\n${ data.missing.deeper }", &e).expect_err("missing");
    assert_eq!(err.variable.as_deref(), Some("data.missing"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
    let err = body("{% for r in rows %}x{% endfor %}", &e).expect_err("missing");
    assert_eq!(err.variable.as_deref(), Some("rows"), "{err}");
    let err = body("{% if rows > 1 %}x{% endif %}", &e).expect_err("missing");
    assert_eq!(err.variable.as_deref(), Some("rows"), "{err}");
    // Optional fields are tested, or defaulted.
    assert_eq!(
        ok(
            "{% if rows is defined %}${rows}{% else %}none{% endif %} ${ rows | default(0) } ${ present }",
            &e
        ),
        "none 0 1"
    );
}

#[test]
fn other_render_errors_are_reported() {
    let e = event(json!({}));
    let err = body("${ 1 / 0 }", &e).expect_err("division by zero");
    assert!(err.variable.is_none());
    assert!(err.to_string().contains("line 1 of the body"), "{err}");
    let err = body("${ timefmt(\"nope\") }", &e).expect_err("bad format");
    assert!(err.reason.contains("not a time format"), "{err}");
    let r = renderer(&[]);
    let err = r.render(&e, Some("nope"), Some("zh")).expect_err("missing");
    assert_eq!(
        err.to_string(),
        "cannot render template \"nope\" (locale \"zh\"): no template has this name"
    );
}

#[test]
fn a_runaway_loop_is_stopped() {
    let e = event(json!({}));
    let err = body(
        "{% for i in range(10000) %}{% for j in range(10000) %}${ j }{% endfor %}{% endfor %}",
        &e,
    )
    .expect_err("out of fuel");
    assert!(err.reason.contains("ran too long"), "{err}");
}

#[test]
fn syntax_errors_name_the_template_locale_part_and_line() {
    let mut map = BTreeMap::new();
    map.insert(
        "broken".to_owned(),
        template(&[
            ("en", "ok ${yyyymmdd}", "line 1\n${ oops "),
            ("zh", "{% if x %}", "fine"),
        ]),
    );
    let errors = Renderer::new(&map, shanghai()).expect_err("does not compile");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(
        (
            errors[0].template.as_str(),
            errors[0].locale.as_str(),
            errors[0].part
        ),
        ("broken", "en", Part::Body)
    );
    assert_eq!(errors[0].line, Some(2));
    assert!(
        errors[0].reason.starts_with("syntax error: "),
        "{}",
        errors[0]
    );
    assert_eq!(errors[1].part, Part::Title);
    assert!(
        errors[1]
            .to_string()
            .starts_with("templates.broken.zh.title: syntax error: "),
        "{}",
        errors[1]
    );
    assert_eq!(check_syntax("${ a }"), Ok(()));
    assert!(check_syntax("{% for %}").is_err());
}

#[test]
fn locales_follow_destination_event_default() {
    let t = template(&[
        ("default", "default", "d"),
        ("en", "en", "e"),
        ("zh", "zh", "z"),
        ("zh-TW", "zh-TW", "t"),
    ]);
    let r = renderer(&[("t", t)]);
    let pick = |dest: Option<&str>, ev: Option<&str>| {
        let e = event(json!({ "locale": ev }));
        let m = r.render(&e, Some("t"), dest).expect("renders");
        (m.title, m.locale)
    };
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(pick(Some("zh-TW"), Some("en")), s("zh-TW", "zh-TW"));
    assert_eq!(pick(Some("zh-CN"), Some("en")), s("zh", "zh"));
    assert_eq!(pick(Some("ZH"), None), s("zh", "zh"));
    assert_eq!(pick(None, Some("en-GB")), s("en", "en"));
    assert_eq!(pick(Some("fr"), Some("zh")), s("zh", "zh"));
    assert_eq!(pick(Some("fr"), None), s("default", "fr"));
    assert_eq!(pick(None, None), s("default", "en"));

    let no_default = renderer(&[("t", template(&[("ja", "ja", "j"), ("zh-CN", "zh-CN", "c")]))]);
    let pick = |dest: Option<&str>| {
        let m = no_default
            .render(&event(json!({})), Some("t"), dest)
            .expect("renders");
        (m.title, m.locale)
    };
    assert_eq!(
        pick(Some("zh")),
        s("zh-CN", "zh-CN"),
        "another tag of the language"
    );
    assert_eq!(pick(Some("fr")), s("ja", "ja"), "the first");

    let with_en = renderer(&[("t", template(&[("ja", "ja", "j"), ("en", "en", "e")]))]);
    let m = with_en
        .render(&event(json!({})), Some("t"), Some("fr"))
        .expect("renders");
    assert_eq!(m.locale, "en", "the configured default locale");
}

#[test]
fn families_pick_the_built_in_template() {
    let f = |t: &str| family(&event(json!({ "type": t })));
    assert_eq!(f("task.succeeded"), "builtin.task-succeeded");
    assert_eq!(f("etl.SUCCESS"), "builtin.task-succeeded");
    assert_eq!(f("job.completed"), "builtin.task-succeeded");
    assert_eq!(f("task.failed"), "builtin.task-failed");
    assert_eq!(f("x.failure"), "builtin.task-failed");
    assert_eq!(f("x.error"), "builtin.task-failed");
    assert_eq!(f("task.timeout"), "builtin.timeout");
    assert_eq!(f("task.timed_out"), "builtin.timeout");
    assert_eq!(f("task.finished-late"), "builtin.task-finished-late");
    assert_eq!(f("quota.digest"), "builtin.quota-digest");
    assert_eq!(f("task.retrying"), "builtin.task-retrying");
    assert_eq!(f("resource.threshold"), "builtin.resource");
    assert_eq!(f("alert.firing"), "builtin.alert");
    assert_eq!(f("deploy.finished"), "builtin.generic");
    assert_eq!(f("failed"), "builtin.task-failed");
    for name in builtin::NAMES {
        assert!(builtin::exists(&format!("builtin.{name}")));
    }
    assert!(!builtin::exists("builtin.nope") && !builtin::exists("task-failed"));
}

#[test]
fn a_config_template_overrides_one_locale_of_a_built_in() {
    let r = renderer(&[(
        "builtin.task-failed",
        template(&[("zh", "自定义 ${taskname}", "正文")]),
    )]);
    let e = event(json!({ "data": { "taskname": "x" } }));
    assert_eq!(
        r.render(&e, None, Some("zh")).expect("renders").title,
        "自定义 x"
    );
    assert_eq!(
        r.render(&e, None, Some("en")).expect("renders").title,
        "❌ x failed"
    );
}

#[test]
fn the_message_carries_the_events_parts() {
    let e = event(json!({
        "data": { "taskname": "etl" },
        "link": { "url": "https://ci.example.com/1", "label": "Open" },
        "mentions": [{ "kind": "all" }],
        "fields": [{ "name": "Env", "value": "prod" }],
        "table": { "columns": [{ "key": "a", "title": "A" }], "rows": [["1"]] },
    }));
    let r = renderer(&[(
        "t",
        template(&[(
            "en",
            "  Task\n ${taskname} \n",
            "\n\n**Bold** [run](https://x.example.com)\n\n\n\nend\n\n",
        )]),
    )]);
    let m = r.render(&e, Some("t"), None).expect("renders");
    assert_eq!(m.title, "Task etl");
    assert_eq!(m.markdown, "**Bold** [run](https://x.example.com)\n\nend");
    assert_eq!(m.text, "Bold run (https://x.example.com)\n\nend");
    assert_eq!(m.severity, crate::message::Severity::Error);
    assert_eq!(m.link, e.link);
    assert_eq!(m.mentions, e.mentions);
    assert_eq!(m.fields, e.fields);
    assert_eq!(m.table, e.table);
    assert_eq!(m.locale, "en");
}

#[test]
fn datetime_formats_timestamps_in_the_zone() {
    let e = event(json!({ "data": { "at": "2024-05-06T22:00:00Z", "unix": 0, "text": "soon" } }));
    assert_eq!(
        ok(
            "${ at | datetime }|${ at | datetime('hh24:mi') }|${ unix | datetime('yyyy-mm-dd') }|${ text | datetime }",
            &e
        ),
        "2024-05-07 06:00:00|06:00|1970-01-01|soon"
    );
}

#[test]
fn the_failure_template_never_shows_row_counts() {
    let data = json!({ "taskname": "etl", "rows": 12345, "affected_rows": 678 });
    let r = renderer(&[]);
    for locale in ["en", "zh"] {
        let failed = r
            .render(&event(json!({ "data": data })), None, Some(locale))
            .expect("renders");
        assert!(
            !failed.markdown.contains("12345") && !failed.markdown.contains("678"),
            "{}",
            failed.markdown
        );
        let ok = r
            .render(
                &event(json!({ "type": "task.succeeded", "severity": "success", "data": data })),
                None,
                Some(locale),
            )
            .expect("renders");
        assert!(ok.markdown.contains("12345"), "{}", ok.markdown);
    }
}

#[test]
fn built_in_templates_render_sparse_events() {
    // Only the required fields: every built-in must still render.
    let r = renderer(&[]);
    for t in [
        "task.succeeded",
        "task.failed",
        "task.timeout",
        "resource.threshold",
        "alert.firing",
        "alert.resolved",
        "other.thing",
    ] {
        for locale in ["en", "zh"] {
            let m = r
                .render(&event(json!({ "type": t })), None, Some(locale))
                .unwrap_or_else(|e| panic!("{t} {locale}: {e}"));
            assert!(
                !m.title.is_empty() && !m.markdown.is_empty(),
                "{t} {locale}"
            );
        }
    }
}

// ---- golden files ----

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/templates")
}

fn show(m: &Message) -> String {
    format!(
        "locale: {}\n\n--- title\n{}\n\n--- markdown\n{}\n\n--- text\n{}\n",
        m.locale, m.title, m.markdown, m.text
    )
}

fn samples() -> Vec<(&'static str, Event)> {
    vec![
        (
            "task-succeeded",
            event(json!({
                "type": "task.succeeded",
                "source": "dataworks",
                "severity": "success",
                "data": {
                    "task_name": "ods_orders_daily",
                    "owner": "Li Lei",
                    "tasktype": "ODPS SQL",
                    "rows": 128_400,
                    "duration": "3m 12s",
                },
            })),
        ),
        (
            "task-failed",
            event(json!({
                "type": "task.failed",
                "source": "dataworks",
                "message": "Stage 2 of 3 failed; the run will be retried at 08:00.",
                "data": {
                    "task": { "name": "ods_orders_daily", "owner": "Li Lei", "type": "ODPS SQL" },
                    "affected_rows": 0,
                    "error": "table `ods.orders` does not exist",
                },
            })),
        ),
        (
            "timeout",
            event(json!({
                "type": "task.timeout",
                "source": "airflow",
                "severity": "warning",
                "data": {
                    "taskname": "dws_sales_hourly",
                    "owner": "Han Meimei",
                    "started_at": "2024-05-06T21:00:00Z",
                    "deadline": "2024-05-06T23:00:00Z",
                },
            })),
        ),
        (
            "task-finished-late",
            event(json!({
                "type": "task.finished-late",
                "source": "airflow",
                "severity": "warning",
                "data": {
                    "taskname": "dws_sales_hourly",
                    "owner": "Han Meimei",
                    "tasktype": "ETL",
                    "outcome": "succeeded",
                    "timed_out_at": "2024-05-06T23:00:00Z",
                    "late_by": "30m 5s",
                },
            })),
        ),
        (
            "task-retrying",
            event(json!({
                "type": "task.retrying",
                "source": "airflow",
                "severity": "warning",
                "message": "Connection reset by the warehouse.",
                "data": {
                    "taskname": "dws_sales_hourly",
                    "owner": "Han Meimei",
                    "attempt": 2,
                    "max_attempts": 5,
                    "next_attempt_at": "2024-05-06T23:40:00Z",
                },
            })),
        ),
        (
            "resource",
            event(json!({
                "type": "resource.threshold",
                "source": "carillon",
                "severity": "warning",
                "data": { "metric": "cpu", "value": 93.5, "threshold": 90, "unit": "%", "resourceid": "gw-1" },
            })),
        ),
        (
            "resource-resolved",
            event(json!({
                "type": "resource.resolved",
                "source": "carillon",
                "severity": "info",
                "data": { "metric": "disk", "value": 71, "threshold": 85, "unit": "%", "resourceid": "gw-1" },
            })),
        ),
        (
            "resource-stale",
            event(json!({
                "type": "resource.resolved",
                "source": "carillon.monitor",
                "severity": "info",
                "data": { "metric": "dataset.size", "value": 120, "threshold": 100, "unit": "GB", "resourceid": "dataset=orders",
                          "status": "resolved", "stale": true, "last_reading": "2024-05-06T21:00:00Z", "firing_for": "2h 0m 0s" },
            })),
        ),
        (
            "alert",
            event(json!({
                "type": "alert.firing",
                "source": "alertmanager",
                "severity": "critical",
                "title": "p99 latency above 2s",
                "message": "p99 latency of `checkout` is 3.1s for 10 minutes.",
                "labels": {
                    "alertname": "HighLatency",
                    "instance": "api-1:9090",
                    "severity": "critical",
                    "job": "checkout",
                    "team": "web",
                },
            })),
        ),
        (
            "alert-resolved",
            event(json!({
                "type": "alert.resolved",
                "source": "alertmanager",
                "severity": "success",
                "title": "HighLatency",
                "labels": { "alertname": "HighLatency", "instance": "api-1:9090", "severity": "critical" },
                "data": { "status": "resolved" },
            })),
        ),
        (
            "quota-digest",
            event(json!({
                "type": "quota.digest",
                "source": "carillon/quota",
                "severity": "info",
                "data": {
                    "quota_scope": "contact", "quota_name": "li-wei", "display_name": "Li Wei",
                    "suppressed": 10, "max": 20, "window": "1h",
                    "window_start": "2024-05-06T21:00:00Z", "window_end": "2024-05-06T22:00:00Z",
                    "kinds": [{ "type": "alert.firing", "count": 7 }, { "type": "task.failed", "count": 3 }],
                },
            })),
        ),
        (
            "quota-digest-route",
            event(json!({
                "type": "quota.digest",
                "source": "carillon/quota",
                "severity": "info",
                "data": {
                    "quota_scope": "route", "quota_name": "db-alerts", "display_name": "db-alerts",
                    "suppressed": 1, "max": 5, "window": "30m",
                    "window_start": "2024-05-06T21:00:00Z", "window_end": "2024-05-06T21:30:00Z",
                    "kinds": [{ "type": "alert.firing", "count": 1 }],
                },
            })),
        ),
        (
            "generic",
            event(json!({
                "type": "deploy.finished",
                "source": "ci",
                "severity": "info",
                "title": "Deployed checkout v1.4.2",
                "message": "Rolled out to **prod** in 4 minutes.",
            })),
        ),
    ]
}

#[test]
fn built_in_templates_match_their_golden_files() {
    let r = renderer(&[]);
    for (name, e) in samples() {
        for locale in ["en", "zh"] {
            let m = r
                .render(&e, None, Some(locale))
                .unwrap_or_else(|err| panic!("{name} {locale}: {err}"));
            carillon_sdk::testing::check_golden(
                &golden_dir().join(format!("{name}.{locale}.txt")),
                &show(&m),
            );
        }
    }
}

#[test]
fn a_user_template_with_loops_conditions_and_time_matches_its_golden_file() {
    let body = r#"Report for **${yyyy-mm-dd-1}** (run at ${hh24:mi}, next ${yyyymmdd+1}).

| Task | Status | Rows |
| --- | --- | --- |
{% for t in tasks %}
| ${ t.name } | {% if t.ok %}✅{% else %}❌{% endif %} | ${ t.rows | default("–") } |
{% endfor %}

{% set failed = tasks | rejectattr("ok") | list %}
{% if failed %}
**${ failed | length } failed:** ${ failed | map(attribute="name") | join(", ") }
{% else %}
All ${ tasks | length } tasks succeeded.
{% endif %}
{% if owner is defined %}

Owner: ${ owner }
{% endif %}
"#;
    let r = renderer(&[(
        "daily",
        template(&[(
            "en",
            "Daily report ${yyyymmdd-1} (${ tasks | length } tasks)",
            body,
        )]),
    )]);
    let e = event(json!({
        "type": "report.daily",
        "severity": "info",
        "data": {
            "tasks": [
                { "name": "ods_orders", "ok": true, "rows": 1200 },
                { "name": "dws_sales", "ok": false },
                { "name": "ads_kpi", "ok": true, "rows": 12 },
            ],
        },
    }));
    let m = r
        .render(&e, Some("daily"), None)
        .unwrap_or_else(|e| panic!("{e}"));
    carillon_sdk::testing::check_golden(&golden_dir().join("user-daily-report.en.txt"), &show(&m));
}

#[test]
fn a_task_event_with_a_title_and_no_taskname_keeps_its_title() {
    let r = renderer(&[]);
    let titled = event(json!({ "title": "orders_daily failed" }));
    assert_eq!(
        r.render(&titled, None, None).unwrap().title,
        "❌ orders_daily failed"
    );
    let named = event(json!({ "title": "ignored", "data": { "taskname": "orders_daily" } }));
    assert_eq!(
        r.render(&named, None, None).unwrap().title,
        "❌ orders_daily failed"
    );
    let bare = event(json!({}));
    assert_eq!(r.render(&bare, None, None).unwrap().title, "❌ etl failed");
    let zh = event(json!({ "title": "订单任务失败", "locale": "zh" }));
    assert_eq!(r.render(&zh, None, None).unwrap().title, "❌ 订单任务失败");
}
