//! Native tests through the SDK harness: golden requests for every sample
//! message, the published signing vectors, answer classes, the size limit and
//! config checks.

#![allow(clippy::unwrap_used)]

use carillon_sdk::testing::{
    Harness, assert_rejected_with, check_golden_requests, expect_http, pretty_outgoing, sample,
    sample_message,
};
use carillon_sdk::{DeliverError, HttpError, HttpResponse, Receipt};
use serde_json::{Value, json};

use super::*;

const WEBHOOK: &str = "https://open.feishu.cn/open-apis/bot/v2/hook/0f8e-test-token";

fn configs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "card-signed",
            json!({ "webhook": WEBHOOK, "secret": "demo", "keywords": ["Carillon", "告警"] }),
        ),
        (
            "post",
            json!({ "webhook": WEBHOOK, "msg_type": "post", "mentions": ["ou_default"] }),
        ),
        ("text", json!({ "webhook": WEBHOOK, "msg_type": "text" })),
    ]
}

#[test]
fn golden_requests() {
    check_golden_requests::<Lark>(
        env!("CARGO_MANIFEST_DIR"),
        &configs(),
        MAX_PAYLOAD_BYTES,
        pretty_outgoing,
    );
}

#[test]
fn published_signing_vectors() {
    // docs/vendors/lark.md, "Test vectors" (Lark doc Java sample and Feishu
    // doc sample).
    assert_eq!(
        signature("100", "demo"),
        "jquNHnVOwmDRfw+vqTIrY5dooJAgi5EcRtLsQE4wfXg="
    );
    assert_eq!(
        signature("1599360473", "demo"),
        "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8="
    );
    // The DingTalk-shaped HMAC (key = secret, message = "ts\nsecret") is the
    // mistake that gets 19021; ours must not produce it.
    let wrong = "Al3fIG80paFjFaF1GYFq01nD+HwK+W12x7pPHOz3pJo=";
    assert_eq!(sign::hmac_sha256_base64(b"demo", b"100\ndemo"), wrong);
    assert_ne!(signature("100", "demo"), wrong);
}

#[test]
fn signature_uses_the_context_clock_in_seconds() {
    let h = Harness::<Lark>::new().at(1_599_360_473_999);
    let config = json!({ "webhook": WEBHOOK, "secret": "demo" });
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["timestamp"], "1599360473");
    assert_eq!(body["sign"], "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
    let unsigned = expect_http(
        h.render(&json!({ "webhook": WEBHOOK }), &sample_message())
            .unwrap(),
    );
    let body: Value = serde_json::from_slice(&unsigned.body).unwrap();
    assert!(body.get("sign").is_none() && body.get("timestamp").is_none());
}

