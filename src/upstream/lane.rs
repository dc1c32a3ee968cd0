//! Our own lane for requests on a stdio connection, beside rmcp's.
//!
//! rmcp's client sends a request through its service task and hands the answer back through
//! another; the gateway's calls skip both. A request on the lane is written to the child's
//! stdin by the caller's own task, under an id rmcp never uses (`"mcps-<n>"`: rmcp's ids are
//! numbers), and its answer is taken off the wire by the transport's reader before rmcp parses
//! anything: the result stays the raw JSON text the upstream wrote. Everything else on the
//! connection (the handshake, list requests, the upstream's notifications and requests)
//! still goes through rmcp.
//!
//! When the connection ends the lane is closed: the calls waiting on it fail at once, and so
//! does every later one.

use std::{
    collections::HashMap,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use memchr::memmem::Finder;
use rmcp::{ErrorData, model::RequestId};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::{io::AsyncWrite, sync::oneshot};

use crate::{line_reader::write_line, sync::lock};

/// The prefix of the ids of the lane's requests, written once for both constants below.
macro_rules! id_prefix {
    () => {
        "mcps-"
    };
}
const ID_PREFIX: &str = id_prefix!();
/// How the id of one of the lane's requests starts in an answer's JSON text.
const QUOTED_ID_PREFIX: &str = concat!("\"", id_prefix!());
/// The search for [`QUOTED_ID_PREFIX`] in every line the upstream writes, built once:
/// `memmem::find` builds its searcher again on every call, for more than the search costs.
static QUOTED_ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(QUOTED_ID_PREFIX));

/// The lane of a stdio upstream's connection.
pub type StdioLane = Lane<tokio::process::ChildStdin>;

/// The upstream's answer to one request.
#[derive(Debug)]
pub enum Answer {
    /// The `result`, as the upstream wrote it.
    Result(Box<RawValue>),
    /// A JSON-RPC error.
    Error(ErrorData),
}

/// The requests in flight on one stdio connection, by our number, and the pipe to send them on.
pub struct Lane<W> {
    stdin: Arc<tokio::sync::Mutex<W>>,
    /// `None` once the connection has ended.
    waiting: Mutex<Option<HashMap<u64, oneshot::Sender<Answer>>>>,
    next: AtomicU64,
}

/// Why a request on the lane got no answer.
#[derive(Debug)]
pub enum LaneError {
    /// The connection ended (before or while the request was in flight).
    Closed,
    /// Writing the request failed.
    Write(std::io::Error),
    /// The upstream's HTTP answer was not one (a status without a JSON-RPC answer, a
    /// stream that ended first, a connection that failed).
    Http(String),
    /// A session-era HTTP upstream no longer knows the session the request named.
    SessionExpired,
}

impl std::fmt::Display for LaneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("connection closed"),
            Self::Write(error) => write!(f, "cannot send to it: {error}"),
            Self::Http(reason) => f.write_str(reason),
            Self::SessionExpired => f.write_str("it no longer knows the gateway's session"),
        }
    }
}

/// One request in flight: its id, and where its answer arrives. Dropping it forgets the
/// request (a late answer is then dropped with a warning).
pub struct Ticket<W> {
    lane: Arc<Lane<W>>,
    number: u64,
    /// `number` as the request's id, written once.
    id: RequestId,
    answer: Option<oneshot::Receiver<Answer>>,
}

impl<W> std::fmt::Debug for Lane<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let waiting = lock(&self.waiting).as_ref().map(HashMap::len);
        f.debug_struct("Lane").field("waiting", &waiting).finish()
    }
}

impl<W> Ticket<W> {
    /// The id the request went out under.
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// Waits for the answer.
    pub async fn answer(&mut self) -> Result<Answer, LaneError> {
        let receiver = self.answer.as_mut().ok_or(LaneError::Closed)?;
        let answer = receiver.await.map_err(|_| LaneError::Closed);
        self.answer = None;
        answer
    }
}

impl<W> Drop for Ticket<W> {
    fn drop(&mut self) {
        if self.answer.is_some()
            && let Some(waiting) = lock(&self.lane.waiting).as_mut()
        {
            waiting.remove(&self.number);
        }
    }
}

pub(super) fn id_of(number: u64) -> RequestId {
    RequestId::String(
        [ID_PREFIX, itoa::Buffer::new().format(number)]
            .concat()
            .into(),
    )
}

