//! `resources/subscribe` and `resources/unsubscribe` of session-era clients.
//!
//! The owning upstream is subscribed once, when the first session subscribes to a URI, and
//! unsubscribed with the last; its `notifications/resources/updated` go to the subscribed
//! sessions only (see `notifier::Subscriptions`). A session-era upstream gets
//! `resources/subscribe`; a 2026-07-28 one has no such method, so the gateway holds a
//! `subscriptions/listen` stream open on it for the URI and passes on what it delivers.

// Session-era clients subscribe per URI; the gateway passes that on to session-era upstreams.
#![allow(
    deprecated,
    reason = "resources/subscribe is the session-era way to subscribe"
)]

mod marks;

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use rmcp::model::ResourceUpdatedNotificationParam;
use rmcp::{
    Peer, RoleClient, RoleServer,
    model::{
        ClientRequest, ServerNotification, ServerResult, SubscribeRequest, SubscribeRequestParams,
        SubscriptionFilter, UnsubscribeRequest, UnsubscribeRequestParams,
    },
};
use std::collections::HashMap;
use tokio::{
    sync::{mpsc, watch},
    task::AbortHandle,
};
use tokio_util::sync::CancellationToken;

use super::{
    Gateway, Origin,
    forward::{is_stateless, send, unexpected},
    kept_subscriptions::KeptSubscriptions,
    notifier::{Echo, Subscriber, Subscriptions},
};
use crate::{error::GatewayError, registry::Registry, upstream::Upstream};
use marks::{Mark, Marks};

/// Resource updates buffered between the upstreams and the notifier.
const RESOURCE_UPDATE_QUEUE: usize = 256;

/// Clients' resource subscriptions, and the upstreams' updates on their way to them.
pub(super) struct Resources {
    /// Which sessions subscribed to which resource URIs.
    pub subscriptions: Arc<Subscriptions>,
    /// Where every upstream sends its `resources/updated`.
    pub update_sender: mpsc::Sender<ResourceUpdatedNotificationParam>,
    /// Upstreams' `resources/updated`, until [`Gateway::start`] hands them to the notifier.
    pub updates: Mutex<Option<mpsc::Receiver<ResourceUpdatedNotificationParam>>>,
    /// `subscriptions/listen` streams held open on 2026-07-28 upstreams, per resource URI.
    listens: Mutex<HashMap<String, AbortHandle>>,
    /// Upstream subscriptions on their way, per resource URI: told whether they took.
    pending: Marks<Option<bool>>,
    /// Upstream unsubscriptions on their way, per resource URI: done when their mark goes.
    leaving: Marks<()>,
    /// Where the updates of streamable HTTP sessions are announced to the other gateways
    /// that continue them, when gateways share a registry.
    echo: OnceLock<Registry>,
    /// Streamable HTTP sessions' subscriptions as the registry keeps them.
    pub kept: OnceLock<KeptSubscriptions>,
}

impl Resources {
    pub fn new() -> Self {
        let (update_sender, updates) = mpsc::channel(RESOURCE_UPDATE_QUEUE);
        Self {
            subscriptions: Arc::default(),
            update_sender,
            updates: Mutex::new(Some(updates)),
            listens: Mutex::default(),
            pending: Marks::default(),
            leaving: Marks::default(),
            echo: OnceLock::new(),
            kept: OnceLock::new(),
        }
    }
}

impl Gateway {
    /// Announces the resource updates of streamable HTTP sessions on `registry`, for the
    /// gateway that holds each session's stream (when the registry has a channel: on one
    /// SQLite file, nothing would hear them).
    pub(super) fn echo_session_updates(&self, registry: Registry) {
        if registry.has_channel() {
            let _ = self.resources.echo.set(registry);
        }
    }

    /// Where streamable HTTP session `http_id`'s updates are announced, when gateways share a
    /// registry.
    pub(super) fn echo_for(&self, http_id: &str) -> Option<Echo> {
        self.resources.echo.get().map(|registry| Echo {
            registry: registry.clone(),
            session: Arc::from(http_id),
        })
    }

    /// The subscriber a session-era client's `resources/subscribe` makes: streamable HTTP
    /// session `http_id`'s updates are also announced when gateways share a registry.
    pub fn session_subscriber(&self, peer: Peer<RoleServer>, http_id: Option<&str>) -> Subscriber {
        Subscriber::Session(peer, http_id.and_then(|id| self.echo_for(id)))
    }

