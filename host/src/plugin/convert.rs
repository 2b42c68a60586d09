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

pub(crate) fn receipt_from_wit(r: w::Receipt) -> Receipt {
    Receipt {
        remote_id: r.remote_id,
        detail: r.detail,
    }
}

pub(crate) fn deliver_error_from_wit(e: w::DeliverError) -> DeliverError {
    match e {
        w::DeliverError::Retryable(r) => DeliverError::Retryable(r),
        w::DeliverError::RateLimited(l) => DeliverError::RateLimited {
            after: Duration::from_millis(l.after_ms),
            reason: l.reason,
        },
        w::DeliverError::Rejected(r) => DeliverError::Rejected(r),
        w::DeliverError::InvalidConfig(r) => DeliverError::InvalidConfig(r),
    }
}

pub(crate) fn issue_from_wit(i: w::ConfigIssue) -> ConfigIssue {
    ConfigIssue {
        path: i.path,
        message: i.message,
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