/// The parts of an answer the lane reads; the result stays text.
#[derive(Deserialize)]
struct AnswerPeek<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    method: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    error: Option<ErrorData>,
}

impl<W: AsyncWrite + Unpin + Send> Lane<W> {
    pub fn new(stdin: Arc<tokio::sync::Mutex<W>>) -> Self {
        Self {
            stdin,
            waiting: Mutex::new(Some(HashMap::new())),
            next: AtomicU64::new(1),
        }
    }

    /// Sends `method` with `params` (a JSON object, written as is) and returns the ticket
    /// its answer comes to. `params` is built by the caller with `id` in hand (`number` is
    /// reserved first so a progress token can name it).
    pub async fn send(
        self: &Arc<Self>,
        method: &str,
        params: impl FnOnce(&RequestId) -> String,
    ) -> Result<Ticket<W>, LaneError> {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = oneshot::channel();
        match lock(&self.waiting).as_mut() {
            Some(waiting) => waiting.insert(number, sender),
            None => return Err(LaneError::Closed),
        };
        let ticket = Ticket {
            lane: self.clone(),
            number,
            id: id_of(number),
            answer: Some(receiver),
        };
        let params = params(ticket.id());
        let line = request_text(number, method, &params, "\n");
        write_line(&self.stdin, line.as_bytes())
            .await
            .map_err(LaneError::Write)?;
        Ok(ticket)
    }

    /// Tells the upstream that the request `id` is cancelled (its answer is no longer awaited).
    pub async fn cancel(&self, id: &RequestId, reason: &str) -> std::io::Result<()> {
        let notice = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": reason},
        });
        write_line(&self.stdin, &crate::line_reader::json_line(&notice)?).await
    }
}

impl<W> Lane<W> {
    /// Takes `line` if it answers one of the lane's requests: true if it was ours (delivered,
    /// or dropped with a warning when nobody waits for it any more).
    pub fn take(&self, line: &[u8], upstream: &str) -> bool {
        // Most lines are not ours: rmcp's answers, notifications. Tell them apart unparsed.
        if QUOTED_ID.find(line).is_none() {
            return false;
        }
        let Some((number, answer)) = read_answer(line, upstream) else {
            return false;
        };
        self.deliver(number, answer, upstream);
        true
    }

    /// Takes an answer that could not be read (see `jsonrpc::unreadable_answer`) if it
    /// answers one of the lane's requests, which then fails with `error` at once.
    pub fn take_unreadable(&self, id: &RequestId, error: ErrorData, upstream: &str) -> bool {
        let RequestId::String(id) = id else {
            return false;
        };
        let Some(number) = id.strip_prefix(ID_PREFIX).and_then(|n| n.parse().ok()) else {
            return false;
        };
        self.deliver(number, Answer::Error(error), upstream);
        true
    }

    fn deliver(&self, number: u64, answer: Answer, upstream: &str) {
        let waiter = lock(&self.waiting)
            .as_mut()
            .and_then(|waiting| waiting.remove(&number));
        match waiter {
            Some(waiter) => {
                // The caller may have given up just now; then the answer goes nowhere.
                let _ = waiter.send(answer);
            }
            None => tracing::warn!(
                upstream,
                id = id_text(number),
                "dropped an answer to no request in flight (unknown, answered twice, or cancelled)"
            ),
        }
    }

    /// The connection ended: every request waiting fails, and so does every later one.
    pub fn close(&self) {
        lock(&self.waiting).take();
    }
}

/// The number of the lane request `message` answers, and the answer; `None` if it is not
/// an answer to one of the lane's requests.
pub(super) fn read_answer(message: &[u8], upstream: &str) -> Option<(u64, Answer)> {
    let peek = serde_json::from_slice::<AnswerPeek>(message).ok()?;
    let (Some(id), None) = (peek.id, peek.method) else {
        return None;
    };
    let number = id.strip_prefix(ID_PREFIX)?.parse().ok()?;
    let answer = match (peek.result, peek.error) {
        (Some(result), None) => Answer::Result(result.to_owned()),
        (None, Some(error)) => Answer::Error(error),
        _ => Answer::Error(ErrorData::internal_error(
            format!("upstream {upstream} answered with neither a result nor an error"),
            None,
        )),
    };
    Some((number, answer))
}

