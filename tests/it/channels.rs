//! The four vendor channels (dingtalk, lark, wecom, teams) through the real
//! runtime against their fakes on 127.0.0.1: a valid, signed,
//! keyword-carrying, size-compliant message is accepted, and every error
//! class a fake can produce maps to the right `DeliverError`. Ends with one
//! event rendered for all four channels plus webhook, accepted by every fake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use carillon::message::{Column, Comparison, Condition, Field, Link, Mention, Message, Table};
use carillon::plugin::types::{DeliverError, Receipt};
use carillon::plugin::{Plugin, Runtime};
use carillon_tests::fakes::{dingtalk, lark, teams, webhook, wecom};
use serde_json::{Value, json};

use carillon::plugin::Limits;

use crate::support::{context, load, message, runtime_with};

/// A runtime allowing 127.0.0.1, with room for fitting large messages: a
/// 20 KB payload is rebuilt a few dozen times, and tests run in parallel on
/// few cores (the gateway's default CPU budget is 10 s).
fn runtime(allow: &[&str]) -> Runtime {
    runtime_with(
        allow,
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(5),
            wall_time: Duration::from_secs(20),
            max_output_bytes: 1 << 20,
            max_log_lines: 100,
        },
    )
}

/// Delivers `message` to a destination of `plugin` with `config`.
async fn send(
    runtime: &Runtime,
    plugin: &Plugin,
    config: Value,
    message: &Message,
) -> Result<Receipt, DeliverError> {
    let destination = runtime.destination(plugin, "dest", config, &[]);
    runtime
        .deliver(plugin, &destination, &context("dlv_ch"), message)
        .await
        .expect("the plugin runs")
}

/// A message with everything: fields, link, mentions, a table, a long body.
fn rich(locale: &str) -> Message {
    let mut m = message("告警 ETL failed");
    m.locale = locale.to_owned();
    m.markdown = (1..=800)
        .map(|i| format!("- partition `p{i:04}` \"failed\" after 3 retries\n"))
        .collect();
    m.text = m.markdown.replace('`', "");
    m.fields = vec![Field {
        name: "owner".into(),
        value: "alice".into(),
    }];
    m.link = Some(Link {
        url: "https://etl.example.com/tasks/42".into(),
        label: Some("Open task".into()),
    });
    m.mentions = vec![Mention::UserId("u_1001".into())];
    m.table = Some(Table {
        columns: vec![
            Column {
                key: "check".into(),
                title: "Check".into(),
                prefix: String::new(),
                suffix: String::new(),
                condition: None,
            },
            Column {
                key: "score".into(),
                title: "Score".into(),
                prefix: String::new(),
                suffix: "%".into(),
                condition: Some(Condition {
                    op: Comparison::Ge,
                    operand: "60".into(),
                }),
            },
        ],
        rows: (0..1_000)
            .map(|i| vec![format!("check_{i}"), (i % 100).to_string()])
            .collect(),
    });
    m
}

/// Asserts a rejection whose text carries every one of `needles`.
fn assert_rejected(outcome: &Result<Receipt, DeliverError>, needles: &[&str]) {
    match outcome {
        Err(DeliverError::Rejected(text)) => {
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} not in {text:?}");
            }
        }
        other => panic!("expected Rejected with {needles:?}, got {other:?}"),
    }
}

/// Asserts invalid-config (the destination pauses) whose text carries
/// every one of `needles`.
fn assert_invalid_config(outcome: &Result<Receipt, DeliverError>, needles: &[&str]) {
    match outcome {
        Err(DeliverError::InvalidConfig(text)) => {
            for needle in needles {
                assert!(text.contains(needle), "{needle:?} not in {text:?}");
            }
        }
        other => panic!("expected InvalidConfig with {needles:?}, got {other:?}"),
    }
}

fn assert_retryable(outcome: &Result<Receipt, DeliverError>) {
    assert!(
        matches!(outcome, Err(DeliverError::Retryable(_))),
        "{outcome:?}"
    );
}

