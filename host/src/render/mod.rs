//! Rendering: an event and a template become a channel-neutral
//! [`Message`].
//!
//! Templates are minijinja templates with the syntax users of DingTalk- and
//! DataWorks-style platforms write: variables `${ … }`, blocks `{% … %}`,
//! comments `{# … #}`; filters, conditionals and loops work as in Jinja.
//! Output is Markdown, so nothing is HTML-escaped. Time expressions such as
//! `${yyyymmdd-1}` are rewritten into calls of `timefmt` before compiling
//! (see `time`). Undefined variables are errors (strict mode), so a template
//! that uses a field the event lacks fails with the variable's name; `{% if
//! x is defined %}` and `x | default(…)` handle optional fields.
//!
//! This module also owns what the config's `[render]` and `[templates]`
//! mean: their file syntax, validated forms and checks (`settings.rs`,
//! `template.rs`), which `config` calls.
//!
//! A [`Renderer`] compiles every template of a config once (the built-ins
//! included) and is shared by all requests. Which text of a template is
//! used depends on the locale: see [`Renderer::render`].

use std::collections::BTreeMap;
use std::fmt;

use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::event::Event;
use crate::message::Message;

pub mod builtin;
mod context;
mod settings;
mod template;
mod text;
mod time;

pub use self::time::time_expression;
pub mod variables;

pub use self::builtin::family;
pub use self::settings::{RawRender, RenderSettings};
pub use self::template::{
    RawTemplate, RawTemplateText, Template, TemplateText, builtin_names, valid_locale,
    validate_templates,
};

/// Instructions one rendering may run before it is stopped (a runaway loop
/// in a template must not hold a request).
const FUEL: u64 = 5_000_000;

/// Which text of a template locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The title.
    Title,
    /// The body.
    Body,
}

impl Part {
    /// `title` or `body`, as the config key.
    pub fn key(self) -> &'static str {
        match self {
            Part::Title => "title",
            Part::Body => "body",
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A template that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templates.{template}.{locale}.{part}: {reason}{}", line.map(|l| format!(" (line {l} of the template)")).unwrap_or_default())]
pub struct TemplateError {
    /// The template's name.
    pub template: String,
    /// The locale.
    pub locale: String,
    /// The title or the body.
    pub part: Part,
    /// The line inside the template text (1-based), when known.
    pub line: Option<usize>,
    /// minijinja's reason, e.g. `syntax error: unexpected end of input`.
    pub reason: String,
}

/// An event that could not be rendered with a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot render template {template:?} (locale {locale:?}): {reason}")]
pub struct RenderError {
    /// The template's name.
    pub template: String,
    /// The locale whose text was rendered (or wanted).
    pub locale: String,
    /// The variable the event lacks, when that is the reason.
    pub variable: Option<String>,
    /// What went wrong, in words.
    pub reason: String,
}

/// One locale's compiled texts: their names in the environment.
#[derive(Debug, Clone)]
struct Compiled {
    title: String,
    body: String,
}

/// Every template of a config, compiled. `Send + Sync`: build one per
/// config and share it.
pub struct Renderer {
    env: Environment<'static>,
    /// Template name → locale → compiled texts.
    templates: BTreeMap<String, BTreeMap<String, Compiled>>,
    settings: RenderSettings,
}

impl fmt::Debug for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renderer")
            .field("templates", &self.templates.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

/// The environment every template compiles in: the `${ }` syntax, no
/// escaping, strict undefined, `timefmt` and `datetime`.
fn environment(settings: &RenderSettings) -> Environment<'static> {
    let mut env = Environment::new();
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax
        .variable_delimiters("${", "}")
        .block_delimiters("{%", "%}")
        .comment_delimiters("{#", "#}")
        .trim_blocks(true)
        .lstrip_blocks(true);
    // These delimiters are valid, so building cannot fail; if it ever did,
    // the default syntax would show it in every template's errors.
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Tracks where undefined values come from, so errors name the variable.
    env.set_debug(true);
    env.set_fuel(Some(FUEL));
    // `none` (JSON null) prints as nothing rather than "none".
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    let zone = settings.time_zone.clone();
    env.add_function(
        time::FUNCTION,
        move |state: &State, format: String, offset: Option<i64>| -> Result<String, Error> {
            let now = state
                .lookup(context::EVENT_TIME)
                .and_then(|v| v.as_str().and_then(|s| s.parse::<jiff::Timestamp>().ok()))
                .ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "the event time is not known")
                })?;
            time::format_time(now, &zone, &format, offset.unwrap_or(0))
                .map_err(|reason| Error::new(ErrorKind::InvalidOperation, reason))
        },
    );
    let zone = settings.time_zone.clone();
    env.add_filter(
        "datetime",
        move |value: Value, format: Option<String>| -> Result<Value, Error> {
            let instant = if let Some(s) = value.as_str() {
                s.parse::<jiff::Timestamp>().ok()
            } else {
                i64::try_from(value.clone())
                    .ok()
                    .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
            };
            let Some(instant) = instant else {
                return Ok(value);
            };
            let format = format.unwrap_or_else(|| "yyyy-mm-dd hh24:mi:ss".to_owned());
            time::format_time(instant, &zone, &format, 0)
                .map(Value::from)
                .map_err(|reason| Error::new(ErrorKind::InvalidOperation, reason))
        },
    );
    env
}

