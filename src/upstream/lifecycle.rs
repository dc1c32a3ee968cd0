//! An upstream's life: connect and hand-shake within its start deadline, publish what it
//! offers, then serve until its connection ends, it asks for a sign-in or the gateway stops;
//! list again when it says its lists changed (subscribing again to those changes when a
//! 2026-07-28 upstream ends the subscription); and clean up its process after.

use std::{pin::pin, sync::Arc, time::Duration};

use rmcp::{
    Peer, RoleClient,
    model::{ProtocolVersion, SubscriptionFilter},
    service::Subscription,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    Affinity, ChildProcess, Connection, HttpLane, Phase, Upstream, UpstreamAuth, UpstreamClient,
    UpstreamLane, UpstreamState,
    offer::{Offer, next_list_change},
};
use crate::sync::lock;

/// How long after a failed re-listing it is tried again.
const RELIST_AGAIN_AFTER: Duration = Duration::from_millis(200);

/// How long after the upstream ended the gateway's subscription to its list changes the
/// gateway subscribes again. It doubles, up to [`RESUBSCRIBE_MOST`], after a try that failed
/// and after a subscription that lasted less than that: an upstream that ends every stream at
/// once is not asked again and listed again every second.
const RESUBSCRIBE_FIRST: Duration = Duration::from_secs(1);
const RESUBSCRIBE_MOST: Duration = Duration::from_secs(60);

/// When to subscribe again to an upstream's list changes.
struct Resubscribing {
    /// When to, if the subscription ended.
    next: Option<Instant>,
    /// The wait before the next try.
    wait: Duration,
    /// When the subscription now open was opened.
    since: Instant,
}

impl Resubscribing {
    fn new() -> Self {
        Self {
            next: None,
            wait: RESUBSCRIBE_FIRST,
            since: Instant::now(),
        }
    }

    /// The subscription ended: the wait before subscribing again.
    fn ended(&mut self) -> Duration {
        if self.since.elapsed() >= RESUBSCRIBE_MOST {
            self.wait = RESUBSCRIBE_FIRST;
        }
        self.try_after_wait()
    }

    fn subscribed(&mut self) {
        self.next = None;
        self.since = Instant::now();
    }

    fn failed(&mut self) {
        self.try_after_wait();
    }

    /// Sets the next try after the current wait, and doubles the wait for the one after.
    fn try_after_wait(&mut self) -> Duration {
        let wait = self.wait;
        self.next = Some(Instant::now() + wait);
        self.wait = (wait * 2).min(RESUBSCRIBE_MOST);
        wait
    }
}

