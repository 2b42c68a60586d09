//! The `teams` channel: Microsoft Teams through Power Automate "Workflows"
//! webhooks (Adaptive Card 1.4) or legacy Office 365 connectors (MessageCard).
//! Vendor facts: docs/vendors/teams.md.
//!
//! - Format: `format` in the config, or detected from the URL: the
//!   connector hosts (`outlook.office.com`, `outlook.office365.com`,
//!   `*.webhook.office.com`) get a MessageCard, everything else a Workflows
//!   Adaptive Card.
//! - Adaptive Card: version 1.4 (Workflows reportedly rejects newer), title
//!   TextBlock coloured by severity, the body TextBlock, a `FactSet` for the
//!   fields, and the table as a **`ColumnSet` grid** (one ColumnSet per row,
//!   header bold, conditional cells coloured `good`/`attention`): the `Table`
//!   element needs schema 1.5 and whether a 1.4 card containing it renders
//!   is unconfirmed (teams.md#tables), while ColumnSet renders at 1.4. The
//!   link is an
//!   `Action.OpenUrl`.
//! - Mentions (teams.md#mentions): `<at>id</at>` in a TextBlock plus a `msteams.entities`
//!   entry whose `text` matches exactly; user ids and emails (UPNs) map, `all`
//!   and phone numbers cannot be expressed and are dropped with a warning.
//!   MessageCards cannot mention anyone; their mentions are dropped too.
//! - Size (teams.md#limits): Teams allows 28 KB but measures the stored message,
//!   which is larger than the request, so requests are kept within 24,000
//!   bytes; table rows and then body text are trimmed with a visible note.
//! - Answers (docs/vendors/README.md#retry-classification): Workflows
//!   succeed with 202 (or 200); connectors with
//!   HTTP 200 and the body `1`, reporting failures as text in a 200.
//!   HTTP 401 (`DirectApiInvalidAuthorizationSignature`: the `sig` is
//!   wrong or was regenerated) and 404 (`WorkflowNotFound`, a removed
//!   connector) are invalid-config: the URL no longer works for any
//!   message, so the destination pauses.

use carillon_sdk::endpoint::HttpUrl;
use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpResponse, Manifest, Message, Outgoing,
    Receipt, classify, endpoint, export_channel, locale,
};
use serde::Deserialize;

mod render;

/// The Teams channel.
pub struct Teams;

/// Teams' message limit (28 KB, docs/vendors/teams.md#limits), declared in
/// the manifest.
pub const TEAMS_LIMIT_BYTES: u32 = 28 * 1024;

/// The largest request body sent: a margin below 28 KB, because Teams counts
/// the stored message, not the request (docs/vendors/teams.md#limits).
pub const MAX_PAYLOAD_BYTES: usize = 24_000;

/// The wait after a throttling answer that names no time.
pub const RATE_LIMIT_WAIT_MS: u64 = classify::DEFAULT_RATE_LIMIT_WAIT_MS;

/// A Teams destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The Workflows or connector webhook URL. Its `sig` (Workflows) or path
    /// (connector) is a credential.
    pub webhook: String,
    /// The request format; detected from the URL when absent.
    #[serde(default)]
    pub format: Option<Format>,
    /// People mentioned in every message (Workflows only).
    #[serde(default)]
    pub mentions: Vec<MentionConfig>,
    /// A BCP 47 tag overriding the message's locale for Carillon's notes.
    #[serde(default)]
    pub locale: Option<String>,
}

/// Which kind of Teams webhook the URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// A Power Automate Workflows webhook: Adaptive Card, answers 202.
    Workflow,
    /// A legacy Office 365 connector: MessageCard, answers `1`.
    Connector,
}

/// A person mentioned in every message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MentionConfig {
    /// The user's UPN (usually the email) or Entra object id.
    pub id: String,
    /// The name shown; defaults to the id.
    #[serde(default)]
    pub name: Option<String>,
}

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Microsoft Teams destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["webhook"],
  "properties": {
    "webhook": {
      "type": "string",
      "pattern": "^https?://",
      "description": "A Power Automate Workflows URL (…/workflows/<id>/triggers/manual/paths/invoke?…&sig=…) or a legacy connector URL (https://<tenant>.webhook.office.com/webhookb2/…). It contains a credential."
    },
    "format": { "enum": ["workflow", "connector"], "description": "Detected from the URL when absent." },
    "mentions": {
      "type": "array",
      "description": "Mentioned in every message (Workflows only).",
      "items": {
        "type": "object",
        "additionalProperties": false,
        "required": ["id"],
        "properties": {
          "id": { "type": "string", "minLength": 1, "description": "UPN (email) or Entra object id." },
          "name": { "type": "string", "minLength": 1 }
        }
      }
    },
    "locale": { "type": "string", "description": "BCP 47 tag, e.g. en or zh-CN; overrides the message's locale." }
  }
}"#;

