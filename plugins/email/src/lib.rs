//! The `email` channel: a notification as a standards-conforming email,
//! sent through the gateway's `smtp` import. Vendor facts:
//! docs/vendors/email.md.
//!
//! - Server: `host`, `port`, `security` (`implicit-tls`, usually port 465;
//!   `starttls`, usually 587, where the gateway refuses to go on if the
//!   upgrade fails; `none`, only for private relays the gateway's egress
//!   policy allows), optional AUTH (PLAIN or LOGIN) with `username` and
//!   `password` (a secret). `/server/host` is an endpoint field, so the
//!   configured server is granted to the destination and nothing else is.
//! - Message (RFC 5322 / MIME, written by lettre's message builder,
//!   deterministic for a given context): `Date` from the attempt's clock,
//!   `Message-ID` from the delivery id (stable across retries, unique per
//!   delivery),
//!   `MIME-Version`, the subject from the title (RFC 2047 encoded words when
//!   it is not plain ASCII), `Auto-Submitted: auto-generated`. The body is
//!   `multipart/alternative`: `text/plain` first and `text/html` last, both
//!   UTF-8 quoted-printable, so the whole message is 7-bit. With attachments
//!   the alternative sits in a `multipart/mixed` beside `message.md` (the
//!   Markdown body) and `table.csv` (every table row), both base64.
//! - HTML: inline CSS only (no `<style>`, no images, no scripts): the
//!   severity as a coloured banner, the Markdown body rendered with raw HTML
//!   shown as text and only http(s)/mailto links kept, the table with its
//!   display names, prefix/suffix and good/bad colours, the fields as a
//!   definition table, the link as a button, and a localized footer (English
//!   or Chinese). Everything user-provided is HTML-escaped. The Markdown is
//!   rendered within the SDK's converter bounds (nesting at most
//!   `text::MAX_NESTING` deep, output within [`markdown_budget`]).
//! - Size: the HTML part is kept under [`HTML_BUDGET`] bytes (Gmail clips
//!   longer HTML) and the text part under [`TEXT_BUDGET`], table rows first
//!   and then the body, each with a visible note; the whole message must fit
//!   in [`MAX_MESSAGE_BYTES`].
//! - Answers: the server's final reply is the receipt (with the Message-ID
//!   as remote id); 4xx replies and connection trouble retry, 5xx replies
//!   (e.g. 550 on a recipient) are rejected, which dead-letters the delivery
//!   and triggers the destination's fallback.

use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, Mail, Manifest, Message, Outgoing, Receipt,
    SmtpSecurity, SmtpServer, classify, export_channel, locale, smtp,
};
use serde::Deserialize;

pub mod address;
mod html;
mod mail;
mod markdown;
mod text;

pub use mail::{Attachment, Composed, compose};
pub use markdown::{markdown as markdown_to_html, markdown_budget};

/// The email channel.
pub struct Email;

/// The largest HTML part kept (Gmail clips HTML bodies above about 102 KB).
pub const HTML_BUDGET: usize = 96_000;

/// The largest text part kept.
pub const TEXT_BUDGET: usize = 96_000;

/// The largest message sent, attachments included, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;

/// The most envelope recipients (to, cc and bcc together) per destination.
pub const MAX_RECIPIENTS: usize = 100;

/// An email destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server to send through.
    pub server: ServerConfig,
    /// The sender: `alerts@example.com` or `Carillon <alerts@example.com>`.
    pub from: String,
    /// Recipients shown in `To`.
    pub to: Vec<String>,
    /// Recipients shown in `Cc`.
    #[serde(default)]
    pub cc: Vec<String>,
    /// Recipients not shown in any header.
    #[serde(default)]
    pub bcc: Vec<String>,
    /// Where replies go, one address or a list.
    #[serde(default)]
    pub reply_to: Option<OneOrMany>,
    /// Attachments: `true` for all, or a list of `markdown`, `csv`.
    #[serde(default)]
    pub attachments: Attachments,
    /// A BCP 47 tag overriding the message's locale for the footer and notes.
    #[serde(default)]
    pub locale: Option<String>,
}

/// An SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Host name or IP address.
    pub host: String,
    /// TCP port; by default 465 for implicit TLS, 587 for STARTTLS, 25 for none.
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security; by default implicit TLS on port 465 and STARTTLS
    /// otherwise.
    #[serde(default)]
    pub security: Option<Security>,
    /// User name for AUTH.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for AUTH (a secret).
    #[serde(default)]
    pub password: Option<String>,
}

