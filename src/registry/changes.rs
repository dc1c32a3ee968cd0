//! What other gateways on the same database changed, so that replicas agree: an API key made
//! on one is taken by all, one revoked on one is refused by all, a service added on one runs
//! on all.
//!
//! On PostgreSQL each change is announced with `NOTIFY` on the channel [`CHANNEL`] (delivered
//! when its transaction commits, to every gateway that listens, this one too), and each
//! gateway listens on a connection of its own. Notifications sent while a listener was away
//! are lost, so every gateway also reads everything again after it (re)connects and every
//! `resync` period. SQLite has no notifications: gateways on one file find changes at the
//! resync.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use super::{Registry, RegistryError, engine::Engine, engine::values, postgres};
use crate::sync::lock;

/// The `LISTEN`/`NOTIFY` channel.
const CHANNEL: &str = "mcps_registry";

/// How an announcement that a client session ended begins; the session's id follows.
const SESSION_CLOSED: &str = "session-closed:";

/// How a client's answer passed to the gateway that asked begins (see `answers`); the
/// gateway's tag, `:` and the answer follow.
pub(super) const ANSWER: &str = "answer:";

/// How a notification for a client session begins, sent by the gateway where it arose for
/// the one that holds the session's stream (see [`Registry::announce_session_notice`]).
const SESSION_NOTICE: &str = "session-notice:";

/// Ended sessions (and passed answers) announced but not yet taken by a slow follower; past
/// that it misses some (ended sessions are found at its next check, see
/// `downstream/sessions/shared.rs`; a missed answer leaves its request to time out).
const KEPT: usize = 1024;

/// A notification for a client session, announced by the gateway where it arose (a
/// resource update comes to the gateway that subscribed upstream) for the one that holds the
/// session's stream to the client.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SessionNotice {
    /// The tag of the gateway that announced it, which delivered it itself.
    pub from: String,
    pub session: String,
    /// The notification (its method and parameters).
    pub message: serde_json::Value,
}

/// What a notice may take of a notification's payload (PostgreSQL's limit is 8000 bytes).
const NOTICE_ROOM: usize = 7_900;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// API keys or login tokens: made, revoked, logged out.
    Tokens,
    /// Services registered through the API.
    Services,
    /// Files uploaded through the API.
    Uploads,
}

impl Change {
    const ALL: [Self; 3] = [Self::Tokens, Self::Services, Self::Uploads];

    /// Its name in an announcement.
    fn as_str(self) -> &'static str {
        match self {
            Self::Tokens => "tokens",
            Self::Services => "services",
            Self::Uploads => "uploads",
        }
    }
}

/// What is waiting to be read again; several notifications of one kind are one reading.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    pub tokens: bool,
    pub services: bool,
    pub uploads: bool,
}

impl Pending {
    /// What is due, leaving nothing.
    fn take(&mut self) -> Self {
        std::mem::take(self)
    }

    const ALL: Self = Self {
        tokens: true,
        services: true,
        uploads: true,
    };

    /// What an announcement named `payload` makes due; everything for a name not known
    /// (a newer gateway's).
    fn announced(payload: &str) -> Self {
        match Change::ALL
            .into_iter()
            .find(|change| change.as_str() == payload)
        {
            Some(Change::Tokens) => Self {
                tokens: true,
                ..Self::default()
            },
            Some(Change::Services) => Self {
                services: true,
                ..Self::default()
            },
            Some(Change::Uploads) => Self {
                uploads: true,
                ..Self::default()
            },
            None => Self::ALL,
        }
    }
}

/// The changes a gateway follows.
pub struct Changes {
    pending: std::sync::Mutex<Pending>,
    arrived: Notify,
    resync: Duration,
    /// When everything is read again next. Announcements do not put it off: a steady stream
    /// of one kind must not keep a missed one of the other from being repaired.
    next_resync: std::sync::Mutex<tokio::time::Instant>,
    /// The client sessions other gateways (and this one) ended.
    closed_sessions: broadcast::Sender<Arc<str>>,
    /// Clients' answers passed between gateways: what follows [`ANSWER`].
    answers: broadcast::Sender<Arc<str>>,
    /// Notifications for client sessions: what follows [`SESSION_NOTICE`].
    session_notices: broadcast::Sender<Arc<str>>,
}

