//! Session-era answers sent whole when they come quickly.
//!
//! A session-era POST is answered with an event stream, which rmcp writes as it goes: its
//! priming event, then the answer and the stream's end, each a write, and the body chunked.
//! The client must read the terminating chunk before its connection may carry its next
//! request; one that sends first opens another connection. An answer complete within
//! [`WHOLE_WITHIN`] goes out instead as one body of known length, in one write. One that takes
//! longer goes out as it comes once that wait is over, what came before it first, so the
//! client sees its request accepted however long it takes.
//!
//! The wait is on a clock the requests share ([`Ticks`]): a timer of its own would wake the
//! event loop once per request.

use std::{pin::pin, time::Duration};

use bytes::BytesMut;
use futures::StreamExt;
use http::{Response, header};
use http_body_util::BodyExt;

use super::{Body, ticks::Ticks};

/// How long an answer waits to be sent whole, at most.
pub const WHOLE_WITHIN: Duration = Duration::from_millis(100);

/// The clock of the waits to send answers whole.
pub struct Whole {
    ticks: Ticks,
}

impl Default for Whole {
    fn default() -> Self {
        Self {
            ticks: Ticks::every(WHOLE_WITHIN / 2),
        }
    }
}

impl Whole {
    /// Ends after between a half and the whole of [`WHOLE_WITHIN`].
    pub async fn window(&self) {
        self.ticks.wait(2).await;
    }

    /// `response`, whole if it is an event stream that ends within the window; any other
    /// response as it is.
    pub async fn if_quick(&self, response: Response<Body>) -> Response<Body> {
        let is_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"));
        if !is_stream
            || hyper::body::Body::size_hint(response.body())
                .exact()
                .is_some()
        {
            return response;
        }
        let (parts, mut body) = response.into_parts();
        let mut came = BytesMut::new();
        let mut window = pin!(self.window());
        let ended = loop {
            tokio::select! {
                biased;
                frame = body.frame() => match frame {
                    None => break true,
                    // An event stream has no trailers.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            came.extend_from_slice(&data);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::debug!(%error, "an answer's stream failed before it was sent");
                        break false;
                    }
                },
                () = &mut window => break false,
            }
        };
        let came = came.freeze();
        if ended {
            return Response::from_parts(parts, Body::from(came));
        }
        let first = futures::stream::iter((!came.is_empty()).then(|| Ok::<_, axum::Error>(came)));
        let rest = body.into_data_stream();
        Response::from_parts(parts, Body::from_stream(first.chain(rest)))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;

    use super::*;

    fn stream_of(events: Vec<(Duration, &'static str)>) -> Response<Body> {
        let events = futures::stream::iter(events).then(|(after, event)| async move {
            tokio::time::sleep(after).await;
            Ok::<_, Infallible>(Bytes::from_static(event.as_bytes()))
        });
        Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(Body::from_stream(events))
            .unwrap()
    }

    async fn text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn length(response: &Response<Body>) -> Option<u64> {
        hyper::body::Body::size_hint(response.body()).exact()
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_ends_within_the_window_is_sent_whole() {
        let whole = Whole::default();
        let events = vec![
            (Duration::ZERO, "data: \n\n"),
            (Duration::from_millis(5), "data: {\"id\":1}\n\n"),
        ];
        let response = whole.if_quick(stream_of(events)).await;
        let expected = "data: \n\ndata: {\"id\":1}\n\n";
        assert_eq!(length(&response), Some(expected.len() as u64));
        assert_eq!(text(response).await, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_stream_goes_on_with_what_came_first_and_loses_nothing() {
        let whole = Whole::default();
        let events = vec![
            (Duration::ZERO, "data: \n\n"),
            (Duration::from_secs(1), "data: {\"id\":1}\n\n"),
        ];
        let started = tokio::time::Instant::now();
        let response = whole.if_quick(stream_of(events)).await;
        assert!(started.elapsed() <= WHOLE_WITHIN);
        assert_eq!(length(&response), None);
        assert_eq!(text(response).await, "data: \n\ndata: {\"id\":1}\n\n");
    }

    #[tokio::test(start_paused = true)]
    async fn anything_but_an_unfinished_event_stream_is_left_as_it_is() {
        let whole = Whole::default();
        let json = Response::builder()
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from_stream(futures::stream::pending::<
                Result<Bytes, Infallible>,
            >()))
            .unwrap();
        // A pending body would hold the answer for the whole window if it were read.
        let started = tokio::time::Instant::now();
        let json = whole.if_quick(json).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(length(&json), None);
        let empty = Response::new(Body::empty());
        assert_eq!(length(&whole.if_quick(empty).await), Some(0));
    }
}
