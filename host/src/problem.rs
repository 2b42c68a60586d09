//! What is wrong with a config file: each problem with its dotted key path
//! and, where the file shows it, its line and column. Validation collects
//! them all so an operator fixes the file in one pass.
//!
//! A leaf module (it imports nothing of the crate) because three owners
//! report problems: `config` parses the file and locates problems in it,
//! while `route` and `render` check the sections whose meaning they own and
//! report [`Findings`] by key path. Were these types in `config`, `route`
//! and `render` would import `config`, which imports them.

use std::fmt;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A table key.
    Key(String),
    /// An array index (0-based).
    Index(usize),
}

/// A dotted key path such as `destinations.ops-bot.fallback` or
/// `routes[2].destinations[0]`, optionally followed by a JSON pointer into a
/// destination's plugin config (`destinations.ops-bot.config/url`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath {
    segments: Vec<Segment>,
    pointer: Option<String>,
}

impl KeyPath {
    /// The root of the file.
    pub fn root() -> Self {
        KeyPath::default()
    }

    /// This path followed by `key`.
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Key(key.into()));
        p
    }

    /// This path followed by `[index]`.
    pub fn index(&self, index: usize) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Index(index));
        p
    }

    /// This path followed by a JSON pointer (`/url`, `/headers/0`); the
    /// pointer's steps are also followed when looking for the line.
    pub fn pointer(&self, pointer: &str) -> Self {
        let mut p = self.clone();
        p.pointer = Some(pointer.to_owned());
        p
    }

    /// What follows `prefix` in this path (its pointer included), if it
    /// starts with `prefix` (which has no pointer).
    pub fn strip_prefix(&self, prefix: &KeyPath) -> Option<KeyPath> {
        let rest = self.segments.strip_prefix(prefix.segments.as_slice())?;
        Some(KeyPath {
            segments: rest.to_vec(),
            pointer: self.pointer.clone(),
        })
    }

    /// This path followed by `rest` (its segments and pointer).
    pub fn join(&self, rest: &KeyPath) -> KeyPath {
        let mut p = self.clone();
        p.segments.extend(rest.segments.iter().cloned());
        if rest.pointer.is_some() {
            p.pointer = rest.pointer.clone();
        }
        p
    }

    /// The steps, including those of the pointer (unescaped), for locating.
    pub(crate) fn steps(&self) -> Vec<Segment> {
        let mut steps = self.segments.clone();
        if let Some(pointer) = &self.pointer {
            for raw in pointer.split('/').skip(1) {
                let token = raw.replace("~1", "/").replace("~0", "~");
                match token.parse::<usize>() {
                    Ok(i) if !token.starts_with('+') => steps.push(Segment::Index(i)),
                    _ => steps.push(Segment::Key(token)),
                }
            }
        }
        steps
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for segment in &self.segments {
            match segment {
                Segment::Index(i) => write!(f, "[{i}]")?,
                Segment::Key(k) => {
                    if !first {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
            first = false;
        }
        if let Some(pointer) = &self.pointer {
            f.write_str(pointer)?;
        } else if first {
            f.write_str("(file)")?;
        }
        Ok(())
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a dotted key path.
    pub path: String,
    /// 1-based line, when the file shows where.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the file shows where.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, " (line {line}, column {column})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// All the problems of a config file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// No problems?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Problem> {
        self.0.iter()
    }

    /// Sorts by position (problems without a line last, in report order).
    pub(crate) fn sort(&mut self) {
        self.0
            .sort_by_key(|p| (p.line.unwrap_or(usize::MAX), p.column));
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Problems found by key path, before they are located in the file: what
/// the validators of `route`, `render` and `config`'s sections return.
/// `config` turns each into a [`Problem`] with its line and column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(Vec<(KeyPath, String)>);

impl Findings {
    /// Records that `path` is wrong, and why.
    pub fn add(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.0.push((path.clone(), message.into()));
    }

    /// Records a problem unless `value` is greater than 0.
    pub fn positive(&mut self, value: u64, path: &KeyPath) {
        if value == 0 {
            self.add(path, "must be greater than 0");
        }
    }

    /// Nothing found?
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Rewrites each finding's path with `f`; `None` drops the finding.
    pub fn rebase(&mut self, f: impl Fn(&KeyPath) -> Option<Option<KeyPath>>) {
        self.0 = std::mem::take(&mut self.0)
            .into_iter()
            .filter_map(|(path, message)| match f(&path) {
                None => Some((path, message)),
                Some(Some(to)) => Some((to, message)),
                Some(None) => None,
            })
            .collect();
    }

    /// Takes every finding, in the order found.
    pub fn drain(&mut self) -> impl Iterator<Item = (KeyPath, String)> + '_ {
        self.0.drain(..)
    }
}

/// Is `name` usable as a destination, route, template or token name?
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What [`valid_name`] wants, for messages.
pub const NAME_RULE: &str = "must be non-empty and use only letters, digits, `-`, `_` and `.`";

/// The line and column (both 1-based, column in characters) of byte `offset`.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_as_dotted_keys() {
        let p = KeyPath::root()
            .key("routes")
            .index(2)
            .key("destinations")
            .index(0);
        assert_eq!(p.to_string(), "routes[2].destinations[0]");
        let p = KeyPath::root()
            .key("destinations")
            .key("ops bot")
            .key("config")
            .pointer("/headers/a~1b");
        assert_eq!(
            p.to_string(),
            "destinations.\"ops bot\".config/headers/a~1b"
        );
        assert_eq!(p.steps().last(), Some(&Segment::Key("a/b".into())));
        assert_eq!(KeyPath::root().to_string(), "(file)");
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 10), (2, 4));
    }
}
