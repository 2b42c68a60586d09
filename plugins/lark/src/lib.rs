//! The `lark` channel: Lark / Feishu custom group bots (自定义机器人).
//!
//! Sends an interactive card by default (header coloured by severity, a
//! `lark_md` body, the card table component with coloured option tags for
//! conditional columns, a URL button for the link), or a `post` / `text`
//! message when configured. Vendor facts: docs/vendors/lark.md.
//!
//! - Signing (lark.md#security): `timestamp` is the attempt's Unix **seconds** (from the
//!   context, never a clock) and `sign` = Base64(HMAC-SHA256) keyed by
//!   `timestamp + "\n" + secret` over an **empty** message; both go in the
//!   JSON body. (DingTalk's mirror image gets 19021.)
//! - Keywords (lark.md#security): when keywords are configured and none appears in the
//!   rendered text, the first one is put in front of the title, visibly.
//! - Mentions (lark.md#mentions): `<at id=…></at>` in cards, `{"tag":"at"}` in posts,
//!   `<at user_id="…"></at>` in text; user ids must be open_ids for cards.
//!   Emails and phone numbers cannot be expressed by a custom bot (it cannot
//!   look up open_ids) and are dropped with a warning.
//! - Size (lark.md#limits): the body stays within 20,000 bytes (20 KB read strictly);
//!   table rows and then body text are trimmed with a visible note.
//! - Answers (lark.md#responses-and-error-codes): classified by the body's `code`, not the status.

use carillon_sdk::error_code::{self, BodyCode, Rule, Verdict};
use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpResponse, Manifest, Message, Outgoing,
    Receipt, classify, endpoint, export_channel, keywords, locale, sign,
};
use serde::Deserialize;

mod render;

/// The Lark / Feishu channel.
pub struct Lark;

/// The largest request body sent, in bytes (20 KB, read as 20,000:
/// docs/vendors/lark.md#limits).
pub const MAX_PAYLOAD_BYTES: usize = 20_000;

/// How long to wait after a rate-limit answer that names no time: the
/// longest documented window (100 requests per minute,
/// docs/vendors/lark.md#limits).
pub const RATE_LIMIT_WAIT_MS: u64 = 60_000;

/// The most keywords a bot can have (docs/vendors/lark.md#security).
const MAX_KEYWORDS: usize = 10;

/// A Lark / Feishu custom bot destination.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LarkConfig {
    /// The bot's webhook URL, e.g.
    /// `https://open.feishu.cn/open-apis/bot/v2/hook/<token>`. Used as
    /// configured; the token in it is a credential.
    pub webhook: String,
    /// The signing secret, when the bot has "signature verification" on.
    #[serde(default)]
    pub secret: Option<String>,
    /// The bot's custom keywords; a message must contain one of them.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// The message type to send.
    #[serde(default)]
    pub msg_type: MsgType,
    /// People mentioned in every message: open_ids, or `all`.
    #[serde(default)]
    pub mentions: Vec<String>,
    /// A BCP 47 tag overriding the message's locale for the post language
    /// and Carillon's own notes, e.g. `zh-CN` or `en`.
    #[serde(default)]
    pub locale: Option<String>,
}

/// The Lark message type used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgType {
    /// A message card (`msg_type: interactive`).
    #[default]
    Interactive,
    /// A rich-text post.
    Post,
    /// Plain text.
    Text,
}

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Lark / Feishu custom bot destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["webhook"],
  "properties": {
    "webhook": {
      "type": "string",
      "pattern": "^https?://",
      "description": "The bot's webhook URL, e.g. https://open.feishu.cn/open-apis/bot/v2/hook/<token> (Feishu) or https://open.larksuite.com/open-apis/bot/v2/hook/<token> (Lark). The token is a secret."
    },
    "secret": { "type": "string", "minLength": 1, "description": "Signing secret, when signature verification is on." },
    "keywords": {
      "type": "array",
      "maxItems": 10,
      "items": { "type": "string", "minLength": 1 },
      "description": "The bot's custom keywords; the first is added to the title when a message contains none."
    },
    "msg_type": { "enum": ["interactive", "post", "text"], "default": "interactive" },
    "mentions": {
      "type": "array",
      "items": { "type": "string", "minLength": 1 },
      "description": "Mentioned in every message: open_ids (ou_…) or \"all\"."
    },
    "locale": { "type": "string", "description": "BCP 47 tag, e.g. zh-CN or en; overrides the message's locale." }
  }
}"#;

