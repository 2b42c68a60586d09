//! The `dingtalk` channel: posts messages to a DingTalk custom group robot
//! (自定义机器人) and reads the robot's `errcode` answer.
//!
//! Message types: `markdown` by default; `actionCard` (one button) when the
//! message has a link and no mentions, because an action card cannot @ anyone;
//! `text` when `msg_type` is `text`. An explicit `msg_type` always wins.
//!
//! Signing (加签): `timestamp` is the attempt's clock (`Context::now_ms`, never
//! a system clock), `sign` = Base64(HMAC-SHA256(key = secret, message =
//! `timestamp + "\n" + secret`)), URL-encoded once and appended to the
//! configured robot URL as `&timestamp=…&sign=…`. Every attempt re-signs.
//!
//! Keywords (关键字): when keywords are configured and the rendered message
//! contains none of them, the first keyword is written visibly into the title
//! line (and the `title` field), so the robot accepts the message.
//!
//! Mentions: mobiles go to `at.atMobiles`, user ids to `at.atUserIds`, "all"
//! to `at.isAtAll`; each `@mobile` / `@userid` is also written on the last
//! line of the text, which DingTalk requires for the @ to fire. Email
//! mentions cannot be expressed and are dropped with a warning.
//!
//! Tables: pipe tables are not in DingTalk's documented Markdown subset (they
//! render on PC but not on mobile), so a table is rendered as one list line
//! per row, `- Title: value, Title: value`, with `✓` / `✗` after cells that
//! pass or fail their column's condition.
//!
//! Size: the whole JSON body stays within 20,000 bytes (measured on the
//! serialized request, with `carillon_sdk::fit`): table rows are cut first,
//! then the body text at a line boundary, each with a visible note.
//!
//! Answers: `errcode` 0 delivered; 130101 / 410100 rate-limited for the
//! 10-minute throttle; -1 and HTTP 5xx retryable; 300001, 300005 and 400101
//! (the token is wrong or revoked) invalid-config, which pauses the
//! destination; 310000 (keyword, signature, timestamp, IP), other 4000xx,
//! 430xxx, 460101, 101002 and any other code rejected with the vendor's code
//! and message.

use carillon_sdk::error_code::{self, Rule, Verdict};
use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, endpoint, export_channel, http, keywords, locale, mention, sign,
};
use serde::Deserialize;

mod render;

/// The DingTalk custom-robot channel.
pub struct DingTalk;

/// The largest request body DingTalk accepts (errcode 460101 above it).
pub const MAX_BODY_BYTES: usize = 20_000;

/// How long DingTalk throttles a robot that exceeded 20 messages a minute.
pub const THROTTLE_MS: u64 = 10 * 60 * 1000;

/// The most security keywords a robot has.
const MAX_KEYWORDS: usize = 10;

/// The message type to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgType {
    /// `markdown` (the default), with the link inline.
    Markdown,
    /// `text`: plain text.
    Text,
    /// `actionCard`: Markdown with a button for the link.
    ActionCard,
}

