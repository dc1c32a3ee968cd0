//! What the doors' own way with a plain `tools/call` shares: reading the message as far as
//! telling its kind, whether a call asks for nothing beyond itself and its progress, the
//! caller that puts the upstream's requests and log messages to a session-era client on the
//! call's own stream, and its progress there too ([`caller`]), what a 2026-07-28 call's
//! `_meta` says of its client ([`stateless`]), and the JSON-RPC response's text. The HTTP
//! door (`http/session_call.rs` and `http/fast.rs`) and the doors of one stream of messages
//! (`message_calls.rs`: stdio and WebSocket) each add how their client's messages arrive and
//! leave.

mod caller;
mod stateless;

use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rmcp::{
    ErrorData,
    model::{ClientJsonRpcMessage, ClientResult, JsonRpcMessage, ProgressToken, RequestId},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::caller::StreamProgress;
pub use self::caller::{Asks, StreamCaller};
pub use self::stateless::{Envelope, RawMeta, forwarded};
use crate::{
    error::GatewayError,
    gateway::{Origin, RawAnswer, Retry, SessionFacts, View},
    jsonrpc::{error_text, result_text},
    security::{Identity, Lease},
    sync::lock,
    upstream::ProgressSink,
};

/// The calls a door serves itself, by a key that names each in its session, with what
/// cancels each.
#[derive(Default, Clone)]
pub struct CallsInFlight(Arc<Mutex<HashMap<String, CancellationToken>>>);

impl CallsInFlight {
    /// Registers call `key` until the guard drops; `None` when a call under that key is
    /// already in flight (rmcp's to refuse).
    pub fn register(&self, key: String, cancel: CancellationToken) -> Option<Registered> {
        let mut calls = lock(&self.0);
        if calls.contains_key(&key) {
            return None;
        }
        calls.insert(key.clone(), cancel);
        Some(Registered {
            calls: self.clone(),
            key,
        })
    }

    /// Cancels call `key`; `false` when none is in flight under it.
    pub fn cancel(&self, key: &str) -> bool {
        let cancel = lock(&self.0).get(key).cloned();
        cancel.map(|cancel| cancel.cancel()).is_some()
    }
}

/// Forgets a call in flight when it ends.
pub struct Registered {
    calls: CallsInFlight,
    key: String,
}

impl Drop for Registered {
    fn drop(&mut self) {
        lock(&self.calls.0).remove(&self.key);
    }
}

/// Who asks, for a plain call of an initialized session-era session: its `caller` puts the
/// upstream's requests and log messages to the client; `cancel` ends the call. The call goes
/// on the session's own connection to an `isolation: per-session` upstream; `None` when those
/// connections closed with the session, whose end rmcp's way then tells.
pub fn session_origin(
    facts: &SessionFacts,
    caller: StreamCaller,
    cancel: CancellationToken,
    view: Option<Arc<View>>,
    principal: Option<Identity>,
    credential: Option<Lease>,
) -> Option<Origin> {
    let connections = match &facts.connections {
        Some(connections) => Some(connections.upgrade()?),
        None => None,
    };
    Some(Origin {
        cancel,
        progress: None,
        caller: Some(Arc::new(caller)),
        stateless: false,
        capabilities: Some(facts.capabilities.clone()),
        connections,
        log_level: facts.log_level.get(),
        client: facts.client.clone(),
        principal,
        view,
        credential,
    })
}

/// A client's answer (`message`, a JSON-RPC response or error) to one of our requests: our
/// id for it and the answer; `None` for anything else.
pub fn answer_to_ours(
    id: &RawValue,
    message: &[u8],
) -> Option<(Arc<str>, Result<ClientResult, ErrorData>)> {
    if !Asks::is_ours(id.get()) {
        return None;
    }
    let (id, answer) = match serde_json::from_slice::<ClientJsonRpcMessage>(message).ok()? {
        JsonRpcMessage::Response(response) => (response.id, Ok(response.result)),
        JsonRpcMessage::Error(error) => (error.id?, Err(error.error)),
        _ => return None,
    };
    match id {
        RequestId::String(id) => Some((id, answer)),
        RequestId::Number(_) => None,
    }
}

/// One JSON-RPC message, read as far as telling its kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message<'a> {
    #[serde(borrow)]
    pub jsonrpc: Cow<'a, str>,
    #[serde(borrow)]
    pub id: Option<&'a RawValue>,
    #[serde(borrow)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub params: Option<&'a RawValue>,
    #[serde(borrow)]
    pub result: Option<&'a RawValue>,
    #[serde(borrow)]
    pub error: Option<&'a RawValue>,
}

