//! Tests of every input format, every error path, and of the published
//! schema against the parser.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use super::*;
use crate::message::{Comparison, Condition};

fn now() -> jiff::Timestamp {
    "2024-06-01T12:00:00Z".parse().unwrap()
}

fn ts(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value.as_bytes()).unwrap(),
        );
    }
    map
}

fn json_headers() -> HeaderMap {
    headers(&[("content-type", "application/json")])
}

fn native(body: &Value) -> Result<Parsed, ParseError> {
    parse_events(&json_headers(), body.to_string().as_bytes(), now())
}

/// The one event of a single-event request.
fn single(parsed: Result<Parsed, ParseError>) -> Event {
    let parsed = parsed.unwrap();
    assert!(!parsed.batch);
    assert_eq!(parsed.items.len(), 1);
    parsed.items.into_iter().next().unwrap().unwrap()
}

/// The errors of a single-event request, as `path: message` lines.
fn invalid(parsed: Result<Parsed, ParseError>) -> Vec<String> {
    match parsed {
        Err(ParseError::Invalid(errors)) => errors.iter().map(ToString::to_string).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn native_errors(body: Value) -> Vec<String> {
    invalid(native(&body))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/events/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap()
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

// ---------------------------------------------------------------- native

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
            Mention::Mobile("+8613800000000".into()),
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

// ---------------------------------------------------------------- schema

#[test]
fn schema_is_valid_draft_2020_12_and_compiles() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(schema).unwrap();
    jsonschema::meta::validate(alertmanager::schema()).unwrap();
    assert!(envelope_validator().is_ok());
}

fn envelope_validator() -> Result<jsonschema::Validator, String> {
    jsonschema::draft202012::new(schema()).map_err(|error| error.to_string())
}

/// Every property of the published schema has a title or a `$ref` to a
/// definition with one, and a description, so app developers can read it.
#[test]
fn schema_documents_every_property() {
    fn walk(node: &Value, path: &str, root: &Value, missing: &mut Vec<String>) {
        let Some(object) = node.as_object() else {
            return;
        };
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                let resolved = match property.get("$ref").and_then(Value::as_str) {
                    Some(reference) => root
                        .pointer(reference.trim_start_matches('#'))
                        .unwrap_or(property),
                    None => property,
                };
                for keyword in ["title", "description"] {
                    if resolved.get(keyword).is_none() && property.get(keyword).is_none() {
                        missing.push(format!("{path}/properties/{name}: {keyword}"));
                    }
                }
            }
        }
        for (key, child) in object {
            match child {
                Value::Object(_) => walk(child, &format!("{path}/{key}"), root, missing),
                Value::Array(items) => {
                    for (index, item) in items.iter().enumerate() {
                        walk(item, &format!("{path}/{key}/{index}"), root, missing);
                    }
                }
                _ => {}
            }
        }
    }
    let mut missing = Vec::new();
    walk(schema(), "", schema(), &mut missing);
    assert!(missing.is_empty(), "undocumented: {missing:#?}");
    assert!(schema()["title"].is_string() && schema()["description"].is_string());
}

