//! A transport wrapper that takes the notifications that must reach one client off the wire
//! in the order they arrive: progress (see [`ProgressRoutes`]) and log messages (see
//! [`Callers::log_target`]). In the transport, each is routed while the request it belongs
//! to is still in flight; rmcp's notification callbacks run on spawned tasks and could lose
//! the race with the response that follows. The notifications still reach rmcp.

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

use super::{callers::Callers, progress::ProgressRoutes};

pub struct NotificationTap<T> {
    inner: T,
    progress: Arc<ProgressRoutes>,
    callers: Arc<Callers>,
}

impl<T> NotificationTap<T> {
    pub fn new(inner: T, progress: Arc<ProgressRoutes>, callers: Arc<Callers>) -> Self {
        Self {
            inner,
            progress,
            callers,
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
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        let message = self.inner.receive().await?;
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
