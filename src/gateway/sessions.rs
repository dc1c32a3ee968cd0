//! The session-era client sessions: whom to notify when the catalog changes, and what a door
//! needs to serve a session's call itself.
//!
//! A session is registered when it sends `notifications/initialized` and forgotten once its
//! handler is dropped, so nothing of a closed session is kept here: a `Peer` holds its
//! session's channels, and thousands of expired sessions kept until the next registration
//! would hold tens of megabytes. A streamable HTTP session is forgotten sooner, when the HTTP
//! door closes it (its seat is given back then) or puts it to sleep (it counts as asleep
//! then): the sessions gauge must not count it on until rmcp's half of it has ended.
//!
//! **Sleep.** The HTTP door puts a quiet streamable HTTP session to sleep (see
//! `downstream/sessions.rs`): rmcp's session is closed, and its next request restores it. Here
//! it is forgotten like a closed one; what rmcp's `initialize` replay does not bring back
//! (the client's log level) travels in [`Waking`], and the session still counts as open. A
//! sleeping session whose client listens on its GET stream leaves a [`Listener`] here, which
//! gets what the session would have been sent (the catalog's changes). One whose client does
//! not listen leaves a stand-in ([`Unheard`]) that keeps those changes, which the session
//! sends once awake: rmcp keeps what an awake session is sent with no stream open, for the
//! stream its client opens next, and a client that opens its stream on a sleeping session (or
//! on a copy of it another gateway took in) must not find less.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era clients set a level that sleep keeps"
)]

use std::sync::{
    Arc, Mutex, MutexGuard, Weak,
    atomic::{AtomicUsize, Ordering},
};

use foldhash::HashMap;
use rmcp::{
    Peer, RoleServer,
    model::{ClientCapabilities, LoggingLevel, ServerNotification},
};

use super::{isolation::SessionConnections, logging::SessionLogLevel};
use crate::{maps::shrink, sync::lock};

/// What a streamable HTTP session settled at `initialize` and since, for the HTTP door's own
/// way with its calls (see `downstream/http/session_call.rs`).
#[derive(Debug)]
pub struct SessionFacts {
    /// The session's number: the key its calls' callers share (see `upstream::Caller`).
    pub key: u64,
    /// The client's name, for the call history.
    pub client: Option<Arc<str>>,
    pub capabilities: Arc<ClientCapabilities>,
    /// The level the client set with `logging/setLevel` (unset: every message).
    pub log_level: Arc<SessionLogLevel>,
    /// The session's own way to its client, outside any request: what rmcp sends there goes
    /// on a streamable HTTP session's GET stream.
    pub peer: Peer<RoleServer>,
    /// The session's own upstream connections (`isolation: per-session`), which sleep would
    /// close; held weakly, as they close with the session's handler.
    pub connections: Option<Weak<SessionConnections>>,
}

/// Where a sleeping session's notifications go until it is awake again: its client's stream,
/// still listening (the HTTP door holds a streamable HTTP client's GET stream open while
/// rmcp's half of the session sleeps), or, while the client does not listen, a stand-in that
/// keeps them ([`Unheard`]).
pub trait Listener: Send + Sync {
    /// Sends `notification` to the client; `false` when it cannot take it now.
    fn notify(&self, notification: ServerNotification) -> bool;

    /// What it kept for a client that did not listen, taken for the session to send once
    /// awake; `None` from a client's own stream.
    fn take_kept(&self) -> Option<Vec<ServerNotification>> {
        None
    }
}

/// A sleeping session's stand-in while its client does not listen: what the session is sent
/// (the catalog's changes; a copy taken in here gets the updates of the resources it
/// subscribed to elsewhere), each once (a client told twice reads again for nothing).
#[derive(Default)]
struct Unheard(Mutex<Vec<ServerNotification>>);

impl Listener for Unheard {
    fn notify(&self, notification: ServerNotification) -> bool {
        let mut kept = lock(&self.0);
        if !kept.iter().any(|held| says_the_same(held, &notification)) {
            kept.push(notification);
        }
        true
    }

    fn take_kept(&self) -> Option<Vec<ServerNotification>> {
        Some(std::mem::take(&mut *lock(&self.0)))
    }
}

/// Whether `one` and `other` tell a client the same: a list changed, or one resource did.
fn says_the_same(one: &ServerNotification, other: &ServerNotification) -> bool {
    match (one, other) {
        (
            ServerNotification::ResourceUpdatedNotification(one),
            ServerNotification::ResourceUpdatedNotification(other),
        ) => one.params.uri == other.params.uri,
        _ => std::mem::discriminant(one) == std::mem::discriminant(other),
    }
}

