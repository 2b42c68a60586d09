//! Native tests through the SDK harness: golden HTML and text for every
//! sample (parsed back from the encoded message with `mail-parser`, so the
//! goldens show what a mail client shows), the MIME structure and headers,
//! escaping, table colours, fitting, classification and config checks.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use carillon_sdk::testing::{Harness, check_golden, sample, sample_message, samples};
use carillon_sdk::{
    Column, Comparison, Condition, DeliverError, Mail, Outgoing, SmtpError, SmtpReply, Table,
};
use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use super::*;

fn config() -> Value {
    json!({
        "server": {
            "host": "smtp.example.com",
            "port": 465,
            "security": "implicit-tls",
            "username": "alerts@example.com",
            "password": "s3cret"
        },
        "from": "Carillon Alerts <alerts@example.com>",
        "to": ["Oncall Team <oncall@example.com>", "lead@example.com"],
        "cc": ["数据组 <data@example.cn>"],
        "bcc": ["audit@example.com"],
        "reply_to": "noc@example.com",
        "attachments": true
    })
}

fn mail_of(outgoing: Outgoing) -> Mail {
    match outgoing {
        Outgoing::Mail(m) => m,
        Outgoing::Http(_) => panic!("the email plugin never sends HTTP"),
    }
}

fn render(config: &Value, message: &Message) -> Mail {
    mail_of(Harness::<Email>::new().render(config, message).unwrap())
}

fn golden(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{file}"))
}

/// The message's header block, as sent.
fn header_block(message: &[u8]) -> String {
    let text = String::from_utf8(message.to_vec()).unwrap();
    text.split("\r\n\r\n").next().unwrap().replace("\r\n", "\n")
}

/// Envelope, headers as sent, the decoded subject, the decoded text part
/// and the attachments, as a mail client would read them.
fn pretty(mail: &Mail) -> String {
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let mut out = format!(
        "SMTP {}:{} ({}, AUTH as {})\nMAIL FROM: {}\nRCPT TO: {}\n# message: {} bytes\n\n",
        mail.server.host,
        mail.server.port,
        match mail.server.security {
            carillon_sdk::SmtpSecurity::ImplicitTls => "implicit-tls",
            carillon_sdk::SmtpSecurity::Starttls => "starttls",
            carillon_sdk::SmtpSecurity::None => "none",
        },
        mail.server.username.as_deref().unwrap_or("-"),
        mail.envelope_from,
        mail.envelope_to.join(", "),
        mail.message.len()
    );
    out.push_str(&header_block(&mail.message));
    out.push_str(&format!(
        "\n\n# decoded subject: {}\n\n--- text/plain\n",
        parsed.subject().unwrap()
    ));
    out.push_str(&parsed.body_text(0).unwrap());
    for attachment in parsed.attachments() {
        out.push_str(&format!(
            "\n--- attachment {} ({}/{})\n",
            attachment.attachment_name().unwrap_or("?"),
            attachment.content_type().unwrap().ctype(),
            attachment.content_type().unwrap().subtype().unwrap_or("")
        ));
        out.push_str(&String::from_utf8_lossy(attachment.contents()));
    }
    out.push('\n');
    out.replace("\r\n", "\n")
}

/// The decoded HTML part, with the LF line ends it was written with.
fn html_of(mail: &Mail) -> String {
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    parsed.body_html(0).unwrap().replace("\r\n", "\n")
}

#[test]
fn golden_messages() {
    for (name, message) in samples() {
        let mail = render(&config(), &message);
        check_golden(&golden(&format!("{name}.txt")), &pretty(&mail));
        check_golden(&golden(&format!("{name}.html")), &html_of(&mail));
    }
    // One message as sent (CRLF shown as LF), to pin the encoding.
    let mail = render(&config(), &sample("table"));
    check_golden(
        &golden("table.eml"),
        &String::from_utf8(mail.message)
            .unwrap()
            .replace("\r\n", "\n"),
    );
}

#[test]
fn the_message_is_7bit_crlf_with_short_lines() {
    for (name, message) in samples() {
        let mail = render(&config(), &message);
        assert!(mail.message.is_ascii(), "{name}");
        let text = String::from_utf8(mail.message.clone()).unwrap();
        assert!(
            !text.replace("\r\n", "").contains(['\r', '\n']),
            "{name}: bare CR or LF"
        );
        for line in text.split("\r\n") {
            assert!(line.len() <= 78, "{name}: {line:?}");
        }
    }
}

