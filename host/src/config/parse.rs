//! From text to the raw types, keeping the TOML spans so that every problem,
//! found now or later in validation, can name its line and column.
//!
//! The document is parsed once into toml's spanned tree; then each section
//! (and each destination, route and template on its own) is deserialized
//! separately, so one bad destination does not hide a typo in `[server]`:
//! serde stops at the first error of a value, and the values are small.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::problem::{KeyPath, Problem, Problems, Segment, line_column};
use super::raw::RawConfig;

/// The sections a file may have.
const SECTIONS: &[&str] = &[
    "server",
    "auth",
    "runtime",
    "egress",
    "dispatch",
    "channels",
    "render",
    "outbox",
    "destinations",
    "routes",
    "templates",
];

/// A parsed document: the text and its spanned tree.
pub(crate) struct Document<'a> {
    text: &'a str,
    root: Spanned<DeTable<'a>>,
}

/// Names whose entries did not parse: references to them are not reported
/// again as missing.
#[derive(Debug, Default)]
pub(crate) struct Broken {
    pub destinations: BTreeSet<String>,
    pub templates: BTreeSet<String>,
}

impl<'a> Document<'a> {
    /// Parses TOML; syntax errors are reported all at once.
    pub(crate) fn parse(text: &'a str) -> Result<Self, Problems> {
        let (root, errors) = DeTable::parse_recoverable(text);
        if errors.is_empty() {
            return Ok(Document { text, root });
        }
        let problems = errors
            .iter()
            .map(|e| {
                let (line, column) = match e.span() {
                    Some(span) => {
                        let (l, c) = line_column(text, span.start);
                        (Some(l), Some(c))
                    }
                    None => (None, None),
                };
                Problem {
                    path: KeyPath::root().to_string(),
                    line,
                    column,
                    message: format!("invalid TOML: {}", e.message()),
                }
            })
            .collect();
        Err(Problems(problems))
    }

    /// A problem at `path`, with the line and column of the value there (or
    /// of its nearest ancestor present in the file).
    pub(crate) fn problem(&self, path: &KeyPath, message: impl Into<String>) -> Problem {
        let (line, column) = match self.span_of(path).map(|(start, _)| start) {
            Some(start) => {
                let (l, c) = line_column(self.text, start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Problem {
            path: path.to_string(),
            line,
            column,
            message: message.into(),
        }
    }

    /// The start of the deepest value along `path` that the file contains,
    /// and whether that is the whole path.
    fn span_of(&self, path: &KeyPath) -> Option<(usize, bool)> {
        let steps = path.steps();
        let mut depth = 0;
        let mut found: Option<usize> = None;
        let mut table: Option<&DeTable<'a>> = Some(self.root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'a>>]> = None;
        for step in &steps {
            let value = match (&step, table, array) {
                (Segment::Key(key), Some(t), _) => t
                    .iter()
                    .find(|(k, _)| k.get_ref().as_ref() == key.as_str())
                    .map(|(_, v)| v),
                (Segment::Index(i), _, Some(a)) => a.get(*i),
                _ => None,
            };
            let Some(value) = value else { break };
            found = Some(value.span().start);
            depth += 1;
            table = value.get_ref().as_table();
            array = value.get_ref().as_array().map(|a| &a[..]);
        }
        found.map(|start| (start, depth == steps.len()))
    }

    /// Deserializes `value` (found at `path`) into `T`, or records why not.
    fn decode<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'a>>,
        path: &KeyPath,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        let deserializer = ValueDeserializer::from(value.clone());
        match serde_path_to_error::deserialize::<_, T>(deserializer) {
            Ok(t) => Some(t),
            Err(err) => {
                let mut at = path.clone();
                for segment in err.path().iter() {
                    at = match segment {
                        serde_path_to_error::Segment::Seq { index } => at.index(*index),
                        serde_path_to_error::Segment::Map { key } => at.key(key.clone()),
                        serde_path_to_error::Segment::Enum { variant } => at.key(variant.clone()),
                        serde_path_to_error::Segment::Unknown => at,
                    };
                }
                let inner = err.into_inner();
                let mut problem = self.problem(&at, inner.message());
                let exact = self.span_of(&at).is_some_and(|(_, whole)| whole);
                if !exact && let Some(span) = inner.span() {
                    let (l, c) = line_column(self.text, span.start);
                    problem.line = Some(l);
                    problem.column = Some(c);
                }
                problems.push(problem);
                None
            }
        }
    }

    /// The raw config: every section that parsed, and a problem for each
    /// that did not.
    pub(crate) fn raw(&self, problems: &mut Vec<Problem>) -> (RawConfig, Broken) {
        let mut raw = RawConfig::default();
        let mut broken = Broken::default();
        let root = KeyPath::root();
        for (key, value) in self.root.get_ref().iter() {
            let name: &str = key.get_ref().as_ref();
            let path = root.key(name);
            match name {
                "server" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.server = v;
                    }
                }
                "auth" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.auth = v;
                    }
                }
                "runtime" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.runtime = v;
                    }
                }
                "egress" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.egress = v;
                    }
                }
                "dispatch" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.dispatch = v;
                    }
                }
                "channels" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.channels = v;
                    }
                }
                "render" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.render = v;
                    }
                }
                "outbox" => {
                    if let Some(v) = self.decode(value, &path, problems) {
                        raw.outbox = v;
                    }
                }
                "destinations" => {
                    for (entry, value) in self.entries(value, &path, problems) {
                        match self.decode(value, &path.key(entry), problems) {
                            Some(v) => {
                                raw.destinations.insert(entry.to_owned(), v);
                            }
                            None => {
                                broken.destinations.insert(entry.to_owned());
                            }
                        }
                    }
                }
                "templates" => {
                    for (entry, value) in self.entries(value, &path, problems) {
                        match self.decode(value, &path.key(entry), problems) {
                            Some(v) => {
                                raw.templates.insert(entry.to_owned(), v);
                            }
                            None => {
                                broken.templates.insert(entry.to_owned());
                            }
                        }
                    }
                }
                "routes" => match value.get_ref().as_array() {
                    Some(items) => {
                        for (i, item) in items.iter().enumerate() {
                            if let Some(v) = self.decode(item, &path.index(i), problems) {
                                raw.routes.push((i, v));
                            }
                        }
                    }
                    None => problems.push(self.problem(
                        &path,
                        format!(
                            "invalid type: {}, expected an array of tables (`[[routes]]`)",
                            value.get_ref().type_str()
                        ),
                    )),
                },
                _ => {
                    let mut problem = self.problem(
                        &path,
                        format!(
                            "unknown section `{name}`, expected one of {}",
                            SECTIONS
                                .iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                    let (l, c) = line_column(self.text, key.span().start);
                    problem.line = Some(l);
                    problem.column = Some(c);
                    problems.push(problem);
                }
            }
        }
        (raw, broken)
    }

    /// The entries of a table of named items, or a problem if it is not one.
    fn entries<'v>(
        &self,
        value: &'v Spanned<DeValue<'a>>,
        path: &KeyPath,
        problems: &mut Vec<Problem>,
    ) -> Vec<(&'v str, &'v Spanned<DeValue<'a>>)> {
        match value.get_ref().as_table() {
            Some(table) => table
                .iter()
                .map(|(k, v)| (k.get_ref().as_ref(), v))
                .collect(),
            None => {
                problems.push(self.problem(
                    path,
                    format!(
                        "invalid type: {}, expected a table of named entries",
                        value.get_ref().type_str()
                    ),
                ));
                Vec::new()
            }
        }
    }
}
