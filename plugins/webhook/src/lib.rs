//! The `webhook` channel: POSTs each message as JSON (or as a configured body
//! template) to a URL, optionally signed per Standard Webhooks 1.0.
//!
//! Signing: `webhook-id` is the delivery id (stable across retries, so
//! receivers can deduplicate), `webhook-timestamp` the attempt's Unix seconds,
//! and `webhook-signature` `v1,` + Base64(HMAC-SHA256) of
//! `"{id}.{timestamp}.{body}"` keyed by the Base64-decoded `whsec_` secret.
//!
//! Answers: 2xx delivered; 429 rate-limited; 502/503/504 retryable, or
//! rate-limited when they carry `Retry-After`; 408, 425 and other 5xx
//! retryable; 3xx, 410 and other 4xx rejected; transport errors retryable.

use std::collections::BTreeMap;

use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, classify, endpoint, export_channel, http, sign,
};
use serde::Deserialize;

mod body;

/// The webhook channel.
pub struct Webhook;

/// A webhook destination.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to send, an http(s) URL.
    pub url: String,
    /// `POST` (default) or `PUT`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra headers, e.g. `Authorization`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A minijinja template for the body; the message is in scope as
    /// `message`, plus `event_id` and `delivery_id`. Default: Carillon's JSON.
    #[serde(default)]
    pub body_template: Option<String>,
    /// The body's content type when a template is used.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// A Standard Webhooks secret (`whsec_` + Base64 of 24–64 bytes).
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// Timeout for the whole exchange, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

fn default_method() -> String {
    "POST".to_owned()
}

fn default_content_type() -> String {
    http::JSON_UTF8.to_owned()
}

/// Headers a configuration may not set, because the plugin or HTTP owns them.
const RESERVED_HEADERS: &[&str] = &[
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "content-length",
    "host",
    "transfer-encoding",
    "connection",
];

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Webhook destination",
  "type": "object",
  "additionalProperties": false,
  "required": ["url"],
  "properties": {
    "url": { "type": "string", "pattern": "^https?://", "description": "Where to send the message." },
    "method": { "enum": ["POST", "PUT"], "default": "POST" },
    "headers": {
      "type": "object",
      "description": "Extra request headers, e.g. Authorization. Values are treated as secrets.",
      "additionalProperties": { "type": "string" }
    },
    "body_template": { "type": "string", "description": "A minijinja template for the body; `message`, `event_id` and `delivery_id` are in scope." },
    "content_type": { "type": "string", "default": "application/json; charset=utf-8" },
    "signing_secret": { "type": "string", "pattern": "^whsec_", "description": "Standard Webhooks secret: whsec_ + Base64 of 24 to 64 random bytes." },
    "timeout_ms": { "type": "integer", "minimum": 100, "maximum": 60000 }
  }
}"#;

impl Channel for Webhook {
    type Config = WebhookConfig;

    fn manifest() -> Manifest {
        Manifest::new(
            "webhook",
            env!("CARGO_PKG_VERSION"),
            "Sends each message as JSON to any HTTP endpoint, optionally signed per Standard Webhooks.",
        )
        .schema(SCHEMA)
        .endpoint_field("/url")
        .secret_field("/signing_secret")
        .secret_field("/headers")
        .max_payload_bytes(256 * 1024)
    }

    fn check(config: &WebhookConfig) -> Vec<ConfigIssue> {
        let mut issues = Vec::new();
        if let Err(issue) = endpoint::check("/url", &config.url) {
            issues.push(issue);
        }
        if !matches!(config.method.as_str(), "POST" | "PUT") {
            issues.push(ConfigIssue::new("/method", "expected POST or PUT"));
        }
        for name in config.headers.keys() {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                issues.push(ConfigIssue::new(
                    &format!("/headers/{name}"),
                    "this header is set by Carillon and cannot be configured",
                ));
            } else if name.is_empty() || !name.bytes().all(is_token_byte) {
                issues.push(ConfigIssue::new(
                    &format!("/headers/{name}"),
                    "not a valid HTTP header name",
                ));
            }
        }
        if let Some(secret) = &config.signing_secret
            && let Err(problem) = signing_key(secret)
        {
            issues.push(ConfigIssue::new("/signing_secret", problem));
        }
        if let Some(template) = &config.body_template
            && let Err(e) = body::compile_check(template)
        {
            issues.push(ConfigIssue::new("/body_template", e));
        }
        issues
    }

    fn render(
        ctx: &Context,
        config: &WebhookConfig,
        message: &Message,
    ) -> Result<Outgoing, DeliverError> {
        let (payload, content_type) = match &config.body_template {
            Some(template) => (
                body::from_template(template, ctx, message)?,
                config.content_type.clone(),
            ),
            None => (body::default_json(ctx, message), default_content_type()),
        };
        let mut request = HttpRequest::new(&config.method, &config.url, &content_type, payload);
        request.timeout_ms = config.timeout_ms;
        for (name, value) in &config.headers {
            request.headers.push((name.clone(), value.clone()));
        }
        if let Some(secret) = &config.signing_secret {
            let key = signing_key(secret).map_err(DeliverError::invalid_config)?;
            let timestamp = (ctx.now_ms / 1000).to_string();
            let signature = signature(&key, &ctx.delivery_id, &timestamp, &request.body);
            request
                .headers
                .push(("webhook-id".to_owned(), ctx.delivery_id.clone()));
            request
                .headers
                .push(("webhook-timestamp".to_owned(), timestamp));
            request
                .headers
                .push(("webhook-signature".to_owned(), signature));
        }
        Ok(Outgoing::Http(request))
    }

    fn classify(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
        match response.status {
            410 => Err(DeliverError::rejected(format!(
                "{} (the endpoint is gone: disable this destination or fix its URL)",
                classify::summary(response)
            ))),
            _ => classify::by_status(ctx, response),
        }
    }
}

export_channel!(Webhook);

/// The decoded key of a `whsec_` secret.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or("expected the whsec_ prefix")?;
    let key = sign::base64_decode(encoded).ok_or("the part after whsec_ is not Base64")?;
    // The reference libraries accept any length; refuse keys too short to be safe.
    if key.len() < 24 {
        return Err(format!(
            "the key is {} bytes; Standard Webhooks asks for 24 to 64 random bytes",
            key.len()
        ));
    }
    Ok(key)
}

/// The `webhook-signature` value: `v1,` + Base64(HMAC-SHA256(key, "id.ts.body")).
pub fn signature(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    format!("v1,{}", sign::hmac_sha256_base64(key, &signed))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
