//! The secret strings of one destination's config, scrubbed from what a
//! plugin call says about it: log lines, captured output, error reasons and
//! receipts. A receiver may echo a request's credentials back in an error
//! body (a webhook's `Authorization` header, a signed URL), and the plugin
//! passes that body on; nothing of it may reach a log line, the outbox or
//! the API with the secret in it.
//!
//! Which strings are secret is the config's business (`config::PluginConfig`:
//! resolved `${env:…}`/`${file:…}` values, secret-looking keys, URL paths
//! and queries, and the serving plugin's declared secret fields); this type
//! only holds the result, so the runtime does not depend on the config.

use std::fmt;

/// The sensitive strings of a config, each with what is shown instead
/// (longest first, so a secret containing another is replaced whole).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    pairs: Vec<(String, String)>,
}

impl Secrets {
    /// Secrets from `(secret, shown instead)` pairs; empty secrets are
    /// dropped (they would match everywhere).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs: Vec<(String, String)> =
            pairs.into_iter().filter(|(s, _)| !s.is_empty()).collect();
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        pairs.dedup_by(|a, b| a.0 == b.0);
        Secrets { pairs }
    }

    /// Whether there is nothing to scrub.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// `text` with every secret replaced by what is shown instead.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (secret, shown) in &self.pairs {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), shown);
            }
        }
        out
    }
}

/// Counts only: the values are what must not be printed.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} values)", self.pairs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_longest_first_and_never_prints_values() {
        let s = Secrets::new([
            ("tok".to_owned(), "<a>".to_owned()),
            ("token-123".to_owned(), "<b>".to_owned()),
            (String::new(), "<empty>".to_owned()),
        ]);
        assert_eq!(s.scrub("x token-123 tok y"), "x <b> <a> y");
        assert_eq!(s.scrub("nothing here"), "nothing here");
        assert!(!format!("{s:?}").contains("tok"));
        assert!(Secrets::default().is_empty());
    }
}
