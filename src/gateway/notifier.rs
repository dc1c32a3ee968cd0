//! Tells connected clients that the tool catalog changed.
//!
//! Session-era clients get `notifications/tools/list_changed` on their session; each is
//! registered when it sends `notifications/initialized` and dropped once its transport has
//! closed. 2026-07-28 clients have no session: they open `subscriptions/listen`, whose handler
//! waits on [`Gateway::catalog_changes`](super::Gateway::catalog_changes) itself.
//!
//! One task (spawned on the gateway's tracker) sends to every session concurrently, each send
//! bounded by [`SEND_TIMEOUT`], so a client that stopped reading delays nobody else for long.

use std::{sync::Mutex, time::Duration};

use rmcp::{Peer, RoleServer};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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

/// Sends `tools/list_changed` to every open session after each catalog change, until shutdown.
pub async fn run(
    sessions: std::sync::Arc<Sessions>,
    mut changes: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            () = shutdown.cancelled() => return,
        }
        let peers = sessions.open();
        tracing::debug!(
            sessions = peers.len(),
            "tool list changed; notifying clients"
        );
        let sends = peers.iter().map(|peer| async move {
            match tokio::time::timeout(SEND_TIMEOUT, peer.notify_tool_list_changed()).await {
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
