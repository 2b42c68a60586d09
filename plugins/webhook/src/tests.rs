//! Native tests through the SDK harness: signing against the published
//! Standard Webhooks vectors, the body, config checks and answer classes.

use carillon_sdk::testing::{Harness, expect_http, sample_message};
use carillon_sdk::{DeliverError, HttpError, HttpResponse};
use serde_json::json;

use super::*;

#[test]
fn standard_webhooks_vectors() {
    // spec/standard-webhooks.md reference libraries (Python/Go, and Rust).
    let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            br#"{"test": 2432232314}"#
        ),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    let key = signing_key("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert_eq!(
        signature(
            &key,
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            br#"{"email":"test@example.com","username":"test_user"}"#
        ),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn signed_request_carries_the_three_headers() {
    let h = Harness::<Webhook>::new().at(1_614_265_330_000);
    let config = json!({
        "url": "https://hooks.example.com/in",
        "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "headers": { "Authorization": "Bearer t0ken" }
    });
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("webhook-id").as_deref(), Some("dlv_test"));
    assert_eq!(header("webhook-timestamp").as_deref(), Some("1614265330"));
    assert_eq!(header("Authorization").as_deref(), Some("Bearer t0ken"));
    let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        header("webhook-signature"),
        Some(signature(&key, "dlv_test", "1614265330", &request.body))
    );
}

#[test]
fn default_body_is_the_whole_message() {
    let h = Harness::<Webhook>::new();
    let config = json!({ "url": "http://127.0.0.1:9/hook" });
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        body,
        json!({
            "event_id": "evt_test",
            "delivery_id": "dlv_test",
            "title": "Nightly ETL succeeded",
            "markdown": "Task **orders_daily** finished in 42 s.",
            "text": "Task orders_daily finished in 42 s.",
            "severity": "success",
            "locale": "en",
            "link": { "url": "https://etl.example.com/tasks/42", "label": "Open task" },
            "mentions": [],
            "fields": [{ "name": "owner", "value": "alice" }],
            "table": null
        })
    );
    assert_eq!(request.method, "POST");
    assert!(
        !request
            .headers
            .iter()
            .any(|(n, _)| n.starts_with("webhook-"))
    );
}

