//! The credential a vendor counts a rate limit against, derived from a
//! destination without asking the plugin (see [`RateKey`]).

use sha2::{Digest, Sha256};

/// The credential a vendor counts a destination's sends against: its
/// plugin and the values of the manifest's endpoint fields (a robot's
/// webhook URL with its `access_token` or `key`), normalised. Destinations
/// that share a robot have one key; a destination without endpoint values
/// has a key of its own. A digest, so the tokens it derives from are not
/// kept twice.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RateKey([u8; 32]);

impl RateKey {
    /// The key of destination `name` of `plugin`, with `config` and the
    /// manifest's `endpoint_fields` (JSON pointers).
    pub fn derive(
        plugin: &str,
        endpoint_fields: &[String],
        config: &serde_json::Value,
        name: &str,
    ) -> RateKey {
        let mut digest = Sha256::new();
        digest.update(b"plugin\0");
        digest.update(plugin.as_bytes());
        let mut endpoints = 0;
        for pointer in endpoint_fields {
            if let Some(value) = config.pointer(pointer).and_then(|v| v.as_str()) {
                endpoints += 1;
                digest.update(b"\0endpoint\0");
                digest.update(pointer.as_bytes());
                digest.update(b"\0");
                digest.update(normalise_endpoint(value).as_bytes());
            }
        }
        if endpoints == 0 {
            digest.update(b"\0destination\0");
            digest.update(name.as_bytes());
        }
        RateKey(digest.finalize().into())
    }

    /// The key of a destination whose plugin is not loaded: its own.
    pub fn own(plugin: &str, name: &str) -> RateKey {
        RateKey::derive(plugin, &[], &serde_json::Value::Null, name)
    }
}

impl std::fmt::Debug for RateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RateKey({})", hex::encode(&self.0[..6]))
    }
}

/// An endpoint value as the vendor tells endpoints apart: a URL without
/// its fragment, with scheme and host lower-case, the default port dropped
/// and the query's parameters in order; anything else (a host name)
/// trimmed and lower-case.
fn normalise_endpoint(value: &str) -> String {
    let value = value.trim();
    match url::Url::parse(value) {
        Ok(mut url) if url.has_host() => {
            url.set_fragment(None);
            let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            if pairs.is_empty() {
                url.set_query(None);
            } else {
                pairs.sort();
                url.query_pairs_mut().clear().extend_pairs(pairs);
            }
            url.to_string()
        }
        _ => value.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(plugin: &str, config: serde_json::Value, name: &str) -> RateKey {
        RateKey::derive(plugin, &["/webhook".to_owned()], &config, name)
    }

    #[test]
    fn destinations_on_one_robot_share_a_key() {
        let url = "https://oapi.dingtalk.com/robot/send?access_token=abc";
        let ops = key(
            "dingtalk",
            json!({ "webhook": url, "at_user_ids": ["u1"] }),
            "ops",
        );
        let dba = key(
            "dingtalk",
            json!({ "webhook": url, "at_mobiles": ["138"], "secret": "SECx" }),
            "dba",
        );
        assert_eq!(ops, dba, "mentions and names do not matter");
        // The same URL as written differently.
        let same = key(
            "dingtalk",
            json!({ "webhook": " HTTPS://OAPI.dingtalk.com:443/robot/send?access_token=abc#x" }),
            "x",
        );
        assert_eq!(ops, same);
        let reordered = |q: &str| {
            key(
                "dingtalk",
                json!({ "webhook": format!("https://h/robot/send?{q}") }),
                "x",
            )
        };
        assert_eq!(
            reordered("a=1&access_token=t"),
            reordered("access_token=t&a=1")
        );
        // Another robot, another plugin, another path: another key.
        let other = url.replace("abc", "abd");
        assert_ne!(ops, key("dingtalk", json!({ "webhook": other }), "ops"));
        assert_ne!(ops, key("lark", json!({ "webhook": url }), "ops"));
        assert_ne!(
            ops,
            key(
                "dingtalk",
                json!({ "webhook": url.replace("/send", "/send2") }),
                "ops"
            )
        );
        // Without an endpoint value each destination is its own.
        assert_ne!(key("smtp", json!({}), "a"), key("smtp", json!({}), "b"));
        assert_eq!(key("smtp", json!({}), "a"), RateKey::own("smtp", "a"));
        // Host names (an SMTP server) compare without case.
        let host = |h: &str| {
            RateKey::derive(
                "email",
                &["/server/host".to_owned()],
                &json!({ "server": { "host": h } }),
                "x",
            )
        };
        assert_eq!(host("SMTP.example.com"), host("smtp.example.com"));
        // The key does not show the token it derives from.
        assert!(!format!("{ops:?}").contains("abc"));
    }
}
