//! Sessions that any gateway on the registry can continue: behind a load balancer with no
//! affinity, a session-era session opened on one replica goes on when its next request lands
//! on another, and after the replica that opened it is killed (or, on one gateway, after a
//! restart).
//!
//! **Stored.** Once a session's `initialize` is answered, the book stores it in the registry
//! (`StoredSession`): the client's `initialize` and the credential the session is bound to;
//! later its log level. The row is written before the client has the session's id, so no
//! request can name a session the other gateways cannot find.
//!
//! **Adopted.** A request naming a session this gateway does not know is looked for there
//! ([`SessionBook::stored_elsewhere`]). Found, and with the credential it is bound to (for any
//! other the session does not exist: 404, as here), it is taken in on a seat of this gateway's
//! own limits, asleep ([`SessionBook::adopt`]); the request then wakes it as it wakes a session
//! that slept here (see `sleep`): rmcp replays the client's `initialize`, and the gateway sets
//! the client's log level and makes upstream connections of the session's own again.
//!
//! **Ended.** A client's `DELETE`, or the end of the credential the session is bound to,
//! removes the row and is announced (`LISTEN/NOTIFY`): every gateway that continued the
//! session ends its copy at once. A gateway that stops, or closes its copy after its idle time,
//! ends only its copy, so the others go on; the row goes when this gateway was the last to
//! use it. Every [`CHECK`] (sooner with a short idle time) each gateway marks the sessions
//! used here as used, ends its copies of sessions no longer stored (an announcement missed,
//! and on SQLite, which has none) and removes the rows nobody has used for the idle time.
//!
//! **What does not travel.** A request of the gateway to the client (sampling, elicitation,
//! roots) is answered where it was asked: an answer that reaches a gateway that did not ask
//! is refused with a clear error, and when the asking gateway dies its call ends with the
//! client's connection to it. Resource subscriptions live on the gateway that made them.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era clients set a level that travels with the session"
)]

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use rmcp::{
    model::{InitializeRequestParams, LoggingLevel},
    transport::streamable_http_server::session::{
        SessionId, SessionManager, SessionState, SessionStore, SessionStoreError,
    },
};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::{Seat, SessionBook};
use crate::{
    gateway::Waking,
    registry::{Registry, RegistryError, StoredSession, next_announcement, now_ms},
    sync::lock,
};

/// How often, at most, a gateway marks the sessions used here and checks that its copies are
/// still stored (more often when sessions idle out sooner).
pub const CHECK: Duration = Duration::from_secs(10);

/// How long a large answer passed on to another gateway waits for it (ms).
const PASSED_ANSWERS_KEPT_MS: i64 = 60_000;

/// How often the gateways check the sessions they share, for sessions that idle out after
/// `idle`: well within the idle time, so that a session in use on one gateway never looks idle
/// to another.
pub fn check_every(idle: Duration) -> Duration {
    CHECK.min(idle / 4)
}

/// The registry under shared sessions, and when they were last checked.
pub(super) struct Shared {
    registry: Registry,
    /// How long a session nobody uses lasts.
    idle: Duration,
    /// How often they are checked ([`check_every`]).
    every: Duration,
    checked: Mutex<Instant>,
}

impl Shared {
    pub(super) fn new(registry: Registry, idle: Duration) -> Self {
        Self {
            registry,
            idle,
            every: check_every(idle),
            checked: Mutex::new(Instant::now()),
        }
    }

    /// The idle time in ms.
    fn idle_ms(&self) -> i64 {
        i64::try_from(self.idle.as_millis()).unwrap_or(i64::MAX)
    }

    /// When a session last used before is idle everywhere (ms since the epoch).
    fn idle_before(&self, now: i64) -> i64 {
        now.saturating_sub(self.idle_ms())
    }
}

/// Whether `id` could be one of ours (rmcp's: a UUID's 36 characters): anything else is not
/// looked for in the registry.
fn looks_like_a_session_id(id: &str) -> bool {
    id.len() == 36
        && id
            .bytes()
            .all(|byte| byte.is_ascii_hexdigit() || byte == b'-')
}

impl SessionBook {
    /// Session `id` as the registry stores it, when this gateway does not know it; `None` if
    /// it knows it, or nobody does.
    pub async fn stored_elsewhere(&self, id: &str) -> Result<Option<StoredSession>, RegistryError> {
        let Some(shared) = &self.shared else {
            return Ok(None);
        };
        if lock(&self.state).http.contains_key(id) || !looks_like_a_session_id(id) {
            return Ok(None);
        }
        // Boxed: a registry's read is a large future, and every request of a session on
        // this gateway awaits this function without coming here.
        Box::pin(shared.registry.session(id, shared.idle_before(now_ms()))).await
    }