impl Changes {
    fn new(resync: Duration) -> Self {
        Self {
            pending: Default::default(),
            arrived: Notify::new(),
            resync,
            next_resync: std::sync::Mutex::new(tokio::time::Instant::now() + resync),
            closed_sessions: broadcast::channel(KEPT).0,
            answers: broadcast::channel(KEPT).0,
            session_notices: broadcast::channel(KEPT).0,
        }
    }

    /// The notifications for client sessions announced from now on, by any gateway, this one
    /// included (see [`SessionNotice`]).
    pub fn session_notices(&self) -> broadcast::Receiver<Arc<str>> {
        self.session_notices.subscribe()
    }

    /// The clients' answers passed from now on (each for one gateway; see `answers`).
    pub fn passed_answers(&self) -> broadcast::Receiver<Arc<str>> {
        self.answers.subscribe()
    }

    /// The ids of the client sessions ended from now on, on any gateway (on PostgreSQL; on
    /// SQLite nothing is announced).
    pub fn closed_sessions(&self) -> broadcast::Receiver<Arc<str>> {
        self.closed_sessions.subscribe()
    }

    fn mark(&self, pending: Pending) {
        {
            let mut waiting = lock(&self.pending);
            waiting.tokens |= pending.tokens;
            waiting.services |= pending.services;
            waiting.uploads |= pending.uploads;
        }
        self.arrived.notify_one();
    }

    /// What to read again: what was announced, or everything once every resync period.
    pub async fn next(&self) -> Pending {
        loop {
            let due = *lock(&self.next_resync);
            if tokio::time::Instant::now() >= due {
                *lock(&self.next_resync) = due.max(tokio::time::Instant::now()) + self.resync;
                lock(&self.pending).take();
                return Pending::ALL;
            }
            let waiting = lock(&self.pending).take();
            if waiting != Pending::default() {
                return waiting;
            }
            // Woken by an announcement (or an earlier one's leftover wake-up), or at the resync.
            let _ = tokio::time::timeout_at(due, self.arrived.notified()).await;
        }
    }
}