/// Asserts a rate limit with exactly this wait.
fn assert_rate_limited(outcome: &Result<Receipt, DeliverError>, wait: Duration) {
    match outcome {
        Err(DeliverError::RateLimited { after, .. }) => assert_eq!(*after, wait),
        other => panic!("expected RateLimited({wait:?}), got {other:?}"),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

// ---------------------------------------------------------------- DingTalk

const DT_SECRET: &str = "SEC0123456789abcdef0123456789abcdef";
const DT_PLUGIN: &str = "carillon-plugin-dingtalk";

#[tokio::test]
async fn dingtalk_delivers_signed_keyword_carrying_messages_within_the_limit() {
    let fake = dingtalk::Fake::start(
        dingtalk::Bot::new("tok")
            .secret(DT_SECRET)
            .keywords(&["Carillon"]),
    )
    .await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, DT_PLUGIN).await;
    let config =
        json!({ "webhook": fake.url("tok"), "secret": DT_SECRET, "keywords": ["Carillon"] });
    for m in [message("ETL failed"), rich("en"), rich("zh-CN")] {
        let receipt = send(&runtime, &plugin, config.clone(), &m)
            .await
            .expect("delivered");
        assert!(receipt.detail.starts_with("200"), "{receipt:?}");
    }
    let got = fake.delivered();
    assert_eq!(got.len(), 3, "{:?}", fake.requests());
    for r in &got {
        assert!(r.body.len() <= dingtalk::MAX_BODY_BYTES);
        assert!(r.param("sign").is_some() && r.param("timestamp").is_some());
        assert!(String::from_utf8_lossy(&r.body).contains("Carillon"));
    }
    let long = got[1].json().to_string();
    assert!(long.contains("(truncated "), "{long}");
    assert!(long.contains("more rows"), "{long}");
    assert!(got[2].json().to_string().contains("已截断"));
}

#[tokio::test]
async fn dingtalk_errors_map_to_outcomes() {
    let fake = dingtalk::Fake::start_many([
        dingtalk::Bot::new("tok").secret(DT_SECRET),
        dingtalk::Bot::new("kw").keywords(&["告警"]),
    ])
    .await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, DT_PLUGIN).await;
    let m = message("ETL failed");
    let signed = json!({ "webhook": fake.url("tok"), "secret": DT_SECRET });

    // Signature: a wrong secret is refused by the robot.
    let wrong = json!({ "webhook": fake.url("tok"), "secret": "SECwrong" });
    let outcome = send(&runtime, &plugin, wrong, &m).await;
    assert_rejected(&outcome, &["errcode 310000", "sign not match", "secret"]);

    // Keywords on the robot, none in the destination or the message.
    let outcome = send(&runtime, &plugin, json!({ "webhook": fake.url("kw") }), &m).await;
    assert_rejected(&outcome, &["errcode 310000", "keywords not in content"]);
    // Configured, the keyword is written into the title and accepted.
    let with_kw = json!({ "webhook": fake.url("kw"), "keywords": ["告警"] });
    assert!(send(&runtime, &plugin, with_kw, &m).await.is_ok());

    // Stale timestamp: the robot's clock is two hours ahead.
    fake.set_clock(Some(now_ms() + 2 * 3_600_000));
    let outcome = send(&runtime, &plugin, signed.clone(), &m).await;
    assert_rejected(&outcome, &["errcode 310000", "invalid timestamp", "clock"]);
    fake.set_clock(None);

    // Unknown or revoked token: the destination's fault, not the message's.
    let outcome = send(
        &runtime,
        &plugin,
        json!({ "webhook": fake.url("nope") }),
        &m,
    )
    .await;
    assert_invalid_config(&outcome, &["errcode 300001", "access_token"]);

    // Size (injected: the plugin itself never exceeds the limit).
    fake.errcode_next(1, 460101, "message too long, exceed 20000 bytes");
    let outcome = send(&runtime, &plugin, signed.clone(), &m).await;
    assert_rejected(&outcome, &["errcode 460101", "message too long"]);

    // Throttled: 130101 waits out DingTalk's 10-minute throttle.
    fake.rate_limit_next(1);
    let outcome = send(&runtime, &plugin, signed.clone(), &m).await;
    assert_rate_limited(&outcome, Duration::from_secs(600));

    // Busy and server errors are retried.
    fake.errcode_next(1, -1, "系统繁忙");
    assert_retryable(&send(&runtime, &plugin, signed.clone(), &m).await);
    fake.fail_next(1, 503);
    assert_retryable(&send(&runtime, &plugin, signed.clone(), &m).await);

    // And the robot works again afterwards.
    assert!(send(&runtime, &plugin, signed, &m).await.is_ok());
}

#[tokio::test]
async fn dingtalk_real_rate_limit_is_reported_with_the_throttle() {
    let mut bot = dingtalk::Bot::new("tok");
    bot.per_minute = 2;
    let fake = dingtalk::Fake::start(bot).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, DT_PLUGIN).await;
    let config = json!({ "webhook": fake.url("tok") });
    let m = message("ETL failed");
    for _ in 0..2 {
        assert!(send(&runtime, &plugin, config.clone(), &m).await.is_ok());
    }
    let outcome = send(&runtime, &plugin, config, &m).await;
    assert_rate_limited(&outcome, Duration::from_secs(600));
    assert_eq!(fake.requests()[2].errcode, Some(130101));
}

