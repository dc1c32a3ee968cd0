//! The client of a session-era call served by a door's own way, as the upstream's requests
//! and log messages see it: they go on the call's own stream (its HTTP response, or stdout),
//! and the client's answers come back to the door (POSTs to the session, or lines on stdin),
//! which [`Asks`] matches by our id. The call's progress goes on the same stream
//! ([`StreamProgress`]).

#![allow(
    deprecated,
    reason = "sampling, roots and logging are deprecated by SEP-2577, but session-era clients use them"
)]

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData, Peer, RoleServer,
    model::{
        CancelledNotification, CancelledNotificationParam, ClientCapabilities, ClientResult,
        LoggingMessageNotification, LoggingMessageNotificationParam, ProgressNotification,
        ProgressNotificationParam, ProgressToken, RequestId, ServerJsonRpcMessage,
        ServerNotification, ServerRequest,
    },
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    downstream::ask_ids::{asked_by, is_rmcps_here, own_request, this_gateway},
    gateway::{SessionLogLevel, check_capability},
    sync::lock,
    upstream::{Caller, ProgressSink},
};

/// Requests put to clients on the door's own way, waiting for their answers.
#[derive(Default)]
pub struct Asks {
    waiting: Mutex<HashMap<Arc<str>, Waiting>>,
    next: AtomicU64,
}

struct Waiting {
    /// The session that was asked: only its POSTs answer.
    session: Arc<str>,
    answer: oneshot::Sender<Result<ClientResult, ErrorData>>,
}

impl Asks {
    /// Whether `id` (a JSON-RPC id's text) could name one of this gateway's requests.
    pub fn is_ours(id: &str) -> bool {
        asked_by(id) == Some(this_gateway()) && !is_rmcps_here(id)
    }

    /// Hands `answer` to our request `id` of `session`; `false` when nothing waits for it.
    pub fn answered(
        &self,
        session: &str,
        id: &str,
        answer: Result<ClientResult, ErrorData>,
    ) -> bool {
        let mut waiting = lock(&self.waiting);
        match waiting.get(id) {
            Some(ask) if &*ask.session == session => {}
            _ => return false,
        }
        let Some(ask) = waiting.remove(id) else {
            return false;
        };
        // The call may have ended meanwhile; the answer is then moot.
        let _ = ask.answer.send(answer);
        true
    }

    fn register(
        self: &Arc<Self>,
        session: Arc<str>,
    ) -> (
        RequestId,
        oneshot::Receiver<Result<ClientResult, ErrorData>>,
        AskGuard,
    ) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(own_request(n));
        let (answer, answered) = oneshot::channel();
        lock(&self.waiting).insert(id.clone(), Waiting { session, answer });
        let guard = AskGuard {
            asks: self.clone(),
            id: id.clone(),
        };
        (RequestId::String(id), answered, guard)
    }
}

/// Forgets a request of ours when its asker stops waiting (answered, withdrawn, or the call
/// ended).
struct AskGuard {
    asks: Arc<Asks>,
    id: Arc<str>,
}

impl Drop for AskGuard {
    fn drop(&mut self) {
        lock(&self.asks.waiting).remove(&self.id);
    }
}

/// A session-era client, asked on the response stream of its call.
pub struct StreamCaller {
    pub key: u64,
    pub session: Arc<str>,
    pub capabilities: Arc<ClientCapabilities>,
    pub log_level: Arc<SessionLogLevel>,
    /// The call's response stream: JSON-RPC messages' text.
    pub events: mpsc::Sender<String>,
    /// The session's own stream, for a log message that comes after the call's stream ended:
    /// one the upstream sent on its session's stream rather than the call's can be overtaken
    /// by the call's answer, and is not lost.
    pub session_stream: Peer<RoleServer>,
    pub asks: Arc<Asks>,
}

impl Caller for StreamCaller {
    fn key(&self) -> u64 {
        self.key
    }

