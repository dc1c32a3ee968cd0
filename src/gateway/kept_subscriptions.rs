//! Streamable HTTP sessions' resource subscriptions, kept in the registry so that they outlive
//! the gateway that made them.
//!
//! A session goes on on any gateway of the registry, and after the one that opened it stops
//! (`downstream/sessions/shared.rs`); so must its subscriptions, or its client waits for
//! updates nobody will send. Each is stored with the gateway that holds it upstream and when
//! that gateway last renewed its lease. Every round each gateway:
//! - renews its leases, and lets go of what it no longer holds (unsubscribed on another
//!   gateway, ended with its session, or subscribed again elsewhere, which took it);
//! - takes over the subscriptions whose lease lapsed ([`LEASE_ROUNDS`] rounds unrenewed: their
//!   gateway was killed) or was released (their gateway stopped, or closed its copy of the
//!   session while the session goes on). It subscribes upstream itself and sends the client one
//!   `notifications/resources/updated` at once, since the resource may have changed while
//!   nobody watched it; its updates then reach this gateway's copy of the session, if any, and
//!   the gateway that holds the session's stream (`notifier::Echo`).
//!
//! A gateway that stops releases its leases; on one SQLite file this carries a session's
//! subscriptions across a restart.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use rmcp::model::{ResourceUpdatedNotificationParam, SubscribeRequestParams};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Gateway, Origin, notifier::Subscriber, server::next_subscriber_number};
use crate::{
    registry::{KeptSubscription, Registry, now_ms, this_gateway},
    sync::lock,
};

/// How many rounds a lease lasts unrenewed before another gateway takes it over: a gateway
/// that misses one round (a slow database) keeps what it holds.
const LEASE_ROUNDS: u32 = 3;

/// A subscription as this gateway holds it.
type SessionUri = (Arc<str>, String);

/// What this gateway holds of the subscriptions kept in the registry.
pub(super) struct KeptSubscriptions {
    registry: Registry,
    /// How often leases are renewed and lapsed ones taken over.
    every: Duration,
    /// Held here: the subscriber number each is held under (its session's, or its own when
    /// taken over), and since when.
    held: Mutex<HashMap<SessionUri, (u64, Instant)>>,
}

impl KeptSubscriptions {
    fn held(&self) -> MutexGuard<'_, HashMap<SessionUri, (u64, Instant)>> {
        lock(&self.held)
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from((self.every * LEASE_ROUNDS).as_millis()).unwrap_or(i64::MAX)
    }
}

impl Gateway {
    /// Keeps streamable HTTP sessions' resource subscriptions in `registry`, renewing and
    /// taking over leases every `every` (the period at which the gateways check the sessions
    /// they share) on `tracker` until `stop`; then releases them.
    pub fn keep_session_subscriptions(
        self: &Arc<Self>,
        registry: Registry,
        every: Duration,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) {
        self.echo_session_updates(registry.clone());
        let kept = KeptSubscriptions {
            registry,
            every,
            held: Mutex::default(),
        };
        if self.resources.kept.set(kept).is_ok() {
            tracker.spawn(keep_leases(Arc::downgrade(self), every, stop));
        }
    }

    /// Records that session `http_id`'s subscriber `number` holds its subscription to `uri`
    /// here (the client's `resources/subscribe` was served).
    pub(super) async fn keep_subscription(&self, http_id: &str, uri: &str, number: u64) {
        let Some(kept) = self.resources.kept.get() else {
            return;
        };
        let key: SessionUri = (Arc::from(http_id), uri.to_owned());
        let before = kept.held().insert(key.clone(), (number, Instant::now()));
        if let Some((taken, _)) = before.filter(|(before, _)| *before != number) {
            // Taken over here earlier: the session's own subscriber now delivers.
            self.resources.subscriptions.remove(uri, taken);
        }
        let held = kept
            .registry
            .hold_subscription(http_id, uri, this_gateway(), now_ms())
            .await;
        if held.as_ref().is_ok_and(|held| *held) {
            return;
        }
        // Not a lease to keep: the subscription lives here alone, if at all.
        kept.held().remove(&key);
        match held {
            Err(error) => {
                tracing::warn!(%error, "cannot keep a resource subscription in the registry; it ends with this gateway")
            }
            // Its unsubscription, on its way too, undoes it upstream.
            Ok(_) => tracing::debug!("a session ended before its resource subscription was kept"),
        }
    }

    /// Session `http_id` unsubscribed from `uri`: whoever holds it lets it go.
    pub(super) async fn drop_kept_subscription(&self, http_id: &str, uri: &str, number: u64) {
        let Some(kept) = self.resources.kept.get() else {
            return;
        };
        let held = kept.held().remove(&(Arc::from(http_id), uri.to_owned()));
        if let Some((taken, _)) = held.filter(|(held, _)| *held != number) {
            self.let_go(taken, uri).await;
        }
        if let Err(error) = kept.registry.drop_subscription(http_id, uri).await {
            tracing::warn!(%error, "cannot forget a resource subscription in the registry; the updates go on until it ends with the session");
        }
    }

