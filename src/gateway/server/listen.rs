//! `subscriptions/listen` (2026-07-28): a stream of the catalog's list changes and of the
//! resources its filter names, until the client or the gateway ends it.

use std::sync::atomic::Ordering;

use rmcp::{
    ErrorData,
    model::{ResourceUpdatedNotificationParam, SubscribeRequestParams},
    service::SubscriptionContext,
};
use tokio::sync::mpsc;

use super::{GatewayServer, NEXT_SESSION};
use crate::gateway::{
    notifier::{ChangeWatcher, Subscriber},
    subscribe::SubscriberGuard,
};

/// Updates buffered for one `subscriptions/listen` stream.
const STREAM_UPDATES: usize = 64;

impl GatewayServer {
    /// Sends the stream what its client accepted, as it changes, until either side ends it.
    pub(super) async fn listen_to_changes(
        &self,
        context: SubscriptionContext,
    ) -> Result<(), ErrorData> {
        let mut changes = ChangeWatcher::new(self.gateway.catalog_changes());
        let (mut updates, _subscribed) = self.subscribe_stream(&context).await;
        loop {
            tokio::select! {
                changed = changes.next() => {
                    let Some(changed) = changed else { return Ok(()) };
                    // Only the kinds the client subscribed to: rmcp's sink refuses the others
                    // with an error, which must not end the stream (a change of tools and
                    // resources at once closed a stream listening for resources alone).
                    let wants = context.accepted().clone();
                    let sink = context.sink();
                    let sent = async {
                        if changed.tools && wants.tools_list_changed == Some(true) {
                            sink.notify_tool_list_changed().await?;
                        }
                        if changed.prompts && wants.prompts_list_changed == Some(true) {
                            sink.notify_prompt_list_changed().await?;
                        }
                        if changed.resources && wants.resources_list_changed == Some(true) {
                            sink.notify_resource_list_changed().await?;
                        }
                        Ok::<(), rmcp::service::SubscriptionSendError>(())
                    };
                    if let Err(error) = sent.await {
                        tracing::debug!(%error, "list_changed not delivered on a subscription");
                        return Ok(());
                    }
                }
                Some(update) = updates.recv() => {
                    if let Err(error) = context.sink().notify_resource_updated(update.uri).await {
                        tracing::debug!(%error, "resources/updated not delivered on a subscription");
                        return Ok(());
                    }
                }
                () = context.cancelled() => return Ok(()),
            }
        }
    }

    /// Subscribes a `subscriptions/listen` stream to the resources its filter names; their
    /// updates arrive on the receiver until the guard is dropped with the stream.
    async fn subscribe_stream(
        &self,
        context: &SubscriptionContext,
    ) -> (
        mpsc::Receiver<ResourceUpdatedNotificationParam>,
        Option<SubscriberGuard>,
    ) {
        let (sender, updates) = mpsc::channel(STREAM_UPDATES);
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if uris.is_empty() {
            return (updates, None);
        }
        let key = NEXT_SESSION.fetch_add(1, Ordering::Relaxed) | 1 << 61;
        let origin = match self.origin(context.request_context()) {
            Ok(origin) => origin,
            Err(error) => {
                tracing::info!(%error, "subscriptions/listen resources not subscribed");
                return (updates, None);
            }
        };
        for uri in uris {
            let subscriber = Subscriber::Stream(sender.clone());
            let params = SubscribeRequestParams::new(uri.clone());
            if let Err(error) = self
                .gateway
                .subscribe(key, subscriber, params, &origin)
                .await
            {
                tracing::info!(%uri, %error, "a subscriptions/listen resource could not be subscribed");
            }
        }
        let guard = SubscriberGuard::new(self.gateway.clone(), key);
        (updates, Some(guard))
    }
}