/// Sleeps until `at`; never wakes without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Upstream {
    /// Runs this upstream until `shutdown` is cancelled or its connection ends.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.config.disabled {
            return;
        }
        let handler = UpstreamClient {
            list_changes: self.list_changes.clone(),
            resource_updates: self.events.resource_updates.clone(),
            callers: self.callers.clone(),
        };
        let deadline = self.settings.startup_timeout;
        if let Some(auth) = &self.oauth
            && tokio::time::timeout(deadline, auth.restore())
                .await
                .is_err()
        {
            tracing::warn!(upstream = %self.name, "the registry did not open in time to restore its sign-in");
        }
        *lock(&self.closed_because) = None;
        let session = Arc::new(Affinity::default());
        let notices = handler.clone();
        let (mut child, handshake) = match self.open(handler, &session) {
            Ok(opened) => opened,
            Err(reason) => return self.fail(reason),
        };
        let started = tokio::select! {
            started = tokio::time::timeout(deadline, handshake) => started,
            () = shutdown.cancelled() => {
                self.publish(UpstreamState::new(Phase::Stopped));
                return self.reap(child).await;
            }
        };
        let (connection, offer) = match started {
            Ok(Ok(ready)) => ready,
            Ok(Err(reason)) => {
                if self.opens_again_with_discover(&reason) {
                    self.reap(child).await;
                    return Box::pin(self.run(shutdown)).await;
                }
                if let Some(how) = self.oauth.as_ref().and_then(|auth| auth.needed()) {
                    *self.lock_last_error() = Some(reason);
                    self.publish(UpstreamState::new(Phase::NeedsAuthorization(how)));
                    return self.reap(child).await;
                }
                let reason = self.explain_exit(&mut child, reason).await;
                self.fail(reason);
                return self.reap(child).await;
            }
            Err(_) => {
                self.fail(format!("did not start within {deadline:?}"));
                return self.reap(child).await;
            }
        };
        let peer = connection.peer().clone();
        let protocol_version = peer.peer_info().map(|info| info.protocol_version.clone());
        tracing::info!(
            upstream = %self.name,
            tools = offer.tools.len(),
            prompts = offer.prompts.len(),
            resources = offer.resources.len(),
            templates = offer.templates.len(),
            protocol = protocol_version.as_ref().map_or("?", |v| v.as_str()),
            "ready"
        );
        let lane = self.lane_of(child.as_ref(), protocol_version.as_ref(), session, notices);
        self.keep_hints(offer.hints.clone());
        self.publish(self.checked(offer).into_state(peer, protocol_version, lane));
        self.list_changes.all_caught_up();
        self.serve(connection, &shutdown, &mut child).await;
        self.reap(child).await;
    }

    /// Serves a ready connection until it ends or shutdown; re-lists tools on `list_changed`.
    async fn serve(
        &self,
        connection: Connection,
        shutdown: &CancellationToken,
        child: &mut Option<ChildProcess>,
    ) {
        let peer = connection.peer().clone();
        let cancel = connection.cancellation_token();
        let mut changes = self.subscribe_to_list_changes(&peer).await;
        let mut subscribing = Resubscribing::new();
        let mut finished = pin!(connection.waiting());
        loop {
            tokio::select! {
                changed = next_list_change(&mut changes) => {
                    if changed {
                        self.relist_for(&peer, self.list_changes.heard_here()).await;
                    } else {
                        let wait = subscribing.ended();
                        tracing::info!(upstream = %self.name, ?wait, "the upstream ended the subscription to its list changes; subscribing again");
                        changes = None;
                    }
                }
                () = sleep_until_some(subscribing.next) => {
                    changes = self.subscribe_to_list_changes(&peer).await;
                    if changes.is_some() {
                        subscribing.subscribed();
                        // What changed while nobody listened.
                        self.relist(&peer).await;
                    } else {
                        subscribing.failed();
                    }
                }
                _ = &mut finished => {
                    let reason = self
                        .closed_because()
                        .unwrap_or_else(|| "connection closed".into());
                    let reason = self.explain_exit(child, reason).await;
                    return self.fail(reason);
                }
                () = shutdown.cancelled() => {
                    cancel.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(1), finished).await;
                    return self.publish(UpstreamState::new(Phase::Stopped));
                }
                upto = self.list_changes.next() => self.relist_for(&peer, upto).await,
                () = signed_out(self.oauth.as_deref()) => {
                    cancel.cancel();
                    let _ = tokio::time::timeout(Duration::from_secs(1), finished).await;
                    let how = self.oauth.as_ref().and_then(|auth| auth.needed()).unwrap_or_default();
                    return self.publish(UpstreamState::new(Phase::NeedsAuthorization(how)));
                }
            }
        }
    }

    /// A 2026-07-28 upstream sends `list_changed` only on a `subscriptions/listen` stream;
    /// session-era ones send it on the session (see [`UpstreamClient`]).
    async fn subscribe_to_list_changes(&self, peer: &Peer<RoleClient>) -> Option<Subscription> {
        let info = peer.peer_info()?;
        if info.protocol_version.as_str() < ProtocolVersion::V_2026_07_28.as_str() {
            return None;
        }
        let capabilities = &info.capabilities;
        let mut filter = SubscriptionFilter::builder();
        if capabilities
            .tools
            .as_ref()
            .is_some_and(|c| c.list_changed == Some(true))
        {
            filter = filter.tools_list_changed();
        }
        if capabilities
            .prompts
            .as_ref()
            .is_some_and(|c| c.list_changed == Some(true))
        {
            filter = filter.prompts_list_changed();
        }
        if capabilities
            .resources
            .as_ref()
            .is_some_and(|c| c.list_changed == Some(true))
        {
            filter = filter.resources_list_changed();
        }
        let filter = filter.build();
        if filter == SubscriptionFilter::default() {
            return None;
        }
        match tokio::time::timeout(self.settings.startup_timeout, peer.listen(filter)).await {
            Ok(Ok(subscription)) => Some(subscription),
            Ok(Err(error)) => {
                tracing::warn!(upstream = %self.name, %error, "cannot subscribe to list changes");
                None
            }
            Err(_) => {
                tracing::warn!(upstream = %self.name, "subscribing to list changes timed out");
                None
            }
        }
    }

    /// `offer` with its tool definitions compared to the first seen (changes logged; with
    /// `pin`, changed tools left out).
    pub(super) fn checked(&self, mut offer: Offer) -> Offer {
        offer.tools = self
            .first_definitions
            .check(&self.name, self.config.pin, offer.tools);
        offer
    }

    /// Lists again for the first `upto` list changes heard; the lists waiting on them are
    /// served after (see `list_changes`), whether the listing worked or not.
    async fn relist_for(&self, peer: &Peer<RoleClient>, upto: u64) {
        self.relist(peer).await;
        self.list_changes.caught_up(upto);
    }

    async fn relist(&self, peer: &Peer<RoleClient>) {
        let Some(offer) = self.listed_again(peer).await else {
            return;
        };
        tracing::info!(
            upstream = %self.name,
            tools = offer.tools.len(),
            prompts = offer.prompts.len(),
            resources = offer.resources.len(),
            "offer changed"
        );
        let current = self.state();
        let protocol_version = current.protocol_version.clone();
        let lane = current.lane.clone();
        self.keep_hints(offer.hints.clone());
        self.publish(
            self.checked(offer)
                .into_state(peer.clone(), protocol_version, lane),
        );
    }

    /// Everything it offers, listed again within its start deadline; `None` (logged) when
    /// that fails twice: the old lists are kept.
    pub(super) async fn listed_again(&self, peer: &Peer<RoleClient>) -> Option<Offer> {
        let listed = async {
            match Offer::fetch(peer).await {
                Err(error) => {
                    // A failure can be the connection's, not the upstream's: a keep-alive
                    // connection the upstream closed just as the request went out on it (Node
                    // closes one idle for 5 s). Asking for lists changes nothing: ask again.
                    tracing::debug!(upstream = %self.name, %error, "re-listing failed; trying once more");
                    tokio::time::sleep(RELIST_AGAIN_AFTER).await;
                    Offer::fetch(peer).await
                }
                listed => listed,
            }
        };
        match tokio::time::timeout(self.settings.startup_timeout, listed).await {
            Ok(Ok(offer)) => Some(offer),
            Ok(Err(error)) => {
                tracing::warn!(upstream = %self.name, %error, "re-listing failed; keeping the old lists");
                None
            }
            Err(_) => {
                tracing::warn!(upstream = %self.name, "re-listing timed out; keeping the old lists");
                None
            }
        }
    }

    /// The gateway's own lane on a new connection: a stdio child's pipes, or a streamable
    /// HTTP upstream's URL (in the session its `initialize` opened, in the session era, and
    /// with the cookies the upstream set: `session`); none for the rest (rmcp carries every
    /// request).
    fn lane_of(
        &self,
        child: Option<&ChildProcess>,
        version: Option<&ProtocolVersion>,
        session: Arc<Affinity>,
        notices: UpstreamClient,
    ) -> Option<UpstreamLane> {
        if let Some(child) = child {
            return Some(UpstreamLane::Stdio(child.lane.clone()));
        }
        let version = version?;
        if self.config.transport_kind() != crate::config::TransportKind::StreamableHttp {
            return None;
        }
        let max = self.settings.max_response_bytes;
        match HttpLane::new(
            &self.name,
            &self.config,
            version,
            max,
            session,
            notices,
            self.oauth.clone(),
        ) {
            Ok(lane) => Some(UpstreamLane::Http(Arc::new(lane))),
            Err(error) => {
                tracing::warn!(upstream = %self.name, %error, "no lane of our own; rmcp carries its calls");
                None
            }
        }
    }

    /// Adds the child's exit status to a failure reason when the child has exited.
    async fn explain_exit(&self, child: &mut Option<ChildProcess>, reason: String) -> String {
        let Some(child) = child else {
            return reason;
        };
        match tokio::time::timeout(Duration::from_millis(200), child.group.wait()).await {
            Ok(Ok(status)) => format!("{reason}: process {status}"),
            _ => reason,
        }
    }

    /// Terminates the child's process group and waits for its stderr to drain. Its lane is
    /// closed first: the calls still waiting on it fail now, after the upstream's failure (if
    /// it failed) was published, so a client that sees them fail and asks for the state
    /// does not find it still ready.
    async fn reap(&self, child: Option<ChildProcess>) {
        let Some(mut child) = child else { return };
        child.lane.close();
        if let Some(status) = child.group.terminate(self.settings.shutdown_grace).await {
            tracing::debug!(upstream = %self.name, %status, "process group terminated");
        }
        // Every process of the group is gone, so the pipe closes; a process that left the
        // group may still hold it, and must not hold up shutdown.
        let pump = &mut child.stderr_pump;
        if tokio::time::timeout(Duration::from_secs(1), &mut *pump)
            .await
            .is_err()
        {
            pump.abort();
        }
    }
}

