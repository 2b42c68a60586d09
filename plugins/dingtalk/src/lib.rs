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
//! 10-minute throttle; -1 and HTTP 5xx retryable; 310000 (keyword, signature,
//! timestamp, IP), 3000xx, 4000xx, 430xxx, 460101, 101002 and any other code
//! rejected with the vendor's code and message.

use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, classify, export_channel, http, sign,
};
use serde::Deserialize;

mod render;

/// The DingTalk custom-robot channel.
pub struct DingTalk;

/// The largest request body DingTalk accepts (errcode 460101 above it).
pub const MAX_BODY_BYTES: usize = 20_000;

/// How long DingTalk throttles a robot that exceeded 20 messages a minute.
pub const THROTTLE_MS: u64 = 10 * 60 * 1000;

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
        if config.keywords.len() > 10 {
            issues.push(ConfigIssue::new(
                "/keywords",
                "DingTalk robots have at most 10 keywords",
            ));
        }
        for (i, keyword) in config.keywords.iter().enumerate() {
            if keyword.trim().is_empty() {
                issues.push(ConfigIssue::new(
                    &format!("/keywords/{i}"),
                    "a keyword cannot be empty",
                ));
            }
        }
        for (i, mobile) in config.at_mobiles.iter().enumerate() {
            if !valid_mobile(mobile) {
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
        if let Some(locale) = &config.locale
            && (locale.len() < 2
                || !locale
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            issues.push(ConfigIssue::new(
                "/locale",
                "expected a BCP 47 language tag such as zh-CN or en",
            ));
        }
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
        let body = render::body(config, message)?;
        let url = match &config.secret {
            Some(secret) => signed_url(&config.webhook, secret, ctx.now_ms),
            None => config.webhook.clone(),
        };
        let request = HttpRequest {
            method: "POST".to_owned(),
            url,
            headers: vec![(
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            )],
            body,
            timeout_ms: None,
        };
        Ok(Outgoing::Http(request))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_answer(ctx, response)
    }
}

export_channel!(DingTalk);

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

/// Classifies a robot answer by its `errcode` (DingTalk answers business
/// errors with HTTP 200).
pub fn classify_answer(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    let summary = classify::summary(response);
    if !response.is_success() {
        return classify::by_status(ctx, response);
    }
    let Some(body) = response.body_json() else {
        return Err(DeliverError::rejected(format!(
            "{summary} (not a DingTalk robot answer: no JSON errcode; delivery unknown)"
        )));
    };
    let Some(code) = body.get("errcode").and_then(serde_json::Value::as_i64) else {
        return Err(DeliverError::rejected(format!(
            "{summary} (not a DingTalk robot answer: no errcode)"
        )));
    };
    let errmsg = body
        .get("errmsg")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let said = format!("errcode {code}: {errmsg}");
    match code {
        0 => Ok(Receipt {
            remote_id: None,
            detail: summary,
        }),
        130101 | 410100 => Err(DeliverError::rate_limited(
            THROTTLE_MS,
            format!("{said} (robot throttled; DingTalk allows 20 messages a minute)"),
        )),
        -1 => Err(DeliverError::retryable(format!("{said} (system busy)"))),
        310000 => Err(DeliverError::rejected(format!(
            "{said} ({})",
            security_hint(errmsg)
        ))),
        300001 | 300005 | 400101 => Err(DeliverError::rejected(format!(
            "{said} (the access_token is wrong, revoked, or the group is external)"
        ))),
        460101 | 101002 => Err(DeliverError::rejected(format!(
            "{said} (message larger than DingTalk's 20000-byte limit)"
        ))),
        400013 | 400102 | 400106 => Err(DeliverError::rejected(format!(
            "{said} (the robot is disabled, removed, or its group dissolved)"
        ))),
        430101..=430104 => Err(DeliverError::rejected(format!(
            "{said} (content refused as unsafe)"
        ))),
        _ => Err(DeliverError::rejected(said)),
    }
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
fn webhook_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some(
            "expected an http(s) URL, https://oapi.dingtalk.com/robot/send?access_token=…",
        );
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
        return Some("the URL has no valid host");
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    let mut token = false;
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "access_token" if !value.is_empty() => token = true,
            "timestamp" | "sign" => {
                return Some("remove timestamp and sign: they are added per request from `secret`");
            }
            _ => {}
        }
    }
    if !token {
        return Some("the URL has no access_token query parameter");
    }
    None
}

/// Mainland numbers are digits; international ones `+<cc>-<number>`.
fn valid_mobile(mobile: &str) -> bool {
    let digits = mobile.strip_prefix('+').unwrap_or(mobile);
    !digits.is_empty()
        && digits.starts_with(|c: char| c.is_ascii_digit())
        && digits.chars().all(|c| c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests;
