//! The tools of the vendors' checks: per-key rate windows, HMAC-SHA256
//! signatures and the clocks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Per-key request times in a sliding window, for vendors' rate limits.
#[derive(Debug, Default)]
pub struct Window {
    hits: HashMap<String, VecDeque<Instant>>,
}

impl Window {
    /// The times recorded for `key` less than `span` before `now`; older
    /// ones are forgotten. The caller pushes `now` when the request counts.
    pub fn recent(&mut self, key: &str, now: Instant, span: Duration) -> &mut VecDeque<Instant> {
        let hits = self.hits.entry(key.to_owned()).or_default();
        while hits.front().is_some_and(|t| now.duration_since(*t) >= span) {
            hits.pop_front();
        }
        hits
    }
}

/// Where a fake reads the time it stamps each request with on receipt (and
/// measures scripted delays by): the system clock, or a test's own clock
/// (e.g. the gateway's manual clock), so that a vendor's minute-long rate
/// window passes, and is counted in the same time as the gateway's limiter,
/// without a minute of waiting.
#[derive(Clone, Default)]
pub struct ReceiptClock(Option<Arc<dyn Fn() -> Instant + Send + Sync>>);

impl ReceiptClock {
    /// A clock that reads `now`.
    pub fn from_fn(now: impl Fn() -> Instant + Send + Sync + 'static) -> Self {
        ReceiptClock(Some(Arc::new(now)))
    }

    /// The time now.
    pub fn now(&self) -> Instant {
        self.0.as_ref().map_or_else(Instant::now, |now| now())
    }

    /// Waits until this clock reads `deadline` or later.
    pub async fn wait_until(&self, deadline: Instant) {
        match &self.0 {
            None => tokio::time::sleep(deadline.saturating_duration_since(Instant::now())).await,
            // Another clock moves when its owner moves it: look again soon.
            Some(now) => {
                while now() < deadline {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
}

impl std::fmt::Debug for ReceiptClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ReceiptClock(custom)"
        } else {
            "ReceiptClock(system)"
        })
    }
}

/// The system clock in Unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The system clock in Unix seconds.
pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Base64(HMAC-SHA256(key, the parts concatenated)): the primitive under
/// DingTalk's, Lark's and Standard Webhooks' signatures, which differ in
/// what they use as key and message.
pub fn hmac_base64(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Compares a presented credential with the expected one in constant time.
pub fn same_secret(expected: &str, presented: &str) -> bool {
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}
