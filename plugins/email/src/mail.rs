//! Composing the email: envelope, headers, the alternative text and HTML
//! parts (fitted to their budgets) and the attachments. The MIME text is
//! written by lettre's message builder (the `builder` feature only: no
//! transport; the gateway's `smtp` import sends the bytes): RFC 2047 encoded
//! words, header folding, quoted-printable and base64 bodies, multipart
//! boundaries and the RFC 5322 date. It builds for `wasm32-wasip2`, and with
//! the date, Message-ID and boundaries given here its output is
//! deterministic.

use std::time::{Duration, SystemTime};

use carillon_sdk::{Context, DeliverError, Message, Severity, fit};
use email_encoding::headers::rfc2047;
use email_encoding::headers::writer::EmailWriter;
use lettre::message::header::{
    ContentDisposition, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{MultiPart, SinglePart};

use crate::address::{Mailbox, parse_mailbox};
use crate::{AttachmentKind, EmailConfig, HTML_BUDGET, TEXT_BUDGET, html, text};

/// An attachment as added to the mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The file name, e.g. `table.csv`.
    pub filename: String,
    /// The MIME type with parameters, e.g. `text/csv; charset=UTF-8`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// An email: its envelope, the parts the golden tests show and the message
/// lettre wrote, which [`Composed::to_bytes`] gives.
#[derive(Debug, Clone)]
pub struct Composed {
    /// MAIL FROM.
    pub envelope_from: String,
    /// RCPT TO: to, cc and bcc, without duplicates.
    pub envelope_to: Vec<String>,
    /// The `Message-ID` value, with angle brackets.
    pub message_id: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
    /// The attachments, in order.
    pub attachments: Vec<Attachment>,
    message: lettre::Message,
}

impl Composed {
    /// The complete RFC 5322 message: 7-bit, CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.message.formatted()
    }
}

/// The latest date httpdate (lettre's `Date` header) can write: 9999-12-31
/// 23:59:59 UTC. A later clock is written as this rather than panicking.
const LAST_DATE_MS: u64 = 253_402_300_799_000;

/// A custom header field (lettre encodes and folds the value).
fn raw_header(name: &'static str, value: &str) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_owned())
}

