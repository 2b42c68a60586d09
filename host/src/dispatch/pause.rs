//! Destinations paused by an `invalid-config` answer (a revoked token, a
//! deleted robot): one configuration fault, not a rejection per message.
//!
//! While a destination is paused its deliveries go to its fallback when it
//! has one (someone is still paged), else they wait in the outbox (looked
//! at again every `DispatchConfig::wait_retry`, not counted as attempts,
//! never dead-lettered). The pause ends when an admin resumes the
//! destination (`POST /v1/destinations/{name}/resume`) or when its config
//! changes (the pause remembers a fingerprint of the config it was taken
//! under). Pauses live in memory: a restart is an admin's act too, and the
//! first attempt after it pauses the destination again if nothing changed.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use carillon_outbox::Timestamp;

use super::registry::DestinationEntry;

/// Why and since when a destination is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// The plugin's reason, with the vendor's code as the plugin quoted it.
    pub reason: String,
    /// When the `invalid-config` answer came back.
    pub since: Timestamp,
    /// The fingerprint of the config the answer was given for.
    config: u64,
}

/// The paused destinations, by name.
#[derive(Debug, Default)]
pub struct Pauses {
    paused: Mutex<HashMap<String, Pause>>,
}

/// A fingerprint of a destination's resolved config: equal configs have
/// equal fingerprints within this process (pauses are not stored).
fn fingerprint(config: &serde_json::Value) -> u64 {
    let mut hasher = DefaultHasher::new();
    config.to_string().hash(&mut hasher);
    hasher.finish()
}

impl Pauses {
    /// Pauses `entry`'s destination for `reason` (unless it already is);
    /// `true` when this call paused it, so the caller tells the admin once.
    pub fn pause(&self, entry: &DestinationEntry, reason: &str, now: Timestamp) -> bool {
        let config = fingerprint(&entry.destination.config);
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        match paused.get(&entry.name) {
            Some(pause) if pause.config == config => false,
            _ => {
                paused.insert(
                    entry.name.clone(),
                    Pause {
                        reason: reason.to_owned(),
                        since: now,
                        config,
                    },
                );
                true
            }
        }
    }

    /// The pause in force for `entry`, if any. A pause taken under
    /// another config ends here (returned as `Err` with the ended pause,
    /// so the caller can say so): the admin changed what was wrong.
    pub fn check(&self, entry: &DestinationEntry) -> Result<Option<Pause>, Pause> {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        match paused.get(&entry.name) {
            None => Ok(None),
            Some(pause) if pause.config == fingerprint(&entry.destination.config) => {
                Ok(Some(pause.clone()))
            }
            Some(_) => paused.remove(&entry.name).map_or(Ok(None), Err),
        }
    }

    /// The pause of the destination `name` as last recorded (the API's
    /// view; a changed config ends it at the next attempt).
    pub fn get(&self, name: &str) -> Option<Pause> {
        let paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        paused.get(name).cloned()
    }

    /// Ends the pause of `name`; the pause that ended, if it was paused.
    pub fn resume(&self, name: &str) -> Option<Pause> {
        let mut paused = self.paused.lock().unwrap_or_else(|p| p.into_inner());
        paused.remove(name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::egress::Grant;
    use crate::plugin::Destination;

    fn entry(token: &str) -> DestinationEntry {
        DestinationEntry {
            name: "bot".into(),
            plugin: "dingtalk".into(),
            destination: Destination {
                name: "bot".into(),
                config: serde_json::json!({ "webhook": format!("https://x/?access_token={token}") }),
                grant: Arc::new(Grant::default()),
                secrets: Arc::default(),
            },
            fallback: None,
            rate_limits: Vec::new(),
            concurrency: 1,
            enabled: true,
            retry: None,
        }
    }

    #[test]
    fn a_destination_pauses_once_until_resumed_or_reconfigured() {
        let pauses = Pauses::default();
        let t = Timestamp::from_millis(1_000);
        assert_eq!(pauses.check(&entry("a")), Ok(None));
        assert!(pauses.pause(&entry("a"), "errcode 300001", t), "told once");
        assert!(!pauses.pause(&entry("a"), "errcode 300001", t), "not twice");
        let held = pauses.check(&entry("a")).expect("same config");
        assert_eq!(held.map(|p| p.reason), Some("errcode 300001".into()));
        // Another config ends it (and says which pause ended).
        let ended = pauses.check(&entry("b")).expect_err("changed config");
        assert_eq!(ended.since, t);
        assert_eq!(pauses.check(&entry("b")), Ok(None));
        assert!(pauses.get("bot").is_none());
        // An admin's resume ends it too, once.
        assert!(pauses.pause(&entry("b"), "errcode 300005", t));
        assert!(pauses.resume("bot").is_some());
        assert!(pauses.resume("bot").is_none());
        assert_eq!(pauses.check(&entry("b")), Ok(None));
    }

    #[test]
    fn fingerprints_follow_the_config() {
        let a = serde_json::json!({ "webhook": "https://x/?access_token=1" });
        let b = serde_json::json!({ "webhook": "https://x/?access_token=2" });
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
        assert_ne!(fingerprint(&a), fingerprint(&b));
    }
}
