//! `subscriptions/listen` (2026-07-28): a stream of the catalog's list changes and of the
//! resources its filter names, until the client or the gateway ends it.
//!
//! The acknowledgment says the subscription is in place, and a client may act on it at once
//! (trigger the very update it listens for). So the resources a stream names are subscribed,
//! their upstreams included, before its acknowledgment reaches the client. rmcp sends that
//! acknowledgment before it calls [`GatewayServer::listen_to_changes`], so:
//! - on WebSocket and stdio, the transports serve a [`GatewayService`], which subscribes the
//!   stream before rmcp sees the request, and `listen_to_changes` takes over what it set up;
//! - on streamable HTTP, where rmcp's service takes only a `ServerHandler`, the front door
//!   holds the stream's response until `listen_to_changes` has subscribed it and says so
//!   through the [`ListenSubscribed`] it finds in the request.

use std::{
    borrow::Cow,
    sync::{Arc, Mutex, atomic::Ordering},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, Service,
    model::{
        ClientNotification, ClientRequest, ProtocolVersion, ResourceUpdatedNotificationParam,
        ServerConfig, ServerResult, SubscribeRequestParams, SubscriptionFilter,
    },
    service::{NotificationContext, RequestContext, SubscriptionContext},
};
use tokio::sync::{mpsc, oneshot};

use super::{GatewayServer, NEXT_SESSION};
use crate::gateway::{
    notifier::{ChangeWatcher, Subscriber},
    subscribe::SubscriberGuard,
};

/// Updates buffered for one `subscriptions/listen` stream.
const STREAM_UPDATES: usize = 64;

/// What WebSocket and stdio serve: the gateway's [`GatewayServer`], with
/// `subscriptions/listen` streams subscribed before rmcp acknowledges them.
pub struct GatewayService(GatewayServer);

impl GatewayServer {
    /// The server as WebSocket and stdio serve it.
    pub fn into_service(self) -> GatewayService {
        GatewayService(self)
    }
}

impl Service<RoleServer> for GatewayService {
    async fn handle_request(
        &self,
        request: ClientRequest,
        mut context: RequestContext<RoleServer>,
    ) -> Result<ServerResult, ErrorData> {
        if let ClientRequest::SubscriptionsListenRequest(listen) = &request {
            let advertised = ServerHandler::get_info(&self.0).capabilities;
            let wanted = listen.params.notifications.supported_by(&advertised);
            let heard = self.0.start_hearing(&wanted, &context).await;
            context
                .extensions
                .insert(Prepared(Arc::new(Mutex::new(Some(heard)))));
        }
        Service::handle_request(&self.0, request, context).await
    }

    async fn handle_notification(
        &self,
        notification: ClientNotification,
        context: NotificationContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        Service::handle_notification(&self.0, notification, context).await
    }

    fn get_info(&self) -> ServerConfig {
        ServerHandler::get_info(&self.0)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Service::supported_protocol_versions(&self.0)
    }
}

/// What one stream hears, set up before its acknowledgment: the catalog's changes from then
/// on, and the updates of the resources it named.
struct Heard {
    changes: ChangeWatcher,
    updates: mpsc::Receiver<ResourceUpdatedNotificationParam>,
    /// Unsubscribes the stream's resources when dropped: with the stream, or with a request
    /// rmcp refused after they were subscribed.
    _subscribed: Option<SubscriberGuard>,
}

/// Hands a stream's [`Heard`] to `listen_to_changes` in the request's extensions (which must
/// be `Clone`, hence the shared slot it is taken from).
#[derive(Clone)]
struct Prepared(Arc<Mutex<Option<Heard>>>);

/// Put by the HTTP front door in a `subscriptions/listen` request's extensions: fired once
/// the stream is subscribed (or dropped with the request, if it never is), when the front
/// door lets the stream, its acknowledgment first, go to the client.
#[derive(Clone)]
pub struct ListenSubscribed(Arc<Mutex<Option<oneshot::Sender<()>>>>);

impl ListenSubscribed {
    /// The signal to put in the request, and what the front door awaits.
    pub fn new() -> (Self, oneshot::Receiver<()>) {
        let (fire, fired) = oneshot::channel();
        (Self(Arc::new(Mutex::new(Some(fire)))), fired)
    }

    /// Fires the signal of the request in `context`, if it has one.
    fn fire(context: &RequestContext<RoleServer>) {
        let signal = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Self>());
        if let Some(fire) = signal.and_then(|signal| crate::sync::lock(&signal.0).take()) {
            let _ = fire.send(());
        }
    }
}

impl GatewayServer {
    /// Sends the stream what its client accepted, as it changes, until either side ends it.
    pub(super) async fn listen_to_changes(
        &self,
        context: SubscriptionContext,
    ) -> Result<(), ErrorData> {
        let prepared = context
            .request_context()
            .extensions
            .get::<Prepared>()
            .and_then(|prepared| crate::sync::lock(&prepared.0).take());
        let heard = match prepared {
            Some(heard) => heard,
            None => {
                let heard = self
                    .start_hearing(context.accepted(), context.request_context())
                    .await;
                ListenSubscribed::fire(context.request_context());
                heard
            }
        };
        let Heard {
            mut changes,
            mut updates,
            _subscribed,
        } = heard;
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

    /// Starts watching the catalog for a stream with filter `wanted`, and subscribes it to the
    /// resources the filter names (their upstreams answer first); their updates arrive on
    /// [`Heard::updates`] until it is dropped.
    async fn start_hearing(
        &self,
        wanted: &SubscriptionFilter,
        context: &RequestContext<RoleServer>,
    ) -> Heard {
        let changes = ChangeWatcher::new(self.gateway.catalog_changes());
        let (sender, updates) = mpsc::channel(STREAM_UPDATES);
        let mut heard = Heard {
            changes,
            updates,
            _subscribed: None,
        };
        let uris = wanted.resource_subscriptions.as_deref().unwrap_or_default();
        if uris.is_empty() {
            return heard;
        }
        let origin = match self.origin(context) {
            Ok(origin) => origin,
            Err(error) => {
                tracing::info!(%error, "subscriptions/listen resources not subscribed");
                return heard;
            }
        };
        let key = NEXT_SESSION.fetch_add(1, Ordering::Relaxed) | 1 << 61;
        // Before subscribing: a request given up half way leaves nothing subscribed.
        heard._subscribed = Some(SubscriberGuard::new(self.gateway.clone(), key));
        // At once: the acknowledgment waits for the slowest upstream, not for their sum.
        let origin = &origin;
        let subscribed = uris.iter().map(|uri| {
            let subscriber = Subscriber::Stream(sender.clone());
            let params = SubscribeRequestParams::new(uri.clone());
            async move {
                let subscribed = self.gateway.subscribe(key, subscriber, params, origin);
                if let Err(error) = subscribed.await {
                    tracing::info!(%uri, %error, "a subscriptions/listen resource could not be subscribed");
                }
            }
        });
        futures::future::join_all(subscribed).await;
        heard
    }
}
