//! The client sessions of the HTTP front door (streamable HTTP and WebSocket): how many there
//! are, whose they are, and how long they may last.
//!
//! **Seats.** A session takes a seat before it opens, and gives it back when it ends. Taking
//! one is a single check-and-count under a lock, so `limits.max_sessions` holds exactly, also
//! when thousands of `initialize`s race. Each seat has a holder: the credential that opened
//! it when auth is on (`limits.max_sessions_per_principal`), else the client's address
//! (`limits.max_sessions_per_peer`), so one client cannot take every seat either way.
//!
//! **Which session is whose.** [`SessionBook`] is the session manager rmcp's streamable HTTP
//! service runs on: it keeps rmcp's own [`LocalSessionManager`] inside and sees every session
//! open (the front door hands it the seat through [`opening`]), every request in it, and every
//! close, whatever the cause (DELETE, idle expiry, the client gone, shutdown). A session id is
//! only good with the credential that opened it; for anyone else it does not exist.
//!
//! **How long.** A session with nothing in flight and no request for
//! `timeouts.session_idle_secs` is closed. The book keeps that time, not rmcp: the HTTP door
//! serves some requests without rmcp (see `http/session_call.rs`), and they count as much as
//! those rmcp sees. A session that has made no request since `initialize` is closed sooner,
//! after `timeouts.unused_session_idle_secs`: opening sessions and leaving them costs a client
//! its seats only briefly. And a session opened with a credential ends when the credential does
//! (revoked, logged out, expired): its [`Lease`] is watched, and the session is closed, its
//! streams with it, the moment it ends.
//!
//! **Sleep.** A quiet session gives back rmcp's half of it until its next request (see
//! [`sleep`]), also while its client listens on its GET stream (see [`listening`]).
//!
//! [`Lease`]: crate::security::Lease

mod ending;
mod listening;
mod manager;
mod marks;
mod notices;
mod seats;
mod shared;
mod sleep;

pub use seats::{Holder, Refusal, Seat, opening};
pub use shared::check_every;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use rmcp::transport::streamable_http_server::session::{
    SessionId, SessionState, local::LocalSessionManager,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    gateway::{Gateway, Waking},
    maps::shrink,
    registry::{Changes, Registry},
    sync::lock,
};
use ending::{end_with_lease, reap_idle};

/// The limits on seats.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max: usize,
    pub per_principal: usize,
    pub per_peer: usize,
    /// How long a session that made no request after `initialize` is kept.
    pub unused_idle: Duration,
    /// How long a session with no request at all is kept (rmcp closes it).
    pub idle: Duration,
    /// How long a session stays awake with nothing in flight (its GET stream may be open).
    pub sleep: Duration,
    /// How long a copy of a session taken in from the registry is kept without a request.
    pub copy_idle: Duration,
}

/// The client sessions, and rmcp's session manager underneath.
pub struct SessionBook {
    local: LocalSessionManager,
    limits: SessionLimits,
    state: Mutex<Book>,
    /// Lease watchers and the reaper of unused sessions.
    tasks: TaskTracker,
    stop: CancellationToken,
    me: Weak<SessionBook>,
    /// Says which sessions may sleep; without it, none does.
    gateway: Option<Arc<Gateway>>,
    /// The registry, when sessions are kept there for other gateways (see [`shared`]).
    shared: Option<shared::Shared>,
}

#[derive(Default)]
struct Book {
    /// Seats taken: open sessions and those opening.
    taken: usize,
    /// Keyed by the client's address or credential: std's hash, which no client can make
    /// collide.
    by_holder: HashMap<Holder, usize>,
    /// Keyed by the ids the gateway gave (a client's unknown id is only looked up): a fast
    /// hash.
    http: foldhash::HashMap<SessionId, HttpSession>,
}

struct HttpSession {
    holder: Holder,
    /// The token that opened it, when auth is on: only that token may use it.
    credential: Option<i64>,
    opened: Instant,
    /// Whether it has made a request since `initialize`.
    used: bool,
    /// When its last request arrived or ended.
    active: Instant,
    /// Its requests in flight: while there are any, it is not idle.
    in_flight: usize,
    /// Its streams open outside a request that are rmcp's (the resumption of a request's
    /// stream): while there are any, it does not sleep.
    streams: usize,
    /// Its client's GET streams, which the book holds (see [`listening`]): they keep it in
    /// use, not awake.
    listening: usize,
    /// Where the latest of them goes, while its client listens.
    listener: Option<listening::StreamSender>,
    /// What restores it after sleep: the client's `initialize`, once answered.
    restore: Option<SessionState>,
    /// Whether rmcp's half of it had the client's `notifications/initialized` (see
    /// [`SessionBook::initialized_elsewhere`]).
    initialized: bool,
    /// Set while it sleeps: what its waking request takes to the gateway.
    asleep: Option<Waking>,
    /// Set from when it goes to sleep until rmcp's session has ended (see `fell_asleep`).
    falling: bool,
    /// When this gateway last marked it used in the registry (ms since the epoch), if the
    /// registry has it, so that other gateways can continue it (see [`shared`]).
    touched_at: Option<i64>,
    /// Whether it was taken in from the registry (another gateway, or this one before a
    /// restart, opened it): a copy, given up once asleep for a while (see
    /// [`SessionBook::copies_to_give_up`]).
    taken_in: bool,
    /// Cancelled when it closes, to end its lease watcher.
    closed: CancellationToken,
}