/// A DingTalk robot destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingTalkConfig {
    /// The full robot URL, `https://oapi.dingtalk.com/robot/send?access_token=…`.
    pub webhook: String,
    /// The signing secret (`SEC…`) when the robot has 加签 enabled.
    #[serde(default)]
    pub secret: Option<String>,
    /// The robot's security keywords (at most 10).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Force a message type; by default markdown, or an action card for links.
    #[serde(default)]
    pub msg_type: Option<MsgType>,
    /// Mobiles to @ in every message.
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// User ids to @ in every message.
    #[serde(default)]
    pub at_user_ids: Vec<String>,
    /// @ everyone in every message.
    #[serde(default)]
    pub at_all: bool,
    /// Locale for the plugin's own words (notes, button); default: the message's.
    #[serde(default)]
    pub locale: Option<String>,
}

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "DingTalk custom robot destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["webhook"],
  "properties": {
    "webhook": {
      "type": "string",
      "pattern": "^https?://[^?]+\\?(.*&)?access_token=[^&]+",
      "description": "The robot's full webhook URL including access_token, e.g. https://oapi.dingtalk.com/robot/send?access_token=…"
    },
    "secret": { "type": "string", "pattern": "^SEC", "description": "The signing secret (加签), starting with SEC." },
    "keywords": {
      "type": "array", "maxItems": 10, "items": { "type": "string", "minLength": 1 },
      "description": "The robot's security keywords; the first is added to the title when a message contains none."
    },
    "msg_type": { "enum": ["markdown", "text", "action_card"], "description": "Force a message type. Default: markdown, or an action card when the message has a link and no mentions." },
    "at_mobiles": { "type": "array", "items": { "type": "string", "pattern": "^\\+?[0-9][0-9-]*$" }, "description": "Mobile numbers to @ in every message (+cc-number for international)." },
    "at_user_ids": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "DingTalk user ids to @ in every message." },
    "at_all": { "type": "boolean", "default": false, "description": "@ everyone in every message." },
    "locale": { "type": "string", "minLength": 2, "description": "Language of the plugin's own words (e.g. zh-CN, en); default: the message's locale." }
  }
}"#;

impl Channel for DingTalk {
    type Config = DingTalkConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "dingtalk",
            env!("CARGO_PKG_VERSION"),
            "Sends messages to a DingTalk custom group robot, signed and keyword-guarded as configured.",
        )
        .schema(SCHEMA)
        .endpoint_field("/webhook")
        .secret_field("/secret")
        .secret_field("/webhook")
        .allowed_host("oapi.dingtalk.com")
        .max_payload_bytes(MAX_BODY_BYTES as u32)
        .rate_limit(20, 60_000)
    }

    fn check(config: &DingTalkConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = webhook_problem(&config.webhook) {
            issues.push(ConfigIssue::new("/webhook", problem));
        }
        if let Some(secret) = &config.secret
            && (!secret.starts_with("SEC") || secret.len() <= 3)
        {
            issues.push(ConfigIssue::new(
                "/secret",
                "expected the signing secret shown in the robot settings, starting with SEC",
            ));
        }
        issues.extend(keywords::check("/keywords", &config.keywords, MAX_KEYWORDS));
        for (i, mobile) in config.at_mobiles.iter().enumerate() {
            if !mention::is_mobile(mobile) {
                issues.push(ConfigIssue::new(
                    &format!("/at_mobiles/{i}"),
                    "expected digits, or +<country code>-<number> for international numbers",
                ));
            }
        }
        for (i, id) in config.at_user_ids.iter().enumerate() {
            if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                issues.push(ConfigIssue::new(
                    &format!("/at_user_ids/{i}"),
                    "a user id cannot be empty or contain spaces",
                ));
            }
        }
        if config.msg_type == Some(MsgType::ActionCard)
            && (config.at_all || !config.at_mobiles.is_empty() || !config.at_user_ids.is_empty())
        {
            issues.push(ConfigIssue::new(
                "/msg_type",
                "DingTalk action cards cannot @ anyone; with at_all, at_mobiles or at_user_ids use msg_type markdown or text",
            ));
        }
        issues.extend(locale::check("/locale", config.locale.as_deref()));
        issues
    }

    fn render(
        ctx: &Context,
        config: &DingTalkConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        if let Some(problem) = webhook_problem(&config.webhook) {
            return Err(DeliverError::invalid_config(format!("webhook: {problem}")));
        }
        request(ctx, config, message).map(|(request, _)| Outgoing::Http(request))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_answer(ctx, response)
    }

    /// Sends the rendered body; the receipt says which mentions changed the
    /// message type or could not be made.
    fn deliver(
        ctx: &Context,
        config: &DingTalkConfig,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        if let Some(problem) = webhook_problem(&config.webhook) {
            return Err(DeliverError::invalid_config(format!("webhook: {problem}")));
        }
        let (request, notes) = request(ctx, config, message)?;
        notes.send(&request, |response| classify_answer(ctx, response))
    }
}

export_channel!(DingTalk);

