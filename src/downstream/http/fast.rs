//! The HTTP door's own way for the most common request: a plain 2026-07-28 `tools/call`.
//!
//! rmcp's server builds a service, a transport and a task for each stateless request, and
//! types the arguments and the result on the way through. A request this module can read whole
//! — one `tools/call` whose headers agree with its body and that asks for nothing beyond the
//! call and its progress (no log messages, no retry of an `input_required` round, no task) —
//! goes to the gateway's router instead ([`Gateway::call_tool_raw`]), which forwards the
//! arguments and the result as the JSON text they are. Its answer is one JSON body, or, when
//! its progress comes first, an event stream of the progress and then the answer, as rmcp
//! answers. Its arguments that go in headers too are checked here, as rmcp checks them
//! (`param_headers`). Anything else, including every other request that would be refused, is
//! left to rmcp (`None`), so the other checks and refusals stay rmcp's.

use std::{borrow::Cow, collections::BTreeMap, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header, header::AsHeaderName, request::Parts};
use rmcp::{
    ErrorData,
    model::{ClientCapabilities, ErrorCode, ProgressToken, ProtocolVersion},
};
use serde::Deserialize;
use serde_json::{Map, Value, value::RawValue};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Body, param_headers,
    session_call::{Work, stream_from},
};
use crate::{
    downstream::plain_call::{PROGRESS_TOKEN, is_id, progress_on, response_text},
    error::GatewayError,
    gateway::{Gateway, Origin, RawAnswer, Scope, ToolCall, View},
    jsonrpc::{error_text, result_text},
    mcp_headers,
    security::{Lease, Principal},
};

/// The whole of a request this way takes: anything more, and rmcp answers it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: Params<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    /// Kept as the client wrote it: its values are read only where needed (the client's
    /// capabilities, its name), and the protocol's own keys, most of it, are not forwarded.
    #[serde(rename = "_meta", borrow)]
    meta: BTreeMap<Cow<'a, str>, &'a RawValue>,
}

/// The one member of `io.modelcontextprotocol/clientInfo` the call history keeps.
#[derive(Deserialize)]
struct ClientInfo<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// The `_meta` keys a plain call has, all of them required; another `io.modelcontextprotocol/`
/// key (a log level, say) asks for more than the call.
const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// What every key of the protocol's own in `_meta` begins with.
const PROTOCOL_KEYS: &str = "io.modelcontextprotocol/";

/// How this way answers a call.
pub(super) enum FastAnswer {
    /// One JSON body, with its status: the call's answer was its first message.
    Whole(StatusCode, String),
    /// An event stream: the call's progress came before its answer, as rmcp answers then.
    Stream(Response<Body>),
}

/// Progress updates a 2026-07-28 call may queue before its stream is read.
const PROGRESS_EVENTS: usize = 16;

