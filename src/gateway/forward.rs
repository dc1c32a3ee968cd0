//! Sending one routed request upstream on behalf of one client request.
//!
//! Every routed request goes through [`send`]: it applies the upstream's call deadline and the
//! client's cancellation (either one sends `notifications/cancelled` upstream with the id we
//! used there), routes the upstream's progress notifications back to this client only, and
//! registers the client as the caller of the requests the upstream sends meanwhile. Requests
//! that may be answered with `input_required` go through [`send_bridged`], which bridges a
//! client and an upstream of different protocol eras.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era clients use it"
)]

use std::{pin::pin, sync::Arc};

use serde_json::{Map, Value};

use rmcp::{
    Peer, RoleClient, RoleServer, ServiceError,
    model::{
        CancelledNotificationParam, ClientCapabilities, ClientRequest, LoggingLevel,
        ProgressNotificationParam, ProgressToken, RequestId, RequestMetaObject, ServerResult,
    },
    service::PeerRequestOptions,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    client_requests::{Retry, Round, request_log_level, set_retry, take_retry, with_input_rounds},
    conversation::Conversations,
    isolation::SessionConnections,
};
use crate::{
    error::{GatewayError, cannot_send},
    security::{Identity, Lease},
    upstream::{
        CallContext, Caller, Mirrored, Outgoing, ProgressSink, Upstream, UpstreamLane, unreadable,
    },
};

/// The client a request's progress goes to, and the token it chose.
#[derive(Clone)]
pub struct ProgressTarget {
    pub client: Peer<RoleServer>,
    pub token: ProgressToken,
}

/// Who asked: what cancels the request, where its progress goes (if the client asked for
/// progress), and who answers the requests it causes upstream.
#[derive(Clone, Default)]
pub struct Origin {
    pub cancel: CancellationToken,
    /// Where the request's progress goes, under the client's own token: rmcp's session
    /// ([`ProgressTarget`]), or a door's own stream for the call.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// Answers the upstream's requests (sampling, elicitation, roots) this request causes.
    pub caller: Option<Arc<dyn Caller>>,
    /// Whether the client speaks the stateless 2026-07-28 revision.
    pub stateless: bool,
    /// What the client declared it can do (at `initialize`, or in this request's `_meta`).
    /// A 2026-07-28 upstream is told these, not the gateway's own: what it may ask depends
    /// on the client behind the gateway.
    pub capabilities: Option<Arc<ClientCapabilities>>,
    /// The session's own upstream connections (`isolation: per-session`).
    pub connections: Option<Arc<SessionConnections>>,
    /// The least severe log messages the client wants; `None` if it did not say.
    pub log_level: Option<LoggingLevel>,
    /// The client's name (`clientInfo.name`), or the REST route, for the call log.
    pub client: Option<Arc<str>>,
    /// The authenticated user: for the call log, and whose sign-in a `credentials: per-user`
    /// upstream uses.
    pub principal: Option<Identity>,
    /// The virtual server the request came through: it sees and reaches only its part of
    /// the catalog.
    pub view: Option<Arc<super::View>>,
    /// The lease of the credential the request came with: when it ends (revoked, logged
    /// out, expired), the request is cancelled like one its client cancelled.
    pub credential: Option<Lease>,
}

impl Origin {
    /// Whether the client declared it takes tasks.
    pub fn takes_tasks(&self) -> bool {
        self.capabilities
            .as_deref()
            .is_some_and(ClientCapabilities::supports_tasks)
    }
}

/// Resolves when `credential`, if there is one, ends; never without one.
async fn credential_ends(credential: Option<&Lease>) -> GatewayError {
    match credential {
        Some(lease) => GatewayError::CredentialEnded {
            reason: lease.ended().await.to_string(),
        },
        None => std::future::pending().await,
    }
}