    /// Subscribes `subscriber` (under `key`: a session number, or a listen stream's) to a
    /// resource: a session's `resources/subscribe`, or a URI named by a 2026-07-28 client's
    /// `subscriptions/listen`.
    pub async fn subscribe(
        self: &Arc<Self>,
        key: u64,
        subscriber: Subscriber,
        params: SubscribeRequestParams,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        self.wait_started().await;
        let upstream = self.resource_owner(&params.uri, origin.view.as_deref())?;
        let peer = upstream.ready_peer()?;
        let uri = params.uri.clone();
        loop {
            if !self
                .resources
                .subscriptions
                .add(&uri, key, subscriber.clone())
            {
                // Another subscriber's upstream subscription may be on its way: this one is
                // answered once it is in place, as that one is.
                let Some(mut settled) = self.resources.pending.get(&uri) else {
                    return Ok(());
                };
                let took = settled
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|took| *took);
                if took == Some(true) {
                    return Ok(());
                }
                // It failed (or was given up), and its subscriber is gone: this one tries.
                self.resources.subscriptions.remove(&uri, key);
                continue;
            }
            let on_its_way = Pending::new(self.clone(), &uri, key);
            // An unsubscription of the URI still on its way upstream goes first: sent after
            // it, the subscription could overtake it and be undone. (One that comes after
            // this subscription waits for it instead: see `Leaving`.)
            let leaving = self.resources.leaving.get(&uri);
            // On a task of its own, and not cancelled with its request: a subscriber that
            // gives up (a listen closed, a session gone) leaves an upstream that may still
            // take the subscription, and its unsubscription must come after the answer.
            let origin = Origin {
                cancel: CancellationToken::new(),
                credential: None,
                ..origin.clone()
            };
            let gateway = self.clone();
            let subscribing = tokio::spawn(async move {
                if let Some(mut leaving) = leaving {
                    let _ = leaving.changed().await;
                }
                let subscribed = gateway
                    .subscribe_upstream(&upstream, &peer, params, &origin)
                    .await;
                on_its_way.settle(subscribed.is_ok());
                subscribed
            });
            return subscribing.await.unwrap_or_else(|stopped| {
                Err(GatewayError::Internal {
                    reason: stopped.to_string(),
                })
            });
        }
    }

    /// Subscribes `upstream` to `params.uri`: `resources/subscribe`, or a held
    /// `subscriptions/listen` on a 2026-07-28 upstream.
    async fn subscribe_upstream(
        &self,
        upstream: &Upstream,
        peer: &Peer<RoleClient>,
        params: SubscribeRequestParams,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        if is_stateless(peer) {
            return self.listen_for_updates(upstream, peer, &params.uri).await;
        }
        let request = ClientRequest::SubscribeRequest(SubscribeRequest::new(params));
        match send(upstream, peer, request, origin).await {
            Ok(ServerResult::EmptyResult(_)) => Ok(()),
            Ok(other) => Err(unexpected(upstream, &other)),
            Err(error) => Err(error),
        }
    }

    /// Drops every subscription of `key` (a session that ended, a listen stream that closed)
    /// and unsubscribes the upstreams of the URIs nobody else wants.
    pub fn forget_subscriber(self: &Arc<Self>, key: u64) {
        self.release_kept_subscriptions(key);
        let orphaned = self.resources.subscriptions.remove_all(key);
        if orphaned.is_empty() {
            return;
        }
        // Marked leaving now, not when the task runs: a subscriber that comes meanwhile
        // waits for them.
        let leaving: Vec<Leaving> = orphaned.iter().map(|uri| self.leaving(uri)).collect();
        let gateway = self.clone();
        tokio::spawn(async move {
            for leaving in leaving {
                let uri = leaving.uri().to_owned();
                if let Err(error) = gateway
                    .unsubscribe_upstream(leaving, &Origin::default())
                    .await
                {
                    tracing::debug!(%uri, %error, "unsubscribing the upstream failed");
                }
            }
        });
    }

    /// `resources/unsubscribe` for one session (streamable HTTP session `http_id`, whose
    /// subscription may be held by another gateway); the upstream is unsubscribed with the
    /// last.
    pub async fn unsubscribe(
        &self,
        session: u64,
        http_id: Option<&str>,
        params: UnsubscribeRequestParams,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        if let Some(http_id) = http_id {
            self.drop_kept_subscription(http_id, &params.uri, session)
                .await;
        }
        if !self.resources.subscriptions.remove(&params.uri, session) {
            return Ok(());
        }
        let leaving = self.leaving(&params.uri);
        self.unsubscribe_upstream(leaving, origin).await
    }

    /// Marks the upstream's subscription to `uri` as ending (its last subscriber is gone),
    /// for [`Self::unsubscribe_upstream`].
    pub(super) fn leaving(&self, uri: &str) -> Leaving {
        Leaving {
            after: self.resources.pending.get(uri),
            mark: self.resources.leaving.mark(uri, ()),
        }
    }

    /// Ends the upstream's subscription that `leaving` marks, once the subscription it
    /// follows is answered; nothing if that one did not take.
    pub(super) async fn unsubscribe_upstream(
        &self,
        leaving: Leaving,
        origin: &Origin,
    ) -> Result<(), GatewayError> {
        if !leaving.follows_a_subscription().await {
            return Ok(());
        }
        let uri = leaving.mark.uri.as_str();
        if let Some(listen) = self.listens().remove(uri) {
            listen.abort();
            return Ok(());
        }
        // Any view: this only ends what a subscription began.
        let upstream = self.resource_owner(uri, None)?;
        let peer = upstream.ready_peer()?;
        let params = UnsubscribeRequestParams::new(uri.to_owned());
        let request = ClientRequest::UnsubscribeRequest(UnsubscribeRequest::new(params));
        send(&upstream, &peer, request, origin).await.map(|_| ())
    }

    /// Opens a `subscriptions/listen` stream for `uri` on a 2026-07-28 upstream and relays its
    /// updates until it is aborted (by the last unsubscribe) or ends.
    async fn listen_for_updates(
        &self,
        upstream: &Upstream,
        peer: &Peer<RoleClient>,
        uri: &str,
    ) -> Result<(), GatewayError> {
        let mut filter = SubscriptionFilter::new();
        filter.resource_subscriptions = Some(vec![uri.to_owned()]);
        let failed = |reason: String| GatewayError::UpstreamFailed {
            upstream: upstream.name().to_owned(),
            reason,
        };
        let mut subscription =
            match tokio::time::timeout(upstream.call_timeout(), peer.listen(filter)).await {
                Ok(Ok(subscription)) => subscription,
                Ok(Err(error)) => return Err(failed(format!("cannot subscribe: {error}"))),
                Err(_) => return Err(failed("subscribing timed out".into())),
            };
        let updates = upstream.events().resource_updates.clone();
        let relay = tokio::spawn(async move {
            while let Ok(Some(notification)) = subscription.next().await {
                if let ServerNotification::ResourceUpdatedNotification(update) = notification
                    && updates.try_send(update.params).is_err()
                {
                    tracing::debug!("resource update queue full; update dropped");
                }
            }
        });
        self.listens().insert(uri.to_owned(), relay.abort_handle());
        Ok(())
    }

    fn listens(&self) -> MutexGuard<'_, HashMap<String, AbortHandle>> {
        crate::sync::lock(&self.resources.listens)
    }
}

