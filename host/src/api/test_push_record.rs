//! A destination's last test push (when, by which token, what happened),
//! kept in the outbox's `kept` tree under `test-push/<destination>` so it
//! survives restarts, and shown by `GET /v1/destinations`: an admin sees
//! which channels were never tried, or failed the last time they were.

use std::collections::BTreeMap;

use carillon_outbox::{Outbox, Timestamp};
use serde::{Deserialize, Serialize};

/// The key prefix of the records.
const PREFIX: &str = "test-push/";

/// The longest `detail` kept (an error's words, already scrubbed).
const MAX_DETAIL: usize = 1024;

/// One test push, as recorded and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestPushRecord {
    /// When (RFC 3339).
    pub at: String,
    /// The token's name.
    pub by: String,
    /// The token's role.
    pub role: String,
    /// Was it sent (`?send=true`), or only rendered?
    pub sent: bool,
    /// `delivered`, `failed`, `rendered` or `render_failed`.
    pub result: String,
    /// The receipt's remote id, or the error, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl TestPushRecord {
    /// A record made now; `detail` is cut to [`MAX_DETAIL`] bytes.
    pub fn new(
        now: Timestamp,
        token: &crate::config::Token,
        sent: bool,
        result: &str,
        detail: Option<String>,
    ) -> Self {
        TestPushRecord {
            at: super::view::time(now),
            by: token.name.clone(),
            role: token.role.to_string(),
            sent,
            result: result.to_owned(),
            detail: detail.map(|mut d| {
                if d.len() > MAX_DETAIL {
                    let mut cut = MAX_DETAIL;
                    while !d.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    d.truncate(cut);
                }
                d
            }),
        }
    }
}

/// Keeps `record` as `destination`'s last test push. A failure is logged,
/// not answered: the push itself happened.
pub async fn keep(outbox: &std::sync::Arc<Outbox>, destination: &str, record: &TestPushRecord) {
    let Ok(value) = serde_json::to_vec(record) else {
        return;
    };
    let outbox = outbox.clone();
    let key = format!("{PREFIX}{destination}");
    let written = tokio::task::spawn_blocking(move || outbox.put_kept(&key, &value))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    if let Err(error) = written {
        tracing::warn!(%error, destination, "cannot keep the test push's record");
    }
}

/// Every destination's last test push, by destination name (records that
/// do not decode are skipped).
pub fn all(outbox: &Outbox) -> BTreeMap<String, TestPushRecord> {
    match outbox.kept(PREFIX) {
        Ok(records) => records
            .into_iter()
            .filter_map(|(key, value)| {
                let name = key.strip_prefix(PREFIX)?.to_owned();
                serde_json::from_slice(&value).ok().map(|r| (name, r))
            })
            .collect(),
        Err(error) => {
            tracing::warn!(%error, "cannot read the test pushes' records");
            BTreeMap::new()
        }
    }
}
