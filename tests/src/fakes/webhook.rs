//! A webhook receiver that verifies Standard Webhooks signatures as a
//! careful receiver would (headers present, timestamp within ±5 minutes,
//! any `v1,` (HMAC, constant-time) or `v1a,` (ed25519) signature in the
//! list verifying with a trusted key), records what
//! it accepted, and answers from a script (statuses, `Retry-After`, delays,
//! redirects).

use std::collections::VecDeque;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::scaffold::{
    self, FakeServer, Fault, Request, Rules, Served, hmac_base64, same_secret, unix_secs,
};

/// Signature tolerance of the reference libraries.
const TOLERANCE_SECS: i64 = 5 * 60;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Wait before answering.
    pub delay: Duration,
}

impl Answer {
    /// An answer with a status and a short text body.
    pub fn status(status: u16) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: format!("status {status}").into_bytes(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Waits before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Whether the signature verified (`None` when no secret is configured).
    pub signature_ok: Option<bool>,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        scaffold::body_json(&self.body)
    }
}

/// The receiver's state: the key it verifies signatures with, if any.
pub struct Verifier {
    keys: Vec<TrustedKey>,
}

/// A key the receiver trusts: a `whsec_` secret (checks `v1` signatures)
/// or a `whpk_` public key (checks `v1a` ed25519 signatures).
#[derive(Debug, Clone)]
pub enum TrustedKey {
    /// The decoded `whsec_` secret.
    Hmac(Vec<u8>),
    /// The decoded `whpk_` key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl TrustedKey {
    /// Parses `whsec_…` or `whpk_…`.
    pub fn parse(text: &str) -> TrustedKey {
        if let Some(encoded) = text.strip_prefix("whsec_") {
            return TrustedKey::Hmac(STANDARD.decode(encoded).expect("test secret is Base64"));
        }
        let encoded = text.strip_prefix("whpk_").expect("whsec_ or whpk_");
        let bytes: [u8; 32] = STANDARD
            .decode(encoded)
            .expect("test key is Base64")
            .try_into()
            .expect("32 bytes");
        TrustedKey::Ed25519(ed25519_dalek::VerifyingKey::from_bytes(&bytes).expect("a public key"))
    }
}

/// A running receiver; `received()` is [`FakeServer::requests`].
pub type Receiver = FakeServer<Verifier>;

impl FakeServer<Verifier> {
    /// Starts a receiver on 127.0.0.1; with `secret` (`whsec_…`) it verifies
    /// signatures and answers 401 to a bad one.
    pub async fn start(secret: Option<&str>) -> Receiver {
        Self::trusting(secret.into_iter().collect::<Vec<_>>().as_slice()).await
    }

    /// Starts a receiver that trusts each of `keys` (`whsec_…`, `whpk_…`):
    /// a message is accepted when any of its signatures verifies with any
    /// of them (a receiver in the middle of a key rotation).
    pub async fn trusting(keys: &[&str]) -> Receiver {
        let keys = keys.iter().map(|k| TrustedKey::parse(k)).collect();
        FakeServer::launch(Verifier { keys }).await
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Queues answers; when the queue is empty the receiver answers 200.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.queue_faults(answers.into_iter().map(Fault::Vendor));
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.requests()
    }
}

impl Rules for Verifier {
    type Scripted = Answer;
    type Recorded = Received;

    /// Every request takes the next scripted answer, even one whose
    /// signature fails and gets 401 instead.
    fn serve(
        &mut self,
        script: &mut VecDeque<Fault<Answer>>,
        request: &Request,
    ) -> Served<Received> {
        let signature_ok = (!self.keys.is_empty())
            .then(|| verify_any(&self.keys, &request.headers, &request.body));
        let received = Received {
            path: request
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.to_string()),
            headers: request.header_pairs(),
            body: request.body.to_vec(),
            signature_ok,
        };
        let answer = script.pop_front().map(|fault| match fault {
            Fault::Status(status) => Answer::status(status),
            Fault::Vendor(answer) => answer,
        });
        if signature_ok == Some(false) {
            return Served::now(
                received,
                (StatusCode::UNAUTHORIZED, "bad webhook signature"),
            );
        }
        let answer = answer.unwrap_or_else(|| Answer::status(200).body("ok"));
        let mut response = Response::builder().status(answer.status);
        for (name, value) in &answer.headers {
            response = response.header(name, value);
        }
        let response = response
            .body(Body::from(answer.body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        Served {
            record: received,
            response,
            delay: answer.delay,
        }
    }
}

/// Verifies a Standard Webhooks signature with one `whsec_` key.
pub fn verify(key: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    verify_any(&[TrustedKey::Hmac(key.to_vec())], headers, body)
}

/// Verifies a Standard Webhooks message: the headers are there, the
/// timestamp is within tolerance, and some signature of the list verifies
/// with some trusted key (`v1` HMAC in constant time, `v1a` ed25519).
pub fn verify_any(keys: &[TrustedKey], headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(signatures)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return false;
    };
    let Ok(ts_num) = ts.parse::<i64>() else {
        return false;
    };
    if (unix_secs() - ts_num).abs() > TOLERANCE_SECS {
        return false;
    }
    let content = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    signatures.split(' ').any(|candidate| {
        keys.iter().any(|key| match key {
            TrustedKey::Hmac(secret) => {
                candidate.starts_with("v1,") && same_secret(&sign(secret, id, ts, body), candidate)
            }
            TrustedKey::Ed25519(public) => candidate
                .strip_prefix("v1a,")
                .and_then(|b64| STANDARD.decode(b64).ok())
                .and_then(|bytes| ed25519_dalek::Signature::from_slice(&bytes).ok())
                .is_some_and(|signature| public.verify_strict(&content, &signature).is_ok()),
        })
    })
}

/// `v1,` + Base64(HMAC-SHA256(key, "id.ts.body")).
pub fn sign(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
    let mac = hmac_base64(key, &[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    format!("v1,{mac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_the_published_vector() {
        let key = STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                "1614265330",
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn stale_or_missing_signatures_fail() {
        let key = b"0123456789abcdef01234567".to_vec();
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", "1614265330".parse().unwrap());
        let sig = sign(&key, "msg_1", "1614265330", b"{}");
        headers.insert("webhook-signature", sig.parse().unwrap());
        assert!(!verify(&key, &headers, b"{}"), "a 2021 timestamp is stale");
        let now = unix_secs().to_string();
        headers.insert("webhook-timestamp", now.parse().unwrap());
        let sig = sign(&key, "msg_1", &now, b"{}");
        headers.insert(
            "webhook-signature",
            format!("v1,bogus {sig}").parse().unwrap(),
        );
        assert!(
            verify(&key, &headers, b"{}"),
            "any listed signature may match"
        );
        assert!(!verify(&key, &headers, b"{ }"), "the body is signed");
        headers.remove("webhook-id");
        assert!(!verify(&key, &headers, b"{}"));
    }
}