impl Channel for Lark {
    type Config = LarkConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "lark",
            env!("CARGO_PKG_VERSION"),
            "Sends messages to Lark / Feishu group chats through custom bot webhooks, as cards, posts or text.",
        )
        .schema(SCHEMA)
        .endpoint_field("/webhook")
        .secret_field("/secret")
        .secret_field("/webhook")
        .allowed_host("open.feishu.cn")
        .allowed_host("open.larksuite.com")
        .max_payload_bytes(MAX_PAYLOAD_BYTES as u32)
        .rate_limit(5, 1_000)
        .rate_limit(100, 60_000)
    }

    fn check(config: &LarkConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        match endpoint::check("/webhook", &config.webhook) {
            Err(issue) => issues.push(issue),
            Ok(url) => {
                let official = matches!(url.host.as_str(), "open.feishu.cn" | "open.larksuite.com");
                let token = url
                    .path
                    .strip_prefix("/open-apis/bot/v2/hook/")
                    .unwrap_or("");
                if official && (token.is_empty() || token.contains('/')) {
                    issues.push(ConfigIssue::new(
                        "/webhook",
                        "expected https://<host>/open-apis/bot/v2/hook/<token>",
                    ));
                }
            }
        }
        if let Some(secret) = &config.secret
            && secret.trim().is_empty()
        {
            issues.push(ConfigIssue::new(
                "/secret",
                "the secret is empty; remove it or paste the bot's secret",
            ));
        }
        issues.extend(keywords::check("/keywords", &config.keywords, MAX_KEYWORDS));
        for (i, id) in config.mentions.iter().enumerate() {
            let problem = if id.contains('@') {
                "a Lark custom bot cannot mention by email address: use the member's open_id (ou_…), which an app can look up"
            } else if id != "all" && !render::is_open_id(id) {
                "expected an open_id (ou_…) or \"all\": a custom bot's mention of any other id notifies nobody"
            } else {
                continue;
            };
            issues.push(ConfigIssue::new(&format!("/mentions/{i}"), problem));
        }
        issues.extend(locale::check("/locale", config.locale.as_deref()));
        issues
    }

    fn render(
        ctx: &Context,
        config: &LarkConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        render::request(ctx, config, message).map(|(request, _)| Outgoing::Http(request))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_answer(ctx, response)
    }

    /// Sends the rendered request; the receipt says which mentions could
    /// not be made.
    fn deliver(
        ctx: &Context,
        config: &LarkConfig,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        let (request, notes) = render::request(ctx, config, message)?;
        notes.send(&request, |response| classify_answer(ctx, response))
    }
}

export_channel!(Lark);

/// `sign` for a Lark custom bot: Base64(HMAC-SHA256(key = `timestamp + "\n" +
/// secret`, message = empty)): docs/vendors/lark.md#security.
pub fn signature(timestamp_secs: &str, secret: &str) -> String {
    let key = format!("{timestamp_secs}\n{secret}");
    sign::hmac_sha256_base64(key.as_bytes(), b"")
}

/// What Lark's body `code`s mean; 0 with a 2xx status is delivered, and
/// 9499 means throttled only when its message says so.
const CODES: &[Rule] = &[
    Rule::new(
        &[11232],
        Verdict::RateLimited(RATE_LIMIT_WAIT_MS),
        "too many requests",
    ),
    Rule::new(
        &[9499],
        Verdict::Rejected,
        "the request is malformed or larger than 20 KB",
    ),
    Rule::new(
        &[19021],
        Verdict::Rejected,
        "signature mismatch or clock more than 1 hour off; check the secret and the gateway's clock",
    ),
    Rule::new(
        &[19022],
        Verdict::Rejected,
        "the gateway's IP is not in the bot's allowlist",
    ),
    Rule::new(
        &[19024],
        Verdict::Rejected,
        "the message contains none of the bot's keywords; configure them in keywords",
    ),
    Rule::new(
        &[19001],
        Verdict::InvalidConfig,
        "the webhook token is invalid or the bot was removed",
    ),
    Rule::new(&[19002], Verdict::Rejected, "malformed message"),
];

/// Classifies a Lark answer by its body `code` first (Lark reports business
/// errors in HTTP 200 bodies), then by status
/// (docs/vendors/lark.md#responses-and-error-codes).
pub fn classify_answer(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    let Some(answer) = BodyCode::read(response, &["code", "StatusCode"], &["msg", "StatusMessage"])
    else {
        return match response.status {
            200..=299 => Err(error_code::not_an_answer(
                response,
                "a Lark answer: no code in the body; check the webhook URL",
            )),
            _ => classify::by_status(ctx, response),
        };
    };
    let said = format!(
        "code {}: {} (HTTP {})",
        answer.code, answer.message, response.status
    );
    let wait = || {
        classify::retry_after_ms(ctx, response)
            .or_else(|| reset_header_ms(response))
            .unwrap_or(RATE_LIMIT_WAIT_MS)
    };
    let throttled = answer.code == 9499
        && answer
            .message
            .to_ascii_lowercase()
            .contains("too many request");
    match error_code::lookup(CODES, answer.code) {
        _ if answer.code == 0 && response.is_success() => Ok(classify::delivered(response)),
        _ if throttled => Err(DeliverError::rate_limited(wait(), said)),
        Some(rule) => Err(rule.error(&answer, &said, Some(wait()))),
        None if response.status == 429 => Err(DeliverError::rate_limited(wait(), said)),
        None if response.status >= 500 => Err(DeliverError::retryable(said)),
        None => Err(DeliverError::rejected(said)),
    }
}

/// The wait named by `x-ogw-ratelimit-reset` (seconds), if present.
fn reset_header_ms(response: &HttpResponse) -> Option<u64> {
    let seconds = response
        .header("x-ogw-ratelimit-reset")?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(seconds.saturating_mul(1000))
}

#[cfg(test)]
mod tests;