/// rmcp moves a request's `_meta` into its context; put it back so the client's own keys reach
/// the upstream (the gateway strips the keys that belong to this hop).
pub(super) fn with_client_meta<P: rmcp::model::RequestParamsMeta>(
    mut params: P,
    context: &rmcp::service::RequestContext<RoleServer>,
) -> P {
    let slot = params.meta_mut();
    if slot.is_none() && !context.meta.is_empty() {
        *slot = Some(context.meta.clone());
    }
    params
}

/// The progress token and the per-request lifecycle keys (protocol version, client info and
/// capabilities) describe the client's hop, not ours: rmcp sets our own.
pub fn strip_hop_meta(meta: &mut Option<RequestMetaObject>) {
    if let Some(inner) = meta.as_mut() {
        inner.retain(|key, _| {
            key != "progressToken" && !key.starts_with("io.modelcontextprotocol/")
        });
        if inner.is_empty() {
            *meta = None;
        }
    }
}

/// Sends `request` to `upstream` and waits for its result under the deadline and `origin`'s
/// cancellation.
pub async fn send(
    upstream: &Upstream,
    peer: &Peer<RoleClient>,
    request: ClientRequest,
    origin: &Origin,
) -> Result<ServerResult, GatewayError> {
    if let Some(lane) = upstream.lane() {
        return send_on_lane(upstream, lane, &request, origin).await;
    }
    let failed = |error: ServiceError| GatewayError::UpstreamFailed {
        upstream: upstream.name().to_owned(),
        // "Transport closed" says less than why we closed it, when we did.
        reason: upstream
            .closed_because()
            .unwrap_or_else(|| describe(&error)),
    };
    let mut options = PeerRequestOptions::no_options();
    if let Some(capabilities) = &origin.capabilities
        && is_stateless(peer)
    {
        let mut meta = RequestMetaObject::default();
        meta.set_client_capabilities(ClientCapabilities::clone(capabilities));
        options.meta = Some(meta);
    }
    let timeout = upstream.deadline_of(&request);
    let waiting = tokio::time::Instant::now();
    let _slot = tokio::select! {
        slot = tokio::time::timeout(timeout, upstream.call_slot()) => slot.map_err(|_| {
            GatewayError::UpstreamTimeout { upstream: upstream.name().to_owned(), timeout }
        })?,
        () = origin.cancel.cancelled() => return Err(GatewayError::Cancelled),
        ended = credential_ends(origin.credential.as_ref()) => return Err(ended),
    };
    // The wait for a slot counts against the call's deadline.
    let remaining = timeout.saturating_sub(waiting.elapsed());
    let handle = peer
        .send_request_with_option(request, options)
        .await
        .map_err(failed)?;
    let id = handle.id.clone();
    let _caller = origin
        .caller
        .as_ref()
        .map(|caller| upstream.callers().register(id.clone(), caller.clone()));
    let (_route, mut progress) = match &origin.progress {
        Some(target) => {
            let (guard, queue) = upstream.progress().register(handle.progress_token.clone());
            (Some(guard), Some((queue, target)))
        }
        None => (None, None),
    };
    let mut response = pin!(tokio::time::timeout(remaining, handle.await_response()));
    let response = loop {
        tokio::select! {
            // The response first: when both are ready, the queue is drained before answering.
            biased;
            response = &mut response => {
                if let Some((queue, target)) = progress.as_mut() {
                    while let Ok(update) = queue.try_recv() {
                        target.relay(update).await;
                    }
                }
                break response;
            }
            Some((update, target)) = next_progress(&mut progress) => target.relay(update).await,
            () = origin.cancel.cancelled() => {
                cancel_upstream(peer, id, "the client cancelled the request").await;
                return Err(GatewayError::Cancelled);
            }
            ended = credential_ends(origin.credential.as_ref()) => {
                cancel_upstream(peer, id, "the client's credential ended").await;
                return Err(ended);
            }
        }
    };
    match response {
        Err(_) => {
            cancel_upstream(peer, id, "the gateway's call deadline passed").await;
            Err(GatewayError::UpstreamTimeout {
                upstream: upstream.name().to_owned(),
                timeout,
            })
        }
        Ok(Err(ServiceError::McpError(error))) => Err(GatewayError::UpstreamError {
            upstream: upstream.name().to_owned(),
            error,
        }),
        Ok(Err(error)) => Err(failed(error)),
        Ok(Ok(result)) => Ok(result),
    }
}