/// The answer to `body` if it is a plain 2026-07-28 `tools/call` this way can take; `None`
/// leaves it to rmcp.
pub(super) async fn tool_call(
    gateway: &Arc<Gateway>,
    parts: &Parts,
    body: &Bytes,
) -> Option<FastAnswer> {
    let headers = &parts.headers;
    if !plain_headers(headers) {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    let params = envelope.params;
    let plain = envelope.jsonrpc == "2.0"
        && envelope.method == "tools/call"
        && is_id(envelope.id)
        && params
            .arguments
            .is_none_or(|arguments| arguments.get().starts_with('{'))
        && single(headers, mcp_headers::NAME).is_some_and(|name| name == params.name.as_bytes())
        && plain_meta(&params.meta);
    if !plain {
        return None;
    }
    let view = view_of(gateway, parts)?;
    let tool = gateway.lane_tool(&params.name, view.as_deref())?;
    let id = envelope.id.get();
    if let Some(schema) = &tool.header_schema {
        // Read as an object already (above); a proxy may have routed on these headers.
        let arguments: Option<Map<String, Value>> = match params.arguments {
            Some(text) => Some(serde_json::from_str(text.get()).ok()?),
            None => None,
        };
        if let Err(reason) = param_headers::check(headers, schema, arguments.as_ref()) {
            tracing::debug!(tool = %params.name, %reason, "a call's headers disagree with its arguments");
            let refusal = ErrorData::header_mismatch(reason, None);
            return Some(FastAnswer::Whole(
                status_of(&refusal),
                error_text(id, &refusal),
            ));
        }
    }
    let capabilities: ClientCapabilities =
        serde_json::from_str(params.meta.get(CLIENT_CAPABILITIES)?.get()).ok()?;
    // A client that takes tasks may be given an upstream's, whose id the gateway's own
    // replaces (`gateway/tasks/passed.rs`): rmcp's way.
    if capabilities.supports_tasks() {
        return None;
    }
    let client = params
        .meta
        .get(CLIENT_INFO)
        .and_then(|info| serde_json::from_str::<ClientInfo>(info.get()).ok())
        .map(|info| Arc::from(info.name));
    let progress = match params.meta.get(PROGRESS_TOKEN) {
        Some(token) => Some(serde_json::from_str::<ProgressToken>(token.get()).ok()?),
        None => None,
    };
    let extensions = &parts.extensions;
    let mut origin = Origin {
        // The call ends with this future: a client that goes away drops it, which cancels
        // the call upstream (see `Upstream::call`).
        cancel: CancellationToken::new(),
        progress: None,
        caller: None,
        stateless: true,
        capabilities: Some(Arc::new(capabilities)),
        connections: None,
        log_level: None,
        client,
        principal: extensions.get::<Principal>().map(Principal::identity),
        view,
        credential: extensions.get::<Lease>().cloned(),
    };
    let meta = forwarded(&params.meta)?;
    let Some(token) = progress else {
        let call = ToolCall {
            name: &params.name,
            arguments: params.arguments,
            meta,
        };
        let (status, text) = whole(id, gateway.call_tool_raw(call, &origin).await);
        return Some(FastAnswer::Whole(status, text));
    };
    // Its progress goes on the call's own stream, which becomes the answer if an update comes
    // before the result: the call then runs on in the response's body.
    let (events, mut queued) = mpsc::channel(PROGRESS_EVENTS);
    origin.progress = Some(progress_on(token, &events));
    drop(events);
    let (gateway, name) = (gateway.clone(), params.name.into_owned());
    let arguments = params.arguments.map(RawValue::to_owned);
    let mut work = Box::pin(async move {
        let call = ToolCall {
            name: &name,
            arguments: arguments.as_deref(),
            meta,
        };
        gateway.call_tool_raw(call, &origin).await
    });
    let (first, work): (String, Work) = tokio::select! {
        biased;
        answer = &mut work => match queued.try_recv() {
            // Progress queued as the answer came (both in one read from the upstream) still
            // comes first, on a stream that ends with the answer.
            Ok(first) => {
                let text = response_text(envelope.id, answer);
                (first, Box::pin(std::future::ready(text)))
            }
            Err(_) => {
                let (status, text) = whole(id, answer);
                return Some(FastAnswer::Whole(status, text));
            }
        },
        Some(first) = queued.recv() => {
            let id = envelope.id.to_owned();
            (first, Box::pin(async move { response_text(&id, work.await) }))
        }
    };
    Some(FastAnswer::Stream(stream_from(&first, queued, work)))
}

/// A call's answer as one JSON body, with the status rmcp gives it.
fn whole(id: &str, answer: Result<RawAnswer, GatewayError>) -> (StatusCode, String) {
    match answer {
        Ok(answer) => (StatusCode::OK, result_text(id, &answer.result)),
        Err(error) => {
            let error = ErrorData::from(error);
            (status_of(&error), error_text(id, &error))
        }
    }
}

/// A 2026-07-28 POST with no session, that accepts both answers rmcp could give, sends JSON,
/// and names `tools/call` in its headers (SEP-2243).
fn plain_headers(headers: &HeaderMap) -> bool {
    !headers.contains_key(mcp_headers::SESSION_ID)
        && single(headers, mcp_headers::PROTOCOL_VERSION)
            .is_some_and(|version| version == ProtocolVersion::V_2026_07_28.as_str().as_bytes())
        && single(headers, mcp_headers::METHOD).is_some_and(|method| method == b"tools/call")
        && plain_post(headers)
}

/// A POST that accepts both answers rmcp could give (JSON and an event stream) and sends JSON.
pub(super) fn plain_post(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
        .to_ascii_lowercase();
    let json_body = single(headers, header::CONTENT_TYPE).is_some_and(|value| {
        let essence = value.split(|byte| *byte == b';').next().unwrap_or(value);
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/json")
    });
    accept.contains("application/json") && accept.contains("text/event-stream") && json_body
}

/// The one value of header `name`; `None` when it is absent or given more than once.
pub(super) fn single(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&[u8]> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first.as_bytes())
}

