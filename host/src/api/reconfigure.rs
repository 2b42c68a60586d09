//! Reloading `carillon.toml` while running (SIGHUP, `POST
//! /v1/config/reload`), as Prometheus and Alertmanager operators expect.
//!
//! The file is read and checked exactly as at start (the same problems,
//! with their key paths and lines), then against the loaded plugins (their
//! JSON Schemas, and the `validate` of every destination added or changed),
//! and the templates are compiled: nothing changes unless all of it
//! passes. Then routes, templates, tokens, destinations, channels, pins,
//! workspaces, task-timeout defaults and fallbacks take effect in one step.
//!
//! Invariants: an event accepted before the swap is delivered as it was
//! routed at its acceptance (its deliveries are already in the outbox); a
//! delivery already running finishes on the settings it started with; a
//! destination the new file drops keeps its registry entry, so what is
//! queued for it still goes out. Sections read once at start
//! ([`RESTART_SECTIONS`]) keep their running values; the answer names each
//! one the file changes. One reload runs at a time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::config_diff::{SectionViews, differing};
use super::{Live, State};
use crate::catalog::Refusal;
use crate::config::{
    Checked, Config, ConfigError, LocalTokens, Overlay, Problems, RawCache, Resolver,
    TokenFileError, process_env,
};
use crate::render::Renderer;
use crate::route::Router;

/// Where the running config came from, so that a reload reads it again.
#[derive(Debug, Clone, Default)]
pub struct ConfigSource {
    /// The file (`serve --config`); `None` on the embedded defaults.
    pub file: Option<PathBuf>,
    /// `serve --listen`, which overrides `[server] listen`.
    pub listen: Option<SocketAddr>,
}

impl ConfigSource {
    /// `text` with `overlay` merged in, checked as the file is (`${file:…}`
    /// relative to the file's directory), with `--listen` applied.
    pub fn check(&self, text: &str, overlay: &Overlay) -> Result<Config, Problems> {
        self.check_cached(text, overlay, &RawCache::default())
    }

    /// [`ConfigSource::check`], reading `text` through `cache`.
    pub fn check_cached(
        &self,
        text: &str,
        overlay: &Overlay,
        cache: &RawCache,
    ) -> Result<Config, Problems> {
        let base_dir = self
            .file
            .as_deref()
            .and_then(Path::parent)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolver = Resolver {
            env: &process_env,
            base_dir,
        };
        let mut config = Checked::text_cached(text, &resolver, overlay, cache).into_config()?;
        if let Some(listen) = self.listen {
            config.server.listen = listen;
        }
        Ok(config)
    }
}

/// The settings read once at start: a reload keeps their running values.
/// Each is a key path and how to read it from a config (as JSON, secrets
/// redacted).
pub const RESTART_SECTIONS: &[&str] = &[
    "server",
    "runtime",
    "egress",
    "outbox",
    "monitors",
    "dispatch.workers",
    "dispatch.retry",
    "timeouts.late_window",
    "sources",
];

/// The sections a reload applies, as named in the answer's `changed`.
const LIVE_SECTIONS: &[&str] = &[
    "auth",
    "channels",
    "plugin_pins",
    "destinations",
    "routes",
    "templates",
    "render",
    "workspaces",
    "timeouts",
    "dispatch.global_fallback",
];

/// A reload that took.
#[derive(Debug, Clone)]
pub struct Reloaded {
    /// The file read.
    pub file: PathBuf,
    /// The applied sections whose content changed.
    pub changed: Vec<&'static str>,
    /// Sections the file changes that keep their running values until the
    /// next start.
    pub restart_required: Vec<&'static str>,
}

/// Why a reload changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `serve` ran without `--config`.
    #[error(
        "the gateway runs on its embedded defaults (started without --config): there is no file to reload"
    )]
    NoFile,
    /// The file could not be read.
    #[error("{0}; nothing was changed")]
    Read(String),
    /// The file, or its fit with the loaded plugins, has problems.
    #[error("the config has {count} problem(s); nothing was changed: {}", one_line(.0), count = .0.len())]
    Invalid(Problems),
    /// A destination's plugin refuses its settings.
    #[error("a plugin refuses the new settings; nothing was changed: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The templates do not compile.
    #[error("the templates do not compile; nothing was changed: {0}")]
    Templates(String),
    /// The generated-token file could not be read.
    #[error(transparent)]
    Tokens(#[from] TokenFileError),
}

