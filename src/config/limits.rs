//! Limits and deadlines: what bounds memory, time and the share of the gateway any one
//! client can take, whatever it sends or fails to send.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Size limits that keep memory bounded whatever a peer sends.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest HTTP request body accepted on `/mcp`; larger gets 413 before it is buffered.
    pub max_body_bytes: usize,
    /// Largest single JSON-RPC line read from a stdio peer (client or upstream).
    pub max_line_bytes: usize,
    /// Deepest nesting of arrays and objects accepted in a client's message (at most 128,
    /// the JSON parser's own bound).
    pub max_json_depth: usize,
    /// Upstream stderr lines are cut to this many bytes before they reach our log.
    pub stderr_line_bytes: usize,
    /// Largest file accepted by `POST /api/v1/system/upload`.
    pub max_upload_bytes: usize,
    /// Requests one upstream may have in flight at once; more wait for a slot (within their
    /// deadline). Per upstream `max_concurrent_calls` overrides it.
    pub max_concurrent_calls: usize,
    /// Client sessions open at once (streamable HTTP and WebSocket); one more gets 503.
    pub max_sessions: usize,
    /// Client sessions one principal (API key or login) may have open at once, when
    /// `auth.enabled`; one more gets 503.
    pub max_sessions_per_principal: usize,
    /// Client sessions one client address (an IPv6 client: its /64) may have open at once,
    /// when `auth.enabled` is off and there is no principal to count by; one more gets 503.
    pub max_sessions_per_peer: usize,
    /// TCP connections open at once on the listener; one more is answered 503 and closed.
    pub max_connections: usize,
    /// TCP connections one client address (an IPv6 client: its /64) may have open at once;
    /// one more is answered 503 and closed. Behind a reverse proxy every client has the
    /// proxy's address: raise it to `max_connections` there.
    pub max_connections_per_peer: usize,
    /// The last of `max_connections` (at most a tenth of them) are kept for the health
    /// endpoint and requests with a valid credential: once only these are left, a new
    /// connection's requests without one are answered 503 and it is closed, so anonymous
    /// clients cannot take every connection.
    pub reserved_connections: usize,
    /// Bytes sent to one client and not yet taken by it; a client that falls this far
    /// behind is disconnected (one message of any size always fits in an empty queue).
    pub max_outbound_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            max_line_bytes: 16 * 1024 * 1024,
            max_json_depth: 64,
            stderr_line_bytes: 4096,
            max_upload_bytes: 16 * 1024 * 1024,
            max_concurrent_calls: 128,
            max_sessions: 10_000,
            max_sessions_per_principal: 1000,
            max_sessions_per_peer: 1000,
            max_connections: 10_000,
            max_connections_per_peer: 1000,
            reserved_connections: 100,
            max_outbound_bytes: 16 * 1024 * 1024,
        }
    }
}

impl LimitsConfig {
    /// The connections kept for health checks and requests with a credential: the configured
    /// number, but never more than a tenth of `max_connections`.
    pub fn reserved_connections(&self) -> usize {
        self.reserved_connections.min(self.max_connections / 10)
    }
}

/// Deadlines, in seconds.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsConfig {
    /// How long an upstream may take from spawn/connect to its first tool list.
    pub startup_secs: f64,
    /// How long a proxied call may take before it fails and is cancelled upstream.
    pub call_secs: f64,
    /// How long an upstream process group gets between SIGTERM and SIGKILL at shutdown.
    pub shutdown_grace_secs: f64,
    /// How long calls in flight get to finish when the gateway is told to stop.
    pub drain_secs: f64,
    /// A client session with no request for this long, and no stream open (a streamable
    /// HTTP client's GET, where it listens for notifications), is closed.
    pub session_idle_secs: f64,
    /// A streamable HTTP session that has made no request since `initialize` is closed after
    /// this long: a client that opens sessions and never uses them holds them only briefly.
    pub unused_session_idle_secs: f64,
    /// A streamable HTTP session with nothing in flight and no request for this long is put
    /// to sleep: rmcp's half of it (about 80 KB) is closed, and its next request restores it.
    /// It stays open, counted and bound to its credential, and its client's GET stream stays
    /// open.
    pub session_sleep_secs: f64,
    /// A gateway on a shared registry gives up its copy of a session it took in from there
    /// (another gateway opened it) after this long without a request: the registry keeps the
    /// session, and its next request here takes it in again (one read).
    pub session_copy_idle_secs: f64,
    /// A client that takes nothing of what we send it for this long is disconnected.
    pub client_write_stall_secs: f64,
    /// A connection must send a request's whole head (line and headers) within this long of
    /// its first byte, and a new connection must begin one within this long.
    pub header_read_secs: f64,
    /// A request's whole body must arrive within this long of its head; a slower one is
    /// answered 408 and its connection closed.
    pub body_read_secs: f64,
    /// A connection with no request in flight and no new one begun for this long is closed.
    /// Longer than clients' pools keep an idle connection (reqwest's and Go's 90 s), so that
    /// they let go of it first: one that sends as the gateway closes loses its request.
    pub connection_idle_secs: f64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            startup_secs: 30.0,
            call_secs: 60.0,
            shutdown_grace_secs: 2.0,
            drain_secs: 10.0,
            session_idle_secs: 1800.0,
            unused_session_idle_secs: 60.0,
            session_sleep_secs: 10.0,
            session_copy_idle_secs: 300.0,
            client_write_stall_secs: 30.0,
            header_read_secs: 10.0,
            body_read_secs: 60.0,
            connection_idle_secs: 120.0,
        }
    }
}

impl TimeoutsConfig {
    pub fn startup(&self) -> Duration {
        Duration::from_secs_f64(self.startup_secs)
    }
    pub fn call(&self) -> Duration {
        Duration::from_secs_f64(self.call_secs)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_grace_secs)
    }
    pub fn drain(&self) -> Duration {
        Duration::from_secs_f64(self.drain_secs)
    }
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs_f64(self.session_idle_secs)
    }
    pub fn unused_session_idle(&self) -> Duration {
        Duration::from_secs_f64(self.unused_session_idle_secs)
    }
    pub fn session_sleep(&self) -> Duration {
        Duration::from_secs_f64(self.session_sleep_secs)
    }
    pub fn session_copy_idle(&self) -> Duration {
        Duration::from_secs_f64(self.session_copy_idle_secs)
    }
    pub fn client_write_stall(&self) -> Duration {
        Duration::from_secs_f64(self.client_write_stall_secs)
    }
    pub fn header_read(&self) -> Duration {
        Duration::from_secs_f64(self.header_read_secs)
    }
    pub fn body_read(&self) -> Duration {
        Duration::from_secs_f64(self.body_read_secs)
    }
    pub fn connection_idle(&self) -> Duration {
        Duration::from_secs_f64(self.connection_idle_secs)
    }
}
