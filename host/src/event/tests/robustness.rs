//! Inputs of any shape: parsing never panics.

use super::cloudevents::binary_headers;
use super::schema::envelope_validator;
use super::*;

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