/// The whole of a `tools/call`'s params this way takes (a task, say, is rmcp's).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallParams<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub arguments: Option<&'a RawValue>,
    #[serde(rename = "_meta", default, borrow)]
    pub meta: RawMeta<'a>,
    /// A 2026-07-28 client's retry of an `input_required` round: its answers, and the state
    /// the round's result gave it.
    #[serde(rename = "inputResponses", borrow)]
    pub input_responses: Option<&'a RawValue>,
    #[serde(rename = "requestState", borrow)]
    pub request_state: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct CancelledParams<'a> {
    #[serde(rename = "requestId", borrow)]
    pub request_id: &'a RawValue,
}

/// Whether `id` is a JSON-RPC id a request may have: a string or a number (its text).
pub fn is_id(id: &RawValue) -> bool {
    id.get()
        .bytes()
        .next()
        .is_some_and(|first| first == b'"' || first == b'-' || first.is_ascii_digit())
}

/// The JSON-RPC response to the call with client id `id`.
pub fn response_text(id: &RawValue, answer: Result<RawAnswer, GatewayError>) -> String {
    match answer {
        Ok(answer) => result_text(id.get(), &answer.result),
        Err(error) => error_text(id.get(), &ErrorData::from(error)),
    }
}

impl CallParams<'_> {
    /// Whether the call, under client id `id`, asks for nothing beyond itself and its
    /// progress: a plain call ([`CallParams::is_call`]) that is no retry, a progress token
    /// that is a string or an integer if any, and no protocol `_meta` key.
    pub fn is_plain(&self, id: &RawValue) -> bool {
        self.is_call(id)
            && self.input_responses.is_none()
            && self.request_state.is_none()
            && plain_meta(&self.meta)
            && (!self.meta.contains_key(PROGRESS_TOKEN) || self.progress_token().is_some())
    }

    /// Whether it is a call this way can send on as it is, under client id `id`: a request
    /// id, and arguments that are an object (or none).
    pub fn is_call(&self, id: &RawValue) -> bool {
        is_id(id)
            && self
                .arguments
                .is_none_or(|arguments| arguments.get().starts_with('{'))
    }

    /// What a 2026-07-28 client's retry carries, read; an empty one for a first call, and
    /// `None` when its fields do not read as the revision's (rmcp's way says what is wrong).
    pub fn retry(&self) -> Option<Retry> {
        fn read<T: serde::de::DeserializeOwned>(raw: Option<&RawValue>) -> Option<Option<T>> {
            raw.map(|raw| serde_json::from_str(raw.get()))
                .transpose()
                .ok()
        }
        Some(Retry {
            input_responses: read(self.input_responses)?,
            request_state: read(self.request_state)?,
        })
    }

    /// The token the client chose for the call's progress, if it asked for progress.
    pub fn progress_token(&self) -> Option<ProgressToken> {
        serde_json::from_str(self.meta.get(PROGRESS_TOKEN)?.get()).ok()
    }

    /// Where the call's progress goes, if the client asked for it: `events`, the call's own
    /// stream, under the client's token.
    pub fn progress_to(&self, events: &mpsc::Sender<String>) -> Option<Arc<dyn ProgressSink>> {
        Some(progress_on(self.progress_token()?, events))
    }
}

/// Where a call's progress goes when the client asked for it under `token`: `events`, the
/// call's own stream.
pub fn progress_on(token: ProgressToken, events: &mpsc::Sender<String>) -> Arc<dyn ProgressSink> {
    Arc::new(StreamProgress {
        token,
        events: events.clone(),
    })
}

/// The `_meta` key of a request's progress token.
pub const PROGRESS_TOKEN: &str = "progressToken";

/// `_meta` that asks for nothing beyond the call and its progress: no key of the protocol's
/// own (a related task, say).
fn plain_meta(meta: &RawMeta<'_>) -> bool {
    !stateless::has_protocol_keys(meta)
}
