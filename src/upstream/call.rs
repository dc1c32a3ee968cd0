//! One request in flight on an upstream's own lane: [`Upstream::call`].
//!
//! It owns everything about the request while it is out: its call slot, its deadline, its
//! id, the caller that answers the upstream's requests it causes, where its progress goes,
//! and its cancellation (the client's, a deadline's, or whatever `stop` says) — sent upstream
//! as `notifications/cancelled` under the id it went out with. The gateway hands it a request
//! and gets the upstream's result back as the JSON text the upstream wrote.

use std::{
    future::Future,
    pin::{Pin, pin},
    sync::{Arc, LazyLock},
    time::Duration,
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData,
    model::{ClientCapabilities, ProgressNotificationParam, ProgressToken, ProtocolVersion},
};
use serde_json::{Map, Value, value::RawValue};
use tokio::sync::mpsc;

mod over_http;

use self::over_http::HttpRequest;
use super::{
    Caller, Upstream, client,
    http_lane::HttpLane,
    lane::{Answer, LaneError, StdioLane, id_of},
    mirrored::Mirrored,
};
use crate::error::GatewayError;

/// Where a request's progress goes: to the client that asked for it, under its own token.
pub trait ProgressSink: Send + Sync {
    fn relay(&self, update: ProgressNotificationParam) -> BoxFuture<'static, ()>;
}

/// Who a request is for, as far as the upstream is concerned.
#[derive(Default)]
pub struct CallContext {
    /// Answers the upstream's requests (sampling, elicitation, roots) the request causes.
    pub caller: Option<Arc<dyn Caller>>,
    /// Where its progress goes; `None` if the client did not ask for progress.
    pub progress: Option<Arc<dyn ProgressSink>>,
    /// What the client declared it can do: a 2026-07-28 upstream is told this, not the
    /// gateway's own, as what it may ask depends on the client behind the gateway.
    pub capabilities: Option<Arc<ClientCapabilities>>,
}

/// A request as it goes upstream.
#[derive(Clone)]
pub struct Outgoing {
    pub method: String,
    /// What a 2026-07-28 HTTP lane's headers say of it besides its method.
    pub mirrored: Mirrored,
    /// The members of `params` other than `_meta`, as JSON text without the braces
    /// (`"name":"echo","arguments":{…}`); empty for none.
    pub members: String,
    /// The client's own `_meta` keys (the hop's are already stripped).
    pub meta: Map<String, Value>,
    /// How long the upstream has to answer, from now (the wait for a call slot included).
    pub deadline: Duration,
}

/// The gateway's own lane on an upstream's current connection.
#[derive(Debug, Clone)]
pub enum UpstreamLane {
    /// A stdio connection: requests and answers share its pipes with rmcp's.
    Stdio(Arc<StdioLane>),
    /// A streamable HTTP upstream, in either era: a POST per request.
    Http(Arc<HttpLane>),
}

impl UpstreamLane {
    /// Whether its requests say again in headers what they name and the arguments their
    /// tool marks (SEP-2243): a 2026-07-28 HTTP lane's do.
    pub fn mirrors(&self) -> bool {
        matches!(self, Self::Http(lane) if !lane.in_session())
    }
}

impl Upstream {
    /// The lane of its current connection, if it has one and is ready.
    pub fn lane(&self) -> Option<UpstreamLane> {
        let state = self.state.load();
        match state.phase {
            super::Phase::Ready => state.lane.clone(),
            _ => None,
        }
    }

