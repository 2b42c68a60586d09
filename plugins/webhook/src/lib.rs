//! The `webhook` channel: POSTs each message as JSON (or as a configured body
//! template) to a URL, optionally signed per Standard Webhooks 1.0.
//!
//! Signing: `webhook-id` is the delivery id (stable across retries, so
//! receivers can deduplicate), `webhook-timestamp` the attempt's Unix seconds,
//! and `webhook-signature` one signature of `"{id}.{timestamp}.{body}"` per
//! configured secret ([`signing`]: `v1` HMAC-SHA256 for `whsec_`, `v1a`
//! ed25519 for `whsk_`), so receivers rotate keys without downtime.
//!
//! Answers: 2xx delivered; 429 rate-limited; 502/503/504 retryable, or
//! rate-limited when they carry `Retry-After`; 408, 425 and other 5xx
//! retryable; 3xx, 410 and other 4xx rejected; transport errors retryable.

use std::collections::BTreeMap;

use carillon_sdk::{
    Channel, ConfigIssue, Context, DeliverError, HttpRequest, HttpResponse, Manifest, Message,
    Outgoing, Receipt, classify, endpoint, export_channel, http,
};
use serde::Deserialize;

mod body;
pub mod signing;

pub use signing::{Key, signature, signing_key};

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
    /// Standard Webhooks secrets: one, or a list while rotating.
    #[serde(default)]
    pub signing_secret: Option<SigningSecrets>,
    /// Timeout for the whole exchange, in milliseconds.
    #[serde(default)]
    pub timeout_ms: Option<u32>,
}

/// `signing_secret`: one secret, or several (the new key first, then the
/// ones receivers may still hold).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SigningSecrets {
    /// One secret.
    One(String),
    /// Several, each signing the message.
    Many(Vec<String>),
}

impl SigningSecrets {
    /// Each secret with its JSON pointer.
    fn each(&self) -> Vec<(String, &str)> {
        match self {
            SigningSecrets::One(secret) => vec![("/signing_secret".to_owned(), secret.as_str())],
            SigningSecrets::Many(list) => list
                .iter()
                .enumerate()
                .map(|(i, secret)| (format!("/signing_secret/{i}"), secret.as_str()))
                .collect(),
        }
    }

    /// The parsed keys, or each problem at its pointer.
    pub fn keys(&self) -> Result<Vec<Key>, Vec<ConfigIssue>> {
        let mut keys = Vec::new();
        let mut issues = Vec::new();
        let each = self.each();
        if each.is_empty() {
            issues.push(ConfigIssue::new("/signing_secret", "lists no secret"));
        }
        if each.len() > signing::MAX_SECRETS {
            issues.push(ConfigIssue::new(
                "/signing_secret",
                format!(
                    "at most {} secrets (the current one and those being rotated out)",
                    signing::MAX_SECRETS
                ),
            ));
        }
        for (pointer, secret) in each {
            match Key::parse(secret) {
                Ok(key) => keys.push(key),
                Err(problem) => issues.push(ConfigIssue::new(&pointer, problem)),
            }
        }
        if issues.is_empty() {
            Ok(keys)
        } else {
            Err(issues)
        }
    }
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
    "signing_secret": {
      "description": "Standard Webhooks secret(s): whsec_ + Base64 of 24 to 64 random bytes (HMAC-SHA256, v1), or whsk_ + Base64 of an ed25519 secret key (v1a). A list signs with each, for key rotation.",
      "oneOf": [
        { "type": "string", "pattern": "^wh(sec|sk)_" },
        { "type": "array", "minItems": 1, "maxItems": 4, "items": { "type": "string", "pattern": "^wh(sec|sk)_" } }
      ]
    },
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
        if let Some(secrets) = &config.signing_secret
            && let Err(problems) = secrets.keys()
        {
            issues.extend(problems);
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
        if let Some(secrets) = &config.signing_secret {
            let keys = secrets.keys().map_err(|problems| {
                DeliverError::invalid_config(
                    problems
                        .iter()
                        .map(|p| format!("{}: {}", p.path, p.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            let timestamp = (ctx.now_ms / 1000).to_string();
            let signature =
                signing::signature_header(&keys, &ctx.delivery_id, &timestamp, &request.body);
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

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests;
