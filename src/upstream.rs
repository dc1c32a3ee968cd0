//! Connections to upstream MCP servers, one task per upstream.
//!
//! [`Upstream::run`] owns everything about one upstream: it spawns the process (stdio) or opens
//! the HTTP transport, performs the MCP handshake and the first `tools/list` within the startup
//! deadline, publishes the result, then waits for the connection to end, for a `list_changed`
//! notification (re-list) or for shutdown. Its state is an [`ArcSwap`] so the call path reads it
//! without a lock; every change is reported through the `on_change` callback, which the gateway
//! uses to rebuild its catalog. A failure of one upstream is recorded in its own state and never
//! touches another's.

mod awaited;
mod call;
mod callers;
mod client;
mod connect;
mod cookies;
mod definitions;
pub mod freshness;
mod http;
mod http_lane;
mod lane;
mod lifecycle;
pub(crate) mod line_transport;
pub mod list_changes;
mod mirrored;
pub mod oauth;
mod offer;
mod own_connections;
mod process;
mod progress;
pub mod reaper;
mod redirects;
pub(crate) mod sse;
mod state;
mod stdio;
mod stop_on_drop;
mod supervisor;
mod tap;
mod tls;
mod twin;
mod websocket;

use std::{
    future::Future,
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use arc_swap::ArcSwap;
use rmcp::{
    Peer, RoleClient,
    model::{ClientRequest, ResourceUpdatedNotificationParam},
    service::RunningService,
};
use tokio::{
    sync::{Notify, mpsc},
    task::JoinHandle,
};

use crate::{config::UpstreamConfig, error::GatewayError, sync::lock};
pub use call::{CallContext, Outgoing, ProgressSink, UpstreamLane, unreadable};
pub use callers::{Caller, CallerGuard, Callers};
use client::UpstreamClient;
use http::Affinity;
pub use http::use_our_tls_provider;
pub use http_lane::HttpLane;
use lane::StdioLane;
pub use mirrored::Mirrored;
pub use oauth::{
    OAuthVault, UpstreamAuth,
    vault::{CALLBACK_PATH, CLIENT_METADATA_PATH, CONNECT_PATH, Connect, NotTaken, SIGN_IN_TIME},
};
use offer::Offer;
use process::ChildGroup;
pub use process::{adopt_orphans, kill_every_group, raise_open_file_limit};
pub use progress::{ProgressRoutes, RouteGuard};
pub use state::{Phase, UpstreamSettings, UpstreamState};
use stdio::StderrTail;
pub use supervisor::supervise;

/// Called after every state change, with the upstream that changed.
pub type ChangeCallback = Arc<dyn Fn(&Upstream) + Send + Sync>;

/// What an upstream reports to the gateway.
#[derive(Clone)]
pub struct UpstreamEvents {
    pub on_change: ChangeCallback,
    pub resource_updates: mpsc::Sender<ResourceUpdatedNotificationParam>,
}

/// One upstream MCP server.
pub struct Upstream {
    name: Arc<str>,
    prefix: String,
    config: UpstreamConfig,
    settings: UpstreamSettings,
    state: ArcSwap<UpstreamState>,
    progress: Arc<ProgressRoutes>,
    callers: Arc<Callers>,
    /// The most verbose log level a client asked this upstream for (a rank, 0 = debug;
    /// `u8::MAX` until one asks).
    log_floor: AtomicU8,
    events: UpstreamEvents,
    last_error: std::sync::Mutex<Option<String>>,
    stderr_tail: Arc<StderrTail>,
    /// Why our side closed the current connection, if it did (see `LineTransport`).
    closed_because: line_transport::ClosedBecause,
    /// One permit per request it may have in flight.
    call_slots: tokio::sync::Semaphore,
    /// The first definition seen of each of its tools (see `pin`).
    first_definitions: definitions::FirstDefinitions,
    /// Told of every state change (see [`Upstream::settled`]).
    state_changed: Notify,
    /// Its session-era twin, for session-era clients (see `twin`).
    twin: twin::SessionTwin,
    /// A stdio upstream under `auto` that refused `initialize`: it is opened with
    /// `server/discover` from then on (see `connect::stdio_protocol`).
    refused_initialize: std::sync::atomic::AtomicBool,
    /// Its OAuth sign-in, with `oauth:` (shared with its twin and its per-session siblings).
    oauth: Option<Arc<UpstreamAuth>>,
    /// Each user's own connection, with `credentials: per-user`.
    own: own_connections::OwnConnections,
    /// The hints its lists came with (see `freshness`).
    list_hints: ArcSwap<freshness::ListHints>,
    /// Held while its stale lists are fetched again.
    freshening: tokio::sync::Mutex<()>,
    /// The list changes it announced, and whether its lists caught up (see `list_changes`).
    list_changes: Arc<list_changes::ListChanges>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the config: its headers and env may hold secrets.
        f.debug_struct("Upstream")
            .field("name", &self.name)
            .finish()
    }
}