/// [`send`] on the upstream's own lane (see [`Upstream::call`]).
async fn send_on_lane(
    upstream: &Upstream,
    lane: UpstreamLane,
    request: &ClientRequest,
    origin: &Origin,
) -> Result<ServerResult, GatewayError> {
    let outgoing = outgoing(upstream, &lane, request)?;
    let result = send_raw(upstream, &lane, outgoing, origin).await;
    // As a call's "call done" line says `lane=true`: which way a request went.
    tracing::debug!(upstream = %upstream.name(), method = request.method(), ok = result.is_ok(), "answered on the lane");
    serde_json::from_str(result?.get()).map_err(|error| unreadable(upstream, &error))
}

/// Sends `outgoing` on the upstream's lane for `origin` and returns the result as the
/// upstream wrote it.
pub(super) async fn send_raw(
    upstream: &Upstream,
    lane: &UpstreamLane,
    outgoing: Outgoing,
    origin: &Origin,
) -> Result<Box<serde_json::value::RawValue>, GatewayError> {
    let context = CallContext {
        caller: origin.caller.clone(),
        progress: origin.progress.clone(),
        capabilities: origin.capabilities.clone(),
    };
    let stop = pin!(async {
        tokio::select! {
            () = origin.cancel.cancelled() => GatewayError::Cancelled,
            ended = credential_ends(origin.credential.as_ref()) => ended,
        }
    });
    upstream.call(lane, outgoing, context, stop).await
}

/// A typed request as it goes on `upstream`'s `lane`: its method, its params' members, its
/// `_meta`, and what a 2026-07-28 HTTP lane's headers say of it.
fn outgoing(
    upstream: &Upstream,
    lane: &UpstreamLane,
    request: &ClientRequest,
) -> Result<Outgoing, GatewayError> {
    let internal = |reason: String| GatewayError::Internal { reason };
    let Ok(Value::Object(mut envelope)) = serde_json::to_value(request) else {
        return Err(internal("a request that is not a JSON object".into()));
    };
    let method = match envelope.remove("method") {
        Some(Value::String(method)) => method,
        _ => return Err(internal("a request without a method".into())),
    };
    let mut params = match envelope.remove("params") {
        Some(Value::Object(params)) => params,
        _ => Map::new(),
    };
    let meta = match params.remove("_meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    let object = serde_json::to_string(&params).map_err(|e| internal(e.to_string()))?;
    // `{…}` → `…`: the members alone, which the lane puts beside `_meta`.
    let members = object[1..object.len() - 1].to_owned();
    let name = named_by(&method)
        .and_then(|key| params.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // A call's arguments that its tool's schema marks `x-mcp-header` go in headers too.
    let arguments = match (&name, params.get("arguments")) {
        (Some(tool), Some(Value::Object(arguments)))
            if method == "tools/call" && lane.mirrors() =>
        {
            upstream.header_arguments(tool, arguments)
        }
        _ => Vec::new(),
    };
    Ok(Outgoing {
        method,
        mirrored: Mirrored { name, arguments },
        members,
        meta,
        deadline: upstream.deadline_of(request),
    })
}

/// The member of a request's `params` that names what it is about, which a 2026-07-28 HTTP
/// upstream is told in `Mcp-Name` too (SEP-2243). rmcp's client has the same table, private
/// to its transport (`extract_name`), for the requests it sends itself.
fn named_by(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
    }
}

impl ProgressSink for ProgressTarget {
    /// Sends one progress update to its client under the client's own token.
    fn relay(
        &self,
        mut update: ProgressNotificationParam,
    ) -> futures::future::BoxFuture<'static, ()> {
        update.progress_token = self.token.clone();
        let client = self.client.clone();
        Box::pin(async move {
            if let Err(error) = client.notify_progress(update).await {
                tracing::debug!(%error, "progress not delivered to the client");
            }
        })
    }
}

