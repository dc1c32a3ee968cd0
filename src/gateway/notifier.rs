//! Tells connected clients that the catalog (tools, prompts, resources) changed.
//!
//! Session-era clients get `notifications/tools/list_changed` on their session; each is
//! registered when it sends `notifications/initialized` and dropped once its transport has
//! closed. 2026-07-28 clients have no session: they open `subscriptions/listen`, whose handler
//! waits on [`Gateway::catalog_changes`](super::Gateway::catalog_changes) itself.
//!
//! One task (spawned on the gateway's tracker) sends to every session concurrently, each send
//! bounded by [`SEND_TIMEOUT`], so a client that stopped reading delays nobody else for long.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use rmcp::{
    Peer, RoleServer, ServiceError,
    model::{ResourceUpdatedNotification, ResourceUpdatedNotificationParam, ServerNotification},
};

use super::sessions::Sessions;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::{Changed, Gateway};
use crate::{
    registry::{Registry, SessionNotice, this_gateway},
    sync::lock,
};

/// How many times each part of the catalog has changed; a watch of it tells every listener
/// what to announce.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    pub tools: u64,
    pub prompts: u64,
    pub resources: u64,
}

impl Changes {
    /// Counts one build's changes.
    pub fn record(&mut self, changed: Changed) {
        self.tools += u64::from(changed.tools);
        self.prompts += u64::from(changed.prompts);
        self.resources += u64::from(changed.resources);
    }

    /// What differs from an earlier count.
    pub fn since(&self, earlier: &Changes) -> Changed {
        Changed {
            tools: self.tools != earlier.tools,
            prompts: self.prompts != earlier.prompts,
            resources: self.resources != earlier.resources,
        }
    }
}

/// How long one client may take to accept a notification.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Turns the catalog's change counters into "what changed since I last looked".
pub struct ChangeWatcher {
    changes: watch::Receiver<Changes>,
    seen: Changes,
}

impl ChangeWatcher {
    /// Starts from the current counts: only later changes are reported.
    pub fn new(mut changes: watch::Receiver<Changes>) -> Self {
        let seen = *changes.borrow_and_update();
        Self { changes, seen }
    }

    /// The next change; `None` once the gateway is gone.
    pub async fn next(&mut self) -> Option<Changed> {
        self.changes.changed().await.ok()?;
        let now = *self.changes.borrow_and_update();
        let changed = now.since(&self.seen);
        self.seen = now;
        Some(changed)
    }
}

/// Who gets a resource's `notifications/resources/updated`.
#[derive(Clone)]
pub enum Subscriber {
    /// A session-era client that sent `resources/subscribe`, and where its updates are
    /// announced when other gateways may hold its stream.
    Session(Peer<RoleServer>, Option<Echo>),
    /// A 2026-07-28 client's `subscriptions/listen` stream that named the URI.
    Stream(mpsc::Sender<ResourceUpdatedNotificationParam>),
    /// A streamable HTTP session's subscription this gateway took over from one that stopped
    /// holding it (see `kept_subscriptions`): delivered to this gateway's copy of the session
    /// when it has one, and announced for the gateway that holds the session's stream.
    Taken {
        gateway: Weak<Gateway>,
        session: Arc<str>,
        echo: Option<Echo>,
    },
}

/// A streamable HTTP session that gateways sharing a registry continue: its client's GET
/// stream, where notifications go, may be held by any of them (see
/// `downstream/sessions/shared.rs`), so its updates are announced to them too.
#[derive(Clone)]
pub struct Echo {
    pub registry: Registry,
    pub session: Arc<str>,
}

impl Subscriber {
    fn is_closed(&self) -> bool {
        match self {
            Self::Session(peer, _) => peer.is_transport_closed(),
            Self::Stream(stream) => stream.is_closed(),
            // Ended by the lease keeping (see `kept_subscriptions`), not by a transport.
            Self::Taken { .. } => false,
        }
    }

