//! A transport wrapper that takes the notifications that must reach one client off the wire
//! in the order they arrive: progress (see [`ProgressRoutes`]) and log messages (see
//! [`Callers::log_target`]). In the transport, each is routed while the request it belongs
//! to is still in flight; rmcp's notification callbacks run on spawned tasks and could lose
//! the race with the response that follows. The notifications still reach rmcp.
//!
//! It also screens answers: one to no request in flight is dropped with a warning (see
//! [`AwaitedIds`]).

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era servers use it"
)]

use std::{borrow::Cow, sync::Arc};

use rmcp::{
    RoleClient,
    model::{JsonRpcMessage, ServerNotification},
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};

use super::{awaited::AwaitedIds, callers::Callers, progress::ProgressRoutes};

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
            if self.awaited.admit(&message, &self.upstream) {
                break message;
            }
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
