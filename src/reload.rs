//! Reloading `proxy.yaml` while the gateway runs: on SIGHUP, on `POST /api/v1/system/reload`,
//! and when the file changes on disk (`server.watch_config`).
//!
//! The new file is loaded and validated whole before anything is touched; an invalid one is
//! refused, logged, and the running configuration stays. One reload runs at a time.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::sync::{Mutex, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::{Config, ConfigError},
    gateway::{Gateway, LogLevelReport, Reconfigured},
    logging,
};

/// Edits arriving closer together than this are applied once (editors write in steps).
const SETTLE: Duration = Duration::from_millis(300);

/// What asked for a reload, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Signal,
    Api,
    FileChanged,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "SIGHUP",
            Self::Api => "the API",
            Self::FileChanged => "a change to the file",
        }
    }
}

/// Reloads one config file into one gateway.
pub struct Reloader {
    path: PathBuf,
    gateway: Arc<Gateway>,
    /// The configuration running now, and the text it was read from.
    current: Mutex<(Config, String)>,
}

impl Reloader {
    /// `config` is what `path` held when the gateway started.
    pub fn new(path: &Path, gateway: Arc<Gateway>, config: Config) -> Arc<Self> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Arc::new(Self {
            path: path.to_owned(),
            gateway,
            current: Mutex::new((config, text)),
        })
    }

    /// The configuration running now (the file's, as last loaded).
    pub async fn running(&self) -> Config {
        self.current.lock().await.0.clone()
    }

    /// The names of the upstreams the file defines now.
    pub async fn upstream_names(&self) -> std::collections::HashSet<String> {
        self.current
            .lock()
            .await
            .0
            .upstreams
            .keys()
            .cloned()
            .collect()
    }

    /// Loads the file again and applies what changed. On error nothing changed, and the
    /// error is logged.
    pub async fn reload(&self, trigger: Trigger) -> Result<Reconfigured, ConfigError> {
        let mut current = self.current.lock().await;
        let text = match tokio::fs::read_to_string(&self.path).await {
            Ok(text) => text,
            Err(source) => {
                let error = ConfigError::Read {
                    path: self.path.clone(),
                    source,
                };
                return Err(self.refused(trigger, error));
            }
        };
        // A watched file touched but not changed is not worth a log line.
        if trigger == Trigger::FileChanged && text == current.1 {
            return Ok(Reconfigured::default());
        }
        let path = self.path.clone();
        let next = match tokio::task::spawn_blocking(move || Config::reload(&path)).await {
            Ok(loaded) => loaded,
            Err(panic) => Err(ConfigError::invalid("config", panic.to_string())),
        };
        let next = match next {
            Ok(next) => next,
            Err(error) => {
                // Remember the text so the same broken file is not reported again.
                current.1 = text;
                return Err(self.refused(trigger, error));
            }
        };
        let level_changed = current.0.logging.level != next.logging.level;
        let mut report = self.gateway.reconfigure(&current.0, next.clone()).await;
        if level_changed {
            report.log_level = Some(apply_level(&next.logging.level));
        }
        *current = (next, text);
        log(&self.path, trigger, &report);
        Ok(report)
    }

    /// Logs a refused reload and hands its error back.
    fn refused(&self, trigger: Trigger, error: ConfigError) -> ConfigError {
        tracing::error!(
            "reload of {} on {} refused, the running configuration stays: {error}",
            self.path.display(),
            trigger.as_str()
        );
        error
    }

    /// Reloads on every SIGHUP until `shutdown`.
    pub fn reload_on_sighup(
        self: &Arc<Self>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangup = signal(SignalKind::hangup())?;
        let reloader = self.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = hangup.recv() => {}
                    () = shutdown.cancelled() => return,
                }
                let _ = reloader.reload(Trigger::Signal).await;
            }
        });
        Ok(())
    }

    /// Reloads whenever the file changes on disk, until `shutdown`. The directory is
    /// watched, not the file, so editors that save by renaming a new file over the old one
    /// (and Kubernetes' swapped config map links) are seen too.
    pub fn reload_on_change(self: &Arc<Self>, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let (changed, mut changes) = mpsc::channel::<()>(1);
        let watcher = watch_file(&self.path, changed);
        let mut watcher = match watcher {
            Ok(watcher) => watcher,
            Err(error) => {
                tracing::warn!(
                    "cannot watch {} for changes ({error}); SIGHUP and POST /api/v1/system/reload still reload it",
                    self.path.display()
                );
                return;
            }
        };
        let reloader = self.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            loop {
                tokio::select! {
                    Some(()) = changes.recv() => {}
                    () = shutdown.cancelled() => break,
                }
                tokio::time::sleep(SETTLE).await;
                while changes.try_recv().is_ok() {}
                let _ = reloader.reload(Trigger::FileChanged).await;
            }
            // Dropping the watcher stops its thread.
            let _ = &mut watcher;
        });
    }
}

/// A watcher of `path`'s directory that signals `changed` on events about `path`.
fn watch_file(
    path: &Path,
    changed: mpsc::Sender<()>,
) -> notify::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    let directory = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    let name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let about_the_file = event.paths.iter().any(|changed| {
            let changed = changed.file_name();
            changed == name.as_deref()
                // Kubernetes mounts config maps through a `..data` link it swaps.
                || changed.is_some_and(|changed| changed.to_string_lossy().starts_with(".."))
        });
        if about_the_file {
            // Full means a reload is already due; this event adds nothing.
            let _ = changed.try_send(());
        }
    })?;
    watcher.watch(&directory, notify::RecursiveMode::NonRecursive)?;
    Ok(watcher)
}

/// Puts a changed `logging.level` in force.
fn apply_level(level: &str) -> LogLevelReport {
    let outcome = logging::set_level(level);
    LogLevelReport {
        level: level.to_owned(),
        applied: outcome.is_ok(),
        note: outcome.err(),
    }
}

fn log(path: &Path, trigger: Trigger, report: &Reconfigured) {
    if report.is_empty() {
        tracing::info!(
            "reloaded {} on {}: nothing changed",
            path.display(),
            trigger.as_str()
        );
        return;
    }
    tracing::info!(
        added = ?report.added,
        changed = ?report.changed,
        removed = ?report.removed,
        virtual_servers = ?report.virtual_servers,
        unchanged = report.unchanged.len(),
        "reloaded {} on {}",
        path.display(),
        trigger.as_str()
    );
    for refused in &report.refused {
        tracing::warn!(upstream = %refused.name, "not applied: {}", refused.reason);
    }
    if let Some(level) = &report.log_level {
        match &level.note {
            None => tracing::info!("log level is now {:?}", level.level),
            Some(note) => tracing::warn!("log level {:?} not applied: {note}", level.level),
        }
    }
    if !report.needs_restart.is_empty() {
        tracing::warn!(
            "changes to {} take effect at the next restart (upstream settings they hold apply now)",
            report.needs_restart.join(", ")
        );
    }
}
