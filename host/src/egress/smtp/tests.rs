//! Unit tests of the SMTP egress: settings, envelopes, checks and the
//! classification of lettre's errors.

use super::*;

fn settings() -> SmtpSettings {
    SmtpSettings::default()
}

#[test]
fn envelopes_are_checked() {
    let to = vec!["a@example.com".to_owned(), "b@example.org".to_owned()];
    let ok = envelope("alerts@example.com", &to, &settings()).unwrap();
    assert_eq!(ok.to().len(), 2);
    assert!(matches!(
        envelope("not an address", &to, &settings()),
        Err(SmtpError::InvalidMail(m)) if m.contains("sender")
    ));
    assert!(matches!(
        envelope("a@example.com", &[], &settings()),
        Err(SmtpError::InvalidMail(_))
    ));
    assert!(matches!(
        envelope(
            "a@example.com",
            &["x@y\r\nRCPT TO:<z@w>".to_owned()],
            &settings()
        ),
        Err(SmtpError::InvalidMail(_))
    ));
    let many: Vec<String> = (0..101).map(|i| format!("u{i}@example.com")).collect();
    assert!(matches!(
        envelope("a@example.com", &many, &settings()),
        Err(SmtpError::InvalidMail(m)) if m.contains("limit")
    ));
}

#[test]
fn bad_roots_and_hello_names_are_refused() {
    let policy = Arc::new(EgressPolicy::strict());
    let bad = SmtpSettings {
        extra_roots_pem: vec!["not a certificate".into()],
        ..settings()
    };
    assert!(matches!(
        SmtpEgress::new(policy.clone(), bad),
        Err(SmtpSetupError::Root { index: 0, .. })
    ));
    let bad = SmtpSettings {
        hello_name: Some("two words".into()),
        ..settings()
    };
    assert!(matches!(
        SmtpEgress::new(policy, bad),
        Err(SmtpSetupError::HelloName(_))
    ));
}

fn mail(host: &str, security: SmtpSecurity) -> OutgoingMail {
    OutgoingMail {
        server: SmtpServer {
            host: host.into(),
            port: 25,
            security,
            username: None,
            password: None,
        },
        envelope_from: "a@example.com".into(),
        envelope_to: vec!["b@example.com".into()],
        message: b"Subject: x\r\n\r\nx\r\n".to_vec(),
    }
}

// Every case here is refused before a connection is attempted; the
// addresses a broken check could reach are loopback ones only.
#[tokio::test]
async fn checks_run_before_any_connection() {
    let strict = SmtpEgress::new(Arc::new(EgressPolicy::strict()), settings()).unwrap();
    let grant = Grant::new(vec!["*".parse().unwrap()]);
    // Not granted.
    assert!(matches!(
        strict.send(&Grant::default(), mail("127.0.0.1", SmtpSecurity::None)).await,
        Err(SmtpError::Denied(h)) if h == "127.0.0.1:25"
    ));
    // Private and not allowed, also as an IPv4-mapped IPv6 literal.
    assert!(matches!(
        strict.send(&grant, mail("127.0.0.1", SmtpSecurity::StartTls)).await,
        Err(SmtpError::PrivateAddress(a)) if a == "127.0.0.1"
    ));
    assert!(matches!(
        strict
            .send(&grant, mail("[::ffff:127.0.0.1]", SmtpSecurity::StartTls))
            .await,
        Err(SmtpError::PrivateAddress(_))
    ));
    // A username without a password.
    let mut half = mail("127.0.0.1", SmtpSecurity::StartTls);
    half.server.username = Some("u".into());
    assert!(matches!(
        strict.send(&grant, half).await,
        Err(SmtpError::InvalidMail(_))
    ));
    // Not a host.
    assert!(matches!(
        strict
            .send(&grant, mail("a b", SmtpSecurity::StartTls))
            .await,
        Err(SmtpError::InvalidMail(_))
    ));
    // A bad envelope.
    let mut bad = mail("127.0.0.1", SmtpSecurity::StartTls);
    bad.envelope_to = vec!["nobody".into()];
    assert!(matches!(
        strict.send(&grant, bad).await,
        Err(SmtpError::InvalidMail(_))
    ));
}

#[tokio::test]
async fn plain_smtp_is_only_for_private_relays() {
    let egress = SmtpEgress::new(
        Arc::new(EgressPolicy::allowing(["10.0.0.0/8".parse().unwrap()])),
        settings(),
    )
    .unwrap();
    let server = |host: &str, security| mail(host, security).server;
    // Resolution and classification only: nothing connects.
    let public = egress
        .permitted_addresses(
            "93.184.216.34",
            &server("93.184.216.34", SmtpSecurity::None),
        )
        .await;
    assert!(matches!(public, Err(SmtpError::Denied(m)) if m.contains("without TLS")));
    let with_tls = egress
        .permitted_addresses(
            "93.184.216.34",
            &server("93.184.216.34", SmtpSecurity::StartTls),
        )
        .await
        .unwrap();
    assert_eq!(with_tls.len(), 1);
    let relay = egress
        .permitted_addresses("10.1.2.3", &server("10.1.2.3", SmtpSecurity::None))
        .await
        .unwrap();
    assert_eq!(relay, ["10.1.2.3:25".parse().unwrap()]);
    // Credentials in clear text: only to loopback.
    assert!(matches!(
        check_clear_text_credentials(&relay, true, SmtpSecurity::None),
        Err(SmtpError::InvalidMail(m)) if m.contains("only over TLS")
    ));
    assert!(check_clear_text_credentials(&relay, true, SmtpSecurity::StartTls).is_ok());
    assert!(check_clear_text_credentials(&relay, false, SmtpSecurity::None).is_ok());
    let loopback = ["127.0.0.1:2525".parse().unwrap()];
    assert!(check_clear_text_credentials(&loopback, true, SmtpSecurity::None).is_ok());
}

#[test]
fn passwords_are_redacted_in_debug() {
    let server = SmtpServer {
        host: "smtp.example.com".into(),
        port: 465,
        security: SmtpSecurity::ImplicitTls,
        username: Some("alice".into()),
        password: Some("hunter2".into()),
    };
    let shown = format!("{server:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("alice"));
}
