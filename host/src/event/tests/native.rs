//! The native envelope: fields, defaults, every error path, batches, media types.

use super::*;

#[test]
fn native_minimal_event_gets_defaults() {
    let event = single(native(&json!({"type": "task.failed", "source": "etl"})));
    assert_eq!(event, Event::new("task.failed", "etl", now()));
}

#[test]
fn native_full_event_maps_every_field() {
    let parsed = parse_events(
        &headers(&[("content-type", "Application/JSON; charset=UTF-8")]),
        &fixture("native-full.json"),
        now(),
    )
    .unwrap();
    assert_eq!(parsed.format, Format::Native);
    let event = parsed.items.into_iter().next().unwrap().unwrap();
    assert_eq!(event.event_type, "task.failed");
    assert_eq!(event.source, "etl-scheduler");
    assert_eq!(event.id.as_deref(), Some("run-20240601-0042"));
    assert_eq!(event.subject.as_deref(), Some("nightly-load"));
    assert_eq!(
        event.idempotency_key.as_deref(),
        Some("nightly-load:2024-06-01")
    );
    assert_eq!(event.time, ts("2024-06-01T08:30:00Z"));
    assert_eq!(event.severity, Severity::Error);
    assert_eq!(event.title.as_deref(), Some("Nightly load failed"));
    assert!(event.message.unwrap().contains("**nightly load**"));
    assert_eq!(event.data["rows"], json!(0));
    assert_eq!(event.labels["env"], "prod");
    let table = event.table.unwrap();
    assert_eq!(table.columns.len(), 3);
    assert_eq!(table.columns[1].suffix, "%");
    assert_eq!(
        table.columns[1].condition,
        Some(Condition {
            op: Comparison::Ge,
            operand: "60".into()
        })
    );
    assert_eq!(
        table.columns[2].condition,
        Some(Condition {
            op: Comparison::Lt,
            operand: "500".into()
        })
    );
    assert_eq!(table.columns[0].condition, None);
    assert_eq!(
        table.rows,
        vec![
            vec!["extract".to_owned(), "98.5".into(), "120".into()],
            vec!["transform".to_owned(), "42".into(), "730".into()],
            vec!["load".to_owned(), String::new(), String::new()],
        ]
    );
    assert_eq!(
        event.mentions,
        vec![
            Mention::All,
            Mention::UserId("u-123".into()),
            Mention::Email("alice@example.com".into()),
            // Written as DingTalk and WeCom match it: no +86.
            Mention::Mobile("13800000000".into()),
        ]
    );
    assert_eq!(
        event.link,
        Some(Link {
            url: "https://scheduler.example.com/runs/42".into(),
            label: Some("View run".into())
        })
    );
    // Object-form fields keep the order they were written in.
    let fields: Vec<(&str, &str)> = event
        .fields
        .iter()
        .map(|field| (field.name.as_str(), field.value.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("Task", "nightly-load"),
            ("Attempts", "3"),
            ("Retried", "true")
        ]
    );
    assert_eq!(event.locale.as_deref(), Some("zh-CN"));
    assert_eq!(event.destinations, Some(vec!["data-team-lark".to_owned()]));
}

#[test]
fn native_fields_as_list_and_order_in_a_batch() {
    // Written by hand: `json!` would sort the keys before we see them.
    let body = r#"[
        {"type": "a", "source": "s", "fields": [{"name": "Z", "value": 1}, {"name": "A", "value": "x"}]},
        {"type": "b", "source": "s", "fields": {"zeta": "1", "alpha": false, "mid": 2.5, "zeta": 2}},
        {"type": "c", "source": "s"}
    ]"#;
    let parsed = parse_events(&json_headers(), body.as_bytes(), now()).unwrap();
    let names = |index: usize| -> Vec<String> {
        parsed.items[index]
            .as_ref()
            .unwrap()
            .fields
            .iter()
            .map(|field| format!("{}={}", field.name, field.value))
            .collect()
    };
    assert_eq!(names(0), ["Z=1", "A=x"]);
    // A repeated key keeps its first place and its last value, like JSON parsers do.
    assert_eq!(names(1), ["zeta=2", "alpha=false", "mid=2.5"]);
    assert!(names(2).is_empty());
}