// -------------------------------------------------------------------- Lark

const LARK_SECRET: &str = "lark-secret-0123";
const LARK_PLUGIN: &str = "carillon-plugin-lark";

#[tokio::test]
async fn lark_delivers_signed_keyword_carrying_messages_within_the_limit() {
    let fake = lark::Fake::start(
        lark::Bot::new("hook1")
            .secret(LARK_SECRET)
            .keywords(&["Carillon"]),
    )
    .await;
    // Nine messages back to back would trip the fake's real 5-a-second
    // limit; that limit has its own test (`lark_errors_map_to_outcomes`).
    fake.disable_rate_limits();
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, LARK_PLUGIN).await;
    for msg_type in ["interactive", "post", "text"] {
        let config = json!({
            "webhook": fake.url("hook1"),
            "secret": LARK_SECRET,
            "keywords": ["Carillon"],
            "msg_type": msg_type,
        });
        for m in [message("ETL failed"), rich("en"), rich("zh-CN")] {
            let outcome = send(&runtime, &plugin, config.clone(), &m).await;
            assert!(outcome.is_ok(), "{msg_type}: {outcome:?}");
        }
    }
    let got = fake.delivered();
    assert_eq!(got.len(), 9, "{:?}", fake.requests());
    for r in &got {
        assert!(r.body.len() <= lark::MAX_BODY_BYTES);
        let body = r.json();
        assert!(body["sign"].is_string() && body["timestamp"].is_string());
        assert!(body.to_string().contains("Carillon"));
    }
    assert!(got[1].json().to_string().contains("(truncated "));
    assert!(got[2].json().to_string().contains("已截断"));
}

#[tokio::test]
async fn lark_errors_map_to_outcomes() {
    let fake = lark::Fake::start_many([
        lark::Bot::new("signed").secret(LARK_SECRET),
        lark::Bot::new("kw").keywords(&["告警"]),
    ])
    .await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, LARK_PLUGIN).await;
    let m = message("ETL failed");
    let signed = json!({ "webhook": fake.url("signed"), "secret": LARK_SECRET });

    let wrong = json!({ "webhook": fake.url("signed"), "secret": "not-the-secret" });
    let outcome = send(&runtime, &plugin, wrong, &m).await;
    assert_rejected(&outcome, &["code 19021", "signature"]);

    let outcome = send(&runtime, &plugin, json!({ "webhook": fake.url("kw") }), &m).await;
    assert_rejected(&outcome, &["code 19024", "keywords"]);
    let with_kw = json!({ "webhook": fake.url("kw"), "keywords": ["告警"] });
    assert!(send(&runtime, &plugin, with_kw, &m).await.is_ok());

    // The signature's timestamp is more than an hour off the bot's clock.
    fake.set_clock(Some(now_ms() / 1000 + 7_200));
    let outcome = send(&runtime, &plugin, signed.clone(), &m).await;
    assert_rejected(&outcome, &["code 19021"]);
    fake.set_clock(None);

    // An unknown token is a configuration error.
    let outcome = send(
        &runtime,
        &plugin,
        json!({ "webhook": fake.url("nope") }),
        &m,
    )
    .await;
    assert!(
        matches!(&outcome, Err(DeliverError::InvalidConfig(t)) if t.contains("19001")),
        "{outcome:?}"
    );

    fake.rate_limit_next(1);
    let outcome = send(&runtime, &plugin, signed.clone(), &m).await;
    assert!(
        matches!(&outcome, Err(DeliverError::RateLimited { after, reason }) if !after.is_zero() && reason.contains("11232")),
        "{outcome:?}"
    );

    fake.fail_next(1, 502);
    assert_retryable(&send(&runtime, &plugin, signed.clone(), &m).await);

    assert!(send(&runtime, &plugin, signed, &m).await.is_ok());
}

// ------------------------------------------------------------------- WeCom

const WECOM_PLUGIN: &str = "carillon-plugin-wecom";