/// The signed request for `message` and the notes about its mentions.
fn request(
    ctx: &Context,
    config: &DingTalkConfig,
    message: &Message,
) -> Result<(HttpRequest, mention::Notes), DeliverError> {
    let (body, notes) = render::body(config, message)?;
    let url = match &config.secret {
        Some(secret) => signed_url(&config.webhook, secret, ctx.now_ms),
        None => config.webhook.clone(),
    };
    Ok((HttpRequest::post_json_bytes(&url, body), notes))
}

/// The DingTalk signature for `timestamp_ms`, Base64 (not yet URL-encoded).
pub fn signature(secret: &str, timestamp_ms: u64) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    sign::hmac_sha256_base64(secret.as_bytes(), to_sign.as_bytes())
}

/// The robot URL with `&timestamp=…&sign=…` appended (sign URL-encoded once).
pub fn signed_url(webhook: &str, secret: &str, timestamp_ms: u64) -> String {
    let timestamp = timestamp_ms.to_string();
    let sign = signature(secret, timestamp_ms);
    http::with_query(webhook, &[("timestamp", &timestamp), ("sign", &sign)])
}

/// What DingTalk's `errcode`s mean; 0 is delivered, other codes rejected.
const ERRCODES: &[Rule] = &[
    Rule::new(
        &[130101, 410100],
        Verdict::RateLimited(THROTTLE_MS),
        "robot throttled; DingTalk allows 20 messages a minute",
    ),
    Rule::new(&[-1], Verdict::Retryable, "system busy"),
    Rule::explained(&[310000], Verdict::Rejected, security_hint),
    Rule::new(
        &[300001, 300005, 400101],
        Verdict::InvalidConfig,
        "the access_token is wrong, revoked, or the group is external",
    ),
    Rule::new(
        &[460101, 101002],
        Verdict::Rejected,
        "message larger than DingTalk's 20000-byte limit",
    ),
    Rule::new(
        &[400013, 400102, 400106],
        Verdict::Rejected,
        "the robot is disabled, removed, or its group dissolved",
    ),
    Rule::new(
        &[430101, 430102, 430103, 430104],
        Verdict::Rejected,
        "content refused as unsafe",
    ),
];

/// Classifies a robot answer by its `errcode` (DingTalk answers business
/// errors with HTTP 200).
pub fn classify_answer(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    error_code::by_errcode(ctx, response, "DingTalk robot", ERRCODES)
}

/// Which of the 310000 security checks failed, from the errmsg wording.
fn security_hint(errmsg: &str) -> &'static str {
    let lower = errmsg.to_lowercase();
    if lower.contains("keyword") || errmsg.contains("关键词") {
        "the message contains none of the robot's keywords; check `keywords`"
    } else if lower.contains("timestamp") || errmsg.contains("过期") {
        "the signature timestamp is more than an hour off DingTalk's clock; fix the gateway's clock"
    } else if lower.contains("sign") || errmsg.contains("签名") {
        "signature mismatch; check `secret`"
    } else if lower.contains("whitelist") || lower.contains("ip") || errmsg.contains("白名单") {
        "the gateway's IP address is not in the robot's allowlist"
    } else {
        "a robot security setting refused the message"
    }
}

/// What is wrong with a robot URL, if anything.
fn webhook_problem(url: &str) -> Option<String> {
    let url = match endpoint::read(url, EXAMPLE_WEBHOOK) {
        Ok(url) => url,
        Err(problem) => return Some(problem),
    };
    if url
        .query_pairs()
        .any(|(name, _)| matches!(name, "timestamp" | "sign"))
    {
        return Some(
            "remove timestamp and sign: they are added per request from `secret`".to_owned(),
        );
    }
    if url.query_value("access_token").is_none() {
        return Some("the URL has no access_token query parameter".to_owned());
    }
    None
}

/// What a robot URL looks like, for error messages.
const EXAMPLE_WEBHOOK: &str = "https://oapi.dingtalk.com/robot/send?access_token=…";

#[cfg(test)]
mod tests;
