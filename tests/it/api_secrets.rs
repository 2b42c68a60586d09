//! Secret fields a plugin declares in its manifest are redacted wherever the
//! gateway shows a destination's config: `GET /v1/destinations` and the
//! test push (the rendered request included). The webhook plugin declares
//! `/headers`; the header name here does not look secret, so only the
//! declaration can hide its value. The same declaration keeps the value out
//! of the logs when a receiver echoes it back in an error body.

use std::path::Path;
use std::time::Duration;

use carillon::config::{Config, Resolver};
use carillon::gateway::{Gateway, Options};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN: &str = "adm-secrets-1a2b3c4d5e";
const HEADER_VALUE: &str = "tenant-s3cr3t-9d1c7a0e";
const INGEST: &str = "ing-secrets-7f6e5d4c3b";

fn config(data: &Path, hook: &Receiver) -> Config {
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
data_dir = "{data}"
plugin_dir = "{data}/plugins"

[auth]
admin_token = "{ADMIN}"

[[auth.ingest]]
name = "etl"
token = "{INGEST}"

[egress]
allow_private = ["127.0.0.1/32"]

# A failed attempt is retried within a second.
[dispatch.retry]
base_secs = 1
cap_secs = 1
min_delay_secs = 1

[destinations.hooks]
plugin = "webhook"
config = {{ url = "{url}", headers = {{ "X-Tenant" = "{HEADER_VALUE}" }} }}
"#,
        data = data.display(),
        url = hook.url("/hooks"),
    );
    let env = |_: &str| None;
    let resolver = Resolver {
        env: &env,
        base_dir: data,
    };
    Config::from_toml(&text, &resolver).unwrap_or_else(|p| panic!("config: {p}"))
}

async fn call(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = request.bearer_auth(ADMIN).send().await.expect("request");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn declared_secret_fields_are_redacted_in_listings_and_test_pushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start(None).await;
    let gateway = Gateway::start(config(dir.path(), &hook), Options::default())
        .await
        .expect("gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();

    let (s, list) = call(http.get(format!("{base}/v1/destinations"))).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let hooks = &list["items"][0];
    assert_eq!(hooks["name"], "hooks");
    // The header's name stays, its value does not.
    assert_eq!(
        hooks["config"]["config"]["headers"]["X-Tenant"], "<redacted>",
        "{hooks}"
    );
    assert!(!list.to_string().contains(HEADER_VALUE), "{list}");

    // The preview: the rendered request carries the header, hidden.
    let (s, preview) = call(
        http.post(format!("{base}/v1/destinations/hooks/test"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{preview}");
    let headers = preview["request"]["headers"].as_array().expect("headers");
    assert!(
        headers.contains(&json!(["X-Tenant", "<redacted>"])),
        "{preview}"
    );
    assert!(!preview.to_string().contains(HEADER_VALUE), "{preview}");

    // Sent for real: the receiver gets the value, the answer does not show it.
    let (s, sent) = call(
        http.post(format!("{base}/v1/destinations/hooks/test?send=true"))
            .json(&json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{sent}");
    assert_eq!(sent["sent"], true, "{sent}");
    assert!(!sent.to_string().contains(HEADER_VALUE), "{sent}");
    let mut got = hook.received();
    for _ in 0..200 {
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        got = hook.received();
    }
    assert_eq!(got[0].header("x-tenant"), Some(HEADER_VALUE));
    gateway.shutdown().await;
}

/// A receiver that echoes the declared-secret header back in its error
/// bodies (a 500, retried, then a 400, dead-lettered): the plugin passes
/// the body on in its error, and neither the gateway's log lines (at the
/// most verbose level) nor the delivery listing may carry the value.
#[tokio::test(flavor = "current_thread")]
async fn a_declared_secret_echoed_in_an_error_body_never_reaches_the_logs() {
    // current_thread: the gateway's tasks run on this (capturing) thread.
    let logs = crate::support::capture_logs();
    let dir = tempfile::tempdir().expect("tempdir");
    let hook = Receiver::start(None).await;
    let echo = |status: u16| {
        Answer::status(status).body(format!(
            "{{\"error\":\"unknown tenant\",\"received\":{{\"X-Tenant\":\"{HEADER_VALUE}\"}}}}"
        ))
    };
    hook.script([echo(500), echo(400)]);
    let gateway = Gateway::start(config(dir.path(), &hook), Options::default())
        .await
        .expect("gateway starts");
    let base = format!("http://{}", gateway.local_addr());
    let http = reqwest::Client::new();
    let event = json!({
        "type": "task.failed", "source": "etl", "severity": "error",
        "title": "t", "message": "m", "destinations": ["hooks"]
    });
    let r = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(INGEST)
        .json(&event)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    // Both answers are in the logs, by their status, before anything is
    // checked (a generous deadline, polled).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(logs.text().contains("delivery will be retried")
        && logs.text().contains("delivery dead-lettered"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no retry and dead letter logged:\n{}",
            logs.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The dead outcome is logged before its batch is committed: poll the
    // dead letters until it is listed.
    let dead = loop {
        let (s, dead) = call(http.get(format!("{base}/v1/deliveries?state=dead"))).await;
        assert_eq!(s, StatusCode::OK, "{dead}");
        if dead["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break dead;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the dead letter is not listed: {dead}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    gateway.shutdown().await;
    let logs = logs.stop();
    let got = hook.received();
    assert_eq!(got.len(), 2, "two attempts");
    assert_eq!(
        got[1].header("x-tenant"),
        Some(HEADER_VALUE),
        "sent for real"
    );
    assert!(
        logs.contains("unknown tenant"),
        "the error body is logged:\n{logs}"
    );
    assert!(
        !logs.contains(HEADER_VALUE),
        "the secret in the logs:\n{logs}"
    );
    assert!(dead.to_string().contains("unknown tenant"), "{dead}");
    assert!(!dead.to_string().contains(HEADER_VALUE), "{dead}");
}