#[tokio::test]
async fn wecom_delivers_messages_within_the_content_limits() {
    let fake = wecom::Fake::start(wecom::Bot::new("key1")).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, WECOM_PLUGIN).await;
    let configs = [
        json!({ "webhook": fake.url("key1") }),
        json!({ "webhook": fake.url("key1"), "msg_type": "text", "at_all": true }),
        json!({ "webhook": fake.url("key1"), "markdown_v2_tables": true }),
    ];
    for config in &configs {
        for m in [message("ETL failed"), rich("en"), rich("zh-CN")] {
            let outcome = send(&runtime, &plugin, config.clone(), &m).await;
            assert!(outcome.is_ok(), "{config}: {outcome:?}");
        }
    }
    let got = fake.delivered();
    assert_eq!(got.len(), 9, "{:?}", fake.requests());
    for r in &got {
        let body = r.json();
        let kind = body["msgtype"].as_str().expect("msgtype");
        let content = body[kind]["content"].as_str().expect("content");
        let limit = if kind == "text" {
            wecom::TEXT_MAX_BYTES
        } else {
            wecom::MARKDOWN_MAX_BYTES
        };
        assert!(content.len() <= limit, "{kind}: {}", content.len());
    }
    let long = got[1].json().to_string();
    assert!(
        long.contains("(truncated ") && long.contains("<@u_1001>"),
        "{long}"
    );
    assert!(got[2].json().to_string().contains("已截断"));
    assert_eq!(
        got[4].json()["text"]["mentioned_list"],
        json!(["u_1001", "@all"])
    );
    // markdown_v2 cannot mention: the table message that mentions u_1001
    // goes as text, which pages them (tests/it/channels_dialects.rs has more).
    assert_eq!(got[7].json()["msgtype"], "text");
    assert_eq!(got[7].json()["text"]["mentioned_list"], json!(["u_1001"]));
}

#[tokio::test]
async fn wecom_errors_map_to_outcomes() {
    let fake = wecom::Fake::start(wecom::Bot::new("key1")).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, WECOM_PLUGIN).await;
    let m = message("ETL failed");
    let config = json!({ "webhook": fake.url("key1") });

    let outcome = send(
        &runtime,
        &plugin,
        json!({ "webhook": fake.url("nope") }),
        &m,
    )
    .await;
    assert_invalid_config(&outcome, &["errcode 93000"]);

    fake.rate_limit_next(1);
    let outcome = send(&runtime, &plugin, config.clone(), &m).await;
    assert!(
        matches!(&outcome, Err(DeliverError::RateLimited { after, reason }) if *after == Duration::from_secs(60) && reason.contains("45009")),
        "{outcome:?}"
    );
    fake.errcode_next(1, 45033);
    let outcome = send(&runtime, &plugin, config.clone(), &m).await;
    assert!(
        matches!(&outcome, Err(DeliverError::RateLimited { reason, .. }) if reason.contains("45033")),
        "{outcome:?}"
    );

    fake.errcode_next(1, 40058);
    let outcome = send(&runtime, &plugin, config.clone(), &m).await;
    assert_rejected(&outcome, &["errcode 40058"]);

    fake.errcode_next(1, -1);
    assert_retryable(&send(&runtime, &plugin, config.clone(), &m).await);
    fake.fail_next(1, 500);
    assert_retryable(&send(&runtime, &plugin, config.clone(), &m).await);

    assert!(send(&runtime, &plugin, config, &m).await.is_ok());
}

// ------------------------------------------------------------------- Teams

const TEAMS_PLUGIN: &str = "carillon-plugin-teams";

#[tokio::test]
async fn teams_delivers_cards_the_flow_and_connector_accept() {
    let fake = teams::Fake::start_many([
        teams::Hook::workflow("wf1", "s3cr3t"),
        teams::Hook::connector("c1"),
    ])
    .await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, TEAMS_PLUGIN).await;
    let configs = [
        json!({ "webhook": fake.url("wf1"), "mentions": [{ "id": "alice@example.com", "name": "Alice" }] }),
        json!({ "webhook": fake.url("c1"), "format": "connector" }),
    ];
    for config in &configs {
        for m in [message("ETL failed"), rich("en"), rich("zh-CN")] {
            let outcome = send(&runtime, &plugin, config.clone(), &m).await;
            assert!(outcome.is_ok(), "{config}: {outcome:?}");
        }
    }
    let got = fake.posted();
    assert_eq!(got.len(), 6, "{:?}", fake.requests());
    for r in &got {
        assert!(r.body.len() <= teams::MAX_MESSAGE_BYTES);
    }
    assert!(got[..3].iter().all(|r| r.status == 202));
    assert!(got[3..].iter().all(|r| r.answer == "1"));
    assert!(got[1].json().to_string().contains("(truncated "));
    assert!(got[5].json().to_string().contains("已截断"));
}

