//! The own way with a plain `tools/call` of the doors whose one session is one stream of
//! messages: `mcps stdio` (a line each) and WebSocket (a text frame each), as the HTTP door's
//! (`http/session_call.rs` and `http/fast.rs`).
//!
//! The door hands each message here before rmcp parses it ([`MessageCalls::take`]). A plain
//! call whose tool's upstream has a lane goes to the router ([`Gateway::call_tool_raw`]): one
//! of the initialized session-era session (no task, no protocol `_meta` key), or a 2026-07-28
//! request, which needs no session (its `_meta` says who asks; a log level is the one key more
//! it may hold). What the upstream sends for it (its progress; for a session-era client,
//! requests of its own and log messages at the session's level; for a 2026-07-28 one, log
//! messages at the request's) and then its answer go to the door's writer as messages, in
//! that order. The client's answers to our requests (ids `"mcps-ask-<n>"`) and its
//! `notifications/cancelled` for a call served here are taken too. Every other message, and
//! every call this way does not take, goes to rmcp.

use std::sync::{Arc, OnceLock};

use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::plain_call::{
    Asks, CallParams, CallsInFlight, CancelledParams, Envelope, Message, StreamCaller,
    answer_to_ours, forwarded, response_text, session_origin,
};
use crate::{
    gateway::{Gateway, LaneCall, LaneTool, Origin, SessionFacts, View},
    security::{Identity, Lease},
    websocket::OwnWay,
};

/// Messages waiting for the door's writer: calls' messages and answers. The writer takes
/// them off while it writes and counts them against the client's outbound bound
/// (`Outbound::write_in_order`), so a client that does not read is given up on, not waited
/// for.
const QUEUED_MESSAGES: usize = 64;

/// How [`Asks`] names the door's one session.
const SESSION: &str = "the session";

/// The calls a door of one session serves itself.
pub struct MessageCalls {
    gateway: Arc<Gateway>,
    /// What the session settled at `initialize`, set at `notifications/initialized`.
    facts: Arc<OnceLock<Arc<SessionFacts>>>,
    /// The virtual server the door serves, if one.
    scope: Option<Arc<str>>,
    asks: Arc<Asks>,
    /// The calls in flight, by the client's id for each (its JSON text).
    calls: CallsInFlight,
    /// Who opened the session, and the lease of their credential (WebSocket).
    principal: Option<Identity>,
    lease: Option<Lease>,
    /// Cancelled when the session ends: every call in flight is cancelled with it.
    ended: CancellationToken,
    lines: mpsc::Sender<String>,
}

impl MessageCalls {
    /// The door's own way for `gateway` (only virtual server `scope`, when one is named) with
    /// the session's `facts` once set; its calls end with `ended`. The receiver yields the
    /// messages (JSON text) for the door to write.
    pub fn new(
        gateway: Arc<Gateway>,
        facts: Arc<OnceLock<Arc<SessionFacts>>>,
        scope: Option<Arc<str>>,
        ended: CancellationToken,
    ) -> (Self, mpsc::Receiver<String>) {
        let (lines, queued) = mpsc::channel(QUEUED_MESSAGES);
        let calls = Self {
            gateway,
            facts,
            scope,
            asks: Arc::default(),
            calls: CallsInFlight::default(),
            principal: None,
            lease: None,
            ended,
            lines,
        };
        (calls, queued)
    }

    /// The same, for a session `principal` opened with a credential of `lease`.
    pub fn opened_by(mut self, principal: Option<Identity>, lease: Option<Lease>) -> Self {
        self.principal = principal;
        self.lease = lease;
        self
    }

    /// Takes `message` (one JSON-RPC message's text) if this way serves it: `false` leaves it
    /// to rmcp.
    pub fn take(&self, line: &[u8]) -> bool {
        let Ok(message) = serde_json::from_slice::<Message>(line) else {
            return false;
        };
        if message.jsonrpc != "2.0" {
            return false;
        }
        match (message.id, message.method.as_deref(), message.params) {
            (Some(id), Some("tools/call"), Some(params))
                if message.result.is_none() && message.error.is_none() =>
            {
                self.call(id, params)
            }
            (None, Some("notifications/cancelled"), Some(params)) => self.cancel(params),
            (Some(id), None, None) if message.result.is_some() != message.error.is_some() => {
                self.answer(id, line)
            }
            _ => false,
        }
    }

