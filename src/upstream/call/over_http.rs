//! [`Upstream::call`] on an HTTP lane: the request's exchange, driven to its answer.
//!
//! While the answer is awaited, what the upstream puts on the request's stream is handled
//! here: its requests (sampling, elicitation, roots) are put to the call's caller and the
//! answers sent back, each concurrently with the rest; its log messages go to the caller, its
//! progress (when asked for) to the call's sink, and what concerns the connection (list
//! changes, resource updates) to the connection's handler. A call that ends without its
//! answer (stopped, past its deadline, or dropped) is cancelled upstream.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era servers use it"
)]

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use futures::{StreamExt, stream::FuturesUnordered};
use rmcp::model::{
    ClientRequest, ClientResult, PingRequest, ProgressToken, RequestId, ServerNotification,
    ServerRequest,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::CallContext;
use crate::{
    error::GatewayError,
    upstream::{
        Caller, Upstream,
        callers::{NO_CALL, unroutable},
        http_lane::{HttpLane, Incoming},
        lane::{Answer, LaneError, id_of},
        mirrored::Mirrored,
    },
};

/// A request sent on an HTTP lane.
pub(super) struct HttpRequest<'a> {
    pub number: u64,
    pub method: &'a str,
    pub mirrored: &'a Mirrored,
    pub params: &'a str,
}

impl Upstream {
    /// Sends `request` on `lane` and waits for its answer until `deadline` or `stop`.
    pub(super) async fn call_over_http(
        &self,
        lane: &Arc<HttpLane>,
        request: HttpRequest<'_>,
        context: CallContext,
        mut stop: Pin<&mut impl Future<Output = GatewayError>>,
        deadline: Instant,
        timed_out: impl Fn() -> GatewayError,
    ) -> Result<Answer, GatewayError> {
        let mut unanswered = Unanswered {
            lane: lane.clone(),
            number: Some(request.number),
            reason: "the client went away",
        };
        // What the upstream sends on the session's own stream instead of the request's (the
        // TypeScript SDK does, for a request its tool makes without naming the call) finds
        // the caller there, as on rmcp's way.
        let _caller = context
            .caller
            .clone()
            .map(|caller| self.callers().register(id_of(request.number), caller));
        let sent = async {
            let send = || {
                lane.send(
                    request.number,
                    request.method,
                    request.mirrored,
                    request.params,
                )
            };
            match send().await {
                Err(LaneError::SessionExpired) => {
                    // Boxed: rare, and larger than the rest of the call's future.
                    Box::pin(self.renew_session(lane)).await?;
                    send().await.map_err(|error| self.lane_failed(error))
                }
                sent => sent.map_err(|error| self.lane_failed(error)),
            }
        };
        let mut exchange = tokio::select! {
            sent = tokio::time::timeout_at(deadline, sent) => match sent {
                Ok(sent) => sent?,
                Err(_) => {
                    unanswered.reason = "the gateway's call deadline passed";
                    return Err(timed_out());
                }
            },
            error = &mut stop => {
                unanswered.reason = "the client cancelled the request";
                return Err(error);
            }
        };
        let ours = ProgressToken(id_of(request.number));
        let mut asked = FuturesUnordered::new();
        let mut withdrawn: HashMap<RequestId, CancellationToken> = HashMap::new();
        let answer = loop {
            tokio::select! {
                incoming = exchange.next() => match incoming {
                    Ok(Incoming::Answer(answer)) => break Ok(answer),
                    Err(error) => break Err(error),
                    Ok(Incoming::Request(id, request)) => {
                        let cancel = CancellationToken::new();
                        withdrawn.insert(id.clone(), cancel.clone());
                        asked.push(ask(lane.clone(), context.caller.clone(), id, request, cancel));
                    }
                    Ok(Incoming::Notification(notification)) => {
                        noticed(lane, notification, &context, &ours, &withdrawn).await;
                    }
                },
                Some(id) = asked.next() => {
                    withdrawn.remove(&id);
                }
                () = tokio::time::sleep_until(deadline) => {
                    unanswered.reason = "the gateway's call deadline passed";
                    return Err(timed_out());
                }
                error = &mut stop => {
                    unanswered.reason = "the client cancelled the request";
                    return Err(error);
                }
            }
        };
        match answer {
            Ok(answer) => {
                unanswered.number = None;
                Ok(answer)
            }
            Err(error) => {
                unanswered.reason = "the gateway lost the request's stream";
                Err(self.lane_failed(error))
            }
        }
    }

    /// Has rmcp's client open a new session for one the upstream no longer knows: rmcp does
    /// that when a request of its own finds the session expired, and the transport notes the
    /// new session for the lane (see `http::Affinity`).
    async fn renew_session(&self, lane: &HttpLane) -> Result<(), GatewayError> {
        let expired = lane.session_id();
        let peer = self.ready_peer()?;
        let ping = ClientRequest::PingRequest(PingRequest::default());
        if let Err(error) = peer.send_request(ping).await {
            tracing::debug!(upstream = %self.name(), %error, "the ping that renews an expired session failed");
        }
        if lane.session_id() == expired {
            return Err(GatewayError::UpstreamFailed {
                upstream: self.name().to_owned(),
                reason:
                    "it no longer knows the gateway's session, and no new session could be opened"
                        .into(),
            });
        }
        tracing::info!(upstream = %self.name(), "its session had expired: a new one was opened");
        Ok(())
    }
}

/// Puts the upstream's request to the call's caller and sends the answer back; returns the
/// request's id when done.
async fn ask(
    lane: Arc<HttpLane>,
    caller: Option<Arc<dyn Caller>>,
    id: RequestId,
    request: ServerRequest,
    cancel: CancellationToken,
) -> RequestId {
    let answer = match (request, caller) {
        (ServerRequest::PingRequest(_), _) => Ok(ClientResult::empty(())),
        (request, Some(caller)) => caller.answer(request, cancel).await,
        (_, None) => Err(unroutable(NO_CALL)),
    };
    lane.reply(id.clone(), answer).await;
    id
}

/// Takes a notification that came on the call's stream.
async fn noticed(
    lane: &HttpLane,
    notification: ServerNotification,
    context: &CallContext,
    ours: &ProgressToken,
    withdrawn: &HashMap<RequestId, CancellationToken>,
) {
    match notification {
        ServerNotification::LoggingMessageNotification(message) => {
            if let Some(caller) = &context.caller {
                caller.log(message.params).await;
            }
        }
        ServerNotification::ProgressNotification(progress) => {
            if let Some(sink) = &context.progress
                && progress.params.progress_token == *ours
            {
                sink.relay(progress.params).await;
            }
        }
        ServerNotification::CancelledNotification(cancelled) => {
            let cancel = cancelled
                .params
                .request_id
                .and_then(|id| withdrawn.get(&id));
            if let Some(cancel) = cancel {
                cancel.cancel();
            }
        }
        other => lane.notices().notice(other),
    }
}

/// A request whose call ended without its answer: cancelled upstream, for `reason`, on a
/// task of its own (the upstream may be the reason the call ended).
struct Unanswered {
    lane: Arc<HttpLane>,
    /// Taken when the answer arrives.
    number: Option<u64>,
    reason: &'static str,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(number) = self.number.take()
            && self.lane.in_session()
        {
            let lane = self.lane.clone();
            let reason = self.reason;
            tokio::spawn(async move { lane.cancel(number, reason).await });
        }
    }
}
