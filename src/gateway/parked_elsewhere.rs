//! A 2026-07-28 client's retry of a call parked on another gateway of the same registry.
//!
//! A call a 2026-07-28 client makes to a session-era upstream that asks it something is
//! parked, waiting on the upstream, on the gateway that served it (see [`super::conversation`]).
//! Behind a balancer with no affinity, the client's retry lands on any replica. Its
//! `requestState` names the gateway that parked the call, and every replica can check it (it
//! is signed with a key they derive alike), so the replica that takes the retry refuses a
//! forged one at once and passes a true one there on the registry's channel, as a parcel
//! (`registry/answers.rs`), and waits for the reply: the call's result, the upstream's next
//! questions (under a state of that gateway's again), or its error. The upstream's log messages during the retry stay on the
//! gateway that holds the call.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rmcp::{ErrorData, model::InputResponses};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Gateway, conversation::Reply};
use crate::{
    error::GatewayError,
    registry::{
        Changes, ParcelKind, PassedAnswer, Registry, RegistryError, next_announcement, this_gateway,
    },
    sync::lock,
};

impl Gateway {
    /// Passes the retries of calls parked on other gateways of `registry` there, and serves
    /// those they pass here, following `changes` until `stop`.
    pub fn pass_parked_calls(
        self: &Arc<Self>,
        registry: Registry,
        changes: &Changes,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) {
        let key = registry.sealer().derive("requestState");
        let relay = Arc::new(Relay::new(registry));
        self.conversations.relay_through(relay.clone(), key);
        tracker.spawn(follow(
            Arc::downgrade(self),
            relay,
            changes.passed_answers(),
            stop,
        ));
    }
}

/// Retries passed on, waiting for their replies, by ticket.
pub struct Relay {
    registry: Registry,
    waiting: Mutex<HashMap<u64, oneshot::Sender<String>>>,
    next: AtomicU64,
}

/// A retry as it travels.
#[derive(Serialize, Deserialize)]
struct Retry {
    /// The tag of the gateway that waits for the reply.
    from: String,
    state: String,
    answers: InputResponses,
    binding: String,
}

/// A reply as it travels: the result's JSON, or the error.
#[derive(Serialize, Deserialize)]
struct Resumed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorData>,
}

impl Relay {
    fn new(registry: Registry) -> Self {
        Self {
            registry,
            waiting: Mutex::default(),
            next: AtomicU64::new(1),
        }
    }

    /// Passes the retry of the call parked on gateway `to` there, and waits up to `within`
    /// for its reply.
    pub async fn resume(
        &self,
        to: &str,
        state: String,
        answers: InputResponses,
        binding: &str,
        upstream: &str,
        within: Duration,
    ) -> Result<Reply, GatewayError> {
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, reply) = oneshot::channel();
        lock(&self.waiting).insert(ticket, sender);
        let _forget = Forget(self, ticket);
        let retry = Retry {
            from: this_gateway().to_owned(),
            state,
            answers,
            binding: binding.to_owned(),
        };
        let parcel = PassedAnswer {
            kind: ParcelKind::Resume,
            session: ticket.to_string(),
            body: serde_json::to_string(&retry).map_err(|error| GatewayError::Internal {
                reason: format!("a retry does not serialize: {error}"),
            })?,
        };
        self.registry
            .pass_answer(to, &parcel)
            .await
            .map_err(|error| unreachable(to, &error))?;
        let text = match tokio::time::timeout(within, reply).await {
            Ok(Ok(text)) => text,
            _ => {
                return Err(GatewayError::Internal {
                    reason: format!(
                        "the gateway that holds this call ({to}) did not answer its retry within {}s; it may have stopped",
                        within.as_secs()
                    ),
                });
            }
        };
        let resumed: Resumed =
            serde_json::from_str(&text).map_err(|error| GatewayError::Internal {
                reason: format!(
                    "the reply of the gateway that holds this call does not read: {error}"
                ),
            })?;
        match (resumed.result, resumed.error) {
            (Some(result), _) => Ok(Reply::Raw(result)),
            (None, Some(error)) => Err(GatewayError::UpstreamError {
                upstream: upstream.to_owned(),
                error,
            }),
            (None, None) => Err(GatewayError::Internal {
                reason: "the gateway that holds this call replied nothing".into(),
            }),
        }
    }

    /// Hands `reply` to the retry waiting under `ticket`, if one still waits.
    fn replied(&self, ticket: &str, reply: String) {
        let waiting = ticket
            .parse()
            .ok()
            .and_then(|ticket: u64| lock(&self.waiting).remove(&ticket));
        match waiting {
            Some(sender) => {
                let _ = sender.send(reply);
            }
            None => tracing::debug!("a reply to a retry came after its wait ended"),
        }
    }
}

/// Forgets a ticket when its wait ends.
struct Forget<'a>(&'a Relay, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.0.waiting).remove(&self.1);
    }
}

fn unreachable(to: &str, error: &RegistryError) -> GatewayError {
    match error {
        RegistryError::NoChannel(why) => GatewayError::InvalidRequestState {
            reason: format!("it was issued by another gateway ({to}), and {why}"),
        },
        error => GatewayError::Internal {
            reason: format!(
                "the retry cannot be passed to the gateway that holds its call ({to}): {error}; try again"
            ),
        },
    }
}

/// Serves the retries other gateways pass to `gateway` and hands their replies to the
/// retries passed from here, until `stop`.
async fn follow(
    gateway: Weak<Gateway>,
    relay: Arc<Relay>,
    mut passed: broadcast::Receiver<Arc<str>>,
    stop: CancellationToken,
) {
    let missed = "retries of calls parked here, or their replies, which then time out";
    while let Some(payload) = next_announcement(&mut passed, &stop, missed).await {
        let registry = &relay.registry;
        match registry.passed_answer(ParcelKind::Resume, &payload).await {
            Ok(Some(parcel)) => {
                let Some(gateway) = gateway.upgrade() else {
                    return;
                };
                let registry = registry.clone();
                tokio::spawn(serve_retry(gateway, registry, parcel));
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read a retry another gateway passed on"),
        }
        match registry.passed_answer(ParcelKind::Resumed, &payload).await {
            Ok(Some(parcel)) => relay.replied(&parcel.session, parcel.body),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot read the reply to a retry"),
        }
    }
}

/// Resumes the call a passed retry names, and passes the outcome back.
async fn serve_retry(gateway: Arc<Gateway>, registry: Registry, parcel: PassedAnswer) {
    let retry: Retry = match serde_json::from_str(&parcel.body) {
        Ok(retry) => retry,
        Err(error) => {
            tracing::warn!(%error, "a retry another gateway passed on does not read");
            return;
        }
    };
    let outcome = gateway
        .conversations
        .resume_here(&retry.state, retry.answers, &retry.binding)
        .await;
    let resumed = match outcome.and_then(Reply::into_raw) {
        Ok(result) => Resumed {
            result: Some(result),
            error: None,
        },
        Err(error) => Resumed {
            result: None,
            error: Some(error.into()),
        },
    };
    let body = match serde_json::to_string(&resumed) {
        Ok(body) => body,
        Err(error) => {
            tracing::warn!(%error, "the reply to a retry does not serialize");
            return;
        }
    };
    let reply = PassedAnswer {
        kind: ParcelKind::Resumed,
        session: parcel.session,
        body,
    };
    if let Err(error) = registry.pass_answer(&retry.from, &reply).await {
        tracing::warn!(%error, "cannot pass the reply to a retry back");
    }
}
