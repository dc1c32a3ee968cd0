//! How upstreams are restarted after they fail.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Restart with exponential backoff and jitter; a crash loop pauses restarts for a while.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RestartConfig {
    /// The first wait after a failure; it doubles with each failure in a row.
    pub initial_backoff_secs: f64,
    /// The longest wait between two tries.
    pub max_backoff_secs: f64,
    /// An upstream that stayed up this long counts as healthy: the backoff starts over.
    pub healthy_after_secs: f64,
    /// This many failures in a row, each before `healthy_after_secs`, make a crash loop...
    pub crash_loop_failures: u32,
    /// ...after which the next try waits this long.
    pub crash_loop_pause_secs: f64,
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            initial_backoff_secs: 0.5,
            max_backoff_secs: 30.0,
            healthy_after_secs: 60.0,
            crash_loop_failures: 5,
            crash_loop_pause_secs: 300.0,
        }
    }
}

impl RestartConfig {
    pub fn initial_backoff(&self) -> Duration {
        Duration::from_secs_f64(self.initial_backoff_secs)
    }
    pub fn max_backoff(&self) -> Duration {
        Duration::from_secs_f64(self.max_backoff_secs)
    }
    pub fn healthy_after(&self) -> Duration {
        Duration::from_secs_f64(self.healthy_after_secs)
    }
    pub fn crash_loop_pause(&self) -> Duration {
        Duration::from_secs_f64(self.crash_loop_pause_secs)
    }
}