    /// Sends `request` on `lane` and waits for the upstream's result, its error, the
    /// deadline, or `stop` (whose error is then the call's). On an HTTP lane, a call that
    /// stops or times out closes its request, which is how 2026-07-28 cancels.
    ///
    /// `stop` comes pinned by the caller: an `async fn` holds a future it is given twice in
    /// its own (as given, then pinned), and this one is built for every call.
    pub async fn call(
        &self,
        lane: &UpstreamLane,
        request: Outgoing,
        context: CallContext,
        mut stop: Pin<&mut impl Future<Output = GatewayError>>,
    ) -> Result<Box<RawValue>, GatewayError> {
        let started = tokio::time::Instant::now();
        let timeout = request.deadline;
        let timed_out = || GatewayError::UpstreamTimeout {
            upstream: self.name().to_owned(),
            timeout,
        };
        let _slot = tokio::select! {
            slot = tokio::time::timeout(timeout, self.call_slot()) => slot.map_err(|_| timed_out())?,
            error = &mut stop => return Err(error),
        };
        let version = self.state.load().protocol_version.clone();
        let Outgoing {
            method,
            mirrored,
            members,
            mut meta,
            ..
        } = request;
        // A 2026-07-28 upstream is told on every request what a session would have said once.
        let more = match version.filter(|version| !version.has_initialize()) {
            Some(version) => stateless_meta(&version, context.capabilities.as_deref()),
            None => String::new(),
        };
        let lane = match lane {
            UpstreamLane::Stdio(lane) => lane,
            UpstreamLane::Http(lane) => {
                let number = lane.reserve();
                if context.progress.is_some() {
                    let token = serde_json::to_value(id_of(number)).unwrap_or_default();
                    meta.insert("progressToken".into(), token);
                }
                let params = params_text(&members, &meta, &more);
                let request = HttpRequest {
                    number,
                    method: &method,
                    mirrored: &mirrored,
                    params: &params,
                };
                let deadline = started + timeout;
                // Boxed: the stdio way's future stays small (see `Gateway::recorded`).
                let answer = Box::pin(
                    self.call_over_http(lane, request, context, stop, deadline, timed_out),
                )
                .await?;
                return self.answered(Ok(answer));
            }
        };
        let wants_progress = context.progress.is_some();
        let mut ticket = lane
            .send(&method, |id| {
                if wants_progress {
                    meta.insert(
                        "progressToken".into(),
                        serde_json::to_value(id).unwrap_or_default(),
                    );
                }
                params_text(&members, &meta, &more)
            })
            .await
            .map_err(|error| self.lane_failed(error))?;
        let id = ticket.id().clone();
        let mut unanswered = Unanswered {
            lane: lane.clone(),
            id: Some(id.clone()),
        };
        let _caller = context
            .caller
            .map(|caller| self.callers().register(id.clone(), caller));
        let (_route, mut progress) = match context.progress {
            Some(sink) => {
                let (guard, queue) = self.progress().register(ProgressToken(id.clone()));
                (Some(guard), Some((queue, sink)))
            }
            None => (None, None),
        };
        let remaining = timeout.saturating_sub(started.elapsed());
        let mut answer = pin!(tokio::time::timeout(remaining, ticket.answer()));
        let answer = loop {
            tokio::select! {
                // The answer first: when both are ready, the queue is drained before it.
                biased;
                answer = &mut answer => {
                    if let Some((queue, sink)) = progress.as_mut() {
                        while let Ok(update) = queue.try_recv() {
                            sink.relay(update).await;
                        }
                    }
                    break answer;
                }
                Some((update, sink)) = next_progress(&mut progress) => sink.relay(update).await,
                error = &mut stop => {
                    unanswered.id = None;
                    self.cancel_upstream(lane, &id, "the client cancelled the request").await;
                    return Err(error);
                }
            }
        };
        unanswered.id = None;
        match answer {
            Err(_) => {
                self.cancel_upstream(lane, &id, "the gateway's call deadline passed")
                    .await;
                Err(timed_out())
            }
            Ok(answer) => self.answered(answer),
        }
    }

    fn answered(&self, answer: Result<Answer, LaneError>) -> Result<Box<RawValue>, GatewayError> {
        match answer {
            Err(error) => Err(self.lane_failed(error)),
            Ok(Answer::Error(error)) => Err(GatewayError::UpstreamError {
                upstream: self.name().to_owned(),
                error,
            }),
            Ok(Answer::Result(result)) => Ok(result),
        }
    }

    async fn cancel_upstream(&self, lane: &StdioLane, id: &rmcp::model::RequestId, reason: &str) {
        if let Err(error) = lane.cancel(id, reason).await {
            tracing::debug!(upstream = %self.name(), %error, "could not send notifications/cancelled upstream");
        }
    }

    fn lane_failed(&self, error: LaneError) -> GatewayError {
        let reason = match error {
            // "Closed" says less than why we closed it, when we did.
            LaneError::Closed => self.closed_because().unwrap_or_else(|| error.to_string()),
            LaneError::Http(reason) => reason,
            error => error.to_string(),
        };
        GatewayError::UpstreamFailed {
            upstream: self.name().to_owned(),
            reason,
        }
    }
}

/// A request in flight whose call was dropped before it ended: its client went away (the
/// connection closed), so it is cancelled upstream like one the client cancelled.
struct Unanswered {
    lane: Arc<StdioLane>,
    /// Taken when the call ends, however it ends.
    id: Option<rmcp::model::RequestId>,
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let lane = self.lane.clone();
            tokio::spawn(async move {
                let _ = lane.cancel(&id, "the client went away").await;
            });
        }
    }
}

