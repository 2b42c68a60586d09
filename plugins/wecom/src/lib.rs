//! The `wecom` channel: posts messages to a WeCom (企业微信) group robot
//! (群机器人) and reads the robot's `errcode` answer.
//!
//! Message types: `markdown` by default; `markdown_v2` for messages with a
//! table when the destination sets `markdown_v2_tables`; `text` when
//! `msg_type` is `text`. The robot URL's `key` is the only credential: WeCom
//! robots have no signing or keyword settings.
//!
//! Tables, the trade-off WeCom forces: `markdown` has colours but no tables,
//! `markdown_v2` has tables but no colours and no mentions (and renders as
//! plain text on clients older than 4.1.36). By default a table is one line
//! per row, `Title: value, Title: value`, with conditional cells coloured
//! `<font color="info">` (pass, green), `<font color="warning">` (fail,
//! orange-red) or `<font color="comment">` (not comparable, grey). With
//! `markdown_v2_tables` it is a pipe table with `✓` / `✗` marks instead.
//!
//! Mentions: in `markdown`, user ids become `<@userid>`; WeCom Markdown has
//! no @all and no @mobile, so those are dropped with a warning (use
//! `msg_type: text` for them). In `text`, user ids and "all" (`@all`) go to
//! `mentioned_list`, mobiles to `mentioned_mobile_list`. `markdown_v2`
//! cannot mention anyone. Email mentions are never expressible.
//!
//! Size: WeCom counts UTF-8 bytes of the content: `markdown` and
//! `markdown_v2` at most 4096, `text` at most 2048; the whole JSON body is
//! also kept within [`MAX_BODY_BYTES`]. Both are measured on the rebuilt
//! request (`carillon_sdk::fit`): table rows are cut first, then the body
//! text at a line boundary, each with a visible note.
//!
//! Answers: `errcode` 0 delivered; 45009 (frequency) and 45033 (concurrency)
//! rate-limited; -1 and HTTP 5xx retryable; 93000 (bad key), 40058 (too
//! long), 40008, 44004, 45002, 40007 and any other code rejected with the
//! vendor's code and message.

use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, classify, export_channel,
};
use serde::Deserialize;

mod render;

/// The WeCom group-robot channel.
pub struct WeCom;

/// The largest `markdown` / `markdown_v2` content WeCom accepts, in bytes.
pub const MARKDOWN_MAX_BYTES: usize = 4096;

/// The largest `text` content WeCom documents, in bytes.
pub const TEXT_MAX_BYTES: usize = 2048;

/// The largest JSON body this plugin sends (content plus JSON escaping and
/// mention lists), in bytes.
pub const MAX_BODY_BYTES: usize = 8192;

/// How long to wait after 45009: the robot's window is one minute.
pub const FREQUENCY_WAIT_MS: u64 = 60_000;

/// How long to wait after 45033 (too many concurrent calls).
pub const CONCURRENCY_WAIT_MS: u64 = 2_000;

/// The message type to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MsgType {
    /// `markdown` (the default): colours and `<@userid>` mentions.
    Markdown,
    /// `text`: plain text with mention lists.
    Text,
}

/// A WeCom robot destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeComConfig {
    /// The full robot URL, `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…`.
    pub webhook: String,
    /// `markdown` (default) or `text`.
    #[serde(default)]
    pub msg_type: Option<MsgType>,
    /// Send messages that have a table as `markdown_v2` with a pipe table.
    #[serde(default)]
    pub markdown_v2_tables: bool,
    /// User ids to mention in every message.
    #[serde(default)]
    pub at_user_ids: Vec<String>,
    /// Mobiles to mention in every message (text messages only).
    #[serde(default)]
    pub at_mobiles: Vec<String>,
    /// Mention everyone in every message (text messages only).
    #[serde(default)]
    pub at_all: bool,
    /// Locale for the plugin's own words; default: the message's.
    #[serde(default)]
    pub locale: Option<String>,
}

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "WeCom group robot destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["webhook"],
  "properties": {
    "webhook": {
      "type": "string",
      "pattern": "^https?://[^?]+\\?(.*&)?key=[^&]+",
      "description": "The robot's full webhook URL including key, e.g. https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
    },
    "msg_type": { "enum": ["markdown", "text"], "default": "markdown", "description": "markdown (colours, <@userid> mentions) or text (mention lists, @all and mobiles)." },
    "markdown_v2_tables": { "type": "boolean", "default": false, "description": "Send messages with a table as markdown_v2 pipe tables (no colours, no mentions; needs WeCom 4.1.36+)." },
    "at_user_ids": { "type": "array", "items": { "type": "string", "minLength": 1 }, "description": "WeCom user ids to mention in every message." },
    "at_mobiles": { "type": "array", "items": { "type": "string", "pattern": "^\\+?[0-9][0-9-]*$" }, "description": "Mobile numbers to mention in every text message." },
    "at_all": { "type": "boolean", "default": false, "description": "Mention everyone in every text message." },
    "locale": { "type": "string", "minLength": 2, "description": "Language of the plugin's own words (e.g. zh-CN, en); default: the message's locale." }
  }
}"#;

