//! What an upstream is at a moment: its phase, the snapshot the call path reads (its
//! connection and what it offers), and its settings resolved from the config.

use std::{path::PathBuf, sync::Arc, time::Duration};

use rmcp::{
    Peer, RoleClient,
    model::{Prompt, ProtocolVersion, Resource, ResourceTemplate, Tool},
};

use super::call::UpstreamLane;
use crate::config::{Config, UpstreamConfig};

/// Where an upstream is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// `disabled: true` in the config.
    Disabled,
    /// Spawning / connecting / handshaking.
    Starting,
    /// Serving.
    Ready,
    /// Could not start, or its connection ended, and it will be restarted soon; the reason
    /// says what happened and when the next try is.
    Degraded(String),
    /// Could not start, or its connection ended, and it is not being restarted (yet): a crash
    /// loop waits a long pause before the next try. The reason says which.
    Failed(String),
    /// Shut down by the gateway.
    Stopped,
    /// An OAuth upstream that waits for a sign-in (see `oauth`); the reason says how.
    NeedsAuthorization(String),
}

impl Phase {
    /// Why it is down, when it failed.
    pub fn failure(&self) -> Option<&str> {
        match self {
            Self::Degraded(reason) | Self::Failed(reason) | Self::NeedsAuthorization(reason) => {
                Some(reason)
            }
            _ => None,
        }
    }

    /// A stable lowercase name for logs and the health endpoint.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Degraded(_) => "degraded",
            Self::Failed(_) => "failed",
            Self::Stopped => "stopped",
            Self::NeedsAuthorization(_) => "needs_authorization",
        }
    }
}

/// A snapshot of one upstream, replaced whole on every change.
#[derive(Debug, Clone)]
pub struct UpstreamState {
    /// Different in every state published, of any upstream: what a cached answer of this
    /// connection is kept under, so that any change of it (a restart, a re-list) retires them.
    pub generation: u64,
    pub phase: Phase,
    /// The connection, while [`Phase::Ready`].
    pub peer: Option<Peer<RoleClient>>,
    /// What it offers, under its own names.
    pub tools: Arc<[Tool]>,
    /// Where in `tools` those are whose input schema marks arguments for headers (SEP-2243),
    /// found once when the list comes: most lists have none, and a call looks only here.
    pub(super) marking_tools: Arc<[usize]>,
    pub prompts: Arc<[Prompt]>,
    pub resources: Arc<[Resource]>,
    pub templates: Arc<[ResourceTemplate]>,
    /// The protocol revision negotiated with it.
    pub protocol_version: Option<ProtocolVersion>,
    /// The gateway's own lane on the connection, for a stdio upstream (see `lane`).
    pub lane: Option<UpstreamLane>,
}

impl UpstreamState {
    pub(super) fn new(phase: Phase) -> Self {
        Self {
            generation: 0,
            phase,
            peer: None,
            tools: Arc::from(Vec::new()),
            marking_tools: Arc::from(Vec::new()),
            prompts: Arc::from(Vec::new()),
            resources: Arc::from(Vec::new()),
            templates: Arc::from(Vec::new()),
            protocol_version: None,
            lane: None,
        }
    }
}

/// The settings of one upstream, resolved from its entry and the global defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamSettings {
    pub startup_timeout: Duration,
    pub call_timeout: Duration,
    pub shutdown_grace: Duration,
    pub max_line_bytes: usize,
    pub stderr_line_bytes: usize,
    pub max_response_bytes: usize,
    pub max_concurrent_calls: usize,
    pub base_dir: PathBuf,
    /// A user's own connection (`credentials: per-user`) unused this long is closed.
    pub own_connection_idle: Duration,
    /// No list is taken as fresh for longer than this, whatever its `ttlMs`.
    pub max_cache_ttl: Duration,
}

impl UpstreamSettings {
    pub fn resolve(config: &Config, upstream: &UpstreamConfig) -> Self {
        Self {
            startup_timeout: upstream.startup_timeout(config.timeouts.startup()),
            call_timeout: upstream.call_timeout(config.timeouts.call()),
            shutdown_grace: config.timeouts.shutdown_grace(),
            max_line_bytes: config.limits.max_line_bytes,
            stderr_line_bytes: config.limits.stderr_line_bytes,
            max_response_bytes: config.limits.max_line_bytes,
            max_concurrent_calls: upstream
                .max_concurrent_calls
                .unwrap_or(config.limits.max_concurrent_calls),
            base_dir: config.base_dir.clone(),
            own_connection_idle: config.timeouts.session_idle(),
            max_cache_ttl: config.cache.max_ttl(),
        }
    }
}
