//! Secrets in the configuration: a redacting wrapper, and the `${env:NAME}`
//! / `${file:PATH}` references resolved after parsing.
//!
//! References are resolved on typed fields only (tokens, and string values of
//! a destination's `config` that are exactly one reference), never by text
//! substitution before parsing, so a variable's value can never change the
//! shape of the file. Once resolved, a value lives in a [`Secret`], whose
//! `Debug`, `Display` and `Serialize` all print `<redacted>`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Serialize, Serializer};

/// What a redacted value prints as.
pub const REDACTED: &str = "<redacted>";

/// A secret value. It never prints or serializes itself; read it with
/// [`Secret::expose`], and compare it with [`Secret::matches`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Call this only where the value is used (a request
    /// header, a signature), never to log or display it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Is the value empty?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Compares `candidate` with the value in constant time (for tokens
    /// presented by clients).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        self.0.len() == candidate.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// A secret as written in the file: a literal, or a reference to resolve.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The value itself, written in the file.
    Literal(Secret),
    /// `${env:NAME}`: the environment variable `NAME`.
    Env(String),
    /// `${file:PATH}`: the contents of a file, trailing newlines removed;
    /// a relative path is relative to the config file's directory.
    File(PathBuf),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Literal(s) => write!(f, "Literal({s:?})"),
            SecretSource::Env(name) => write!(f, "Env({name:?})"),
            SecretSource::File(path) => write!(f, "File({path:?})"),
        }
    }
}

/// A `${…}` value that is not a reference Carillon understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a secret reference: write `${{env:NAME}}` or `${{file:PATH}}` (a value starting with `${{` is always read as a reference)"
)]
pub struct BadReference(String);

impl SecretSource {
    /// Reads a value as written: `${env:NAME}`, `${file:PATH}`, or a literal
    /// (any value not starting with `${`).
    pub fn parse(value: &str) -> Result<Self, BadReference> {
        let Some(body) = value.strip_prefix("${") else {
            return Ok(SecretSource::Literal(Secret::new(value)));
        };
        let bad = || BadReference(value.to_owned());
        let body = body.strip_suffix('}').ok_or_else(bad)?;
        if let Some(name) = body.strip_prefix("env:") {
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            return if valid {
                Ok(SecretSource::Env(name.to_owned()))
            } else {
                Err(bad())
            };
        }
        if let Some(path) = body.strip_prefix("file:")
            && !path.is_empty()
        {
            return Ok(SecretSource::File(PathBuf::from(path)));
        }
        Err(bad())
    }

    /// Is this a reference (not a literal)?
    pub fn is_reference(&self) -> bool {
        !matches!(self, SecretSource::Literal(_))
    }

    /// Resolves the value.
    pub fn resolve(&self, resolver: &Resolver<'_>) -> Result<Secret, SecretError> {
        match self {
            SecretSource::Literal(secret) => Ok(secret.clone()),
            SecretSource::Env(name) => match (resolver.env)(name) {
                Some(value) => Ok(Secret::new(value)),
                None => Err(SecretError::EnvUnset(name.clone())),
            },
            SecretSource::File(path) => {
                let full = resolver.base_dir.join(path);
                let text = std::fs::read_to_string(&full).map_err(|e| SecretError::File {
                    path: full.clone(),
                    reason: e.to_string(),
                })?;
                Ok(Secret::new(text.trim_end_matches(['\n', '\r'])))
            }
        }
    }
}

impl TryFrom<String> for SecretSource {
    type Error = BadReference;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        SecretSource::parse(&value)
    }
}

impl<'de> serde::Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        SecretSource::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A reference that could not be resolved. The message never contains the
/// value (there is none), only the variable's name or the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `${env:NAME}` with `NAME` unset (or not valid UTF-8).
    #[error("environment variable {0} is not set")]
    EnvUnset(String),
    /// `${file:PATH}` could not be read.
    #[error("cannot read the secret file {}: {reason}", path.display())]
    File {
        /// The file, joined to the config's directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Where references are resolved from: an environment lookup (injected so
/// tests need not touch the process environment) and the directory relative
/// `${file:…}` paths start from.
pub struct Resolver<'a> {
    /// Looks up an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The directory relative file paths are joined to.
    pub base_dir: &'a Path,
}

impl fmt::Debug for Resolver<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("base_dir", &self.base_dir)
            .finish_non_exhaustive()
    }
}

/// Reads the process environment (values that are not UTF-8 count as unset).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_literals_stay_literal() {
        assert_eq!(
            SecretSource::parse("${env:CARILLON_X}"),
            Ok(SecretSource::Env("CARILLON_X".into()))
        );
        assert_eq!(
            SecretSource::parse("${file:/run/secrets/t}"),
            Ok(SecretSource::File("/run/secrets/t".into()))
        );
        assert_eq!(
            SecretSource::parse("plain"),
            Ok(SecretSource::Literal(Secret::new("plain")))
        );
        for bad in ["${env:}", "${env:A B}", "${vault:x}", "${env:X", "${file:}"] {
            assert!(SecretSource::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s}"), REDACTED);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            serde_json::to_string(&s).ok().as_deref(),
            Some("\"<redacted>\"")
        );
        let src = SecretSource::parse("hunter2").ok();
        assert!(!format!("{src:?}").contains("hunter2"));
        assert!(s.matches(b"hunter2"));
        assert!(!s.matches(b"hunter3"));
        assert!(!s.matches(b"hunter"));
    }

    #[test]
    fn resolution_reads_env_and_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tok"), "s3cret\n").expect("write");
        let env = |name: &str| (name == "SET").then(|| "from-env".to_owned());
        let resolver = Resolver {
            env: &env,
            base_dir: dir.path(),
        };
        let get = |s: &str| {
            SecretSource::parse(s)
                .expect("parses")
                .resolve(&resolver)
                .map(|s| s.expose().to_owned())
        };
        assert_eq!(get("${env:SET}"), Ok("from-env".into()));
        assert_eq!(get("${file:tok}"), Ok("s3cret".into()));
        assert_eq!(
            get("${env:UNSET}").map_err(|e| e.to_string()),
            Err("environment variable UNSET is not set".into())
        );
        assert!(get("${file:missing}").is_err());
    }
}
