//! The task that keeps the plugins in step with the plugin directory: file
//! system notifications (`notify`: inotify, FSEvents, …), debounced, plus a
//! periodic rescan as a safety net for missed events and for directories
//! that cannot be watched (network file systems, a directory created
//! later). While a file is still settling, the next scan comes after the
//! settle time rather than at the next period.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::scan::counts;
use super::{Reloader, Trigger};
use crate::config::Config;

/// How the plugin directory is watched.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// The periodic rescan (`server.plugin_rescan_secs`).
    pub rescan: Duration,
    /// How long the directory must be quiet after a notification before it
    /// is scanned (a burst of writes makes one scan).
    pub debounce: Duration,
}

/// Starts the watch task over `reloader`'s directory; it ends when `stop`
/// turns true. Before each rescan it reads the config in force (a config
/// reload may have replaced it): `current` returns what holds it (e.g. the
/// API's live settings) and `config_of` finds it there.
pub fn spawn<L, F>(
    reloader: Arc<Reloader>,
    current: F,
    config_of: fn(&L) -> &Config,
    settings: WatchSettings,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()>
where
    L: Send + Sync + 'static,
    F: Fn() -> L + Send + 'static,
{
    tokio::spawn(run(reloader, current, config_of, settings, stop))
}

async fn run<L, F>(
    reloader: Arc<Reloader>,
    current: F,
    config_of: fn(&L) -> &Config,
    settings: WatchSettings,
    mut stop: watch::Receiver<bool>,
) where
    L: Send + Sync + 'static,
    F: Fn() -> L + Send + 'static,
{
    let dir = reloader.dir().to_path_buf();
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = start_watcher(&dir, tx.clone());
    let mut settling = reloader.catalog().settling() > 0;
    loop {
        let wait = if settling {
            reloader.settle()
        } else {
            settings.rescan
        };
        let notified = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(wait) => false,
            Some(()) = rx.recv() => true,
        };
        if notified {
            // Debounce: scan once the directory has been quiet, or after a
            // rescan period of constant changes at the latest.
            let latest = tokio::time::Instant::now() + settings.rescan;
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(settings.debounce) => break,
                    _ = tokio::time::sleep_until(latest) => break,
                    Some(()) = rx.recv() => {}
                }
            }
        }
        let holder = current();
        let catalog = reloader.rescan(config_of(&holder), Trigger::Watch).await;
        settling = catalog.settling() > 0;
        if watcher.is_none() {
            // The directory may exist now.
            watcher = start_watcher(&dir, tx.clone());
        }
    }
}

/// A watcher of `dir` that signals `tx` on changes to files that count;
/// `None` when the directory cannot be watched (the rescan still runs).
fn start_watcher(dir: &Path, tx: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| match event {
        // Reads (ours included) are not changes.
        Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
        Ok(event) => {
            if event.paths.is_empty() || event.paths.iter().any(|p| counts(p)) {
                // A full channel already holds a signal; one is enough.
                let _ = tx.try_send(());
            }
        }
        Err(error) => {
            tracing::warn!(%error, "plugin directory watch error; rescanning");
            let _ = tx.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(error) => {
            tracing::warn!(%error, "cannot watch for plugin changes; relying on the periodic rescan");
            return None;
        }
    };
    match watcher.watch(dir, RecursiveMode::NonRecursive) {
        Ok(()) => {
            tracing::debug!(dir = %dir.display(), "watching the plugin directory");
            Some(watcher)
        }
        Err(error) => {
            tracing::debug!(dir = %dir.display(), %error, "cannot watch the plugin directory (yet); relying on the periodic rescan");
            None
        }
    }
}
