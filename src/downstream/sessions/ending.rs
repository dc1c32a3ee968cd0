//! How sessions end on their own: past their idle time, a copy given up once quiet, or with
//! the credential that opened them (see the module's comment, "How long").

use std::{sync::Weak, time::Duration};

use rmcp::transport::streamable_http_server::session::{SessionId, SessionManager};
use tokio_util::sync::CancellationToken;

use super::SessionBook;
use crate::{security::Lease, sync::lock};

impl SessionBook {
    /// The copies of sessions taken in from the registry that have slept with no request for
    /// `timeouts.session_copy_idle_secs`: this gateway gives them up, and their seats with
    /// them. A session's requests land on any replica behind a balancer, so each replica
    /// would otherwise keep a copy of every session it ever served until the idle time.
    pub(super) fn copies_to_give_up(&self) -> Vec<(SessionId, Option<i64>)> {
        let after = self.limits.copy_idle;
        lock(&self.state)
            .http
            .iter()
            .filter(|(_, session)| {
                session.taken_in
                    && session.asleep.is_some()
                    && !session.falling
                    && session.in_flight == 0
                    && session.listening == 0
                    && session.active.elapsed() >= after
            })
            .map(|(id, session)| (id.clone(), session.touched_at))
            .collect()
    }

    /// The HTTP sessions past their idle time, each with when it was last marked used in the
    /// registry: never used and opened longer than the unused idle time ago, or with nothing
    /// in flight and no request for the idle time.
    fn expired(&self) -> Vec<(SessionId, Option<i64>)> {
        let limits = &self.limits;
        lock(&self.state)
            .http
            .iter()
            .filter_map(|(id, session)| {
                let unused = !session.used && session.opened.elapsed() >= limits.unused_idle;
                // A client listening on its stream is using its session.
                let idle = session.in_flight == 0
                    && session.streams == 0
                    && session.listening == 0
                    && session.active.elapsed() >= limits.idle;
                (unused || idle).then(|| (id.clone(), session.touched_at))
            })
            .collect()
    }
}

/// Closes session `id` when `lease` ends, unless it closes first.
pub(super) async fn end_with_lease(
    book: Weak<SessionBook>,
    id: SessionId,
    lease: Lease,
    closed: CancellationToken,
    stop: CancellationToken,
) {
    let why = tokio::select! {
        why = lease.ended() => why,
        () = closed.cancelled() => return,
        () = stop.cancelled() => return,
    };
    if let Some(book) = book.upgrade() {
        tracing::info!("{why}; closing the session it opened");
        if let Err(error) = book.close_session(&id).await {
            tracing::debug!(%error, "closing a session whose credential ended");
        }
        book.forget_shared(&id).await;
    }
}

/// Closes, every little while, the sessions past their idle time.
pub(super) async fn reap_idle(book: Weak<SessionBook>, stop: CancellationToken) {
    let Some(every) = book.upgrade().map(|book| {
        let limits = &book.limits;
        let shorter = limits.unused_idle.min(limits.idle).min(limits.sleep);
        (shorter / 4).clamp(Duration::from_millis(100), Duration::from_secs(10))
    }) else {
        return;
    };
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = stop.cancelled() => return,
        }
        let Some(book) = book.upgrade() else { return };
        let expired = book.expired();
        if !expired.is_empty() {
            tracing::debug!(sessions = expired.len(), "closing idle sessions");
        }
        for (id, touched_at) in expired {
            let _ = book.close_session(&id).await;
            if let Some(at) = touched_at {
                book.forget_if_unused_since(&id, at).await;
            }
        }
        for id in book.quiet() {
            book.put_to_sleep(&id).await;
        }
        book.give_up_copies().await;
        book.check_shared().await;
    }
}
