//! SMTP failures as the plugin contract's classes: lettre's error, its
//! reply code and its causes, read once here.

use lettre::transport::smtp::Error as LettreError;

use super::{SmtpError, SmtpReply};

/// `"451"` → 451; lettre's `Code` displays as three digits.
pub(super) fn code_number(code: &str) -> u16 {
    code.parse().unwrap_or(0)
}

/// `true` when the TCP connection was never established (refused,
/// unreachable, connect timeout), so another address of the host may be
/// tried without any risk of sending the mail twice.
pub(super) fn connection_never_opened(error: &LettreError) -> bool {
    use std::io::ErrorKind;
    if error.status().is_some() {
        return false;
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::TimedOut
            );
        }
        source = e.source();
    }
    false
}

/// Maps lettre's error to the WIT classes. Texts never carry credentials
/// (lettre's errors hold only the server's replies and I/O causes).
pub(super) fn classify(error: &LettreError) -> SmtpError {
    if let Some(code) = error.status() {
        let message = std::error::Error::source(error)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let reply = SmtpReply {
            code: code_number(&code.to_string()),
            message,
        };
        return if error.is_transient() {
            SmtpError::Transient(reply)
        } else {
            SmtpError::Permanent(reply)
        };
    }
    if error.is_timeout() {
        return SmtpError::Timeout;
    }
    let text = error_chain(error);
    if error.is_client() && text.contains("non-ascii") {
        return SmtpError::InvalidMail(text);
    }
    if error.is_tls() || caused_by_tls(error) {
        return SmtpError::Connect(format!("TLS: {text}"));
    }
    SmtpError::Connect(text)
}

/// A TLS failure (handshake, certificate) somewhere in the chain: lettre
/// reports a failed implicit-TLS handshake as a connection error.
fn caused_by_tls(error: &LettreError) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if e.downcast_ref::<rustls::Error>().is_some()
            || e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The error and its causes on one line, without repeats.
fn error_chain(error: &LettreError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    // lettre nests its own errors: "Connection error: Connection error: …".
    let mut parts: Vec<&str> = text.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}