    /// Subscriber `number` ended here (its copy of the session closed): what it held is
    /// released, for the next gateway to look (this one included) to take over while the
    /// session goes on.
    pub(super) fn release_kept_subscriptions(self: &Arc<Self>, number: u64) {
        let Some(kept) = self.resources.kept.get() else {
            return;
        };
        let released: Vec<SessionUri> = {
            let mut held = kept.held();
            let released = held
                .iter()
                .filter(|(_, (held, _))| *held == number)
                .map(|(key, _)| key.clone())
                .collect::<Vec<_>>();
            for key in &released {
                held.remove(key);
            }
            released
        };
        if released.is_empty() {
            return;
        }
        let registry = kept.registry.clone();
        tokio::spawn(async move {
            for (session, uri) in released {
                if let Err(error) = registry
                    .release_subscription(&session, &uri, this_gateway())
                    .await
                {
                    tracing::debug!(%error, "cannot release a resource subscription; it lapses");
                }
            }
        });
    }

    /// One round: renews this gateway's leases, lets go of what it no longer holds, and takes
    /// over the lapsed.
    async fn keep_round(self: &Arc<Self>) {
        let Some(kept) = self.resources.kept.get() else {
            return;
        };
        let round = Instant::now();
        let now = now_ms();
        let still: HashSet<KeptSubscription> = match kept
            .registry
            .renew_subscriptions(this_gateway(), now)
            .await
        {
            Ok(still) => still.into_iter().collect(),
            Err(error) => {
                tracing::warn!(%error, "cannot renew the resource subscriptions held here; others take them over if this lasts");
                return;
            }
        };
        let lost: Vec<(SessionUri, u64)> = {
            let mut held = kept.held();
            let lost: Vec<(SessionUri, u64)> = held
                .iter()
                .filter(|((session, uri), (_, since))| {
                    *since < round
                        && !still.contains(&KeptSubscription {
                            session: session.to_string(),
                            uri: uri.clone(),
                        })
                })
                .map(|(key, (number, _))| (key.clone(), *number))
                .collect();
            for (key, _) in &lost {
                held.remove(key);
            }
            lost
        };
        for ((_, uri), number) in lost {
            tracing::debug!(%uri, "a resource subscription is no longer held here");
            self.let_go(number, &uri).await;
        }
        let lapsed_before = now.saturating_sub(kept.lease_ms());
        match kept
            .registry
            .take_lapsed_subscriptions(this_gateway(), now, lapsed_before)
            .await
        {
            Ok(taken) => {
                for subscription in taken {
                    self.take_over(kept, subscription).await;
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take over the resource subscriptions of stopped gateways")
            }
        }
    }

    /// Subscribes upstream for a session whose subscription this gateway took over, and tells
    /// its client the resource may have changed meanwhile.
    async fn take_over(self: &Arc<Self>, kept: &KeptSubscriptions, subscription: KeptSubscription) {
        let KeptSubscription { session, uri } = subscription;
        let session: Arc<str> = Arc::from(session);
        let number = next_subscriber_number();
        let subscriber = Subscriber::Taken {
            gateway: Arc::downgrade(self),
            session: session.clone(),
            echo: self.echo_for(&session),
        };
        let params = SubscribeRequestParams::new(uri.clone());
        // Any view: the session's client was allowed to subscribe when it did.
        let origin = Origin::default();
        if let Err(error) = self
            .subscribe(number, subscriber.clone(), params, &origin)
            .await
        {
            tracing::info!(%uri, %error, "a resource subscription taken over could not be made here; released for another try");
            if let Err(error) = kept
                .registry
                .release_subscription(&session, &uri, this_gateway())
                .await
            {
                tracing::debug!(%error, "cannot release a resource subscription; it lapses");
            }
            return;
        }
        tracing::info!(%uri, "took over a resource subscription from a gateway that stopped holding it");
        crate::metrics::metrics().subscriptions_taken_over.inc();
        kept.held()
            .insert((session, uri.clone()), (number, Instant::now()));
        subscriber
            .deliver(ResourceUpdatedNotificationParam::new(uri))
            .await;
    }

    /// Subscriber `number` no longer holds `uri` here; the upstream is unsubscribed with the
    /// URI's last subscriber here.
    async fn let_go(&self, number: u64, uri: &str) {
        if self.resources.subscriptions.remove(uri, number)
            && let Err(error) = self
                .unsubscribe_upstream(self.leaving(uri), &Origin::default())
                .await
        {
            tracing::debug!(%uri, %error, "unsubscribing the upstream failed");
        }
    }
}

/// Renews and takes over leases every `every` until `stop`, then releases this gateway's.
async fn keep_leases(gateway: std::sync::Weak<Gateway>, every: Duration, stop: CancellationToken) {
    let mut rounds = tokio::time::interval(every);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = rounds.tick() => {}
            () = stop.cancelled() => break,
        }
        let Some(gateway) = gateway.upgrade() else {
            return;
        };
        gateway.keep_round().await;
    }
    let Some(gateway) = gateway.upgrade() else {
        return;
    };
    if let Some(kept) = gateway.resources.kept.get()
        && let Err(error) = kept.registry.release_subscriptions(this_gateway()).await
    {
        tracing::debug!(%error, "cannot release the resource subscriptions held here; they lapse");
    }
}