#[test]
fn headers_and_structure() {
    let mail = render(&config(), &sample("cjk"));
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    assert_eq!(parsed.subject(), Some("数据同步任务失败"));
    assert_eq!(parsed.message_id(), Some("carillon.dlv_test@example.com"));
    assert_eq!(parsed.date().unwrap().to_rfc3339(), "2023-11-14T22:13:20Z");
    let from = parsed.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Carillon Alerts"));
    assert_eq!(from.address(), Some("alerts@example.com"));
    let to: Vec<_> = parsed
        .to()
        .unwrap()
        .iter()
        .map(|a| a.address().unwrap())
        .collect();
    assert_eq!(to, ["oncall@example.com", "lead@example.com"]);
    let cc = parsed.cc().unwrap().first().unwrap();
    assert_eq!(
        (cc.name(), cc.address()),
        (Some("数据组"), Some("data@example.cn"))
    );
    assert_eq!(
        parsed.reply_to().unwrap().first().unwrap().address(),
        Some("noc@example.com")
    );
    let headers = header_block(&mail.message);
    assert!(headers.contains("\nMIME-Version: 1.0\n"), "{headers}");
    assert!(!headers.to_ascii_lowercase().contains("bcc"), "{headers}");
    assert!(!headers.contains("audit@example.com"), "{headers}");
    assert_eq!(
        mail.envelope_to,
        [
            "oncall@example.com",
            "lead@example.com",
            "data@example.cn",
            "audit@example.com"
        ]
    );
    assert_eq!(mail.envelope_from, "alerts@example.com");
    // multipart/mixed around multipart/alternative: text first, HTML last.
    let root = parsed.root_part().content_type().unwrap();
    assert_eq!((root.ctype(), root.subtype()), ("multipart", Some("mixed")));
    // Header names, MIME types and charsets are case-insensitive (RFC 2045
    // §5.1), and the charset may be quoted: compare them that way.
    let text = String::from_utf8(mail.message.clone())
        .unwrap()
        .to_ascii_lowercase()
        .replace("charset=\"utf-8\"", "charset=utf-8");
    let plain_at = text
        .find("content-type: text/plain; charset=utf-8")
        .unwrap();
    let html_at = text.find("content-type: text/html; charset=utf-8").unwrap();
    assert!(plain_at < html_at);
    assert!(text.contains("content-type: multipart/alternative;"));
    assert_eq!(
        text.matches("content-transfer-encoding: quoted-printable")
            .count(),
        2
    );
    let names: Vec<_> = parsed
        .attachments()
        .map(|a| a.attachment_name().unwrap())
        .collect();
    assert_eq!(names, ["message.md"], "no table, no CSV");
    // Chinese footer and banner.
    let html = parsed.body_html(0).unwrap();
    assert!(html.contains("错误"), "{html}");
    assert!(html.contains("投递编号：dlv_test"), "{html}");
    assert!(html.contains("<html lang=\"zh-CN\">"));

    // Without attachments the root is the alternative.
    let mut plain = config();
    plain["attachments"] = json!(false);
    let mail = render(&plain, &sample("plain"));
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let root = parsed.root_part().content_type().unwrap();
    assert_eq!(
        (root.ctype(), root.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(parsed.attachment_count(), 0);
    assert!(parsed.cc().is_some());
}

/// The subject (what mime.rs's own tests pinned before lettre wrote it):
/// line breaks and control characters in a title cannot end the header or
/// add one, whitespace collapses, and long or non-ASCII titles are encoded
/// and folded into lines a client reads back as written.
#[test]
fn subjects_are_one_clean_header() {
    let subject_of = |title: &str| {
        let mut message = sample("plain");
        message.title = title.to_owned();
        let mail = render(&config(), &message);
        let headers = header_block(&mail.message);
        assert!(
            !headers.to_ascii_lowercase().contains("\nbcc:"),
            "{headers}"
        );
        let text = String::from_utf8(mail.message.clone()).unwrap();
        for line in text.split("\r\n") {
            assert!(line.len() <= 78, "{line:?}");
        }
        let parsed = MessageParser::default().parse(&mail.message).unwrap();
        parsed.subject().unwrap_or_default().to_owned()
    };
    assert_eq!(
        subject_of("Nightly  ETL\r\nBcc: evil@example.com\u{7}"),
        "Nightly ETL Bcc: evil@example.com"
    );
    let long = "数据同步任务失败，".repeat(12);
    assert_eq!(subject_of(&long), long);
    assert_eq!(subject_of("=?UTF-8?B?x?="), "=?UTF-8?B?x?=");
    let words = "word ".repeat(30);
    assert_eq!(subject_of(&words), words.trim_end());
}

#[test]
fn table_cells_have_display_names_and_colours() {
    let mail = render(&config(), &sample("table"));
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let html = parsed.body_html(0).unwrap();
    // 92.5 >= 60 is good (green), 41 is bad (red); cost keeps its prefix.
    assert!(
        html.contains("color:#1b7f3b;background-color:#e3fcef;font-weight:bold;\">92.5%</td>"),
        "{html}"
    );
    assert!(
        html.contains("color:#c9372c;background-color:#ffebe6;font-weight:bold;\">41%</td>"),
        "{html}"
    );
    assert!(html.contains(">$1.20</td>"), "{html}");
    assert!(html.contains(">Score</th>"), "{html}");
    // The severity banner and the button.
    assert!(
        html.contains("background-color:#c9372c;color:#ffffff"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"https://etl.example.com/tasks/42\""),
        "{html}"
    );
    assert!(html.contains(">Open task</a>"), "{html}");
    // Fields as a definition table.
    assert!(
        html.contains(">owner</th><td style=\"padding:4px 0;\">alice</td>"),
        "{html}"
    );
    // Inline CSS only.
    assert!(!html.contains("<style"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    // The text part marks the cells.
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("92.5% ✓"), "{text}");
    assert!(text.contains("41% ✗"), "{text}");
    // The CSV has every row with raw values.
    let csv = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("table.csv"))
        .unwrap();
    let csv = String::from_utf8_lossy(csv.contents()).replace('\u{feff}', "");
    assert_eq!(
        csv,
        "Check,Score,Cost\r\ncompleteness,92.5,1.20\r\nfreshness,41,0.35\r\nuniqueness,58,0.80\r\n"
    );
}

#[test]
fn everything_user_provided_is_escaped() {
    let mut message = sample("markdown-special");
    message.fields = vec![carillon_sdk::Field {
        name: "<i>name</i>".into(),
        value: "\"quoted\" & <b>".into(),
    }];
    message.link = Some(carillon_sdk::Link {
        url: "https://x.example/a?b=1&c=\"><script>".into(),
        label: Some("<img src=x onerror=alert(1)>".into()),
    });
    message.table = Some(Table {
        columns: vec![Column {
            key: "k".into(),
            title: "<th>".into(),
            prefix: "<".into(),
            suffix: ">".into(),
            condition: None,
        }],
        rows: vec![vec!["</td><script>".into()]],
    });
    let mail = render(&config(), &message);
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let html = parsed.body_html(0).unwrap();
    for raw in ["<b>", "<i>", "<script", "<img", "</td><script>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    assert!(
        html.contains("Price &lt;b&gt;alert&lt;/b&gt; &amp;"),
        "{html}"
    );
    assert!(html.contains("&lt;i&gt;name&lt;/i&gt;"), "{html}");
    assert!(
        html.contains("href=\"https://x.example/a?b=1&amp;c=&quot;&gt;&lt;script&gt;\""),
        "{html}"
    );
    assert!(html.contains("&lt;&lt;/td&gt;&lt;script&gt;&gt;"), "{html}");
}

#[test]
fn unsafe_links_get_no_button() {
    let mut message = sample_message();
    message.link = Some(carillon_sdk::Link {
        url: "javascript:alert(1)".into(),
        label: None,
    });
    let mail = render(&config(), &message);
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    assert!(!parsed.body_html(0).unwrap().contains("javascript"));
    assert!(!parsed.body_text(0).unwrap().contains("javascript"));
}

#[test]
fn big_tables_are_cut_in_the_body_and_whole_in_the_csv() {
    let mut message = sample("table");
    let table = message.table.as_mut().unwrap();
    table.rows = (0..10_000)
        .map(|i| vec![format!("check_{i}"), (i % 100).to_string(), "0.10".into()])
        .collect();
    let mail = render(&config(), &message);
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(html.len() <= HTML_BUDGET, "{}", html.len());
    assert!(
        html.contains("more rows All rows are in the attached table.csv."),
        "{}",
        &html[html.len() - 2000..]
    );
    let text = parsed.body_text(0).unwrap();
    assert!(text.len() <= TEXT_BUDGET);
    assert!(text.contains("more rows"));
    let csv = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("table.csv"))
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(csv.contents()).lines().count(),
        10_001
    );
    assert!(mail.message.len() <= MAX_MESSAGE_BYTES);
}

