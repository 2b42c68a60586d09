//! The running gateway: composes the config, the plugin runtime and
//! catalog, the outbox, the dispatcher and the HTTP API, and shuts them
//! down in the order that loses nothing.
//!
//! Start: tokens → runtime → plugins → config checked against them →
//! routes and templates → outbox → dispatcher → listener → plugin-directory
//! watch and the task timers → ready. Stop: not ready → stop accepting (in-flight requests
//! finish within the shutdown grace period, so every 202 sent is durable;
//! stalled ones are dropped unanswered) and watching → dispatcher hands
//! back what it holds → outbox flush.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use carillon_outbox::{Clock, OpenError, Outbox, OutboxConfig, SystemClock};
use carillon_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::reconfigure::{
    ConfigSource, ReloadError, Reloaded, compile_templates, fill_tokens, keep_restart_sections,
};
use crate::api::{self, Live, Parts, State, config_store};
use crate::catalog::watch::WatchSettings;
use crate::catalog::{CatalogError, Reloader};
use crate::config::{Config, LocalTokens, Overlay, Problems, TokenFileError};
use crate::dispatch::metrics::Metrics;
use crate::dispatch::registry::DestinationRegistry;
use crate::dispatch::{DispatchConfig, Dispatcher};
use crate::plugin::{Runtime, RuntimeError};
use crate::route::Router;

/// How to start a gateway beyond its config (tests shorten these).
#[derive(Clone)]
pub struct Options {
    /// Where "now" comes from.
    pub clock: Arc<dyn Clock>,
    /// Overrides of the dispatcher's settings (workers and retry come
    /// from the config).
    pub dispatch: DispatchConfig,
    /// How often housekeeping (purging delivered deliveries and expired
    /// idempotency keys) runs.
    pub housekeeping_interval: Duration,
    /// How long the plugin directory must be quiet after a change
    /// notification before it is scanned.
    pub plugin_debounce: Duration,
    /// How long a plugin file must stay unchanged (size and modification
    /// time) before it is loaded.
    pub plugin_settle: Duration,
    /// Where the config came from, for reloads (none: a reload refuses).
    pub config_source: ConfigSource,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            clock: Arc::new(SystemClock),
            dispatch: DispatchConfig::default(),
            housekeeping_interval: Duration::from_secs(60),
            plugin_debounce: Duration::from_millis(500),
            plugin_settle: Duration::from_secs(1),
            config_source: ConfigSource::default(),
        }
    }
}

