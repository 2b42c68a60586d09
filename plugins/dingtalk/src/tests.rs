//! Native tests through the SDK harness: golden requests for every sample
//! message, signing against the reference vectors, keyword and size
//! guarantees, config checks and every answer class.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure.

use carillon_sdk::testing::{
    Harness, assert_invalid_config_with, assert_rejected_with, check_golden_requests,
    errcode_answer, expect_http, json_body, pretty_outgoing, sample, sample_message,
};
use carillon_sdk::{DeliverError, HttpError, HttpResponse, Mention};
use serde_json::{Value, json};

use super::*;

const HOOK: &str = "https://oapi.dingtalk.com/robot/send?access_token=tok123";
const SECRET: &str = "SEC000000000000000000000";

/// The visible text of any message type.
fn content(body: &Value) -> &str {
    body["markdown"]["text"]
        .as_str()
        .or(body["actionCard"]["text"].as_str())
        .or(body["text"]["content"].as_str())
        .unwrap()
}

fn configs() -> Vec<(&'static str, Value)> {
    vec![
        ("default", json!({ "webhook": HOOK })),
        (
            "signed-keywords",
            json!({ "webhook": HOOK, "secret": SECRET, "keywords": ["告警", "Carillon"] }),
        ),
        (
            "text",
            json!({ "webhook": HOOK, "msg_type": "text", "at_mobiles": ["+852-12345678"] }),
        ),
    ]
}

#[test]
fn golden_requests() {
    check_golden_requests::<DingTalk>(
        env!("CARGO_MANIFEST_DIR"),
        &configs(),
        MAX_BODY_BYTES,
        pretty_outgoing,
    );
}

#[test]
fn signatures_match_the_reference_vectors() {
    // docs/vendors/dingtalk.md, "Test vectors".
    assert_eq!(
        signature(SECRET, 1_700_000_000_000),
        "1zJ/w34EOSVAYr7cu7Vo8LnebmK2/GrCgegtr8mQrqM="
    );
    assert_eq!(
        signature(SECRET, 1_700_000_000_004),
        "dYgH6xrRTcunrT2tx3/D89WF+vvbPlpI9FuEGVpjJbw="
    );
    assert_eq!(
        signature("this is secret", 1_577_808_000_000),
        "ijHEivi6YiCNPZOq4hZstmvZ3sPfbioAiMhP30ae7W0="
    );
    assert_eq!(
        signed_url(HOOK, SECRET, 1_700_000_000_004),
        format!(
            "{HOOK}&timestamp=1700000000004&sign=dYgH6xrRTcunrT2tx3%2FD89WF%2BvvbPlpI9FuEGVpjJbw%3D"
        )
    );
}

#[test]
fn render_signs_with_the_context_clock() {
    let config = json!({ "webhook": HOOK, "secret": SECRET });
    let h = Harness::<DingTalk>::new().at(1_700_000_000_000);
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    assert_eq!(
        request.url,
        format!(
            "{HOOK}&timestamp=1700000000000&sign=1zJ%2Fw34EOSVAYr7cu7Vo8LnebmK2%2FGrCgegtr8mQrqM%3D"
        )
    );
    let h = Harness::<DingTalk>::new().at(1_700_000_000_004);
    let request = expect_http(h.render(&config, &sample_message()).unwrap());
    assert!(request.url.ends_with("%2BvvbPlpI9FuEGVpjJbw%3D"));
    let unsigned = json!({ "webhook": HOOK });
    let request = expect_http(h.render(&unsigned, &sample_message()).unwrap());
    assert_eq!(request.url, HOOK);
}

#[test]
fn keyword_is_added_to_the_title_only_when_missing() {
    let h = Harness::<DingTalk>::new();
    let config = json!({ "webhook": HOOK, "keywords": ["告警", "ETL"] });
    // The sample title contains "ETL": nothing is added.
    let body = json_body(&expect_http(h.render(&config, &sample_message()).unwrap()));
    assert!(
        !body["actionCard"]["text"]
            .as_str()
            .unwrap()
            .contains("告警")
    );
    let mut message = sample_message();
    message.title = "Disk full".into();
    message.markdown = "on db-1".into();
    message.link = None;
    let body = json_body(&expect_http(h.render(&config, &message).unwrap()));
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.starts_with("#### ✅ 告警 Disk full"), "{text}");
    assert_eq!(body["markdown"]["title"], "告警 Disk full");
}

#[test]
fn a_titles_own_marker_is_the_only_one() {
    let h = Harness::<DingTalk>::new();
    let config = json!({ "webhook": HOOK, "keywords": ["告警"] });
    let mut message = sample_message();
    message.title = "❌ nightly_load failed".into();
    message.severity = carillon_sdk::Severity::Error;
    message.link = None;
    let body = json_body(&expect_http(h.render(&config, &message).unwrap()));
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(
        text.starts_with("#### ❌ 告警 nightly\\_load failed"),
        "{text}"
    );
    assert_eq!(text.matches('❌').count(), 1, "{text}");
    assert_eq!(body["markdown"]["title"], "❌ 告警 nightly_load failed");
}