#[test]
fn long_bodies_are_cut_with_a_note() {
    let mut message = sample("long");
    message.markdown = message.markdown.repeat(10);
    message.text = message.text.repeat(10);
    let mail = render(&config(), &message);
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(html.len() <= HTML_BUDGET, "{}", html.len());
    assert!(html.contains("(truncated "), "cut with a note");
    assert!(
        html.trim_end().ends_with("</html>"),
        "the document is complete"
    );
    let md = parsed
        .attachments()
        .find(|a| a.attachment_name() == Some("message.md"))
        .unwrap();
    assert!(
        md.contents().len() > message.markdown.len(),
        "the attachment is whole"
    );
}

#[test]
fn rendering_is_deterministic_and_message_ids_follow_the_delivery() {
    let a = render(&config(), &sample("table"));
    let b = render(&config(), &sample("table"));
    assert_eq!(a.message, b.message);
    let other = Harness::<Email>::new().with_context(carillon_sdk::Context {
        delivery_id: "dlv_other".into(),
        event_id: "evt".into(),
        attempt: 2,
        now_ms: 1_700_000_000_000,
    });
    let c = mail_of(other.render(&config(), &sample("table")).unwrap());
    let parsed = MessageParser::default().parse(&c.message).unwrap();
    assert_eq!(parsed.message_id(), Some("carillon.dlv_other@example.com"));
}