impl Channel for Teams {
    type Config = TeamsConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "teams",
            env!("CARGO_PKG_VERSION"),
            "Posts Adaptive Cards to Microsoft Teams channels through Power Automate Workflows, or MessageCards through legacy connectors.",
        )
        .schema(SCHEMA)
        .endpoint_field("/webhook")
        .secret_field("/webhook")
        .allowed_host("*.logic.azure.com")
        .allowed_host("*.environment.api.powerplatform.com")
        .allowed_host("outlook.office.com")
        .allowed_host("outlook.office365.com")
        .allowed_host("*.webhook.office.com")
        .max_payload_bytes(TEAMS_LIMIT_BYTES)
        .rate_limit(4, 1_000)
    }

    fn check(config: &TeamsConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        match endpoint::check("/webhook", &config.webhook) {
            Err(issue) => issues.push(issue),
            Ok(url) => {
                let workflow_host = url.host.ends_with(".logic.azure.com")
                    || url.host.ends_with(".environment.api.powerplatform.com");
                if workflow_host && url.query_value("sig").is_none() {
                    issues.push(ConfigIssue::new(
                        "/webhook",
                        "a Workflows URL carries its credential in the sig query parameter; copy the whole URL",
                    ));
                }
                if config.format == Some(Format::Connector) && workflow_host {
                    issues.push(ConfigIssue::new(
                        "/format",
                        "this is a Workflows URL; use format workflow or leave format out",
                    ));
                }
            }
        }
        for (i, mention) in config.mentions.iter().enumerate() {
            if !render::valid_mention_id(&mention.id) {
                issues.push(ConfigIssue::new(
                    &format!("/mentions/{i}/id"),
                    "expected a UPN (user@domain) or an Entra object id",
                ));
            }
            if mention
                .name
                .as_deref()
                .is_some_and(|n| n.trim().is_empty() || n.contains(['<', '>']))
            {
                issues.push(ConfigIssue::new(
                    &format!("/mentions/{i}/name"),
                    "a name must be non-empty and without < or >",
                ));
            }
        }
        if !config.mentions.is_empty() && format_of(config) == Format::Connector {
            issues.push(ConfigIssue::new(
                "/mentions",
                "a connector (MessageCard) webhook cannot mention anyone; use a Workflows URL to mention people",
            ));
        }
        issues.extend(locale::check("/locale", config.locale.as_deref()));
        issues
    }

    fn render(
        ctx: &Context,
        config: &TeamsConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        let _ = ctx;
        render::request(config, message).map(|(request, _)| Outgoing::Http(request))
    }

    /// Classifies a Workflows-style answer (status only); connector answers
    /// need the format, which [`deliver`](Channel::deliver) knows.
    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_workflow(ctx, response)
    }

    fn deliver(
        ctx: &Context,
        config: &TeamsConfig,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        let (request, notes) = render::request(config, message)?;
        // The receipt says which mentions could not be made.
        notes.send(&request, |response| match format_of(config) {
            Format::Workflow => classify_workflow(ctx, response),
            Format::Connector => classify_connector(ctx, response),
        })
    }
}

export_channel!(Teams);

/// The format used for a destination: configured, or detected from the URL.
pub fn format_of(config: &TeamsConfig) -> Format {
    if let Some(format) = config.format {
        return format;
    }
    match HttpUrl::parse(&config.webhook) {
        Ok(url)
            if url.host == "outlook.office.com"
                || url.host == "outlook.office365.com"
                || url.host.ends_with(".webhook.office.com") =>
        {
            Format::Connector
        }
        _ => Format::Workflow,
    }
}

/// Workflows (docs/vendors/teams.md#workflows-adaptive-card): 200/202
/// accepted (the flow posts later); 429 honours `Retry-After`; 5xx retry;
/// 401 and 404 invalid-config (the URL's signature or the flow is gone);
/// other statuses are refused, quoting the
/// `{"error":{"code","message"}}` body when there is one.
pub fn classify_workflow(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    match response.status {
        200 | 202 => Ok(Receipt {
            detail: format!(
                "{} (accepted; the flow posts the card afterwards)",
                classify::summary(response)
            ),
            ..classify::delivered(response)
        }),
        300..=399 | 429 | 500..=599 | 408 => classify::by_status(ctx, response),
        status => {
            let error = response.body_json().and_then(|b| {
                let e = b.get("error")?;
                Some(format!(
                    "{}: {}",
                    e.get("code")?.as_str()?,
                    e.get("message").and_then(|m| m.as_str()).unwrap_or("")
                ))
            });
            let said = match error {
                Some(e) => format!("HTTP {status} {e}"),
                None => classify::summary(response),
            };
            match revoked(status) {
                Some(hint) => Err(DeliverError::invalid_config(format!("{said} ({hint})"))),
                None => Err(DeliverError::rejected(said)),
            }
        }
    }
}

/// Legacy connectors (docs/vendors/teams.md#connector-messagecard): success
/// is HTTP 200 with the body `1`;
/// failures arrive as text in a 200 (`… returned HTTP error 429 …`) or as
/// 4xx/5xx statuses.
pub fn classify_connector(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    let body = response.body_text();
    let text = body.trim();
    let summary = classify::summary(response);
    if let Some(hint) = revoked(response.status) {
        return Err(DeliverError::invalid_config(format!("{summary} ({hint})")));
    }
    if !response.is_success() {
        return classify::by_status(ctx, response);
    }
    if text == "1" {
        return Ok(classify::delivered(response));
    }
    match embedded_status(text) {
        Some(429) => Err(DeliverError::rate_limited(
            classify::retry_after_ms(ctx, response).unwrap_or(RATE_LIMIT_WAIT_MS),
            summary,
        )),
        Some(status) if status >= 500 => Err(DeliverError::retryable(summary)),
        Some(413) => Err(DeliverError::rejected(format!(
            "{summary} (the message is too large for Teams)"
        ))),
        _ => Err(DeliverError::rejected(summary)),
    }
}

/// Why a status means the URL itself no longer works (for every message):
/// 401, a wrong or regenerated signature; 404, a removed flow or connector.
fn revoked(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("the URL's signature is wrong or was regenerated; copy the URL again"),
        404 => Some("the workflow or connector was removed; configure a new URL"),
        _ => None,
    }
}

/// The status in `… returned HTTP error NNN …`, if any.
fn embedded_status(text: &str) -> Option<u16> {
    let at = text.find("HTTP error ")? + "HTTP error ".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests;
