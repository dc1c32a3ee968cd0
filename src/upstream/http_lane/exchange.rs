//! What comes back for one request on an HTTP lane: its answer, and before it whatever the
//! upstream puts on the request's stream (its own requests, notifications).
//!
//! A session-era upstream may close the stream before the answer and expect the client to
//! resume it (SEP-1699): a GET that names the last event seen (`Last-Event-ID`), after the
//! delay its last `retry` field asked for. The exchange does that as long as each stream
//! brings something new, and gives up after [`MAX_FRUITLESS_RESUMPTIONS`] that bring nothing.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicU32, AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use http::{Method, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming as IncomingBody;
use rmcp::model::{
    JsonRpcMessage, RequestId, ServerJsonRpcMessage, ServerNotification, ServerRequest,
};

use super::{EVENT_STREAM, HttpLane, is_event_stream};
use crate::upstream::{
    lane::{Answer, LaneError, id_text, read_answer},
    sse::{Events, event_stream},
};

/// Resumptions in a row that bring no event before the exchange gives up.
const MAX_FRUITLESS_RESUMPTIONS: u32 = 3;

/// How long to wait before resuming a stream whose upstream did not say (the SSE default
/// of browsers is 3 s; a call is waiting, so less).
const DEFAULT_RETRY: Duration = Duration::from_secs(1);

/// How long a request's stream is read for its end after its answer (see
/// [`Exchange::finish`]): its connection is closed if it has not ended by then.
const STREAM_END_WAIT: Duration = Duration::from_secs(1);

/// Streams one lane reads for their end at once, at most: past that, a stream is closed at
/// its answer, and so is its connection.
const MOST_STREAMS_ENDING: usize = 64;

/// Streams in a row that stay open past [`STREAM_END_WAIT`] after their answers before the
/// lane stops waiting for their ends.
const LATE_ENDS_TO_GIVE_UP: u32 = 3;

/// The lane's streams being read for their end after their answers (see
/// [`Exchange::finish`]). An upstream that keeps its streams open after the answers would
/// have each call hold a connection open for [`STREAM_END_WAIT`]: the number held is
/// bounded, and after a few such streams in a row the lane closes them at their answers, as
/// it did before it read their ends.
pub struct StreamEnds {
    upstream: String,
    reading: AtomicUsize,
    /// Streams in a row that did not end in time.
    late: AtomicU32,
}

impl StreamEnds {
    pub fn new(upstream: &str) -> Arc<Self> {
        Arc::new(Self {
            upstream: upstream.to_owned(),
            reading: AtomicUsize::new(0),
            late: AtomicU32::new(0),
        })
    }

    /// A stream whose end is to be read, if one may be now.
    fn begin(self: &Arc<Self>) -> Option<Arc<Self>> {
        if self.late.load(Ordering::Relaxed) >= LATE_ENDS_TO_GIVE_UP {
            return None;
        }
        if self.reading.fetch_add(1, Ordering::Relaxed) >= MOST_STREAMS_ENDING {
            self.reading.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(self.clone())
    }

    /// Reads `rest`, what is left of a response after what the lane wanted of it, to its
    /// end: at once when it has ended already, else in a task of its own, for at most
    /// [`STREAM_END_WAIT`], when one may be read now (see [`Exchange::finish`]).
    pub fn read_rest<S>(self: &Arc<Self>, mut rest: S)
    where
        S: futures::Stream + Send + Unpin + 'static,
    {
        // Ended already: nothing to wait for.
        if let Some(None) = rest.next().now_or_never() {
            return;
        }
        let Some(ends) = self.begin() else {
            return;
        };
        tokio::spawn(async move {
            let rest = rest.for_each(|_| std::future::ready(()));
            let in_time = tokio::time::timeout(STREAM_END_WAIT, rest).await.is_ok();
            ends.end(in_time);
        });
    }

    /// A stream begun has ended (`in_time`) or been closed.
    fn end(&self, in_time: bool) {
        self.reading.fetch_sub(1, Ordering::Relaxed);
        if in_time {
            self.late.store(0, Ordering::Relaxed);
        } else if self.late.fetch_add(1, Ordering::Relaxed) + 1 == LATE_ENDS_TO_GIVE_UP {
            tracing::warn!(
                upstream = %self.upstream,
                "{LATE_ENDS_TO_GIVE_UP} requests' event streams in a row stayed open {STREAM_END_WAIT:?} \
                 after their answers: they are closed at their answers from now on, and each \
                 request takes a new connection"
            );
        }
    }
}

/// One thing the upstream sent for a request.
#[derive(Debug)]
pub enum Incoming {
    /// The answer: the exchange is over.
    Answer(Answer),
    /// A request of the upstream's, to be answered with [`HttpLane::reply`].
    Request(RequestId, ServerRequest),
    Notification(ServerNotification),
}

/// One request's answer, as it arrives.
pub struct Exchange<'a> {
    lane: &'a HttpLane,
    number: u64,
    status: StatusCode,
    body: Body,
    /// The id of the last event seen on the request's stream, to resume it from.
    last_event: Option<String>,
    /// How long the upstream asked to wait before resuming.
    retry: Duration,
    fruitless_resumptions: u32,
}

