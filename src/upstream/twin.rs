//! A session-era connection beside a 2026-07-28 one, for session-era clients.
//!
//! `protocol: auto` reaches a remote upstream in 2026-07-28 when it can (a stdio upstream is
//! opened in the session era first, see `connect::stdio_protocol`: a second connection there
//! would be a second process). That revision has no server→client requests: an SDK that
//! speaks both eras (the TypeScript SDK v2, the Python SDK) refuses, on a 2026-07-28 request,
//! to send the sampling or elicitation request that a tool written for sessions makes ("not
//! supported by the negotiated protocol version"), although a session-era client connected
//! to it directly gets that request. So the calls of session-era clients to such an upstream
//! go on a second connection to it in the session era, opened at the first such call (the
//! call waits for its handshake) and closed with the upstream; 2026-07-28 clients and the
//! catalog keep the first. An upstream that refuses the session era is asked again only after
//! [`RETRY_AFTER`], and its calls stay on the first connection meanwhile.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use rmcp::{Peer, RoleClient};
use tokio::sync::{Mutex, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Phase, Upstream, UpstreamEvents, stop_on_drop::StopOnDrop};
use crate::config::ProtocolMode;

/// How long an upstream that refused the session era is left alone.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The session-era twin of one upstream connection, if it has been opened.
#[derive(Default)]
pub struct SessionTwin {
    slot: Mutex<Slot>,
    /// Stops the twin with its upstream.
    stop: StopOnDrop,
}

#[derive(Default)]
struct Slot {
    twin: Option<Arc<Upstream>>,
    refused_at: Option<Instant>,
}

impl Upstream {
    /// Whether a session-era client's calls here belong on a session-era twin: the remote
    /// upstream is reached in 2026-07-28 only because `auto` chose it.
    pub fn wants_session_twin(&self, peer: &Peer<RoleClient>) -> bool {
        self.config.protocol == ProtocolMode::Auto
            && self.config.url.is_some()
            && peer
                .peer_info()
                .is_some_and(|info| !info.protocol_version.has_initialize())
    }

    /// The ready session-era twin of this upstream, opened if need be (on `tracker`, stopped
    /// with `shutdown` or with this upstream); `None` if the upstream refuses the session era.
    pub async fn session_twin(
        &self,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Option<(Arc<Upstream>, Peer<RoleClient>)> {
        let mut slot = self.twin.slot.lock().await;
        if let Some(twin) = &slot.twin
            && let Ok(peer) = twin.ready_peer()
        {
            return Some((twin.clone(), peer));
        }
        if slot.refused_at.is_some_and(|at| at.elapsed() < RETRY_AFTER) {
            return None;
        }
        let stop = self.twin.stop.under(shutdown);
        let (phase_changed, mut phase) = watch::channel(());
        let events = UpstreamEvents {
            on_change: Arc::new(move |_: &Upstream| {
                let _ = phase_changed.send(());
            }),
            resource_updates: self.events.resource_updates.clone(),
        };
        let mut config = self.config.clone();
        config.protocol = ProtocolMode::Legacy;
        let twin = Arc::new(
            Upstream::new(&self.name, config, self.settings.clone(), events)
                .signing_in(self.oauth.clone()),
        );
        tracker.spawn(twin.clone().run(stop.clone()));
        tracing::debug!(upstream = %self.name, "opening a session-era connection for session-era clients");
        while twin.state().phase == Phase::Starting {
            if phase.changed().await.is_err() {
                break;
            }
        }
        match twin.ready_peer() {
            Ok(peer) => {
                slot.twin = Some(twin.clone());
                slot.refused_at = None;
                Some((twin, peer))
            }
            Err(error) => {
                tracing::info!(
                    upstream = %self.name,
                    %error,
                    "it does not speak the session era: session-era clients share its 2026-07-28 connection"
                );
                slot.refused_at = Some(Instant::now());
                None
            }
        }
    }
}