/// Why the gateway did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The generated-token file could not be used.
    #[error(transparent)]
    Tokens(#[from] TokenFileError),
    /// The plugin runtime could not start.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A built-in plugin does not load.
    #[error(transparent)]
    Plugins(#[from] CatalogError),
    /// The config does not fit the loaded plugins.
    #[error("the config has {count} problem(s):\n{0}", count = .0.len())]
    Config(Problems),
    /// The templates do not compile (also caught by `config check`).
    #[error("the templates do not compile: {0}")]
    Templates(String),
    /// The outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] OpenError),
    /// The data directory cannot be created.
    #[error("cannot create the data directory {}: {source}", dir.display())]
    DataDir {
        /// The directory.
        dir: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config store (the API's objects) could not be opened or read.
    #[error("the config store ({}) cannot be used: {source}", file.display())]
    Store {
        /// The store's file.
        file: std::path::PathBuf,
        /// Why.
        source: carillon_store::StoreError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The config store in `data_dir` and the API's objects in it.
async fn open_store(data_dir: &std::path::Path) -> Result<(Arc<Store>, Overlay), StartError> {
    let file = data_dir.join(config_store::STORE_FILE);
    let failed = |source| StartError::Store {
        file: file.clone(),
        source,
    };
    tokio::fs::create_dir_all(data_dir)
        .await
        .map_err(|source| StartError::DataDir {
            dir: data_dir.to_owned(),
            source,
        })?;
    let store = config_store::open(data_dir).await.map_err(failed)?;
    let objects = store.objects().await.map_err(failed)?;
    let overlay = config_store::overlay(&objects).map_err(StartError::Config)?;
    Ok((Arc::new(store), overlay))
}

/// A running gateway.
pub struct Gateway {
    state: Arc<State>,
    dispatcher: Dispatcher,
    server: JoinHandle<()>,
    housekeeping: JoinHandle<()>,
    timers: JoinHandle<()>,
    monitors: JoinHandle<()>,
    plugin_watch: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    addr: SocketAddr,
    tokens: Option<LocalTokens>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts everything and listens on `config.server.listen`.
    pub async fn start(mut config: Config, options: Options) -> Result<Gateway, StartError> {
        crate::tls::install_crypto_provider();
        let data_dir = config.server.data_dir.clone();
        // The API's objects join the file's before anything reads the config.
        let (store, overlay) = open_store(&data_dir).await?;
        if !overlay.is_empty() {
            let seed = config.clone();
            config = options
                .config_source
                .check(seed.source_text(), &overlay)
                .map_err(StartError::Config)?;
            keep_restart_sections(&seed, &mut config);
        }
        // Generated tokens fill what the config leaves out.
        let tokens = fill_tokens(&mut config)?;

        let runtime = Runtime::new(config.runtime_config())?;
        // The reloader's first load fills the directory: the plugins chosen
        // and the destinations that use them, with their grants.
        let destinations = Arc::new(DestinationRegistry::new());
        let reloader = Arc::new(Reloader::new(
            runtime.clone(),
            destinations.clone(),
            config.server.plugin_dir.clone(),
            options.plugin_settle,
        ));
        let catalog = reloader.start(&config).await?;
        let problems = config.check_plugins(&*catalog);
        if !problems.is_empty() {
            return Err(StartError::Config(problems));
        }
        let renderer = compile_templates(&config).map_err(StartError::Templates)?;
        let router = Router::new(config.routes.clone());

        let mut outbox_config = OutboxConfig::new(data_dir.join("outbox"));
        outbox_config.clock = options.clock.clone();
        outbox_config.max_pending = config.outbox.max_pending;
        outbox_config.max_unrouted = config.outbox.max_unrouted;
        outbox_config.min_free_bytes = config.outbox.min_free_bytes;
        outbox_config.idempotency_window = config.outbox.idempotency_window;
        outbox_config.cache_capacity = config.outbox.cache_bytes;
        let outbox = Arc::new(Outbox::open(outbox_config)?);
        // Leases live in the outbox's memory only (sled admits one process
        // per database): whatever a previous process held is due again now.

        destinations.set_global_fallback(config.dispatch.global_fallback.clone());
        // Rules firing before a restart are firing again, with when they
        // last fired (their kept records).
        let monitors = Arc::new(
            crate::monitor::Monitors::restore(&config.monitors, &outbox, options.clock.now())
                .map_err(|source| OpenError::Storage {
                    path: data_dir.join("outbox").display().to_string(),
                    source,
                })?,
        );
        let sampler = crate::monitor::SystemSampler::new(&config.monitors, outbox.clone());

        let dispatch_metrics = Arc::new(Metrics::default());
        let dispatcher = Dispatcher::start(
            outbox.clone(),
            runtime.clone(),
            destinations.clone(),
            options.clock.clone(),
            dispatch_metrics.clone(),
            DispatchConfig {
                workers: config.dispatch.workers,
                retry: config.dispatch.retry.clone(),
                ..options.dispatch.clone()
            },
        );

        let listen = config.server.listen;
        let server_limits = config.server.limits.clone();
        let retention = Retention {
            delivered: config.outbox.delivered_retention,
            unrouted: config.outbox.unrouted_retention,
            fired_timers: config.timeouts.late_window,
        };
        let watch_settings = config.server.watch_plugins.then_some(WatchSettings {
            rescan: config.server.plugin_rescan,
            debounce: options.plugin_debounce,
        });
        let state = State::new(Parts {
            live: Live {
                views: api::config_diff::SectionViews::of(&mut config),
                config,
                router,
                renderer,
                overlay,
                activations: Default::default(),
                quotas: {
                    let quotas = Arc::new(crate::quota::Quotas::new(options.clock.clone()));
                    crate::api::quota_digest::restore(&outbox, &quotas);
                    quotas
                },
            },
            store,
            outbox: outbox.clone(),
            runtime,
            destinations,
            plugins: reloader,
            dispatch_metrics,
            monitors,
            waker: dispatcher.waker(),
            clock: options.clock.clone(),
            source: options.config_source.clone(),
        });
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(source) => {
                dispatcher.shutdown().await;
                return Err(StartError::Bind {
                    addr: listen,
                    source,
                });
            }
        };
        let addr = listener.local_addr().unwrap_or(listen);
        // Contacts' new methods are pending and get their links.
        api::activation::sync(&state).await;
        // The first API write then finds the file text read already.
        let warming = state.clone();
        tokio::task::spawn_blocking(move || {
            warming.raw_cache.warm(warming.live().config.source_text());
        });
        let (stop, stopped) = watch::channel(false);
        let app = api::router(state.clone());
        let server = tokio::spawn(api::serve::serve(
            listener,
            app,
            server_limits,
            stopped.clone(),
        ));
        let plugin_watch = watch_settings.map(|settings| {
            let live = state.clone();
            crate::catalog::watch::spawn(
                state.plugins.clone(),
                move || live.live(),
                |live| &live.config,
                settings,
                stopped.clone(),
            )
        });
        // Timers due while the gateway was down fire now, marked late.
        let timers = tokio::spawn(crate::api::run_timers(state.clone(), stopped.clone()));
        let monitors = tokio::spawn(crate::api::run_monitors(
            state.clone(),
            Box::new(sampler),
            stopped.clone(),
        ));
        let housekeeping = tokio::spawn(housekeeping(
            outbox,
            retention,
            options.clock.clone(),
            options.housekeeping_interval,
            stopped,
        ));
        state.set_ready(true);
        tracing::info!(%addr, "carillon is listening");
        Ok(Gateway {
            state,
            dispatcher,
            server,
            housekeeping,
            timers,
            monitors,
            plugin_watch,
            stop,
            addr,
            tokens,
        })
    }

    /// The address the API listens on (the real port when the config said 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generated tokens in use, when the config left them out.
    pub fn local_tokens(&self) -> Option<&LocalTokens> {
        self.tokens.as_ref()
    }

    /// Reads the config file again and applies it; see
    /// [`crate::api::reconfigure`].
    pub async fn reload_config(&self) -> Result<Reloaded, ReloadError> {
        crate::api::reconfigure::reload(&self.state).await
    }

    /// The shared state (for reloads and tests).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Stops in the order that loses nothing: not ready, stop accepting
    /// and finish in-flight requests, stop dispatching (unfinished
    /// deliveries resume after the next start), flush the outbox.
    pub async fn shutdown(self) {
        self.state.set_ready(false);
        self.stop.send_replace(true);
        // Requests in flight get `server.shutdown_grace_secs`; connections
        // still open then are dropped.
        if let Err(error) = self.server.await {
            tracing::error!(%error, "the HTTP server task failed");
        }
        let _ = self.housekeeping.await;
        // A fire in progress finishes (its write is atomic either way).
        let _ = self.timers.await;
        let _ = self.monitors.await;
        if let Some(task) = self.plugin_watch {
            let _ = task.await;
        }
        self.dispatcher.shutdown().await;
        if let Err(error) = self.state.outbox.flush() {
            tracing::error!(%error, "cannot flush the outbox");
        }
        tracing::info!("carillon stopped");
    }
}

/// How long housekeeping keeps what is finished.
#[derive(Clone, Copy)]
struct Retention {
    /// Delivered deliveries.
    delivered: Duration,
    /// Events no route matched (stored without any delivery).
    unrouted: Duration,
    /// Fired timers' marks (`[timeouts] late_window`).
    fired_timers: Duration,
}

/// Purges delivered deliveries and unrouted events past their retention
/// and expired idempotency keys, every `interval`.
async fn housekeeping(
    outbox: Arc<Outbox>,
    retention: Retention,
    clock: Arc<dyn Clock>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let now = clock.now();
        let outbox = outbox.clone();
        let result = tokio::task::spawn_blocking(move || {
            let purged = outbox.purge_delivered(now, retention.delivered)?;
            let unrouted = outbox.purge_unrouted(now, retention.unrouted)?;
            let keys = outbox.purge_idempotency(now)?;
            let marks = outbox.purge_fired_timers(now.saturating_sub(retention.fired_timers))?;
            if marks > 0 {
                tracing::debug!(marks, "housekeeping purged fired timer marks");
            }
            Ok::<_, carillon_outbox::OutboxError>((purged, unrouted, keys))
        })
        .await;
        match result {
            Ok(Ok((purged, unrouted, keys))) => {
                if purged.deliveries > 0 || unrouted > 0 || keys > 0 {
                    tracing::debug!(
                        deliveries = purged.deliveries,
                        events = purged.events,
                        unrouted_events = unrouted,
                        idempotency_keys = keys,
                        "housekeeping purged"
                    );
                }
            }
            Ok(Err(error)) => tracing::error!(%error, "housekeeping failed"),
            Err(error) => tracing::error!(%error, "housekeeping task failed"),
        }
    }
}