#[test]
fn native_severity_message_names_the_choices() {
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "severity": "fatal"})),
        [r#"/severity: "fatal" is not one of info, success, warning, error, critical"#]
    );
    // One message per place: the enum says more than "expected a string".
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "severity": 5})),
        ["/severity: 5 is not one of info, success, warning, error, critical"]
    );
}

#[test]
fn native_required_fields() {
    assert_eq!(
        native_errors(json!({})),
        [
            "/source: is required but missing",
            "/type: is required but missing"
        ]
    );
}

#[test]
fn native_unknown_field_lists_known_ones() {
    let errors = native_errors(json!({"type": "t", "source": "s", "sevrity": "error"}));
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with(
            r#"/sevrity: unknown field "sevrity"; known fields: data, destinations, fields, id"#
        ),
        "{errors:?}"
    );
}

#[test]
fn native_type_and_source_rules() {
    assert_eq!(
        native_errors(json!({"type": "task failed", "source": ""})),
        [
            "/source: must not be empty",
            r#"/type: "task failed" must not contain whitespace or control characters"#
        ]
    );
    assert_eq!(
        native_errors(json!({"type": "a\u{7}b", "source": "s"})),
        [r#"/type: "a\u0007b" must not contain whitespace or control characters"#]
    );
    let long = "x".repeat(257);
    assert_eq!(
        native_errors(json!({"type": long, "source": "s"})),
        ["/type: is 257 characters long; the limit is 256"]
    );
    let ok = "é".repeat(256);
    single(native(&json!({"type": ok, "source": ok})));
    assert_eq!(
        native_errors(json!({"type": 5, "source": ["s"]})),
        [
            "/source: expected a string, got an array",
            "/type: expected a string, got a number"
        ]
    );
}

#[test]
fn native_time() {
    let event = single(native(
        &json!({"type": "t", "source": "s", "time": "2024-06-01T16:30:00.5+08:00"}),
    ));
    assert_eq!(event.time, ts("2024-06-01T08:30:00.5Z"));
    let errors = native_errors(json!({"type": "t", "source": "s", "time": "2024-06-01 16:30"}));
    assert_eq!(
        errors,
        [
            r#"/time: "2024-06-01 16:30" is not an RFC 3339 timestamp with an offset, such as "2024-06-01T08:30:00Z" (failed to find offset component, which is required for parsing a timestamp)"#
        ]
    );
}

#[test]
fn native_table_errors() {
    let errors = native_errors(json!({"type": "t", "source": "s", "table": {
        "columns": [
            {"key": "a", "title": "A", "condition": "~ 5"},
            {"key": "a", "title": "A again", "condition": {"op": "=>", "operand": "1"}},
            {"key": "b", "title": "B", "condition": ">="},
            {"key": "c"}
        ],
        "rows": [["1", "2", "3", "4", "5"], "row", [{"x": 1}], {"a": [1]}]
    }}));
    assert_eq!(
        errors,
        [
            r#"/table/columns/0/condition: "~ 5" is not a condition such as ">= 60" (an operator: <, <=, >, >=, ==, !=, then a value)"#,
            r#"/table/columns/1/condition/op: "=>" is not one of <, <=, >, >=, ==, !="#,
            r#"/table/columns/1/key: "a" is already the key of another column; keys must be unique"#,
            r#"/table/columns/2/condition: ">=" is not a condition such as ">= 60" (an operator: <, <=, >, >=, ==, !=, then a value)"#,
            "/table/columns/3/title: is required but missing",
            "/table/rows/0: has 5 cells but the table has 4 columns",
            "/table/rows/1: expected an array or an object, got a string",
            "/table/rows/2/0: expected a string, a number, a boolean or null, got an object",
            "/table/rows/3/a: expected a string, a number, a boolean or null, got an array",
        ]
    );
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "table": {"columns": []}})),
        ["/table/columns: must have at least 1 item"]
    );
}

