//! Alertmanager webhook payloads: firing, resolved, severities, errors.

use super::*;

#[test]
fn alertmanager_firing_and_resolved() {
    let parsed = parse_alertmanager(&fixture("alertmanager-firing.json"), now()).unwrap();
    assert_eq!(parsed.format, Format::Alertmanager);
    assert!(parsed.batch);
    assert_eq!(parsed.items.len(), 2);

    let firing = parsed.items[0].as_ref().unwrap();
    assert_eq!(firing.event_type, "alert.firing");
    assert_eq!(firing.source, "alertmanager");
    assert_eq!(firing.severity, Severity::Critical);
    assert_eq!(
        firing.title.as_deref(),
        Some("Disk almost full on etl-worker-3")
    );
    assert_eq!(
        firing.message.as_deref(),
        Some("Only 4.2% of /var/lib/etl is free on etl-worker-3:9100.")
    );
    assert_eq!(firing.time, ts("2024-06-01T08:27:45.123456789Z"));
    assert!(
        firing
            .link
            .as_ref()
            .unwrap()
            .url
            .starts_with("http://prometheus.example.com:9090/graph?")
    );
    assert_eq!(firing.idempotency_key, None);
    assert_eq!(firing.id, None);
    assert_eq!(firing.labels["instance"], "etl-worker-3:9100");
    assert_eq!(firing.data["alertname"], "DiskSpaceLow");
    assert_eq!(firing.data["status"], "firing");
    assert_eq!(firing.data["receiver"], "carillon");
    assert_eq!(
        firing.data["externalURL"],
        "http://alertmanager.example.com:9093"
    );
    assert_eq!(firing.data["fingerprint"], "8d4e2c9b0f1a7e63");
    assert_eq!(firing.data["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        firing.data["groupLabels"],
        json!({"alertname": "DiskSpaceLow"})
    );
    assert_eq!(firing.data["commonLabels"]["severity"], "critical");
    assert_eq!(firing.data["commonAnnotations"], json!({}));
    assert_eq!(
        firing.data["annotations"]["runbook_url"],
        "https://runbooks.example.com/disk-space-low"
    );
    assert_eq!(
        firing.data["groupKey"],
        "{}/{severity=\"critical\"}:{alertname=\"DiskSpaceLow\"}"
    );
    for key in ["labels", "startsAt", "generatorURL", "truncatedAlerts"] {
        assert!(firing.data.contains_key(key), "{key}");
    }

    let resolved = parsed.items[1].as_ref().unwrap();
    assert_eq!(resolved.event_type, "alert.resolved");
    assert_eq!(resolved.severity, Severity::Success);
    assert_eq!(resolved.time, ts("2024-06-01T08:31:15.5Z"));
    assert_eq!(resolved.data["status"], "resolved");
}

#[test]
fn alertmanager_resolved_group() {
    let parsed = parse_alertmanager(&fixture("alertmanager-resolved.json"), now()).unwrap();
    let event = parsed.items[0].as_ref().unwrap();
    assert_eq!(event.event_type, "alert.resolved");
    assert_eq!(event.severity, Severity::Success);
    // No summary: the alert's name is the title.
    assert_eq!(event.title.as_deref(), Some("TaskRunnerDown"));
    assert_eq!(
        event.message.as_deref(),
        Some("The task runner on scheduler-0 was unreachable for 5 minutes.")
    );
    assert_eq!(event.time, ts("2024-06-01T01:12:30Z"));
    // An empty generatorURL is no link.
    assert_eq!(event.link, None);
}

fn alert_payload(alerts: Value) -> Vec<u8> {
    json!({
        "version": "4", "status": "firing", "receiver": "r", "groupKey": "{}:{}",
        "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am:9093", "alerts": alerts
    })
    .to_string()
    .into_bytes()
}

#[test]
fn alertmanager_times_fall_back_to_now() {
    let parsed = parse_alertmanager(
        &alert_payload(json!([
            {"status": "firing", "labels": {}, "startsAt": "0001-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
            {"status": "resolved", "labels": {}, "startsAt": "2024-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"},
            {"status": "firing", "labels": {}},
            {"status": "firing", "labels": {}, "startsAt": "garbage", "generatorURL": "not a url"}
        ])),
        now(),
    )
    .unwrap();
    for item in &parsed.items {
        let event = item.as_ref().unwrap();
        assert_eq!(event.time, now());
        assert_eq!(event.title, None);
        assert_eq!(event.link, None);
    }
    assert_eq!(
        parsed.items[2].as_ref().unwrap().severity,
        Severity::Warning
    );
}

#[test]
fn alertmanager_severity_vocabulary() {
    use crate::event::alertmanager::severity_of;
    for (label, expected) in [
        (Some("critical"), Severity::Critical),
        (Some("Page"), Severity::Critical),
        (Some("error"), Severity::Error),
        (Some("high"), Severity::Error),
        (Some("MAJOR"), Severity::Error),
        (Some("warning"), Severity::Warning),
        (Some("warn"), Severity::Warning),
        (Some("medium"), Severity::Warning),
        (Some("minor"), Severity::Warning),
        (Some("info"), Severity::Info),
        (Some("low"), Severity::Info),
        (Some("none"), Severity::Info),
        (Some("p1"), Severity::Warning),
        (None, Severity::Warning),
    ] {
        assert_eq!(severity_of(label), expected, "{label:?}");
    }
}

#[test]
fn alertmanager_payload_errors() {
    let errors = |body: Value| invalid(parse_alertmanager(body.to_string().as_bytes(), now()));
    assert_eq!(
        errors(json!({"version": "3", "status": "firing", "alerts": []})),
        [r#"/version: expected "4", got "3""#]
    );
    assert_eq!(
        errors(json!({"version": "4", "status": "pending", "commonLabels": {"a": 1}})),
        [
            "/alerts: is required but missing",
            "/commonLabels/a: expected a string, got a number",
            r#"/status: "pending" is not one of firing, resolved"#,
        ]
    );
    // A payload-level error reports the alerts' errors with it.
    assert_eq!(
        errors(json!({"version": 4, "status": "firing", "alerts": [{"status": "firing"}]})),
        [
            "/alerts/0/labels: is required but missing",
            r#"/version: expected "4", got 4"#
        ]
    );
    assert_eq!(
        errors(json!([])),
        ["expected an Alertmanager webhook payload (a JSON object), got an array"]
    );
    assert!(matches!(
        parse_alertmanager(b"not json", now()),
        Err(ParseError::Json { .. })
    ));
}

#[test]
fn alertmanager_bad_alert_fails_alone() {
    let parsed = parse_alertmanager(
        &alert_payload(json!([
            {"status": "firing", "labels": {"alertname": "A", "severity": "info"}},
            {"status": "exploded", "labels": {"n": 1}},
            "nope",
            {"status": "resolved", "labels": {"alertname": "B"}}
        ])),
        now(),
    )
    .unwrap();
    assert_eq!(parsed.items.len(), 4);
    let first = parsed.items[0].as_ref().unwrap();
    assert_eq!(first.severity, Severity::Info);
    assert_eq!(first.title.as_deref(), Some("A"));
    let second: Vec<String> = parsed.items[1]
        .as_ref()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        second,
        [
            "/alerts/1/labels/n: expected a string, got a number",
            r#"/alerts/1/status: "exploded" is not one of firing, resolved"#,
        ]
    );
    assert_eq!(
        parsed.items[2].as_ref().unwrap_err()[0].to_string(),
        "/alerts/2: expected an object, got a string"
    );
    assert_eq!(
        parsed.items[3].as_ref().unwrap().event_type,
        "alert.resolved"
    );
}
