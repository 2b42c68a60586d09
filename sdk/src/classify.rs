//! Turning a channel's answer into a delivery outcome.
//!
//! [`by_status`] follows HTTP semantics and suits webhooks; chat vendors that
//! answer business errors with HTTP 200 need their own `classify`, which can
//! still fall back to these helpers for transport-level answers.

use crate::{Context, DeliverError, HttpError, HttpResponse, Receipt, SmtpError};

/// The wait used when a channel says "too many requests" without saying how long.
pub const DEFAULT_RATE_LIMIT_WAIT_MS: u64 = 60_000;

/// The longest body excerpt quoted in receipts and errors.
const EXCERPT_CHARS: usize = 200;

/// Classifies by status: 2xx delivered; 429 rate-limited (honouring
/// `Retry-After`); 408, 425, 500, 502, 503 and 504 retryable (503 with a
/// `Retry-After` is rate-limited); anything else rejected.
///
/// 3xx is a failure (Standard Webhooks: do not follow redirects): the host
/// never follows one, so a receiver that redirects (to a login page, to a
/// moved URL) has not received the message. It is rejected, not retried:
/// the same URL answers the same redirect, and a dead letter with the
/// target shown ([`redirect`]) tells the admin which URL to configure;
/// once fixed, the dead letters can be re-queued.
pub fn by_status(ctx: &Context, response: &HttpResponse) -> Result<Receipt, DeliverError> {
    let status = response.status;
    let summary = summary(response);
    match status {
        200..=299 => Ok(delivered(response)),
        429 => Err(DeliverError::rate_limited(
            retry_after_ms(ctx, response).unwrap_or(DEFAULT_RATE_LIMIT_WAIT_MS),
            summary,
        )),
        502..=504 if retry_after_ms(ctx, response).is_some() => Err(DeliverError::rate_limited(
            retry_after_ms(ctx, response).unwrap_or(DEFAULT_RATE_LIMIT_WAIT_MS),
            summary,
        )),
        408 | 425 | 500..=599 => Err(DeliverError::retryable(summary)),
        300..=399 => Err(DeliverError::rejected(redirect(response))),
        _ => Err(DeliverError::rejected(summary)),
    }
}

/// The reason a 3xx answer gives: the status, where it points (without
/// the query or user info, which may hold a session or a token) and what
/// to do.
pub fn redirect(response: &HttpResponse) -> String {
    let target = response
        .header("location")
        .map(|l| {
            let l = l.trim();
            let end = l.find(['?', '#']).unwrap_or(l.len());
            let l = &l[..end];
            // `scheme://user:pass@host/…` → `scheme://host/…`.
            match l.find("://") {
                Some(at) => {
                    let rest = &l[at + 3..];
                    let host_end = rest.find('/').unwrap_or(rest.len());
                    match rest[..host_end].rfind('@') {
                        Some(user) => format!("{}{}", &l[..at + 3], &rest[user + 1..]),
                        None => l.to_owned(),
                    }
                }
                None => l.to_owned(),
            }
        })
        .filter(|l| !l.is_empty());
    let target: String = target
        .map(|t| t.chars().take(EXCERPT_CHARS).collect())
        .unwrap_or_else(|| "nowhere (no Location)".to_owned());
    format!(
        "HTTP {} redirect to {target}, not followed: the receiver did not take the message; configure the URL it should be posted to",
        response.status
    )
}

/// The receipt for an answer that means "delivered": its [`summary`], no remote id.
pub fn delivered(response: &HttpResponse) -> Receipt {
    Receipt {
        remote_id: None,
        detail: summary(response),
    }
}

/// `"<status> <body excerpt>"`, the form receipts and errors quote.
pub fn summary(response: &HttpResponse) -> String {
    let body = response.body_text();
    let body = body.trim();
    if body.is_empty() {
        return response.status.to_string();
    }
    let mut excerpt: String = body.chars().take(EXCERPT_CHARS).collect();
    if excerpt.len() < body.len() {
        excerpt.push('…');
    }
    format!("{} {}", response.status, excerpt)
}

