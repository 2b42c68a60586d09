//! Objects created through the runtime API (`/v1/workspaces/{ws}/…`),
//! merged over the file's before validation, so that an API write is
//! checked by exactly the validators the file is checked by.
//!
//! The file stays the seed: its objects are *provisioned*. An API object
//! never shadows one (a name the file declares is a problem at the API
//! object's key path), and the API refuses to edit a provisioned object.
//! API routes follow the file's routes, in the order they were created.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::contacts::{RawContact, RawGroup};
use super::parse::Broken;
use super::raw::{RawConfig, RawDestination, RawWorkspace};
use crate::problem::{Findings, KeyPath};
use crate::render::RawTemplate;
use crate::route::RawRoute;

/// What kind of object the API stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `[destinations.NAME]`.
    Destination,
    /// A `[[routes]]` entry (by its name).
    Route,
    /// `[templates.NAME]`.
    Template,
    /// `[workspaces.NAME]`: the workspace and its channel settings.
    Workspace,
    /// `[contacts.NAME]`.
    Contact,
    /// `[groups.NAME]`.
    Group,
}

impl Kind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [Kind; 6] = [
        Kind::Workspace,
        Kind::Destination,
        Kind::Route,
        Kind::Template,
        Kind::Contact,
        Kind::Group,
    ];

    /// Its name in the store and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Destination => "destination",
            Kind::Route => "route",
            Kind::Template => "template",
            Kind::Workspace => "workspace",
            Kind::Contact => "contact",
            Kind::Group => "group",
        }
    }

    /// The kind named `name` in the store.
    pub fn from_name(name: &str) -> Option<Kind> {
        // A match, not a search of `ALL`: a kind left out of a list would
        // make its stored objects unreadable at the next start.
        match name {
            "destination" => Some(Kind::Destination),
            "route" => Some(Kind::Route),
            "template" => Some(Kind::Template),
            "workspace" => Some(Kind::Workspace),
            "contact" => Some(Kind::Contact),
            "group" => Some(Kind::Group),
            _ => None,
        }
    }

    /// The file's section for this kind.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Destination => "destinations",
            Kind::Route => "routes",
            Kind::Template => "templates",
            Kind::Workspace => "workspaces",
            Kind::Contact => "contacts",
            Kind::Group => "groups",
        }
    }
}

/// A body that does not decode as its kind: JSON pointer → why.
pub type DecodeErrors = Vec<(String, String)>;

/// The API's objects, as raw config entries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// Destinations by name (their `workspace` set).
    pub destinations: BTreeMap<String, RawDestination>,
    /// Routes in creation order (their `name` and `workspace` set).
    pub routes: Vec<RawRoute>,
    /// Templates by name (their `workspace` set).
    pub templates: BTreeMap<String, RawTemplate>,
    /// Workspaces by name.
    pub workspaces: BTreeMap<String, RawWorkspace>,
    /// Contacts by name (their `workspace` set).
    pub contacts: BTreeMap<String, RawContact>,
    /// Groups by name (their `workspace` set).
    pub groups: BTreeMap<String, RawGroup>,
}

