//! Native tests through the SDK harness: golden requests for every sample
//! message, mention mapping, byte limits, config checks and answer classes.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a failure.

use carillon_sdk::testing::{
    Harness, assert_invalid_config_with, assert_rejected_with, check_golden_requests,
    errcode_answer, expect_http, json_body, pretty_outgoing_with, sample, sample_message,
};
use carillon_sdk::{DeliverError, HttpError, HttpResponse, Outgoing};
use serde_json::{Value, json};

use super::*;

const HOOK: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx";

/// The content of any message type.
fn content(body: &Value) -> String {
    let kind = body["msgtype"].as_str().unwrap();
    body[kind]["content"].as_str().unwrap().to_owned()
}

/// The golden form of a request, with WeCom's content size.
fn pretty(request: &HttpRequest) -> String {
    let content_bytes = content(&json_body(request)).len();
    pretty_outgoing_with(
        &Outgoing::Http(request.clone()),
        &[format!("content: {content_bytes} bytes")],
    )
}

fn configs() -> Vec<(&'static str, Value)> {
    vec![
        (
            "default",
            json!({ "webhook": HOOK, "at_user_ids": ["lead"] }),
        ),
        (
            "v2-tables",
            json!({ "webhook": HOOK, "markdown_v2_tables": true }),
        ),
        (
            "text",
            json!({ "webhook": HOOK, "msg_type": "text", "at_mobiles": ["13900001111"] }),
        ),
    ]
}

#[test]
fn golden_requests() {
    // Besides the whole body, the content must fit WeCom's limit for its type.
    let show = |outgoing: &Outgoing| {
        let request = expect_http(outgoing.clone());
        let body = json_body(&request);
        let limit = if body["msgtype"] == "text" {
            TEXT_MAX_BYTES
        } else {
            MARKDOWN_MAX_BYTES
        };
        assert!(content(&body).len() <= limit, "{}", request.body_text());
        pretty(&request)
    };
    check_golden_requests::<WeCom>(env!("CARGO_MANIFEST_DIR"), &configs(), MAX_BODY_BYTES, show);
}

#[test]
fn markdown_colours_conditional_cells_and_mentions_user_ids() {
    let h = Harness::<WeCom>::new();
    let body = json_body(&expect_http(
        h.render(&json!({ "webhook": HOOK }), &sample("table"))
            .unwrap(),
    ));
    assert_eq!(body["msgtype"], "markdown");
    let text = content(&body);
    assert!(
        text.contains("Check: completeness, Score: <font color=\"info\">92.5%</font>, Cost: $1.20")
    );
    assert!(text.contains("Score: <font color=\"warning\">41%</font>"));

    let mut message = sample("mentions");
    message.mentions = vec![carillon_sdk::Mention::UserId("u_1001".into())];
    let body = json_body(&expect_http(
        h.render(&json!({ "webhook": HOOK }), &message).unwrap(),
    ));
    assert_eq!(body["msgtype"], "markdown");
    assert!(content(&body).ends_with("<@u_1001>"), "{body}");
}

#[test]
fn mentions_markdown_cannot_carry_switch_to_text_and_the_receipt_says_so() {
    let h = Harness::<WeCom>::new().respond(|_| Ok(errcode_answer(0, "ok")));
    let receipt = h
        .deliver(&json!({ "webhook": HOOK }), &sample("mentions"))
        .unwrap();
    let body = json_body(&h.requests()[0]);
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["text"]["mentioned_list"], json!(["u_1001", "@all"]));
    assert_eq!(
        body["text"]["mentioned_mobile_list"],
        json!(["13800000000"])
    );
    assert!(
        receipt
            .detail
            .contains("sent as text: WeCom markdown cannot mention everyone"),
        "{}",
        receipt.detail
    );
    assert!(
        receipt.detail.contains("not mentioned: 1 by email address"),
        "{}",
        receipt.detail
    );
    // Without such mentions the receipt is the vendor's answer alone.
    let h = Harness::<WeCom>::new().respond(|_| Ok(errcode_answer(0, "ok")));
    let receipt = h
        .deliver(&json!({ "webhook": HOOK }), &sample_message())
        .unwrap();
    assert!(!receipt.detail.contains(';'), "{}", receipt.detail);
}