/// Unstructured header text (a subject): whitespace runs collapsed to one
/// space and control characters dropped, so a title cannot fold or end the
/// header itself.
fn unstructured(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect();
    clean
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `Subject` field. lettre encodes (RFC 2047) only the words that are
/// not ASCII and writes ASCII words as they are, which is wrong for two
/// kinds of titles: a word that looks like an encoded word (`=?…?=`, which
/// a client would decode) and a word too long to fold (a line over 78, or
/// 998, characters). Those titles are encoded whole with lettre's own
/// encoder (`email-encoding`), which splits and folds the encoded words.
fn subject(title: &str) -> HeaderValue {
    let name = HeaderName::new_from_ascii_str("Subject");
    let clean = unstructured(title);
    let plain = clean.split(' ').all(|w| w.len() <= 60 && !w.contains("=?"));
    if plain {
        return HeaderValue::new(name, clean);
    }
    let mut encoded = String::with_capacity(clean.len() * 2);
    {
        let mut writer = EmailWriter::new(&mut encoded, "Subject: ".len(), 0, false);
        // Writing to a String cannot fail.
        let _ = rfc2047::encode(&clean, &mut writer);
    }
    HeaderValue::dangerous_new_pre_encoded(name, clean, encoded)
}

/// The MIME body: the text and HTML alternatives, inside a
/// `multipart/mixed` beside the attachments when there are any. The
/// boundaries contain `=_`, which quoted-printable and base64 never write.
fn body(
    tag: &str,
    text: &str,
    html: &str,
    attachments: &[Attachment],
) -> Result<MultiPart, DeliverError> {
    let text_part = |content_type: ContentType, body: &str| {
        SinglePart::builder()
            .header(content_type)
            .header(ContentTransferEncoding::QuotedPrintable)
            .body(body.to_owned())
    };
    let alternative = MultiPart::alternative()
        .boundary(format!("=_alt_{tag}"))
        .singlepart(text_part(ContentType::TEXT_PLAIN, text))
        .singlepart(text_part(ContentType::TEXT_HTML, html));
    if attachments.is_empty() {
        return Ok(alternative);
    }
    let mut mixed = MultiPart::mixed()
        .boundary(format!("=_mixed_{tag}"))
        .multipart(alternative);
    for a in attachments {
        let content_type =
            ContentType::parse(&format!("{}; name=\"{}\"", a.content_type, a.filename))
                .map_err(|e| DeliverError::rejected(format!("attachment {}: {e}", a.filename)))?;
        mixed = mixed.singlepart(
            SinglePart::builder()
                .header(content_type)
                .header(ContentTransferEncoding::Base64)
                .header(ContentDisposition::attachment(&a.filename))
                .body(a.bytes.clone()),
        );
    }
    Ok(mixed)
}

/// What the parts say in the destination's language.
pub(crate) struct Words {
    pub(crate) zh: bool,
}

impl Words {
    pub(crate) fn for_locale(locale: &str) -> Words {
        Words {
            zh: locale.to_ascii_lowercase().starts_with("zh"),
        }
    }

    pub(crate) fn severity(&self, severity: Severity) -> &'static str {
        match (severity, self.zh) {
            (Severity::Info, false) => "Info",
            (Severity::Success, false) => "Success",
            (Severity::Warning, false) => "Warning",
            (Severity::Error, false) => "Error",
            (Severity::Critical, false) => "Critical",
            (Severity::Info, true) => "通知",
            (Severity::Success, true) => "成功",
            (Severity::Warning, true) => "警告",
            (Severity::Error, true) => "错误",
            (Severity::Critical, true) => "严重",
        }
    }

    pub(crate) fn default_link_label(&self) -> &'static str {
        if self.zh { "查看详情" } else { "Open" }
    }

    pub(crate) fn footer(&self, delivery_id: &str) -> String {
        if self.zh {
            format!("此邮件由 Carillon 通知网关自动发送，请勿直接回复。投递编号：{delivery_id}")
        } else {
            format!(
                "Sent automatically by the Carillon notification gateway. Delivery {delivery_id}."
            )
        }
    }

    pub(crate) fn all_rows_attached(&self) -> &'static str {
        if self.zh {
            "完整表格见附件 table.csv。"
        } else {
            "All rows are in the attached table.csv."
        }
    }
}