#[test]
fn native_table_rows_are_display_strings() {
    let event = single(native(&json!({"type": "t", "source": "s", "table": {
        "columns": [{"key": "a", "title": "A", "prefix": "$"}, {"key": "b", "title": "B"}],
        "rows": [[true, null], [1e3], {"b": -2, "ignored": "x"}]
    }})));
    let table = event.table.unwrap();
    assert_eq!(table.columns[0].prefix, "$");
    assert_eq!(
        table.rows,
        [["true", ""], ["1000.0", ""], ["", "-2"]].map(|row| row.map(String::from).to_vec())
    );
}

#[test]
fn native_mention_errors() {
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "mentions": [
            "everyone",
            {"user_id": "u", "email": "e@x"},
            {"name": "bob"},
            {"email": "not-an-address"},
            {"mobile": "call me"},
            7
        ]})),
        [
            r#"/mentions/0: expected "all", got "everyone""#,
            "/mentions/1: must have at most 1 field",
            r#"/mentions/2/name: unknown field "name"; known fields: email, mobile, user_id"#,
            r#"/mentions/3/email: "not-an-address" is not an email address"#,
            r#"/mentions/4/mobile: "call me" is not a phone number (digits, with an optional leading +)"#,
            "/mentions/5: expected a string or an object, got a number",
        ]
    );
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "mentions": [{}]})),
        ["/mentions/0: must have at least 1 field"]
    );
    // Within the schema's pattern, but not a number anyone has.
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "mentions": [
            {"mobile": "+86 138"},
            {"mobile": "123"},
            {"mobile": "138 0013 8000"}
        ]})),
        [
            r#"/mentions/0/mobile: "+86 138" is too short for a mobile number after its country code +86"#,
            r#"/mentions/1/mobile: "123" is too short for a mobile number"#,
        ]
    );
}

#[test]
fn native_link_must_be_absolute_http() {
    for url in ["ftp://example.com/x", "/runs/42", "mailto:a@example.com"] {
        let errors = native_errors(json!({"type": "t", "source": "s", "link": {"url": url}}));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("/link/url: "), "{errors:?}");
    }
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "link": {"label": "x"}})),
        ["/link/url: is required but missing"]
    );
    let event = single(native(
        &json!({"type": "t", "source": "s", "link": {"url": "http://10.0.0.1:8080/a?b=c"}}),
    ));
    assert_eq!(event.link.unwrap().label, None);
}

#[test]
fn native_other_field_errors() {
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s",
            "labels": {"team": "data", "retry": 3},
            "data": [1],
            "fields": "x",
            "locale": "english please",
            "destinations": ["", 5],
            "title": null,
            "idempotency_key": ""
        })),
        [
            "/data: expected an object, got an array",
            "/destinations/0: must not be empty",
            "/destinations/1: expected a string, got a number",
            "/fields: expected an array or an object, got a string",
            "/idempotency_key: must not be empty",
            "/labels/retry: expected a string, got a number",
            r#"/locale: "english please" is not a language tag such as "en", "zh-CN" or "pt-BR""#,
            "/title: expected a string, got null",
        ]
    );
    assert_eq!(
        native_errors(
            json!({"type": "t", "source": "s", "fields": [{"name": "n"}, {"name": "", "value": {}}]})
        ),
        [
            "/fields/0/value: is required but missing",
            "/fields/1/name: must not be empty",
            "/fields/1/value: expected a string, a number or a boolean, got an object",
        ]
    );
}

