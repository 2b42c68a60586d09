//! Templates as the config defines them, and their checks: names, locales,
//! non-empty texts, and that every text compiles (by building the
//! [`Renderer`] once). `config` calls [`validate_templates`] on `[templates]`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RenderSettings, Renderer, builtin};
use crate::access::DEFAULT_WORKSPACE;
use crate::problem::{Findings, KeyPath, NAME_RULE, valid_name};

/// `[templates.NAME.LOCALE]` as the file writes it: a title and a body.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTemplateText {
    /// The title template.
    pub title: String,
    /// The body template (Markdown).
    pub body: String,
}

/// A template as the file writes it: locale (`en`, `zh`, `default`, …) →
/// texts, and beside them the `workspace` it belongs to (a string, where
/// each locale is a table; no locale is named `workspace`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawTemplate {
    /// The workspace; absent: `default`.
    pub workspace: Option<String>,
    /// Locale → texts.
    pub locales: BTreeMap<String, RawTemplateText>,
}

impl<'de> Deserialize<'de> for RawTemplate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTemplate;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a table of locales, each with a title and a body")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = RawTemplate::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "workspace" {
                        out.workspace = Some(map.next_value()?);
                    } else {
                        let text = map.next_value()?;
                        out.locales.insert(key, text);
                    }
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A template: texts per locale (the [`Renderer`] compiles and renders
/// them).
#[derive(Debug, Clone, Serialize)]
pub struct Template {
    /// The workspace whose routes may use it.
    pub workspace: String,
    /// Locale (`en`, `zh`, `default`, …) → title and body.
    pub locales: BTreeMap<String, TemplateText>,
}

/// A template's texts for one locale.
#[derive(Debug, Clone, Serialize)]
pub struct TemplateText {
    /// The title template.
    pub title: String,
    /// The body template.
    pub body: String,
}

/// Checks `[templates]` and builds them; every problem goes to `findings`
/// at `templates.NAME…`. A text that does not compile is reported at
/// `templates.NAME.LOCALE.title` or `.body`, with minijinja's reason and the
/// line inside the text. `settings` are those the templates compile with.
pub fn validate_templates(
    raw: &BTreeMap<String, RawTemplate>,
    settings: &RenderSettings,
    findings: &mut Findings,
) -> BTreeMap<String, Template> {
    let p = KeyPath::root().key("templates");
    let mut templates = BTreeMap::new();
    for (name, raw_template) in raw {
        let locales = &raw_template.locales;
        let tp = p.key(name.as_str());
        if !valid_name(name) {
            findings.add(&tp, format!("the template name {NAME_RULE}"));
        } else if name.starts_with(builtin::PREFIX) && !builtin::exists(name) {
            findings.add(
                &tp,
                format!(
                    "no built-in template is named {name:?}; names starting with `builtin.` \
                     override a built-in: {}",
                    builtin_names()
                ),
            );
        }
        if locales.is_empty() {
            findings.add(
                &tp,
                "has no locale; add e.g. [templates.NAME.en] with title and body",
            );
        }
        let mut texts = BTreeMap::new();
        for (locale, text) in locales {
            let lp = tp.key(locale.as_str());
            if !valid_locale(locale) {
                findings.add(
                    &lp,
                    format!("{locale:?} is not a locale such as `en`, `zh-CN` or `default`"),
                );
            }
            // Whether they compile is checked below, all at once.
            for (field, value) in [("title", &text.title), ("body", &text.body)] {
                if value.trim().is_empty() {
                    findings.add(&lp.key(field), "must not be empty");
                }
            }
            texts.insert(
                locale.clone(),
                TemplateText {
                    title: text.title.clone(),
                    body: text.body.clone(),
                },
            );
        }
        let workspace = raw_template
            .workspace
            .clone()
            .unwrap_or_else(|| DEFAULT_WORKSPACE.to_owned());
        if name.starts_with(builtin::PREFIX) && workspace != DEFAULT_WORKSPACE {
            findings.add(
                &tp.key("workspace"),
                "a built-in template's override serves every workspace; it belongs to `default`",
            );
        }
        templates.insert(
            name.clone(),
            Template {
                workspace,
                locales: texts,
            },
        );
    }
    if let Err(errors) = Renderer::new(&templates, settings.clone()) {
        for e in errors {
            let at = p
                .key(e.template.as_str())
                .key(e.locale.as_str())
                .key(e.part.key());
            let line = e
                .line
                .map(|l| format!(" (line {l} of the template)"))
                .unwrap_or_default();
            findings.add(&at, format!("does not compile: {}{line}", e.reason));
        }
    }
    templates
}

/// The built-in template names, for messages.
pub fn builtin_names() -> String {
    builtin::NAMES
        .iter()
        .map(|n| format!("{}{n}", builtin::PREFIX))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Is `locale` a tag such as `en`, `zh-CN`, or `default` (a template's
/// fallback text)? Where `default` makes no sense the caller refuses it.
pub fn valid_locale(locale: &str) -> bool {
    locale == "default"
        || (!locale.is_empty()
            && locale.split('-').all(|part| {
                !part.is_empty()
                    && part.len() <= 8
                    && part.chars().all(|c| c.is_ascii_alphanumeric())
            })
            && locale.split('-').next().is_some_and(|l| {
                (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic())
            }))
}
