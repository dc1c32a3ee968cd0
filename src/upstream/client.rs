//! The gateway's client side of one upstream connection: what it tells the upstream about
//! itself, and what it does with the upstream's notifications.

use std::sync::Arc;

use rmcp::{
    ClientHandler,
    model::{ClientCapabilities, ClientConfig, Implementation, ResourceUpdatedNotificationParam},
    service::{MaybeSendFuture, NotificationContext, RoleClient},
};
use tokio::sync::{Notify, mpsc};

/// Handles one upstream's notifications; `lists_changed` wakes the upstream's task to re-list.
#[derive(Clone)]
pub struct UpstreamClient {
    pub lists_changed: Arc<Notify>,
    /// `notifications/resources/updated`, for the gateway to pass to the subscribers.
    pub resource_updates: mpsc::Sender<ResourceUpdatedNotificationParam>,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcps", env!("CARGO_PKG_VERSION")),
        )
    }

    fn on_resource_updated(
        &self,
        update: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        // Bounded: an upstream that floods updates loses some rather than growing our memory.
        if self.resource_updates.try_send(update).is_err() {
            tracing::debug!("resource update queue full; update dropped");
        }
        std::future::ready(())
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        // The re-list runs on the upstream's own task: awaiting a request here would hold up
        // the connection's message loop that must deliver its response.
        self.lists_changed.notify_one();
        std::future::ready(())
    }

    fn on_prompt_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.lists_changed.notify_one();
        std::future::ready(())
    }

    fn on_resource_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.lists_changed.notify_one();
        std::future::ready(())
    }
}
