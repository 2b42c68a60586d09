//! The webhook plugin through the real runtime against a local receiver that
//! verifies Standard Webhooks signatures; every answer class mapped.

use std::time::Duration;

use carillon::plugin::types::{DeliverError, Receipt};
use carillon::plugin::{Plugin, Runtime};
use carillon_tests::fakes::webhook::{Answer, Receiver};
use serde_json::json;

use crate::support::{context, load, message, runtime};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PLUGIN: &str = "carillon-plugin-webhook";

async fn deliver(
    runtime: &Runtime,
    plugin: &Plugin,
    config: serde_json::Value,
) -> Result<Receipt, DeliverError> {
    let destination = runtime.destination(plugin, "hook", config, &[]);
    runtime
        .deliver(
            plugin,
            &destination,
            &context("dlv_42"),
            &message("ETL failed"),
        )
        .await
        .expect("the plugin runs")
}

#[tokio::test]
async fn delivers_a_signed_message_the_receiver_verifies() {
    let receiver = Receiver::start(Some(SECRET)).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    let receipt = deliver(
        &runtime,
        &plugin,
        json!({ "url": receiver.url("/in"), "signing_secret": SECRET, "headers": { "X-Team": "data" } }),
    )
    .await
    .expect("delivered");
    assert!(receipt.detail.starts_with("200"), "{receipt:?}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].signature_ok, Some(true));
    assert_eq!(got[0].header("webhook-id"), Some("dlv_42"));
    assert_eq!(got[0].header("x-team"), Some("data"));
    assert_eq!(got[0].json()["title"], "ETL failed");
    assert_eq!(got[0].json()["severity"], "error");
}

/// Key rotation (Standard Webhooks "Webhook headers"): the destination
/// signs with the new and the old secret; a receiver that still holds only
/// the old one and a receiver that already switched both verify it, and an
/// ed25519 (`whsk_`) key is verified by a receiver holding its `whpk_`.
#[tokio::test]
async fn rotating_secrets_and_an_ed25519_key_verify_at_every_receiver() {
    const NEW: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    // RFC 8032 §7.1, TEST 1: the secret key and its public key.
    let seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    let public = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    let secrets = json!([NEW, SECRET, format!("whsk_{seed}")]);
    for trusted in [vec![SECRET], vec![NEW], vec![public]] {
        let receiver = Receiver::trusting(&trusted).await;
        deliver(
            &runtime,
            &plugin,
            json!({ "url": receiver.url("/in"), "signing_secret": secrets }),
        )
        .await
        .unwrap_or_else(|e| panic!("delivered to a receiver trusting {trusted:?}: {e:?}"));
        let got = receiver.received();
        assert_eq!(got[0].signature_ok, Some(true), "trusting {trusted:?}");
        let header = got[0].header("webhook-signature").expect("signed");
        let kinds: Vec<&str> = header
            .split(' ')
            .map(|s| s.split(',').next().unwrap_or(""))
            .collect();
        assert_eq!(kinds, ["v1", "v1", "v1a"], "{header}");
    }
    // A receiver trusting none of them refuses the message.
    let stranger = Receiver::trusting(&["whsec_c3RyYW5nZXJzdHJhbmdlcnN0cmFuZ2Vyc3RyYW5n"]).await;
    let refused = deliver(
        &runtime,
        &plugin,
        json!({ "url": stranger.url("/in"), "signing_secret": secrets }),
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver_and_rejected() {
    let receiver = Receiver::start(Some(SECRET)).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    let outcome = deliver(
        &runtime,
        &plugin,
        json!({ "url": receiver.url("/in"), "signing_secret": "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" }),
    )
    .await;
    assert!(
        matches!(&outcome, Err(DeliverError::Rejected(r)) if r.contains("401")),
        "{outcome:?}"
    );
    assert_eq!(receiver.received()[0].signature_ok, Some(false));
}

#[tokio::test]
async fn every_answer_class_maps_to_its_outcome() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    let config = json!({ "url": receiver.url("/in"), "timeout_ms": 300 });
    let cases: Vec<(Answer, &str)> = vec![
        (Answer::status(200), "delivered"),
        (Answer::status(204).body(""), "delivered"),
        (
            Answer::status(429).header("retry-after", "7"),
            "rate-limited 7000",
        ),
        (
            Answer::status(503).header("retry-after", "2"),
            "rate-limited 2000",
        ),
        (Answer::status(502), "retryable"),
        (Answer::status(503), "retryable"),
        (Answer::status(504), "retryable"),
        (Answer::status(500), "retryable"),
        (Answer::status(410), "rejected"),
        (Answer::status(400), "rejected"),
        (Answer::status(404), "rejected"),
        (
            Answer::status(302).header("location", "http://example.com/elsewhere"),
            "rejected",
        ),
        (
            Answer::status(200).delay(Duration::from_millis(1500)),
            "retryable",
        ),
    ];
    for (answer, expected) in cases {
        let shown = format!("{} {:?}", answer.status, answer.headers);
        receiver.script([answer]);
        let outcome = deliver(&runtime, &plugin, config.clone()).await;
        let got = match &outcome {
            Ok(_) => "delivered".to_owned(),
            Err(DeliverError::RateLimited { after, .. }) => {
                format!("rate-limited {}", after.as_millis())
            }
            Err(DeliverError::Retryable(_)) => "retryable".to_owned(),
            Err(DeliverError::Rejected(_)) => "rejected".to_owned(),
            Err(DeliverError::InvalidConfig(_)) => "invalid-config".to_owned(),
        };
        assert_eq!(got, expected, "answer {shown}: {outcome:?}");
    }
}

/// A receiver that redirects to its login page has not received anything:
/// the redirect is not followed (a followed 302 turns the POST into a GET
/// of the login page, which answers 200), it is handed to the plugin,
/// which reports it with where it points, without the query.
#[tokio::test]
async fn a_redirect_is_not_a_delivery() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    for status in [302, 307, 301] {
        let before = receiver.received().len();
        receiver.script([Answer::status(status)
            .header("location", "/login?next=%2Fin&session=s3cr3t")
            .body("<html>redirecting to the login page</html>")]);
        let outcome = deliver(&runtime, &plugin, json!({ "url": receiver.url("/in") })).await;
        let status_text = status.to_string();
        assert!(
            matches!(&outcome, Err(DeliverError::Rejected(r))
                if r.contains(&status_text) && r.contains("/login") && !r.contains("s3cr3t")),
            "{status}: {outcome:?}"
        );
        let paths: Vec<String> = receiver.received()[before..]
            .iter()
            .map(|r| r.path.clone())
            .collect();
        assert_eq!(
            paths,
            ["/in"],
            "{status}: the login page was never asked for"
        );
    }
}

#[tokio::test]
async fn connection_refused_is_retryable() {
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let outcome = deliver(
        &runtime,
        &plugin,
        json!({ "url": format!("http://127.0.0.1:{port}/in") }),
    )
    .await;
    assert!(
        matches!(outcome, Err(DeliverError::Retryable(_))),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn loopback_is_refused_without_an_egress_exception() {
    let receiver = Receiver::start(None).await;
    let runtime = runtime(&[]);
    let plugin = load(&runtime, PLUGIN).await;
    let outcome = deliver(&runtime, &plugin, json!({ "url": receiver.url("/in") })).await;
    assert!(
        matches!(&outcome, Err(DeliverError::InvalidConfig(r)) if r.contains("private address")),
        "{outcome:?}"
    );
    let by_name = deliver(
        &runtime,
        &plugin,
        json!({ "url": format!("http://localhost:{}/in", receiver.port()) }),
    )
    .await;
    assert!(
        matches!(&by_name, Err(DeliverError::InvalidConfig(r)) if r.contains("private address")),
        "a name resolving to loopback is refused too: {by_name:?}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn render_is_the_exact_request_without_sending() {
    let receiver = Receiver::start(Some(SECRET)).await;
    let runtime = runtime(&["127.0.0.1/32"]);
    let plugin = load(&runtime, PLUGIN).await;
    let destination = runtime.destination(
        &plugin,
        "hook",
        json!({ "url": receiver.url("/in"), "signing_secret": SECRET }),
        &[],
    );
    let outgoing = runtime
        .render(
            &plugin,
            &destination,
            &context("dlv_7"),
            &message("preview"),
        )
        .await
        .expect("runs")
        .expect("renders");
    let carillon::plugin::types::Outgoing::Http(request) = outgoing else {
        panic!("webhook renders HTTP");
    };
    assert_eq!(request.url, receiver.url("/in"));
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "webhook-id" && v == "dlv_7")
    );
    assert!(receiver.received().is_empty(), "render has no side effects");
}
