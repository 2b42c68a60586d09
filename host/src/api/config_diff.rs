//! Which sections of two configs differ, as the API shows them (secrets
//! redacted: a changed secret alone shows as no change), for a reload's
//! `changed` and `restart_required`.
//!
//! Serialising a whole config costs as much as checking it when it holds
//! thousands of contacts, so the view kept with each live config
//! ([`SectionViews`]) leaves out the three maps that grow with the
//! directory (destinations, contacts, groups); those are compared entry by
//! entry, and only entries that are not equal are serialised. Equal values
//! have equal views, so the answer is the same as comparing whole views.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;

/// A config's API view without `destinations`, `contacts` and `groups`.
#[derive(Debug, Clone, Default)]
pub struct SectionViews {
    light: Value,
}

impl SectionViews {
    /// The view of `config`; the three large maps are taken out while it
    /// is serialised and put back (hence `&mut`), so nothing is cloned.
    pub fn of(config: &mut Config) -> SectionViews {
        let destinations = std::mem::take(&mut config.destinations);
        let contacts = std::mem::take(&mut config.contacts);
        let groups = std::mem::take(&mut config.groups);
        let light = serde_json::to_value(&*config).unwrap_or_default();
        config.destinations = destinations;
        config.contacts = contacts;
        config.groups = groups;
        SectionViews { light }
    }
}

/// A config with its view.
pub type Viewed<'a> = (&'a Config, &'a SectionViews);

/// The key paths of `sections` (`dispatch.retry`: a key inside a section)
/// whose views differ between `old` and `new`.
pub fn differing(old: Viewed<'_>, new: Viewed<'_>, sections: &[&'static str]) -> Vec<&'static str> {
    sections
        .iter()
        .copied()
        .filter(|section| match *section {
            "destinations" => maps_differ(&old.0.destinations, &new.0.destinations),
            "contacts" => maps_differ(&old.0.contacts, &new.0.contacts),
            "groups" => maps_differ(&old.0.groups, &new.0.groups),
            // A source's URL is a secret, redacted in the views; a new URL
            // alone is still a change (it needs a restart).
            "sources" => old.0.sources != new.0.sources,
            _ => {
                let pointer = format!("/{}", section.replace('.', "/"));
                old.1.light.pointer(&pointer) != new.1.light.pointer(&pointer)
            }
        })
        .collect()
}

/// Do two maps' views differ? Only entries that are not equal are
/// serialised.
fn maps_differ<T: PartialEq + Serialize>(
    old: &BTreeMap<String, T>,
    new: &BTreeMap<String, T>,
) -> bool {
    old.len() != new.len()
        || old.iter().zip(new).any(|((ka, a), (kb, b))| {
            ka != kb || (a != b && serde_json::to_value(a).ok() != serde_json::to_value(b).ok())
        })
}

#[cfg(test)]
mod tests {
    use super::{SectionViews, differing};
    use crate::config::{Config, Resolver};

    fn config(text: &str) -> Config {
        let env = |name: &str| (name == "HOOK").then(|| "https://h.example/secret-b".to_owned());
        let resolver = Resolver {
            env: &env,
            base_dir: std::path::Path::new("."),
        };
        Config::from_toml(text, &resolver).expect("valid")
    }

    /// The old way: whole views, compared by pointer.
    fn whole(old: &Config, new: &Config, sections: &[&'static str]) -> Vec<&'static str> {
        let (a, b) = (
            serde_json::to_value(old).expect("view"),
            serde_json::to_value(new).expect("view"),
        );
        sections
            .iter()
            .copied()
            .filter(|s| {
                let p = format!("/{}", s.replace('.', "/"));
                a.pointer(&p) != b.pointer(&p)
            })
            .collect()
    }

    const SECTIONS: &[&str] = &[
        "server",
        "dispatch.workers",
        "dispatch.retry",
        "destinations",
        "routes",
        "contacts",
        "groups",
        "auth",
    ];

    #[test]
    fn a_source_whose_url_alone_changes_differs() {
        let a = config("[sources.s]\nurl = \"postgres://u:one@h/db\"\n");
        let b = config("[sources.s]\nurl = \"postgres://u:two@h/db\"\n");
        let (mut a2, mut b2) = (a.clone(), b.clone());
        let (va, vb) = (SectionViews::of(&mut a2), SectionViews::of(&mut b2));
        assert_eq!(differing((&a, &va), (&b, &vb), &["sources"]), ["sources"]);
        assert!(differing((&a, &va), (&a, &va), &["sources"]).is_empty());
    }

    #[test]
    fn the_sections_differing_are_those_whole_views_show() {
        let base = "[destinations.a]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/x\" }\n\
                    [contacts.li]\nmethods = [{ type = \"mobile\", number = \"+86 138 0000 0000\" }]\n";
        let texts = [
            base.to_owned(),
            format!("{base}[dispatch]\nworkers = 3\n"),
            base.replace("/x", "/y"),
            // Only a secret changes: the redacted view is the same.
            "[destinations.a]\nplugin = \"webhook\"\nconfig = { url = \"${env:HOOK}\" }\n\
             [contacts.li]\nmethods = [{ type = \"mobile\", number = \"+86 138 0000 0000\" }]\n"
                .to_owned(),
            format!(
                "{base}[destinations.b]\nplugin = \"webhook\"\nconfig = {{ url = \"https://h.example/z\" }}\n"
            ),
            base.replace("0000 0000", "0000 0001"),
            format!("{base}[groups.g]\nmembers = [\"li\"]\n"),
            format!(
                "{base}[[routes]]\nname = \"r\"\nmatch = {{ event = \"x\" }}\ndestinations = [\"a\"]\n"
            ),
        ];
        for old in &texts {
            for new in &texts {
                let (mut a, mut b) = (config(old), config(new));
                let (va, vb) = (SectionViews::of(&mut a), SectionViews::of(&mut b));
                assert_eq!(
                    differing((&a, &va), (&b, &vb), SECTIONS),
                    whole(&a, &b, SECTIONS),
                    "{old}\n---\n{new}"
                );
            }
        }
    }

    #[test]
    fn a_view_leaves_the_config_as_it_was() {
        let mut c = config(
            "[destinations.a]\nplugin = \"webhook\"\nconfig = { url = \"https://h.example/x\" }\n",
        );
        let before = serde_json::to_value(&c).expect("view");
        let _ = SectionViews::of(&mut c);
        assert_eq!(serde_json::to_value(&c).expect("view"), before);
    }
}
