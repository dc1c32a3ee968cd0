//! Log messages from upstreams: each client gets the ones its calls caused (routed like
//! progress, see `upstream::Callers::log_target`), at or above the level it set.
//!
//! A session-era client sets its level with `logging/setLevel`; the gateway keeps it per
//! session and asks each session-era upstream for the most verbose level any client wanted
//! (a shared connection has one level, so the gateway filters per client on the way out).
//! A 2026-07-28 client puts `io.modelcontextprotocol/logLevel` in each request's `_meta`,
//! which the gateway passes on to 2026-07-28 upstreams.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era clients and servers use it"
)]

use std::sync::atomic::{AtomicU8, Ordering};

use rmcp::model::{ClientRequest, LoggingLevel, SetLevelRequest, SetLevelRequestParams};

use super::{Gateway, Origin, forward::send};

/// Levels from most to least verbose, so that a level's rank is its index.
const LEVELS: [LoggingLevel; 8] = [
    LoggingLevel::Debug,
    LoggingLevel::Info,
    LoggingLevel::Notice,
    LoggingLevel::Warning,
    LoggingLevel::Error,
    LoggingLevel::Critical,
    LoggingLevel::Alert,
    LoggingLevel::Emergency,
];

/// 0 (debug) … 7 (emergency).
pub fn rank(level: LoggingLevel) -> u8 {
    LEVELS
        .iter()
        .position(|known| *known == level)
        .unwrap_or_default() as u8
}

/// A session's level: unset (everything the upstreams send) until the client sets one.
#[derive(Debug)]
pub struct SessionLogLevel(AtomicU8);

const UNSET: u8 = u8::MAX;

impl Default for SessionLogLevel {
    fn default() -> Self {
        Self(AtomicU8::new(UNSET))
    }
}

impl SessionLogLevel {
    pub fn set(&self, level: LoggingLevel) {
        self.0.store(rank(level), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<LoggingLevel> {
        LEVELS
            .get(usize::from(self.0.load(Ordering::Relaxed)))
            .copied()
    }

    /// Whether a message of `level` goes to this session.
    pub fn admits(&self, level: LoggingLevel) -> bool {
        let floor = self.0.load(Ordering::Relaxed);
        floor == UNSET || rank(level) >= floor
    }
}

impl Gateway {
    /// A client wants log messages at `level`: asks each ready session-era upstream that logs
    /// for it, if no client asked that upstream for as much before.
    pub fn want_logs_at(&self, level: LoggingLevel) {
        for upstream in self.upstreams.load().iter() {
            let Ok(peer) = upstream.ready_peer() else {
                continue;
            };
            let logs = peer.peer_info().is_some_and(|info| {
                info.protocol_version.has_initialize() && info.capabilities.logging.is_some()
            });
            if !logs || !upstream.lower_log_floor(rank(level)) {
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let request = ClientRequest::SetLevelRequest(SetLevelRequest::new(
                    SetLevelRequestParams::new(level),
                ));
                if let Err(error) = send(&upstream, &peer, request, &Origin::default()).await {
                    tracing::debug!(upstream = %upstream.name(), %error, "logging/setLevel failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_admits_everything_until_it_sets_a_level_then_that_and_above() {
        let level = SessionLogLevel::default();
        assert!(level.admits(LoggingLevel::Debug));
        assert_eq!(level.get(), None);
        level.set(LoggingLevel::Warning);
        assert_eq!(level.get(), Some(LoggingLevel::Warning));
        assert!(!level.admits(LoggingLevel::Info));
        assert!(level.admits(LoggingLevel::Warning));
        assert!(level.admits(LoggingLevel::Emergency));
    }
}
