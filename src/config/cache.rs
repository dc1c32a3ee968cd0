//! `cache:`: how the gateway keeps what upstreams said may be kept (SEP-2549's `ttlMs` and
//! `cacheScope` on lists and `resources/read`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The gateway's cache of `resources/read` answers, and how long any list or answer may be
/// taken as fresh.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Keep `resources/read` answers an upstream gave a positive `ttlMs`, and serve them
    /// again until then: `public` ones to every caller, `private` ones only to the principal
    /// they were read for (never to a caller without one).
    pub enabled: bool,
    /// What the kept answers may take, in MiB (their JSON size); the answers closest to
    /// going stale make room first.
    pub max_mib: usize,
    /// No list or answer is taken as fresh for longer than this, whatever its `ttlMs`.
    pub max_ttl_secs: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_mib: 64,
            max_ttl_secs: 3600,
        }
    }
}

impl CacheConfig {
    pub fn max_ttl(&self) -> Duration {
        Duration::from_secs(self.max_ttl_secs)
    }

    pub fn max_bytes(&self) -> usize {
        self.max_mib.saturating_mul(1024 * 1024)
    }
}
