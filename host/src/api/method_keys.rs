//! The fingerprints of contact methods (what a method is: the address, or
//! the robot's plugin and resolved config), kept from one config version
//! to the next: each is a SHA-256 of the method's JSON, and the activation
//! sync after every write needs the fingerprint of every method.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::config::{Config, Method};

/// The fingerprint of method `m` of `config` (hex SHA-256, 32 digits);
/// `None` for a method that does not deliver.
pub fn method_key(config: &Config, m: &Method) -> Option<String> {
    let what = match m {
        Method::Email { address, .. } => serde_json::json!({ "email": address.to_lowercase() }),
        Method::Robot {
            plugin,
            destination,
        } => serde_json::json!({
            "robot": plugin,
            "config": config.destinations.get(destination)?.config.expose(),
        }),
        Method::Mobile { .. } | Method::UserId { .. } => return None,
    };
    let digest = Sha256::digest(what.to_string().as_bytes());
    Some(hex::encode(&digest[..16]))
}

/// What a fingerprint was computed from.
#[derive(Debug, Clone, PartialEq)]
enum Input {
    Email(String),
    Robot(String, Value),
}

/// One method of a config that delivers, with its fingerprint.
#[derive(Debug)]
pub struct Keyed<'c> {
    /// The contact.
    pub contact: &'c str,
    /// The method's index.
    pub index: usize,
    /// The destination that delivers to it.
    pub destination: &'c str,
    /// Its fingerprint.
    pub key: String,
}

/// Fingerprints by destination, with what each was computed from: one is
/// reused only while its input is equal, so it is always what
/// [`method_key`] gives.
#[derive(Debug, Default)]
pub struct MethodKeys(Mutex<HashMap<String, (Input, String)>>);

impl MethodKeys {
    /// Every method of `config` that delivers, contact by contact in
    /// order, with its fingerprint. Afterwards only these are kept.
    pub fn of<'c>(&self, config: &'c Config) -> Vec<Keyed<'c>> {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut kept = HashMap::with_capacity(cache.len());
        let mut out = Vec::new();
        for (name, contact) in &config.contacts {
            for (index, method) in contact.methods.iter().enumerate() {
                let Some(destination) = method.destination() else {
                    continue;
                };
                let reused = cache
                    .remove(destination)
                    .filter(|(was, _)| same_input(was, config, method));
                let (input, key) = match reused {
                    Some(hit) => hit,
                    None => match (input(config, method), method_key(config, method)) {
                        (Some(input), Some(key)) => (input, key),
                        _ => continue,
                    },
                };
                kept.insert(destination.to_owned(), (input, key.clone()));
                out.push(Keyed {
                    contact: name,
                    index,
                    destination,
                    key,
                });
            }
        }
        *cache = kept;
        out
    }
}

/// What [`method_key`] hashes for `m`, to tell when it changes.
fn input(config: &Config, m: &Method) -> Option<Input> {
    match m {
        Method::Email { address, .. } => Some(Input::Email(address.to_lowercase())),
        Method::Robot {
            plugin,
            destination,
        } => {
            let d = config.destinations.get(destination)?;
            Some(Input::Robot(plugin.clone(), d.config.expose().clone()))
        }
        Method::Mobile { .. } | Method::UserId { .. } => None,
    }
}

/// Is `was` what [`method_key`] hashes for `m` now? (Compared in place,
/// without copying the robot's config.)
fn same_input(was: &Input, config: &Config, m: &Method) -> bool {
    match (was, m) {
        (Input::Email(a), Method::Email { address, .. }) => *a == address.to_lowercase(),
        (
            Input::Robot(p, c),
            Method::Robot {
                plugin,
                destination,
            },
        ) => {
            p == plugin
                && config
                    .destinations
                    .get(destination)
                    .is_some_and(|d| d.config.expose() == c)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{MethodKeys, method_key};
    use crate::config::{Config, Resolver};

    fn config(text: &str) -> Config {
        let env = |_: &str| None;
        let resolver = Resolver {
            env: &env,
            base_dir: std::path::Path::new("."),
        };
        Config::from_toml(text, &resolver).expect("valid")
    }

    fn robot(url: &str) -> String {
        format!(
            "[destinations.mail]\nplugin = \"email\"\nconfig = {{ host = \"smtp.example.com\", from = \"a@example.com\", to = [\"b@example.com\"] }}\n\
             [contacts.li]\nmethods = [{{ type = \"robot\", plugin = \"webhook\", config = {{ url = \"{url}\" }} }}, \
             {{ type = \"mobile\", number = \"+86 138 0000 0000\" }}, {{ type = \"email\", address = \"Li@Example.com\", via = \"mail\" }}]\n"
        )
    }

    /// Every fingerprint as computed without a cache.
    fn uncached(c: &Config) -> Vec<(String, usize, String)> {
        let mut out = Vec::new();
        for (name, contact) in &c.contacts {
            for (i, m) in contact.methods.iter().enumerate() {
                if let Some(key) = method_key(c, m) {
                    out.push((name.clone(), i, key));
                }
            }
        }
        out
    }

    fn keyed(keys: &MethodKeys, c: &Config) -> Vec<(String, usize, String)> {
        keys.of(c)
            .into_iter()
            .map(|k| (k.contact.to_owned(), k.index, k.key))
            .collect()
    }

    #[test]
    fn a_kept_fingerprint_is_always_the_one_computed_anew() {
        let keys = MethodKeys::default();
        let a = config(&robot("https://h.example/a"));
        let b = config(&robot("https://h.example/b"));
        let first = keyed(&keys, &a);
        assert_eq!(first, uncached(&a));
        assert_eq!(first.len(), 2, "the mobile number delivers nothing");
        assert_eq!(keyed(&keys, &a), first, "reused");
        // The robot's config changed: its fingerprint is computed again.
        let changed = keyed(&keys, &b);
        assert_eq!(changed, uncached(&b));
        assert_ne!(changed[0].2, first[0].2);
        assert_eq!(changed[1].2, first[1].2, "the email is the same");
        assert_eq!(keyed(&keys, &a), first);
    }

    #[test]
    fn only_the_methods_of_the_last_config_are_kept() {
        let keys = MethodKeys::default();
        let _ = keys.of(&config(&robot("https://h.example/a")));
        assert_eq!(keys.0.lock().expect("lock").len(), 2);
        let _ = keys.of(&config(""));
        assert!(keys.0.lock().expect("lock").is_empty());
    }
}
