//! Each vendor's Markdown dialect and mentions through the real runtime
//! against the strict fakes: a body with every construct the dialects
//! differ on is accepted (the Lark fake refuses `lark_md` it would show
//! raw), and mentions a format cannot carry change the format or are named
//! in the receipt, never dropped silently (the WeCom fake refuses mentions
//! a body type would lose).

use std::time::Duration;

use carillon::message::{Mention, Message};
use carillon::plugin::Limits;
use carillon::plugin::types::{DeliverError, Receipt};
use carillon::plugin::{Plugin, Runtime};
use carillon_sdk::testing::DIALECT_SAMPLE;
use carillon_tests::fakes::{lark, wecom};
use serde_json::{Value, json};

use crate::support::{context, load, message, runtime_with};

fn runtime() -> Runtime {
    runtime_with(
        &["127.0.0.1/32"],
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(5),
            wall_time: Duration::from_secs(20),
            max_output_bytes: 1 << 20,
            max_log_lines: 100,
        },
    )
}

async fn send(
    runtime: &Runtime,
    plugin: &Plugin,
    config: Value,
    message: &Message,
) -> Result<Receipt, DeliverError> {
    let destination = runtime.destination(plugin, "dest", config, &[]);
    runtime
        .deliver(plugin, &destination, &context("dlv_dialect"), message)
        .await
        .expect("the plugin runs")
}

/// The dialect sample with a title marker, as the built-in templates write it.
fn dialect_message() -> Message {
    let mut m = message("❌ nightly_load failed");
    m.markdown = DIALECT_SAMPLE.to_owned();
    m
}

#[tokio::test]
async fn lark_cards_carry_lark_md_and_open_id_mentions_only() {
    let fake = lark::Fake::start(lark::Bot::new("hook1")).await;
    fake.disable_rate_limits();
    let runtime = runtime();
    let plugin = load(&runtime, "carillon-plugin-lark").await;
    let mut m = dialect_message();
    m.mentions = vec![
        Mention::UserId("ou_7d8a6e6df7621556ce0d21922b676706".into()),
        Mention::UserId("u_1001".into()),
        Mention::Email("oncall@example.com".into()),
    ];
    let config = json!({ "webhook": fake.url("hook1") });
    let receipt = send(&runtime, &plugin, config, &m)
        .await
        .expect("delivered");
    assert!(
        receipt
            .detail
            .contains("not mentioned: 1 by user id that is not an open_id")
            && receipt.detail.contains("not mentioned: 1 by email address"),
        "{}",
        receipt.detail
    );
    let body = fake.delivered()[0].json();
    let card = body["card"].to_string();
    assert!(
        card.contains("<at id=ou_7d8a6e6df7621556ce0d21922b676706></at>"),
        "{card}"
    );
    assert!(card.contains("&#42;stars&#42;"), "{card}");
    assert_eq!(
        body["card"]["header"]["title"]["content"],
        "❌ nightly_load failed"
    );
}

#[tokio::test]
async fn wecom_never_loses_a_mention_to_markdown() {
    let fake = wecom::Fake::start(wecom::Bot::new("key1")).await;
    let runtime = runtime();
    let plugin = load(&runtime, "carillon-plugin-wecom").await;
    let config = json!({ "webhook": fake.url("key1") });

    // Only user ids: markdown carries them as <@id>.
    let mut m = dialect_message();
    m.mentions = vec![Mention::UserId("u_1001".into())];
    let receipt = send(&runtime, &plugin, config.clone(), &m)
        .await
        .expect("delivered");
    assert!(!receipt.detail.contains(';'), "{}", receipt.detail);

    // @all and a mobile: markdown cannot page them, text can.
    m.mentions = vec![Mention::All, Mention::Mobile("13800000000".into())];
    let receipt = send(&runtime, &plugin, config, &m)
        .await
        .expect("delivered");
    assert!(
        receipt.detail.contains("sent as text"),
        "{}",
        receipt.detail
    );

    let got = fake.delivered();
    assert_eq!(got.len(), 2, "{:?}", fake.requests());
    let first = got[0].json();
    assert_eq!(first["msgtype"], "markdown");
    let content = first["markdown"]["content"].as_str().unwrap_or_default();
    assert!(
        content.starts_with("### ❌ nightly_load failed\n"),
        "{content}"
    );
    assert_eq!(content.matches('❌').count(), 1, "{content}");
    assert!(content.ends_with("<@u_1001>"), "{content}");
    let second = got[1].json();
    assert_eq!(second["msgtype"], "text");
    assert_eq!(second["text"]["mentioned_list"], json!(["@all"]));
    assert_eq!(
        second["text"]["mentioned_mobile_list"],
        json!(["13800000000"])
    );
}
