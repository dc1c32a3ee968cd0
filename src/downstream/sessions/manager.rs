//! [`SessionBook`] as rmcp's session manager: every call goes to rmcp's own
//! [`LocalSessionManager`], and the book notes what it must know on the way (a session opened,
//! a request in it, a session closed).
//!
//! rmcp's requests to the client go out under names that say which gateway asked, and the
//! client's answers come back to rmcp under its numbers (see [`crate::downstream::ask_ids`]):
//! behind a balancer, an answer that lands on another gateway is passed on to this one.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use rmcp::{
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage,
        ServerJsonRpcMessage, ServerNotification,
    },
    transport::streamable_http_server::session::{
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager, local::LocalSessionManager,
    },
};

use super::SessionBook;
use crate::downstream::ask_ids::{for_client, from_client};

type Local = LocalSessionManager;

impl SessionManager for SessionBook {
    type Error = <Local as SessionManager>::Error;
    type Transport = <Local as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.local.create_session().await?;
        self.opened(&id);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.local.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        // A sleeping session is unknown to rmcp, which then restores it (see `sleep`).
        if self.is_asleep(id) {
            return Ok(false);
        }
        self.local.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        if self.fell_asleep(id) {
            return Ok(());
        }
        let closed = self.local.close_session(id).await;
        // Counted as closed even when closing failed: the session is gone from rmcp's map.
        self.closed(id);
        closed
    }

    #[allow(
        deprecated,
        reason = "logging is deprecated by SEP-2577, but session-era clients still set a level"
    )]
    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let initialize = matches!(
            &message,
            JsonRpcMessage::Request(request)
                if matches!(request.request, ClientRequest::InitializeRequest(_))
        );
        self.noted(id, !initialize);
        if let JsonRpcMessage::Request(request) = &message
            && let ClientRequest::SetLevelRequest(set) = &request.request
        {
            // Before it is served: a request after its answer may land on another gateway.
            self.remember_log_level(id, set.params.level).await;
        }
        // The session is not idle while the request's answer is on its way.
        let in_flight = (!initialize).then(|| self.in_flight(id)).flatten();
        let stream = self.local.create_stream(id, message).await?;
        Ok(stream.map(move |event| {
            let _ = &in_flight;
            named_for_client(event)
        }))
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.noted(id, false);
        let initialized = matches!(
            &message,
            JsonRpcMessage::Notification(notification)
                if matches!(notification.notification, ClientNotification::InitializedNotification(_))
        );
        if initialized && !self.first_initialized(id) {
            return Ok(());
        }
        self.local
            .accept_message(id, numbered_for_rmcp(message))
            .await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let stream = self.local.create_standalone_stream(id).await?;
        Ok(self.listen(id, stream))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        // `<index>` resumes the GET stream; `<index>/<request>` a request's stream.
        let of_a_request = last_event_id.contains('/');
        if !of_a_request {
            // The events of a session that slept and woke are numbered afresh, so an id from
            // before may be unknown: the client then gets the stream from now on.
            let stream = match self.local.resume(id, last_event_id).await {
                Ok(stream) => stream.left_stream(),
                Err(error) => {
                    tracing::debug!(%error, "a GET stream resumed from an event this session no longer has; going on from now");
                    self.local
                        .create_standalone_stream(id)
                        .await?
                        .right_stream()
                }
            };
            return Ok(self.listen(id, stream).left_stream());
        }
        let open = self.stream_open(id);
        let stream = self.local.resume(id, last_event_id).await?;
        Ok(stream
            .map(move |event| {
                let _ = &open;
                named_for_client(event)
            })
            .right_stream())
    }

    async fn restore_session(
        &self,
        id: SessionId,
    ) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        if self.is_asleep(&id) {
            // rmcp's half may still be closing since the session went to sleep.
            self.local.close_session(&id).await?;
        }
        let outcome = self.local.restore_session(id.clone()).await?;
        if matches!(outcome, RestoreOutcome::Restored(_)) {
            if !self.woke(&id) {
                self.opened(&id);
            }
            self.listen_again(&id);
        }
        Ok(outcome)
    }

    fn event_store(
        &self,
    ) -> Option<std::sync::Arc<dyn rmcp::transport::streamable_http_server::session::EventStore>>
    {
        self.local.event_store()
    }
}

impl SessionBook {
    /// Hands session `session` the client's answer to one of rmcp's requests that another
    /// gateway took (`body`, the JSON-RPC message); `false` if it cannot.
    pub async fn take_answer(&self, session: &str, body: &str) -> bool {
        let message: ClientJsonRpcMessage = match serde_json::from_str(body) {
            Ok(message) => message,
            Err(error) => {
                tracing::debug!(%error, "an answer passed on by another gateway is not JSON-RPC");
                return false;
            }
        };
        let id = SessionId::from(session);
        match SessionManager::accept_message(self, &id, message).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(%error, "an answer passed on by another gateway has no session here");
                false
            }
        }
    }
}

/// `event` with rmcp's request in it (or rmcp's withdrawal of one) under its name for the
/// client.
pub(super) fn named_for_client(mut event: ServerSseMessage) -> ServerSseMessage {
    let Some(message) = &event.message else {
        return event;
    };
    let renamed = match &**message {
        JsonRpcMessage::Request(request) => for_client(&request.id).map(|name| {
            let mut request = request.clone();
            request.id = name;
            JsonRpcMessage::Request(request)
        }),
        JsonRpcMessage::Notification(notification) => match &notification.notification {
            ServerNotification::CancelledNotification(cancelled) => cancelled
                .params
                .request_id
                .as_ref()
                .and_then(for_client)
                .map(|name| {
                    let mut notification = notification.clone();
                    if let ServerNotification::CancelledNotification(cancelled) =
                        &mut notification.notification
                    {
                        cancelled.params.request_id = Some(name);
                    }
                    JsonRpcMessage::Notification(notification)
                }),
            _ => None,
        },
        _ => None,
    };
    if let Some(renamed) = renamed {
        event.message = Some(Arc::new(renamed));
    }
    event
}

/// The client's answer to rmcp's request under rmcp's number for it.
fn numbered_for_rmcp(message: ClientJsonRpcMessage) -> ClientJsonRpcMessage {
    match message {
        JsonRpcMessage::Response(mut response) => {
            if let Some(number) = from_client(&response.id) {
                response.id = number;
            }
            JsonRpcMessage::Response(response)
        }
        JsonRpcMessage::Error(mut error) => {
            if let Some(number) = error.id.as_ref().and_then(from_client) {
                error.id = Some(number);
            }
            JsonRpcMessage::Error(error)
        }
        other => other,
    }
}
