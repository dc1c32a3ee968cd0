//! A client's event stream, taken over from hyper and written by the connection itself.
//!
//! hyper keeps a read and a write buffer of 8 KiB each for as long as it serves a connection,
//! and a GET event stream is a response that lasts as long as its client listens: with hyper
//! under it, a listening session cost about 21 KB where a sleeping one costs 5 (BENCHMARKS.md,
//! "What a listening session's GET connection holds"). So once the front door has answered
//! an HTTP/1.1 GET, or a 2026-07-28 `subscriptions/listen`, with an event stream
//! ([`takes_over`]), the request's future offers the response here ([`Handover::offer`]) and
//! waits for ever; the connection's server sees the offer, takes its socket and what it read
//! past the request back from hyper's connection (whose buffers, and the request's future,
//! go with it) and writes the response itself ([`stream`]): its head, then each event as an
//! HTTP/1.1 chunk, without a buffer of its own. When the stream ends, the connection serves
//! its client's next request, or waits for it as a parked one does.
//!
//! What hyper did besides, the stream does too: it notices at once when its client closes the
//! connection (a peek, as hyper's read did), and a client that sends a request behind the
//! stream, even before its answer began, has it answered after it. hyper does not give back
//! its write buffer, and does not need to: it reads a request only once it has written the
//! answer before it (a connection goes back to reading after a flush), so the buffer is
//! empty when the request's answer is offered.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::Poll,
};

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode, Version, header};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::{io::AsyncWriteExt, net::TcpStream};

use crate::{
    downstream::{
        connection::Watched,
        http::{StreamsWhileListened, asks_to_close},
    },
    sync::lock,
};

/// Whether `response`, the answer to a request of `version`, is a stream to take over from
/// hyper: an HTTP/1.1 event stream the front door marked [`StreamsWhileListened`]. (Other
/// event streams, a session-era call's, are over in a moment: taking them over would cost
/// every call a new hyper connection.)
pub fn takes_over<B: Body>(version: Version, response: &Response<B>) -> bool {
    let headers = response.headers();
    version == Version::HTTP_11
        && response
            .extensions()
            .get::<StreamsWhileListened>()
            .is_some()
        && response.status() == StatusCode::OK
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind.as_bytes().starts_with(b"text/event-stream"))
        && !headers.contains_key(header::CONTENT_LENGTH)
        && !headers.contains_key(header::TRANSFER_ENCODING)
        && !response.body().is_end_stream()
}

/// Where a connection's request hands its response over to the connection's server.
pub struct Handover<B> {
    offered: AtomicBool,
    offer: Mutex<Option<Response<B>>>,
}

impl<B> Handover<B> {
    pub fn new() -> Self {
        Self {
            offered: AtomicBool::new(false),
            offer: Mutex::new(None),
        }
    }

    /// Offers `response` to the connection's server, which takes it when it is next polled:
    /// the request's future, polled by hyper in the server's task, offers it and then waits
    /// for ever, to be dropped with hyper's connection.
    pub fn offer(&self, response: Response<B>) {
        *lock(&self.offer) = Some(response);
        self.offered.store(true, Ordering::Release);
    }

