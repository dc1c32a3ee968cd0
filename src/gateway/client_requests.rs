//! Requests that flow back: an upstream asks the client for sampling, elicitation or roots.
//!
//! A session-era client is asked directly, on its session ([`SessionCaller`]). A 2026-07-28
//! upstream asks by answering a call with an `input_required` result instead: for a session-era
//! client the gateway puts each of those requests to the client and retries the call with the
//! answers ([`with_input_rounds`]); a 2026-07-28 client gets the result as it is. The
//! other pairing, a 2026-07-28 client of a session-era upstream, is [`super::conversation`].

#![allow(
    deprecated,
    reason = "sampling, roots and logging are deprecated by SEP-2577, but session-era servers use them"
)]

use std::{future::Future, sync::Arc};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientCapabilities, ClientRequest, ClientResult, ErrorCode, GetExtensions, InputRequest,
        InputRequests, InputResponses, LoggingLevel, LoggingMessageNotificationParam, RequestId,
        RequestMetaObject, ServerRequest,
    },
    service::{OriginatingRequestId, PeerRequestOptions},
};
use tokio_util::sync::CancellationToken;

use super::logging::{SessionLogLevel, rank};
use crate::{
    error::GatewayError,
    upstream::{Caller, Upstream},
};

/// A session-era client, asked on its own session.
pub struct SessionCaller {
    pub session: u64,
    pub client: Peer<RoleServer>,
    /// The client's own id of the request whose call this is: what the upstream's requests
    /// are put to the client under (on that request's response stream).
    pub request: RequestId,
    pub log_level: Arc<SessionLogLevel>,
    /// What it declared at `initialize` (`None` before it has).
    pub capabilities: Option<Arc<ClientCapabilities>>,
}

impl Caller for SessionCaller {
    fn key(&self) -> u64 {
        self.session
    }

    fn session(&self) -> Option<Peer<RoleServer>> {
        Some(self.client.clone())
    }

    fn log(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let admitted = self.log_level.admits(message.level);
        let client = self.client.clone();
        Box::pin(async move {
            if admitted && let Err(error) = client.notify_logging_message(message).await {
                tracing::debug!(%error, "log message not delivered to the client");
            }
        })
    }

    fn answer(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let client = self.client.clone();
        let checked = match &self.capabilities {
            Some(capabilities) => check_capability(capabilities, &request),
            None => check_capability(&ClientCapabilities::default(), &request),
        };
        let originating = self.request.clone();
        Box::pin(async move {
            checked?;
            ask(&client, request, Some(originating), &cancel).await
        })
    }
}

/// Where a 2026-07-28 request's log messages go: the request's own response stream. rmcp's
/// server sends them there through the request's peer; a door's own way writes them on the
/// call's stream itself.
pub trait RequestLog: Send + Sync + 'static {
    fn send(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()>;
}

impl RequestLog for Peer<RoleServer> {
    fn send(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let client = self.clone();
        Box::pin(async move {
            let _ = client.notify_logging_message(message).await;
        })
    }
}

/// Where the log messages of a request that asked for none go: nowhere.
impl RequestLog for () {
    fn send(&self, _message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// A 2026-07-28 client's request: the client cannot be sent requests (its upstream asks with
/// `input_required` results instead), but the log messages the request causes go on its
/// response stream if it asked for them. Also the caller of a REST call, which has no client
/// to ask at all.
///
/// Such a caller is still registered with the upstream while its call is in flight: what the
/// upstream asks then may be this call's, so no other client is asked in its place (or sent
/// its log messages; see `upstream::Callers`).
pub struct StatelessCaller<L = Peer<RoleServer>> {
    key: u64,
    stream: L,
    log_level: Option<LoggingLevel>,
}

impl<L: RequestLog> StatelessCaller<L> {
    /// The caller of one request, whose log messages at `log_level` or above go to `stream`.
    pub fn new(stream: L, log_level: Option<LoggingLevel>) -> Self {
        Self {
            key: super::server::stateless_caller_key(),
            stream,
            log_level,
        }
    }
}

impl StatelessCaller<()> {
    /// The caller of a request whose client can be asked nothing and wants no log messages:
    /// a REST call, a 2026-07-28 call that asked for none.
    pub fn unaskable() -> Arc<dyn Caller> {
        Arc::new(Self::new((), None))
    }
}

impl<L: RequestLog> Caller for StatelessCaller<L> {
    fn key(&self) -> u64 {
        self.key
    }

    fn answer(
        &self,
        _request: ServerRequest,
        _cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        Box::pin(std::future::ready(Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            "the client of this call cannot be sent requests: a 2026-07-28 client is asked only \
             in an input_required result, and a REST call has no client to ask",
            None,
        ))))
    }

    fn log(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let admitted = self
            .log_level
            .is_some_and(|floor| rank(message.level) >= rank(floor));
        if admitted {
            self.stream.send(message)
        } else {
            Box::pin(std::future::ready(()))
        }
    }
}

