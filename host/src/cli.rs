//! Subcommands of the `carillon` binary.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use carillon::api::reconfigure::ConfigSource;
use carillon::catalog::Catalog;
use carillon::config::export::ApiObject;
use carillon::config::{
    Checked, Config, ConfigError, DEFAULTS_TOML, Kind, LocalTokens, Resolver, process_env,
};
use carillon::gateway::{Gateway, Options, StartError};
use carillon::plugin::{Plugin, Runtime, RuntimeConfig};
use clap::{Parser, Subcommand};

/// Carillon, a notification gateway with sandboxed WebAssembly channels.
#[derive(Debug, Parser)]
#[command(name = "carillon", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(
        long,
        global = true,
        env = "CARILLON_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

/// How logs are written (to stderr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway: the HTTP API and the dispatcher. Without a config
    /// file it runs on the embedded defaults (127.0.0.1:8080, ./data,
    /// built-in plugins) and prints a generated token once.
    Serve {
        /// The config file (default: the embedded defaults).
        #[arg(long, short, env = "CARILLON_CONFIG")]
        config: Option<PathBuf>,
        /// Listen here instead of `server.listen`, e.g. 0.0.0.0:8080.
        #[arg(long, env = "CARILLON_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Run a local webhook receiver that prints what it gets: for the
    /// quickstart, and for seeing exactly what a webhook destination sends.
    Receive {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// The destination's `signing_secret` (`whsec_…`): verify each
        /// request's Standard Webhooks signature and answer 401 to a bad one.
        #[arg(long, env = "CARILLON_RECEIVE_SECRET")]
        secret: Option<String>,
    },
    /// Work with plugin files.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate a config file: syntax, values, secrets, references, and each
    /// destination's config against its plugin. Then, when the file's data
    /// directory holds objects created through the API, the file with them,
    /// as `serve` would start. Prints every problem with its key path and
    /// line; exits 1 when there are any.
    Check {
        /// The config file; without it, the embedded defaults are checked.
        file: Option<PathBuf>,
        /// Check the file alone, not with the API's stored objects.
        #[arg(long)]
        no_store: bool,
    },
    /// Print the effective configuration as TOML that `config check`
    /// accepts: the file plus the objects created through the API (read
    /// from the data directory's store). Their secrets are printed in
    /// clear, as they are stored.
    Export {
        /// The config file the gateway runs with; without it, the embedded
        /// defaults.
        file: Option<PathBuf>,
        /// Only this workspace's objects.
        #[arg(long)]
        workspace: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a plugin's manifest and destination-config schema.
    Inspect {
        /// The plugin: its `.wasm` file, or the name of a built-in plugin
        /// (e.g. `dingtalk`). A file of that name wins.
        plugin: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate a destination config against a plugin (its JSON Schema and
    /// its own checks). Exits 1 when the config has problems.
    Check {
        /// The plugin: its `.wasm` file, or the name of a built-in plugin
        /// (e.g. `webhook`). A file of that name wins.
        plugin: PathBuf,
        /// The destination config: inline JSON, or `@path` to read a file.
        #[arg(long)]
        config: String,
    },
}

/// Runs the parsed command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Serve { config, listen } => serve(config.as_deref(), listen).await,
        Command::Receive { listen, secret } => {
            carillon::receive::run(listen, secret.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Config(ConfigCommand::Check { file, no_store }) => {
            config_check(file.as_deref(), !no_store).await
        }
        Command::Config(ConfigCommand::Export { file, workspace }) => {
            config_export(file.as_deref(), workspace.as_deref()).await
        }
        Command::Plugin(PluginCommand::Inspect { plugin, json }) => {
            let (_, plugin) = load(&plugin).await?;
            print_manifest(&plugin, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Check { plugin, config }) => {
            let (runtime, plugin) = load(&plugin).await?;
            let text = match config.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {path}"))?,
                None => config,
            };
            let config: serde_json::Value =
                serde_json::from_str(&text).context("the config is not valid JSON")?;
            let issues = runtime.validate(&plugin, &config).await?;
            let mut out = std::io::stdout().lock();
            if issues.is_empty() {
                writeln!(
                    out,
                    "ok: the config is valid for {} {}",
                    plugin.name(),
                    plugin.manifest().version
                )?;
                return Ok(ExitCode::SUCCESS);
            }
            for issue in &issues {
                let path = if issue.path.is_empty() {
                    "(config)"
                } else {
                    &issue.path
                };
                writeln!(out, "{path}: {}", issue.message)?;
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// `carillon serve`: runs until SIGINT or SIGTERM, then stops gracefully.
async fn serve(
    file: Option<&Path>,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let config = match file {
        Some(path) => Config::load(path),
        None => Config::embedded_defaults().map_err(ConfigError::Invalid),
    };
    let mut config = match config {
        Ok(config) => config,
        Err(ConfigError::Invalid(problems)) => {
            let mut err = std::io::stderr().lock();
            for problem in problems.iter() {
                writeln!(err, "{problem}")?;
            }
            writeln!(
                err,
                "error: the config has {} problem(s); nothing was started",
                problems.len()
            )?;
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(listen) = listen {
        config.server.listen = listen;
    }
    match file {
        Some(path) => tracing::info!(config = %path.display(), "starting"),
        None => tracing::info!("starting on the embedded defaults (no --config given)"),
    }
    let options = Options {
        config_source: ConfigSource {
            file: file.map(Path::to_path_buf),
            listen,
        },
        ..Options::default()
    };
    let gateway = match Gateway::start(config, options).await {
        Ok(gateway) => gateway,
        Err(StartError::Config(problems)) => {
            let mut err = std::io::stderr().lock();
            for problem in problems.iter() {
                writeln!(err, "{problem}")?;
            }
            writeln!(
                err,
                "error: the config has {} problem(s); nothing was started",
                problems.len()
            )?;
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(tokens) = gateway.local_tokens().filter(|t| t.created) {
        let addr = gateway.local_addr();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "\nGenerated tokens (shown once; kept in {}):\n  admin token:  {}\n  ingest token: {}\n\n\
             Post an event:\n  curl -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \\\n       \
             -d '{{\"type\":\"task.failed\",\"source\":\"etl\",\"title\":\"orders_daily failed\"}}' http://{addr}/v1/events\n",
            gateway
                .state()
                .live()
                .config
                .server
                .data_dir
                .join(LocalTokens::FILE)
                .display(),
            tokens.admin.expose(),
            tokens.ingest.expose(),
            tokens.ingest.expose(),
        )?;
    }
    wait_for_signal(&gateway).await;
    tracing::info!("stopping: finishing requests, handing back deliveries, flushing the outbox");
    gateway.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM; each SIGHUP meanwhile reloads the config
/// file (the outcome is logged; a file that does not pass changes nothing).
async fn wait_for_signal(gateway: &Gateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hangup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = term.recv() => return,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the config file");
                    // `reload_config` logs what took; only refusals here.
                    if let Err(error) = gateway.reload_config().await {
                        tracing::error!(%error, "config reload refused; the running config stays");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = gateway;
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `carillon config check`: every problem as `path (line L, column C): message`,
/// of every phase in one run (see [`Checked`]): the plugins are loaded and
/// checked against even when the file has other problems, and a note names
/// each check an earlier problem made impossible.
async fn config_check(file: Option<&Path>, with_store: bool) -> anyhow::Result<ExitCode> {
    let (mut checked, what) = match file {
        Some(path) => (Checked::file(path)?, format!("{} is valid", path.display())),
        None => {
            let resolver = Resolver {
                env: &process_env,
                base_dir: Path::new("."),
            };
            (
                Checked::text(DEFAULTS_TOML, &resolver),
                "the embedded defaults are valid".to_owned(),
            )
        }
    };
    let mut plugins = None;
    if let Some(config) = checked.config() {
        let runtime = Runtime::new(RuntimeConfig {
            max_concurrent_calls: 4,
            ..RuntimeConfig::default()
        })?;
        // The plugins the gateway would choose (built-in ones, files of the
        // plugin directory relative to the working directory, pins); a file
        // that does not load is reported, not fatal here.
        let catalog = Catalog::load(&runtime, config).await?;
        for file in catalog.files() {
            if let Some(error) = &file.error {
                eprintln!("warning: {}: {error}", file.path.display());
            }
        }
        checked.check_plugins(&*catalog);
        plugins = Some(catalog);
    }
    let mut out = std::io::stdout().lock();
    let problems = checked.problems();
    if !problems.is_empty() {
        for problem in problems.iter() {
            writeln!(out, "{problem}")?;
        }
        return Ok(ExitCode::from(1));
    }
    let Ok(config) = checked.into_config() else {
        return Ok(ExitCode::from(1));
    };
    let (config, what) = match (with_store, &plugins) {
        (true, Some(catalog)) => match with_stored_objects(file, config, what, &**catalog).await? {
            Ok(both) => both,
            Err(problems) => {
                for line in problems {
                    writeln!(out, "{line}")?;
                }
                return Ok(ExitCode::from(1));
            }
        },
        _ => (config, what),
    };
    writeln!(
        out,
        "ok: {what} ({} destinations, {} routes, {} templates)",
        config.destinations.len(),
        config.routes.len(),
        config.templates.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `config` with the objects of the store in its data directory merged in
/// and checked again, as `serve` starts (nothing to do without a store);
/// `Err` with the lines to print when they do not fit the file.
async fn with_stored_objects(
    file: Option<&Path>,
    config: carillon::config::Config,
    what: String,
    catalog: &dyn carillon::config::PluginCatalog,
) -> anyhow::Result<Result<(carillon::config::Config, String), Vec<String>>> {
    let store_file = config
        .server
        .data_dir
        .join(carillon::api::config_store::STORE_FILE);
    if !store_file.exists() {
        return Ok(Ok((config, what)));
    }
    let store = carillon_store::Store::open(&store_file)
        .await
        .with_context(|| format!("cannot open the config store {}", store_file.display()))?;
    let objects = store.objects().await?;
    store.close().await;
    if objects.is_empty() {
        return Ok(Ok((config, what)));
    }
    let header = format!(
        "with the {} object(s) created through the API ({}):",
        objects.len(),
        store_file.display()
    );
    let overlay = match carillon::api::config_store::overlay(&objects) {
        Ok(o) => o,
        Err(problems) => {
            let mut lines = vec![header];
            lines.extend(problems.iter().map(ToString::to_string));
            return Ok(Err(lines));
        }
    };
    let source = carillon::api::reconfigure::ConfigSource {
        file: file.map(Path::to_path_buf),
        listen: None,
    };
    let merged = source.check(config.source_text(), &overlay).and_then(|c| {
        let problems = c.check_plugins(catalog);
        if problems.is_empty() {
            Ok(c)
        } else {
            Err(problems)
        }
    });
    match merged {
        Ok(c) => Ok(Ok((
            c,
            format!(
                "{what}, with the {} object(s) created through the API",
                objects.len()
            ),
        ))),
        Err(problems) => {
            let mut lines = vec![header];
            lines.extend(problems.iter().map(ToString::to_string));
            Ok(Err(lines))
        }
    }
}

/// `carillon config export`: the file's text and the store's objects, as
/// one TOML file.
async fn config_export(file: Option<&Path>, workspace: Option<&str>) -> anyhow::Result<ExitCode> {
    let text = match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?,
        None => DEFAULTS_TOML.to_owned(),
    };
    // The data directory as the file sets it (or its default).
    let checked = match file {
        Some(path) => Checked::file(path)?,
        None => Checked::text(
            &text,
            &Resolver {
                env: &process_env,
                base_dir: Path::new("."),
            },
        ),
    };
    let Some(config) = checked.config() else {
        anyhow::bail!("the config file is not valid TOML; `carillon config check` says where");
    };
    let store_file = config
        .server
        .data_dir
        .join(carillon::api::config_store::STORE_FILE);
    let objects = if store_file.exists() {
        let store = carillon_store::Store::open(&store_file)
            .await
            .with_context(|| format!("cannot open the config store {}", store_file.display()))?;
        let objects = store.objects().await?;
        store.close().await;
        objects
    } else {
        Vec::new()
    };
    let objects: Vec<ApiObject> = objects
        .into_iter()
        .filter_map(|o| {
            Some(ApiObject {
                kind: Kind::from_name(&o.kind)?,
                name: o.name,
                workspace: o.workspace,
                body: o.body,
            })
        })
        .collect();
    if workspace.is_some_and(|ws| {
        !config.workspaces.contains_key(ws) && !objects.iter().any(|o| o.workspace == ws)
    }) {
        anyhow::bail!(
            "no workspace {:?} in the config or the store",
            workspace.unwrap_or_default()
        );
    }
    let exported = carillon::config::export::export(&text, &objects, workspace)?;
    std::io::stdout().lock().write_all(exported.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Loads `plugin`: the file at that path when there is one, else the
/// built-in plugin of that name.
async fn load(plugin: &Path) -> anyhow::Result<(Runtime, std::sync::Arc<Plugin>)> {
    let wasm = if plugin.exists() {
        std::fs::read(plugin).with_context(|| format!("cannot read {}", plugin.display()))?
    } else {
        builtin(plugin)?.to_vec()
    };
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    })?;
    let plugin = runtime
        .load(wasm)
        .await
        .with_context(|| format!("cannot load {}", plugin.display()))?;
    Ok((runtime, plugin))
}

/// The crates of the built-in plugins are named `carillon-plugin-NAME`,
/// `NAME` being the plugin's manifest name.
const BUILTIN_PREFIX: &str = "carillon-plugin-";

/// The embedded component of the built-in plugin named `name`, or an error
/// that says `name` is no file either and lists the built-in names.
fn builtin(name: &Path) -> anyhow::Result<&'static [u8]> {
    let found = name.to_str().and_then(|name| {
        carillon_builtin::BUILTIN
            .iter()
            .find(|a| a.crate_name.strip_prefix(BUILTIN_PREFIX) == Some(name))
    });
    match found {
        Some(artifact) => Ok(artifact.wasm),
        None => {
            let names: Vec<&str> = carillon_builtin::BUILTIN
                .iter()
                .filter_map(|a| a.crate_name.strip_prefix(BUILTIN_PREFIX))
                .collect();
            anyhow::bail!(
                "{} is neither a file nor a built-in plugin (built-in: {})",
                name.display(),
                names.join(", ")
            )
        }
    }
}

fn print_manifest(plugin: &Plugin, json: bool) -> anyhow::Result<()> {
    let m = plugin.manifest();
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "manifest": m,
            "wit_version": plugin.wit_version(),
            "sha256": plugin.sha256(),
            "size": plugin.size(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let list = |items: &[String]| {
        if items.is_empty() {
            "(none)".to_owned()
        } else {
            items.join(", ")
        }
    };
    writeln!(out, "name:           {}", m.name)?;
    writeln!(out, "version:        {}", m.version)?;
    writeln!(out, "description:    {}", m.description)?;
    writeln!(
        out,
        "contract:       carillon:plugin@{}",
        plugin.wit_version()
    )?;
    writeln!(out, "sha256:         {}", plugin.sha256())?;
    writeln!(out, "size:           {} bytes", plugin.size())?;
    writeln!(out, "allowed hosts:  {}", list(&m.allowed_hosts))?;
    writeln!(out, "endpoints:      {}", list(&m.endpoint_fields))?;
    writeln!(out, "secrets:        {}", list(&m.secret_fields))?;
    writeln!(out, "max payload:    {} bytes", m.max_payload_bytes)?;
    let limits: Vec<String> = m
        .rate_limits
        .iter()
        .map(|l| format!("{} per {} ms", l.requests, l.window.as_millis()))
        .collect();
    writeln!(out, "rate limits:    {}", list(&limits))?;
    writeln!(
        out,
        "config schema:\n{}",
        serde_json::to_string_pretty(&m.config_schema)?
    )?;
    Ok(())
}
