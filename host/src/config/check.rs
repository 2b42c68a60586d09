//! Checking a config in phases, reporting every problem of every phase in
//! one run: the TOML syntax; each section read on its own (bad keys taken
//! out so the rest is read); each section's values; the references between
//! sections; the plugins. A later phase runs on what the earlier ones could
//! build; where an earlier problem makes a check impossible (an entry that
//! did not parse, a secret that did not resolve), a note names the check
//! skipped. `carillon config check` runs all of it; [`Config::load`] and
//! [`Config::from_toml`] keep the config only when nothing was found.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::overlay::Overlay;
use super::parse::Document;
use super::raw_cache::RawCache;
use super::secret::{Resolver, process_env};
use super::{Config, ConfigError, PluginCatalog, Source, plugins, validate};
use crate::problem::{Findings, KeyPath, Problem, Problems};

/// What checking a config found: the config as far as it could be built,
/// and every problem so far.
#[derive(Debug)]
pub struct Checked {
    /// `None` when the text is not TOML.
    config: Option<Config>,
    problems: Vec<Problem>,
    /// Destinations not to check against their plugin: name → why.
    unchecked: BTreeMap<String, String>,
    /// The index of the first API route in `routes[…]`.
    api_route_base: usize,
}

impl Checked {
    /// Runs every phase that does not need the plugins on `text`.
    pub fn text(text: &str, resolver: &Resolver<'_>) -> Checked {
        Checked::text_with(text, resolver, &Overlay::default())
    }

    /// Runs every phase that does not need the plugins on `text` with the
    /// API's objects (`overlay`) merged in: their problems carry key paths
    /// of their own (`destinations.NAME…`, API routes after the file's).
    pub fn text_with(text: &str, resolver: &Resolver<'_>, overlay: &Overlay) -> Checked {
        Checked::text_cached(text, resolver, overlay, &RawCache::default())
    }

    /// [`Checked::text_with`], reading `text` through `cache`: the same
    /// text is read into its raw sections once (see [`RawCache`]).
    pub fn text_cached(
        text: &str,
        resolver: &Resolver<'_>,
        overlay: &Overlay,
        cache: &RawCache,
    ) -> Checked {
        let (read, doc) = match cache.read(text) {
            Ok(read) => read,
            Err(mut problems) => {
                problems.0.push(note(
                    &KeyPath::root(),
                    "skipped every other check: they need a file that is valid TOML",
                ));
                return Checked {
                    config: None,
                    problems: problems.0,
                    unchecked: BTreeMap::new(),
                    api_route_base: 0,
                };
            }
        };
        let mut problems = read.problems.clone();
        let mut raw = read.raw.clone();
        let broken = &read.broken;
        let mut findings = Findings::default();
        let api_route_base = overlay.merge_into(&mut raw, broken, &mut findings);
        let validated = validate::validate(raw, broken, resolver, &mut findings);
        let origins = &validated.config.origins;
        findings.rebase(|p| origins.rebase(p));
        if !findings.is_empty() {
            // The text parsed before (it was read from it), so it parses.
            match doc.map_or_else(|| Document::parse(text), Ok) {
                Ok(doc) => doc.locate(&mut findings, &mut problems),
                Err(_) => problems.extend(findings.drain().map(|(at, m)| note(&at, &m))),
            }
        }
        problems.extend(
            validate::skipped(broken)
                .iter()
                .map(|(at, message)| note(at, message)),
        );
        let mut config = validated.config;
        config.source = Source(Arc::from(text));
        Checked {
            config: Some(config),
            problems,
            unchecked: validated.unchecked,
            api_route_base,
        }
    }

    /// The index in `routes[…]` of the first route the overlay added.
    pub fn api_route_base(&self) -> usize {
        self.api_route_base
    }

    /// Reads `path` and checks it as [`Checked::text`] does, resolving
    /// `${env:…}` from the process environment and `${file:…}` relative to
    /// the file's directory.
    pub fn file(path: &Path) -> Result<Checked, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolver = Resolver {
            env: &process_env,
            base_dir,
        };
        Ok(Checked::text(&text, &resolver))
    }

    /// The config as far as it could be built: with problems, it is only
    /// good for checking further (e.g. loading the plugins it names), never
    /// for serving. `None` when the text is not TOML.
    pub fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The last phase: the config against the loaded plugins (see
    /// [`Config::check_plugins`]), on every destination that could be
    /// built; a note names each destination skipped and why.
    pub fn check_plugins(&mut self, plugins: &dyn PluginCatalog) {
        let Some(config) = &self.config else { return };
        let mut findings = Findings::default();
        plugins::check(config, plugins, &self.unchecked, &mut findings);
        config.locate(&mut findings, &mut self.problems);
        self.problems.extend(
            plugins::skipped(&self.unchecked)
                .iter()
                .map(|(at, message)| note(at, message)),
        );
    }

    /// Every problem found, by position in the file (notes of skipped
    /// checks, which have none, last).
    pub fn problems(&self) -> Problems {
        let mut problems = Problems(self.problems.clone());
        problems.sort();
        problems
    }

    /// The config, if nothing was found.
    pub fn into_config(self) -> Result<Config, Problems> {
        let problems = self.problems();
        match self.config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(problems),
        }
    }
}

/// A note that a check was skipped: at a key path, without a line, so it
/// sorts after the problems that caused it.
fn note(at: &KeyPath, message: &str) -> Problem {
    Problem {
        path: at.to_string(),
        line: None,
        column: None,
        message: message.to_owned(),
    }
}

impl Config {
    /// Locates findings in the text this config came from. The text parsed
    /// once already, so this does not fail; lines are simply missing if it
    /// ever did.
    pub(super) fn locate(&self, findings: &mut Findings, problems: &mut Vec<Problem>) {
        // Parsing the text again costs as much as the first parse: only
        // for findings to locate.
        if findings.is_empty() {
            return;
        }
        findings.rebase(|p| self.origins.rebase(p));
        let doc = Document::parse(&self.source.0).or_else(|_| Document::parse(""));
        match doc {
            Ok(doc) => doc.locate(findings, problems),
            Err(_) => problems.extend(findings.drain().map(|(at, m)| note(&at, &m))),
        }
    }
}