/// Mentions and a table in the default body, byte for byte: keys sorted,
/// `value` absent for `all`, the condition as its display text.
#[test]
fn default_body_carries_mentions_and_table_with_sorted_keys() {
    use carillon_sdk::{Column, Comparison, Condition, Mention, Table};
    let mut message = sample_message();
    message.link = None;
    message.fields.clear();
    message.mentions = vec![Mention::All, Mention::Mobile("13800000000".into())];
    message.table = Some(Table {
        columns: vec![Column {
            key: "rate".into(),
            title: "Pass rate".into(),
            prefix: String::new(),
            suffix: "%".into(),
            condition: Some(Condition {
                op: Comparison::Ge,
                operand: "60".into(),
            }),
        }],
        rows: vec![vec!["72".into()]],
    });
    let ctx = Context {
        delivery_id: "dlv_test".into(),
        event_id: "evt_test".into(),
        attempt: 1,
        now_ms: 0,
    };
    let body = body::default_json(&ctx, &message);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with(r#"{"delivery_id":"#), "{text}");
    assert!(
        text.contains(r#""mentions":[{"kind":"all"},{"kind":"mobile","value":"13800000000"}]"#),
        "{text}"
    );
    assert!(
        text.contains(r#""table":{"columns":[{"condition":">= 60","key":"rate","prefix":"","suffix":"%","title":"Pass rate"}],"rows":[["72"]]}"#),
        "{text}"
    );
    assert!(text.contains(r#""link":null"#), "{text}");
}

#[test]
fn body_template_renders_with_json_escaping() {
    let h = Harness::<Webhook>::new();
    let config = json!({
        "url": "https://x.example/hook",
        "body_template": "{\"text\": {{ message.title | tojson }}, \"sev\": \"{{ message.severity }}\"}",
    });
    let mut message = sample_message();
    message.title = "say \"hi\"".into();
    let request = expect_http(h.render(&config, &message).unwrap());
    assert_eq!(
        request.body_text(),
        r#"{"text": "say \"hi\"", "sev": "success"}"#
    );
}

#[test]
fn config_problems_are_all_reported_with_paths() {
    let h = Harness::<Webhook>::new();
    let paths = h.issue_paths(&json!({
        "url": "ftp://x",
        "method": "GET",
        "headers": { "webhook-id": "x", "bad header": "y" },
        "signing_secret": "whsec_c2hvcnQ=",
        "body_template": "{{ unclosed",
    }));
    assert_eq!(
        paths,
        [
            "/url",
            "/method",
            "/headers/bad header",
            "/headers/webhook-id",
            "/signing_secret",
            "/body_template"
        ]
    );
    let unknown = h
        .validate(&json!({ "url": "https://x", "colour": "red" }))
        .unwrap_err();
    assert_eq!(unknown[0].path, "/colour");
    assert!(unknown[0].message.contains("colour"), "{unknown:?}");
    assert!(
        h.validate(&json!({ "url": "https://x.example/a?b=c" }))
            .is_ok()
    );
}

fn outcome_for(response: HttpResponse) -> Result<Receipt, DeliverError> {
    let h = Harness::<Webhook>::new().respond(move |_| Ok(response.clone()));
    h.deliver(
        &json!({ "url": "https://x.example/hook" }),
        &sample_message(),
    )
}

#[test]
fn answers_map_to_outcomes() {
    assert!(outcome_for(HttpResponse::text(200, "ok")).is_ok());
    assert!(outcome_for(HttpResponse::text(204, "")).is_ok());
    assert!(matches!(
        outcome_for(HttpResponse::text(429, "").with_header("retry-after", "12")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 12_000
    ));
    assert!(matches!(
        outcome_for(HttpResponse::text(503, "").with_header("retry-after", "3")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 3_000
    ));
    for status in [500, 502, 503, 504] {
        assert!(
            matches!(
                outcome_for(HttpResponse::text(status, "x")),
                Err(DeliverError::Retryable(_))
            ),
            "{status}"
        );
    }
    assert!(matches!(
        outcome_for(HttpResponse::text(410, "")),
        Err(DeliverError::Rejected(r)) if r.contains("gone")
    ));
    for status in [301, 302, 400, 401, 403, 404, 422] {
        assert!(
            matches!(
                outcome_for(HttpResponse::text(status, "")),
                Err(DeliverError::Rejected(_))
            ),
            "{status}"
        );
    }
}

#[test]
fn transport_failures_retry_and_grant_failures_do_not() {
    let h = Harness::<Webhook>::new().respond(|_| Err(HttpError::Timeout));
    let config = json!({ "url": "https://x.example/hook" });
    assert!(matches!(
        h.deliver(&config, &sample_message()),
        Err(DeliverError::Retryable(_))
    ));
    let h = Harness::<Webhook>::new().respond(|_| Err(HttpError::Denied("x.example".into())));
    assert!(matches!(
        h.deliver(&config, &sample_message()),
        Err(DeliverError::InvalidConfig(_))
    ));
    assert_eq!(h.requests().len(), 1);
}

#[test]
fn manifest_is_well_formed() {
    let m = Harness::<Webhook>::new().manifest();
    assert_eq!(m.name, "webhook");
    assert_eq!(m.endpoint_fields, ["/url"]);
}

#[test]
fn a_list_of_secrets_signs_with_each_in_order() {
    let h = Harness::<Webhook>::new().at(1_614_265_330_000);
    let (new, old) = (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    );
    let config = json!({ "url": "https://hooks.example.com/in", "signing_secret": [new, old] });
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    let header = request
        .headers
        .iter()
        .find(|(n, _)| n == "webhook-signature")
        .map(|(_, v)| v.clone())
        .unwrap();
    let sign = |secret: &str| {
        signature(
            &signing_key(secret).unwrap(),
            "dlv_test",
            "1614265330",
            &request.body,
        )
    };
    assert_eq!(header, format!("{} {}", sign(new), sign(old)));
}

#[test]
fn an_ed25519_key_signs_as_rfc_8032_says() {
    // RFC 8032 §7.1, TEST 1 (the empty message).
    let seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    let key = Key::parse(&format!("whsk_{seed}")).unwrap();
    assert_eq!(
        key.public_key().as_deref(),
        Some("whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
    );
    let header = signing::signature_header(&[key], "", "", b"");
    // The signed content of an empty id, timestamp and body is "..": not
    // the RFC's empty message, so check the signature with the RFC's key.
    let signature = header.strip_prefix("v1a,").unwrap();
    let bytes = carillon_sdk::sign::base64_decode(signature).unwrap();
    let public: [u8; 32] =
        carillon_sdk::sign::base64_decode("11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
            .unwrap()
            .try_into()
            .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(&bytes).unwrap();
    assert!(public.verify_strict(b"..", &signature).is_ok());
    // A 64-byte key pair whose halves do not belong together is refused.
    let mut pair = carillon_sdk::sign::base64_decode(seed).unwrap();
    pair.extend_from_slice(&[7u8; 32]);
    let bad = format!("whsk_{}", carillon_sdk::sign::base64_encode(&pair));
    assert!(Key::parse(&bad).is_err());
}

#[test]
fn every_bad_secret_of_a_list_is_named_by_its_index() {
    let h = Harness::<Webhook>::new();
    let good = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let paths = h.issue_paths(&json!({
        "url": "https://x.example",
        "signing_secret": [good, "whsec_c2hvcnQ=", "whsk_c2hvcnQ="],
    }));
    assert_eq!(paths, ["/signing_secret/1", "/signing_secret/2"]);
    let too_many = h.issue_paths(&json!({
        "url": "https://x.example",
        "signing_secret": [good, good, good, good, good],
    }));
    assert_eq!(too_many, ["/signing_secret"]);
}
