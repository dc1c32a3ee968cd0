//! Upstreams added, replaced, restarted and removed while the gateway runs.
//!
//! Each running upstream has a stop token of its own (a child of the shutdown token) and the
//! handle of its task. Removing or replacing one takes it out of the catalog first, lets its
//! calls in flight finish (within `timeouts.drain_secs`), then cancels the token and waits for
//! the task, so when [`Gateway::remove_upstream`] returns, its process group is gone. A
//! replacement starts beside the old one and takes over when it is ready. Every change
//! rebuilds the catalog, which tells connected clients that their lists changed.

use std::sync::{Arc, Weak};

use rmcp::model::ResourceUpdatedNotificationParam;
use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::Gateway;
use crate::{
    config::{Config, UpstreamConfig},
    sync::lock,
    upstream::{OAuthVault, Upstream, UpstreamAuth, UpstreamEvents, UpstreamSettings, supervise},
};

/// Why an upstream could not be added, replaced or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    #[error("the gateway is not running, so it cannot start upstreams")]
    NotRunning,
    #[error("an upstream named {0:?} exists")]
    Duplicate(String),
    #[error("no upstream named {0:?}")]
    Unknown(String),
}

/// How to stop one running upstream.
pub(super) struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A new, unstarted upstream that reports its changes to `gateway`.
pub(super) fn new_upstream(
    config: &Config,
    gateway: &Weak<Gateway>,
    resource_updates: &mpsc::Sender<ResourceUpdatedNotificationParam>,
    vault: &Arc<OAuthVault>,
    name: &str,
    entry: UpstreamConfig,
) -> Arc<Upstream> {
    let gateway = gateway.clone();
    let settings = UpstreamSettings::resolve(config, &entry);
    let oauth = match (&entry.oauth, &entry.url) {
        (Some(oauth), Some(url)) => Some(Arc::new(UpstreamAuth::new(
            name,
            url,
            oauth.clone(),
            &config.base_dir,
            vault.clone(),
        ))),
        _ => None,
    };
    Arc::new(
        Upstream::new(
            name,
            entry,
            settings,
            UpstreamEvents {
                on_change: Arc::new(move |_changed: &Upstream| {
                    if let Some(gateway) = gateway.upgrade() {
                        gateway.rebuild_catalog();
                    }
                }),
                resource_updates: resource_updates.clone(),
            },
        )
        .signing_in(oauth),
    )
}

impl Gateway {
    /// Runs `upstream` on `tracker` until `shutdown` or until it is removed.
    pub(super) fn launch(
        &self,
        upstream: Arc<Upstream>,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        let stop = shutdown.child_token();
        let name = upstream.name().to_owned();
        // `supervise` restarts it after failures, until `stop`.
        let task = tracker.spawn(supervise(
            upstream,
            stop.clone(),
            self.config.load().restart.clone(),
        ));
        let replaced = self.running_lock().insert(name, Running { stop, task });
        debug_assert!(replaced.is_none(), "an upstream name runs once");
    }

    /// Adds and starts an upstream. Its name must be new. Returns at once: it becomes
    /// callable when it is ready, within its start deadline, and clients are told then.
    pub fn add_upstream(&self, name: &str, entry: UpstreamConfig) -> Result<(), LifecycleError> {
        let (tracker, shutdown) = self.runtime.get().ok_or(LifecycleError::NotRunning)?;
        let upstream = self.new_upstream(name, entry);
        let mut added = false;
        self.upstreams.rcu(|current| {
            added = !current.iter().any(|existing| existing.name() == name);
            let mut next = Vec::clone(current);
            if added {
                next.push(upstream.clone());
            }
            next
        });
        if !added {
            return Err(LifecycleError::Duplicate(name.to_owned()));
        }
        self.launch(upstream, tracker, shutdown);
        self.rebuild_catalog();
        Ok(())
    }