    /// Takes in session `id`, which another gateway opened (see the module's comment), on
    /// `seat`, asleep: the request naming it wakes it.
    pub async fn adopt(&self, id: &str, seat: Seat, stored: StoredSession) {
        let Some(shared) = &self.shared else { return };
        let initialize = match serde_json::from_str::<InitializeRequestParams>(&stored.initialize) {
            Ok(initialize) => initialize,
            Err(error) => {
                tracing::warn!(%error, "a stored session's initialize does not read; it cannot be continued here");
                return;
            }
        };
        let log_level = stored
            .log_level
            .and_then(|level| serde_json::from_value::<LoggingLevel>(level.into()).ok());
        let id = SessionId::from(id);
        let now = now_ms();
        let adopted = (SessionState::new(initialize), Waking { log_level }, now);
        if !self.record(&id, seat, Some(adopted)) {
            // Another request for it took it in meanwhile.
            return;
        }
        if let Some(gateway) = &self.gateway {
            gateway.asleep_from_elsewhere();
            // Its client's stream is not open here yet, if at all: what the catalog says
            // until it wakes is kept for it.
            gateway.asleep_unheard(Arc::from(&*id));
        }
        tracing::debug!("continuing a session another gateway opened");
        crate::metrics::metrics().sessions_continued.inc();
        // Used here: not forgotten as unused by the gateway that opened it.
        if let Err(error) = shared
            .registry
            .touch_sessions(std::slice::from_ref(&id), now)
            .await
        {
            tracing::warn!(%error, "cannot mark a continued session used in the registry");
        }
    }

    /// Gives up the copies of sessions taken in that have been asleep for a while (see
    /// [`SessionBook::copies_to_give_up`]). Their rows stay, marked used as late as they were
    /// used here, so that the idle time of each counts from its last request anywhere.
    pub(super) async fn give_up_copies(&self) {
        let copies = self.copies_to_give_up();
        if copies.is_empty() {
            return;
        }
        if let Some(shared) = &self.shared {
            // Each was last used at least the copy's idle time ago, and at most a reaping
            // round before that.
            let used_at = now_ms().saturating_sub(
                i64::try_from(self.limits.copy_idle.as_millis()).unwrap_or(i64::MAX),
            );
            let stale: Vec<Arc<str>> = copies
                .iter()
                .filter(|(_, touched_at)| touched_at.is_some_and(|at| at < used_at))
                .map(|(id, _)| id.clone())
                .collect();
            if let Err(error) = shared.registry.touch_sessions(&stale, used_at).await {
                tracing::debug!(%error, "cannot mark sessions given up here as used");
            }
        }
        for (id, _) in copies {
            let _ = self.close_session(&id).await;
            crate::metrics::metrics().session_copies_given_up.inc();
        }
    }

    /// Keeps the log level the client of session `id` set, for the gateways that continue it.
    pub(super) async fn remember_log_level(&self, id: &str, level: LoggingLevel) {
        let Some(shared) = &self.shared else { return };
        let Ok(serde_json::Value::String(level)) = serde_json::to_value(level) else {
            return;
        };
        if let Err(error) = shared.registry.set_session_log_level(id, &level).await {
            tracing::warn!(%error, "cannot keep a session's log level in the registry");
        }
    }

    /// Session `id` ended for good (its client ended it, or its credential ended): every
    /// gateway ends its copy.
    pub(super) async fn forget_shared(&self, id: &str) {
        let Some(shared) = &self.shared else { return };
        if let Err(error) = shared.registry.forget_session(id).await {
            tracing::warn!(%error, "cannot remove an ended session from the registry; it expires there after its idle time");
        }
    }

    /// This gateway closed session `id`, idle here: every gateway ends it if none marked it
    /// used since this one did, `at`.
    pub(super) async fn forget_if_unused_since(&self, id: &str, at: i64) {
        let Some(shared) = &self.shared else { return };
        if let Err(error) = shared.registry.forget_session_unused_since(id, at).await {
            tracing::debug!(%error, "cannot remove an idle session from the registry");
        }
    }