enum Body {
    /// A plain JSON answer, until taken.
    Answered(Option<Answer>),
    Events(Events),
}

impl<'a> Exchange<'a> {
    pub(super) fn answered(lane: &'a HttpLane, number: u64, answer: Answer) -> Self {
        Self::new(lane, number, StatusCode::OK, Body::Answered(Some(answer)))
    }

    pub(super) fn streaming(
        lane: &'a HttpLane,
        number: u64,
        status: StatusCode,
        response: Response<IncomingBody>,
    ) -> Self {
        let events = events_of(response, lane.max_response_bytes);
        Self::new(lane, number, status, Body::Events(events))
    }

    fn new(lane: &'a HttpLane, number: u64, status: StatusCode, body: Body) -> Self {
        Self {
            lane,
            number,
            status,
            body,
            last_event: None,
            retry: DEFAULT_RETRY,
            fruitless_resumptions: 0,
        }
    }

    /// The number the request went out under (its id is `"mcps-<number>"`).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The next thing the upstream sent for the request; after [`Incoming::Answer`], nothing.
    pub async fn next(&mut self) -> Result<Incoming, LaneError> {
        loop {
            let events = match &mut self.body {
                Body::Answered(answer) => {
                    return answer.take().map(Incoming::Answer).ok_or(LaneError::Closed);
                }
                Body::Events(events) => events,
            };
            let event = match events.next().await {
                Some(Ok(event)) => event,
                Some(Err(error)) if self.last_event.is_none() => {
                    return Err(LaneError::Http(error.to_string()));
                }
                // A stream that breaks is resumed like one that ends.
                Some(Err(_)) | None => {
                    self.resume().await?;
                    continue;
                }
            };
            if let Some(id) = event.id {
                self.last_event = Some(id);
                self.fruitless_resumptions = 0;
            }
            if let Some(retry) = event.retry {
                self.retry = Duration::from_millis(retry);
            }
            if !matches!(event.event.as_deref(), None | Some("message")) {
                continue;
            }
            // A priming event (SEP-1699) has an id and no data.
            let Some(data) = event.data.filter(|data| !data.trim().is_empty()) else {
                continue;
            };
            if let Some(incoming) = self.read(&data) {
                if matches!(incoming, Incoming::Answer(_)) {
                    self.finish();
                }
                return Ok(incoming);
            }
        }
    }

    /// Reads the rest of the request's stream after its answer, to its end, so that its
    /// connection can carry another request: hyper closes one whose response was dropped
    /// before its end. uvicorn (under the Python SDK's servers) ends the stream in a write of
    /// its own after the answer, and without this most of the lane's calls to it opened a new
    /// connection (BENCHMARKS.md).
    fn finish(&mut self) {
        if let Body::Events(events) = std::mem::replace(&mut self.body, Body::Answered(None)) {
            self.lane.stream_ends.read_rest(events);
        }
    }