/// How to talk to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Security {
    /// TLS from the first byte.
    ImplicitTls,
    /// Plain connection upgraded with STARTTLS (required).
    Starttls,
    /// No TLS (private relays only).
    None,
}

/// One string or a list of strings.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values, with their JSON pointers below `base`.
    pub fn entries(&self, base: &str) -> Vec<(String, &str)> {
        match self {
            OneOrMany::One(v) => vec![(base.to_owned(), v.as_str())],
            OneOrMany::Many(vs) => vs
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{base}/{i}"), v.as_str()))
                .collect(),
        }
    }
}

/// Which attachments to add.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Attachments {
    /// All (`true`) or none (`false`).
    All(bool),
    /// These kinds.
    Some(Vec<AttachmentKind>),
}

impl Default for Attachments {
    fn default() -> Self {
        Attachments::All(false)
    }
}

impl Attachments {
    /// Is this kind wanted?
    pub fn wants(&self, kind: AttachmentKind) -> bool {
        match self {
            Attachments::All(all) => *all,
            Attachments::Some(kinds) => kinds.contains(&kind),
        }
    }
}

/// An attachment kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    /// The Markdown body as `message.md`.
    Markdown,
    /// The table as `table.csv`.
    Csv,
}

impl ServerConfig {
    /// The security in force: configured, or implicit TLS on 465 and
    /// STARTTLS elsewhere.
    pub fn security(&self) -> Security {
        match (self.security, self.port) {
            (Some(security), _) => security,
            (None, Some(465)) => Security::ImplicitTls,
            (None, _) => Security::Starttls,
        }
    }

    /// The port in force: configured, or the standard one for the security.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security() {
            Security::ImplicitTls => 465,
            Security::Starttls => 587,
            Security::None => 25,
        })
    }
}

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Email (SMTP) destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["server", "from", "to"],
  "properties": {
    "server": {
      "type": "object",
      "additionalProperties": false,
      "required": ["host"],
      "properties": {
        "host": { "type": "string", "minLength": 1, "description": "SMTP server host name or IP address; it is granted to this destination." },
        "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "Default: 465 for implicit-tls, 587 for starttls, 25 for none." },
        "security": { "enum": ["implicit-tls", "starttls", "none"], "description": "Default: implicit-tls on port 465, starttls otherwise. none is only for private relays allowed by [egress] allow_private." },
        "username": { "type": "string", "minLength": 1, "description": "User name for AUTH PLAIN/LOGIN." },
        "password": { "type": "string", "description": "Password for AUTH; a secret (use ${env:…} or ${file:…})." }
      }
    },
    "from": { "type": "string", "minLength": 3, "description": "Sender: address or Name <address>." },
    "to": { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 3 }, "description": "Recipients shown in To." },
    "cc": { "type": "array", "items": { "type": "string", "minLength": 3 }, "description": "Recipients shown in Cc." },
    "bcc": { "type": "array", "items": { "type": "string", "minLength": 3 }, "description": "Recipients in no header." },
    "reply_to": {
      "oneOf": [
        { "type": "string", "minLength": 3 },
        { "type": "array", "minItems": 1, "items": { "type": "string", "minLength": 3 } }
      ],
      "description": "Where replies go."
    },
    "attachments": {
      "oneOf": [
        { "type": "boolean" },
        { "type": "array", "uniqueItems": true, "items": { "enum": ["markdown", "csv"] } }
      ],
      "description": "true for all, or a list: markdown (message.md), csv (table.csv, when the message has a table)."
    },
    "locale": { "type": "string", "description": "BCP 47 tag, e.g. en or zh-CN; overrides the message's locale for the footer and notes." }
  }
}"#;

impl Channel for Email {
    type Config = EmailConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "email",
            env!("CARGO_PKG_VERSION"),
            "Sends notifications as email (plain text and HTML, optional Markdown and CSV attachments) through an SMTP server.",
        )
        .schema(SCHEMA)
        .endpoint_field("/server/host")
        .secret_field("/server/password")
        .max_payload_bytes(MAX_MESSAGE_BYTES as u32)
    }

    fn check(config: &EmailConfig) -> Vec<ConfigIssue> {
        check_config(config)
    }

    fn render(
        ctx: &Context,
        config: &EmailConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        mail_for(ctx, config, message).map(|(mail, _)| Outgoing::Mail(mail))
    }

    fn deliver(
        ctx: &Context,
        config: &EmailConfig,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        let (mail, message_id) = mail_for(ctx, config, message)?;
        let reply = smtp::send(&mail).map_err(classify::smtp_error)?;
        Ok(Receipt {
            remote_id: Some(message_id),
            detail: format!("{} {}", reply.code, reply.message)
                .trim_end()
                .to_owned(),
        })
    }
}

