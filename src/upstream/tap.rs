//! A transport wrapper that takes the notifications that must reach one client off the wire
//! in the order they arrive: progress (see [`ProgressRoutes`]) and log messages (see
//! [`Callers::log_target`]). In the transport, each is routed while the request it belongs
//! to is still in flight; rmcp's notification callbacks run on spawned tasks and could lose
//! the race with the response that follows. The notifications still reach rmcp.
//!
//! It also screens answers: one to no request in flight is dropped with a warning (see
//! [`AwaitedIds`]); and it refuses, itself, a request only a client can answer that comes
//! while no client call is in progress (see [`NotificationTap::for_no_client`]).

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era servers use it"
)]

use std::{borrow::Cow, sync::Arc};

use rmcp::{
    RoleClient,
    model::{JsonRpcMessage, ServerNotification, ServerRequest},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};

use super::{
    awaited::AwaitedIds,
    callers::{Callers, NO_CALL, unroutable},
    progress::ProgressRoutes,
};

pub struct NotificationTap<T> {
    inner: T,
    upstream: Arc<str>,
    progress: Arc<ProgressRoutes>,
    callers: Arc<Callers>,
    awaited: AwaitedIds,
}

impl<T> NotificationTap<T> {
    pub fn new(
        inner: T,
        upstream: Arc<str>,
        progress: Arc<ProgressRoutes>,
        callers: Arc<Callers>,
    ) -> Self {
        Self {
            inner,
            upstream,
            progress,
            callers,
            awaited: AwaitedIds::default(),
        }
    }
}

impl<T> NotificationTap<T> {
    /// The refusal of a request that only a client can answer (roots, sampling, elicitation)
    /// arriving while no client call is in progress: it belongs to no client. Servers ask for
    /// roots right after `initialize`; the gateway has no roots of its own, so it says no
    /// client is being served rather than answer with an empty list, which a server would
    /// keep as the answer for every later call (the reference server does). Asked again
    /// during a call, the request reaches that call's client.
    fn for_no_client(
        &self,
        message: &RxJsonRpcMessage<RoleClient>,
    ) -> Option<TxJsonRpcMessage<RoleClient>> {
        let JsonRpcMessage::Request(request) = message else {
            return None;
        };
        let for_a_client = matches!(
            request.request,
            ServerRequest::ListRootsRequest(_)
                | ServerRequest::CreateMessageRequest(_)
                | ServerRequest::ElicitRequest(_)
        );
        if !for_a_client || !self.callers.none_in_flight() {
            return None;
        }
        tracing::debug!(upstream = %self.upstream, id = %request.id, "a request for a client while no client call is in progress; refused");
        Some(JsonRpcMessage::error(
            unroutable(NO_CALL),
            Some(request.id.clone()),
        ))
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for NotificationTap<T> {
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.awaited.sending(&item);
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = loop {
            let message = self.inner.receive().await?;
            if !self.awaited.admit(&message, &self.upstream) {
                continue;
            }
            if let Some(refusal) = self.for_no_client(&message) {
                // Answered here, and quietly: rmcp would log the refusal as an alarm, and an
                // upstream asking right after `initialize` is normal (see `for_no_client`).
                if let Err(error) = self.inner.send(refusal).await {
                    tracing::debug!(upstream = %self.upstream, %error, "could not refuse a request for no client");
                }
                continue;
            }
            break message;
        };
        if let JsonRpcMessage::Notification(notification) = &message {
            match &notification.notification {
                ServerNotification::ProgressNotification(progress) => {
                    self.progress.deliver(&progress.params);
                }
                ServerNotification::LoggingMessageNotification(log) => {
                    match self.callers.log_target() {
                        Some(caller) => {
                            tokio::spawn(caller.log(log.params.clone()));
                        }
                        None => tracing::debug!("log message for no client in particular; dropped"),
                    }
                }
                _ => {}
            }
        }
        Some(message)
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