#[test]
fn defaults_for_port_and_security() {
    let server = |v: Value| serde_json::from_value::<ServerConfig>(v).unwrap();
    let s = server(json!({ "host": "h" }));
    assert_eq!((s.security(), s.port()), (Security::Starttls, 587));
    let s = server(json!({ "host": "h", "port": 465 }));
    assert_eq!((s.security(), s.port()), (Security::ImplicitTls, 465));
    let s = server(json!({ "host": "h", "security": "implicit-tls" }));
    assert_eq!(s.port(), 465);
    let s = server(json!({ "host": "h", "security": "none" }));
    assert_eq!(s.port(), 25);
    let mut c = config();
    c["server"] = json!({ "host": "relay.internal", "security": "none" });
    let mail = render(&c, &sample_message());
    assert_eq!(mail.server.security, carillon_sdk::SmtpSecurity::None);
    assert_eq!(mail.server.port, 25);
    assert_eq!(mail.server.username, None);
}

#[test]
fn deliver_sends_the_rendered_mail_and_classifies_replies() {
    let h = Harness::<Email>::new().respond_mail(|_| {
        Ok(SmtpReply {
            code: 250,
            message: "2.0.0 Ok: queued as 4F2A".into(),
        })
    });
    let receipt = h.deliver(&config(), &sample_message()).unwrap();
    assert_eq!(receipt.detail, "250 2.0.0 Ok: queued as 4F2A");
    assert_eq!(
        receipt.remote_id.as_deref(),
        Some("<carillon.dlv_test@example.com>")
    );
    let sent = h.mails();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0], render(&config(), &sample_message()));
    assert_eq!(sent[0].server.password.as_deref(), Some("s3cret"));

    let outcome = |error: SmtpError| {
        let h = Harness::<Email>::new().respond_mail(move |_| Err(error.clone()));
        h.deliver(&config(), &sample_message())
    };
    let reply = |code, message: &str| SmtpReply {
        code,
        message: message.into(),
    };
    match outcome(SmtpError::Permanent(reply(
        550,
        "5.1.1 <lead@example.com>: no such user",
    ))) {
        Err(DeliverError::Rejected(r)) => {
            assert!(r.contains("550") && r.contains("no such user"), "{r}")
        }
        other => panic!("{other:?}"),
    }
    match outcome(SmtpError::Transient(reply(451, "4.7.1 greylisted"))) {
        Err(DeliverError::Retryable(r)) => {
            assert!(r.contains("451") && r.contains("greylisted"), "{r}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        outcome(SmtpError::Timeout),
        Err(DeliverError::Retryable(_))
    ));
    assert!(matches!(
        outcome(SmtpError::Connect("refused".into())),
        Err(DeliverError::Retryable(_))
    ));
    assert!(matches!(
        outcome(SmtpError::Denied("smtp.example.com:465".into())),
        Err(DeliverError::InvalidConfig(_))
    ));
    assert!(matches!(
        outcome(SmtpError::PrivateAddress("10.0.0.1".into())),
        Err(DeliverError::InvalidConfig(_))
    ));
}