#[tokio::test]
async fn teams_errors_map_to_outcomes() {
    let fake = teams::Fake::start_many([
        teams::Hook::workflow("wf1", "s3cr3t"),
        teams::Hook::connector("c1"),
    ])
    .await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, TEAMS_PLUGIN).await;
    let m = message("ETL failed");
    let workflow = json!({ "webhook": fake.url("wf1") });
    let connector = json!({ "webhook": fake.url("c1"), "format": "connector" });

    // A wrong `sig` is the Workflows credential error.
    let wrong = json!({ "webhook": fake.workflow_url("wf1", "wrong") });
    let outcome = send(&runtime, &plugin, wrong, &m).await;
    assert_invalid_config(&outcome, &["401", "DirectApiInvalidAuthorizationSignature"]);
    let outcome = send(
        &runtime,
        &plugin,
        json!({ "webhook": fake.url("nope") }),
        &m,
    )
    .await;
    assert_invalid_config(&outcome, &["404", "WorkflowNotFound"]);
    // A removed connector answers a plain 404.
    let outcome = send(
        &runtime,
        &plugin,
        json!({ "webhook": fake.url("c1").replace("/c1/", "/gone/"), "format": "connector" }),
        &m,
    )
    .await;
    assert_invalid_config(&outcome, &["404", "removed"]);

    fake.throttle_next(1, 7);
    let outcome = send(&runtime, &plugin, workflow.clone(), &m).await;
    assert_rate_limited(&outcome, Duration::from_secs(7));
    fake.fail_next(1, 502);
    assert_retryable(&send(&runtime, &plugin, workflow.clone(), &m).await);

    // Connectors answer throttling with a 200 and an error sentence.
    fake.throttle_next(1, 3);
    let outcome = send(&runtime, &plugin, connector.clone(), &m).await;
    assert!(
        matches!(&outcome, Err(DeliverError::RateLimited { .. })),
        "{outcome:?}"
    );
    fake.fail_next(1, 503);
    assert_retryable(&send(&runtime, &plugin, connector.clone(), &m).await);

    assert!(send(&runtime, &plugin, workflow, &m).await.is_ok());
    assert!(send(&runtime, &plugin, connector, &m).await.is_ok());
}

// ------------------------------------------------------------- All at once

#[tokio::test]
async fn one_event_reaches_all_five_channels() {
    let ding = dingtalk::Fake::start(
        dingtalk::Bot::new("tok")
            .secret(DT_SECRET)
            .keywords(&["告警"]),
    )
    .await;
    let lark = lark::Fake::start(
        lark::Bot::new("hook1")
            .secret(LARK_SECRET)
            .keywords(&["告警"]),
    )
    .await;
    let wecom = wecom::Fake::start(wecom::Bot::new("key1")).await;
    let teams = teams::Fake::start_many([
        teams::Hook::workflow("wf1", "s3cr3t"),
        teams::Hook::connector("c1"),
    ])
    .await;
    let hook = webhook::Receiver::start(None).await;

    let runtime = runtime(&["127.0.0.1/32"]);
    let event = rich("zh-CN");
    let targets = [
        (
            DT_PLUGIN,
            json!({ "webhook": ding.url("tok"), "secret": DT_SECRET, "keywords": ["告警"] }),
        ),
        (
            LARK_PLUGIN,
            json!({ "webhook": lark.url("hook1"), "secret": LARK_SECRET, "keywords": ["告警"] }),
        ),
        (WECOM_PLUGIN, json!({ "webhook": wecom.url("key1") })),
        (TEAMS_PLUGIN, json!({ "webhook": teams.url("wf1") })),
        (
            TEAMS_PLUGIN,
            json!({ "webhook": teams.url("c1"), "format": "connector" }),
        ),
        ("carillon-plugin-webhook", json!({ "url": hook.url("/in") })),
    ];
    for (name, config) in targets {
        let plugin = load(&runtime, name).await;
        let outcome = send(&runtime, &plugin, config, &event).await;
        assert!(outcome.is_ok(), "{name}: {outcome:?}");
    }
    assert_eq!(ding.delivered().len(), 1, "{:?}", ding.requests());
    assert_eq!(lark.delivered().len(), 1, "{:?}", lark.requests());
    assert_eq!(wecom.delivered().len(), 1, "{:?}", wecom.requests());
    assert_eq!(teams.posted().len(), 2, "{:?}", teams.requests());
    let got = hook.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].json()["title"], "告警 ETL failed");
}
