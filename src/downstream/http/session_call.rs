//! The HTTP door's own way for a session-era session's plain `tools/call`.
//!
//! rmcp serves a session-era request through the session's worker, its service loop and a
//! task per request, and types the arguments and the result on the way. A `tools/call` in an
//! initialized session that asks for nothing beyond the call and its progress (no task) and
//! whose tool's upstream has a lane goes to the gateway's router instead
//! ([`Gateway::call_tool_raw`]), as a 2026-07-28 call does (see [`super::fast`]).
//!
//! The answer is an event stream, as rmcp's: the upstream's progress, log messages and
//! requests of its own (sampling, elicitation, roots) go on it, then the result. The client
//! answers our requests with POSTs to its session, which this module takes when they answer
//! one of ours ([`Asks`]); a `notifications/cancelled` for a call served here cancels it. The
//! stream has no event ids: a client whose connection drops cannot resume it (rmcp's can),
//! and the call is cancelled upstream instead. Everything else, including every request that
//! would be refused, is left to rmcp (`None`).

mod event_stream;

use std::{
    pin::Pin,
    sync::{Arc, Weak},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Response, StatusCode, request::Parts};
use rmcp::{ErrorData, model::ProtocolVersion};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub(super) use self::event_stream::stream_from;
use self::event_stream::{WHOLE_WITHIN, respond};
use super::{
    Body,
    fast::{plain_post, single, view_of},
    jsonrpc_error_response,
    ticks::Ticks,
};
use crate::{
    downstream::{
        ask_ids::{asked_by, is_rmcps_here, this_gateway},
        plain_call::{
            Asks, CallParams, CallsInFlight, CancelledParams, Message, StreamCaller,
            answer_to_ours, forwarded, response_text, session_origin,
        },
        sessions::SessionBook,
    },
    gateway::{Gateway, LaneCall, Retry},
    mcp_headers,
    registry::{Changes, ParcelKind, PassedAnswer, Registry, RegistryError, next_announcement},
    security::{Lease, Principal},
};

/// Messages of one call buffered for its response stream.
const STREAM_EVENTS: usize = 16;

/// The session-era calls served on this way, and the requests they put to their clients.
pub struct SessionCalls {
    asks: Arc<Asks>,
    /// The calls in flight, by their session and the client's id for each.
    calls: CallsInFlight,
    /// Where a client's answer to another gateway's request is passed on to it (see
    /// `registry/answers.rs`).
    passing: Option<Registry>,
    /// The clock of the calls' waits to be answered whole (see [`respond`]).
    whole_within: Ticks,
}

impl Default for SessionCalls {
    fn default() -> Self {
        Self {
            asks: Arc::default(),
            calls: CallsInFlight::default(),
            passing: None,
            whole_within: Ticks::every(WHOLE_WITHIN / 2),
        }
    }
}

/// A call's answer as it comes: the JSON-RPC response's text.
pub(super) type Work = Pin<Box<dyn Future<Output = String> + Send>>;

