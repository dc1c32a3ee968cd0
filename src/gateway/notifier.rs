//! Tells connected clients that the catalog (tools, prompts, resources) changed.
//!
//! Session-era clients get `notifications/tools/list_changed` on their session; each is
//! registered when it sends `notifications/initialized` and dropped once its transport has
//! closed. 2026-07-28 clients have no session: they open `subscriptions/listen`, whose handler
//! waits on [`Gateway::catalog_changes`](super::Gateway::catalog_changes) itself.
//!
//! One task (spawned on the gateway's tracker) sends to every session concurrently, each send
//! bounded by [`SEND_TIMEOUT`], so a client that stopped reading delays nobody else for long.

use std::{sync::Mutex, time::Duration};

use rmcp::{Peer, RoleServer, ServiceError};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Changed;

/// How many times each part of the catalog has changed; a watch of it tells every listener
/// what to announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub tools: u64,
    pub prompts: u64,
    pub resources: u64,
}

impl Changes {
    /// Counts one build's changes.
    pub fn record(&mut self, changed: Changed) {
        self.tools += u64::from(changed.tools);
        self.prompts += u64::from(changed.prompts);
        self.resources += u64::from(changed.resources);
    }

    /// What differs from an earlier count.
    pub fn since(&self, earlier: &Changes) -> Changed {
        Changed {
            tools: self.tools != earlier.tools,
            prompts: self.prompts != earlier.prompts,
            resources: self.resources != earlier.resources,
        }
    }
}

/// How long one client may take to accept a notification.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// The session-era clients to notify.
#[derive(Default)]
pub struct Sessions {
    peers: Mutex<Vec<Peer<RoleServer>>>,
}

impl Sessions {
    /// Adds a session that completed its handshake.
    pub fn register(&self, peer: Peer<RoleServer>) {
        let mut peers = self.lock();
        peers.retain(|peer| !peer.is_transport_closed());
        peers.push(peer);
    }

    /// The sessions still open.
    fn open(&self) -> Vec<Peer<RoleServer>> {
        let mut peers = self.lock();
        peers.retain(|peer| !peer.is_transport_closed());
        peers.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Peer<RoleServer>>> {
        // The list stays consistent whatever panicked while holding it: recover it.
        self.peers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

/// Sends the `list_changed` notifications for each catalog change to every open session,
/// until shutdown.
pub async fn run(
    sessions: std::sync::Arc<Sessions>,
    mut changes: watch::Receiver<Changes>,
    shutdown: CancellationToken,
) {
    let mut seen = *changes.borrow_and_update();
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
        let now = *changes.borrow_and_update();
        let changed = now.since(&seen);
        seen = now;
        let peers = sessions.open();
        tracing::debug!(
            sessions = peers.len(),
            ?changed,
            "catalog changed; notifying clients"
        );
        let sends = peers.iter().map(|peer| async move {
            match tokio::time::timeout(SEND_TIMEOUT, notify(peer, changed)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "list_changed not delivered"),
                Err(_) => {
                    tracing::warn!("a client did not accept list_changed within {SEND_TIMEOUT:?}")
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

async fn notify(peer: &Peer<RoleServer>, changed: Changed) -> Result<(), ServiceError> {
    if changed.tools {
        peer.notify_tool_list_changed().await?;
    }
    if changed.prompts {
        peer.notify_prompt_list_changed().await?;
    }
    if changed.resources {
        peer.notify_resource_list_changed().await?;
    }
    Ok(())
}