/// Builds the email for `message`; no side effects, same bytes for the
/// same inputs.
pub fn compose(
    ctx: &Context,
    config: &EmailConfig,
    message: &Message,
) -> Result<Composed, DeliverError> {
    let invalid = |what: &str, e: String| DeliverError::invalid_config(format!("{what}: {e}"));
    let from = parse_mailbox(&config.from).map_err(|e| invalid("from", e))?;
    let parse_all = |what: &str, list: &[String]| {
        list.iter()
            .map(|a| parse_mailbox(a).map_err(|e| invalid(what, e)))
            .collect::<Result<Vec<_>, _>>()
    };
    let to = parse_all("to", &config.to)?;
    let cc = parse_all("cc", &config.cc)?;
    let bcc = parse_all("bcc", &config.bcc)?;
    let reply_to = match &config.reply_to {
        Some(r) => parse_all(
            "reply_to",
            &r.entries("")
                .into_iter()
                .map(|(_, v)| v.to_owned())
                .collect::<Vec<_>>(),
        )?,
        None => Vec::new(),
    };
    if to.is_empty() {
        return Err(DeliverError::invalid_config("to: at least one recipient"));
    }

    let mut envelope_to: Vec<String> = Vec::new();
    for mailbox in to.iter().chain(&cc).chain(&bcc) {
        if !envelope_to
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&mailbox.address))
        {
            envelope_to.push(mailbox.address.clone());
        }
    }

    let locale = config.locale.as_deref().unwrap_or(&message.locale);
    let words = Words::for_locale(locale);
    let tag = id_token(&ctx.delivery_id);
    let message_id = format!("<carillon.{tag}@{}>", from.domain());
    let csv = config.attachments.wants(AttachmentKind::Csv) && message.table.is_some();

    let (html, rows) = fit_html(ctx, message, &words, locale, csv)?;
    let text = fit::fit_payload(
        &message.text,
        rows,
        locale,
        |body, rows| text::part(ctx, message, &words, locale, body, rows),
        |t: &String| sent_len(t) <= TEXT_BUDGET,
    )
    .ok_or_else(|| {
        DeliverError::rejected(format!(
            "the text part does not fit in {TEXT_BUDGET} bytes even without its body and table"
        ))
    })?;

    let mut attachments = Vec::new();
    if config.attachments.wants(AttachmentKind::Markdown) {
        attachments.push(Attachment {
            filename: "message.md".into(),
            content_type: "text/markdown; charset=UTF-8".into(),
            bytes: text::markdown_file(message).into_bytes(),
        });
    }
    if let (true, Some(table)) = (csv, &message.table) {
        attachments.push(Attachment {
            filename: "table.csv".into(),
            content_type: "text/csv; charset=UTF-8; header=present".into(),
            bytes: text::csv(table).into_bytes(),
        });
    }

    let lettre_mailbox = |what: &str, m: &Mailbox| m.to_lettre().map_err(|e| invalid(what, e));
    let date_ms = ctx.now_ms.min(LAST_DATE_MS);
    let mut builder = lettre::Message::builder()
        .date(SystemTime::UNIX_EPOCH + Duration::from_millis(date_ms))
        .from(lettre_mailbox("from", &from)?);
    for m in &to {
        builder = builder.to(lettre_mailbox("to", m)?);
    }
    for m in &cc {
        builder = builder.cc(lettre_mailbox("cc", m)?);
    }
    for m in &reply_to {
        builder = builder.reply_to(lettre_mailbox("reply_to", m)?);
    }
    builder = builder
        .raw_header(subject(&message.title))
        .message_id(Some(message_id.clone()))
        .raw_header(raw_header("Auto-Submitted", "auto-generated"))
        .raw_header(raw_header("X-Auto-Response-Suppress", "OOF, AutoReply"));
    if message.severity == Severity::Critical {
        builder = builder
            .raw_header(raw_header("Importance", "high"))
            .raw_header(raw_header("X-Priority", "1"));
    }
    // Bcc recipients are in the envelope only: no `Bcc` header is written.
    let built = builder
        .multipart(body(&tag, &text, &html, &attachments)?)
        .map_err(|e| DeliverError::invalid_config(format!("the message: {e}")))?;

    Ok(Composed {
        envelope_from: from.address.clone(),
        envelope_to,
        message_id,
        text,
        html,
        attachments,
        message: built,
    })
}

/// The HTML part fitted to [`HTML_BUDGET`], and the number of table rows it
/// shows (the text part shows the same rows).
fn fit_html(
    ctx: &Context,
    message: &Message,
    words: &Words,
    locale: &str,
    csv: bool,
) -> Result<(String, usize), DeliverError> {
    let total = message.table.as_ref().map_or(0, |t| t.rows.len());
    fit::fit_payload(
        &message.markdown,
        total,
        locale,
        |body, rows| {
            (
                html::part(ctx, message, words, locale, body, rows, csv),
                rows,
            )
        },
        |(html, _)| sent_len(html) <= HTML_BUDGET,
    )
    .ok_or_else(|| {
        DeliverError::rejected(format!(
            "the HTML part does not fit in {HTML_BUDGET} bytes even without its body and table"
        ))
    })
}

/// The decoded size of a part as a client sees it: line ends are CRLF.
pub(crate) fn sent_len(text: &str) -> usize {
    text.len() + text.matches('\n').count()
}

/// The delivery id reduced to letters, digits, `-` and `_` (at most 60), for
/// the Message-ID and the MIME boundaries.
fn id_token(id: &str) -> String {
    let token: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    if token.is_empty() {
        "delivery".to_owned()
    } else {
        token
    }
}
