//! What the doors' own way with a session-era client's plain `tools/call` shares: reading
//! the message as far as telling its kind, whether a call asks for nothing beyond itself,
//! the caller that puts the upstream's requests and log messages to the client on the call's
//! own stream ([`caller`]), and the JSON-RPC response's text. The HTTP door
//! (`http/session_call.rs`) and the stdio door (`stdio_calls.rs`) each add how their
//! client's messages arrive and leave.

mod caller;

use std::borrow::Cow;

use rmcp::ErrorData;
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};

pub use self::caller::{Asks, StreamCaller};
use crate::{error::GatewayError, gateway::RawAnswer};

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
    #[serde(rename = "_meta", default)]
    pub meta: Map<String, Value>,
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
    let id = id.get();
    match answer {
        Ok(answer) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{}}}",
            answer.result
        ),
        Err(error) => {
            let error = serde_json::to_string(&ErrorData::from(error)).unwrap_or_default();
            format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{error}}}")
        }
    }
}

/// `_meta` that asks for nothing beyond the call: no progress, no key of the protocol's own
/// (a related task, say).
pub fn plain_meta(meta: &Map<String, Value>) -> bool {
    !meta.contains_key("progressToken")
        && !meta
            .keys()
            .any(|key| key.starts_with("io.modelcontextprotocol/"))
}
