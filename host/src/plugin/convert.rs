//! Conversions between the WIT types (generated in `bindings`) and the
//! host's own types (`plugin::types`, and the egress's wire types and
//! errors), kept in one place.

use std::time::Duration;

use super::bindings::carillon::plugin::{http as whttp, types as w};
use super::types::{ConfigIssue, DeliverError, DeliveryContext, Mail, Outgoing, Receipt};
use crate::egress::http::HttpError;
use crate::egress::wire::{HttpRequest, HttpResponse};
use crate::message::{self as m, Message};

pub(crate) fn http_request_from_wit(r: w::HttpRequest) -> HttpRequest {
    HttpRequest {
        method: r.method,
        url: r.url,
        headers: r.headers,
        body: r.body,
        timeout_ms: r.timeout_ms,
    }
}

pub(crate) fn http_response_to_wit(r: HttpResponse) -> w::HttpResponse {
    w::HttpResponse {
        status: r.status,
        headers: r.headers,
        body: r.body,
    }
}

pub(crate) fn http_error_to_wit(e: HttpError) -> whttp::HttpError {
    match e {
        HttpError::Denied(h) => whttp::HttpError::Denied(h),
        HttpError::PrivateAddress(a) => whttp::HttpError::PrivateAddress(a),
        HttpError::InvalidRequest(r) => whttp::HttpError::InvalidRequest(r),
        HttpError::Timeout => whttp::HttpError::Timeout,
        HttpError::Connect(r) => whttp::HttpError::Connect(r),
        HttpError::ResponseTooLarge(n) => whttp::HttpError::ResponseTooLarge(n),
        HttpError::Transport(r) => whttp::HttpError::Transport(r),
    }
}

pub(crate) fn context_to_wit(c: &DeliveryContext) -> w::Context {
    w::Context {
        delivery_id: c.delivery_id.clone(),
        event_id: c.event_id.clone(),
        attempt: c.attempt,
        now_ms: c.now_ms,
    }
}

/// A destination (its name and resolved config) as the plugin sees it.
pub(crate) fn destination_to_wit(name: &str, config: &serde_json::Value) -> w::Destination {
    w::Destination {
        name: name.to_owned(),
        config: config.to_string(),
    }
}

pub(crate) fn outgoing_from_wit(o: w::Outgoing) -> Outgoing {
    match o {
        w::Outgoing::Http(r) => Outgoing::Http(http_request_from_wit(r)),
        w::Outgoing::Mail(mail) => Outgoing::Mail(Mail {
            host: mail.server.host,
            port: mail.server.port,
            envelope_from: mail.envelope_from,
            envelope_to: mail.envelope_to,
            message: mail.message,
        }),
    }
}

/// Most bytes of a receipt's `detail` or of an error's or config issue's
/// message kept from a plugin: they are stored with every attempt and
/// shown by the API, so a plugin must not grow the outbox or a response
/// with them.
pub(crate) const MAX_PLUGIN_TEXT_BYTES: usize = 4 << 10;

/// Most bytes of a receipt's `remote-id` or a config issue's `path`.
pub(crate) const MAX_PLUGIN_ID_BYTES: usize = 256;

/// What ends a text cut to its limit.
pub(crate) const TRUNCATED_MARKER: &str = "… [truncated]";

/// `text` within `max` bytes: unchanged when it fits, else cut on a UTF-8
/// character boundary and ended with [`TRUNCATED_MARKER`] (the marker
/// included in `max`).
pub(crate) fn bounded(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max.saturating_sub(TRUNCATED_MARKER.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATED_MARKER);
    text
}

pub(crate) fn receipt_from_wit(r: w::Receipt) -> Receipt {
    Receipt {
        remote_id: r.remote_id.map(|id| bounded(id, MAX_PLUGIN_ID_BYTES)),
        detail: bounded(r.detail, MAX_PLUGIN_TEXT_BYTES),
    }
}

pub(crate) fn deliver_error_from_wit(e: w::DeliverError) -> DeliverError {
    let text = |r: String| bounded(r, MAX_PLUGIN_TEXT_BYTES);
    match e {
        w::DeliverError::Retryable(r) => DeliverError::Retryable(text(r)),
        w::DeliverError::RateLimited(l) => DeliverError::RateLimited {
            after: Duration::from_millis(l.after_ms),
            reason: text(l.reason),
        },
        w::DeliverError::Rejected(r) => DeliverError::Rejected(text(r)),
        w::DeliverError::InvalidConfig(r) => DeliverError::InvalidConfig(text(r)),
    }
}