impl Overlay {
    /// No objects?
    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
            && self.routes.is_empty()
            && self.templates.is_empty()
            && self.workspaces.is_empty()
            && self.contacts.is_empty()
            && self.groups.is_empty()
    }

    /// Decodes `body` (what the API received, without name and workspace,
    /// which the path gives) as a `kind` named `name` in `workspace`, and
    /// puts it in, replacing one of the same kind and name.
    pub fn put(
        &mut self,
        kind: Kind,
        name: &str,
        workspace: &str,
        body: &serde_json::Value,
    ) -> Result<(), DecodeErrors> {
        let Some(fields) = body.as_object() else {
            return Err(vec![(String::new(), "must be a JSON object".to_owned())]);
        };
        let given = |key: &str| fields.contains_key(key);
        let mut errors = DecodeErrors::new();
        for key in ["workspace", "name"] {
            if given(key) && (key == "workspace" || kind == Kind::Route) {
                errors.push((
                    format!("/{key}"),
                    format!("the path gives the {key}; leave it out of the body"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        match kind {
            Kind::Destination => {
                let mut d: RawDestination = decode(body)?;
                d.workspace = Some(workspace.to_owned());
                self.destinations.insert(name.to_owned(), d);
            }
            Kind::Route => {
                let mut with_name = fields.clone();
                with_name.insert("name".into(), name.into());
                let mut r: RawRoute = decode(&serde_json::Value::Object(with_name))?;
                r.workspace = Some(workspace.to_owned());
                match self.routes.iter_mut().find(|x| x.name == name) {
                    Some(slot) => *slot = r,
                    None => self.routes.push(r),
                }
            }
            Kind::Template => {
                let mut t: RawTemplate = decode(body)?;
                t.workspace = Some(workspace.to_owned());
                self.templates.insert(name.to_owned(), t);
            }
            Kind::Contact => {
                let mut c: RawContact = decode(body)?;
                c.workspace = Some(workspace.to_owned());
                self.contacts.insert(name.to_owned(), c);
            }
            Kind::Group => {
                let mut g: RawGroup = decode(body)?;
                g.workspace = Some(workspace.to_owned());
                self.groups.insert(name.to_owned(), g);
            }
            Kind::Workspace => {
                if name != workspace {
                    return Err(vec![(
                        String::new(),
                        "a workspace is its own workspace".into(),
                    )]);
                }
                let w: RawWorkspace = decode(body)?;
                self.workspaces.insert(name.to_owned(), w);
            }
        }
        Ok(())
    }

    /// Takes the object out; `false` when there was none.
    pub fn remove(&mut self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::Destination => self.destinations.remove(name).is_some(),
            Kind::Template => self.templates.remove(name).is_some(),
            Kind::Workspace => self.workspaces.remove(name).is_some(),
            Kind::Contact => self.contacts.remove(name).is_some(),
            Kind::Group => self.groups.remove(name).is_some(),
            Kind::Route => {
                let before = self.routes.len();
                self.routes.retain(|r| r.name != name);
                self.routes.len() != before
            }
        }
    }

    /// Merges the objects into the file's `raw` config; a name the file
    /// already declares (or tried to) is a problem at the API object.
    /// Returns the index the first API route takes in `routes[…]`.
    pub(super) fn merge_into(
        &self,
        raw: &mut RawConfig,
        broken: &Broken,
        f: &mut Findings,
    ) -> usize {
        let root = KeyPath::root();
        let clash = |f: &mut Findings, at: KeyPath| {
            f.add(
                &at,
                "the config file declares this name, and an object created through the API \
                 has it too; rename or delete the API object (provisioned objects win)",
            );
        };
        for (name, d) in &self.destinations {
            if raw.destinations.contains_key(name) || broken.destinations.contains(name) {
                clash(f, root.key("destinations").key(name.as_str()));
            } else {
                raw.destinations.insert(name.clone(), d.clone());
            }
        }
        for (name, t) in &self.templates {
            if raw.templates.contains_key(name) || broken.templates.contains(name) {
                clash(f, root.key("templates").key(name.as_str()));
            } else {
                raw.templates.insert(name.clone(), t.clone());
            }
        }
        for (name, c) in &self.contacts {
            if raw.contacts.contains_key(name) || broken.contacts.contains(name) {
                clash(f, root.key("contacts").key(name.as_str()));
            } else {
                raw.contacts.insert(name.clone(), c.clone());
            }
        }
        for (name, g) in &self.groups {
            if raw.groups.contains_key(name) || broken.groups.contains(name) {
                clash(f, root.key("groups").key(name.as_str()));
            } else {
                raw.groups.insert(name.clone(), g.clone());
            }
        }
        for (name, w) in &self.workspaces {
            if raw.workspaces.contains_key(name) {
                clash(f, root.key("workspaces").key(name.as_str()));
            } else {
                raw.workspaces.insert(name.clone(), w.clone());
            }
        }
        let base = raw
            .routes
            .iter()
            .map(|(i, _)| i + 1)
            .chain(broken.routes.iter().map(|i| i + 1))
            .max()
            .unwrap_or(0);
        for (i, r) in self.routes.iter().enumerate() {
            if raw.routes.iter().any(|(_, file)| file.name == r.name) {
                clash(f, root.key("routes").index(base + i));
            } else {
                raw.routes.push((base + i, r.clone()));
            }
        }
        base
    }
}

/// `body` as `T`, or where it does not fit (a JSON pointer) and why.
fn decode<T: DeserializeOwned>(body: &serde_json::Value) -> Result<T, DecodeErrors> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let mut pointer = String::new();
        for segment in e.path().iter() {
            use serde_path_to_error::Segment as S;
            match segment {
                S::Seq { index } => pointer.push_str(&format!("/{index}")),
                S::Map { key } | S::Enum { variant: key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                S::Unknown => {}
            }
        }
        vec![(pointer, e.into_inner().to_string())]
    })
}

/// The JSON pointer, relative to an object at `prefix` (a key path as
/// problems print it: `destinations.ops`, `routes[3]`), of a problem at
/// `path`; `None` when the problem is elsewhere.
pub fn relative_pointer(path: &str, prefix: &str) -> Option<String> {
    let rest = path.strip_prefix(prefix)?;
    if !(rest.is_empty() || rest.starts_with(['.', '[', '/'])) {
        return None;
    }
    let mut out = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // The tail is a JSON pointer into a plugin config already.
            '/' => {
                out.push('/');
                out.extend(chars.by_ref());
            }
            '.' => {}
            '[' => {
                out.push('/');
                for d in chars.by_ref() {
                    if d == ']' {
                        break;
                    }
                    out.push(d);
                }
            }
            '"' => {
                let mut key = String::new();
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => key.extend(chars.next()),
                        '"' => break,
                        _ => key.push(d),
                    }
                }
                out.push('/');
                out.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            _ => {
                let mut key = String::from(c);
                while let Some(&d) = chars.peek() {
                    if matches!(d, '.' | '[' | '/') {
                        break;
                    }
                    key.push(d);
                    chars.next();
                }
                out.push('/');
                out.push_str(&key.replace('~', "~0"));
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn problem_paths_become_pointers_relative_to_their_object() {
        let p = |path, prefix| relative_pointer(path, prefix);
        assert_eq!(
            p("destinations.ops", "destinations.ops").as_deref(),
            Some("")
        );
        assert_eq!(
            p("destinations.ops.config/url", "destinations.ops").as_deref(),
            Some("/config/url")
        );
        assert_eq!(
            p(
                "destinations.ops.rate_limit[0].requests",
                "destinations.ops"
            )
            .as_deref(),
            Some("/rate_limit/0/requests")
        );
        assert_eq!(
            p("routes[3].destinations[1]", "routes[3]").as_deref(),
            Some("/destinations/1")
        );
        assert_eq!(
            p("templates.t.\"zh-CN.x\".title", "templates.t").as_deref(),
            Some("/zh-CN.x/title")
        );
        assert_eq!(p("destinations.ops2.plugin", "destinations.ops"), None);
        assert_eq!(p("routes[31]", "routes[3]"), None);
    }

    #[test]
    fn every_kind_reads_back_from_its_stored_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        // Every variant is in ALL (this match fails to compile otherwise,
        // and the count below fails when ALL misses one).
        let count = |k: Kind| match k {
            Kind::Destination
            | Kind::Route
            | Kind::Template
            | Kind::Workspace
            | Kind::Contact
            | Kind::Group => 1,
        };
        assert_eq!(Kind::ALL.iter().map(|k| count(*k)).sum::<usize>(), 6);
        assert_eq!(Kind::from_name("contacts"), None);
    }

    #[test]
    fn a_body_is_decoded_with_the_path_of_what_does_not_fit() {
        let mut o = Overlay::default();
        let err = o
            .put(
                Kind::Destination,
                "d",
                "default",
                &json!({"plugin": "webhook", "concurrency": "x"}),
            )
            .unwrap_err();
        assert_eq!(err[0].0, "/concurrency");
        let err = o
            .put(
                Kind::Destination,
                "d",
                "default",
                &json!({"plugin": "webhook", "bogus": 1}),
            )
            .unwrap_err();
        assert!(err[0].1.contains("bogus"), "{err:?}");
        let err = o
            .put(
                Kind::Route,
                "r",
                "default",
                &json!({"name": "x", "destinations": []}),
            )
            .unwrap_err();
        assert_eq!(err[0].0, "/name");
        o.put(Kind::Route, "r", "ops", &json!({"destinations": ["d"]}))
            .unwrap();
        assert_eq!(o.routes[0].name, "r");
        assert_eq!(o.routes[0].workspace.as_deref(), Some("ops"));
        assert!(o.remove(Kind::Route, "r"));
        assert!(o.is_empty());
    }
}