#[test]
fn keyword_is_added_only_when_missing() {
    let h = Harness::<Lark>::new();
    let config = json!({ "webhook": WEBHOOK, "keywords": ["Carillon", "ETL"] });
    let mut message = sample_message();
    let body = |m: &Message| -> Value {
        serde_json::from_slice(&expect_http(h.render(&config, m).unwrap()).body).unwrap()
    };
    // "ETL" is in the title already.
    assert_eq!(
        body(&message)["card"]["header"]["title"]["content"],
        "Nightly ETL succeeded"
    );
    message.title = "Nightly job succeeded".into();
    message.markdown = "nothing to see".into();
    message.link = None;
    assert_eq!(
        body(&message)["card"]["header"]["title"]["content"],
        "Carillon Nightly job succeeded"
    );
    // A keyword only in a URL does not count (docs/vendors/lark.md#security).
    message.link = Some(carillon_sdk::Link {
        url: "https://carillon.example/ETL".into(),
        label: None,
    });
    assert!(
        body(&message)["card"]["header"]["title"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Carillon ")
    );
}

#[test]
fn message_text_cannot_mention_people() {
    let h = Harness::<Lark>::new();
    let mut message = sample_message();
    message.markdown = "hi <at id=all></at> and <AT user_id=\"all\">".into();
    let request = expect_http(h.render(&json!({ "webhook": WEBHOOK }), &message).unwrap());
    let text = request.body_text();
    assert!(!text.contains("<at id=all>"), "{text}");
    assert!(text.contains("&lt;at id=all&gt;"), "{text}");
    assert!(!text.to_ascii_lowercase().contains("<at"), "{text}");
}

#[test]
fn mentions_map_and_the_receipt_names_the_ones_lark_cannot_make() {
    let mut message = sample("mentions");
    message.mentions.push(carillon_sdk::Mention::UserId(
        "ou_7d8a6e6df7621556ce0d21922b676706".into(),
    ));
    let h = Harness::<Lark>::new().respond(|_| {
        Ok(HttpResponse::json(
            200,
            &json!({ "code": 0, "msg": "success", "data": {} }),
        ))
    });
    let receipt = h.deliver(&json!({ "webhook": WEBHOOK }), &message).unwrap();
    let text = h.requests()[0].body_text();
    assert!(
        text.contains("<at id=all></at> <at id=ou_7d8a6e6df7621556ce0d21922b676706></at>"),
        "{text}"
    );
    // `u_1001` is not an open_id: it would notify nobody.
    assert!(!text.contains("u_1001"), "{text}");
    assert!(!text.contains("oncall@example.com") && !text.contains("13800000000"));
    for needle in [
        "not mentioned: 1 by user id that is not an open_id",
        "not mentioned: 1 by email address",
        "not mentioned: 1 by phone number",
    ] {
        assert!(receipt.detail.contains(needle), "{}", receipt.detail);
    }
}

#[test]
fn standing_mentions_by_email_or_other_ids_are_refused_up_front() {
    let issues = Harness::<Lark>::new()
        .validate(&json!({
            "webhook": WEBHOOK,
            "mentions": ["all", "ou_ok", "oncall@example.com", "u_1001"],
        }))
        .unwrap_err();
    assert_eq!(issues.len(), 2, "{issues:?}");
    assert_eq!(issues[0].path, "/mentions/2");
    assert!(
        issues[0].message.contains("cannot mention by email"),
        "{issues:?}"
    );
    assert_eq!(issues[1].path, "/mentions/3");
    assert!(issues[1].message.contains("notifies nobody"), "{issues:?}");
}

#[test]
fn long_message_fits_with_a_note() {
    let long = sample("long");
    assert!(long.markdown.len() > MAX_PAYLOAD_BYTES);
    for (name, config) in configs() {
        let h = Harness::<Lark>::new();
        let request = expect_http(h.render(&config, &long).unwrap());
        assert!(request.body.len() <= MAX_PAYLOAD_BYTES, "{name}");
        assert!(
            request.body.len() > MAX_PAYLOAD_BYTES - 1_000,
            "{name}: wasteful"
        );
        assert!(request.body_text().contains("(truncated "), "{name}");
        // Every partition line kept is whole.
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let shown = render::visible_text(&body);
        assert!(!shown.contains("`p0600"), "{name}");
    }
}

#[test]
fn big_tables_lose_rows_with_a_note() {
    let mut message = sample("table");
    let table = message.table.as_mut().unwrap();
    let rows = table.rows.clone();
    table.rows = (0..2_000).map(|i| rows[i % 3].clone()).collect();
    let h = Harness::<Lark>::new();
    let request = expect_http(h.render(&json!({ "webhook": WEBHOOK }), &message).unwrap());
    assert!(request.body.len() <= MAX_PAYLOAD_BYTES);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let elements = body["card"]["elements"].as_array().unwrap();
    let table = elements.iter().find(|e| e["tag"] == "table").unwrap();
    let kept = table["rows"].as_array().unwrap().len();
    assert!(kept > 10 && kept < 2_000, "{kept}");
    assert_eq!(table["page_size"], 10);
    assert!(
        request
            .body_text()
            .contains(&format!("… {} more rows", 2_000 - kept))
    );
    // Chinese bodies are cut on character boundaries, with a Chinese note.
    let mut cjk = sample("cjk");
    cjk.markdown = "告警内容。".repeat(3_000);
    let request = expect_http(h.render(&json!({ "webhook": WEBHOOK }), &cjk).unwrap());
    assert!(request.body.len() <= MAX_PAYLOAD_BYTES);
    assert!(request.body_text().contains("已截断"));
}

fn outcome(response: HttpResponse) -> Result<Receipt, DeliverError> {
    let config = json!({ "webhook": WEBHOOK, "secret": "s" });
    Harness::<Lark>::new().outcome(&config, response)
}

#[test]
fn answers_map_to_outcomes() {
    let ok = outcome(HttpResponse::json(
        200,
        &json!({"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}),
    ));
    assert!(ok.is_ok(), "{ok:?}");
    // Legacy pair only.
    assert!(
        outcome(HttpResponse::json(
            200,
            &json!({"Extra":null,"StatusCode":0,"StatusMessage":"success"})
        ))
        .is_ok()
    );
    let rejected = |body: Value, status: u16, needle: &str| {
        assert_rejected_with(outcome(HttpResponse::json(status, &body)), &[needle]);
    };
    rejected(
        json!({"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}),
        200,
        "code 19021: sign match fail",
    );
    rejected(
        json!({"code":19022,"msg":"Ip Not Allowed"}),
        200,
        "code 19022: Ip Not Allowed",
    );
    rejected(
        json!({"code":19024,"msg":"Key Words Not Found"}),
        200,
        "code 19024: Key Words Not Found",
    );
    rejected(
        json!({"code":9499,"msg":"Bad Request","data":{}}),
        400,
        "code 9499",
    );
    rejected(
        json!({"code":19002,"msg":"params error, msg_type need"}),
        200,
        "19002",
    );
    rejected(
        json!({"code":12345,"msg":"something new"}),
        200,
        "code 12345",
    );
    assert!(matches!(
        outcome(HttpResponse::json(200, &json!({"code":19001,"msg":"param invalid: incoming webhook access token invalid"}))),
        Err(DeliverError::InvalidConfig(r)) if r.contains("19001")
    ));
    assert!(matches!(
        outcome(HttpResponse::json(200, &json!({"code":11232,"data":{},"msg":"frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]"}))),
        Err(DeliverError::RateLimited(l)) if l.after_ms == RATE_LIMIT_WAIT_MS && l.reason.contains("11232")
    ));
    assert!(matches!(
        outcome(HttpResponse::json(400, &json!({"code":9499,"msg":"too many request","data":{}}))),
        Err(DeliverError::RateLimited(l)) if l.reason.contains("9499")
    ));
    assert!(matches!(
        outcome(HttpResponse::text(429, "").with_header("retry-after", "3")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 3_000
    ));
    assert!(matches!(
        outcome(HttpResponse::json(429, &json!({"code":99991400,"msg":"request trigger frequency limit"})).with_header("x-ogw-ratelimit-reset", "7")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == 7_000
    ));
    for status in [500, 502, 503] {
        assert!(
            matches!(
                outcome(HttpResponse::text(status, "upstream error")),
                Err(DeliverError::Retryable(_))
            ),
            "{status}"
        );
    }
    assert!(matches!(
        outcome(HttpResponse::json(500, &json!({"code":1,"msg":"internal"}))),
        Err(DeliverError::Retryable(_))
    ));
    // HTTP 200 alone is not success.
    assert!(matches!(
        outcome(HttpResponse::text(200, "<html>captive portal</html>")),
        Err(DeliverError::Rejected(_))
    ));
}

#[test]
fn transport_failures_retry() {
    let h = Harness::<Lark>::new().respond(|_| Err(HttpError::Timeout));
    assert!(matches!(
        h.deliver(&json!({ "webhook": WEBHOOK }), &sample_message()),
        Err(DeliverError::Retryable(_))
    ));
}

#[test]
fn config_problems_are_all_reported_with_paths() {
    let h = Harness::<Lark>::new();
    let paths = h.issue_paths(&json!({
        "webhook": "https://open.feishu.cn/open-apis/bot/v2/hook/",
        "secret": " ",
        "keywords": ["a", "", "c", "d", "e", "f", "g", "h", "i", "j", "k"],
        "mentions": ["ou_ok", "bad id>"],
        "locale": "zh_CN!",
    }));
    assert_eq!(
        paths,
        [
            "/webhook",
            "/secret",
            "/keywords",
            "/keywords/1",
            "/mentions/1",
            "/locale"
        ]
    );
    let issues = h.validate(&json!({ "webhook": "ftp://x" })).unwrap_err();
    assert_eq!(issues[0].path, "/webhook");
    let unknown = h
        .validate(&json!({ "webhook": WEBHOOK, "colour": "red" }))
        .unwrap_err();
    assert_eq!(unknown[0].path, "/colour");
    let bad_type = h
        .validate(&json!({ "webhook": WEBHOOK, "msg_type": "image" }))
        .unwrap_err();
    assert_eq!(bad_type[0].path, "/msg_type");
    assert!(h.validate(&json!({ "webhook": WEBHOOK })).is_ok());
    assert!(
        h.validate(&json!({ "webhook": "http://127.0.0.1:8080/open-apis/bot/v2/hook/t1" }))
            .is_ok()
    );
}

#[test]
fn manifest_is_well_formed() {
    let m = Harness::<Lark>::new().manifest();
    assert_eq!(m.name, "lark");
    assert_eq!(m.endpoint_fields, ["/webhook"]);
    assert_eq!(m.secret_fields, ["/secret", "/webhook"]);
    assert_eq!(m.max_payload_bytes, 20_000);
    assert_eq!(m.rate_limits.len(), 2);
    let schema: Value = serde_json::from_str(&m.config_schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
