//! `credentials: per-user`: each user's own connection to an OAuth upstream, signed in with
//! their own token, so one user's token never serves another's request.
//!
//! A user's connection is opened at their first request there (the request waits for its
//! handshake), and opened again when it has failed or they have signed in since. It starts
//! from their kept sign-in; without one the upstream refuses it, and it waits in
//! `needs_authorization` until they sign in (the gateway tells them where). The upstream's
//! shared connection, signed in by an administrator, serves the catalog only. A user's
//! connection unused for `timeouts.session_idle_secs` is closed (their sign-in is kept, and
//! their next request opens it again); all close with the upstream.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Phase, Upstream, UpstreamEvents, stop_on_drop::StopOnDrop};
use crate::sync::lock;

/// One user's connection, once opened; locked while it opens, so one user's slow start holds
/// up no other user.
type Slot = Arc<Mutex<Option<Own>>>;

struct Own {
    upstream: Arc<Upstream>,
    /// Stops it alone.
    stop: CancellationToken,
    used: Instant,
}

/// The users' own connections to one upstream, by their `Identity::key`.
#[derive(Default)]
pub struct OwnConnections {
    slots: std::sync::Mutex<HashMap<Arc<str>, Slot>>,
    /// Stops them all with their upstream.
    stop: StopOnDrop,
}

impl Upstream {
    /// User `owner`'s own connection to this upstream, opened if need be (on `tracker`,
    /// stopped with `shutdown` or with this upstream): ready, or waiting for them to sign in
    /// (`needs_authorization`), or failed. `None` unless it is `credentials: per-user`.
    pub async fn own_connection(
        &self,
        owner: &str,
        tracker: &TaskTracker,
        shutdown: &CancellationToken,
    ) -> Option<Arc<Upstream>> {
        let shared = self.oauth.as_ref().filter(|auth| auth.per_user())?;
        let slot = {
            let mut slots = lock(&self.own.slots);
            close_idle(&mut slots, self.settings.own_connection_idle);
            slots.entry(Arc::from(owner)).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(own) = slot.as_mut() {
            own.used = Instant::now();
            let own = &own.upstream;
            let serves = match &own.state().phase {
                Phase::Ready | Phase::Starting => true,
                // Until they sign in; then it opens again, with their new token.
                Phase::NeedsAuthorization(_) => own
                    .oauth
                    .as_ref()
                    .is_some_and(|auth| auth.needed().is_some()),
                _ => false,
            };
            if serves {
                return Some(own.clone());
            }
        }
        // Their sign-in outlives a connection: one they finished is what the next one uses.
        let auth = slot
            .as_ref()
            .and_then(|own| own.upstream.oauth.clone())
            .unwrap_or_else(|| Arc::new(shared.for_owner(owner)));
        let events = UpstreamEvents {
            on_change: Arc::new(|_: &Upstream| {}),
            resource_updates: self.events.resource_updates.clone(),
        };
        let own = Arc::new(
            Upstream::new(
                &self.name,
                self.config.clone(),
                self.settings.clone(),
                events,
            )
            .signing_in(Some(auth)),
        );
        let stop = self.own.stop.under(shutdown).child_token();
        tracker.spawn(own.clone().run(stop.clone()));
        tracing::debug!(upstream = %self.name, "opening a user's own connection");
        own.settled().await;
        let opened = Own {
            upstream: own.clone(),
            stop,
            used: Instant::now(),
        };
        if let Some(replaced) = slot.replace(opened) {
            replaced.stop.cancel();
        }
        Some(own)
    }

    /// Closes user `owner`'s own connection, if it has one (its key was revoked); one still
    /// opening is waited for.
    pub async fn close_own_connection(&self, owner: &str) {
        let Some(slot) = lock(&self.own.slots).remove(owner) else {
            return;
        };
        if let Some(own) = slot.lock().await.take() {
            own.stop.cancel();
        }
    }
}

/// Closes the connections unused for `idle` (one that is opening is in use).
fn close_idle(slots: &mut HashMap<Arc<str>, Slot>, idle: Duration) {
    slots.retain(|_, slot| {
        let Ok(mut own) = slot.try_lock() else {
            return true;
        };
        match own.as_ref() {
            Some(open) if open.used.elapsed() >= idle => {
                tracing::info!(upstream = %open.upstream.name(), "closing a user's idle connection");
                if let Some(open) = own.take() {
                    open.stop.cancel();
                }
                false
            }
            _ => true,
        }
    })
}