pub(crate) fn issue_from_wit(i: w::ConfigIssue) -> ConfigIssue {
    ConfigIssue {
        path: bounded(i.path, MAX_PLUGIN_ID_BYTES),
        message: bounded(i.message, MAX_PLUGIN_TEXT_BYTES),
    }
}

pub(crate) fn message_to_wit(msg: &Message) -> w::Message {
    w::Message {
        title: msg.title.clone(),
        markdown: msg.markdown.clone(),
        text: msg.text.clone(),
        table: msg.table.as_ref().map(|t| w::Table {
            columns: t
                .columns
                .iter()
                .map(|c| w::Column {
                    key: c.key.clone(),
                    title: c.title.clone(),
                    prefix: c.prefix.clone(),
                    suffix: c.suffix.clone(),
                    condition: c.condition.as_ref().map(|c| w::Condition {
                        op: match c.op {
                            m::Comparison::Lt => w::Comparison::Lt,
                            m::Comparison::Le => w::Comparison::Le,
                            m::Comparison::Gt => w::Comparison::Gt,
                            m::Comparison::Ge => w::Comparison::Ge,
                            m::Comparison::Eq => w::Comparison::Eq,
                            m::Comparison::Ne => w::Comparison::Ne,
                        },
                        operand: c.operand.clone(),
                    }),
                })
                .collect(),
            rows: t.rows.clone(),
        }),
        link: msg.link.as_ref().map(|l| w::Link {
            url: l.url.clone(),
            label: l.label.clone(),
        }),
        mentions: msg
            .mentions
            .iter()
            .map(|mention| match mention {
                m::Mention::All => w::Mention::All,
                m::Mention::UserId(v) => w::Mention::UserId(v.clone()),
                m::Mention::Email(v) => w::Mention::Email(v.clone()),
                m::Mention::Mobile(v) => w::Mention::Mobile(v.clone()),
            })
            .collect(),
        severity: match msg.severity {
            m::Severity::Info => w::Severity::Info,
            m::Severity::Success => w::Severity::Success,
            m::Severity::Warning => w::Severity::Warning,
            m::Severity::Error => w::Severity::Error,
            m::Severity::Critical => w::Severity::Critical,
        },
        locale: msg.locale.clone(),
        fields: msg
            .fields
            .iter()
            .map(|f| w::Field {
                name: f.name.clone(),
                value: f.value.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_receipts_and_errors_are_cut_on_a_character_boundary() {
        // 3-byte characters, so the cut falls inside one unless moved.
        let huge = "€".repeat(1 << 20);
        let receipt = receipt_from_wit(w::Receipt {
            remote_id: Some("i".repeat(10_000)),
            detail: huge.clone(),
        });
        assert!(receipt.detail.len() <= MAX_PLUGIN_TEXT_BYTES);
        assert!(receipt.detail.ends_with(TRUNCATED_MARKER));
        assert!(receipt.detail.starts_with("€€€"));
        let id = receipt.remote_id.unwrap();
        assert!(id.len() <= MAX_PLUGIN_ID_BYTES && id.ends_with(TRUNCATED_MARKER));

        for error in [
            w::DeliverError::Retryable(huge.clone()),
            w::DeliverError::Rejected(huge.clone()),
            w::DeliverError::InvalidConfig(huge.clone()),
            w::DeliverError::RateLimited(w::RetryLater {
                after_ms: 1000,
                reason: huge.clone(),
            }),
        ] {
            let shown = serde_json::to_string(&deliver_error_from_wit(error)).unwrap();
            assert!(shown.len() < MAX_PLUGIN_TEXT_BYTES + 200, "{}", shown.len());
            assert!(shown.contains(TRUNCATED_MARKER));
        }
        let issue = issue_from_wit(w::ConfigIssue {
            path: "/".repeat(1000),
            message: huge,
        });
        assert!(issue.message.len() <= MAX_PLUGIN_TEXT_BYTES);
        assert!(issue.path.len() <= MAX_PLUGIN_ID_BYTES);
    }

    #[test]
    fn texts_within_the_limit_are_unchanged() {
        let detail = "delivered: 200 OK".to_owned();
        assert_eq!(bounded(detail.clone(), MAX_PLUGIN_TEXT_BYTES), detail);
        let exact = "x".repeat(MAX_PLUGIN_TEXT_BYTES);
        assert_eq!(bounded(exact.clone(), MAX_PLUGIN_TEXT_BYTES), exact);
    }
}
