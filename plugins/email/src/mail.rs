//! Composing the email: envelope, headers, the alternative text and HTML
//! parts (fitted to their budgets) and the attachments.

use carillon_sdk::{Context, DeliverError, Message, Severity, fit};

use crate::address::{Mailbox, parse_mailbox};
use crate::mime::{self, CRLF, Part};
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

/// An email before encoding: what the golden tests show and
/// [`Composed::to_bytes`] writes.
#[derive(Debug, Clone)]
pub struct Composed {
    /// MAIL FROM.
    pub envelope_from: String,
    /// RCPT TO: to, cc and bcc, without duplicates.
    pub envelope_to: Vec<String>,
    /// The `Message-ID` value, with angle brackets.
    pub message_id: String,
    /// The top-level header fields, encoded and folded, in order (without
    /// the `Content-Type` of the body).
    pub headers: String,
    /// The text/plain part.
    pub text: String,
    /// The text/html part.
    pub html: String,
    /// The attachments, in order.
    pub attachments: Vec<Attachment>,
    boundary_tag: String,
}

impl Composed {
    /// The complete RFC 5322 message: 7-bit, CRLF line ends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let alternative = Part::multipart(
            "alternative",
            &format!("=_alt_{}", self.boundary_tag),
            &[
                Part::text("plain", &self.text),
                Part::text("html", &self.html),
            ],
        );
        let body = if self.attachments.is_empty() {
            alternative
        } else {
            let mut parts = vec![alternative];
            parts.extend(
                self.attachments
                    .iter()
                    .map(|a| Part::attachment(&a.content_type, &a.filename, &a.bytes)),
            );
            Part::multipart("mixed", &format!("=_mixed_{}", self.boundary_tag), &parts)
        };
        let mut out = String::with_capacity(body.body.len() + 2048);
        out.push_str(&self.headers);
        out.push_str(&body.headers);
        out.push_str(CRLF);
        out.push_str(&body.body);
        out.push_str(CRLF);
        out.into_bytes()
    }
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

    let mut headers = String::new();
    headers.push_str(&mime::simple_header(
        "Date",
        &mime::rfc5322_date(ctx.now_ms),
    ));
    headers.push_str(&mime::header("From", &from.header_tokens()));
    headers.push_str(&mime::header("To", &list_tokens(&to)));
    if !cc.is_empty() {
        headers.push_str(&mime::header("Cc", &list_tokens(&cc)));
    }
    if !reply_to.is_empty() {
        headers.push_str(&mime::header("Reply-To", &list_tokens(&reply_to)));
    }
    let subject = mime::unstructured(&message.title);
    headers.push_str(&mime::header("Subject", &subject));
    headers.push_str(&mime::simple_header("Message-ID", &message_id));
    headers.push_str(&mime::simple_header("MIME-Version", "1.0"));
    headers.push_str(&mime::simple_header("Auto-Submitted", "auto-generated"));
    headers.push_str(&mime::simple_header(
        "X-Auto-Response-Suppress",
        "OOF, AutoReply",
    ));
    if message.severity == Severity::Critical {
        headers.push_str(&mime::simple_header("Importance", "high"));
        headers.push_str(&mime::simple_header("X-Priority", "1"));
    }

    Ok(Composed {
        envelope_from: from.address.clone(),
        envelope_to,
        message_id,
        headers,
        text,
        html,
        attachments,
        boundary_tag: tag,
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

/// Mailboxes as header tokens, commas after all but the last.
fn list_tokens(mailboxes: &[Mailbox]) -> Vec<String> {
    let mut tokens = Vec::new();
    for (i, mailbox) in mailboxes.iter().enumerate() {
        let mut mine = mailbox.header_tokens();
        if i + 1 < mailboxes.len()
            && let Some(last) = mine.last_mut()
        {
            last.push(',');
        }
        tokens.extend(mine);
    }
    tokens
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