/// `kind: detail` of a minijinja error, without its template name.
fn describe(err: &Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// Compiles one template text on its own, to check it (config validation
/// uses [`Renderer::new`], which reports every text at once).
pub fn check_syntax(source: &str) -> Result<(), (Option<usize>, String)> {
    let env = environment(&RenderSettings::default());
    env.template_from_str(&time::rewrite(source))
        .map(|_| ())
        .map_err(|e| (e.line(), describe(&e)))
}

impl Renderer {
    /// Compiles the built-in templates and `templates` (a config template
    /// named `builtin.NAME` replaces or adds locales of that built-in).
    /// Returns every text that does not compile.
    pub fn new(
        templates: &BTreeMap<String, Template>,
        settings: RenderSettings,
    ) -> Result<Renderer, Vec<TemplateError>> {
        let mut env = environment(&settings);
        let mut compiled: BTreeMap<String, BTreeMap<String, Compiled>> = BTreeMap::new();
        let mut errors = Vec::new();
        let mut add = |env: &mut Environment<'static>,
                       origin: &str,
                       template: &str,
                       locale: &str,
                       title: &str,
                       body: &str| {
            let mut names = Vec::new();
            for (part, source) in [(Part::Title, title), (Part::Body, body)] {
                let name = format!("{origin}{template}.{locale}.{part}");
                match env.add_template_owned(name.clone(), time::rewrite(source)) {
                    Ok(()) => names.push(name),
                    Err(e) => errors.push(TemplateError {
                        template: template.to_owned(),
                        locale: locale.to_owned(),
                        part,
                        line: e.line(),
                        reason: describe(&e),
                    }),
                }
            }
            if let [title, body] = &names[..] {
                compiled.entry(template.to_owned()).or_default().insert(
                    locale.to_owned(),
                    Compiled {
                        title: title.clone(),
                        body: body.clone(),
                    },
                );
            }
        };
        for b in builtin::ALL {
            let name = format!("{}{}", builtin::PREFIX, b.name);
            for t in b.texts {
                add(&mut env, "", &name, t.locale, t.title, t.body);
            }
        }
        for (name, template) in templates {
            for (locale, text) in &template.locales {
                add(
                    &mut env,
                    "templates.",
                    name,
                    locale,
                    &text.title,
                    &text.body,
                );
            }
        }
        if errors.is_empty() {
            Ok(Renderer {
                env,
                templates: compiled,
                settings,
            })
        } else {
            Err(errors)
        }
    }

    /// The settings it renders with.
    pub fn settings(&self) -> &RenderSettings {
        &self.settings
    }

    /// Is there a template named `name` (a config one or `builtin.NAME`)?
    pub fn has_template(&self, name: &str) -> bool {
        self.templates.contains_key(name)
    }

    /// Renders `event` with `template` (`None`: the built-in template of the
    /// event's family, see [`family`]) for a destination that wants
    /// `locale`.
    ///
    /// The locale: the first of the destination's `locale` and the event's
    /// for which the template has a text, by exact tag (`zh-CN`) and then
    /// by language (`zh`, or another tag of that language); else the
    /// template's `default` text; else the configured default locale; else
    /// the template's first locale. `Message.locale` is the locale chosen
    /// (for a `default` text: the locale wanted, or the configured default).
    pub fn render(
        &self,
        event: &Event,
        template: Option<&str>,
        locale: Option<&str>,
    ) -> Result<Message, RenderError> {
        let name = template.unwrap_or_else(|| family(event));
        let wanted: Vec<&str> = [locale, event.locale.as_deref()]
            .into_iter()
            .flatten()
            .filter(|l| !l.trim().is_empty())
            .collect();
        let Some(locales) = self.templates.get(name) else {
            return Err(RenderError {
                template: name.to_owned(),
                locale: wanted
                    .first()
                    .map_or_else(|| self.settings.default_locale.clone(), |l| (*l).to_owned()),
                variable: None,
                reason: "no template has this name".to_owned(),
            });
        };
        let (chosen, compiled) = choose_locale(locales, &wanted, &self.settings.default_locale)
            .ok_or_else(|| RenderError {
                template: name.to_owned(),
                locale: self.settings.default_locale.clone(),
                variable: None,
                reason: "the template has no text".to_owned(),
            })?;
        let message_locale = if chosen == "default" {
            wanted
                .first()
                .map_or_else(|| self.settings.default_locale.clone(), |l| (*l).to_owned())
        } else {
            chosen.to_owned()
        };
        let vars = context::variables(event, &self.settings.time_zone);
        let ctx = Value::from(vars.clone());
        let render = |part: Part, env_name: &str| -> Result<String, RenderError> {
            let fail = |variable: Option<String>, reason: String| RenderError {
                template: name.to_owned(),
                locale: chosen.to_owned(),
                variable,
                reason,
            };
            let tmpl = self
                .env
                .get_template(env_name)
                .map_err(|e| fail(None, describe(&e)))?;
            tmpl.render(ctx.clone()).map_err(|e| {
                let at = e
                    .line()
                    .map(|l| format!(" (line {l} of the {part})"))
                    .unwrap_or_else(|| format!(" (in the {part})"));
                if e.kind() == ErrorKind::UndefinedError {
                    let variable = undefined_variable(&e, &tmpl, &vars, &self.env);
                    let what = variable
                        .as_ref()
                        .map_or_else(|| "a variable".to_owned(), |v| format!("`{v}`"));
                    let reason = format!(
                        "{what} is undefined: the event has no such field{at}; \
                         test optional fields with `{{% if NAME is defined %}}`"
                    );
                    fail(variable, reason)
                } else if e.kind() == ErrorKind::OutOfFuel {
                    fail(None, format!("the template ran too long{at}"))
                } else {
                    fail(None, format!("{}{at}", describe(&e)))
                }
            })
        };
        let title = text::one_line(&render(Part::Title, &compiled.title)?);
        let markdown = text::tidy_markdown(&render(Part::Body, &compiled.body)?);
        let plain = text::markdown_to_text(&markdown);
        Ok(Message {
            title,
            text: plain,
            markdown,
            table: event.table.clone(),
            link: event.link.clone(),
            mentions: event.mentions.clone(),
            severity: event.severity,
            locale: message_locale,
            fields: event.fields.clone(),
        })
    }
}

/// The language of a tag: `zh` for `zh-CN`.
fn language(tag: &str) -> &str {
    tag.split(['-', '_']).next().unwrap_or(tag)
}

/// Picks a template's text for the locales `wanted` (in order), see
/// [`Renderer::render`].
fn choose_locale<'a, T>(
    locales: &'a BTreeMap<String, T>,
    wanted: &[&str],
    default_locale: &str,
) -> Option<(&'a str, &'a T)> {
    let exact = |tag: &str| {
        locales
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(tag))
            .map(|(k, v)| (k.as_str(), v))
    };
    let by_language = |tag: &str| {
        let lang = language(tag);
        exact(lang).or_else(|| {
            locales
                .iter()
                .find(|(k, _)| *k != "default" && language(k).eq_ignore_ascii_case(lang))
                .map(|(k, v)| (k.as_str(), v))
        })
    };
    let match_tag = |tag: &str| {
        if tag == "default" {
            None
        } else {
            exact(tag).or_else(|| by_language(tag))
        }
    };
    wanted
        .iter()
        .find_map(|tag| match_tag(tag))
        .or_else(|| exact("default"))
        .or_else(|| match_tag(default_locale))
        .or_else(|| locales.iter().next().map(|(k, v)| (k.as_str(), v)))
}