/// An upstream unsubscription on its way (see [`Gateway::leaving`]); a subscription of its URI
/// made after it waits until it is dropped.
pub(super) struct Leaving {
    mark: Mark<()>,
    /// The upstream subscription of its URI that was on its way when it was marked (its
    /// subscriber gave up before it was answered): the unsubscription waits for its answer.
    after: Option<watch::Receiver<Option<bool>>>,
}

impl Leaving {
    /// The URI it marks.
    pub fn uri(&self) -> &str {
        &self.mark.uri
    }

    /// Whether the upstream holds the subscription it ends: the one on its way when it was
    /// marked took, or none was.
    async fn follows_a_subscription(&self) -> bool {
        let Some(mut after) = self.after.clone() else {
            return true;
        };
        let took = after
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|took| *took);
        took == Some(true)
    }
}

/// An upstream subscription on its way, for the subscribers that come meanwhile to wait on.
/// Settled when it is answered (its subscriber may have given up meanwhile: it goes on
/// without it); one that failed takes its subscriber's subscription with it, so that one who
/// waited tries in its turn.
struct Pending {
    gateway: Arc<Gateway>,
    /// The subscriber whose subscription it is.
    key: u64,
    /// Whether it took, once answered.
    took: Mark<Option<bool>>,
}

impl Pending {
    fn new(gateway: Arc<Gateway>, uri: &str, key: u64) -> Self {
        let took = gateway.resources.pending.mark(uri, None);
        Self { gateway, key, took }
    }

    fn settle(self, took: bool) {
        if took {
            self.took.sender.send_replace(Some(true));
        }
        // Dropped: as failed, unless it took.
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // Ours only: once settled as failed, a subscriber that waited may have a new one on
        // its way already.
        self.took.unmark();
        if self.took.sender.borrow().is_none() {
            // Before it is told: whoever waited finds the place free.
            self.gateway
                .resources
                .subscriptions
                .remove(&self.took.uri, self.key);
            self.took.sender.send_replace(Some(false));
        }
    }
}