/// Connecting and the MCP handshake, still to be awaited under the start deadline.
type Handshake =
    std::pin::Pin<Box<dyn Future<Output = Result<(Connection, Offer), String>> + Send>>;

/// A live connection and what must be cleaned up with it.
pub(crate) type Connection = RunningService<RoleClient, UpstreamClient>;

/// The child process behind a stdio upstream.
struct ChildProcess {
    group: ChildGroup,
    stderr_pump: JoinHandle<()>,
    lane: Arc<StdioLane>,
}

impl Upstream {
    pub fn new(
        name: &str,
        config: UpstreamConfig,
        settings: UpstreamSettings,
        events: UpstreamEvents,
    ) -> Self {
        let call_slots = tokio::sync::Semaphore::new(settings.max_concurrent_calls);
        let phase = if config.disabled {
            Phase::Disabled
        } else {
            Phase::Starting
        };
        Self {
            name: Arc::from(name),
            prefix: config.exposed_prefix(name),
            config,
            settings,
            state: ArcSwap::from_pointee(UpstreamState::new(phase)),
            progress: Arc::default(),
            callers: Arc::default(),
            log_floor: AtomicU8::new(u8::MAX),
            events,
            last_error: std::sync::Mutex::default(),
            stderr_tail: Arc::default(),
            closed_because: Arc::default(),
            call_slots,
            first_definitions: Default::default(),
            state_changed: Notify::new(),
            twin: twin::SessionTwin::default(),
            refused_initialize: std::sync::atomic::AtomicBool::new(false),
            oauth: None,
            own: Default::default(),
            list_hints: ArcSwap::default(),
            freshening: tokio::sync::Mutex::new(()),
            list_changes: Arc::default(),
        }
    }

    /// The same upstream, signing in with `oauth`.
    pub fn signing_in(mut self, oauth: Option<Arc<UpstreamAuth>>) -> Self {
        self.oauth = oauth;
        self
    }

    /// Its OAuth sign-in, if it has `oauth:`.
    pub fn oauth(&self) -> Option<&Arc<UpstreamAuth>> {
        self.oauth.as_ref()
    }

    /// A new, unstarted upstream of the same entry that reports to `events`: the connection
    /// of one session to an `isolation: per-session` upstream.
    pub fn sibling(&self, events: UpstreamEvents) -> Self {
        Self::new(
            &self.name,
            self.config.clone(),
            self.settings.clone(),
            events,
        )
        .signing_in(self.oauth.clone())
    }

    /// Where this upstream reports.
    pub fn events(&self) -> &UpstreamEvents {
        &self.events
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text put in front of this upstream's tool names.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    pub fn call_timeout(&self) -> Duration {
        self.settings.call_timeout
    }

    /// The deadline of `request`: a `tools/call` may have a per-tool override.
    pub fn deadline_of(&self, request: &ClientRequest) -> Duration {
        match request {
            ClientRequest::CallToolRequest(call) => self
                .config
                .tool_timeout(&call.params.name, self.settings.call_timeout),
            _ => self.settings.call_timeout,
        }
    }