#[test]
fn text_mode_uses_mention_lists() {
    let h = Harness::<WeCom>::new();
    let body = json_body(&expect_http(
        h.render(
            &json!({ "webhook": HOOK, "msg_type": "text" }),
            &sample("mentions"),
        )
        .unwrap(),
    ));
    assert_eq!(body["text"]["mentioned_list"], json!(["u_1001", "@all"]));
    assert_eq!(
        body["text"]["mentioned_mobile_list"],
        json!(["13800000000"])
    );
}

#[test]
fn v2_tables_are_pipe_tables_and_mentions_go_as_text() {
    let h = Harness::<WeCom>::new();
    let mut message = sample("table");
    message.mentions = vec![carillon_sdk::Mention::UserId("u1".into())];
    let body = json_body(&expect_http(
        h.render(
            &json!({ "webhook": HOOK, "markdown_v2_tables": true }),
            &message,
        )
        .unwrap(),
    ));
    // markdown_v2 cannot mention: the message goes as text, which can.
    assert_eq!(body["msgtype"], "text");
    assert_eq!(body["text"]["mentioned_list"], json!(["u1"]));
    message.mentions.clear();
    let body = json_body(&expect_http(
        h.render(
            &json!({ "webhook": HOOK, "markdown_v2_tables": true }),
            &message,
        )
        .unwrap(),
    ));
    assert_eq!(body["msgtype"], "markdown_v2");
    let text = content(&body);
    assert!(text.contains("| Check | Score | Cost |\n| --- | --- | --- |"));
    assert!(text.contains("| freshness | 41% ✗ | $0.35 |"));
    // Without a table the flag changes nothing.
    let body = json_body(&expect_http(
        h.render(
            &json!({ "webhook": HOOK, "markdown_v2_tables": true }),
            &sample_message(),
        )
        .unwrap(),
    ));
    assert_eq!(body["msgtype"], "markdown");
}

#[test]
fn long_messages_fit_the_byte_limits_with_a_note() {
    for (config, limit) in [
        (json!({ "webhook": HOOK }), MARKDOWN_MAX_BYTES),
        (
            json!({ "webhook": HOOK, "msg_type": "text" }),
            TEXT_MAX_BYTES,
        ),
    ] {
        let h = Harness::<WeCom>::new();
        let body = json_body(&expect_http(h.render(&config, &sample("long")).unwrap()));
        let text = content(&body);
        assert!(text.len() <= limit, "{}", text.len());
        assert!(text.len() > limit - 100, "uses the room");
        assert!(text.contains("(truncated "), "{text}");
    }
    let mut cjk = sample("cjk");
    cjk.markdown = "告警内容".repeat(1000);
    let h = Harness::<WeCom>::new();
    let body = json_body(&expect_http(
        h.render(&json!({ "webhook": HOOK }), &cjk).unwrap(),
    ));
    let text = content(&body);
    assert!(text.len() <= MARKDOWN_MAX_BYTES);
    assert!(text.contains("已截断"));
}

#[test]
fn big_tables_keep_the_rows_that_fit() {
    let mut message = sample("table");
    if let Some(t) = message.table.as_mut() {
        for i in 0..500 {
            t.rows
                .push(vec![format!("check_{i}"), "75".into(), "0.10".into()]);
        }
    }
    let h = Harness::<WeCom>::new();
    let body = json_body(&expect_http(
        h.render(&json!({ "webhook": HOOK }), &message).unwrap(),
    ));
    let text = content(&body);
    assert!(text.len() <= MARKDOWN_MAX_BYTES);
    assert!(text.contains(" more rows"), "{text}");
    assert!(text.contains("Open task"), "the link is kept");
}