/// The variable an undefined-value error is about: from minijinja's detail
/// (`` `data.rows` is undefined ``), else the first variable the template
/// uses that the context lacks.
fn undefined_variable(
    err: &Error,
    tmpl: &minijinja::Template<'_, '_>,
    vars: &BTreeMap<String, Value>,
    env: &Environment<'_>,
) -> Option<String> {
    if let Some(detail) = err.detail()
        && let Some(end) = detail.find("` is undefined")
        && let Some(start) = detail[..end].rfind('`')
    {
        let expr = &detail[start + 1..end];
        if !expr.is_empty() && !expr.contains("(...)") {
            return Some(expr.to_owned());
        }
    }
    let source = tmpl.source();
    let mut missing: Vec<(usize, String)> = tmpl
        .undeclared_variables(true)
        .into_iter()
        .filter(|path| {
            let steps: Vec<&str> = path.split('.').collect();
            context::lookup(vars, &steps).is_none()
                && !env
                    .globals()
                    .any(|(global, _)| steps.first().is_some_and(|s| *s == global))
        })
        .map(|path| (source.find(&path).unwrap_or(usize::MAX), path))
        .collect();
    missing.sort();
    missing.into_iter().next().map(|(_, path)| path)
}

#[cfg(test)]
mod tests;