    /// A slot for one request in flight (see `limits.max_concurrent_calls`); waits for one
    /// to free up when all are taken.
    pub async fn call_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.call_slots
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Resolves when no request is in flight on it: every call slot is free. Slots taken
    /// meanwhile wait behind this, so an upstream taken out of the catalog and waited on
    /// here is done with.
    pub async fn idle(&self) {
        let all = u32::try_from(self.settings.max_concurrent_calls).unwrap_or(u32::MAX);
        let _every_slot = self.call_slots.acquire_many(all).await;
    }

    /// Resolves once it is no longer starting: ready, failed, or stopped.
    pub async fn settled(&self) {
        loop {
            let changed = self.state_changed.notified();
            let mut changed = pin!(changed);
            // Registered before the state is read, so a change in between is not missed.
            changed.as_mut().enable();
            if self.state.load().phase != Phase::Starting {
                return;
            }
            changed.await;
        }
    }

    /// Where progress notifications of requests in flight on this upstream go.
    pub fn progress(&self) -> &Arc<ProgressRoutes> {
        &self.progress
    }

    /// Who answers the upstream's requests caused by our requests in flight.
    pub fn callers(&self) -> &Arc<Callers> {
        &self.callers
    }

    /// Lowers the log level wanted from this upstream to `rank`; true if that is more verbose
    /// than what it was asked for so far (and so must be asked for).
    pub fn lower_log_floor(&self, rank: u8) -> bool {
        self.log_floor.fetch_min(rank, Ordering::Relaxed) > rank
    }

    /// The current snapshot.
    pub fn state(&self) -> Arc<UpstreamState> {
        self.state.load_full()
    }

    /// The connection to send a request on, or why there is none.
    pub fn ready_peer(&self) -> Result<Peer<RoleClient>, GatewayError> {
        let state = self.state.load();
        match (&state.phase, &state.peer) {
            (Phase::Ready, Some(peer)) => Ok(peer.clone()),
            (phase, _) => Err(GatewayError::UpstreamUnavailable {
                upstream: self.name.to_string(),
                reason: phase
                    .failure()
                    .map_or_else(|| phase.as_str().to_owned(), str::to_owned),
            }),
        }
    }

    fn publish(&self, state: UpstreamState) {
        self.state.store(Arc::new(self.numbered(state)));
        self.announce();
    }

    /// `state` with a generation no state before it had, of any upstream.
    fn numbered(&self, mut state: UpstreamState) -> UpstreamState {
        static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        state.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        state
    }

    /// Tells the waiters and the gateway that its state changed.
    fn announce(&self) {
        self.state_changed.notify_waiters();
        (self.events.on_change)(self);
    }

    fn fail(&self, reason: String) {
        let reason = with_authority_hint(reason);
        tracing::error!(upstream = %self.name, "{reason}");
        *self.lock_last_error() = Some(reason.clone());
        self.publish(UpstreamState::new(Phase::Failed(reason)));
    }

    /// The most recent failure, also once it is running again.
    pub fn last_error(&self) -> Option<String> {
        self.lock_last_error().clone()
    }

    fn lock_last_error(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        lock(&self.last_error)
    }

    /// Why our side closed the current connection (a message over the size cap, a flood of
    /// garbage), if it did: what explains the failures of the calls that were in flight.
    pub fn closed_because(&self) -> Option<String> {
        lock(&self.closed_because).clone()
    }

    /// The last lines the process wrote to stderr (stdio upstreams), oldest first.
    pub fn stderr_tail(&self) -> Vec<String> {
        self.stderr_tail.lines()
    }
}

/// `reason`, and when no authority the gateway trusts signed the upstream's certificate,
/// which authorities it trusts: a team's own is the usual cause.
fn with_authority_hint(reason: String) -> String {
    if reason.contains("UnknownIssuer") {
        format!(
            "{reason}; the gateway trusts the authorities of the system's store: add the one \
             that signed it there, or name a file of authorities in SSL_CERT_FILE"
        )
    } else {
        reason
    }
}