impl SessionCalls {
    /// The calls of a gateway that passes clients' answers to the other gateways on
    /// `registry`, and takes those passed to it from `changes` until `stop`: answers to
    /// its own requests here, and to rmcp's in `book`'s sessions.
    pub fn passing_answers(
        registry: Registry,
        changes: &Changes,
        book: &Arc<SessionBook>,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Self {
        let calls = Self {
            passing: Some(registry.clone()),
            ..Self::default()
        };
        tracker.spawn(take_passed_answers(
            Arc::downgrade(&calls.asks),
            Arc::downgrade(book),
            registry,
            changes.passed_answers(),
            stop,
        ));
        calls
    }

    /// The answer to a POST in a session-era session if this way takes it: a plain
    /// `tools/call`, a client's answer to a request of ours, or the cancellation of a call
    /// served here. `None` leaves it to rmcp.
    pub async fn serve(
        &self,
        gateway: &Arc<Gateway>,
        book: &SessionBook,
        parts: &Parts,
        body: &Bytes,
    ) -> Option<Response<Body>> {
        let session = std::str::from_utf8(single(&parts.headers, mcp_headers::SESSION_ID)?).ok()?;
        let message: Message = serde_json::from_slice(body).ok()?;
        if message.jsonrpc != "2.0" {
            return None;
        }
        match (message.id, message.method.as_deref(), message.params) {
            (Some(id), Some("tools/call"), Some(params))
                if message.result.is_none() && message.error.is_none() =>
            {
                let (work, events) = self.call(gateway, book, parts, session, id, params)?;
                Some(respond(work, events, self.whole_within.wait(2)).await)
            }
            (None, Some("notifications/cancelled"), Some(params)) => self.cancel(session, params),
            (Some(id), None, None) if message.result.is_some() != message.error.is_some() => {
                self.answer(session, id, body).await
            }
            _ => None,
        }
    }

    /// Starts a plain `tools/call`, if it is one, and answers as it goes.
    fn call(
        &self,
        gateway: &Arc<Gateway>,
        book: &SessionBook,
        parts: &Parts,
        session: &str,
        id: &RawValue,
        params: &RawValue,
    ) -> Option<(Work, mpsc::Receiver<String>)> {
        let headers = &parts.headers;
        let params: CallParams = serde_json::from_str(params.get()).ok()?;
        let plain = params.is_plain(id)
            && plain_post(headers)
            && session_era(headers)
            && agrees(headers, &mcp_headers::METHOD, "tools/call")
            && agrees(headers, &mcp_headers::NAME, &params.name);
        if !plain {
            return None;
        }
        let facts = gateway.http_session(session)?;
        let view = view_of(gateway, parts)?;
        let takes_tasks = facts.capabilities.supports_tasks();
        let tool =
            gateway.lane_tool(&params.name, params.arguments, view.as_deref(), takes_tasks)?;
        let in_flight = book.in_flight(session)?;
        // Closing the session cancels the call, as rmcp's way does.
        let cancel = in_flight.session_closed().child_token();
        let registered = self.calls.register(call_key(session, id), cancel.clone())?;
        let (events, stream) = mpsc::channel(STREAM_EVENTS);
        let progress = params.progress_to(&events);
        let caller = StreamCaller {
            key: facts.key,
            session: Arc::from(session),
            capabilities: facts.capabilities.clone(),
            log_level: facts.log_level.clone(),
            events,
            session_stream: facts.peer.clone(),
            asks: self.asks.clone(),
        };
        let extensions = &parts.extensions;
        let principal = extensions.get::<Principal>().map(Principal::identity);
        let credential = extensions.get::<Lease>().cloned();
        let mut origin = session_origin(&facts, caller, cancel, view, principal, credential)?;
        origin.progress = progress;
        let tool = tool.into_owned();
        let meta = forwarded(&params.meta)?;
        let id = id.to_owned();
        let gateway = gateway.clone();
        let work: Work = Box::pin(async move {
            let _in_flight = in_flight;
            let _registered = registered;
            let retry = Retry::default();
            let call = LaneCall { tool, meta, retry };
            response_text(&id, gateway.call_tool_raw(call, &origin).await)
        });
        Some((work, stream))
    }

    /// Cancels a call served here that the notification names; `None` for any other.
    fn cancel(&self, session: &str, params: &RawValue) -> Option<Response<Body>> {
        let params: CancelledParams = serde_json::from_str(params.get()).ok()?;
        let key = call_key(session, params.request_id);
        self.calls.cancel(&key).then(accepted)
    }

    /// Hands the client's answer to the request of ours it answers, or passes it on to the
    /// gateway that asked; `None` for any other, and for an answer to rmcp's request asked
    /// here, which rmcp takes.
    async fn answer(&self, session: &str, id: &RawValue, body: &Bytes) -> Option<Response<Body>> {
        let asker = asked_by(id.get())?;
        if asker != this_gateway() {
            // Boxed: rare (replicas only), and the largest future on a session's call path.
            return Some(Box::pin(self.pass_on(asker, session, body)).await);
        }
        if is_rmcps_here(id.get()) {
            return None;
        }
        let (id, answer) = answer_to_ours(id, body)?;
        self.asks.answered(session, &id, answer).then(accepted)
    }

    /// Passes a client's answer to gateway `asker`, which asked: 202 once it is on its way.
    async fn pass_on(&self, asker: &str, session: &str, body: &Bytes) -> Response<Body> {
        let refused = |status, why: String| {
            tracing::warn!(
                "a client's answer to another gateway's request cannot be passed on: {why}"
            );
            jsonrpc_error_response(
                status,
                ErrorData::invalid_request(
                    format!("this answers a request another gateway asked, and {why}"),
                    None,
                ),
            )
        };
        let Some(registry) = &self.passing else {
            return refused(
                StatusCode::BAD_REQUEST,
                "this gateway shares no registry with it".into(),
            );
        };
        let answer = PassedAnswer {
            kind: ParcelKind::Answer,
            session: session.to_owned(),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        match registry.pass_answer(asker, &answer).await {
            Ok(()) => accepted(),
            Err(error @ RegistryError::NoChannel(_)) => {
                refused(StatusCode::BAD_REQUEST, error.to_string())
            }
            Err(error) => refused(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the registry cannot take it now ({error}); try again"),
            ),
        }
    }
}

/// Hands the clients' answers other gateways pass to this one to the requests they answer,
/// until `stop`.
async fn take_passed_answers(
    asks: Weak<Asks>,
    book: Weak<SessionBook>,
    registry: Registry,
    mut passed: broadcast::Receiver<Arc<str>>,
    stop: CancellationToken,
) {
    let missed = "clients' answers passed by other gateways, whose requests then time out";
    while let Some(payload) = next_announcement(&mut passed, &stop, missed).await {
        let answer = match registry.passed_answer(ParcelKind::Answer, &payload).await {
            Ok(Some(answer)) => answer,
            Ok(None) => continue,
            Err(error) => {
                tracing::warn!(%error, "cannot read an answer another gateway passed on");
                continue;
            }
        };
        let (Some(asks), Some(book)) = (asks.upgrade(), book.upgrade()) else {
            return;
        };
        let Some(id) = serde_json::from_str::<Message>(&answer.body)
            .ok()
            .and_then(|message| message.id)
        else {
            continue;
        };
        let taken = if is_rmcps_here(id.get()) {
            book.take_answer(&answer.session, &answer.body).await
        } else {
            answer_to_ours(id, answer.body.as_bytes())
                .is_some_and(|(id, result)| asks.answered(&answer.session, &id, result))
        };
        if !taken {
            tracing::debug!("an answer passed on by another gateway answers nothing waiting here");
        }
    }
}

/// What a call in flight is known by: its session and the client's id for it (JSON text).
fn call_key(session: &str, id: &RawValue) -> String {
    [session, "\n", id.get()].concat()
}

fn accepted() -> Response<Body> {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .body(Body::empty())
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// No `MCP-Protocol-Version`, or a session-era one rmcp knows (a 2026-07-28 request names no
/// session).
fn session_era(headers: &HeaderMap) -> bool {
    absent_or_once(headers, &mcp_headers::PROTOCOL_VERSION, |version| {
        ProtocolVersion::KNOWN_VERSIONS
            .iter()
            .any(|known| known.as_str().as_bytes() == version && known.has_initialize())
    })
}

/// Header `name` is absent, or given once as `expected` (SEP-2243, which rmcp checks).
fn agrees(headers: &HeaderMap, name: &HeaderName, expected: &str) -> bool {
    absent_or_once(headers, name, |value| value == expected.as_bytes())
}

/// Header `name` is absent, or given once with a value that passes `check`.
fn absent_or_once(headers: &HeaderMap, name: &HeaderName, check: impl Fn(&[u8]) -> bool) -> bool {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => check(value.as_bytes()),
        (Some(_), Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_known_by_its_session_and_id() {
        let id = serde_json::value::RawValue::from_string("\"x\"".into()).unwrap();
        assert_eq!(call_key("s1", &id), "s1\n\"x\"");
    }

    /// Headers with `name` given once per value.
    fn headers(name: &HeaderName, values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn a_header_agrees_when_absent_or_given_once_as_expected() {
        let with = |values: &[&str]| {
            agrees(
                &headers(&mcp_headers::NAME, values),
                &mcp_headers::NAME,
                "fx__echo",
            )
        };
        assert!(with(&[]));
        assert!(with(&["fx__echo"]));
        assert!(!with(&["fx__other"]));
        assert!(!with(&["fx__echo", "fx__echo"]));
    }

    #[test]
    fn a_session_era_request_names_no_version_or_one_with_initialize() {
        let with = |values: &[&str]| session_era(&headers(&mcp_headers::PROTOCOL_VERSION, values));
        assert!(with(&[]));
        assert!(with(&["2025-11-25"]));
        assert!(with(&["2025-03-26"]));
        assert!(!with(&["2026-07-28"]));
        assert!(!with(&["1999-01-01"]));
        assert!(!with(&["2025-11-25", "2025-11-25"]));
    }
}