/// `_meta` with the keys every 2026-07-28 request carries, the revision this way speaks, and
/// nothing that asks for more (progress, log messages).
fn plain_meta(meta: &BTreeMap<Cow<'_, str>, &RawValue>) -> bool {
    let is_object = |raw: &&RawValue| raw.get().starts_with('{');
    meta.get(PROTOCOL_VERSION)
        .and_then(|raw| serde_json::from_str::<Cow<'_, str>>(raw.get()).ok())
        .is_some_and(|version| version == ProtocolVersion::V_2026_07_28.as_str())
        && meta.get(CLIENT_INFO).is_some_and(is_object)
        && meta.get(CLIENT_CAPABILITIES).is_some_and(is_object)
        && meta.keys().all(|key| {
            !key.starts_with(PROTOCOL_KEYS)
                || [PROTOCOL_VERSION, CLIENT_INFO, CLIENT_CAPABILITIES].contains(&key.as_ref())
        })
}

/// The members of `_meta` that go on to the upstream: all but the protocol's own, which
/// describe this hop (the router drops them on every way; here they are not even read).
/// `None` if one does not read as JSON (it was read as raw JSON already, so it does).
fn forwarded(meta: &BTreeMap<Cow<'_, str>, &RawValue>) -> Option<Map<String, Value>> {
    meta.iter()
        .filter(|(key, _)| !key.starts_with(PROTOCOL_KEYS))
        .map(|(key, raw)| Some((key.to_string(), serde_json::from_str(raw.get()).ok()?)))
        .collect()
}

/// The virtual server the request came through: `Some(None)` for none, `None` (rmcp answers)
/// for one the configuration no longer has.
pub(super) fn view_of(gateway: &Gateway, parts: &Parts) -> Option<Option<Arc<View>>> {
    match parts.extensions.get::<Scope>() {
        None => Some(None),
        Some(scope) => gateway.view(&scope.0).map(Some),
    }
}

/// The HTTP status rmcp gives a JSON-RPC error on a 2026-07-28 request.
fn status_of(error: &ErrorData) -> StatusCode {
    match error.code {
        ErrorCode::UNSUPPORTED_PROTOCOL_VERSION
        | ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY
        | ErrorCode::HEADER_MISMATCH => StatusCode::BAD_REQUEST,
        ErrorCode::METHOD_NOT_FOUND => StatusCode::NOT_FOUND,
        _ => StatusCode::OK,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn params(json: &str) -> Params<'_> {
        serde_json::from_str(json).expect("params read")
    }

    const PLAIN_META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28",
        "io.modelcontextprotocol/clientInfo":{"name":"inspector","version":"1"},
        "io.modelcontextprotocol/clientCapabilities":{}"#;

    #[test]
    fn a_plain_meta_is_read_without_its_protocol_keys_going_on() {
        let json =
            format!(r#"{{"name":"t","_meta":{PLAIN_META},"trace":{{"id":[1,2]}},"note":"x"}}}}"#);
        let params = params(&json);
        assert!(plain_meta(&params.meta));
        let forwarded = forwarded(&params.meta).expect("forwarded");
        assert_eq!(
            Value::Object(forwarded),
            serde_json::json!({"trace": {"id": [1, 2]}, "note": "x"})
        );
    }

    #[test]
    fn a_meta_asking_for_more_than_the_call_is_not_plain() {
        let cases = [
            // Another revision, or the revision not as a string.
            PLAIN_META.replace("\"2026-07-28\"", "\"2025-11-25\""),
            PLAIN_META.replace("\"2026-07-28\"", "20260728"),
            // Client info or capabilities that are not objects.
            PLAIN_META.replace(r#"{"name":"inspector","version":"1"}"#, "\"inspector\""),
            PLAIN_META.replace("Capabilities\":{}", "Capabilities\":[]"),
            // Another key of the protocol's (a log level).
            format!(r#"{PLAIN_META},"io.modelcontextprotocol/logLevel":"debug""#),
        ];
        for meta in cases {
            let json = format!(r#"{{"name":"t","_meta":{meta}}}}}"#);
            assert!(!plain_meta(&params(&json).meta), "{meta}");
        }
        // A required key missing.
        let json =
            r#"{"name":"t","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#;
        assert!(!plain_meta(&params(json).meta));
    }

    #[test]
    fn the_accept_header_is_read_in_any_case_and_across_lines() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.append(header::ACCEPT, HeaderValue::from_static("Application/JSON"));
        assert!(
            !plain_post(&headers),
            "an event stream must be accepted too"
        );
        headers.append(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream;q=0.5"),
        );
        assert!(plain_post(&headers));
    }
}