export_channel!(Email);

/// The mail for a message, and its Message-ID.
fn mail_for(
    ctx: &Context,
    config: &EmailConfig,
    message: &Message,
) -> Result<(Mail, String), DeliverError> {
    let composed = compose(ctx, config, message)?;
    let bytes = composed.to_bytes();
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DeliverError::rejected(format!(
            "the email is {} bytes with its attachments; the limit is {MAX_MESSAGE_BYTES}",
            bytes.len()
        )));
    }
    let server = &config.server;
    let mail = Mail {
        server: SmtpServer {
            host: server.host.trim().to_owned(),
            port: server.port(),
            security: match server.security() {
                Security::ImplicitTls => SmtpSecurity::ImplicitTls,
                Security::Starttls => SmtpSecurity::Starttls,
                Security::None => SmtpSecurity::None,
            },
            username: server.username.clone(),
            password: server.password.clone(),
        },
        envelope_from: composed.envelope_from.clone(),
        envelope_to: composed.envelope_to.clone(),
        message: bytes,
    };
    Ok((mail, composed.message_id.clone()))
}

/// Every problem in a parsed configuration.
pub fn check_config(config: &EmailConfig) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let server = &config.server;
    let host = server.host.trim();
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
    if !host_ok {
        issues.push(ConfigIssue::new(
            "/server/host",
            "expected a host name (e.g. smtp.example.com) or an IP address, without scheme or port",
        ));
    }
    if server.port == Some(0) {
        issues.push(ConfigIssue::new(
            "/server/port",
            "expected a port from 1 to 65535",
        ));
    }
    match (server.security(), server.port()) {
        (Security::ImplicitTls, 587) => issues.push(ConfigIssue::new(
            "/server/security",
            "port 587 is the STARTTLS submission port; use security starttls, or port 465 for implicit-tls",
        )),
        (Security::Starttls | Security::None, 465) => issues.push(ConfigIssue::new(
            "/server/security",
            "port 465 speaks TLS from the first byte; use security implicit-tls",
        )),
        _ => {}
    }
    match (&server.username, &server.password) {
        (Some(_), None) => issues.push(ConfigIssue::new(
            "/server/password",
            "a username needs a password (use ${env:…} or ${file:…})",
        )),
        (None, Some(_)) => issues.push(ConfigIssue::new(
            "/server/username",
            "a password needs a username",
        )),
        _ => {}
    }
    if server.username.is_some() && server.security() == Security::None && !is_loopback(host) {
        issues.push(ConfigIssue::new(
            "/server/security",
            "credentials are only sent over TLS (or to a relay on this machine); use starttls or implicit-tls",
        ));
    }
    match address::parse_mailbox(&config.from) {
        Ok(_) => {}
        Err(e) => issues.push(ConfigIssue::new("/from", e)),
    }
    if config.to.is_empty() {
        issues.push(ConfigIssue::new(
            "/to",
            "at least one recipient is required",
        ));
    }
    let lists = [
        ("/to", &config.to),
        ("/cc", &config.cc),
        ("/bcc", &config.bcc),
    ];
    for (base, list) in lists {
        for (i, value) in list.iter().enumerate() {
            if let Err(e) = address::parse_mailbox(value) {
                issues.push(ConfigIssue::new(&format!("{base}/{i}"), e));
            }
        }
    }
    if let Some(reply_to) = &config.reply_to {
        for (path, value) in reply_to.entries("/reply_to") {
            if let Err(e) = address::parse_mailbox(value) {
                issues.push(ConfigIssue::new(&path, e));
            }
        }
    }
    let recipients = config.to.len() + config.cc.len() + config.bcc.len();
    if recipients > MAX_RECIPIENTS {
        issues.push(ConfigIssue::new(
            "/to",
            format!("{recipients} recipients in to, cc and bcc; at most {MAX_RECIPIENTS}"),
        ));
    }
    issues.extend(locale::check("/locale", config.locale.as_deref()));
    issues
}

/// `localhost`, `127.x.y.z` or `::1`: a relay on this machine.
fn is_loopback(host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