/// What a sleeping session keeps that rmcp's replay of its `initialize` does not bring back;
/// the HTTP door puts it in the extensions of the request that wakes the session.
#[derive(Debug, Clone, Copy)]
pub struct Waking {
    pub log_level: Option<LoggingLevel>,
}

#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Registry>,
    /// Streamable HTTP sessions asleep: open, but not registered.
    asleep: AtomicUsize,
}

/// Keyed by what the gateway chose (its sessions' numbers and ids): a fast hash.
#[derive(Default)]
struct Registry {
    peers: HashMap<u64, Registered>,
    /// Streamable HTTP sessions, by their `Mcp-Session-Id`.
    by_http_id: HashMap<Arc<str>, Arc<SessionFacts>>,
    /// Where sleeping streamable HTTP sessions' notifications go ([`Listener`]).
    listening: HashMap<Arc<str>, Arc<dyn Listener>>,
}

struct Registered {
    peer: Peer<RoleServer>,
    http_id: Option<Arc<str>>,
}

impl Sessions {
    /// Adds session `key`, which completed its handshake; `http`, for a streamable HTTP
    /// session, is its id and what a door needs to serve its calls. Returns what was kept for
    /// it while it slept and its client did not listen ([`Unheard`]).
    pub fn register(
        &self,
        key: u64,
        peer: Peer<RoleServer>,
        http: Option<(Arc<str>, SessionFacts)>,
    ) -> Vec<ServerNotification> {
        let mut registry = self.lock();
        let http_id = http.map(|(id, facts)| {
            registry.by_http_id.insert(id.clone(), Arc::new(facts));
            id
        });
        // A session that slept is awake from here: what it is sent goes to its new half, not
        // to its listener, in one step (under the lock, as the catalog's changes are sent).
        let listener = http_id
            .as_ref()
            .and_then(|id| registry.listening.remove(id));
        if listener.is_some() {
            shrink(&mut registry.listening);
        }
        let kept = listener.and_then(|listener| listener.take_kept());
        registry.peers.insert(key, Registered { peer, http_id });
        kept.unwrap_or_default()
    }

    /// Forgets session `key` (no-op for one never registered).
    pub fn forget(&self, key: u64) {
        self.lock().forget(key);
    }

    /// How many sessions are open, awake or asleep.
    pub fn count(&self) -> usize {
        self.lock().peers.len() + self.asleep.load(Ordering::Relaxed)
    }

    /// Where the sleeping sessions' notifications go ([`Listener`]).
    pub fn listening(&self) -> Vec<Arc<dyn Listener>> {
        self.lock().listening.values().cloned().collect()
    }

    /// Forgets streamable HTTP session `id` at once: it closed, and its seat may be taken
    /// already. rmcp's half of it ends a moment later; its handler's [`Self::forget`] then
    /// finds nothing.
    pub fn forget_http(&self, id: &str) {
        let mut registry = self.lock();
        if let Some(key) = registry.by_http_id.get(id).map(|facts| facts.key) {
            registry.forget(key);
        }
    }

    /// The sessions still open; those whose transport closed are forgotten here.
    pub fn open(&self) -> Vec<Peer<RoleServer>> {
        let mut registry = self.lock();
        let Registry {
            peers, by_http_id, ..
        } = &mut *registry;
        peers.retain(|_, registered| {
            let open = !registered.peer.is_transport_closed();
            if !open && let Some(id) = &registered.http_id {
                by_http_id.remove(id);
            }
            open
        });
        peers
            .values()
            .map(|registered| registered.peer.clone())
            .collect()
    }

    /// Streamable HTTP session `id`, if it is open and initialized.
    pub fn http(&self, id: &str) -> Option<Arc<SessionFacts>> {
        self.lock().by_http_id.get(id).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        lock(&self.inner)
    }
}

impl Registry {
    /// Forgets session `key`, and its facts under its id when they are still its own: a
    /// session that slept may have been restored under the same id by now, as another
    /// session (another number), whose facts stay.
    fn forget(&mut self, key: u64) {
        let Some(registered) = self.peers.remove(&key) else {
            return;
        };
        if let Some(id) = registered.http_id
            && self
                .by_http_id
                .get(&id)
                .is_some_and(|facts| facts.key == key)
        {
            self.by_http_id.remove(&id);
            shrink(&mut self.by_http_id);
        }
        shrink(&mut self.peers);
    }
}

impl super::Gateway {
    /// Registers a session-era client to be told about catalog changes (and, for a
    /// streamable HTTP session, whose calls a door may serve: `http`).
    /// `key` names the session until [`Self::forget_session`].
    pub fn register_session(
        &self,
        key: u64,
        peer: Peer<RoleServer>,
        http: Option<(Arc<str>, SessionFacts)>,
    ) {
        let kept = self.sessions.register(key, peer.clone(), http);
        if !kept.is_empty() {
            // rmcp keeps them for the client's stream if it is not open yet.
            tokio::spawn(async move {
                for notification in kept {
                    if let Err(error) = peer.send_notification(notification).await {
                        tracing::debug!(%error, "a change kept while a session slept not delivered");
                    }
                }
            });
        }
    }