/// Drops a subscriber's resource subscriptions (unsubscribing upstreams nobody else needs)
/// when the session or stream it belongs to ends, and forgets an ended session.
pub(super) struct SubscriberGuard {
    gateway: Arc<Gateway>,
    key: u64,
}

impl SubscriberGuard {
    /// Subscriber (or session) `key` of `gateway`.
    pub(super) fn new(gateway: Arc<Gateway>, key: u64) -> Self {
        Self { gateway, key }
    }
}

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.gateway.forget_subscriber(self.key);
        self.gateway.forget_session(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const URI: &str = "test://watched";

    fn gateway() -> Arc<Gateway> {
        Gateway::new(&Config::from_yaml_str("", &|_| None).expect("an empty config"))
    }

    fn subscriber() -> Subscriber {
        Subscriber::Stream(mpsc::channel(1).0)
    }

    #[tokio::test]
    async fn a_subscription_that_took_is_told_to_those_who_wait_and_kept() {
        let gateway = gateway();
        assert!(gateway.resources.subscriptions.add(URI, 1, subscriber()));
        let on_its_way = Pending::new(gateway.clone(), URI, 1);
        let mut settled = gateway.resources.pending.get(URI).expect("pending");
        on_its_way.settle(true);
        assert_eq!(
            *settled.wait_for(Option::is_some).await.unwrap(),
            Some(true)
        );
        assert!(gateway.resources.pending.get(URI).is_none());
        assert!(gateway.resources.subscriptions.holds_any(1));
    }

    #[tokio::test]
    async fn a_subscription_that_failed_or_was_given_up_frees_its_place_first() {
        let gateway = gateway();
        for given_up in [false, true] {
            assert!(gateway.resources.subscriptions.add(URI, 1, subscriber()));
            let on_its_way = Pending::new(gateway.clone(), URI, 1);
            let mut settled = gateway.resources.pending.get(URI).expect("pending");
            if given_up {
                drop(on_its_way);
            } else {
                on_its_way.settle(false);
            }
            assert_eq!(
                *settled.wait_for(Option::is_some).await.unwrap(),
                Some(false)
            );
            assert!(gateway.resources.pending.get(URI).is_none());
            // Whoever waited is first now, and subscribes the upstream itself.
            assert!(!gateway.resources.subscriptions.holds_any(1));
            assert!(gateway.resources.subscriptions.add(URI, 2, subscriber()));
            gateway.resources.subscriptions.remove(URI, 2);
        }
    }

    #[tokio::test]
    async fn an_unsubscription_on_its_way_holds_the_next_subscription_until_it_is_done() {
        let gateway = gateway();
        let first = gateway.leaving(URI);
        let mut leaving = gateway.resources.leaving.get(URI).expect("leaving");
        // The URI leaves again while the first is on its way: the first's end leaves it marked.
        let second = gateway.leaving(URI);
        drop(first);
        assert!(gateway.resources.leaving.get(URI).is_some());
        assert!(leaving.changed().await.is_err(), "done with its sender");
        drop(second);
        assert!(gateway.resources.leaving.get(URI).is_none());
    }

    #[tokio::test]
    async fn an_unsubscription_waits_for_the_subscription_on_its_way_when_it_was_marked() {
        let gateway = gateway();
        for took in [true, false] {
            let on_its_way = Pending::new(gateway.clone(), URI, 1);
            let leaving = gateway.leaving(URI);
            // A subscription that comes after the unsubscription is not waited for: it
            // waits for the unsubscription.
            let next = Pending::new(gateway.clone(), URI, 2);
            let follows = leaving.follows_a_subscription();
            tokio::pin!(follows);
            assert!(
                futures::poll!(follows.as_mut()).is_pending(),
                "it waits for the answer"
            );
            drop(next);
            assert!(futures::poll!(follows.as_mut()).is_pending());
            if took {
                on_its_way.settle(true);
            } else {
                drop(on_its_way);
            }
            // Undone only if it took: one that failed left nothing upstream.
            assert_eq!(follows.await, took);
        }
        // With none on its way, the upstream's subscription is there to end.
        assert!(gateway.leaving(URI).follows_a_subscription().await);
    }

    #[tokio::test]
    async fn a_settled_subscription_leaves_the_next_one_on_its_way_alone() {
        let gateway = gateway();
        let failed = Pending::new(gateway.clone(), URI, 1);
        failed.took.sender.send_replace(Some(false));
        let next = Pending::new(gateway.clone(), URI, 2);
        drop(failed);
        let settled = gateway.resources.pending.get(URI).expect("the next one");
        assert!(settled.same_channel(&next.took.sender.subscribe()));
    }
}
