//! Notifications for a client session that arose on another gateway, delivered here when this
//! gateway holds the session's stream.
//!
//! Behind a balancer, a session-era client's GET stream (where a session's notifications go)
//! is held by one replica, while its `resources/subscribe` may have landed on another, which
//! subscribed upstream and receives the updates. That replica delivers each update to its own
//! copy of the session and announces it on the registry's channel; the replica that holds the
//! stream delivers it there (see `gateway/notifier.rs`, `Echo`).

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use rmcp::model::ServerNotification;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::SessionBook;
use crate::{
    registry::{SessionNotice, next_announcement, this_gateway},
    sync::lock,
};

/// How long a client may take to accept a notification, as for the gateway's own.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Delivers the notifications other gateways announce for the sessions whose stream is held
/// here, until `stop`.
pub(super) async fn deliver_announced(
    book: Weak<SessionBook>,
    mut notices: broadcast::Receiver<Arc<str>>,
    stop: CancellationToken,
) {
    let missed = "notifications for the sessions whose streams are held here";
    while let Some(notice) = next_announcement(&mut notices, &stop, missed).await {
        let Some(book) = book.upgrade() else { return };
        book.deliver(&notice);
    }
}

impl SessionBook {
    /// Sends the announced notice to its session's client, if its stream is held here and
    /// another gateway announced it (which delivered it itself).
    fn deliver(&self, notice: &str) {
        let notice: SessionNotice = match serde_json::from_str(notice) {
            Ok(notice) => notice,
            Err(error) => {
                tracing::debug!(%error, "a notification for a session does not read");
                return;
            }
        };
        if notice.from == this_gateway() || !self.holds_stream(&notice.session) {
            return;
        }
        let Some(gateway) = &self.gateway else {
            return;
        };
        tracing::debug!(
            from = %notice.from,
            "a notification another gateway announced goes to its session's stream here"
        );
        let notification: ServerNotification = match serde_json::from_value(notice.message) {
            Ok(notification) => notification,
            Err(error) => {
                tracing::debug!(%error, "a notification for a session is not one");
                return;
            }
        };
        let Some(facts) = gateway.http_session(&notice.session) else {
            // Asleep, its client listening on the stream held here.
            if let Some(listener) = gateway.listener(&notice.session)
                && !listener.notify(notification)
            {
                tracing::debug!("a notification announced by another gateway was not delivered");
            }
            return;
        };
        let peer = facts.peer.clone();
        self.tasks.spawn(async move {
            let sent = tokio::time::timeout(SEND_TIMEOUT, peer.send_notification(notification));
            if !matches!(sent.await, Ok(Ok(()))) {
                tracing::debug!("a notification announced by another gateway was not delivered");
            }
        });
    }

    /// Whether session `id`'s client holds a stream open here outside its requests.
    fn holds_stream(&self, id: &str) -> bool {
        lock(&self.state)
            .http
            .get(id)
            .is_some_and(|session| session.streams > 0 || session.listening > 0)
    }
}
