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
//! rate-limited; -1 and HTTP 5xx retryable; 93000 (bad key or removed robot)
//! invalid-config, which pauses the destination; 40058 (too
//! long), 40008, 44004, 45002, 40007 and any other code rejected with the
//! vendor's code and message.

use carillon_sdk::error_code::{self, Rule, Verdict};
use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, endpoint, export_channel, locale, mention,
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
            if !mention::is_mobile(mobile) {
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
        issues.extend(locale::check("/locale", config.locale.as_deref()));
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
        let (body, _) = render::body(config, message)?;
        Ok(Outgoing::Http(HttpRequest::post_json_bytes(
            &config.webhook,
            body,
        )))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        classify_answer(ctx, response)
    }

    /// Sends the rendered body; the receipt says which mentions changed the
    /// body type or could not be made.
    fn deliver(
        ctx: &Context,
        config: &WeComConfig,
        message: &Message,
    ) -> Result<Receipt, DeliverError> {
        if let Some(problem) = webhook_problem(&config.webhook) {
            return Err(DeliverError::invalid_config(format!("webhook: {problem}")));
        }
        let (body, notes) = render::body(config, message)?;
        let request = HttpRequest::post_json_bytes(&config.webhook, body);
        notes.send(&request, |response| classify_answer(ctx, response))
    }
}

export_channel!(WeCom);

/// What WeCom's `errcode`s mean; 0 is delivered, other codes rejected.
const ERRCODES: &[Rule] = &[
    Rule::new(
        &[45009],
        Verdict::RateLimited(FREQUENCY_WAIT_MS),
        "WeCom allows 20 messages a minute per robot",
    ),
    Rule::new(
        &[45033],
        Verdict::RateLimited(CONCURRENCY_WAIT_MS),
        "too many concurrent calls",
    ),
    Rule::new(&[-1], Verdict::Retryable, "system busy"),
    Rule::new(
        &[93000],
        Verdict::InvalidConfig,
        "the webhook key is wrong or the robot was removed",
    ),
    Rule::new(
        &[40058, 45002],
        Verdict::Rejected,
        "content longer than WeCom accepts",
    ),
    Rule::new(&[40008], Verdict::Rejected, "bad message type"),
    Rule::new(&[44004], Verdict::Rejected, "empty content"),
];

/// Classifies a robot answer by its `errcode` (WeCom answers business errors
/// with HTTP 200).
pub fn classify_answer(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    error_code::by_errcode(ctx, response, "WeCom robot", ERRCODES)
}

/// What is wrong with a robot URL, if anything.
fn webhook_problem(url: &str) -> Option<String> {
    match endpoint::read(url, EXAMPLE_WEBHOOK) {
        Err(problem) => Some(problem),
        Ok(url) if url.query_value("key").is_none() => {
            Some("the URL has no key query parameter".to_owned())
        }
        Ok(_) => None,
    }
}

/// What a robot URL looks like, for error messages.
const EXAMPLE_WEBHOOK: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…";

#[cfg(test)]
mod tests;