#[test]
fn config_problems_are_all_reported_with_paths() {
    let h = Harness::<WeCom>::new();
    let paths = h.issue_paths(&json!({
        "webhook": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?kee=x",
        "markdown_v2_tables": true,
        "msg_type": "text",
        "at_user_ids": ["ok", "@all"],
        "at_mobiles": ["13800000000", "x1"],
        "locale": "z",
    }));
    assert_eq!(
        paths,
        [
            "/webhook",
            "/markdown_v2_tables",
            "/at_user_ids/1",
            "/at_mobiles/1",
            "/locale"
        ]
    );
    let paths = h.issue_paths(&json!({ "webhook": HOOK, "at_mobiles": ["1"], "at_all": true }));
    assert_eq!(paths, ["/at_mobiles", "/at_all"]);
    let unknown = h
        .validate(&json!({ "webhook": HOOK, "secret": "x" }))
        .unwrap_err();
    assert_eq!(unknown[0].path, "/secret");
    assert!(
        h.validate(&json!({
            "webhook": "http://127.0.0.1:9000/cgi-bin/webhook/send?key=k1",
            "msg_type": "text",
            "at_user_ids": ["u1"],
            "at_mobiles": ["13800000000"],
            "at_all": true,
            "locale": "zh-CN"
        }))
        .is_ok()
    );
}

fn outcome_for(response: HttpResponse) -> Result<Receipt, DeliverError> {
    Harness::<WeCom>::new().outcome(&json!({ "webhook": HOOK }), response)
}

#[test]
fn answers_map_to_outcomes() {
    assert!(outcome_for(errcode_answer(0, "ok")).is_ok());
    assert!(matches!(
        outcome_for(errcode_answer(45009, "api freq out of limit, hint: [1], from ip: 1.2.3.4, more info at https://open.work.weixin.qq.com/devtool/query?e=45009")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == FREQUENCY_WAIT_MS && l.reason.contains("45009")
    ));
    assert!(matches!(
        outcome_for(errcode_answer(45033, "api concurrent out of limit")),
        Err(DeliverError::RateLimited(l)) if l.after_ms == CONCURRENCY_WAIT_MS
    ));
    assert!(matches!(
        outcome_for(errcode_answer(-1, "system busy")),
        Err(DeliverError::Retryable(r)) if r.contains("-1")
    ));
    assert!(matches!(
        outcome_for(HttpResponse::text(502, "")),
        Err(DeliverError::Retryable(_))
    ));
    for (code, msg, hint) in [
        (
            40058,
            "markdown.content exceed max length 4096. Invalid input invalid Request Parameter, hint: [1]",
            "longer",
        ),
        (40008, "invalid message type", "type"),
        (44004, "empty content", "empty"),
        (45002, "content too large", "longer"),
        (40007, "invalid media_id", "40007"),
    ] {
        let errcode = format!("errcode {code}");
        assert_rejected_with(
            outcome_for(errcode_answer(code, msg)),
            &[&errcode, msg, hint],
        );
    }
    assert_invalid_config_with(
        outcome_for(errcode_answer(93000, "invalid webhook url, hint: [1]")),
        &["errcode 93000", "invalid webhook url", "key"],
    );
    assert!(matches!(
        outcome_for(HttpResponse::text(200, "ok")),
        Err(DeliverError::Rejected(_))
    ));
}

#[test]
fn transport_failures_retry() {
    let h = Harness::<WeCom>::new().respond(|_| Err(HttpError::Connect("refused".into())));
    assert!(matches!(
        h.deliver(&json!({ "webhook": HOOK }), &sample_message()),
        Err(DeliverError::Retryable(_))
    ));
}

#[test]
fn manifest_is_well_formed() {
    let m = Harness::<WeCom>::new().manifest();
    assert_eq!(m.name, "wecom");
    assert_eq!(m.endpoint_fields, ["/webhook"]);
    assert_eq!(m.secret_fields, ["/webhook"]);
    assert_eq!(m.allowed_hosts, ["qyapi.weixin.qq.com"]);
    assert_eq!(m.rate_limits[0].requests, 20);
    assert_eq!(m.rate_limits[0].window_ms, 60_000);
}

#[test]
fn a_titles_own_marker_is_the_only_one() {
    let h = Harness::<WeCom>::new();
    let config = json!({ "webhook": HOOK });
    let mut message = sample_message();
    message.title = "❌ nightly_load failed".into();
    message.severity = carillon_sdk::Severity::Error;
    let body = json_body(&expect_http(h.render(&config, &message).unwrap()));
    let content = body["markdown"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("### ❌ nightly_load failed"),
        "{content}"
    );
    assert_eq!(content.matches('❌').count(), 1, "{content}");
}
