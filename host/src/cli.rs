//! Subcommands of the `carillon` binary.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use carillon::config::{Config, ConfigError};
use carillon::plugin::{Plugin, Runtime, RuntimeConfig};
use clap::{Parser, Subcommand};

/// Carillon, a notification gateway with sandboxed WebAssembly channels.
#[derive(Debug, Parser)]
#[command(name = "carillon", version, about)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    /// destination's config against its plugin. Prints every problem with
    /// its key path and line; exits 1 when there are any.
    Check {
        /// The config file; without it, the embedded defaults are checked.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Print a plugin's manifest and destination-config schema.
    Inspect {
        /// The plugin's `.wasm` file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate a destination config against a plugin (its JSON Schema and
    /// its own checks). Exits 1 when the config has problems.
    Check {
        /// The plugin's `.wasm` file.
        file: PathBuf,
        /// The destination config: inline JSON, or `@path` to read a file.
        #[arg(long)]
        config: String,
    },
}

/// Runs the parsed command.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Config(ConfigCommand::Check { file }) => config_check(file.as_deref()).await,
        Command::Plugin(PluginCommand::Inspect { file, json }) => {
            let (_, plugin) = load(&file).await?;
            print_manifest(&plugin, json)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin(PluginCommand::Check { file, config }) => {
            let (runtime, plugin) = load(&file).await?;
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

/// `carillon config check`: every problem as `path (line L, column C): message`.
async fn config_check(file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let (config, what) = match file {
        Some(path) => (Config::load(path), format!("{} is valid", path.display())),
        None => (
            Config::embedded_defaults().map_err(ConfigError::Invalid),
            "the embedded defaults are valid".to_owned(),
        ),
    };
    let mut out = std::io::stdout().lock();
    let config = match config {
        Ok(config) => config,
        Err(ConfigError::Invalid(problems)) => {
            for problem in problems.iter() {
                writeln!(out, "{problem}")?;
            }
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e.into()),
    };
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    })?;
    let mut plugins: HashMap<String, Arc<Plugin>> = HashMap::new();
    for artifact in carillon_builtin::BUILTIN {
        let plugin = runtime
            .load(artifact.wasm.to_vec())
            .await
            .with_context(|| format!("cannot load the built-in plugin {}", artifact.crate_name))?;
        plugins.insert(plugin.name().to_owned(), plugin);
    }
    // Plugins from the plugin directory (relative to the working directory),
    // when it exists; one that does not load is reported, not fatal here.
    if let Ok(entries) = std::fs::read_dir(&config.server.plugin_dir) {
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        for path in paths {
            let loaded = match std::fs::read(&path) {
                Ok(wasm) => runtime.load(wasm).await.map_err(anyhow::Error::from),
                Err(e) => Err(e.into()),
            };
            match loaded {
                Ok(plugin) => {
                    plugins.insert(plugin.name().to_owned(), plugin);
                }
                Err(e) => eprintln!("warning: cannot load {}: {e:#}", path.display()),
            }
        }
    }
    let problems = config.check_plugins(&plugins);
    if !problems.is_empty() {
        for problem in problems.iter() {
            writeln!(out, "{problem}")?;
        }
        return Ok(ExitCode::from(1));
    }
    writeln!(
        out,
        "ok: {what} ({} destinations, {} routes, {} templates)",
        config.destinations.len(),
        config.routes.len(),
        config.templates.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn load(file: &Path) -> anyhow::Result<(Runtime, std::sync::Arc<Plugin>)> {
    let wasm = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_calls: 4,
        ..RuntimeConfig::default()
    })?;
    let plugin = runtime
        .load(wasm)
        .await
        .with_context(|| format!("cannot load {}", file.display()))?;
    Ok((runtime, plugin))
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
