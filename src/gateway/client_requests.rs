//! Requests that flow back: an upstream asks the client for sampling, elicitation or roots.
//!
//! A session-era client is asked directly, on its session ([`SessionCaller`]). A 2026-07-28
//! upstream asks by answering a call with an `input_required` result instead: for a session-era
//! client the gateway puts each of those requests to the client and retries the call with the
//! answers ([`answer_input_requests`]); a 2026-07-28 client gets the result as it is. The
//! other pairing, a 2026-07-28 client of a session-era upstream, is [`super::conversation`].

#![allow(
    deprecated,
    reason = "sampling, roots and logging are deprecated by SEP-2577, but session-era servers use them"
)]

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        ClientCapabilities, ClientRequest, ClientResult, ErrorCode, InputRequest, InputRequests,
        InputResponses, LoggingLevel, LoggingMessageNotificationParam, ServerRequest,
    },
    service::PeerRequestOptions,
};
use tokio_util::sync::CancellationToken;

use super::logging::{SessionLogLevel, rank};
use crate::upstream::Caller;

/// A session-era client, asked on its own session.
pub struct SessionCaller {
    pub session: u64,
    pub client: Peer<RoleServer>,
    pub log_level: Arc<SessionLogLevel>,
}

impl Caller for SessionCaller {
    fn key(&self) -> u64 {
        self.session
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
        Box::pin(async move {
            let capabilities = client
                .peer_info()
                .map(|info| info.capabilities.clone())
                .unwrap_or_default();
            check_capability(&capabilities, &request)?;
            ask(&client, request, &cancel).await
        })
    }
}

/// A 2026-07-28 client's request: the client cannot be sent requests (its upstream asks with
/// `input_required` results instead), but the log messages the request causes go on its
/// response stream if it asked for them.
pub struct StatelessCaller {
    pub key: u64,
    pub client: Peer<RoleServer>,
    pub log_level: Option<LoggingLevel>,
}

impl Caller for StatelessCaller {
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
            "a 2026-07-28 client cannot be sent requests outside an input_required result",
            None,
        ))))
    }

    fn log(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let admitted = self
            .log_level
            .is_some_and(|floor| rank(message.level) >= rank(floor));
        let client = self.client.clone();
        Box::pin(async move {
            if admitted {
                let _ = client.notify_logging_message(message).await;
            }
        })
    }
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

/// Sends `request` to a session-era client; withdraws it there if `cancel` fires.
async fn ask(
    client: &Peer<RoleServer>,
    request: ServerRequest,
    cancel: &CancellationToken,
) -> Result<ClientResult, ErrorData> {
    let handle = client
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await
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

/// Puts each request of an upstream's `input_required` result to a session-era client, in
/// order, and collects the answers under the upstream's keys.
pub async fn answer_input_requests(
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
pub struct Retry {
    pub input_responses: Option<InputResponses>,
    pub request_state: Option<String>,
}

/// Takes the retry fields out of `request` (for an upstream that must not see them).
pub fn take_retry(request: &mut ClientRequest) -> Retry {
    let (input_responses, request_state) = match request {
        ClientRequest::CallToolRequest(request) => (
            &mut request.params.input_responses,
            &mut request.params.request_state,
        ),
        ClientRequest::GetPromptRequest(request) => (
            &mut request.params.input_responses,
            &mut request.params.request_state,
        ),
        ClientRequest::ReadResourceRequest(request) => (
            &mut request.params.input_responses,
            &mut request.params.request_state,
        ),
        _ => {
            return Retry {
                input_responses: None,
                request_state: None,
            };
        }
    };
    Retry {
        input_responses: input_responses.take(),
        request_state: request_state.take(),
    }
}

/// Sets the retry fields of `request` (which must be one that can be retried).
pub fn set_retry(request: &mut ClientRequest, retry: Retry) {
    let Retry {
        input_responses,
        request_state,
    } = retry;
    match request {
        ClientRequest::CallToolRequest(request) => {
            request.params.input_responses = input_responses;
            request.params.request_state = request_state;
        }
        ClientRequest::GetPromptRequest(request) => {
            request.params.input_responses = input_responses;
            request.params.request_state = request_state;
        }
        ClientRequest::ReadResourceRequest(request) => {
            request.params.input_responses = input_responses;
            request.params.request_state = request_state;
        }
        _ => {}
    }
}

/// Asks a 2026-07-28 upstream for the request's log messages at `level` and above.
pub fn request_log_level(request: &mut ClientRequest, level: LoggingLevel) {
    let meta = match request {
        ClientRequest::CallToolRequest(request) => &mut request.params.meta,
        ClientRequest::GetPromptRequest(request) => &mut request.params.meta,
        ClientRequest::ReadResourceRequest(request) => &mut request.params.meta,
        _ => return,
    };
    let level = serde_json::to_value(level).unwrap_or_default();
    meta.get_or_insert_with(Default::default)
        .insert("io.modelcontextprotocol/logLevel".to_owned(), level);
}
