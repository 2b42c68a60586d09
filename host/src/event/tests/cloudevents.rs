//! CloudEvents in all three modes: structured, batch and binary.

use super::*;

pub(super) fn structured(body: &Value) -> Result<Parsed, ParseError> {
    parse_events(
        &headers(&[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )]),
        body.to_string().as_bytes(),
        now(),
    )
}

pub(super) fn ce(extra: Value) -> Value {
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

pub(super) fn binary_headers(extra: &[(&str, &str)]) -> HeaderMap {
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
    use crate::event::cloudevents::decode_header;
    assert_eq!(decode_header(b"plain").unwrap(), "plain");
    assert_eq!(decode_header(b" %7e%7E ").unwrap(), "~~");
    assert_eq!(decode_header(b"100%").unwrap(), "100%");
    assert_eq!(decode_header(b"%zz%4").unwrap(), "%zz%4");
    assert_eq!(decode_header(b"\"a\\\\b\"").unwrap(), "a\\b");
    assert_eq!(decode_header(b"\"\"").unwrap(), "");
    assert!(decode_header(b"%FF").is_err());
    assert!(decode_header(b"%E2%82").is_err());
}
