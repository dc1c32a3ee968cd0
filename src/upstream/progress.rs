//! Routes an upstream's `notifications/progress` back to the client whose request it is about.
//!
//! rmcp gives every request we send upstream a progress token of its own. When the client's
//! request carried a token, the gateway registers ours for as long as the request is in
//! flight and gets a queue of that request's progress; a notification with an unknown token
//! (finished or foreign) is dropped. Shared upstream connections are why this exists: two
//! clients' calls run on one connection, and each must see only its own progress.
//!
//! Progress is taken off the wire by [`super::tap::NotificationTap`], inside the transport, rather than in
//! rmcp's notification callback: rmcp runs callbacks on spawned tasks but completes a request
//! inline, so a callback could lose the race with the response that follows it. Queued in the
//! transport, every progress notification is in its queue before the response is even read,
//! and the gateway drains the queue before it answers the client.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use crate::sync::lock;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use tokio::sync::mpsc;

/// Progress notifications buffered per request; beyond this, the oldest-first queue drops new
/// ones (progress is advisory, memory must stay bounded).
const QUEUE: usize = 64;

/// Upstream token → the queue of the request it belongs to.
#[derive(Default)]
pub struct ProgressRoutes {
    routes: Mutex<HashMap<ProgressToken, mpsc::Sender<ProgressNotificationParam>>>,
}

impl ProgressRoutes {
    /// Starts collecting progress for `upstream_token`; stops when the guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        upstream_token: ProgressToken,
    ) -> (RouteGuard, mpsc::Receiver<ProgressNotificationParam>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.lock().insert(upstream_token.clone(), sender);
        let guard = RouteGuard {
            routes: self.clone(),
            token: upstream_token,
        };
        (guard, receiver)
    }

    /// Queues one notification for its request, without waiting.
    pub(super) fn deliver(&self, progress: &ProgressNotificationParam) {
        let routes = self.lock();
        let Some(queue) = routes.get(&progress.progress_token) else {
            tracing::debug!(token = ?progress.progress_token, "progress for no request in flight; dropped");
            return;
        };
        if queue.try_send(progress.clone()).is_err() {
            tracing::debug!(token = ?progress.progress_token, "progress queue full; dropped");
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ProgressToken, mpsc::Sender<ProgressNotificationParam>>>
    {
        // Entries are inserted and removed whole; a panic elsewhere cannot leave one half-made.
        lock(&self.routes)
    }
}

/// Removes a route when its request is over, however it ended.
pub struct RouteGuard {
    routes: Arc<ProgressRoutes>,
    token: ProgressToken,
}

impl Drop for RouteGuard {
    fn drop(&mut self) {
        self.routes.lock().remove(&self.token);
    }
}
