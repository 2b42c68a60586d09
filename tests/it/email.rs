//! The email channel end to end: the real `email.wasm` through the real
//! runtime and its SMTP egress (lettre over rustls) against a real SMTP
//! server on 127.0.0.1 (`fakes::smtp`: plain, STARTTLS, implicit TLS with a
//! self-signed certificate, AUTH PLAIN/LOGIN, scripted 451/550). Received
//! messages are parsed back with `mail-parser`. The dispatcher tests drive
//! retries and the fallback with a manual clock.

use std::time::Duration;

use carillon::dispatch::retry::RetryPolicy;
use carillon::egress::EgressPolicy;
use carillon::egress::smtp::SmtpSettings;
use carillon::message::{Column, Comparison, Condition, Field, Link, Message, Severity, Table};
use carillon::plugin::types::{DeliverError, Outgoing, Receipt};
use carillon::plugin::{Limits, Plugin, Runtime, RuntimeConfig};
use carillon_outbox::{DeliveryId, StateKind};
use carillon_tests::fakes::smtp::{AuthMechanism, Received, Security, SmtpServer};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use crate::support::{Pipeline, context, load};

const PLUGIN: &str = "carillon-plugin-email";

/// A runtime allowing `allow`, trusting `roots` (PEM) for SMTP TLS.
fn runtime(allow: &[&str], roots: &[&str]) -> Runtime {
    let policy = EgressPolicy::allowing(allow.iter().map(|n| n.parse().expect("test network")));
    Runtime::new(RuntimeConfig {
        limits: Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(5),
            wall_time: Duration::from_secs(20),
            max_output_bytes: 4 << 20,
            max_log_lines: 100,
        },
        max_concurrent_calls: 8,
        // The same cache as `support`, so the plugin compiles once.
        cache_dir: Some(crate::support::cache_dir()),
        egress: policy,
        smtp: SmtpSettings {
            extra_roots_pem: roots.iter().map(|r| (*r).to_owned()).collect(),
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(10),
            hello_name: Some("carillon.test".into()),
            ..SmtpSettings::default()
        },
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// A destination config for `server`, reached as `host`.
fn config(server: &SmtpServer, host: &str) -> Value {
    let security = match server.security() {
        Security::Plain => "none",
        Security::StartTls => "starttls",
        Security::ImplicitTls => "implicit-tls",
    };
    json!({
        "server": { "host": host, "port": server.port(), "security": security },
        "from": "Carillon <alerts@carillon.test>",
        "to": ["Oncall <oncall@example.com>", "lead@example.com"],
        "cc": ["数据组 <data@example.cn>"],
        "bcc": ["audit@example.com"],
        "reply_to": "noc@example.com",
        "attachments": true
    })
}

fn with_auth(mut config: Value, user: &str, password: &str) -> Value {
    config["server"]["username"] = json!(user);
    config["server"]["password"] = json!(password);
    config
}

/// A message with a CJK title, a table with conditions, fields and a link.
fn report() -> Message {
    Message {
        title: "数据质量报告 Data quality".to_owned(),
        markdown: "Two of three checks are below the **60%** threshold. <b>not bold</b>".to_owned(),
        text: "Two of three checks are below the 60% threshold. <b>not bold</b>".to_owned(),
        table: Some(Table {
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
            rows: vec![
                vec!["completeness".into(), "92.5".into()],
                vec!["freshness".into(), "41".into()],
            ],
        }),
        link: Some(Link {
            url: "https://etl.example.com/tasks/42".into(),
            label: Some("Open task".into()),
        }),
        mentions: Vec::new(),
        severity: Severity::Error,
        locale: "en".to_owned(),
        fields: vec![Field {
            name: "owner".into(),
            value: "alice".into(),
        }],
    }
}

async fn deliver(
    runtime: &Runtime,
    plugin: &Plugin,
    config: Value,
    message: &Message,
) -> Result<Receipt, DeliverError> {
    let destination = runtime.destination(plugin, "mail", config, &[]);
    runtime
        .deliver(plugin, &destination, &context("dlv_mail_1"), message)
        .await
        .expect("the plugin runs")
}

fn only(server: &SmtpServer) -> Received {
    let received = server.received();
    assert_eq!(received.len(), 1, "{received:#?}");
    received.into_iter().next().expect("one message")
}

fn assert_delivered(outcome: &Result<Receipt, DeliverError>) {
    match outcome {
        Ok(receipt) => {
            assert!(receipt.detail.starts_with("250 "), "{receipt:?}");
            assert_eq!(
                receipt.remote_id.as_deref(),
                Some("<carillon.dlv_mail_1@carillon.test>")
            );
        }
        Err(e) => panic!("not delivered: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_delivery_carries_a_complete_message() {
    let server = SmtpServer::start(Security::Plain).await;
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    let outcome = deliver(&runtime, &plugin, config(&server, "127.0.0.1"), &report()).await;
    assert_delivered(&outcome);

    let received = only(&server);
    assert!(!received.tls);
    assert_eq!(received.helo, "carillon.test");
    assert_eq!(received.from, "alerts@carillon.test");
    assert_eq!(
        received.to,
        [
            "oncall@example.com",
            "lead@example.com",
            "data@example.cn",
            "audit@example.com"
        ]
    );
    let parsed = MessageParser::default()
        .parse(&received.data)
        .expect("the received message parses");
    // Headers.
    assert_eq!(parsed.subject(), Some("数据质量报告 Data quality"));
    assert!(parsed.date().is_some(), "Date");
    assert_eq!(
        parsed.message_id(),
        Some("carillon.dlv_mail_1@carillon.test")
    );
    let raw = String::from_utf8(received.data.clone()).expect("7-bit");
    let headers = raw.split("\r\n\r\n").next().expect("headers");
    assert!(headers.contains("\r\nMIME-Version: 1.0\r\n"), "{headers}");
    assert!(
        !headers.to_ascii_lowercase().contains("bcc") && !headers.contains("audit@"),
        "Bcc must not appear in the headers: {headers}"
    );
    let from = parsed.from().and_then(|a| a.first()).expect("From");
    assert_eq!(
        (from.name(), from.address()),
        (Some("Carillon"), Some("alerts@carillon.test"))
    );
    let to: Vec<_> = parsed
        .to()
        .expect("To")
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["oncall@example.com", "lead@example.com"]);
    let cc = parsed.cc().and_then(|a| a.first()).expect("Cc");
    assert_eq!(
        (cc.name(), cc.address()),
        (Some("数据组"), Some("data@example.cn"))
    );
    // Both parts, text first.
    let root = parsed.root_part().content_type().expect("content type");
    assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("mixed")));
    assert!(
        raw.find("Content-Type: text/plain").expect("text part")
            < raw.find("Content-Type: text/html").expect("html part")
    );
    let text = parsed.body_text(0).expect("text part");
    assert!(text.contains("ERROR: 数据质量报告 Data quality"), "{text}");
    assert!(text.contains("92.5% ✓"), "{text}");
    assert!(
        text.contains("Open task: https://etl.example.com/tasks/42"),
        "{text}"
    );
    let html = parsed.body_html(0).expect("html part");
    assert!(
        html.contains("color:#1b7f3b;background-color:#e3fcef;font-weight:bold;\">92.5%</td>"),
        "the passing cell is green: {html}"
    );
    assert!(
        html.contains("color:#c9372c;background-color:#ffebe6;font-weight:bold;\">41%</td>"),
        "the failing cell is red: {html}"
    );
    assert!(html.contains(">Score</th>"), "{html}");
    assert!(
        html.contains("&lt;b&gt;not bold&lt;/b&gt;"),
        "escaped: {html}"
    );
    assert!(
        html.contains("href=\"https://etl.example.com/tasks/42\""),
        "{html}"
    );
    // Attachments.
    let names: Vec<_> = parsed
        .attachments()
        .filter_map(|a| a.attachment_name())
        .collect();
    assert_eq!(names, ["message.md", "table.csv"]);
    let csv = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("table.csv"))
        .expect("csv");
    assert_eq!(
        String::from_utf8_lossy(csv.contents()).replace('\u{feff}', ""),
        "Check,Score\r\ncompleteness,92.5\r\nfreshness,41\r\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_internationalized_domain_is_sent_in_its_xn_form() {
    let server = SmtpServer::start(Security::Plain).await;
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    let mut cfg = config(&server, "127.0.0.1");
    cfg["to"] = json!(["运维 <ops@例子.公司>"]);
    cfg["cc"] = json!([]);
    cfg["bcc"] = json!(["audit@bücher.example"]);
    let outcome = deliver(&runtime, &plugin, cfg.clone(), &report()).await;
    assert_delivered(&outcome);
    let received = only(&server);
    assert_eq!(received.to.len(), 2, "{:?}", received.to);
    assert!(
        received.to.iter().all(|a| a.is_ascii()),
        "{:?}",
        received.to
    );
    assert_eq!(received.to[1], "audit@xn--bcher-kva.example");
    let raw = String::from_utf8(received.data.clone()).expect("7-bit");
    assert!(
        raw.contains(&received.to[0]),
        "the To header names the xn-- form"
    );
    // A non-ASCII local part needs SMTPUTF8: refused by the config check,
    // saying so, and nothing is sent.
    cfg["to"] = json!(["用户@example.com"]);
    let issues = runtime
        .validate(&plugin, &cfg)
        .await
        .expect("the plugin runs");
    assert!(
        issues.iter().any(|i| i.message.contains("SMTPUTF8")),
        "{issues:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_returns_the_mail_without_sending_it() {
    let server = SmtpServer::start(Security::Plain).await;
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    let destination = runtime.destination(&plugin, "mail", config(&server, "127.0.0.1"), &[]);
    let outgoing = runtime
        .render(&plugin, &destination, &context("dlv_mail_1"), &report())
        .await
        .expect("the plugin runs")
        .expect("rendered");
    let Outgoing::Mail(mail) = outgoing else {
        panic!("a mail, not {outgoing:?}")
    };
    assert_eq!(
        (mail.host.as_str(), mail.port),
        ("127.0.0.1", server.port())
    );
    assert_eq!(mail.envelope_to.len(), 4);
    assert!(String::from_utf8_lossy(&mail.message).contains("Message-ID: <carillon.dlv_mail_1@"));
    assert_eq!(server.connections(), 0, "render must not connect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_and_login_over_tls() {
    // PLAIN over STARTTLS, trusting the server's self-signed certificate.
    let server = SmtpServer::builder(Security::StartTls)
        .auth("alice", "s3cret")
        .start()
        .await;
    let runtime = runtime(&["127.0.0.1/32"], &[server.certificate_pem()]);
    let plugin = load(&runtime, PLUGIN).await;
    let config = with_auth(config(&server, "localhost"), "alice", "s3cret");
    assert_delivered(&deliver(&runtime, &plugin, config, &report()).await);
    let received = only(&server);
    assert!(received.tls, "upgraded before the mail");
    assert_eq!(received.user.as_deref(), Some("alice"));

    // LOGIN only, over implicit TLS.
    let login = SmtpServer::builder(Security::ImplicitTls)
        .auth("bob", "pa55")
        .mechanisms(&[AuthMechanism::Login])
        .start()
        .await;
    let runtime = runtime_for(&login);
    let plugin = load(&runtime, PLUGIN).await;
    let config = with_auth(config_for(&login), "bob", "pa55");
    assert_delivered(&deliver(&runtime, &plugin, config, &report()).await);
    assert_eq!(only(&login).user.as_deref(), Some("bob"));

    // A wrong password: 535 is a permanent refusal, and nothing is sent.
    let config = with_auth(config_for(&login), "bob", "wrong");
    match deliver(&runtime, &plugin, config, &report()).await {
        Err(DeliverError::Rejected(reason)) => assert!(reason.contains("535"), "{reason}"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(login.received().len(), 1);
}

fn runtime_for(server: &SmtpServer) -> Runtime {
    runtime(&["127.0.0.1/32"], &[server.certificate_pem()])
}

fn config_for(server: &SmtpServer) -> Value {
    config(server, "localhost")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_trusted_self_signed_certificate() {
    let server = SmtpServer::start(Security::StartTls).await;
    let runtime = runtime_for(&server);
    let plugin = load(&runtime, PLUGIN).await;
    assert_delivered(&deliver(&runtime, &plugin, config_for(&server), &report()).await);
    assert!(only(&server).tls);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_with_a_trusted_self_signed_certificate() {
    let server = SmtpServer::start(Security::ImplicitTls).await;
    let runtime = runtime_for(&server);
    let plugin = load(&runtime, PLUGIN).await;
    // By IP address too: the certificate names 127.0.0.1.
    for host in ["localhost", "127.0.0.1"] {
        let outcome = deliver(&runtime, &plugin, config(&server, host), &report()).await;
        assert_delivered(&outcome);
    }
    let received = server.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.tls));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_never_accepted() {
    let server = SmtpServer::builder(Security::ImplicitTls)
        .auth("alice", "s3cret")
        .start()
        .await;
    // Another server's certificate is trusted, not this one's.
    let other = SmtpServer::start(Security::Plain).await;
    let runtime = runtime(&["127.0.0.1/32"], &[other.certificate_pem()]);
    let plugin = load(&runtime, PLUGIN).await;
    let config = with_auth(config_for(&server), "alice", "s3cret");
    match deliver(&runtime, &plugin, config, &report()).await {
        Err(DeliverError::Retryable(reason)) => {
            assert!(reason.contains("TLS"), "{reason}");
            assert!(reason.contains("certificate"), "{reason}");
        }
        other => panic!("expected a retryable TLS failure, got {other:?}"),
    }
    assert_eq!(server.connections(), 1);
    assert_eq!(server.auth_attempts(), 0, "no credentials without trust");
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_when_asked_for() {
    // The server offers no STARTTLS: credentials and mail must not be sent.
    let server = SmtpServer::builder(Security::Plain)
        .auth("alice", "s3cret")
        .start()
        .await;
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    let mut config = with_auth(config(&server, "127.0.0.1"), "alice", "s3cret");
    config["server"]["security"] = json!("starttls");
    let outcome = deliver(&runtime, &plugin, config, &report()).await;
    assert!(
        matches!(outcome, Err(DeliverError::Retryable(_))),
        "{outcome:?}"
    );
    assert_eq!(server.connections(), 1);
    assert_eq!(server.auth_attempts(), 0);
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_rejected_with_the_servers_words() {
    let server = SmtpServer::start(Security::Plain).await;
    server.reject_recipient("lead@example.com");
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    match deliver(&runtime, &plugin, config(&server, "127.0.0.1"), &report()).await {
        Err(DeliverError::Rejected(reason)) => {
            assert!(reason.contains("550"), "{reason}");
            assert!(reason.contains("User unknown"), "{reason}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    server.fail_next(1);
    let mut config = config(&server, "127.0.0.1");
    config["to"] = json!(["oncall@example.com"]);
    match deliver(&runtime, &plugin, config, &report()).await {
        Err(DeliverError::Retryable(reason)) => assert!(reason.contains("451"), "{reason}"),
        other => panic!("expected a retryable 451, got {other:?}"),
    }
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_is_checked_before_connecting() {
    let server = SmtpServer::start(Security::Plain).await;

    // A private address the policy does not allow: as an IP and as a name.
    let strict = runtime(&[], &[]);
    let plugin = load(&strict, PLUGIN).await;
    for host in ["127.0.0.1", "localhost"] {
        match deliver(&strict, &plugin, config(&server, host), &report()).await {
            Err(DeliverError::InvalidConfig(reason)) => {
                assert!(reason.contains("private"), "{host}: {reason}")
            }
            other => panic!("{host}: expected a refusal, got {other:?}"),
        }
    }

    // A host that is not granted: the grant was computed for another host.
    let runtime = runtime(&["127.0.0.1/32"], &[]);
    let plugin = load(&runtime, PLUGIN).await;
    let mut destination =
        runtime.destination(&plugin, "mail", config(&server, "mail.example.com"), &[]);
    destination.config["server"]["host"] = json!("127.0.0.1");
    let outcome = runtime
        .deliver(&plugin, &destination, &context("dlv_mail_1"), &report())
        .await
        .expect("the plugin runs");
    match outcome {
        Err(DeliverError::InvalidConfig(reason)) => {
            assert!(reason.contains("not granted"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    assert_eq!(server.connections(), 0, "nothing may reach the server");
}

/// The pipeline with the email plugin, and shorthands for these tests.
struct Gateway(Pipeline);

impl std::ops::Deref for Gateway {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.0
    }
}

impl Gateway {
    async fn start(retry: RetryPolicy) -> Gateway {
        let runtime = runtime(&["127.0.0.1/32"], &[]);
        Gateway(Pipeline::start(runtime, PLUGIN, retry, Duration::from_secs(24 * 3600)).await)
    }

    fn destination(&self, name: &str, config: Value, fallback: Option<&str>) {
        self.0
            .destination(name, "email", config, Vec::new(), fallback);
    }

    async fn enqueue(&self, message: &Message, destination: &str) -> DeliveryId {
        let ids = self.0.enqueue(message, &[destination]).await;
        ids.into_iter().next().expect("one")
    }

    async fn stop(self) {
        self.0.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_failures_are_retried_until_accepted() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let server = SmtpServer::start(Security::Plain).await;
    server.fail_next(2);
    gw.destination("mail", config(&server, "127.0.0.1"), None);
    let id = gw.enqueue(&report(), "mail").await;
    gw.advance_until(Duration::from_secs(5), "delivered after two 451s", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
    let view = gw.outbox.delivery(&id).expect("read").expect("exists");
    assert_eq!(view.history.len(), 3, "{:#?}", view.history);
    assert_eq!(server.transactions(), 3);
    let received = only(&server);
    let parsed = MessageParser::default()
        .parse(&received.data)
        .expect("parses");
    // The Message-ID is the delivery's, the same on every attempt.
    assert_eq!(
        parsed.message_id().map(str::to_owned),
        Some(format!("carillon.{id}@carillon.test"))
    );
    // The receipt's id (the Message-ID) is kept on the delivering attempt.
    assert_remote_id(&view, &format!("carillon.{id}@carillon.test"));
    gw.stop().await;
}

/// The delivered state and the last attempt both carry the channel's id
/// for the message.
fn assert_remote_id(view: &carillon_outbox::DeliveryView, expected: &str) {
    let carillon_outbox::DeliveryState::Delivered(delivered) = &view.state else {
        panic!("not delivered: {view:#?}");
    };
    let kept = delivered.remote_id.as_deref().unwrap_or_default();
    assert!(kept.contains(expected), "{kept:?}");
    match &view.history.last().expect("an attempt").outcome {
        carillon_outbox::AttemptOutcome::Delivered { remote_id, .. } => {
            assert_eq!(remote_id.as_deref(), Some(kept), "{view:#?}");
        }
        other => panic!("last attempt {other:?}"),
    }
}

/// Delivered at the first attempt (the outbox's compact record), the
/// Message-ID is kept too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_try_delivery_keeps_the_message_id() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let server = SmtpServer::start(Security::Plain).await;
    gw.destination("mail", config(&server, "127.0.0.1"), None);
    let id = gw.enqueue(&report(), "mail").await;
    gw.advance_until(Duration::from_secs(1), "delivered", || {
        gw.state(&id) == Some(StateKind::Delivered)
    })
    .await;
    let view = gw.outbox.delivery(&id).expect("read").expect("exists");
    assert_eq!(view.history.len(), 1, "{:#?}", view.history);
    assert_remote_id(&view, &format!("carillon.{id}@carillon.test"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_dead_letters_and_the_fallback_receives_the_mail() {
    let gw = Gateway::start(RetryPolicy::default()).await;
    let primary = SmtpServer::start(Security::Plain).await;
    primary.reject_recipient("lead@example.com");
    let backup = SmtpServer::start(Security::Plain).await;
    gw.destination("mail", config(&primary, "127.0.0.1"), Some("backup"));
    let mut backup_config = config(&backup, "127.0.0.1");
    backup_config["to"] = json!(["backup-oncall@example.com"]);
    backup_config["cc"] = json!([]);
    backup_config["bcc"] = json!([]);
    gw.destination("backup", backup_config, None);
    let id = gw.enqueue(&report(), "mail").await;
    gw.advance_until(Duration::from_secs(1), "dead-lettered", || {
        gw.state(&id) == Some(StateKind::Dead)
    })
    .await;
    let view = gw.outbox.delivery(&id).expect("read").expect("exists");
    assert_eq!(
        view.history.len(),
        1,
        "a 550 is not retried: {:#?}",
        view.history
    );
    gw.advance_until(Duration::from_secs(1), "the fallback delivered", || {
        backup.received().len() == 1
    })
    .await;
    assert!(primary.received().is_empty());
    let received = only(&backup);
    assert_eq!(received.to, ["backup-oncall@example.com"]);
    let parsed = MessageParser::default()
        .parse(&received.data)
        .expect("parses");
    assert_eq!(parsed.subject(), Some("数据质量报告 Data quality"));
    let fallback_id = view.fallback_to.clone().expect("the chain is recorded");
    // The server has the mail once DATA is acknowledged; the outcome is
    // committed just after, so wait for it rather than race it.
    gw.advance_until(
        Duration::from_secs(1),
        "the fallback recorded as delivered",
        || gw.state(&fallback_id) == Some(StateKind::Delivered),
    )
    .await;
    gw.stop().await;
}
