//! `carillon receive`: a local webhook receiver for trying Carillon out and
//! for developing against it. It prints every request it gets (method,
//! path, the Standard Webhooks headers, the body pretty-printed when it is
//! JSON), verifies the signature when given the destination's secret, and
//! answers 200 (or 401 to a bad signature, as a careful receiver would).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The receiver could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The secret is not `whsec_` + Base64.
    #[error("the secret must be `whsec_` followed by Base64")]
    BadSecret,
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("the receiver failed: {0}")]
    Serve(std::io::Error),
}

/// Listens on `addr` until the process ends, printing requests to stdout.
pub async fn run(addr: SocketAddr, secret: Option<&str>) -> Result<(), ReceiveError> {
    let key = match secret {
        Some(s) => Some(
            s.strip_prefix("whsec_")
                .and_then(|b| STANDARD.decode(b).ok())
                .ok_or(ReceiveError::BadSecret)?,
        ),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ReceiveError::Bind { addr, source })?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(addr = %local, "receiving webhooks; each request is printed below");
    let app = Router::new().fallback(handle).with_state(Arc::new(key));
    axum::serve(listener, app)
        .await
        .map_err(ReceiveError::Serve)
}

async fn handle(
    State(key): State<Arc<Option<Vec<u8>>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verified = key.as_deref().map(|key| verify(key, &headers, &body));
    let mut out = format!("{method} {}\n", uri.path());
    for name in ["content-type", "webhook-id", "webhook-timestamp"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            out.push_str(&format!("{name}: {v}\n"));
        }
    }
    match verified {
        Some(true) => out.push_str("signature: valid\n"),
        Some(false) => out.push_str("signature: INVALID (answered 401)\n"),
        None => {}
    }
    let text = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    out.push_str(&text);
    out.push_str("\n\n");
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    if verified == Some(false) {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    }
}

/// Standard Webhooks: HMAC-SHA256 of `id.timestamp.body`, any `v1,` entry.
fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    sigs.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| STANDARD.decode(b).ok())
            .is_some_and(|sig| {
                use subtle::ConstantTimeEq as _;
                sig.len() == expected.len() && bool::from(sig.ct_eq(&expected))
            })
    })
}