/// The next announcement `receiver` takes, until `stop`; `None` once stopped or closed. One
/// that a slow follower missed (past [`KEPT`]) is logged, with `missed` saying what it
/// costs.
pub async fn next_announcement(
    receiver: &mut broadcast::Receiver<Arc<str>>,
    stop: &CancellationToken,
    missed: &str,
) -> Option<Arc<str>> {
    loop {
        let received = tokio::select! {
            received = receiver.recv() => received,
            () = stop.cancelled() => return None,
        };
        match received {
            Ok(announcement) => return Some(announcement),
            Err(broadcast::error::RecvError::Lagged(count)) => {
                tracing::warn!(count, "announcements missed: {missed}");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

impl Registry {
    /// Announces `change` to the gateways on this database (on PostgreSQL; on SQLite they
    /// find it at their resync). A failure is logged: the resync repairs it.
    pub(super) async fn announce(&self, change: Change) {
        if let Err(error) = self.notify(change.as_str()).await {
            tracing::warn!(%error, change = change.as_str(), "cannot tell the other gateways of a change; they find it at their next resync");
        }
    }

    /// Announces that client session `id` ended, so that the gateways that continued it end
    /// theirs (on PostgreSQL; on SQLite they find it at their next check).
    pub(super) async fn announce_session_closed(&self, id: &str) {
        if let Err(error) = self.notify(&format!("{SESSION_CLOSED}{id}")).await {
            tracing::warn!(%error, "cannot tell the other gateways that a session ended; they find it at their next check");
        }
    }

    /// Announces `notice` to the gateway that holds its session's stream, wherever that is
    /// (on PostgreSQL; on SQLite one gateway holds everything).
    pub async fn announce_session_notice(&self, notice: &SessionNotice) {
        let payload = match serde_json::to_string(notice) {
            Ok(text) if text.len() <= NOTICE_ROOM => format!("{SESSION_NOTICE}{text}"),
            Ok(_) => {
                tracing::warn!("a notification for a session is too long to pass on");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "a notification for a session does not serialize");
                return;
            }
        };
        if let Err(error) = self.notify(&payload).await {
            tracing::warn!(%error, "cannot pass a session's notification to the other gateways");
        }
    }

    /// Whether gateways on this registry can reach each other on its channel (PostgreSQL's
    /// `NOTIFY`; SQLite has none).
    pub fn has_channel(&self) -> bool {
        matches!(self.db(), Engine::Postgres(_))
    }

    /// Sends `payload` on the channel, on PostgreSQL; on SQLite there is none.
    pub(super) async fn notify(&self, payload: &str) -> Result<(), RegistryError> {
        if self.has_channel() {
            self.db()
                .execute("SELECT pg_notify($1, $2)", values![CHANNEL, payload])
                .await?;
        }
        Ok(())
    }

    /// The changes made on this database by any gateway, this one included, until `stop`;
    /// everything is due again every `resync`.
    pub fn follow(&self, resync: Duration, stop: CancellationToken) -> Arc<Changes> {
        let changes = Arc::new(Changes::new(resync));
        if let Some(url) = &self.url {
            tokio::spawn(listen(url.clone(), Arc::downgrade(&changes), stop));
        }
        changes
    }
}

/// Listens for announcements on a connection of its own, connecting again when it drops.
async fn listen(url: Arc<str>, changes: std::sync::Weak<Changes>, stop: CancellationToken) {
    let place = postgres::describe(&url);
    loop {
        let ended = tokio::select! {
            ended = listen_once(&url, &changes) => ended,
            () = stop.cancelled() => return,
        };
        if changes.strong_count() == 0 {
            return;
        }
        tracing::warn!(database = %place, reason = %ended, "lost the registry's notifications; connecting again in a second");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// One connection's listening; why it ended.
async fn listen_once(url: &str, changes: &std::sync::Weak<Changes>) -> String {
    let (client, mut connection) = match postgres::connect_one(url).await {
        Ok(connected) => connected,
        Err(error) => return error.to_string(),
    };
    // The connection must be polled for the client's `LISTEN` to be sent and answered.
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let statement = format!("LISTEN {CHANNEL}");
    let listening = client.batch_execute(&statement);
    tokio::pin!(listening);
    let mut listened = false;
    loop {
        tokio::select! {
            answered = &mut listening, if !listened => {
                if let Err(error) = answered {
                    return postgres::text(&error);
                }
                listened = true;
                // Whatever changed while nobody listened.
                let Some(changes) = changes.upgrade() else { return "stopped".into() };
                changes.mark(Pending::ALL);
            }
            message = messages.next() => {
                let Some(changes) = changes.upgrade() else { return "stopped".into() };
                match message {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(notice))) => {
                        let payload = notice.payload();
                        // Nobody following is no failure.
                        if let Some(id) = payload.strip_prefix(SESSION_CLOSED) {
                            let _ = changes.closed_sessions.send(Arc::from(id));
                            continue;
                        }
                        if let Some(answer) = payload.strip_prefix(ANSWER) {
                            let _ = changes.answers.send(Arc::from(answer));
                            continue;
                        }
                        if let Some(notice) = payload.strip_prefix(SESSION_NOTICE) {
                            let _ = changes.session_notices.send(Arc::from(notice));
                            continue;
                        }
                        tracing::debug!(change = payload, "the registry changed");
                        changes.mark(Pending::announced(payload));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return postgres::text(&error),
                    None => return "the server closed the connection".into(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_name_what_is_due() {
        assert_eq!(
            Pending::announced(Change::Tokens.as_str()),
            Pending {
                tokens: true,
                ..Pending::default()
            }
        );
        assert_eq!(
            Pending::announced(Change::Services.as_str()),
            Pending {
                services: true,
                ..Pending::default()
            }
        );
        assert_eq!(Pending::announced("something newer"), Pending::ALL);
    }

    /// Announcements of one kind, however frequent, do not put off the resync that repairs a
    /// missed one of the other.
    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_announcements_does_not_put_off_the_resync() {
        let resync = Duration::from_secs(10);
        let changes = Arc::new(Changes::new(resync));
        let announcer = changes.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                announcer.mark(Pending::announced("tokens"));
            }
        });
        let start = tokio::time::Instant::now();
        let mut tokens = 0;
        while changes.next().await != Pending::ALL {
            tokens += 1;
        }
        assert!(
            tokens > 20,
            "the announcements were read as they came: {tokens}"
        );
        assert_eq!(start.elapsed(), resync, "the resync came on time");
    }
}