    /// The session ended: its calls in flight are cancelled.
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// Starts a plain `tools/call`, if it is one: of the initialized session-era session, or
    /// a 2026-07-28 request, which needs none.
    fn call(&self, id: &RawValue, params: &RawValue) -> bool {
        let Ok(params) = serde_json::from_str::<CallParams>(params.get()) else {
            return false;
        };
        let Some(view) = self.view() else {
            return false;
        };
        let cancel = self.ended.child_token();
        let origin = match self.facts.get() {
            Some(facts) => self.session_origin(facts, id, &params, view, cancel.clone()),
            // A session-era request before `initialize` is rmcp's to refuse.
            None => self.stateless_origin(id, &params, view, cancel.clone()),
        };
        let Some((origin, tool)) = origin else {
            return false;
        };
        let (Some(meta), Some(retry)) = (forwarded(&params.meta), params.retry()) else {
            return false;
        };
        let Some(registered) = self.calls.register(id.get().to_owned(), cancel) else {
            return false;
        };
        let tool = tool.into_owned();
        let id = id.to_owned();
        let gateway = self.gateway.clone();
        let lines = self.lines.clone();
        tokio::spawn(async move {
            let _registered = registered;
            let call = LaneCall { tool, meta, retry };
            let answer = response_text(&id, gateway.call_tool_raw(call, &origin).await);
            // After the call's own messages, which went on the same queue.
            let _ = lines.send(answer).await;
        });
        true
    }

    /// The virtual server the door serves: `Some(None)` for none, `None` (rmcp's way says
    /// what is wrong) for one the configuration no longer has.
    fn view(&self) -> Option<Option<Arc<View>>> {
        match &self.scope {
            Some(name) => self.gateway.view(name).map(Some),
            None => Some(None),
        }
    }

    /// Who asks, for a plain call of the session-era session, and the call as the gateway's own
    /// way routes it: `None` for a call this way does not take.
    fn session_origin<'a>(
        &self,
        facts: &SessionFacts,
        id: &RawValue,
        params: &'a CallParams<'_>,
        view: Option<Arc<View>>,
        cancel: CancellationToken,
    ) -> Option<(Origin, LaneTool<'a>)> {
        let takes_tasks = facts.capabilities.supports_tasks();
        if !params.is_plain(id) {
            return None;
        }
        let tool = self.lane_tool(params, view.as_deref(), takes_tasks)?;
        let caller = StreamCaller {
            key: facts.key,
            session: Arc::from(SESSION),
            capabilities: facts.capabilities.clone(),
            log_level: facts.log_level.clone(),
            events: self.lines.clone(),
            session_stream: facts.peer.clone(),
            asks: self.asks.clone(),
        };
        let (principal, lease) = (self.principal.clone(), self.lease.clone());
        let mut origin = session_origin(facts, caller, cancel, view, principal, lease)?;
        origin.progress = params.progress_to(&self.lines);
        Some((origin, tool))
    }

    /// Who asks, for a plain 2026-07-28 call, and the call as the gateway's own way routes it:
    /// `None` for a call this way does not take.
    fn stateless_origin<'a>(
        &self,
        id: &RawValue,
        params: &'a CallParams<'_>,
        view: Option<Arc<View>>,
        cancel: CancellationToken,
    ) -> Option<(Origin, LaneTool<'a>)> {
        let envelope = Envelope::read(&params.meta)?;
        let takes_tasks = envelope.takes_tasks();
        if !params.is_call(id) {
            return None;
        }
        let tool = self.lane_tool(params, view.as_deref(), takes_tasks)?;
        let (principal, lease) = (self.principal.clone(), self.lease.clone());
        let origin = envelope.origin(Some(&self.lines), cancel, view, principal, lease);
        Some((origin, tool))
    }

    /// The call as the gateway's own way routes it, if it can go that way (see
    /// [`Gateway::lane_tool`]).
    fn lane_tool<'a>(
        &self,
        params: &'a CallParams<'_>,
        view: Option<&View>,
        takes_tasks: bool,
    ) -> Option<LaneTool<'a>> {
        self.gateway
            .lane_tool(&params.name, params.arguments, view, takes_tasks)
    }

    /// Cancels a call served here that the notification names.
    fn cancel(&self, params: &RawValue) -> bool {
        serde_json::from_str::<CancelledParams>(params.get())
            .is_ok_and(|params| self.calls.cancel(params.request_id.get()))
    }

    /// Hands the client's answer to the request of ours it answers.
    fn answer(&self, id: &RawValue, line: &[u8]) -> bool {
        answer_to_ours(id, line)
            .is_some_and(|(id, answer)| self.asks.answered(SESSION, &id, answer))
    }
}

impl OwnWay for MessageCalls {
    fn take(&self, message: &[u8]) -> bool {
        MessageCalls::take(self, message)
    }

    fn end(&self) {
        MessageCalls::end(self);
    }
}