    /// Ready once a response is offered: a load, as the server polls it at every wake.
    pub fn poll_offered(&self) -> Poll<()> {
        if self.offered.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// The response offered.
    pub fn take(&self) -> Option<Response<B>> {
        self.offered.store(false, Ordering::Relaxed);
        lock(&self.offer).take()
    }
}

/// Whether a connection goes on after a stream it wrote.
#[derive(Debug, PartialEq, Eq)]
pub enum After {
    /// Its client may send another request on it.
    KeepOpen,
    /// It closes: its client closed it, or asked for it to close.
    Close,
}

/// Writes `response` on `socket` as HTTP/1.1, its body in chunks, until the body ends
/// or the client closes the connection. A body that fails ends the connection without the
/// last chunk, so that its client sees the stream cut, as hyper does.
pub async fn stream<B>(
    socket: &mut Watched<TcpStream>,
    response: Response<B>,
) -> std::io::Result<After>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    let (parts, mut body) = response.into_parts();
    let asked = parts.extensions.get::<StreamsWhileListened>();
    let close = asked.is_some_and(|mark| mark.closes) || asks_to_close(&parts.headers);
    let head = head(parts.status, &parts.headers, close);
    // The head is all the stream needs of them, and it would hold them while it streams.
    drop(parts);
    socket.write_all(&head).await?;
    drop(head);
    // Bytes a client sends behind its stream are its next request: once there are some, the
    // stream no longer looks for its close (as hyper's read did not).
    let mut watching = !socket.has_unread();
    loop {
        let mut first = [0u8; 1];
        let frame = tokio::select! {
            frame = body.frame() => frame,
            peeked = socket.socket().peek(&mut first), if watching => {
                if peeked? == 0 {
                    return Ok(After::Close);
                }
                watching = false;
                continue;
            }
        };
        match frame {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    socket.write_all(&chunk(&data)).await?;
                }
            }
            Some(Err(error)) => {
                tracing::debug!(%error, "an event stream failed; its connection is closed");
                return Ok(After::Close);
            }
        }
    }
    socket.write_all(b"0\r\n\r\n").await?;
    Ok(if close { After::Close } else { After::KeepOpen })
}

/// A chunked response's head: its status line, its headers, and what hyper adds: the date,
/// the chunked encoding, and that the connection closes after it if it does (`close`).
fn head(status: StatusCode, headers: &HeaderMap, close: bool) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"HTTP/1.1 ");
    head.extend_from_slice(status.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !headers.contains_key(header::DATE) {
        head.extend_from_slice(b"date: ");
        head.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if close && !headers.contains_key(header::CONNECTION) {
        head.extend_from_slice(b"connection: close\r\n");
    }
    head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    head
}

/// `data` as one chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let size = format!("{:x}\r\n", data.len());
    let mut chunk = Vec::with_capacity(size.len() + data.len() + 2);
    chunk.extend_from_slice(size.as_bytes());
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    chunk
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_stream() -> Response<http_body_util::Full<Bytes>> {
        Response::builder()
            .extension(StreamsWhileListened { closes: false })
            .header(header::CONTENT_TYPE, "text/event-stream")
            .body(http_body_util::Full::new(Bytes::from_static(
                b"data: x\n\n",
            )))
            .unwrap()
    }

    #[test]
    fn only_an_http1_event_stream_that_streams_while_listened_is_taken_over() {
        let response = event_stream();
        assert!(takes_over(Version::HTTP_11, &response));
        assert!(!takes_over(Version::HTTP_2, &response));
        assert!(!takes_over(Version::HTTP_10, &response));
        // A session-era call's stream, unmarked, stays with hyper.
        let mut call = event_stream();
        call.extensions_mut().remove::<StreamsWhileListened>();
        assert!(!takes_over(Version::HTTP_11, &call));
        let mut refused = event_stream();
        *refused.status_mut() = StatusCode::CONFLICT;
        assert!(!takes_over(Version::HTTP_11, &refused));
        let mut sized = event_stream();
        sized
            .headers_mut()
            .insert(header::CONTENT_LENGTH, "9".parse().unwrap());
        assert!(!takes_over(Version::HTTP_11, &sized));
        let json = Response::builder()
            .extension(StreamsWhileListened { closes: false })
            .body(http_body_util::Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        assert!(!takes_over(Version::HTTP_11, &json));
    }

    #[test]
    fn a_head_has_its_status_headers_a_date_and_the_chunked_encoding() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        headers.insert("mcp-session-id", "abc".parse().unwrap());
        let head = String::from_utf8(head(StatusCode::OK, &headers, false)).unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-type: text/event-stream\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nmcp-session-id: abc\r\n"), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(
            head.ends_with("\r\ntransfer-encoding: chunked\r\n\r\n"),
            "{head}"
        );
        assert!(!head.contains("connection:"), "{head}");
        let closing = String::from_utf8(super::head(StatusCode::OK, &headers, true)).unwrap();
        assert!(closing.contains("\r\nconnection: close\r\n"), "{closing}");
    }

    #[test]
    fn a_chunk_is_its_size_in_hex_then_its_bytes() {
        assert_eq!(
            chunk(b"data: 0123456789\n\n"),
            b"12\r\ndata: 0123456789\n\n\r\n"
        );
    }
}
