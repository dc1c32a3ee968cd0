//! The requests we sent an upstream and await answers to, for the transports we parse
//! ourselves (stdio and WebSocket upstreams).
//!
//! rmcp drops an answer whose id it is not waiting for without a word. An upstream that
//! answers a request twice, or answers one it was never sent, has a bug its operator wants to
//! hear about, so such answers are dropped here with a warning naming the upstream, before
//! rmcp sees them.

use std::sync::{Arc, Mutex, MutexGuard};

use foldhash::HashSet;

use crate::sync::lock;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, JsonRpcMessage, RequestId, ServerJsonRpcMessage,
};

/// The ids of the requests in flight on one upstream connection. The ids are ours: a fast hash.
#[derive(Debug, Clone, Default)]
pub struct AwaitedIds(Arc<Mutex<HashSet<RequestId>>>);

impl AwaitedIds {
    /// Notes a message we are sending: a request is now awaited; a cancellation means its
    /// request no longer is (a late answer is then unexpected, and dropped).
    pub fn sending(&self, message: &ClientJsonRpcMessage) {
        match message {
            JsonRpcMessage::Request(request) => {
                self.lock().insert(request.id.clone());
            }
            JsonRpcMessage::Notification(notification) => {
                if let ClientNotification::CancelledNotification(cancelled) =
                    &notification.notification
                    && let Some(id) = &cancelled.params.request_id
                {
                    self.lock().remove(id);
                }
            }
            JsonRpcMessage::Response(_) | JsonRpcMessage::Error(_) => {}
        }
    }

    /// Whether a received message may go on to rmcp: anything but an answer, or the first
    /// answer to a request in flight. Anything else is logged.
    pub fn admit(&self, message: &ServerJsonRpcMessage, upstream: &str) -> bool {
        let id = match message {
            JsonRpcMessage::Response(response) => &response.id,
            JsonRpcMessage::Error(error) => match &error.id {
                Some(id) => id,
                // An error with no id answers a message that did not parse; rmcp logs it.
                None => return true,
            },
            JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_) => return true,
        };
        if self.lock().remove(id) {
            return true;
        }
        tracing::warn!(
            upstream,
            %id,
            "dropped an answer to no request in flight (unknown, answered twice, or cancelled)"
        );
        false
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<RequestId>> {
        lock(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    fn answer(id: u64) -> ServerJsonRpcMessage {
        message(serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {}}))
    }

    #[test]
    fn only_the_first_answer_to_a_request_in_flight_goes_on() {
        let awaited = AwaitedIds::default();
        awaited.sending(&message(
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
        ));
        assert!(!awaited.admit(&answer(2), "up"), "never sent");
        assert!(awaited.admit(&answer(1), "up"));
        assert!(!awaited.admit(&answer(1), "up"), "answered twice");
    }

    #[test]
    fn a_cancelled_request_is_no_longer_awaited() {
        let awaited = AwaitedIds::default();
        awaited.sending(&message(
            serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "ping"}),
        ));
        awaited.sending(&message(serde_json::json!({"jsonrpc": "2.0",
            "method": "notifications/cancelled", "params": {"requestId": 7}})));
        assert!(!awaited.admit(&answer(7), "up"));
    }
}