#[test]
fn native_batch_answers_per_item() {
    let parsed = native(&json!([
        {"type": "ok", "source": "s"},
        {"type": "bad", "source": "s", "severity": "fatal", "time": "yesterday"},
        5,
        {"type": "ok.too", "source": "s", "severity": "critical"}
    ]))
    .unwrap();
    assert_eq!(parsed.format, Format::Native);
    assert!(parsed.batch);
    assert_eq!(parsed.items.len(), 4);
    assert_eq!(parsed.items[0].as_ref().unwrap().event_type, "ok");
    let errors = parsed.items[1].as_ref().unwrap_err();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].path, "/1/severity");
    assert_eq!(errors[1].path, "/1/time");
    assert_eq!(
        parsed.items[2].as_ref().unwrap_err(),
        &vec![FieldError::new(
            "/2",
            "expected an event object, got a number"
        )]
    );
    assert_eq!(
        parsed.items[3].as_ref().unwrap().severity,
        Severity::Critical
    );
}

#[test]
fn native_batch_limits() {
    let one = json!({"type": "t", "source": "s"});
    let parsed = native(&Value::Array(vec![one.clone(); MAX_BATCH])).unwrap();
    assert_eq!(parsed.items.len(), MAX_BATCH);
    assert!(parsed.items.iter().all(Result::is_ok));
    assert_eq!(
        invalid(native(&Value::Array(vec![one; MAX_BATCH + 1]))),
        ["a batch holds at most 1000 events; this one has 1001"]
    );
    let empty = native(&json!([])).unwrap();
    assert!(empty.batch);
    assert!(empty.items.is_empty());
}

#[test]
fn native_body_shape_and_json_errors() {
    assert_eq!(
        invalid(native(&json!("task.failed"))),
        ["expected an event object or an array of events (a batch), got a string"]
    );
    match parse_events(&json_headers(), b"{\"type\": \"t\",\n \"source\": }", now()) {
        Err(ParseError::Json {
            line,
            column,
            message,
        }) => {
            assert_eq!((line, column), (2, 12));
            assert_eq!(message, "expected value");
        }
        other => panic!("{other:?}"),
    }
    match parse_events(&json_headers(), b"  \n", now()) {
        Err(ParseError::Json { message, .. }) => assert_eq!(message, "the body is empty"),
        other => panic!("{other:?}"),
    }
    let with_bom =
        b"\xEF\xBB\xBF{\"type\": \"t\", \"source\": \"s\", \"fields\": {\"b\": 1, \"a\": 2}}";
    let event = single(parse_events(&json_headers(), with_bom, now()));
    assert_eq!(event.fields[0].name, "b");
}

#[test]
fn unsupported_media_types() {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/cloudevents+avro"),
        Some("application/cloudevents-batch+protobuf"),
    ] {
        let headers = match content_type {
            Some(value) => headers(&[("content-type", value)]),
            None => HeaderMap::new(),
        };
        match parse_events(&headers, b"{}", now()) {
            Err(error @ ParseError::UnsupportedMediaType { .. }) => {
                let text = error.to_string();
                assert!(text.contains(content_type.unwrap_or("")), "{text}");
                assert!(text.contains("application/json"), "{text}");
                assert!(text.contains("application/cloudevents+json"), "{text}");
                assert!(
                    text.contains("application/cloudevents-batch+json"),
                    "{text}"
                );
                assert!(text.contains("binary mode"), "{text}");
            }
            other => panic!("{content_type:?}: {other:?}"),
        }
    }
}

#[test]
fn error_display_and_serialization() {
    let error = ParseError::Invalid(vec![
        FieldError::new("/severity", "bad"),
        FieldError::new("", "worse"),
    ]);
    assert_eq!(error.to_string(), "invalid request: /severity: bad; worse");
    assert_eq!(
        serde_json::to_value(FieldError::new("/0/type", "m")).unwrap(),
        json!({"path": "/0/type", "message": "m"})
    );
    let error = ParseError::Json {
        line: 1,
        column: 2,
        message: "expected value".into(),
    };
    assert_eq!(
        error.to_string(),
        "the body is not valid JSON (line 1, column 2): expected value"
    );
    assert_eq!(Format::CloudEventBinary.as_str(), "cloudevent_binary");
}

#[test]
fn pointer_segments_are_escaped() {
    assert_eq!(
        native_errors(json!({"type": "t", "source": "s", "labels": {"a/b~c": 1}})),
        ["/labels/a~1b~0c: expected a string, got a number"]
    );
}