    pub(super) async fn deliver(&self, update: ResourceUpdatedNotificationParam) -> bool {
        match self {
            Self::Session(peer, echo) => {
                announce(echo.as_ref(), &update);
                send_update(peer, update).await
            }
            // A stream that does not keep up loses updates rather than holding up the others.
            Self::Stream(stream) => stream.try_send(update).is_ok(),
            Self::Taken {
                gateway,
                session,
                echo,
            } => {
                announce(echo.as_ref(), &update);
                let Some(gateway) = gateway.upgrade() else {
                    return false;
                };
                if let Some(copy) = gateway.http_session(session) {
                    send_update(&copy.peer, update).await
                } else if let Some(listener) = gateway.listener(session) {
                    listener.notify(ServerNotification::ResourceUpdatedNotification(
                        ResourceUpdatedNotification::new(update),
                    ))
                } else {
                    echo.is_some()
                }
            }
        }
    }
}

/// Sends `update` to a session's client here.
async fn send_update(peer: &Peer<RoleServer>, update: ResourceUpdatedNotificationParam) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, peer.notify_resource_updated(update)).await,
        Ok(Ok(()))
    )
}

/// Announces `update` to the other gateways, when its session may be held elsewhere; never
/// held up by the database: the client's copy here goes first.
fn announce(echo: Option<&Echo>, update: &ResourceUpdatedNotificationParam) {
    if let Some(echo) = echo.cloned() {
        let update = update.clone();
        tokio::spawn(async move { echo.announce(&update).await });
    }
}

impl Echo {
    async fn announce(&self, update: &ResourceUpdatedNotificationParam) {
        let notification = ServerNotification::ResourceUpdatedNotification(
            ResourceUpdatedNotification::new(update.clone()),
        );
        let message = match serde_json::to_value(notification) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "a resource update does not serialize");
                return;
            }
        };
        let notice = SessionNotice {
            from: this_gateway().to_owned(),
            session: self.session.to_string(),
            message,
        };
        self.registry.announce_session_notice(&notice).await;
    }
}

/// Resource URI → its subscribers, by subscriber key (a session number, or a stream's).
#[derive(Default)]
pub struct Subscriptions {
    by_uri: Mutex<HashMap<String, HashMap<u64, Subscriber>>>,
}

impl Subscriptions {
    /// Records a subscription; `true` when it is the URI's first (subscribe upstream then).
    pub fn add(&self, uri: &str, key: u64, subscriber: Subscriber) -> bool {
        let mut by_uri = self.lock();
        let subscribers = by_uri.entry(uri.to_owned()).or_default();
        subscribers.retain(|_, subscriber| !subscriber.is_closed());
        let first = subscribers.is_empty();
        subscribers.insert(key, subscriber);
        first
    }

    /// Whether `key` holds any subscription.
    pub fn holds_any(&self, key: u64) -> bool {
        self.lock()
            .values()
            .any(|subscribers| subscribers.contains_key(&key))
    }

    /// Forgets a subscription; `true` when the key had one and it was the URI's last.
    pub fn remove(&self, uri: &str, key: u64) -> bool {
        let mut by_uri = self.lock();
        let Some(subscribers) = by_uri.get_mut(uri) else {
            return false;
        };
        let had = subscribers.remove(&key).is_some();
        subscribers.retain(|_, subscriber| !subscriber.is_closed());
        let last = subscribers.is_empty();
        if last {
            by_uri.remove(uri);
        }
        had && last
    }

    /// Forgets every subscription of `key`; returns the URIs it was the last subscriber of.
    pub fn remove_all(&self, key: u64) -> Vec<String> {
        let mut by_uri = self.lock();
        let mut orphaned = Vec::new();
        by_uri.retain(|uri, subscribers| {
            if subscribers.remove(&key).is_none() {
                return true;
            }
            subscribers.retain(|_, subscriber| !subscriber.is_closed());
            if subscribers.is_empty() {
                orphaned.push(uri.clone());
                return false;
            }
            true
        });
        orphaned
    }