/// The per-request keys a 2026-07-28 upstream needs, as `_meta` members' JSON text: the
/// revision (`version`), who we are, and what the client behind us can do (ours when it did
/// not say).
fn stateless_meta(version: &ProtocolVersion, client: Option<&ClientCapabilities>) -> String {
    /// What never changes, written once.
    static GATEWAY: LazyLock<(String, String)> = LazyLock::new(|| {
        // Plain structs of strings and maps always serialize.
        let text = |value: Result<String, _>| value.unwrap_or_else(|_| "{}".into());
        (
            text(serde_json::to_string(&client::implementation())),
            text(serde_json::to_string(&client::capabilities())),
        )
    });
    let (implementation, ours) = &*GATEWAY;
    let capabilities = client.and_then(|client| serde_json::to_string(client).ok());
    let version = serde_json::to_string(version).unwrap_or_else(|_| "null".into());
    [
        "\"io.modelcontextprotocol/protocolVersion\":",
        &version,
        ",\"io.modelcontextprotocol/clientInfo\":",
        implementation,
        ",\"io.modelcontextprotocol/clientCapabilities\":",
        capabilities.as_deref().unwrap_or(ours),
    ]
    .concat()
}

/// `params` as JSON text: `_meta` (`meta`'s keys and `more`, members' text, when there are
/// any) and the other members. Written in one allocation of its exact length: it is built
/// for every call.
fn params_text(members: &str, meta: &Map<String, Value>, more: &str) -> String {
    // A map of JSON values always serializes; its members go between our braces.
    let meta =
        (!meta.is_empty()).then(|| serde_json::to_string(meta).unwrap_or_else(|_| "{}".into()));
    let meta = meta.as_deref().map_or("", |text| &text[1..text.len() - 1]);
    let parts: &[&str] = match (meta.is_empty(), more.is_empty()) {
        (true, true) => &["{", members, "}"],
        (false, true) => &["{\"_meta\":{", meta, "}", comma(members), members, "}"],
        (true, false) => &["{\"_meta\":{", more, "}", comma(members), members, "}"],
        (false, false) => &[
            "{\"_meta\":{",
            meta,
            ",",
            more,
            "}",
            comma(members),
            members,
            "}",
        ],
    };
    parts.concat()
}

/// The comma before `members`, if there are any.
fn comma(members: &str) -> &'static str {
    if members.is_empty() { "" } else { "," }
}

/// The next queued progress update, if this request collects any; pending otherwise.
async fn next_progress(
    progress: &mut Option<(
        mpsc::Receiver<ProgressNotificationParam>,
        Arc<dyn ProgressSink>,
    )>,
) -> Option<(ProgressNotificationParam, Arc<dyn ProgressSink>)> {
    match progress {
        Some((queue, sink)) => queue.recv().await.map(|update| (update, sink.clone())),
        None => std::future::pending().await,
    }
}

/// An error the upstream's answer could not be read as.
pub fn unreadable(upstream: &Upstream, error: &serde_json::Error) -> GatewayError {
    GatewayError::UpstreamError {
        upstream: upstream.name().to_owned(),
        error: ErrorData::internal_error(
            format!(
                "upstream {} sent a result that cannot be read: {error}",
                upstream.name()
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::params_text;

    #[test]
    fn params_carry_meta_keys_and_members_in_any_combination() {
        let meta = json!({"trace": "t1", "progressToken": 3});
        let Value::Object(meta) = meta else {
            unreachable!()
        };
        let none = serde_json::Map::new();
        let more = r#""io.modelcontextprotocol/protocolVersion":"2026-07-28""#;
        let members = r#""name":"echo","arguments":{"text":"hi"}"#;
        let read = |text: String| serde_json::from_str::<Value>(&text).unwrap();
        assert_eq!(read(params_text("", &none, "")), json!({}));
        assert_eq!(
            read(params_text(members, &none, "")),
            json!({"name": "echo", "arguments": {"text": "hi"}})
        );
        assert_eq!(
            read(params_text("", &meta, "")),
            json!({"_meta": {"trace": "t1", "progressToken": 3}})
        );
        assert_eq!(
            read(params_text(members, &none, more)),
            json!({"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"},
                   "name": "echo", "arguments": {"text": "hi"}})
        );
        assert_eq!(
            read(params_text(members, &meta, more)),
            json!({"_meta": {"trace": "t1", "progressToken": 3,
                             "io.modelcontextprotocol/protocolVersion": "2026-07-28"},
                   "name": "echo", "arguments": {"text": "hi"}})
        );
    }
}