impl SessionBook {
    /// The book, with sessions closed after `limits.idle` without a request, and put to
    /// sleep after `limits.sleep` when `gateway` allows it; kept in `shared`'s registry for
    /// the other gateways on it, whose ends it follows there. Its background work runs on
    /// `tracker` until `stop`.
    pub fn new(
        limits: SessionLimits,
        gateway: Option<Arc<Gateway>>,
        shared: Option<(Registry, &Changes)>,
        tracker: &TaskTracker,
        stop: &CancellationToken,
    ) -> Arc<Self> {
        let mut local = LocalSessionManager::default();
        // The book closes idle sessions (see the module's comment).
        local.session_config.keep_alive = None;
        let idle = limits.idle;
        let book = Arc::new_cyclic(|me| Self {
            local,
            limits,
            state: Mutex::default(),
            tasks: tracker.clone(),
            stop: stop.clone(),
            me: me.clone(),
            gateway,
            shared: shared
                .as_ref()
                .map(|(registry, _)| shared::Shared::new(registry.clone(), idle)),
        });
        tracker.spawn(reap_idle(Arc::downgrade(&book), stop.clone()));
        if let Some((_, changes)) = shared {
            tracker.spawn(shared::end_announced(
                Arc::downgrade(&book),
                changes.closed_sessions(),
                stop.clone(),
            ));
            tracker.spawn(notices::deliver_announced(
                Arc::downgrade(&book),
                changes.session_notices(),
                stop.clone(),
            ));
        }
        book
    }

    /// Whether credential `token` may use HTTP session `id`: it opened it, or nobody with a
    /// credential did.
    pub fn may_use(&self, id: &str, token: i64) -> bool {
        lock(&self.state)
            .http
            .get(id)
            .and_then(|session| session.credential)
            .is_none_or(|owner| owner == token)
    }

    /// Records HTTP session `id`, opened on the seat of the `initialize` being served (or, if
    /// there is none, on one taken regardless of the limits, so every session is counted).
    fn opened(&self, id: &SessionId) {
        let seat = seats::take_opening();
        let seat = match seat {
            Some(seat) => seat,
            None => {
                tracing::debug!("a session opened without a seat; counted anyway");
                self.seat_regardless()
            }
        };
        self.record(id, seat, None);
    }

    /// Records HTTP session `id` on `seat`; asleep with `adopted` (what restores it, and what
    /// its waking request takes to the gateway) when it was opened on another gateway (see
    /// [`shared`]). `false`, and the seat given back, if the book already has it.
    fn record(
        &self,
        id: &SessionId,
        mut seat: Seat,
        adopted: Option<(SessionState, Waking, i64)>,
    ) -> bool {
        let closed = CancellationToken::new();
        {
            let mut book = lock(&self.state);
            if book.http.contains_key(id) {
                return false;
            }
            seat.bound = true;
            let adopting = adopted.is_some();
            let (restore, asleep, touched_at) = adopted
                .map_or((None, None, None), |(state, waking, at)| {
                    (Some(state), Some(waking), Some(at))
                });
            book.http.insert(
                id.clone(),
                HttpSession {
                    holder: seat.holder,
                    credential: seat.credential,
                    opened: Instant::now(),
                    used: adopting,
                    active: Instant::now(),
                    in_flight: 0,
                    streams: 0,
                    listening: 0,
                    listener: None,
                    restore,
                    initialized: false,
                    asleep,
                    falling: false,
                    touched_at,
                    taken_in: adopting,
                    closed: closed.clone(),
                },
            );
        }
        if let Some(lease) = seat.lease.take() {
            self.tasks.spawn(end_with_lease(
                self.me.clone(),
                id.clone(),
                lease,
                closed,
                self.stop.clone(),
            ));
        }
        true
    }

    /// Whether the client's `notifications/initialized` for session `id` is the first its
    /// rmcp half gets (it is then marked had): a second (the client's own, after one given
    /// for it, see [`SessionBook::initialized_elsewhere`], or after a replay) is dropped.
    /// `true` for a session the book does not know.
    fn first_initialized(&self, id: &str) -> bool {
        lock(&self.state)
            .http
            .get_mut(id)
            .is_none_or(|session| !std::mem::replace(&mut session.initialized, true))
    }

    /// Whether the client of session `id` sent its `notifications/initialized` elsewhere:
    /// the session's `initialize` was answered here and it is awake, but rmcp's half of it
    /// never had one, and the message at hand is not it (`is_it`, asked only then). Behind a
    /// balancer with no affinity the notification may go to another gateway; the gateway
    /// counts a session from it, so the caller gives rmcp one.
    pub fn initialized_elsewhere(&self, id: &str, is_it: impl FnOnce() -> bool) -> bool {
        let awaits = lock(&self.state).http.get(id).is_some_and(|session| {
            session.restore.is_some() && session.asleep.is_none() && !session.initialized
        });
        awaits && !is_it()
    }

    /// A message arrived in session `id`; `uses` it when it is a request other than
    /// `initialize`.
    fn noted(&self, id: &str, uses: bool) {
        if let Some(session) = lock(&self.state).http.get_mut(id) {
            session.used |= uses;
            session.active = Instant::now();
        }
    }

    /// Session `id` is closed: its seat is given back and its watcher ends.
    fn closed(&self, id: &SessionId) {
        let session = lock(&self.state).http.remove(id);
        if let Some(session) = session {
            session.closed.cancel();
            // Counted closed before its seat is given back, not once rmcp's half of it has
            // ended: the sessions gauge does not count it beside its seat's next holder.
            if let Some(gateway) = &self.gateway {
                gateway.http_session_closed(id);
            }
            self.release(session.holder);
            shrink(&mut lock(&self.state).http);
            if let Some(gateway) = &self.gateway {
                // Also when awake: a listener stays until the woken half is registered.
                gateway.not_listening(id);
                if session.asleep.is_some() {
                    gateway.woke();
                }
            }
        }
    }
}