#[test]
fn mentions_are_mapped_and_written_into_the_text() {
    let h = Harness::<DingTalk>::new();
    let config = json!({ "webhook": HOOK, "at_user_ids": ["lead"] });
    let message = sample("mentions");
    let body = json_body(&expect_http(h.render(&config, &message).unwrap()));
    assert_eq!(
        body["msgtype"], "markdown",
        "mentions need markdown, not a card"
    );
    assert_eq!(
        body["at"],
        json!({ "atMobiles": ["13800000000"], "atUserIds": ["lead", "u_1001"], "isAtAll": true })
    );
    let text = body["markdown"]["text"].as_str().unwrap();
    assert!(text.ends_with("@13800000000 @lead @u_1001"), "{text}");
    assert!(!text.contains("oncall@example.com"));
    assert!(h.warnings().iter().any(|line| line.contains("email")));
    // A forced action card cannot @: a message that mentions someone goes
    // as Markdown, and the receipt says so.
    let card = json!({ "webhook": HOOK, "msg_type": "action_card" });
    let h = Harness::<DingTalk>::new().respond(|_| Ok(errcode_answer(0, "ok")));
    let receipt = h.deliver(&card, &message).unwrap();
    let body = json_body(&h.requests()[0]);
    assert_eq!(body["msgtype"], "markdown");
    assert_eq!(body["at"]["isAtAll"], true);
    assert!(
        receipt
            .detail
            .contains("sent as markdown: DingTalk action cards cannot @"),
        "{}",
        receipt.detail
    );
    assert!(
        receipt.detail.contains("not mentioned: 1 by email address"),
        "{}",
        receipt.detail
    );
    // Standing mentions with a forced action card are refused up front.
    let issues = Harness::<DingTalk>::new()
        .validate(&json!({ "webhook": HOOK, "msg_type": "action_card", "at_all": true }))
        .unwrap_err();
    assert!(issues.iter().any(|i| i.path == "/msg_type"), "{issues:?}");
}

#[test]
fn long_message_fits_with_a_note() {
    let long = sample("long");
    for config in [
        json!({ "webhook": HOOK }),
        json!({ "webhook": HOOK, "msg_type": "text" }),
    ] {
        let h = Harness::<DingTalk>::new();
        let request = expect_http(h.render(&config, &long).unwrap());
        assert!(request.body.len() <= MAX_BODY_BYTES);
        assert!(request.body.len() > MAX_BODY_BYTES - 200, "uses the room");
        let body = json_body(&request);
        let text = content(&body);
        assert!(text.contains("(truncated "), "{text}");
    }
    // CJK: trimming never cuts a character and keeps the note.
    let mut cjk = long.clone();
    cjk.locale = "zh-CN".into();
    cjk.markdown = "告警内容".repeat(3000);
    let h = Harness::<DingTalk>::new();
    let request = expect_http(h.render(&json!({ "webhook": HOOK }), &cjk).unwrap());
    assert!(request.body.len() <= MAX_BODY_BYTES);
    let text = String::from_utf8(request.body).unwrap();
    assert!(text.contains("已截断"));
}

#[test]
fn big_tables_keep_the_rows_that_fit() {
    let mut message = sample("table");
    if let Some(t) = message.table.as_mut() {
        for i in 0..2000 {
            t.rows
                .push(vec![format!("check_{i}"), "75".into(), "0.10".into()]);
        }
    }
    let h = Harness::<DingTalk>::new();
    let request = expect_http(h.render(&json!({ "webhook": HOOK }), &message).unwrap());
    assert!(request.body.len() <= MAX_BODY_BYTES);
    let text = json_body(&request)["actionCard"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("- Check: completeness, Score: 92.5% ✓, Cost: $1.20"));
    assert!(text.contains(" more rows"), "{text}");
}