/// The lane's request `number` as JSON text followed by `end`, `params` (an object's text)
/// as it is. Written in one allocation of its exact length: it is built for every call.
pub(super) fn request_text(number: u64, method: &str, params: &str, end: &str) -> String {
    let escaped;
    let method = if method
        .chars()
        .all(|c| c != '"' && c != '\\' && !c.is_control())
    {
        method
    } else {
        // A string always serializes; its text without the quotes goes between ours.
        escaped = serde_json::to_string(method).unwrap_or_else(|_| "\"\"".into());
        &escaped[1..escaped.len() - 1]
    };
    let mut number_text = itoa::Buffer::new();
    [
        "{\"jsonrpc\":\"2.0\",\"id\":\"",
        ID_PREFIX,
        number_text.format(number),
        "\",\"method\":\"",
        method,
        "\",\"params\":",
        params,
        "}",
        end,
    ]
    .concat()
}

/// The id of the lane's request `number`, as JSON text.
pub(super) fn id_text(number: u64) -> String {
    ["\"", ID_PREFIX, itoa::Buffer::new().format(number), "\""].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane() -> Arc<Lane<Vec<u8>>> {
        Arc::new(Lane::new(Arc::new(tokio::sync::Mutex::new(Vec::new()))))
    }

    async fn written(lane: &Lane<Vec<u8>>) -> String {
        String::from_utf8(lane.stdin.lock().await.clone()).unwrap()
    }

    #[tokio::test]
    async fn a_request_goes_out_under_our_id_and_its_result_comes_back_as_written() {
        let lane = lane();
        let mut ticket = lane
            .send("tools/call", |id| {
                format!(
                    "{{\"name\":\"echo\",\"_meta\":{{\"progressToken\":{}}}}}",
                    serde_json::to_string(id).unwrap()
                )
            })
            .await
            .unwrap();
        assert_eq!(
            written(&lane).await,
            "{\"jsonrpc\":\"2.0\",\"id\":\"mcps-1\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"_meta\":{\"progressToken\":\"mcps-1\"}}}\n"
        );
        assert!(!lane.take(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, "u"));
        assert!(lane.take(
            br#"{"jsonrpc":"2.0","id":"mcps-1","result":{"content":[ {"type":"text","text":"hi"}]}}"#,
            "u"
        ));
        match ticket.answer().await.unwrap() {
            Answer::Result(raw) => {
                assert_eq!(raw.get(), r#"{"content":[ {"type":"text","text":"hi"}]}"#);
            }
            Answer::Error(error) => panic!("{error:?}"),
        }
    }

    #[tokio::test]
    async fn errors_late_answers_and_a_closed_lane() {
        let lane = lane();
        let mut first = lane.send("ping", |_| "{}".into()).await.unwrap();
        assert!(lane.take(
            br#"{"jsonrpc":"2.0","id":"mcps-1","error":{"code":-32601,"message":"no"}}"#,
            "u"
        ));
        assert!(matches!(first.answer().await, Ok(Answer::Error(e)) if e.message == "no"));
        // Answered twice: ours, and dropped.
        assert!(lane.take(br#"{"jsonrpc":"2.0","id":"mcps-1","result":{}}"#, "u"));
        // A request from the upstream with such an id is not an answer.
        assert!(!lane.take(
            br#"{"jsonrpc":"2.0","id":"mcps-9","method":"roots/list"}"#,
            "u"
        ));
        let mut second = lane.send("ping", |_| "{}".into()).await.unwrap();
        lane.close();
        assert!(matches!(second.answer().await, Err(LaneError::Closed)));
        assert!(matches!(
            lane.send("ping", |_| "{}".into()).await,
            Err(LaneError::Closed)
        ));
    }

    #[test]
    fn a_request_is_written_whole_and_a_method_escaped() {
        assert_eq!(
            request_text(12, "tools/call", r#"{"name":"echo"}"#, "\n"),
            "{\"jsonrpc\":\"2.0\",\"id\":\"mcps-12\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}\n"
        );
        let odd: serde_json::Value =
            serde_json::from_str(&request_text(1, "a\"b\\c\u{1}", "{}", "")).unwrap();
        assert_eq!(odd["method"], "a\"b\\c\u{1}");
        assert_eq!(odd["id"], "mcps-1");
        assert_eq!(id_text(7), "\"mcps-7\"");
        assert_eq!(id_of(7), RequestId::String("mcps-7".into()));
    }
}
