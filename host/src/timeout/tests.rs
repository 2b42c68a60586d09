//! `plan` (what an event asks of its task's timer, and the bad inputs it
//! refuses by field) and the events a timer raises, rendered with the
//! built-in templates.

use std::collections::BTreeMap;
use std::time::Duration;

use carillon_outbox::{Timer, TimerId, Timestamp};
use serde_json::json;

use super::*;
use crate::config::TimeoutSettings;
use crate::render::{RenderSettings, Renderer};

const NOW: &str = "2026-03-01T08:00:00Z";

fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

fn event(ty: &str, data: serde_json::Value) -> Event {
    serde_json::from_value(json!({
        "type": ty,
        "source": "airflow",
        "time": NOW,
        "severity": "info",
        "data": data,
    }))
    .unwrap()
}

fn settings() -> TimeoutSettings {
    TimeoutSettings {
        default: None,
        by_type: BTreeMap::from([("ETL".to_owned(), Duration::from_secs(7200))]),
        ..TimeoutSettings::default()
    }
}

fn armed(plan: TaskTimer) -> NewTimer {
    match plan {
        TaskTimer::Arm(t) => t,
        other => panic!("not armed: {other:?}"),
    }
}

fn errors(r: Result<TaskTimer, Vec<FieldError>>) -> Vec<(String, String)> {
    r.expect_err("refused")
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect()
}

fn ms(t: &str) -> Timestamp {
    Timestamp::from_millis(
        u64::try_from(t.parse::<jiff::Timestamp>().unwrap().as_millisecond()).unwrap(),
    )
}

#[test]
fn started_arms_by_timeout_secs_counted_from_receipt() {
    let s = settings();
    let t = armed(
        plan(
            &s,
            &event(STARTED, json!({ "run_id": "r1", "timeout_secs": 90 })),
            "etl",
            "default",
            now(),
        )
        .unwrap(),
    );
    assert_eq!(t.deadline, ms("2026-03-01T08:01:30Z"));
    assert_eq!(t.key, key("etl", "airflow", "r1"));
    assert_eq!(t.kind, KIND);
}

#[test]
fn the_task_types_default_applies_and_no_timeout_arms_nothing() {
    let s = settings();
    let t = armed(
        plan(
            &s,
            &event(STARTED, json!({ "run_id": "r1", "tasktype": "ETL" })),
            "etl",
            "default",
            now(),
        )
        .unwrap(),
    );
    assert_eq!(t.deadline, ms("2026-03-01T10:00:00Z"));
    let none = plan(
        &s,
        &event(STARTED, json!({ "run_id": "r1", "tasktype": "report" })),
        "etl",
        "default",
        now(),
    )
    .unwrap();
    assert_eq!(none, TaskTimer::None);
    let with_default = TimeoutSettings {
        default: Some(Duration::from_secs(60)),
        ..settings()
    };
    let t = armed(
        plan(
            &with_default,
            &event(STARTED, json!({ "run_id": "r1", "task_type": "report" })),
            "etl",
            "default",
            now(),
        )
        .unwrap(),
    );
    assert_eq!(t.deadline, ms("2026-03-01T08:01:00Z"));
}

#[test]
fn a_deadline_in_the_future_is_taken_as_given() {
    let t = armed(
        plan(
            &settings(),
            &event(
                STARTED,
                json!({ "run_id": 7, "deadline": "2026-03-01T18:00:00+08:00" }),
            ),
            "etl",
            "default",
            now(),
        )
        .unwrap(),
    );
    assert_eq!(t.deadline, ms("2026-03-01T10:00:00Z"));
    let started: Started = serde_json::from_slice(&t.payload).unwrap();
    assert_eq!(started.run_id, "7");
    assert_eq!(started.timeout_secs, 7200);
    assert_eq!(started.token, "etl");
}

#[test]
fn completions_disarm_by_run_id_and_source() {
    for ty in COMPLETIONS {
        let p = plan(
            &settings(),
            &event(ty, json!({ "run_id": "r1" })),
            "etl",
            "default",
            now(),
        )
        .unwrap();
        assert_eq!(p, TaskTimer::Disarm(key("etl", "airflow", "r1")), "{ty}");
    }
    // Without a run id a completion is just an event.
    let p = plan(
        &settings(),
        &event("task.failed", json!({})),
        "etl",
        "default",
        now(),
    )
    .unwrap();
    assert_eq!(p, TaskTimer::None);
    // Keys cannot collide by moving a separator between parts.
    assert_ne!(key("a", "b:c", "d"), key("a", "b", "c:d"));
}

