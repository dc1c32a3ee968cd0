//! How connections that belong to an upstream connection stop (its session-era twin, its
//! users' own connections): with the gateway, or when that upstream is dropped (retired by a
//! reload, or the gateway stops), whichever comes first.

use std::sync::OnceLock;

use tokio_util::sync::CancellationToken;

/// A child of the gateway's shutdown, made when first asked for, cancelled on drop.
#[derive(Default)]
pub struct StopOnDrop(OnceLock<CancellationToken>);

impl StopOnDrop {
    /// The stop, made a child of `shutdown` the first time.
    pub fn under(&self, shutdown: &CancellationToken) -> &CancellationToken {
        self.0.get_or_init(|| shutdown.child_token())
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = self.0.get() {
            stop.cancel();
        }
    }
}