/// What went wrong, for the client: a transport error by its causes (see [`cannot_send`]).
fn describe(error: &ServiceError) -> String {
    match error {
        ServiceError::TransportSend(sending) => cannot_send(sending.error.as_ref()),
        error => error.to_string(),
    }
}

/// Whether the upstream speaks the stateless 2026-07-28 revision on this connection.
pub fn is_stateless(peer: &Peer<RoleClient>) -> bool {
    peer.peer_info()
        .is_some_and(|info| !info.protocol_version.has_initialize())
}

/// Sends a request that the upstream may answer with `input_required` (tools/call,
/// prompts/get, resources/read), bridging the eras of client and upstream:
/// - a 2026-07-28 client of a session-era upstream: the upstream's mid-call requests become
///   `input_required` results (see [`Conversations`]);
/// - a session-era client of a 2026-07-28 upstream: the gateway puts the upstream's input
///   requests to the client on its session and retries with the answers;
/// - same era on both sides: passed through as is.
pub async fn send_bridged(
    upstream: &Arc<Upstream>,
    peer: &Peer<RoleClient>,
    mut request: ClientRequest,
    origin: &Origin,
    conversations: &Conversations,
    binding: &str,
) -> Result<ServerResult, GatewayError> {
    let stateless_upstream = is_stateless(peer);
    if stateless_upstream && let Some(level) = origin.log_level {
        // A 2026-07-28 upstream sends a request's log messages only if it asks for them.
        request_log_level(&mut request, level);
    }
    match (origin.stateless, &origin.caller, stateless_upstream) {
        (true, _, false) => {
            let retry = take_retry(&mut request);
            conversations
                .forward(upstream, peer, request, retry, origin, binding)
                .await
        }
        (false, Some(caller), true) => {
            let send = |retry: Option<Retry>| {
                let mut request = request.clone();
                if let Some(retry) = retry {
                    set_retry(&mut request, retry);
                }
                send(upstream, peer, request, origin)
            };
            let read = |result| {
                Ok(match result {
                    ServerResult::InputRequiredResult(input) => Round::Asks(
                        input.input_requests.unwrap_or_default(),
                        input.request_state,
                    ),
                    result => Round::Done(result),
                })
            };
            with_input_rounds(upstream, caller.as_ref(), &origin.cancel, send, read).await
        }
        _ => send(upstream, peer, request, origin).await,
    }
}

/// The next queued progress update, if this request collects any; pending otherwise.
async fn next_progress(
    progress: &mut Option<(
        mpsc::Receiver<ProgressNotificationParam>,
        &Arc<dyn ProgressSink>,
    )>,
) -> Option<(ProgressNotificationParam, Arc<dyn ProgressSink>)> {
    match progress {
        Some((queue, target)) => queue.recv().await.map(|update| (update, (*target).clone())),
        None => std::future::pending().await,
    }
}

async fn cancel_upstream(peer: &Peer<RoleClient>, id: RequestId, reason: &str) {
    let notice = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
    if let Err(error) = peer.notify_cancelled(notice).await {
        tracing::debug!(%error, "could not send notifications/cancelled upstream");
    }
}

/// The error for an upstream answer of the wrong kind.
pub fn unexpected(upstream: &Upstream, result: &ServerResult) -> GatewayError {
    GatewayError::UpstreamFailed {
        upstream: upstream.name().to_owned(),
        reason: format!("unexpected answer: {}", variant_name(result)),
    }
}

fn variant_name(result: &ServerResult) -> String {
    let debug = format!("{result:?}");
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("unknown")
        .to_owned()
}