/// Every `pattern` has a readable message instead of the regex.
#[test]
fn schema_patterns_have_messages() {
    fn patterns(node: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(object) => {
                if let Some(Value::String(pattern)) = object.get("pattern") {
                    out.push(pattern.clone());
                }
                object.values().for_each(|child| patterns(child, out));
            }
            Value::Array(items) => items.iter().for_each(|child| patterns(child, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    patterns(schema(), &mut found);
    patterns(alertmanager::schema(), &mut found);
    assert!(found.len() >= 5);
    for pattern in found {
        assert!(errors::has_pattern_message(&pattern), "{pattern}");
    }
}

/// The fixture is what the schema describes, and what the parser reads.
#[test]
fn schema_accepts_the_full_fixture() {
    let validator = envelope_validator().unwrap();
    assert!(validator.is_valid(&fixture_json("native-full.json")));
    assert!(!validator.is_valid(&json!({"type": "t"})));
}

#[test]
fn schema_and_parser_agree_on_patterns() {
    let validator = envelope_validator().unwrap();
    for condition in [
        ">= 60", "<1", " != ok ", "==x y", "<=  -3.5", ">", "=> 1", "= 1", "60", "", ">=   ",
        "<>5", "<==5", "!==5", "!= !x", ">= 6\n0", "> =", "\t<\t7\t",
    ] {
        let event = json!({"type": "t", "source": "s", "table": {
            "columns": [{"key": "k", "title": "K", "condition": condition}]
        }});
        assert_eq!(
            validator.is_valid(&event),
            checks::condition(condition).is_ok(),
            "{condition:?}"
        );
    }
    for locale in [
        "en",
        "zh-CN",
        "zh_CN",
        "pt-BR",
        "de-CH-1996",
        "e",
        "en-",
        "1en",
        "en US",
        "x-private",
    ] {
        let event = json!({"type": "t", "source": "s", "locale": locale});
        assert_eq!(
            validator.is_valid(&event),
            checks::locale(locale).is_ok(),
            "{locale:?}"
        );
    }
    for event_type in [
        "a.b",
        "a b",
        "a\tb",
        "a\u{85}b",
        "a\u{a0}b",
        "a\u{2028}b",
        "ü.ö",
        "a\u{7f}",
    ] {
        let event = json!({"type": event_type, "source": "s"});
        assert_eq!(
            validator.is_valid(&event),
            checks::event_type(event_type).is_ok(),
            "{event_type:?}"
        );
    }
}

// ---------------------------------------------------------------- CloudEvents

fn structured(body: &Value) -> Result<Parsed, ParseError> {
    parse_events(
        &headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]),
        body.to_string().as_bytes(),
        now(),
    )
}

fn ce(extra: Value) -> Value {
    let mut event = json!({
        "specversion": "1.0",
        "type": "com.example.someevent",
        "source": "/mycontext",
        "id": "A234-1234-1234"
    });
    if let (Value::Object(event), Value::Object(extra)) = (&mut event, extra) {
        event.extend(extra);
    }
    event
}

#[test]
fn cloudevent_structured_fixture() {
    let parsed = parse_events(
        &headers(&[("content-type", "application/cloudevents+json")]),
        &fixture("cloudevent-structured.json"),
        now(),
    )
    .unwrap();
    assert_eq!(parsed.format, Format::CloudEvent);
    let event = parsed.items.into_iter().next().unwrap().unwrap();
    assert_eq!(event.event_type, "com.example.etl.task.failed");
    assert_eq!(event.source, "/scheduler/prod");
    assert_eq!(event.id.as_deref(), Some("A234-1234-1234"));
    assert_eq!(event.idempotency_key.as_deref(), Some("A234-1234-1234"));
    assert_eq!(event.subject.as_deref(), Some("nightly-load"));
    assert_eq!(event.time, ts("2024-06-01T08:30:00Z"));
    assert_eq!(event.severity, Severity::Error);
    assert_eq!(
        event.labels,
        BTreeMap::from([
            ("attempt".to_owned(), "3".to_owned()),
            ("retrying".to_owned(), "false".to_owned()),
            ("team".to_owned(), "data".to_owned()),
        ])
    );
    assert_eq!(event.data["owner"], "alice");
    // `message` in the data becomes the message when nothing else set one.
    assert_eq!(
        event.message.as_deref(),
        Some("Connection to warehouse timed out after 300 s.")
    );
    assert_eq!(event.title, None);
}

#[test]
fn cloudevent_minimal_defaults() {
    let event = single(structured(&ce(json!({}))));
    assert_eq!(event.time, now());
    assert_eq!(event.severity, Severity::Info);
    assert!(event.data.is_empty() && event.labels.is_empty());
    assert_eq!(event.message, None);
}

#[test]
fn cloudevent_data_mapping() {
    let data = |extra: Value| single(structured(&ce(extra)));
    assert_eq!(
        Value::Object(data(json!({"data": [1, 2]})).data),
        json!({"value": [1, 2]})
    );
    assert_eq!(
        Value::Object(data(json!({"data": "just a string"})).data),
        json!({"value": "just a string"})
    );
    assert!(data(json!({"data": null})).data.is_empty());
    let text = data(json!({"datacontenttype": "text/markdown", "data": "**hi**"}));
    assert_eq!(text.message.as_deref(), Some("**hi**"));
    assert!(text.data.is_empty());
    assert_eq!(
        Value::Object(data(json!({"datacontenttype": "application/xml", "data": "<a/>"})).data),
        json!({"value": "<a/>"})
    );
    assert_eq!(
        Value::Object(
            data(json!({"datacontenttype": "application/vnd.api+json", "data": {"a": 1}})).data
        ),
        json!({"a": 1})
    );
    assert_eq!(
        Value::Object(data(json!({"data_base64": "AAEC"})).data),
        json!({"data_base64": "AAEC"})
    );
    // Extensions win over the data's own severity/title/message.
    let event = data(json!({"severity": "warning", "title": "From extension",
        "data": {"severity": "critical", "title": "From data", "message": "m"}}));
    assert_eq!(event.severity, Severity::Warning);
    assert_eq!(event.title.as_deref(), Some("From extension"));
    assert_eq!(event.message.as_deref(), Some("m"));
    let event = data(json!({"data": {"severity": "CRITICAL", "title": "From data"}}));
    assert_eq!(event.severity, Severity::Critical);
    assert_eq!(event.title.as_deref(), Some("From data"));
    // The data's vocabulary is the app's own: an unknown one is ignored.
    assert_eq!(
        data(json!({"data": {"severity": "P1"}})).severity,
        Severity::Info
    );
    let event = data(
        json!({"locale": "en_GB", "subject": "x", "time": "2024-01-01T00:00:00+01:00",
        "dataschema": "https://example.com/schema", "traceparent": "00-abc-def-01"}),
    );
    assert_eq!(event.locale.as_deref(), Some("en-GB"));
    assert_eq!(event.time, ts("2023-12-31T23:00:00Z"));
    assert_eq!(event.labels.keys().collect::<Vec<_>>(), ["traceparent"]);
}

#[test]
fn cloudevent_structured_errors() {
    let errors = |extra: Value| invalid(structured(&ce(extra)));
    assert_eq!(
        errors(json!({"specversion": "0.3"})),
        [r#"/specversion: "0.3" is not supported; Carillon reads CloudEvents specversion "1.0""#]
    );
    assert_eq!(
        errors(json!({"id": null, "source": "", "type": 7})),
        [
            "/id: is required but missing",
            "/source: must not be empty",
            "/type: expected a string, got a number"
        ]
    );
    assert_eq!(
        errors(json!({"severity": "fatal"})),
        [r#"/severity: "fatal" is not one of info, success, warning, error, critical"#]
    );
    assert_eq!(
        errors(json!({"data": {}, "data_base64": "AA=="})),
        ["/data_base64: cannot be sent together with data; send one of them"]
    );
    assert_eq!(
        errors(json!({"data_base64": "!!"})),
        ["/data_base64: is not valid Base64"]
    );
    assert_eq!(
        errors(json!({"data_base64": 5})),
        ["/data_base64: expected a Base64 string, got a number"]
    );
    assert_eq!(
        errors(json!({"my_ext": "x", "Team": "y"})),
        [
            r#"/Team: "Team" is not a CloudEvents attribute name (lowercase letters a-z and digits only)"#,
            r#"/my_ext: "my_ext" is not a CloudEvents attribute name (lowercase letters a-z and digits only)"#
        ]
    );
    assert_eq!(
        errors(json!({"nested": {"a": 1}})),
        ["/nested: extension attributes must be strings, numbers or booleans, got an object"]
    );
    assert_eq!(
        errors(json!({"type": "a\nb", "team": "x\u{0}"})),
        [
            "/team: must not contain control characters",
            "/type: must not contain control characters"
        ]
    );
    let time = errors(json!({"time": "tomorrow"}));
    assert!(
        time[0].starts_with(r#"/time: "tomorrow" is not an RFC 3339"#),
        "{time:?}"
    );
    assert_eq!(
        errors(json!({"id": "x".repeat(300)})),
        ["/id: is 300 characters long; the limit is 256"]
    );
    assert_eq!(
        invalid(structured(&json!([1]))),
        ["expected a CloudEvent as a JSON object, got an array"]
    );
}

#[test]
fn cloudevents_batch_fixture_mixed() {
    let parsed = parse_events(
        &headers(&[("content-type", "application/cloudevents-batch+json")]),
        &fixture("cloudevents-batch.json"),
        now(),
    )
    .unwrap();
    assert_eq!(parsed.format, Format::CloudEventBatch);
    assert!(parsed.batch);
    let first = parsed.items[0].as_ref().unwrap();
    assert_eq!(
        first.message.as_deref(),
        Some("Dataset **sales_daily** was refreshed.")
    );
    assert_eq!(first.time, ts("2024-06-01T08:31:00Z"));
    let second = parsed.items[1].as_ref().unwrap();
    assert_eq!(second.data["data_base64"], "AAECAwQF");
    let third = parsed.items[2].as_ref().unwrap_err();
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].path, "/2/specversion");
}

#[test]
fn cloudevents_batch_shape() {
    let batch = |body: &[u8]| {
        parse_events(
            &headers(&[("content-type", "application/cloudevents-batch+json")]),
            body,
            now(),
        )
    };
    assert!(batch(b"[]").unwrap().items.is_empty());
    assert_eq!(
        invalid(batch(b"{}")),
        [
            "expected a JSON array of CloudEvents (application/cloudevents-batch+json), got an object"
        ]
    );
    let parsed = batch(b"[null]").unwrap();
    assert_eq!(
        parsed.items[0].as_ref().unwrap_err()[0].to_string(),
        "/0: expected a CloudEvent object, got null"
    );
    let many = Value::Array(vec![ce(json!({})); MAX_BATCH + 1]).to_string();
    assert_eq!(
        invalid(batch(many.as_bytes())),
        ["a batch holds at most 1000 events; this one has 1001"]
    );
}

fn binary_headers(extra: &[(&str, &str)]) -> HeaderMap {
    let mut pairs = vec![
        ("ce-specversion", "1.0"),
        ("ce-type", "com.example.someevent"),
        ("ce-source", "/mycontext/subcontext"),
        ("ce-id", "1234-1234-1234"),
    ];
    pairs.extend_from_slice(extra);
    headers(&pairs)
}

#[test]
fn cloudevent_binary_mode() {
    let parsed = parse_events(
        &binary_headers(&[
            ("ce-time", "2018-04-05T03:56:24Z"),
            ("ce-subject", "larger%20context"),
            ("ce-title", "Euro%20%E2%82%AC%20%f0%9f%98%80"),
            ("ce-severity", "CRITICAL"),
            ("ce-team", "\"data \\\"core\\\"\""),
            ("ce-unneeded", "%41%42C"),
            ("content-type", "application/json; charset=utf-8"),
        ]),
        br#"{"appinfoA": "abc", "appinfoB": 123}"#,
        now(),
    )
    .unwrap();
    assert_eq!(parsed.format, Format::CloudEventBinary);
    assert!(!parsed.batch);
    let event = parsed.items.into_iter().next().unwrap().unwrap();
    assert_eq!(event.event_type, "com.example.someevent");
    assert_eq!(event.source, "/mycontext/subcontext");
    assert_eq!(event.idempotency_key.as_deref(), Some("1234-1234-1234"));
    assert_eq!(event.time, ts("2018-04-05T03:56:24Z"));
    assert_eq!(event.subject.as_deref(), Some("larger context"));
    assert_eq!(event.title.as_deref(), Some("Euro € 😀"));
    assert_eq!(event.severity, Severity::Critical);
    assert_eq!(event.labels["team"], "data \"core\"");
    assert_eq!(event.labels["unneeded"], "ABC");
    assert_eq!(
        Value::Object(event.data),
        json!({"appinfoA": "abc", "appinfoB": 123})
    );
}

#[test]
fn cloudevent_binary_bodies() {
    let body = |content_type: Option<&str>, body: &[u8]| {
        let extra: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        single(parse_events(&binary_headers(&extra), body, now()))
    };
    let text = body(
        Some("text/plain; charset=utf-8"),
        "Dataset **ok** ✓".as_bytes(),
    );
    assert_eq!(text.message.as_deref(), Some("Dataset **ok** ✓"));
    let binary = body(Some("application/octet-stream"), &[0, 1, 2, 255]);
    assert_eq!(binary.data["data_base64"], "AAEC/w==");
    let latin1 = body(Some("text/plain; charset=latin1"), &[0xE9]);
    assert_eq!(latin1.data["data_base64"], "6Q==");
    let untyped = body(None, b"raw");
    assert_eq!(untyped.data["data_base64"], "cmF3");
    assert_eq!(
        Value::Object(body(Some("application/json"), b"\"I'm just a string\"").data),
        json!({"value": "I'm just a string"})
    );
    assert!(body(Some("application/json"), b"").data.is_empty());
    assert!(body(Some("application/json"), b"null").data.is_empty());
    assert!(body(None, b"").data.is_empty());
    // Binary mode wins over the native format when ce-specversion is there.
    assert_eq!(
        body(Some("application/json"), b"{}").event_type,
        "com.example.someevent"
    );
}

#[test]
fn cloudevent_binary_errors() {
    let errors = |extra: &[(&str, &str)], body: &[u8]| {
        invalid(parse_events(&binary_headers(extra), body, now()))
    };
    assert_eq!(
        invalid(parse_events(
            &headers(&[
                ("ce-specversion", "1.0"),
                ("ce-type", "t"),
                ("content-type", "application/json")
            ]),
            b"{}",
            now()
        )),
        [
            "header:ce-id: is required but missing",
            "header:ce-source: is required but missing"
        ]
    );
    assert_eq!(
        errors(&[("ce-severity", "fatal")], b""),
        [r#"header:ce-severity: "fatal" is not one of info, success, warning, error, critical"#]
    );
    assert_eq!(
        errors(&[("ce-datacontenttype", "application/json")], b""),
        [
            "header:ce-datacontenttype: must not be sent in binary mode: the Content-Type header is the datacontenttype"
        ]
    );
    assert_eq!(
        errors(&[("ce-bad", "%C0%A0")], b""),
        ["header:ce-bad: is not valid UTF-8 after percent-decoding"]
    );
    assert_eq!(
        errors(&[("ce-team", "a"), ("ce-team", "b")], b""),
        ["header:ce-team: is repeated; send each CloudEvents attribute once"]
    );
    assert_eq!(
        errors(&[("ce-my-ext", "a"), ("ce-line", "a%0Ab")], b""),
        [
            "header:ce-line: must not contain control characters",
            r#"header:ce-my-ext: "my-ext" is not a CloudEvents attribute name (lowercase letters a-z and digits only)"#
        ]
    );
    assert_eq!(
        invalid(parse_events(
            &headers(&[
                ("ce-specversion", "0.3"),
                ("ce-type", "t"),
                ("ce-source", "s"),
                ("ce-id", "1")
            ]),
            b"",
            now()
        )),
        [
            r#"header:ce-specversion: "0.3" is not supported; Carillon reads CloudEvents specversion "1.0""#
        ]
    );
    match parse_events(
        &binary_headers(&[("content-type", "application/json")]),
        b"{oops",
        now(),
    ) {
        Err(ParseError::Json { line: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn structured_content_type_wins_over_ce_headers() {
    let mut headers = binary_headers(&[]);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/cloudevents+json"),
    );
    let body = ce(json!({"type": "from.body"})).to_string();
    let event = single(parse_events(&headers, body.as_bytes(), now()));
    assert_eq!(event.event_type, "from.body");
}

#[test]
fn header_decoding() {
    use super::cloudevents::decode_header;
    assert_eq!(decode_header(b"plain").unwrap(), "plain");
    assert_eq!(decode_header(b" %7e%7E ").unwrap(), "~~");
    assert_eq!(decode_header(b"100%").unwrap(), "100%");
    assert_eq!(decode_header(b"%zz%4").unwrap(), "%zz%4");
    assert_eq!(decode_header(b"\"a\\\\b\"").unwrap(), "a\\b");
    assert_eq!(decode_header(b"\"\"").unwrap(), "");
    assert!(decode_header(b"%FF").is_err());
    assert!(decode_header(b"%E2%82").is_err());
}

// ---------------------------------------------------------------- Alertmanager

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
    use super::alertmanager::severity_of;
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

// ---------------------------------------------------------------- never panic

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    /// Field names the parsers know, so random objects reach deep code.
    const KEYS: &[&str] = &[
        "type",
        "source",
        "id",
        "subject",
        "idempotency_key",
        "time",
        "severity",
        "title",
        "message",
        "data",
        "labels",
        "table",
        "columns",
        "rows",
        "key",
        "condition",
        "op",
        "operand",
        "mentions",
        "user_id",
        "email",
        "link",
        "url",
        "fields",
        "name",
        "value",
        "locale",
        "destinations",
        "specversion",
        "datacontenttype",
        "data_base64",
        "version",
        "status",
        "alerts",
        "annotations",
        "startsAt",
        "endsAt",
        "generatorURL",
        "x",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            prop_oneof![
                Just("1.0".to_owned()),
                Just("4".to_owned()),
                Just("all".to_owned()),
                Just(">= 60".to_owned()),
                Just("firing".to_owned()),
                Just("2024-06-01T00:00:00Z".to_owned()),
                Just("https://example.com".to_owned()),
                Just("info".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(
                    |entries| {
                        Value::Object(
                            entries
                                .into_iter()
                                .map(|(key, value)| (key.to_owned(), value))
                                .collect(),
                        )
                    }
                ),
            ]
        })
    }

    fn all_entry_points(body: &[u8], extra: &[(&str, &str)]) {
        for content_type in [
            "application/json",
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "text/plain",
        ] {
            let mut pairs = vec![("content-type", content_type)];
            pairs.extend_from_slice(extra);
            let _ = parse_events(&headers(&pairs), body, now());
        }
        let _ = parse_alertmanager(body, now());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
            all_entry_points(&body, &[]);
            all_entry_points(&body, &[("ce-specversion", "1.0")]);
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value()) {
            let body = value.to_string();
            all_entry_points(body.as_bytes(), &[]);
            for wrapped in [json!([value.clone()]), json!({"version": "4", "status": "firing", "alerts": [value.clone()]})] {
                all_entry_points(wrapped.to_string().as_bytes(), &[]);
            }
        }

        /// The parser never accepts what the published schema rejects.
        #[test]
        fn accepted_events_match_the_schema(value in json_value()) {
            let validator = envelope_validator().unwrap();
            if let Ok(parsed) = native(&value) && !parsed.batch && parsed.items[0].is_ok() {
                prop_assert!(validator.is_valid(&value));
            }
        }

        /// Arbitrary ce-* header bytes decode or fail cleanly.
        #[test]
        fn arbitrary_headers_never_panic(
            value in prop::collection::vec(any::<u8>(), 0..64),
            name in "[a-z0-9-]{1,12}",
        ) {
            if let (Ok(value), Ok(name)) = (
                HeaderValue::from_bytes(&value),
                HeaderName::from_bytes(format!("ce-{name}").as_bytes()),
            ) {
                let mut map = binary_headers(&[]);
                map.append(name, value);
                let _ = parse_events(&map, b"", now());
            }
        }
    }

    /// Well-formed events built from the schema's vocabulary are accepted.
    fn valid_event() -> impl Strategy<Value = Value> {
        (
            "[a-z]{1,8}(\\.[a-z]{1,8}){0,3}",
            "[a-zA-Z0-9 /:._-]{1,40}",
            prop::sample::select(vec!["info", "success", "warning", "error", "critical"]),
            prop::option::of("[ -~]{0,40}"),
            prop::collection::btree_map("[a-z]{1,6}", "[ -~]{0,10}", 0..4),
            prop::sample::select(vec!["<", "<=", ">", ">=", "==", "!="]),
            "[0-9a-z.]{1,6}",
            prop::collection::vec(prop::collection::vec(any::<i32>(), 0..3), 0..4),
        )
            .prop_map(|(event_type, source, severity, title, labels, op, operand, rows)| {
                let mut event = json!({
                    "type": event_type, "source": source, "severity": severity,
                    "labels": labels,
                    "table": {
                        "columns": [
                            {"key": "a", "title": "A", "condition": format!("{op} {operand}")},
                            {"key": "b", "title": "B", "condition": {"op": op, "operand": operand}},
                            {"key": "c", "title": "C"}
                        ],
                        "rows": rows
                    }
                });
                if let Some(title) = title {
                    event["title"] = Value::String(title);
                }
                event
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn valid_events_are_accepted(event in valid_event()) {
            let validator = envelope_validator().unwrap();
            prop_assert!(validator.is_valid(&event));
            let parsed = single(native(&event));
            prop_assert_eq!(parsed.event_type.as_str(), event["type"].as_str().unwrap());
            let table = parsed.table.unwrap();
            prop_assert_eq!(&table.columns[0].condition, &table.columns[1].condition);
            prop_assert!(table.rows.iter().all(|row| row.len() == 3));
        }
    }
}

/// Plugins get `\n` line endings only: a lone `\r` (which some chat apps
/// show as nothing and some as a line break) or `\r\n` in a title or
/// message becomes `\n`, whatever the input format.
#[test]
fn line_endings_in_title_and_message_are_normalised() {
    let event = single(native(&json!({
        "type": "t.x",
        "source": "s",
        "title": "one\rtwo\r\nthree",
        "message": "a\r\nb\rc\n\rd",
    })));
    assert_eq!(event.title.as_deref(), Some("one\ntwo\nthree"));
    assert_eq!(event.message.as_deref(), Some("a\nb\nc\n\nd"));

    let ce = parse_events(
        &headers(&[("content-type", "application/cloudevents+json")]),
        json!({
            "specversion": "1.0", "id": "1", "source": "s", "type": "t.x",
            "data": { "title": "x\ry", "message": "m\r\n" }
        })
        .to_string()
        .as_bytes(),
        now(),
    );
    let event = single(ce);
    assert_eq!(event.title.as_deref(), Some("x\ny"));
    assert_eq!(event.message.as_deref(), Some("m\n"));

    let am = parse_alertmanager(
        json!({
            "version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://am", "truncatedAlerts": 0,
            "alerts": [{
                "status": "firing", "labels": { "alertname": "A" },
                "annotations": { "summary": "s\rt", "description": "d\r\ne" },
                "startsAt": "2024-06-01T11:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://g", "fingerprint": "f"
            }]
        })
        .to_string()
        .as_bytes(),
        now(),
    )
    .unwrap();
    let event = am.items.into_iter().next().unwrap().unwrap();
    assert_eq!(event.title.as_deref(), Some("s\nt"));
    assert_eq!(event.message.as_deref(), Some("d\ne"));
}

/// An Alertmanager group of `alerts` alerts whose common annotation is
/// `common` bytes long.
fn alert_group(alerts: usize, common: usize) -> Vec<u8> {
    let alert = json!({
        "status": "firing", "labels": { "alertname": "A" }, "annotations": {},
        "startsAt": "2024-06-01T11:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://g", "fingerprint": "f"
    });
    json!({
        "version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
        "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": { "runbook": "r".repeat(common) },
        "externalURL": "http://am", "truncatedAlerts": 0,
        "alerts": vec![alert; alerts]
    })
    .to_string()
    .into_bytes()
}

#[test]
fn alertmanager_limits_refuse_before_building_events() {
    let limits = AlertLimits {
        max_alerts: 10,
        max_stored_bytes: 100_000,
    };
    let parse = |body: &[u8]| parse_alertmanager_within(body, now(), limits);
    assert_eq!(parse(&alert_group(10, 100)).unwrap().items.len(), 10);
    match parse(&alert_group(11, 0)) {
        Err(
            e @ ParseError::TooManyAlerts {
                count: 11,
                limit: 10,
            },
        ) => {
            assert!(e.to_string().starts_with("/alerts holds 11 alerts"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // 10 copies of a 20 KB annotation: ~200 KB from a ~21 KB request.
    match parse(&alert_group(10, 20_000)) {
        Err(e @ ParseError::TooMuchToStore { alerts: 10, .. }) => {
            assert!(e.to_string().contains("alertmanager_max_expansion"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    // Without limits (the plain parser) both are read.
    assert_eq!(
        parse_alertmanager(&alert_group(11, 20_000), now())
            .unwrap()
            .items
            .len(),
        11
    );
}
