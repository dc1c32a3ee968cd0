//! [`SessionBook`] as rmcp's session manager: every call goes to rmcp's own
//! [`LocalSessionManager`], and the book notes what it must know on the way (a session opened,
//! a request in it, a session closed).

use futures::{Stream, StreamExt};
use rmcp::{
    model::{
        ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage,
        ServerJsonRpcMessage,
    },
    transport::streamable_http_server::session::{
        RestoreOutcome, ServerSseMessage, SessionId, SessionManager, local::LocalSessionManager,
    },
};

use super::SessionBook;

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
        Ok(stream.inspect(move |_| {
            let _ = &in_flight;
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
        self.local.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let open = self.stream_open(id);
        let stream = self.local.create_standalone_stream(id).await?;
        Ok(stream.inspect(move |_| {
            let _ = &open;
        }))
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let open = self.stream_open(id);
        let stream = self.local.resume(id, last_event_id).await?;
        Ok(stream.inspect(move |_| {
            let _ = &open;
        }))
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
        if matches!(outcome, RestoreOutcome::Restored(_)) && !self.woke(&id) {
            self.opened(&id);
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