#[test]
fn manifest_grants_the_server_and_hides_the_password() {
    let m = Harness::<Email>::new().manifest();
    assert_eq!(m.name, "email");
    assert_eq!(m.endpoint_fields, ["/server/host"]);
    assert_eq!(m.secret_fields, ["/server/password"]);
    assert!(m.allowed_hosts.is_empty());
}

#[test]
fn good_configs_pass() {
    let h = Harness::<Email>::new();
    assert_eq!(h.validate(&config()), Ok(()));
    let minimal = json!({
        "server": { "host": "127.0.0.1", "port": 2525, "security": "none" },
        "from": "carillon@localhost",
        "to": ["ops@example.com"],
        "attachments": ["csv"]
    });
    assert_eq!(h.validate(&minimal), Ok(()));
}

#[test]
fn bad_configs_name_the_property() {
    let h = Harness::<Email>::new();
    let issues = |patch: &dyn Fn(&mut Value)| {
        let mut c = config();
        patch(&mut c);
        h.validate(&c)
            .unwrap_err()
            .into_iter()
            .map(|i| i.path)
            .collect::<Vec<_>>()
    };
    assert_eq!(issues(&|c| c["from"] = json!("not an address")), ["/from"]);
    assert_eq!(issues(&|c| c["to"][1] = json!("a@b@c")), ["/to/1"]);
    assert_eq!(
        issues(&|c| c["cc"][0] = json!("x\r\nBcc: y@z.com")),
        ["/cc/0"]
    );
    assert_eq!(
        issues(&|c| c["bcc"] = json!(["ok@example.com", "bad"])),
        ["/bcc/1"]
    );
    assert_eq!(
        issues(&|c| c["reply_to"] = json!(["ok@example.com", "bad"])),
        ["/reply_to/1"]
    );
    assert_eq!(issues(&|c| c["to"] = json!([])), ["/to"]);
    assert_eq!(
        issues(&|c| c["server"]["host"] = json!("smtp://x.example.com")),
        ["/server/host"]
    );
    assert_eq!(
        issues(&|c| c["server"]["port"] = json!(587)),
        ["/server/security"]
    );
    assert_eq!(
        issues(&|c| {
            c["server"]["security"] = json!("starttls");
        }),
        ["/server/security"]
    );
    assert_eq!(
        issues(&|c| {
            c["server"]["password"] = Value::Null;
            c["server"].as_object_mut().unwrap().remove("password");
        }),
        ["/server/password"]
    );
    assert_eq!(
        issues(&|c| {
            c["server"] = json!({ "host": "relay.example.com", "security": "none", "username": "u", "password": "p" });
        }),
        ["/server/security"]
    );
    assert_eq!(issues(&|c| c["locale"] = json!("en_US")), ["/locale"]);
    assert_eq!(
        issues(&|c| c["bcc"] = json!(
            (0..100)
                .map(|i| format!("u{i}@example.com"))
                .collect::<Vec<_>>()
        )),
        ["/to"]
    );
    // Unknown properties are refused by the parser too.
    assert_eq!(issues(&|c| c["subject"] = json!("x")), ["/subject"]);
}

#[test]
fn a_table_of_conditions_colours_only_comparable_cells() {
    let mut message = sample_message();
    message.table = Some(Table {
        columns: vec![Column {
            key: "v".into(),
            title: "Value".into(),
            prefix: String::new(),
            suffix: String::new(),
            condition: Some(Condition {
                op: Comparison::Lt,
                operand: "10".into(),
            }),
        }],
        rows: vec![vec!["5".into()], vec!["n/a".into()]],
    });
    let mail = render(&config(), &message);
    let parsed = MessageParser::default().parse(&mail.message).unwrap();
    let html = parsed.body_html(0).unwrap();
    assert!(
        html.contains("background-color:#e3fcef;font-weight:bold;\">5</td>"),
        "{html}"
    );
    assert!(html.contains("text-align:left;\">n/a</td>"), "{html}");
}