    /// Removes an upstream: it leaves the catalog at once (new calls no longer reach it), its
    /// calls in flight get `timeouts.drain_secs` to finish, then it stops (its process group
    /// is gone when this returns).
    pub async fn remove_upstream(&self, name: &str) -> Result<(), LifecycleError> {
        let old = self
            .upstream(name)
            .ok_or_else(|| LifecycleError::Unknown(name.to_owned()))?;
        let running = self.running_lock().remove(name);
        self.upstreams.rcu(|current| {
            current
                .iter()
                .filter(|existing| !Arc::ptr_eq(existing, &old))
                .cloned()
                .collect::<Vec<_>>()
        });
        self.rebuild_catalog();
        self.retire(&old, running).await;
        Ok(())
    }

    /// Replaces an upstream's entry in its place (its place breaks name ties), restarting it
    /// when `entry` is unchanged. Without a gap: the new one starts beside the old, which
    /// keeps serving until the new one is ready (or has failed to start); then new calls go
    /// to the new one, and the old one's calls in flight get `timeouts.drain_secs` to finish
    /// on its connection before it stops.
    pub async fn replace_upstream(
        &self,
        name: &str,
        entry: UpstreamConfig,
    ) -> Result<(), LifecycleError> {
        let (tracker, shutdown) = self.runtime.get().ok_or(LifecycleError::NotRunning)?;
        let old = self
            .upstream(name)
            .ok_or_else(|| LifecycleError::Unknown(name.to_owned()))?;
        let running = self.running_lock().remove(name);
        let upstream = self.new_upstream(name, entry);
        self.launch(upstream.clone(), tracker, shutdown);
        // Bounded by its start deadline, after which it has failed.
        tokio::select! {
            () = upstream.settled() => {}
            () = shutdown.cancelled() => {}
        }
        self.upstreams.rcu(|current| {
            current
                .iter()
                .map(|existing| {
                    if Arc::ptr_eq(existing, &old) {
                        upstream.clone()
                    } else {
                        existing.clone()
                    }
                })
                .collect::<Vec<_>>()
        });
        self.rebuild_catalog();
        self.retire(&old, running).await;
        Ok(())
    }

    /// Lets the calls in flight on `old`, which no longer takes new ones, finish within the
    /// drain time, then stops it and waits for its process group to be gone.
    async fn retire(&self, old: &Upstream, running: Option<Running>) {
        let drain = self.config.load().timeouts.drain();
        if tokio::time::timeout(drain, old.idle()).await.is_err() {
            tracing::warn!(
                upstream = %old.name(),
                ?drain,
                "calls still in flight on the replaced connection after the drain time; stopping it"
            );
        }
        if let Some(Running { stop, task }) = running {
            stop.cancel();
            // `run` reaps the process group within the shutdown grace.
            let _ = task.await;
        }
    }

    /// A new, unstarted upstream with the settings of the configuration now in force.
    fn new_upstream(&self, name: &str, entry: UpstreamConfig) -> Arc<Upstream> {
        new_upstream(
            &self.config.load(),
            &self.me,
            &self.resources.update_sender,
            &self.oauth,
            name,
            entry,
        )
    }

    /// Puts the upstreams named in `first` first, in that order; the others keep theirs.
    pub(super) fn reorder(&self, first: &[&str]) {
        let rank = |upstream: &Arc<Upstream>| {
            first
                .iter()
                .position(|name| *name == upstream.name())
                .unwrap_or(first.len())
        };
        self.upstreams.rcu(|current| {
            let mut next = Vec::clone(current);
            // Stable, so the upstreams not named keep their order.
            next.sort_by_key(rank);
            next
        });
    }

    /// Stops and starts an upstream again with the same entry.
    pub async fn restart_upstream(&self, name: &str) -> Result<(), LifecycleError> {
        let entry = self
            .upstream(name)
            .ok_or_else(|| LifecycleError::Unknown(name.to_owned()))?
            .config()
            .clone();
        self.replace_upstream(name, entry).await
    }

    /// The upstream called `name`.
    pub fn upstream(&self, name: &str) -> Option<Arc<Upstream>> {
        self.upstreams
            .load()
            .iter()
            .find(|upstream| upstream.name() == name)
            .cloned()
    }

    fn running_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Running>> {
        lock(&self.running)
    }
}