    fn session(&self) -> Option<Peer<RoleServer>> {
        Some(self.session_stream.clone())
    }

    fn answer(
        &self,
        request: ServerRequest,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, Result<ClientResult, ErrorData>> {
        let checked = check_capability(&self.capabilities, &request);
        let events = self.events.clone();
        let asks = self.asks.clone();
        let session = self.session.clone();
        Box::pin(async move {
            checked?;
            let (id, answered, _forget) = asks.register(session);
            let request = ServerJsonRpcMessage::request(request, id.clone());
            events.send(to_text(&request)?).await.map_err(|_| gone())?;
            tokio::select! {
                answer = answered => answer.unwrap_or_else(|_| Err(gone())),
                () = cancel.cancelled() => {
                    let notice = CancelledNotification::new(CancelledNotificationParam::new(
                        Some(id),
                        Some("the upstream withdrew its request".into()),
                    ));
                    let notice = ServerJsonRpcMessage::notification(
                        ServerNotification::CancelledNotification(notice),
                    );
                    if let Ok(text) = to_text(&notice) {
                        let _ = events.try_send(text);
                    }
                    Err(ErrorData::internal_error("the upstream withdrew its request", None))
                }
            }
        })
    }

    fn log(&self, message: LoggingMessageNotificationParam) -> BoxFuture<'static, ()> {
        let admitted = self.log_level.admits(message.level);
        let events = self.events.clone();
        let session_stream = self.session_stream.clone();
        Box::pin(async move {
            if !admitted {
                return;
            }
            let notification = ServerNotification::LoggingMessageNotification(
                LoggingMessageNotification::new(message),
            );
            if !on_stream(&events, notification.clone()).await
                && let Err(error) = session_stream.send_notification(notification).await
            {
                tracing::debug!(%error, "log message not delivered to the client");
            }
        })
    }
}

/// Where a call served on a door's own way sends its progress: the call's own stream, under
/// the client's token, as rmcp's session sends a request's progress on that request's stream.
pub struct StreamProgress {
    pub token: ProgressToken,
    /// The call's response stream: JSON-RPC messages' text.
    pub events: mpsc::Sender<String>,
}

impl ProgressSink for StreamProgress {
    fn relay(&self, mut update: ProgressNotificationParam) -> BoxFuture<'static, ()> {
        update.progress_token = self.token.clone();
        let events = self.events.clone();
        Box::pin(async move {
            let notification =
                ServerNotification::ProgressNotification(ProgressNotification::new(update));
            // A stream that closed took the call with it: nobody waits for its progress.
            on_stream(&events, notification).await;
        })
    }
}

/// Writes `notification` on a call's own stream (`events`: JSON-RPC messages' text);
/// `false` when it was not written, the stream having closed.
pub(super) async fn on_stream(
    events: &mpsc::Sender<String>,
    notification: ServerNotification,
) -> bool {
    match to_text(&ServerJsonRpcMessage::notification(notification)) {
        Ok(text) => events.send(text).await.is_ok(),
        Err(_) => false,
    }
}

fn to_text(message: &ServerJsonRpcMessage) -> Result<String, ErrorData> {
    serde_json::to_string(message)
        .map_err(|error| ErrorData::internal_error(error.to_string(), None))
}

fn gone() -> ErrorData {
    ErrorData::internal_error("client unreachable: its call's stream closed", None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asks_id_is_ours_and_rmcps_are_not() {
        let asks = Arc::new(Asks::default());
        let (id, _answered, _guard) = asks.register(Arc::from("session"));
        assert!(Asks::is_ours(&serde_json::to_string(&id).unwrap()));
        let rmcps = crate::downstream::ask_ids::for_client(&RequestId::Number(1)).unwrap();
        assert!(!Asks::is_ours(&serde_json::to_string(&rmcps).unwrap()));
        assert!(
            !Asks::is_ours("\"mcps-ask-0123456789ab-7\""),
            "another gateway's"
        );
    }
}
