//! The HTTP door's own way for the most common request: a plain 2026-07-28 `tools/call`.
//!
//! rmcp's server builds a service, a transport and a task for each stateless request, and
//! types the arguments and the result on the way through. A request this module can read whole
//! — one `tools/call` whose headers agree with its body and that asks for nothing beyond the
//! call, its progress and its log messages (a retry of an `input_required` round is one; a
//! task is not) — goes to the gateway's router instead ([`Gateway::call_tool_raw`]), which forwards the
//! arguments and the result as the JSON text they are. Its answer is one JSON body, or, when
//! its progress or a log message comes first, an event stream of those and then the answer,
//! as rmcp answers. Its arguments that go in headers too are checked here, as rmcp checks them
//! (`param_headers`). Anything else, including every other request that would be refused, is
//! left to rmcp (`None`), so the other checks and refusals stay rmcp's.

use std::{borrow::Cow, sync::Arc};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, header, header::AsHeaderName, request::Parts};
use rmcp::{
    ErrorData,
    model::{ErrorCode, ProtocolVersion},
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    Body, param_headers,
    session_call::{Work, stream_from},
};
use crate::{
    downstream::plain_call::{CallParams, Envelope, forwarded, response_text},
    error::GatewayError,
    gateway::{Gateway, LaneCall, RawAnswer, Scope, View},
    jsonrpc::{error_text, result_text},
    mcp_headers,
    security::{Lease, Principal},
};

/// The whole of a request this way takes: anything more, and rmcp answers it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: CallParams<'a>,
}

/// How this way answers a call.
pub(super) enum FastAnswer {
    /// One JSON body, with its status: the call's answer was its first message.
    Whole(StatusCode, String),
    /// An event stream: the call's progress came before its answer, as rmcp answers then.
    Stream(Response<Body>),
}

/// Progress updates and log messages a 2026-07-28 call may queue before its stream is read.
const STREAM_EVENTS: usize = 16;

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
    let request: Request = serde_json::from_slice(body).ok()?;
    let params = request.params;
    let plain = request.jsonrpc == "2.0"
        && request.method == "tools/call"
        && params.is_call(request.id)
        && single(headers, mcp_headers::NAME).is_some_and(|name| name == params.name.as_bytes());
    if !plain {
        return None;
    }
    let client = Envelope::read(&params.meta)?;
    let view = view_of(gateway, parts)?;
    let takes_tasks = client.takes_tasks();
    let mut tool =
        gateway.lane_tool(&params.name, params.arguments, view.as_deref(), takes_tasks)?;
    let id = request.id.get();
    if let Some(schema) = tool.header_schema.clone() {
        // Read as an object already (above); a proxy may have routed on these headers. The
        // router takes the arguments as read here.
        let arguments = tool.parsed_arguments().ok()?;
        if let Err(reason) = param_headers::check(headers, &schema, arguments) {
            tracing::debug!(tool = %params.name, %reason, "a call's headers disagree with its arguments");
            let refusal = ErrorData::header_mismatch(reason, None);
            return Some(FastAnswer::Whole(
                status_of(&refusal),
                error_text(id, &refusal),
            ));
        }
    }
    let meta = forwarded(&params.meta)?;
    let retry = params.retry()?;
    let extensions = &parts.extensions;
    let principal = extensions.get::<Principal>().map(Principal::identity);
    let credential = extensions.get::<Lease>().cloned();
    // The call ends with this future: a client that goes away drops it, which cancels the
    // call upstream (see `Upstream::call`).
    let cancel = CancellationToken::new();
    if !client.streams() {
        let origin = client.origin(None, cancel, view, principal, credential);
        let call = LaneCall { tool, meta, retry };
        let (status, text) = whole(id, gateway.call_tool_raw(call, &origin).await);
        return Some(FastAnswer::Whole(status, text));
    }
    // Its progress and log messages go on the call's own stream, which becomes the answer if
    // one comes before the result: the call then runs on in the response's body.
    let (events, mut queued) = mpsc::channel(STREAM_EVENTS);
    let origin = client.origin(Some(&events), cancel, view, principal, credential);
    drop(events);
    let (gateway, tool) = (gateway.clone(), tool.into_owned());
    let mut work = Box::pin(async move {
        let call = LaneCall { tool, meta, retry };
        gateway.call_tool_raw(call, &origin).await
    });
    let (first, work): (String, Work) = tokio::select! {
        biased;
        answer = &mut work => match queued.try_recv() {
            // Progress queued as the answer came (both in one read from the upstream) still
            // comes first, on a stream that ends with the answer.
            Ok(first) => {
                let text = response_text(request.id, answer);
                (first, Box::pin(std::future::ready(text)))
            }
            Err(_) => {
                let (status, text) = whole(id, answer);
                return Some(FastAnswer::Whole(status, text));
            }
        },
        Some(first) = queued.recv() => {
            let id = request.id.to_owned();
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
    let json_body = single(headers, header::CONTENT_TYPE).is_some_and(|value| {
        let essence = value.split(|byte| *byte == b';').next().unwrap_or(value);
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/json")
    });
    json_body && accepts(headers, b"application/json") && accepts(headers, b"text/event-stream")
}

/// Whether an `Accept` header names `media` anywhere in it, in any case (as rmcp reads it),
/// without copying the headers: this is read for every call.
fn accepts(headers: &HeaderMap, media: &[u8]) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter(|value| value.to_str().is_ok())
        .any(|value| {
            value
                .as_bytes()
                .windows(media.len())
                .any(|window| window.eq_ignore_ascii_case(media))
        })
}

/// The one value of header `name`; `None` when it is absent or given more than once.
pub(super) fn single(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&[u8]> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then_some(first.as_bytes())
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

        let mut one_line = HeaderMap::new();
        one_line.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/Json; charset=utf-8"),
        );
        one_line.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/EVENT-STREAM, application/json"),
        );
        assert!(plain_post(&one_line));
        one_line.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!plain_post(&one_line), "the body must be JSON");
    }
}