    /// The open subscribers of `uri`.
    fn subscribers(&self, uri: &str) -> Vec<Subscriber> {
        let mut by_uri = self.lock();
        let Some(subscribers) = by_uri.get_mut(uri) else {
            return Vec::new();
        };
        subscribers.retain(|_, subscriber| !subscriber.is_closed());
        subscribers.values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<u64, Subscriber>>> {
        lock(&self.by_uri)
    }
}

/// Passes each upstream `resources/updated` to the subscribers of that URI only, once
/// `updated` has been told its URI (the cache retires its answers).
pub async fn relay_resource_updates(
    subscriptions: Arc<Subscriptions>,
    mut updates: mpsc::Receiver<ResourceUpdatedNotificationParam>,
    updated: impl Fn(&str) + Send,
    shutdown: CancellationToken,
) {
    loop {
        let update = tokio::select! {
            update = updates.recv() => match update {
                Some(update) => update,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        updated(&update.uri);
        let subscribers = subscriptions.subscribers(&update.uri);
        tracing::debug!(uri = %update.uri, subscribers = subscribers.len(), "resources/updated from an upstream");
        let sends = subscribers.iter().map(|subscriber| {
            let update = update.clone();
            async move {
                if !subscriber.deliver(update).await {
                    tracing::debug!("resources/updated not delivered to a subscriber");
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

/// Sends the `list_changed` notifications for each catalog change to every open session,
/// until shutdown.
pub async fn run(
    sessions: Arc<Sessions>,
    changes: watch::Receiver<Changes>,
    shutdown: CancellationToken,
) {
    let mut changes = ChangeWatcher::new(changes);
    loop {
        let changed = tokio::select! {
            changed = changes.next() => match changed {
                Some(changed) => changed,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        let peers = sessions.open();
        let listening = sessions.listening();
        tracing::debug!(
            sessions = peers.len(),
            asleep = listening.len(),
            ?changed,
            "catalog changed; notifying clients"
        );
        for listener in &listening {
            for notification in list_changed(changed) {
                if !listener.notify(notification) {
                    tracing::debug!("list_changed not delivered to a sleeping session");
                }
            }
        }
        let sends = peers.iter().map(|peer| async move {
            match tokio::time::timeout(SEND_TIMEOUT, notify(peer, changed)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "list_changed not delivered"),
                Err(_) => {
                    tracing::warn!("a client did not accept list_changed within {SEND_TIMEOUT:?}")
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

async fn notify(peer: &Peer<RoleServer>, changed: Changed) -> Result<(), ServiceError> {
    for notification in list_changed(changed) {
        peer.send_notification(notification).await?;
    }
    Ok(())
}

/// The `list_changed` notifications of `changed`.
fn list_changed(changed: Changed) -> Vec<ServerNotification> {
    let mut notifications = Vec::new();
    if changed.tools {
        notifications.push(ServerNotification::ToolListChangedNotification(
            Default::default(),
        ));
    }
    if changed.prompts {
        notifications.push(ServerNotification::PromptListChangedNotification(
            Default::default(),
        ));
    }
    if changed.resources {
        notifications.push(ServerNotification::ResourceListChangedNotification(
            Default::default(),
        ));
    }
    notifications
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> (Subscriber, mpsc::Receiver<ResourceUpdatedNotificationParam>) {
        let (sender, receiver) = mpsc::channel(1);
        (Subscriber::Stream(sender), receiver)
    }

    #[test]
    fn a_subscriber_that_goes_away_leaves_the_uris_only_it_wanted() {
        let subscriptions = Subscriptions::default();
        let (a, _a) = stream();
        let (b, _b) = stream();
        assert!(subscriptions.add("x://shared", 1, a.clone()));
        assert!(!subscriptions.add("x://shared", 2, b));
        assert!(subscriptions.add("x://own", 1, a));
        assert_eq!(subscriptions.remove_all(1), vec!["x://own".to_owned()]);
        assert_eq!(subscriptions.subscribers("x://shared").len(), 1);
        assert!(subscriptions.remove("x://shared", 2));
    }
}