/// The wait a `Retry-After` header asks for, in milliseconds: either
/// delay-seconds or an HTTP date (relative to the attempt's time).
pub fn retry_after_ms(ctx: &Context, response: &HttpResponse) -> Option<u64> {
    let value = response.header("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    let when_ms = when.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    let when_ms = u64::try_from(when_ms).ok()?;
    Some(when_ms.saturating_sub(ctx.now_ms))
}

/// Maps a refused or failed HTTP exchange: problems with the destination's
/// URL or grants are configuration errors; everything on the wire is
/// retryable.
pub fn transport_error(error: HttpError) -> DeliverError {
    match error {
        HttpError::Denied(_) | HttpError::PrivateAddress(_) | HttpError::InvalidRequest(_) => {
            DeliverError::InvalidConfig(error.explain())
        }
        HttpError::Timeout
        | HttpError::Connect(_)
        | HttpError::ResponseTooLarge(_)
        | HttpError::Transport(_) => DeliverError::Retryable(error.explain()),
    }
}

/// Maps an SMTP failure: 4xx and connection trouble retry; 5xx is final.
pub fn smtp_error(error: SmtpError) -> DeliverError {
    match error {
        SmtpError::Denied(_) | SmtpError::PrivateAddress(_) => {
            DeliverError::InvalidConfig(error.explain())
        }
        SmtpError::InvalidMail(_) | SmtpError::Permanent(_) => {
            DeliverError::Rejected(error.explain())
        }
        SmtpError::Connect(_) | SmtpError::Timeout | SmtpError::Transient(_) => {
            DeliverError::Retryable(error.explain())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            delivery_id: "d".into(),
            event_id: "e".into(),
            attempt: 1,
            now_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let ok = by_status(&ctx(), &HttpResponse::text(204, ""));
        assert_eq!(ok.map(|r| r.detail), Ok("204".to_owned()));
        assert!(matches!(
            by_status(&ctx(), &HttpResponse::text(500, "boom")),
            Err(DeliverError::Retryable(r)) if r == "500 boom"
        ));
        assert!(matches!(
            by_status(&ctx(), &HttpResponse::text(410, "gone")),
            Err(DeliverError::Rejected(_))
        ));
        assert!(matches!(
            by_status(&ctx(), &HttpResponse::text(301, "")),
            Err(DeliverError::Rejected(r)) if r.contains("301") && r.contains("no Location")
        ));
    }

    #[test]
    fn redirects_name_their_target_without_secrets() {
        let r = HttpResponse::text(302, "<html>login</html>").with_header(
            "Location",
            "https://user:pw@sso.example.com/login?next=/in&session=s3cr3t#x",
        );
        let Err(DeliverError::Rejected(reason)) = by_status(&ctx(), &r) else {
            panic!("a redirect is rejected");
        };
        assert!(
            reason.starts_with("HTTP 302 redirect to https://sso.example.com/login,"),
            "{reason}"
        );
        assert!(
            !reason.contains("s3cr3t") && !reason.contains("pw"),
            "{reason}"
        );
        let r = HttpResponse::text(307, "").with_header("location", "/moved");
        assert!(redirect(&r).contains("redirect to /moved"));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let r = HttpResponse::text(429, "").with_header("Retry-After", "7");
        assert!(matches!(
            by_status(&ctx(), &r),
            Err(DeliverError::RateLimited(l)) if l.after_ms == 7000
        ));
        // 1_700_000_000 s is Tue, 14 Nov 2023 22:13:20 GMT.
        let r =
            HttpResponse::text(503, "").with_header("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT");
        assert!(matches!(
            by_status(&ctx(), &r),
            Err(DeliverError::RateLimited(l)) if l.after_ms == 30_000
        ));
        let r = HttpResponse::text(429, "");
        assert!(matches!(
            by_status(&ctx(), &r),
            Err(DeliverError::RateLimited(l)) if l.after_ms == DEFAULT_RATE_LIMIT_WAIT_MS
        ));
    }

    #[test]
    fn long_bodies_are_excerpted_on_char_boundaries() {
        let body = "é".repeat(500);
        let s = summary(&HttpResponse::text(400, &body));
        assert!(s.starts_with("400 é"));
        assert!(s.ends_with('…'));
        assert_eq!(s.chars().count(), 4 + EXCERPT_CHARS + 1);
    }
}