/// The capability a request to the client needs, as a `requiredCapabilities` value, and its
/// name; `None` for a request that needs none.
fn required_capability(request: &ServerRequest) -> Option<(&'static str, serde_json::Value)> {
    match request {
        ServerRequest::CreateMessageRequest(_) => {
            Some(("sampling", serde_json::json!({"sampling": {}})))
        }
        ServerRequest::ElicitRequest(_) => {
            Some(("elicitation", serde_json::json!({"elicitation": {}})))
        }
        ServerRequest::ListRootsRequest(_) => Some(("roots", serde_json::json!({"roots": {}}))),
        _ => None,
    }
}

/// The error a 2026-07-28 client's request ends with when answering it needs a capability
/// the client did not declare in its `_meta` (-32021, with `requiredCapabilities`): what the
/// revision asks of a server, and the gateway is the server that client talks to.
pub fn missing_capability(
    capabilities: &ClientCapabilities,
    request: &ServerRequest,
) -> Option<ErrorData> {
    check_capability(capabilities, request).err()?;
    let (what, required) = required_capability(request)?;
    Some(ErrorData::new(
        ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!("answering this needs the {what} capability, which the client did not declare"),
        Some(serde_json::json!({ "requiredCapabilities": required })),
    ))
}

/// Refuses a request the client did not declare it can answer.
pub fn check_capability(
    capabilities: &ClientCapabilities,
    request: &ServerRequest,
) -> Result<(), ErrorData> {
    let (declared, what) = match request {
        ServerRequest::CreateMessageRequest(_) => (capabilities.sampling.is_some(), "sampling"),
        ServerRequest::ElicitRequest(_) => (capabilities.elicitation.is_some(), "elicitation"),
        ServerRequest::ListRootsRequest(_) => (capabilities.roots.is_some(), "roots"),
        _ => (true, ""),
    };
    if declared {
        Ok(())
    } else {
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!("the client behind the gateway does not support {what}"),
            None,
        ))
    }
}

/// Sends `request` to a session-era client, on behalf of its request `originating` when
/// there is one; withdraws it there if `cancel` fires.
async fn ask(
    client: &Peer<RoleServer>,
    mut request: ServerRequest,
    originating: Option<RequestId>,
    cancel: &CancellationToken,
) -> Result<ClientResult, ErrorData> {
    // On streamable HTTP, this puts the request on the response stream of the client's own
    // request, as the protocol asks.
    if let Some(originating) = originating {
        request
            .extensions_mut()
            .insert(OriginatingRequestId(originating));
    }
    // Sent from a task of its own: rmcp marks a request with the id of the request its
    // current task is handling, which here is the upstream's request, an id of another
    // connection (its stream cannot be found, or worse, another request of the client's is).
    let sending = client.clone();
    let handle = tokio::spawn(async move {
        sending
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await
    })
    .await
    .map_err(|error| ErrorData::internal_error(format!("client unreachable: {error}"), None))?
    .map_err(|error| ErrorData::internal_error(format!("client unreachable: {error}"), None))?;
    let id = handle.id.clone();
    tokio::select! {
        answer = handle.await_response() => answer.map_err(|error| match error {
            rmcp::ServiceError::McpError(error) => error,
            other => ErrorData::internal_error(format!("client did not answer: {other}"), None),
        }),
        () = cancel.cancelled() => {
            let notice = rmcp::model::CancelledNotificationParam::new(
                Some(id),
                Some("the upstream withdrew its request".into()),
            );
            let _ = client.notify_cancelled(notice).await;
            Err(ErrorData::internal_error("the upstream withdrew its request", None))
        }
    }
}

/// The request inside an `input_required` result, as a request of the session era.
pub fn into_server_request(request: InputRequest) -> Option<ServerRequest> {
    match request {
        InputRequest::CreateMessage(request) => Some(ServerRequest::CreateMessageRequest(request)),
        InputRequest::Elicitation(request) => Some(ServerRequest::ElicitRequest(request)),
        InputRequest::ListRoots(request) => Some(ServerRequest::ListRootsRequest(request)),
        _ => None,
    }
}

/// A session-era request as one inside an `input_required` result, if it can be one.
pub fn into_input_request(request: ServerRequest) -> Option<InputRequest> {
    match request {
        ServerRequest::CreateMessageRequest(request) => Some(InputRequest::CreateMessage(request)),
        ServerRequest::ElicitRequest(request) => Some(InputRequest::Elicitation(request)),
        ServerRequest::ListRootsRequest(request) => Some(InputRequest::ListRoots(request)),
        _ => None,
    }
}

/// How many `input_required` rounds the gateway answers for a session-era client before it
/// gives up on an upstream that keeps asking.
const MAX_INPUT_ROUNDS: usize = 10;