    /// Forgets session `key`, which ended.
    pub fn forget_session(&self, key: u64) {
        self.sessions.forget(key);
    }

    /// Streamable HTTP session `id` closed: it no longer counts as open from now, not from
    /// when rmcp's half of it has ended.
    pub fn http_session_closed(&self, id: &str) {
        self.sessions.forget_http(id);
    }

    /// How many session-era client sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.count()
    }

    /// The streamable HTTP session `id`, while it is open and initialized.
    pub fn http_session(&self, id: &str) -> Option<Arc<SessionFacts>> {
        self.sessions.http(id)
    }

    /// What streamable HTTP session `id` would keep asleep, and its number, if it may sleep:
    /// it is initialized, holds no resource subscription and has no upstream connection of its
    /// own. When it may, it counts as asleep until [`Self::woke`]; once it sleeps, the door
    /// has it forgotten as awake ([`Self::forget_session`] with that number).
    pub fn may_sleep(&self, id: &str) -> Option<(Waking, u64)> {
        let facts = self.sessions.http(id)?;
        if facts.connections.is_some() || self.resources.subscriptions.holds_any(facts.key) {
            return None;
        }
        self.sessions.asleep.fetch_add(1, Ordering::Relaxed);
        let waking = Waking {
            log_level: facts.log_level.get(),
        };
        Some((waking, facts.key))
    }

    /// A streamable HTTP session another gateway opened was taken in here, asleep until its
    /// request wakes it.
    pub fn asleep_from_elsewhere(&self) {
        self.sessions.asleep.fetch_add(1, Ordering::Relaxed);
    }

    /// Sleeping streamable HTTP session `id`'s client listens on `listener` until the session
    /// is awake again (its new half registered) or closes ([`Self::not_listening`]).
    pub fn listening_asleep(&self, id: Arc<str>, listener: Arc<dyn Listener>) {
        self.sessions.lock().listening.insert(id, listener);
    }

    /// Sleeping streamable HTTP session `id`'s client does not listen (no more): the catalog's
    /// changes are kept for the session to send once it wakes.
    pub fn asleep_unheard(&self, id: Arc<str>) {
        self.listening_asleep(id, Arc::new(Unheard::default()));
    }

    /// Session `id` closed: its notifications no longer go to its listener.
    pub fn not_listening(&self, id: &str) {
        let mut registry = self.sessions.lock();
        if registry.listening.remove(id).is_some() {
            shrink(&mut registry.listening);
        }
    }

    /// Where sleeping streamable HTTP session `id`'s notifications go, if it sleeps.
    pub fn listener(&self, id: &str) -> Option<Arc<dyn Listener>> {
        self.sessions.lock().listening.get(id).cloned()
    }

    /// A session that went to sleep woke up or was closed asleep.
    pub fn woke(&self) {
        let _ = self
            .sessions
            .asleep
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |asleep| {
                asleep.checked_sub(1)
            });
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::{ResourceUpdatedNotification, ResourceUpdatedNotificationParam};

    use super::*;

    #[test]
    fn a_stand_in_keeps_each_kind_of_change_once_and_gives_them_once() {
        let unheard = Unheard::default();
        let tools = || ServerNotification::ToolListChangedNotification(Default::default());
        let prompts = || ServerNotification::PromptListChangedNotification(Default::default());
        assert!(unheard.notify(tools()));
        assert!(unheard.notify(prompts()));
        assert!(unheard.notify(tools()));
        let kept = unheard.take_kept().expect("a stand-in keeps");
        assert_eq!(kept.len(), 2, "{kept:?}");
        assert!(matches!(
            kept[0],
            ServerNotification::ToolListChangedNotification(_)
        ));
        assert_eq!(unheard.take_kept().map(|kept| kept.len()), Some(0));
    }

    #[test]
    fn a_stand_in_keeps_an_update_of_each_resource() {
        let unheard = Unheard::default();
        let updated = |uri: &str| {
            ServerNotification::ResourceUpdatedNotification(ResourceUpdatedNotification::new(
                ResourceUpdatedNotificationParam::new(uri),
            ))
        };
        unheard.notify(updated("test://a"));
        unheard.notify(updated("test://b"));
        unheard.notify(updated("test://a"));
        let kept = unheard.take_kept().expect("a stand-in keeps");
        assert_eq!(kept.len(), 2, "{kept:?}");
    }
}
