//! Sessions that sleep: a quiet streamable HTTP session gives back rmcp's half of it.
//!
//! rmcp keeps a worker task, a service task and half a dozen channels for each session, about
//! 90 KB, also while the session does nothing. So a session with nothing in flight, no stream
//! open and no request for `timeouts.session_sleep_secs` is put to sleep: rmcp's session is
//! closed, and the book keeps the session's seat, owner and the client's `initialize`
//! (rmcp's `SessionState`). Its next request wakes it: rmcp finds the session unknown, asks
//! the book (its `SessionStore`) for the state, and replays `initialize` and
//! `notifications/initialized` on a new session under the same id before it serves the
//! request. What the replay does not bring back (the client's log level) goes to the
//! gateway in the waking request's extensions ([`Waking`]).
//!
//! The gateway vetoes sleep for a session that holds resource subscriptions or upstream
//! connections of its own, which closing rmcp's session would end. A session with a request in
//! flight or one of rmcp's streams open (a call's event stream, resumed) is not quiet; its
//! client's GET stream is the book's, and stays open while it sleeps (see `listening`).

use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};

use super::SessionBook;
use crate::{gateway::Waking, sync::lock};

impl SessionBook {
    /// The sessions quiet for the sleep time: awake, initialized, nothing in flight, none of
    /// rmcp's streams open.
    pub(super) fn quiet(&self) -> Vec<SessionId> {
        if self.gateway.is_none() {
            return Vec::new();
        }
        let after = self.limits.sleep;
        lock(&self.state)
            .http
            .iter()
            .filter(|(_, session)| {
                session.asleep.is_none()
                    && session.restore.is_some()
                    && session.in_flight == 0
                    && session.streams == 0
                    && session.active.elapsed() >= after
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Puts session `id` to sleep, unless the gateway vetoes it or it is no longer quiet.
    pub(super) async fn put_to_sleep(&self, id: &SessionId) {
        let Some(gateway) = &self.gateway else { return };
        let Some((waking, number)) = gateway.may_sleep(id) else {
            return;
        };
        {
            let mut book = lock(&self.state);
            let quiet = book
                .http
                .get_mut(id)
                .filter(|session| session.in_flight == 0 && session.streams == 0);
            let Some(session) = quiet else {
                drop(book);
                gateway.woke();
                return;
            };
            session.asleep = Some(waking);
            session.falling = true;
            // Its waking replays the client's `initialize` and `initialized`.
            session.initialized = false;
        }
        match self.sleeping_listener(id) {
            Some(listener) => gateway.listening_asleep(Arc::from(&**id), listener),
            None => gateway.asleep_unheard(Arc::from(&**id)),
        }
        // Counted asleep from now, not also awake until rmcp's half of it has ended. Only
        // once its listener is in place: a catalog change meanwhile reaches the client
        // through one of the two, if through both it says the same twice. By its number: a
        // request may have restored it under its id already.
        gateway.forget_session(number);
        tracing::debug!("a quiet session goes to sleep");
        if let Err(error) = self.local.close_session(id).await {
            tracing::debug!(%error, "closing rmcp's half of a sleeping session");
        }
    }

    /// Whether session `id` is asleep.
    pub(super) fn is_asleep(&self, id: &str) -> bool {
        self.waking(id).is_some()
    }

    /// What the request that wakes session `id` takes to the gateway; `None` if it is awake.
    pub fn waking(&self, id: &str) -> Option<Waking> {
        lock(&self.state).http.get(id)?.asleep
    }

    /// Whether rmcp's session `id` ended because it went to sleep (rmcp says so once, when
    /// its session's task ends): the session itself goes on.
    pub(super) fn fell_asleep(&self, id: &str) -> bool {
        lock(&self.state)
            .http
            .get_mut(id)
            .is_some_and(|session| std::mem::take(&mut session.falling))
    }

    /// Session `id` woke: rmcp restored it. `false` if the book does not know it.
    pub(super) fn woke(&self, id: &str) -> bool {
        let waking = {
            let mut book = lock(&self.state);
            let Some(session) = book.http.get_mut(id) else {
                return false;
            };
            session.active = std::time::Instant::now();
            session.asleep.take()
        };
        // Its listener stays until its new half is registered: what the catalog says
        // meanwhile goes to one of the two (`Gateway::register_session`).
        if waking.is_some()
            && let Some(gateway) = &self.gateway
        {
            gateway.woke();
        }
        true
    }
}