impl Channel for WeCom {
    type Config = WeComConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "wecom",
            env!("CARGO_PKG_VERSION"),
            "Sends messages to a WeCom (企业微信) group robot as Markdown or text.",
        )
        .schema(SCHEMA)
        .endpoint_field("/webhook")
        .secret_field("/webhook")
        .allowed_host("qyapi.weixin.qq.com")
        .max_payload_bytes(MAX_BODY_BYTES as u32)
        .rate_limit(20, 60_000)
    }

    fn check(config: &WeComConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Some(problem) = webhook_problem(&config.webhook) {
            issues.push(ConfigIssue::new("/webhook", problem));
        }
        if config.markdown_v2_tables && config.msg_type == Some(MsgType::Text) {
            issues.push(ConfigIssue::new(
                "/markdown_v2_tables",
                "markdown_v2 tables cannot be used with msg_type text",
            ));
        }
        for (i, id) in config.at_user_ids.iter().enumerate() {
            if id.trim().is_empty() || id.chars().any(char::is_whitespace) || id == "@all" {
                issues.push(ConfigIssue::new(
                    &format!("/at_user_ids/{i}"),
                    "expected a user id without spaces (use at_all for @all)",
                ));
            }
        }
        for (i, mobile) in config.at_mobiles.iter().enumerate() {
            let digits = mobile.strip_prefix('+').unwrap_or(mobile);
            let ok = digits.starts_with(|c: char| c.is_ascii_digit())
                && digits.chars().all(|c| c.is_ascii_digit() || c == '-');
            if !ok {
                issues.push(ConfigIssue::new(
                    &format!("/at_mobiles/{i}"),
                    "expected a mobile number of digits",
                ));
            }
        }
        let text = config.msg_type == Some(MsgType::Text);
        if !text && !config.at_mobiles.is_empty() {
            issues.push(ConfigIssue::new(
                "/at_mobiles",
                "WeCom Markdown cannot mention by mobile; set msg_type to text",
            ));
        }
        if !text && config.at_all {
            issues.push(ConfigIssue::new(
                "/at_all",
                "WeCom Markdown cannot mention everyone; set msg_type to text",
            ));
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
        _ctx: &Context,
        config: &WeComConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        if let Some(problem) = webhook_problem(&config.webhook) {
            return Err(DeliverError::invalid_config(format!("webhook: {problem}")));
        }
        Ok(Outgoing::Http(HttpRequest {
            method: "POST".to_owned(),
            url: config.webhook.clone(),
            headers: vec![(
                "content-type".to_owned(),
                "application/json; charset=utf-8".to_owned(),
            )],
            body: render::body(config, message)?,
            timeout_ms: None,
        }))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_answer(ctx, response)
    }
}

export_channel!(WeCom);

/// Classifies a robot answer by its `errcode` (WeCom answers business errors
/// with HTTP 200).
pub fn classify_answer(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    if !response.is_success() {
        return classify::by_status(ctx, response);
    }
    let summary = classify::summary(response);
    let code = response
        .body_json()
        .and_then(|b| b.get("errcode").and_then(serde_json::Value::as_i64));
    let Some(code) = code else {
        return Err(DeliverError::rejected(format!(
            "{summary} (not a WeCom robot answer: no JSON errcode; delivery unknown)"
        )));
    };
    let errmsg = response
        .body_json()
        .and_then(|b| b.get("errmsg").and_then(|m| m.as_str().map(str::to_owned)))
        .unwrap_or_default();
    let said = format!("errcode {code}: {errmsg}");
    match code {
        0 => Ok(Receipt {
            remote_id: None,
            detail: summary,
        }),
        45009 => Err(DeliverError::rate_limited(
            FREQUENCY_WAIT_MS,
            format!("{said} (WeCom allows 20 messages a minute per robot)"),
        )),
        45033 => Err(DeliverError::rate_limited(
            CONCURRENCY_WAIT_MS,
            format!("{said} (too many concurrent calls)"),
        )),
        -1 => Err(DeliverError::retryable(format!("{said} (system busy)"))),
        93000 => Err(DeliverError::rejected(format!(
            "{said} (the webhook key is wrong or the robot was removed)"
        ))),
        40058 | 45002 => Err(DeliverError::rejected(format!(
            "{said} (content longer than WeCom accepts)"
        ))),
        40008 => Err(DeliverError::rejected(format!("{said} (bad message type)"))),
        44004 => Err(DeliverError::rejected(format!("{said} (empty content)"))),
        _ => Err(DeliverError::rejected(said)),
    }
}

/// What is wrong with a robot URL, if anything.
fn webhook_problem(url: &str) -> Option<&'static str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return Some(
            "expected an http(s) URL, https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
        );
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || authority.contains(' ') {
        return Some("the URL has no valid host");
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let query = query.split('#').next().unwrap_or("");
    let has_key = query
        .split('&')
        .any(|pair| pair.strip_prefix("key=").is_some_and(|v| !v.is_empty()));
    if has_key {
        None
    } else {
        Some("the URL has no key query parameter")
    }
}

#[cfg(test)]
mod tests;