    /// Every [`CHECK`]: marks the sessions used here since the last check as used, ends the
    /// copies of sessions no longer stored, and removes the rows idle for the idle time.
    pub(super) async fn check_shared(&self) {
        let Some(shared) = &self.shared else { return };
        let since = {
            let mut checked = lock(&shared.checked);
            if checked.elapsed() < shared.every {
                return;
            }
            std::mem::replace(&mut *checked, Instant::now())
        };
        let registry = &shared.registry;
        let now = now_ms();
        // A row must not look idle while its session is in use anywhere; marking it used again
        // once a quarter of the idle time has passed keeps it well clear of that, and keeps
        // the registry's writes at one per session per quarter idle time, however busy.
        let stale = now.saturating_sub(shared.idle_ms() / 4);
        let (used, quiet): (Vec<_>, Vec<_>) = {
            let book = lock(&self.state);
            book.http
                .iter()
                .filter_map(|(id, session)| {
                    let touched_at = session.touched_at?;
                    // Used since the last check, or its client listening here.
                    let used =
                        session.active > since || session.streams > 0 || session.listening > 0;
                    Some((id.clone(), used && touched_at <= stale))
                })
                .partition(|(_, used)| *used)
        };
        let used: Vec<SessionId> = used.into_iter().map(|(id, _)| id).collect();
        let quiet: Vec<SessionId> = quiet.into_iter().map(|(id, _)| id).collect();
        let stored = match (
            registry.touch_sessions(&used, now).await,
            registry.sessions_stored(&quiet).await,
        ) {
            (Ok(mut used), Ok(quiet)) => {
                used.extend(quiet);
                used.into_iter().collect::<HashSet<_>>()
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot check the shared sessions in the registry");
                return;
            }
        };
        {
            let mut book = lock(&self.state);
            for id in &used {
                if let Some(session) = book.http.get_mut(id)
                    && stored.contains(&**id)
                {
                    session.touched_at = Some(now);
                }
            }
        }
        for id in used.iter().chain(&quiet) {
            if !stored.contains(&**id) {
                tracing::debug!("a session was ended on another gateway; ending it here");
                let _ = self.close_session(id).await;
            }
        }
        // Large answers passed on to a gateway that stopped before it took them.
        if let Err(error) = registry
            .forget_passed_answers(now - PASSED_ANSWERS_KEPT_MS)
            .await
        {
            tracing::debug!(%error, "cannot remove stale passed answers from the registry");
        }
        match registry.forget_idle_sessions(shared.idle_before(now)).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::debug!(forgotten, "idle sessions removed from the registry"),
            Err(error) => tracing::warn!(%error, "cannot remove idle sessions from the registry"),
        }
    }
}

/// Ends this gateway's copy of every session announced ended, until `stop`.
pub(super) async fn end_announced(
    book: std::sync::Weak<SessionBook>,
    mut closed: broadcast::Receiver<Arc<str>>,
    stop: CancellationToken,
) {
    let missed = "sessions ended elsewhere, found at the next check";
    while let Some(id) = next_announcement(&mut closed, &stop, missed).await {
        let Some(book) = book.upgrade() else { return };
        if lock(&book.state).http.contains_key(&*id) {
            tracing::debug!("a session was ended on another gateway; ending it here");
            let _ = book.close_session(&SessionId::from(&*id)).await;
        }
    }
}

/// The book is where rmcp keeps what restores a session (see `sleep`), and it keeps it in the
/// registry too, for the other gateways.
#[async_trait::async_trait]
impl SessionStore for SessionBook {
    /// The state of session `id` while it sleeps (also when another gateway opened it); `None`
    /// for one closed or never opened (rmcp then answers 404).
    async fn load(&self, id: &str) -> Result<Option<SessionState>, SessionStoreError> {
        let book = lock(&self.state);
        Ok(book
            .http
            .get(id)
            .filter(|session| session.asleep.is_some())
            .and_then(|session| session.restore.clone()))
    }

    /// Called by rmcp after each `initialize`, before the client has the session's id: the
    /// session may sleep from now on, and other gateways may continue it once it is stored.
    async fn store(&self, id: &str, state: &SessionState) -> Result<(), SessionStoreError> {
        let now = now_ms();
        let credential = {
            let mut book = lock(&self.state);
            let Some(session) = book.http.get_mut(id) else {
                return Ok(());
            };
            session.restore = Some(state.clone());
            session.credential
        };
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let initialize = serde_json::to_string(&state.initialize_params)?;
        match shared
            .registry
            .save_session(id, credential, &initialize, now)
            .await
        {
            Ok(()) => {
                if let Some(session) = lock(&self.state).http.get_mut(id) {
                    session.touched_at = Some(now);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot store a session in the registry: only this gateway can continue it");
            }
        }
        Ok(())
    }

    /// A client ended session `id` (`DELETE`): every gateway ends its copy. (The book forgot
    /// it when it closed, see `SessionBook::closed`.)
    async fn delete(&self, id: &str) -> Result<(), SessionStoreError> {
        self.forget_shared(id).await;
        Ok(())
    }
}