/// Resolves when `auth` comes to need a sign-in; never without OAuth.
async fn signed_out(auth: Option<&UpstreamAuth>) {
    match auth {
        Some(auth) => auth.lost().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_subscription_ended_at_once_is_asked_again_ever_later_and_a_lasting_one_soon() {
        let mut subscribing = Resubscribing::new();
        // Ended at once, again and again: 1 s, 2 s, 4 s… up to a minute.
        let mut waits = Vec::new();
        for _ in 0..8 {
            waits.push(subscribing.ended().as_secs());
            subscribing.subscribed();
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        // One that lasted a minute is asked again after a second.
        tokio::time::advance(RESUBSCRIBE_MOST).await;
        assert_eq!(subscribing.ended(), RESUBSCRIBE_FIRST);
        assert_eq!(
            subscribing.next,
            Some(Instant::now() + RESUBSCRIBE_FIRST),
            "when to"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_try_waits_twice_as_long_before_the_next() {
        let mut subscribing = Resubscribing::new();
        subscribing.ended();
        subscribing.failed();
        assert_eq!(
            subscribing.next,
            Some(Instant::now() + 2 * RESUBSCRIBE_FIRST)
        );
        subscribing.failed();
        assert_eq!(
            subscribing.next,
            Some(Instant::now() + 4 * RESUBSCRIBE_FIRST)
        );
        subscribing.subscribed();
        assert_eq!(subscribing.next, None);
    }
}