    /// What one event's data is for this request, if anything.
    fn read(&self, data: &str) -> Option<Incoming> {
        let upstream = &self.lane.upstream;
        if let Some((ours, answer)) = read_answer(data.as_bytes(), upstream) {
            if ours != self.number {
                tracing::warn!(
                    upstream,
                    id = id_text(ours),
                    "dropped an answer to another request on a request's stream"
                );
                return None;
            }
            return Some(Incoming::Answer(answer));
        }
        match serde_json::from_str::<ServerJsonRpcMessage>(data) {
            Ok(JsonRpcMessage::Request(request)) => {
                Some(Incoming::Request(request.id, request.request))
            }
            Ok(JsonRpcMessage::Notification(notification)) => {
                Some(Incoming::Notification(notification.notification))
            }
            Ok(_) => {
                tracing::warn!(
                    upstream,
                    "dropped an answer to no request of the lane's on a request's stream"
                );
                None
            }
            Err(error) => {
                tracing::warn!(upstream, %error, "an event on a request's stream that is not a JSON-RPC message");
                None
            }
        }
    }

    /// Opens the request's stream again from its last event, or says why it cannot.
    async fn resume(&mut self) -> Result<(), LaneError> {
        let ended = |why: String| {
            LaneError::Http(format!(
                "its event stream ended without an answer (HTTP {}){why}",
                self.status
            ))
        };
        let (Some(last_event), Some(session)) = (&self.last_event, self.lane.session_id()) else {
            return Err(ended(String::new()));
        };
        if self.fruitless_resumptions >= MAX_FRUITLESS_RESUMPTIONS {
            return Err(ended(format!(
                ", and {MAX_FRUITLESS_RESUMPTIONS} resumptions in a row brought nothing"
            )));
        }
        self.fruitless_resumptions += 1;
        // If this wait is dropped (its call went on to something else), the next read
        // comes back here rather than polling the ended stream again.
        self.body = Body::Events(futures::stream::empty().boxed());
        tokio::time::sleep(self.retry).await;
        let token = self.lane.bearer().await;
        let build = |target: &Uri| {
            self.lane
                .to_upstream(Method::GET, token.as_deref(), target)
                .header(header::ACCEPT, EVENT_STREAM)
                .header("mcp-session-id", session.as_str())
                .header("last-event-id", last_event.as_str())
                .body(Full::new(Bytes::new()))
                .map_err(|error| LaneError::Http(format!("cannot write a request to it: {error}")))
        };
        let response = self
            .lane
            .following(build)
            .await
            .map_err(|error| ended(format!(", and resuming it failed: {error}")))?;
        let status = response.status();
        if !status.is_success() || !is_event_stream(response.headers()) {
            return Err(ended(format!(
                ", and resuming it from event {last_event:?} was answered HTTP {status}"
            )));
        }
        tracing::debug!(upstream = %self.lane.upstream, %last_event, "resumed a request's event stream");
        self.body = Body::Events(events_of(response, self.lane.max_response_bytes));
        Ok(())
    }
}

fn events_of(response: Response<IncomingBody>, max_event_bytes: usize) -> Events {
    let bytes = response
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(io::Error::other));
    event_stream(bytes, max_event_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_read_a_bounded_number_at_once() {
        let ends = StreamEnds::new("up");
        let begun: Vec<_> = (0..MOST_STREAMS_ENDING)
            .map(|_| ends.begin().expect("room for it"))
            .collect();
        assert!(ends.begin().is_none(), "one more is closed at its answer");
        begun[0].end(true);
        assert!(ends.begin().is_some(), "room again");
    }

    #[test]
    fn streams_that_stay_open_in_a_row_stop_the_reading() {
        let ends = StreamEnds::new("up");
        for _ in 0..LATE_ENDS_TO_GIVE_UP - 1 {
            ends.begin().unwrap().end(false);
        }
        // One in time forgives those before it.
        ends.begin().unwrap().end(true);
        for _ in 0..LATE_ENDS_TO_GIVE_UP - 1 {
            ends.begin().unwrap().end(false);
        }
        assert!(ends.begin().is_some());
        ends.end(false);
        assert!(ends.begin().is_none(), "given up");
        assert_eq!(ends.reading.load(Ordering::Relaxed), 0);
    }
}
