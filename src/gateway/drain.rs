//! Graceful stop: calls in flight get the drain time to finish; calls that arrive meanwhile,
//! and those still running when it is over, are answered with a shutdown error instead of
//! being cut off with their connection.

use std::{
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Gateway;
use crate::error::GatewayError;

/// The calls in flight, and the switches of a drain.
#[derive(Default)]
pub(super) struct Drain {
    in_flight: AtomicUsize,
    /// Set when the drain starts: new calls are refused.
    closing: AtomicBool,
    /// Cancelled when the drain time is over: calls still running give up.
    over: CancellationToken,
    /// Told whenever a call ends.
    ended: Notify,
}

/// Counts one call in flight for as long as it lives.
pub(super) struct InFlight<'a>(&'a Drain);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.ended.notify_waiters();
    }
}

impl Drain {
    /// Admits a call, or refuses it once the drain has started.
    pub(super) fn admit(&self) -> Result<InFlight<'_>, GatewayError> {
        if self.closing.load(Ordering::Acquire) {
            return Err(GatewayError::ShuttingDown);
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok(InFlight(self))
    }

    /// Resolves when the drain time is over.
    pub(super) async fn over(&self) {
        self.over.cancelled().await;
    }

    /// Resolves when no call is in flight.
    async fn idle(&self) {
        loop {
            // Made before the count is read, so an end in between is not missed.
            let ended = self.ended.notified();
            if self.in_flight.load(Ordering::Acquire) == 0 {
                return;
            }
            ended.await;
        }
    }
}

impl Gateway {
    /// Stops taking calls, waits up to `grace` for those in flight, then makes the rest
    /// answer with [`GatewayError::ShuttingDown`] and waits (briefly) until they have.
    pub async fn drain(&self, grace: Duration) {
        let drain = &self.drain;
        drain.closing.store(true, Ordering::Release);
        let waiting = drain.in_flight.load(Ordering::Acquire);
        if waiting > 0 {
            tracing::info!(calls = waiting, ?grace, "waiting for calls in flight");
        }
        if tokio::time::timeout(grace, drain.idle()).await.is_err() {
            let left = drain.in_flight.load(Ordering::Acquire);
            tracing::warn!(
                calls = left,
                "drain time over; cancelling the calls still running"
            );
            drain.over.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(1), drain.idle()).await;
        }
    }
}
