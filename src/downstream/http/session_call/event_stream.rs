//! A session-era call's answer as an event stream: what the call sends on the way, then its
//! response; whole in one body when it comes soon enough. A 2026-07-28 call whose progress
//! comes before its answer gets the same stream ([`stream_from`]).

use std::{borrow::Cow, convert::Infallible, time::Duration};

use bytes::Bytes;
use futures::Stream;
use http::{Response, header};
use tokio::sync::mpsc;

use super::{Body, Work};

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
///
/// [`Ticks`]: crate::downstream::http::ticks::Ticks
pub(super) async fn respond(
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

/// A call's event stream that starts with `first`, a message the call sent before its
/// answer: the 2026-07-28 way's, which answers with one JSON body when the answer comes first,
/// as rmcp does.
pub(in crate::downstream::http) fn stream_from(
    first: &str,
    events: mpsc::Receiver<String>,
    work: Work,
) -> Response<Body> {
    let flow = Flow {
        first: Some(event(first)),
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
pub(super) const WHOLE_WITHIN: Duration = Duration::from_millis(100);

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
///
/// [`StreamCaller`]: crate::downstream::plain_call::StreamCaller
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
}