#[test]
fn config_problems_are_all_reported_with_paths() {
    let h = Harness::<DingTalk>::new();
    let paths = h.issue_paths(&json!({
        "webhook": "https://oapi.dingtalk.com/robot/send?timestamp=1",
        "secret": "abc",
        "keywords": ["", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"],
        "at_mobiles": ["13800000000", "phone"],
        "at_user_ids": ["ok", "has space"],
        "locale": "zh CN",
    }));
    assert_eq!(
        paths,
        [
            "/webhook",
            "/secret",
            "/keywords",
            "/keywords/0",
            "/at_mobiles/1",
            "/at_user_ids/1",
            "/locale"
        ]
    );
    let issues = h
        .validate(&json!({ "webhook": "https://oapi.dingtalk.com/robot/send" }))
        .unwrap_err();
    assert!(issues[0].message.contains("access_token"));
    let unknown = h
        .validate(&json!({ "webhook": HOOK, "colour": "red" }))
        .unwrap_err();
    assert_eq!(unknown[0].path, "/colour");
    let wrong = h
        .validate(&json!({ "webhook": HOOK, "msg_type": "feed_card" }))
        .unwrap_err();
    assert_eq!(wrong[0].path, "/msg_type");
    assert!(
        h.validate(&json!({
            "webhook": "http://127.0.0.1:8080/robot/send?access_token=t1",
            "secret": SECRET,
            "keywords": ["告警"],
            "msg_type": "text",
            "at_mobiles": ["+852-12345678"],
            "at_user_ids": ["u1"],
            "at_all": true,
            "locale": "zh-CN"
        }))
        .is_ok()
    );
}

fn outcome_for(response: HttpResponse) -> Result<Receipt, DeliverError> {
    Harness::<DingTalk>::new().outcome(&json!({ "webhook": HOOK }), response)
}

#[test]
fn answers_map_to_outcomes() {
    assert!(outcome_for(errcode_answer(0, "ok")).is_ok());
    for (code, msg) in [
        (130101, "send too fast, exceed 20 times per minute"),
        (410100, "发送速度太快而限流"),
    ] {
        assert!(
            matches!(
                outcome_for(errcode_answer(code, msg)),
                Err(DeliverError::RateLimited(l)) if l.after_ms == THROTTLE_MS && l.reason.contains(&code.to_string())
            ),
            "{code}"
        );
    }
    assert!(matches!(
        outcome_for(errcode_answer(-1, "系统繁忙")),
        Err(DeliverError::Retryable(r)) if r.contains("-1")
    ));
    for status in [500, 502, 503] {
        assert!(matches!(
            outcome_for(HttpResponse::text(status, "bad gateway")),
            Err(DeliverError::Retryable(_))
        ));
    }
    let cases = [
        (
            310000,
            "keywords not in content, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
            "keywords",
        ),
        (
            310000,
            "description:关键词不匹配;solution:请联系群管理员查看此机器人的关键词，并在发送的信息中包含此关键词;",
            "keywords",
        ),
        (310000, "sign not match, more: [...]", "secret"),
        (310000, "invalid timestamp, more: [...]", "clock"),
        (310000, "ip 1.2.3.4 not in whitelist", "allowlist"),
        (460101, "message too long, exceed 20000 bytes", "20000"),
        (101002, "message is too long", "20000"),
        (400105, "不支持的消息类型", "400105"),
        (430103, "unsafe", "unsafe"),
    ];
    for (code, msg, hint) in cases {
        let errcode = format!("errcode {code}");
        assert_rejected_with(
            outcome_for(errcode_answer(code, msg)),
            &[&errcode, msg, hint],
        );
    }
    // A wrong or revoked token is the destination's fault, not the
    // message's: invalid-config, which pauses the destination.
    for (code, msg) in [
        (300001, "token is not exist"),
        (300005, "token is not exist"),
        (400101, "access_token不存在"),
    ] {
        let errcode = format!("errcode {code}");
        assert_invalid_config_with(
            outcome_for(errcode_answer(code, msg)),
            &[&errcode, msg, "access_token"],
        );
    }
    assert!(matches!(
        outcome_for(HttpResponse::text(200, "<html>proxy</html>")),
        Err(DeliverError::Rejected(_))
    ));
    assert!(matches!(
        outcome_for(HttpResponse::text(404, "")),
        Err(DeliverError::Rejected(_))
    ));
}

#[test]
fn transport_failures_retry() {
    let h = Harness::<DingTalk>::new().respond(|_| Err(HttpError::Timeout));
    assert!(matches!(
        h.deliver(&json!({ "webhook": HOOK }), &sample_message()),
        Err(DeliverError::Retryable(_))
    ));
}

#[test]
fn manifest_is_well_formed() {
    let m = Harness::<DingTalk>::new().manifest();
    assert_eq!(m.name, "dingtalk");
    assert_eq!(m.endpoint_fields, ["/webhook"]);
    assert_eq!(m.secret_fields, ["/secret", "/webhook"]);
    assert_eq!(m.allowed_hosts, ["oapi.dingtalk.com"]);
    assert_eq!(m.max_payload_bytes, 20_000);
    assert_eq!(m.rate_limits[0].requests, 20);
    assert_eq!(m.rate_limits[0].window_ms, 60_000);
    let schema: Value = serde_json::from_str(&m.config_schema).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}

#[test]
fn mention_kinds_are_all_handled() {
    // Guard: a new Mention case must be mapped deliberately.
    for m in [
        Mention::All,
        Mention::UserId("u".into()),
        Mention::Email("e@x".into()),
        Mention::Mobile("1".into()),
    ] {
        let mut message = sample_message();
        message.mentions = vec![m];
        let h = Harness::<DingTalk>::new();
        assert!(h.render(&json!({ "webhook": HOOK }), &message).is_ok());
    }
}