/// An upstream's answer to a request that may ask for input first.
pub enum Round<A> {
    /// The answer the client gets.
    Done(A),
    /// An `input_required` result: its input requests and `requestState`.
    Asks(InputRequests, Option<String>),
}

/// Sends a request to a 2026-07-28 upstream for a session-era client until the upstream
/// answers it: each `input_required` round's requests are put to `caller`, and the request
/// is sent again with the answers. `send` sends it (the first time with no [`Retry`]); `read`
/// tells an answer from a round.
pub async fn with_input_rounds<A, Sent>(
    upstream: &Upstream,
    caller: &dyn Caller,
    cancel: &CancellationToken,
    mut send: impl FnMut(Option<Retry>) -> Sent,
    read: impl Fn(A) -> Result<Round<A>, GatewayError>,
) -> Result<A, GatewayError>
where
    Sent: Future<Output = Result<A, GatewayError>>,
{
    let mut retry = None;
    for _ in 0..MAX_INPUT_ROUNDS {
        let (requests, request_state) = match read(send(retry).await?)? {
            Round::Done(answer) => return Ok(answer),
            Round::Asks(requests, request_state) => (requests, request_state),
        };
        let answers = answer_input_requests(caller, requests, cancel)
            .await
            .map_err(|error| GatewayError::UpstreamError {
                upstream: upstream.name().to_owned(),
                error,
            })?;
        retry = Some(Retry {
            input_responses: Some(answers),
            request_state,
        });
    }
    Err(GatewayError::UpstreamFailed {
        upstream: upstream.name().to_owned(),
        reason: format!("it asked for input more than {MAX_INPUT_ROUNDS} times"),
    })
}

/// Puts each request of an upstream's `input_required` result to a session-era client, in
/// order, and collects the answers under the upstream's keys.
async fn answer_input_requests(
    caller: &dyn Caller,
    requests: InputRequests,
    cancel: &CancellationToken,
) -> Result<InputResponses, ErrorData> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let request = into_server_request(request).ok_or_else(|| {
            ErrorData::internal_error("the upstream asked for input of an unknown kind", None)
        })?;
        let answer = caller.answer(request, cancel.clone()).await?;
        let answer = serde_json::to_value(&answer)
            .map_err(|error| ErrorData::internal_error(error.to_string(), None))?;
        responses.insert(key, answer);
    }
    Ok(responses)
}

/// The retry fields of a request that can be answered with `input_required`.
#[derive(Default)]
pub struct Retry {
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
}

/// The `_meta` and retry fields of a request that can be answered with `input_required`
/// (tools/call, prompts/get, resources/read); `None` for any other request.
#[allow(
    clippy::type_complexity,
    reason = "three disjoint borrows of one request's params"
)]
fn retriable_fields(
    request: &mut ClientRequest,
) -> Option<(
    &mut Option<RequestMetaObject>,
    &mut Option<InputResponses>,
    &mut Option<String>,
)> {
    match request {
        ClientRequest::CallToolRequest(request) => {
            let params = &mut request.params;
            Some((
                &mut params.meta,
                &mut params.input_responses,
                &mut params.request_state,
            ))
        }
        ClientRequest::GetPromptRequest(request) => {
            let params = &mut request.params;
            Some((
                &mut params.meta,
                &mut params.input_responses,
                &mut params.request_state,
            ))
        }
        ClientRequest::ReadResourceRequest(request) => {
            let params = &mut request.params;
            Some((
                &mut params.meta,
                &mut params.input_responses,
                &mut params.request_state,
            ))
        }
        _ => None,
    }
}

/// Takes the retry fields out of `request` (for an upstream that must not see them).
pub fn take_retry(request: &mut ClientRequest) -> Retry {
    match retriable_fields(request) {
        Some((_, input_responses, request_state)) => Retry {
            input_responses: input_responses.take(),
            request_state: request_state.take(),
        },
        None => Retry::default(),
    }
}

/// Sets the retry fields of `request` (which must be one that can be retried).
pub fn set_retry(request: &mut ClientRequest, retry: Retry) {
    if let Some((_, input_responses, request_state)) = retriable_fields(request) {
        *input_responses = retry.input_responses;
        *request_state = retry.request_state;
    }
}

/// The key of a 2026-07-28 request's `_meta` that asks for its log messages.
pub(super) const LOG_LEVEL_META: &str = "io.modelcontextprotocol/logLevel";

/// Asks a 2026-07-28 upstream for the request's log messages at `level` and above.
pub fn request_log_level(request: &mut ClientRequest, level: LoggingLevel) {
    let Some((meta, _, _)) = retriable_fields(request) else {
        return;
    };
    let level = serde_json::to_value(level).unwrap_or_default();
    meta.get_or_insert_with(Default::default)
        .insert(LOG_LEVEL_META.to_owned(), level);
}
