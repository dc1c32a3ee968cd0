//! `isolation: per-session`: the upstream connections one client session has to itself.
//!
//! The session's connection to such an upstream is opened at its first request there (within
//! the upstream's start deadline), reopened if it has failed, and closed with the session: the
//! scope is dropped with the session's handler, which stops its upstreams (and so, for stdio,
//! their process groups). The shared connection still serves the catalog; calls are routed by
//! the names it lists.

use std::{collections::HashMap, sync::Arc};

use rmcp::{Peer, RoleClient};
use tokio::sync::{Mutex, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    error::GatewayError,
    upstream::{Phase, Upstream, UpstreamEvents},
};

/// The per-session upstream connections of one session.
pub struct SessionConnections {
    connections: Mutex<HashMap<Arc<str>, Arc<Upstream>>>,
    /// Stops the session's upstreams; a child of the gateway's shutdown.
    closed: CancellationToken,
    tracker: TaskTracker,
}

impl SessionConnections {
    pub fn new(shutdown: &CancellationToken, tracker: TaskTracker) -> Self {
        Self {
            connections: Mutex::default(),
            closed: shutdown.child_token(),
            tracker,
        }
    }

    /// This session's ready connection to `shared`'s upstream, opened if need be.
    pub async fn connection(
        &self,
        shared: &Upstream,
    ) -> Result<(Arc<Upstream>, Peer<RoleClient>), GatewayError> {
        let mut connections = self.connections.lock().await;
        if let Some(own) = connections.get(shared.name())
            && let Ok(peer) = own.ready_peer()
        {
            return Ok((own.clone(), peer));
        }
        let (phase_changed, mut phase) = watch::channel(());
        let events = UpstreamEvents {
            on_change: Arc::new(move |_: &Upstream| {
                let _ = phase_changed.send(());
            }),
            resource_updates: shared.events().resource_updates.clone(),
        };
        let own = Arc::new(shared.sibling(events));
        self.tracker.spawn(own.clone().run(self.closed.clone()));
        tracing::debug!(upstream = %shared.name(), "opening a session's own connection");
        while own.state().phase == Phase::Starting {
            if phase.changed().await.is_err() {
                break;
            }
        }
        let peer = own.ready_peer()?;
        connections.insert(Arc::from(shared.name()), own.clone());
        Ok((own, peer))
    }
}

impl Drop for SessionConnections {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}
