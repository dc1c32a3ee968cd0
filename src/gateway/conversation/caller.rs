//! The client side of a conversation, as the upstream sees it: the requests it puts to the
//! client become `input_required` rounds of the client's call, and its log messages go to
//! whichever of the client's requests waits on the call.

use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{
        ClientCapabilities, ClientResult, ErrorCode, LoggingMessageNotificationParam, ServerRequest,
    },
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Event, Pending};
use crate::{
    gateway::client_requests::{into_input_request, missing_capability},
    upstream::Caller,
};

/// The client side of a conversation, as the upstream's callers see it.
pub(super) struct ConversationCaller {
    pub(super) key: u64,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) capabilities: Arc<ClientCapabilities>,
}

impl Caller for ConversationCaller {
    fn key(&self) -> u64 {
        self.key
    }

    fn log(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        // Never held up: a log message the client is too slow for is dropped.
        if self.events.try_send(Event::Log(message)).is_err() {
            tracing::debug!("log message of a bridged call dropped");
        }
        Box::pin(std::future::ready(()))
    }

    fn answer(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        if let Some(error) = missing_capability(&self.capabilities, &request) {
            // The upstream hears the refusal too, but the client's request is over.
            let _ = self.events.try_send(Event::Missing(error.clone()));
            return Box::pin(std::future::ready(Err(error)));
        }
        self.put_to_the_client(request, cancel)
    }

    fn answer_unsure(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        // The request may not be the call's: the upstream hears the refusal and the call goes
        // on, to whatever answer the upstream then gives it.
        if let Some(error) = missing_capability(&self.capabilities, &request) {
            return Box::pin(std::future::ready(Err(error)));
        }
        self.put_to_the_client(request, cancel)
    }
}

impl ConversationCaller {
    /// Makes `request` an `input_required` round of the client's call, and waits for the
    /// answer its retry brings.
    fn put_to_the_client(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let events = self.events.clone();
        let checked = into_input_request(request.clone())
            .map(|_| ())
            .ok_or_else(|| {
                ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    "a 2026-07-28 client cannot be sent this request",
                    None,
                )
            });
        Box::pin(async move {
            checked?;
            let (reply, answer) = oneshot::channel();
            let gone = || ErrorData::internal_error("the client's call has ended", None);
            events
                .send(Event::Input(Pending { request, reply }))
                .await
                .map_err(|_| gone())?;
            tokio::select! {
                answer = answer => answer.map_err(|_| gone())?,
                () = cancel.cancelled() => Err(ErrorData::internal_error("the upstream withdrew its request", None)),
            }
        })
    }
}

/// The client's answer, typed as the result of the request it answers.
#[allow(
    deprecated,
    reason = "sampling and roots are deprecated by SEP-2577, but session-era servers use them"
)]
pub(super) fn decode_answer(
    request: &ServerRequest,
    answer: serde_json::Value,
) -> Result<ClientResult, ErrorData> {
    let invalid = |error: serde_json::Error| {
        ErrorData::invalid_params(
            format!("the client's answer does not fit the request: {error}"),
            None,
        )
    };
    Ok(match request {
        ServerRequest::CreateMessageRequest(_) => ClientResult::CreateMessageResult(Box::new(
            serde_json::from_value(answer).map_err(invalid)?,
        )),
        ServerRequest::ElicitRequest(_) => {
            ClientResult::ElicitResult(serde_json::from_value(answer).map_err(invalid)?)
        }
        ServerRequest::ListRootsRequest(_) => {
            ClientResult::ListRootsResult(serde_json::from_value(answer).map_err(invalid)?)
        }
        _ => {
            return Err(ErrorData::new(
                ErrorCode::METHOD_NOT_FOUND,
                "not a client request",
                None,
            ));
        }
    })
}
