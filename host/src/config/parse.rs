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

use super::raw::RawConfig;
use crate::problem::{Findings, KeyPath, Problem, Problems, Segment, line_column};

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
    "timeouts",
    "workspaces",
    "monitors",
    "contacts",
    "groups",
    "sources",
];

/// How many bad keys of one value are taken out before giving up on it.
const MAX_REPAIRS: usize = 32;

/// A step of the path serde reports an error at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
    /// A step that names no key (an enum variant, or unknown).
    Other,
}

/// Takes the key an error is at out of `value`: the last key of `steps`
/// (an error inside an array takes the whole array, so the indexes of
/// other problems stay true). Returns the key, or `None` when the error is
/// not at a key that can be taken out.
fn remove_key(value: &mut Spanned<DeValue<'_>>, steps: &[Step]) -> Option<String> {
    let last = steps.iter().rposition(|s| matches!(s, Step::Key(_)))?;
    let (Step::Key(key), parents) = (&steps[last], &steps[..last]) else {
        return None;
    };
    let mut at = value;
    for step in parents {
        at = match (step, at.get_mut()) {
            (Step::Key(k), DeValue::Table(t)) => t
                .iter_mut()
                .find(|(name, _)| name.get_ref().as_ref() == k.as_str())
                .map(|(_, v)| v)?,
            (Step::Index(i), DeValue::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    let DeValue::Table(table) = at.get_mut() else {
        return None;
    };
    let name = table
        .keys()
        .find(|name| name.get_ref().as_ref() == key.as_str())?
        .clone();
    table.remove(&name).map(|_| key.clone())
}

/// A parsed document: the text and its spanned tree.
pub(crate) struct Document<'a> {
    text: &'a str,
    root: Spanned<DeTable<'a>>,
}

/// What did not parse even without its bad keys. References to broken
/// entries are not reported again as missing; the checks that need them
/// are skipped, with a note saying so (see `validate`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Broken {
    /// Sections (`server`, `auth`, …) read as their defaults.
    pub sections: BTreeSet<String>,
    pub destinations: BTreeSet<String>,
    pub templates: BTreeSet<String>,
    pub contacts: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    /// Indexes of `[[routes]]` entries.
    pub routes: BTreeSet<usize>,
}

impl Broken {
    fn section(&mut self, name: &str) {
        self.sections.insert(name.to_owned());
    }
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

    /// Each finding as a problem located in this document.
    pub(crate) fn locate(&self, findings: &mut Findings, problems: &mut Vec<Problem>) {
        for (path, message) in findings.drain() {
            problems.push(self.problem(&path, message));
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

    /// Deserializes `value` (found at `path`) into `T`, recording every
    /// problem on the way.
    ///
    /// serde stops at a value's first error, so an unknown key would hide
    /// every other problem of its table (and, with the table unread, the
    /// checks of later phases). After each error the offending key is taken
    /// out of a copy of the value and the rest is read again: the result is
    /// the value without its bad keys (their defaults), used only to check
    /// further, since the file has problems. `None` when the value cannot
    /// be read even so (the error is not at a key, e.g. a required key is
    /// missing or the value has the wrong type).
    fn decode<T: DeserializeOwned>(
        &self,
        value: &Spanned<DeValue<'a>>,
        path: &KeyPath,
        problems: &mut Vec<Problem>,
    ) -> Option<T> {
        let mut value = value.clone();
        let mut removed: Vec<String> = Vec::new();
        for _ in 0..MAX_REPAIRS {
            let deserializer = ValueDeserializer::from(value.clone());
            let err = match serde_path_to_error::deserialize::<_, T>(deserializer) {
                Ok(t) => return Some(t),
                Err(err) => err,
            };
            let steps: Vec<Step> = err
                .path()
                .iter()
                .map(|segment| match segment {
                    serde_path_to_error::Segment::Seq { index } => Step::Index(*index),
                    serde_path_to_error::Segment::Map { key } => Step::Key(key.clone()),
                    serde_path_to_error::Segment::Enum { .. }
                    | serde_path_to_error::Segment::Unknown => Step::Other,
                })
                .collect();
            let inner = err.into_inner();
            // A required key missing because a repair took it out was
            // reported already, as the reason it was taken out.
            let message = inner.message();
            if message.starts_with("missing field")
                && removed
                    .iter()
                    .any(|key| message.contains(&format!("`{key}`")))
            {
                return None;
            }
            let mut at = path.clone();
            for step in &steps {
                at = match step {
                    Step::Index(i) => at.index(*i),
                    Step::Key(k) => at.key(k.clone()),
                    Step::Other => at,
                };
            }
            let mut problem = self.problem(&at, inner.message());
            let exact = self.span_of(&at).is_some_and(|(_, whole)| whole);
            if !exact && let Some(span) = inner.span() {
                let (l, c) = line_column(self.text, span.start);
                problem.line = Some(l);
                problem.column = Some(c);
            }
            problems.push(problem);
            match remove_key(&mut value, &steps) {
                Some(key) => removed.push(key),
                None => return None,
            }
        }
        None
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
                "server" => match self.decode(value, &path, problems) {
                    Some(v) => raw.server = v,
                    None => broken.section(name),
                },
                "auth" => match self.decode(value, &path, problems) {
                    Some(v) => raw.auth = v,
                    None => broken.section(name),
                },
                "runtime" => match self.decode(value, &path, problems) {
                    Some(v) => raw.runtime = v,
                    None => broken.section(name),
                },
                "egress" => match self.decode(value, &path, problems) {
                    Some(v) => raw.egress = v,
                    None => broken.section(name),
                },
                "dispatch" => match self.decode(value, &path, problems) {
                    Some(v) => raw.dispatch = v,
                    None => broken.section(name),
                },
                "channels" => match self.decode(value, &path, problems) {
                    Some(v) => raw.channels = v,
                    None => broken.section(name),
                },
                "render" => match self.decode(value, &path, problems) {
                    Some(v) => raw.render = v,
                    None => broken.section(name),
                },
                "outbox" => match self.decode(value, &path, problems) {
                    Some(v) => raw.outbox = v,
                    None => broken.section(name),
                },
                "timeouts" => match self.decode(value, &path, problems) {
                    Some(v) => raw.timeouts = v,
                    None => broken.section(name),
                },
                "workspaces" => match self.decode(value, &path, problems) {
                    Some(v) => raw.workspaces = v,
                    None => broken.section(name),
                },
                "monitors" => match self.decode(value, &path, problems) {
                    Some(v) => raw.monitors = v,
                    None => broken.section(name),
                },
                "destinations" => {
                    if value.get_ref().as_table().is_none() {
                        broken.section(name);
                    }
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
                "contacts" => {
                    if value.get_ref().as_table().is_none() {
                        broken.section(name);
                    }
                    for (entry, value) in self.entries(value, &path, problems) {
                        match self.decode(value, &path.key(entry), problems) {
                            Some(v) => {
                                raw.contacts.insert(entry.to_owned(), v);
                            }
                            None => {
                                broken.contacts.insert(entry.to_owned());
                            }
                        }
                    }
                }
                "sources" => {
                    if value.get_ref().as_table().is_none() {
                        broken.section(name);
                    }
                    for (entry, value) in self.entries(value, &path, problems) {
                        match self.decode(value, &path.key(entry), problems) {
                            Some(v) => {
                                raw.sources.insert(entry.to_owned(), v);
                            }
                            None => broken.section(name),
                        }
                    }
                }
                "groups" => {
                    if value.get_ref().as_table().is_none() {
                        broken.section(name);
                    }
                    for (entry, value) in self.entries(value, &path, problems) {
                        match self.decode(value, &path.key(entry), problems) {
                            Some(v) => {
                                raw.groups.insert(entry.to_owned(), v);
                            }
                            None => {
                                broken.groups.insert(entry.to_owned());
                            }
                        }
                    }
                }
                "templates" => {
                    if value.get_ref().as_table().is_none() {
                        broken.section(name);
                    }
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
                            match self.decode(item, &path.index(i), problems) {
                                Some(v) => raw.routes.push((i, v)),
                                None => {
                                    broken.routes.insert(i);
                                }
                            }
                        }
                    }
                    None => {
                        problems.push(self.problem(
                            &path,
                            format!(
                                "invalid type: {}, expected an array of tables (`[[routes]]`)",
                                value.get_ref().type_str()
                            ),
                        ));
                        broken.section(name);
                    }
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
