//! The validated pieces of a route's match: globs on event types and
//! sources, and conditions on labels or data fields. They are built and
//! checked in `rule.rs` (a regex that does not compile is a config error)
//! and evaluated by the [`Router`](super::Router).

use std::fmt;

use serde::{Serialize, Serializer};

/// A glob over dotted names: `*` matches any run of characters (dots
/// included), everything else matches itself. `task.*`, `*.failed`, `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

/// Why a glob was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is empty.
    #[error("an empty pattern matches nothing; use \"*\" for everything")]
    Empty,
    /// The pattern has characters no event type has.
    #[error("{0:?} has whitespace or control characters")]
    BadCharacter(String),
}

impl Glob {
    /// Parses a pattern.
    pub fn new(pattern: &str) -> Result<Self, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(GlobError::BadCharacter(pattern.to_owned()));
        }
        Ok(Glob(pattern.to_owned()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Does `text` match?
    pub fn matches(&self, text: &str) -> bool {
        let mut parts = self.0.split('*');
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = text.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty();
        };
        for part in middle {
            match rest.find(part) {
                Some(i) => rest = &rest[i + part.len()..],
                None => return false,
            }
        }
        rest.len() >= last.len() && rest.ends_with(last)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Glob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Which part of an event a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The event's labels (flat string map).
    Labels,
    /// The event's data (nested JSON).
    Data,
}

/// A field of an event: `labels.team` or `data.task.owner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldRef {
    /// Labels or data.
    pub scope: Scope,
    /// The steps below the scope (at least one).
    pub path: Vec<String>,
}

impl FieldRef {
    /// Parses `labels.NAME` or `data.A.B`.
    pub fn parse(text: &str) -> Option<Self> {
        let (scope, rest) = text.split_once('.')?;
        let scope = match scope {
            "labels" => Scope::Labels,
            "data" => Scope::Data,
            _ => return None,
        };
        let path: Vec<String> = rest.split('.').map(str::to_owned).collect();
        if path.iter().any(String::is_empty) {
            return None;
        }
        Some(FieldRef { scope, path })
    }
}

/// The test a condition applies to its field.
#[derive(Debug, Clone)]
pub enum Test {
    /// Equal to this JSON value (labels compare as strings).
    Equals(serde_json::Value),
    /// A string matching this regex.
    Regex(regex::Regex),
    /// Present (`true`) or absent (`false`).
    Exists(bool),
}

impl Serialize for Test {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            Test::Equals(v) => map.serialize_entry("equals", v)?,
            Test::Regex(r) => map.serialize_entry("regex", r.as_str())?,
            Test::Exists(b) => map.serialize_entry("exists", b)?,
        }
        map.end()
    }
}

/// One condition of a route.
#[derive(Debug, Clone, Serialize)]
pub struct Condition {
    /// The field.
    pub field: FieldRef,
    /// The test.
    pub test: Test,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_with_stars() {
        let g = |p: &str| Glob::new(p).expect("valid");
        assert!(g("task.*").matches("task.failed"));
        assert!(!g("task.*").matches("resource.threshold"));
        assert!(g("*").matches(""));
        assert!(g("*.failed").matches("task.failed"));
        assert!(g("task.failed").matches("task.failed"));
        assert!(!g("task.failed").matches("task.failed2"));
        assert!(g("a*b*c").matches("a-b-b-c"));
        assert!(!g("a*bc").matches("abc-"));
        assert!(!g("ab*ba").matches("aba"));
        assert!(Glob::new("").is_err());
        assert!(Glob::new("a b").is_err());
    }

    #[test]
    fn fields_name_labels_or_data() {
        assert_eq!(
            FieldRef::parse("data.task.owner").map(|f| f.path),
            Some(vec!["task".to_owned(), "owner".to_owned()])
        );
        assert!(FieldRef::parse("labels.team").is_some());
        assert!(FieldRef::parse("team").is_none());
        assert!(FieldRef::parse("data.").is_none());
        assert!(FieldRef::parse("meta.x").is_none());
    }
}