#[test]
fn bad_input_is_refused_naming_the_field() {
    let s = settings();
    let cases = [
        (json!({ "timeout_secs": 60 }), "/data/run_id", "run id"),
        (
            json!({ "run_id": "", "timeout_secs": 60 }),
            "/data/run_id",
            "empty",
        ),
        (
            json!({ "run_id": ["x"], "timeout_secs": 60 }),
            "/data/run_id",
            "string",
        ),
        (
            json!({ "run_id": "r", "timeout_secs": -5 }),
            "/data/timeout_secs",
            "greater than 0",
        ),
        (
            json!({ "run_id": "r", "timeout_secs": 0 }),
            "/data/timeout_secs",
            "greater than 0",
        ),
        (
            json!({ "run_id": "r", "timeout_secs": 3_000_000 }),
            "/data/timeout_secs",
            "30 days",
        ),
        (
            json!({ "run_id": "r", "timeout_secs": "60" }),
            "/data/timeout_secs",
            "number",
        ),
        (
            json!({ "run_id": "r", "deadline": "tomorrow" }),
            "/data/deadline",
            "RFC 3339",
        ),
        (
            json!({ "run_id": "r", "deadline": "2026-03-01T07:59:59Z" }),
            "/data/deadline",
            "not in the future",
        ),
        (
            json!({ "run_id": "r", "deadline": "2026-05-01T00:00:00Z" }),
            "/data/deadline",
            "30 days",
        ),
        (
            json!({ "run_id": "r", "deadline": "2026-03-01T09:00:00Z", "timeout_secs": 5 }),
            "/data/timeout_secs",
            "not both",
        ),
    ];
    for (data, path, words) in cases {
        let found = errors(plan(
            &s,
            &event(STARTED, data.clone()),
            "etl",
            "default",
            now(),
        ));
        assert_eq!(found.len(), 1, "{data}");
        assert_eq!(found[0].0, path, "{data}");
        assert!(found[0].1.contains(words), "{data}: {}", found[0].1);
    }
}

fn timer_for(started: &Event, deadline: &str) -> Timer {
    let t = armed(
        plan(
            &TimeoutSettings::default(),
            &Event {
                data: {
                    let mut d = started.data.clone();
                    d.insert("deadline".into(), json!(deadline));
                    d
                },
                ..started.clone()
            },
            "etl",
            "default",
            now(),
        )
        .unwrap(),
    );
    Timer {
        id: TimerId::parse("tmr_01HZZZZZZZZZZZZZZZZZZZZZZZ").unwrap(),
        key: t.key,
        kind: t.kind,
        source: t.source,
        armed_at: ms(NOW),
        deadline: t.deadline,
        payload: t.payload,
    }
}

#[test]
fn the_timeout_event_carries_the_tasks_variables_and_renders() {
    let started = event(
        STARTED,
        json!({ "run_id": "r1", "taskname": "dws_sales", "owner": "Han", "tasktype": "ETL" }),
    );
    let timer = timer_for(&started, "2026-03-01T10:00:00Z");
    let (token, workspace, e) = timeout_event(&timer, ms("2026-03-01T10:00:00.500Z")).unwrap();
    assert_eq!(token, "etl");
    assert_eq!(workspace, "default");
    assert_eq!(e.event_type, TIMEOUT);
    assert_eq!(e.data["late"], json!(false));
    assert_eq!(e.data["elapsed"], json!("2h 0m 0s"));
    assert_eq!(e.data["started_at"], json!(NOW));
    let r = Renderer::new(&BTreeMap::new(), RenderSettings::default()).unwrap();
    let m = r.render(&e, None, Some("en")).unwrap();
    assert_eq!(m.title, "⏰ dws_sales timed out");
    assert!(m.markdown.contains("- **Owner:** Han"), "{}", m.markdown);
    assert!(m.markdown.contains("- **Type:** ETL"), "{}", m.markdown);
    assert!(
        m.markdown.contains("- **Running for:** 2h 0m 0s"),
        "{}",
        m.markdown
    );
    assert!(!m.markdown.contains("late"), "{}", m.markdown);
    let zh = r.render(&e, None, Some("zh")).unwrap();
    assert_eq!(zh.title, "⏰ 任务 dws_sales 执行超时");

    // Fired well after the deadline (the gateway was down): marked late.
    let (_, _, late) = timeout_event(&timer, ms("2026-03-01T10:05:00Z")).unwrap();
    assert_eq!(late.data["late"], json!(true));
    assert_eq!(late.data["late_secs"], json!(300));
    let m = r.render(&late, None, Some("en")).unwrap();
    assert!(m.markdown.contains("(late:"), "{}", m.markdown);
}

#[test]
fn a_late_completion_becomes_finished_late() {
    let done = event(
        "task.failed",
        json!({ "run_id": "r1", "taskname": "dws_sales" }),
    );
    let e = finished_late_event(&done, ms("2026-03-01T07:00:00Z"), ms(NOW));
    assert_eq!(e.event_type, FINISHED_LATE);
    assert_eq!(e.data["outcome"], json!("failed"));
    assert_eq!(e.data["late_by"], json!("1h 0m 0s"));
    let r = Renderer::new(&BTreeMap::new(), RenderSettings::default()).unwrap();
    let m = r.render(&e, None, Some("en")).unwrap();
    assert_eq!(m.title, "🐢 dws_sales finished after its timeout");
    assert!(
        m.markdown.starts_with("**dws_sales** failed after"),
        "{}",
        m.markdown
    );
}
