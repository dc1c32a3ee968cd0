//! The HTTP door's own way for a session-era session's plain `tools/call`.
//!
//! rmcp serves a session-era request through the session's worker, its service loop and a
//! task per request, and types the arguments and the result on the way. A `tools/call` in an
//! initialized session that asks for nothing beyond the call (no progress, no task) and whose
//! tool's upstream has a lane goes to the gateway's router instead
//! ([`Gateway::call_tool_raw`]), as a 2026-07-28 call does (see [`super::fast`]).
//!
//! The answer is an event stream, as rmcp's: the upstream's log messages and requests of its
//! own (sampling, elicitation, roots) go on it, then the result. The client answers our
//! requests with POSTs to its session, which this module takes when they answer one of ours
//! ([`Asks`]); a `notifications/cancelled` for a call served here cancels it. The
//! stream has no event ids: a client whose connection drops cannot resume it (rmcp's can),
//! and the call is cancelled upstream instead. Everything else, including every request that
//! would be refused, is left to rmcp (`None`).

use std::{
    borrow::Cow,
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Weak},
    time::Duration,
};

use bytes::Bytes;
use futures::Stream;
use http::{HeaderMap, HeaderName, Response, StatusCode, header, request::Parts};
use rmcp::{ErrorData, model::ProtocolVersion};
use serde_json::value::RawValue;
use tokio::sync::{broadcast, mpsc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

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
            answer_to_ours, response_text, session_origin,
        },
        sessions::SessionBook,
    },
    gateway::{Gateway, ToolCall},
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
type Work = Pin<Box<dyn Future<Output = String> + Send>>;

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
        // A client that takes tasks may be given an upstream's: rmcp's way (see `fast.rs`).
        if facts.capabilities.supports_tasks() {
            return None;
        }
        let view = view_of(gateway, parts)?;
        if !gateway.takes_lane(&params.name, view.as_deref()) {
            return None;
        }
        let in_flight = book.in_flight(session)?;
        // Closing the session cancels the call, as rmcp's way does.
        let cancel = in_flight.session_closed().child_token();
        let registered = self.calls.register(call_key(session, id), cancel.clone())?;
        let (events, stream) = mpsc::channel(STREAM_EVENTS);
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
        let origin = session_origin(&facts, caller, cancel, view, principal, credential);
        let name = params.name.into_owned();
        let arguments = params.arguments.map(RawValue::to_owned);
        let meta = params.meta;
        let id = id.to_owned();
        let gateway = gateway.clone();
        let work: Work = Box::pin(async move {
            let _in_flight = in_flight;
            let _registered = registered;
            let call = ToolCall {
                name: &name,
                arguments: arguments.as_deref(),
                meta,
            };
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

/// The call's answer: an event stream of what the call sends, the response last, as rmcp
/// answers a session-era request.
///
/// A call answered before `whole_within` (about [`WHOLE_WITHIN`]), with nothing sent before,
/// gets its stream whole: one body of known length, which goes out in one write, where a
/// stream under way takes a write per event and one for its end. Any other starts at once
/// (after that wait), so the client sees its request accepted however long the call takes,
/// and a comment every [`KEEP_ALIVE`] keeps idle connections open between. The wait is on a
/// clock the calls share ([`Ticks`]): a timer of its own would wake the event loop once per
/// call.
async fn respond(
    mut work: Work,
    mut events: mpsc::Receiver<String>,
    whole_within: impl Future<Output = ()>,
) -> Response<Body> {
    let first = tokio::select! {
        // What the call sent before its response goes first.
        biased;
        Some(message) = events.recv() => Some(event(&message)),
        text = &mut work => {
            return stream_response(Body::from(last_events(&mut events, &text)));
        }
        () = whole_within => None,
    };
    let flow = Flow {
        first,
        events,
        work: Some(work),
    };
    stream_response(Body::from_stream(flow.into_stream()))
}

fn stream_response(body: Body) -> Response<Body> {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// How long a call's answer waits to be sent whole, at most (see [`respond`]).
const WHOLE_WITHIN: Duration = Duration::from_millis(100);

/// rmcp's interval for the same.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What is left to send of a call's event stream.
struct Flow {
    /// An event taken before the stream started, sent first.
    first: Option<Bytes>,
    events: mpsc::Receiver<String>,
    /// `None` once the response is sent: the stream then ends.
    work: Option<Work>,
}

impl Flow {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut flow| async move {
            if let Some(first) = flow.first.take() {
                return Some((Ok(first), flow));
            }
            let work = flow.work.as_mut()?;
            let (chunk, done) = tokio::select! {
                // What the call sent before its response goes first.
                biased;
                Some(message) = flow.events.recv() => (event(&message), false),
                text = work => (last_events(&mut flow.events, &text), true),
                () = tokio::time::sleep(KEEP_ALIVE) => (Bytes::from_static(b":\n\n"), false),
            };
            if done {
                flow.work = None;
            }
            Some((Ok(chunk), flow))
        })
    }
}

/// The end of a call's stream: what the call queued before its answer, then the answer. The
/// queue is closed first, so a message sent after this finds it closed and goes another way
/// (see [`StreamCaller`]) instead of being dropped with it.
fn last_events(events: &mut mpsc::Receiver<String>, answer: &str) -> Bytes {
    events.close();
    // Most calls queue nothing: their answer is the whole chunk.
    let Ok(first) = events.try_recv() else {
        return event(answer);
    };
    let mut chunk = event(&first).to_vec();
    while let Ok(message) = events.try_recv() {
        chunk.extend_from_slice(&event(&message));
    }
    chunk.extend_from_slice(&event(answer));
    Bytes::from(chunk)
}

/// One server-sent event carrying `message`. A line break in JSON text is whitespace outside
/// strings (inside them it is escaped), so a message written over several lines (an HTTP
/// upstream's result may be) becomes one `data:` line.
fn event(message: &str) -> Bytes {
    // memchr looks at many bytes per step; a search for either of two chars would decode
    // every char of the text.
    let broken = memchr::memchr2(b'\r', b'\n', message.as_bytes()).is_some();
    let line: Cow<'_, str> = if broken {
        Cow::Owned(message.replace(['\r', '\n'], " "))
    } else {
        Cow::Borrowed(message)
    };
    Bytes::from(["event: message\ndata: ", &line, "\n\n"].concat())
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
    fn a_stream_ends_with_what_was_queued_then_the_answer_each_on_one_line() {
        let answer = "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}";
        let (sender, mut events) = mpsc::channel(4);
        assert_eq!(
            last_events(&mut events, answer),
            format!("event: message\ndata: {answer}\n\n")
        );
        let (sender_too, mut events) = mpsc::channel(4);
        drop(sender);
        sender_too.try_send("{\"a\":\r\n1}".to_owned()).unwrap();
        sender_too.try_send("{\"b\":2}".to_owned()).unwrap();
        assert_eq!(
            last_events(&mut events, answer),
            format!(
                "event: message\ndata: {{\"a\":  1}}\n\nevent: message\ndata: {{\"b\":2}}\n\n\
                 event: message\ndata: {answer}\n\n"
            )
        );
        // The queue is closed: what comes later goes another way.
        assert!(sender_too.try_send("late".to_owned()).is_err());
    }

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