/// The config's templates compiled; every error on one line.
pub fn compile_templates(config: &Config) -> Result<Renderer, String> {
    Renderer::new(&config.templates, config.render.clone()).map_err(|errors| {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Every problem on one line (a log line stays one line).
fn one_line(problems: &Problems) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Tokens generated into the data directory fill what `config` leaves out
/// (no instance admin, or no ingest token); `None` when nothing is missing.
pub fn fill_tokens(config: &mut Config) -> Result<Option<LocalTokens>, TokenFileError> {
    if config.auth.has_instance_admin() && config.auth.has_ingest() {
        return Ok(None);
    }
    let tokens = LocalTokens::load_or_create(&config.server.data_dir)?;
    tokens.apply(config);
    Ok(Some(tokens))
}

/// Reads the config file again and applies it, with the API's objects
/// merged in as they are (see the module docs).
pub async fn reload(state: &State) -> Result<Reloaded, ReloadError> {
    let _one_at_a_time = state.reload_lock.lock().await;
    let file = state.source.file.clone().ok_or(ReloadError::NoFile)?;
    let path = file.clone();
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(&path))
        .await
        .map_err(|e| ReloadError::Read(format!("the reading task failed: {e}")))?
        .map_err(|source| {
            ReloadError::Read(
                ConfigError::Read {
                    path: file.clone(),
                    source,
                }
                .to_string(),
            )
        })?;
    let overlay = state.live().overlay.clone();
    let applied = apply(state, &text, overlay, async || {
        Ok::<(), std::convert::Infallible>(())
    })
    .await
    .map_err(|e| match e {
        ApplyError::Reload(e) => e,
        ApplyError::Gate(never) => match never {},
    })?;
    let reloaded = Reloaded {
        file,
        changed: applied.changed,
        restart_required: applied.restart_required,
    };
    tracing::info!(
        file = %reloaded.file.display(),
        changed = ?reloaded.changed,
        restart_required = ?reloaded.restart_required,
        "config reloaded"
    );
    Ok(reloaded)
}

/// What [`apply`] changed.
#[derive(Debug)]
pub struct Applied {
    /// The applied sections whose content changed.
    pub changed: Vec<&'static str>,
    /// Sections the text changes that keep their running values.
    pub restart_required: Vec<&'static str>,
}

/// Why [`apply`] changed nothing.
#[derive(Debug)]
pub enum ApplyError<E> {
    /// The config does not pass its checks, or the plugins refuse it.
    Reload(ReloadError),
    /// The gate refused (the store's write failed or conflicted).
    Gate(E),
}

/// Checks config `text` with the API's objects `overlay` merged in, exactly
/// as at start, and applies the result in one step: when every check
/// passes, `gate` runs (the API's store write; a refusal changes nothing),
/// then the plugins' registry entries, the global fallback and [`Live`]
/// are swapped. The caller holds `state.reload_lock`.
pub async fn apply<E>(
    state: &State,
    text: &str,
    overlay: Overlay,
    gate: impl AsyncFnOnce() -> Result<(), E>,
) -> Result<Applied, ApplyError<E>> {
    let invalid = |p| ApplyError::Reload(ReloadError::Invalid(p));
    let mut config = state
        .source
        .check_cached(text, &overlay, &state.raw_cache)
        .map_err(invalid)?;
    let old = state.live();
    let old_view = (&old.config, &old.views);
    let file_views = SectionViews::of(&mut config);
    let restart_required = differing(old_view, (&config, &file_views), RESTART_SECTIONS);
    // What needs a restart keeps its running value, so that everything
    // reading the live config agrees with what was built at start; the
    // running data directory also holds the generated tokens.
    keep_restart_sections(&old.config, &mut config);
    fill_tokens(&mut config).map_err(|e| ApplyError::Reload(e.into()))?;

    let problems = config.check_plugins(&*state.catalog());
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    let renderer =
        compile_templates(&config).map_err(|e| ApplyError::Reload(ReloadError::Templates(e)))?;
    let router = Router::new(config.routes.clone());
    let views = SectionViews::of(&mut config);
    let changed = differing(old_view, (&config, &views), LIVE_SECTIONS);

    state
        .plugins
        .apply_config(&old.config, &config, gate)
        .await
        .map_err(|e| match e {
            Refusal::Plugins(reasons) => ApplyError::Reload(ReloadError::Refused(reasons)),
            Refusal::Gate(e) => ApplyError::Gate(e),
        })?;
    state
        .destinations
        .set_global_fallback(config.dispatch.global_fallback.clone());
    state.set_live(Live {
        config,
        router,
        renderer,
        overlay,
        activations: old.activations.clone(),
        quotas: old.quotas.clone(),
        views,
    });
    // New or changed contact methods are pending and get their link.
    super::activation::sync(state).await;
    Ok(Applied {
        changed,
        restart_required,
    })
}

/// The running values of [`RESTART_SECTIONS`], copied into `new`.
pub(crate) fn keep_restart_sections(old: &Config, new: &mut Config) {
    new.server = old.server.clone();
    new.runtime = old.runtime.clone();
    new.egress = old.egress.clone();
    new.outbox = old.outbox.clone();
    new.monitors = old.monitors.clone();
    new.smtp_roots_pem = old.smtp_roots_pem.clone();
    new.dispatch.workers = old.dispatch.workers;
    new.dispatch.retry = old.dispatch.retry.clone();
    new.timeouts.late_window = old.timeouts.late_window;
}
