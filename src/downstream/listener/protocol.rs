//! One accepted connection, served as HTTP/1.1 or as HTTP/2 (in the clear, with prior
//! knowledge), and drained when the front door stops.
//!
//! The protocol is told from the connection's first bytes, peeked at and left in the socket,
//! so that hyper reads them itself. hyper-util's `auto` builder reads them instead and hands
//! them back through a rewinding reader: hyper's first read then returns those 24 bytes
//! alone, its read buffer grows from 8 to 16 KiB to take the rest of the request, and an idle
//! keep-alive connection keeps the 16 KiB for as long as it stays open (measured: half of the
//! 32 KiB such a connection held; BENCHMARKS.md).
//!
//! An HTTP/1.1 connection idle for [`PARK_AFTER`] is parked ([`serve_http1`]): it keeps its
//! socket and lets hyper's state go until its client sends again. One that streams events
//! for as long as its client listens (a GET's stream, a 2026-07-28 `subscriptions/listen`)
//! lets hyper go too, and writes them itself (`handover.rs`).

use std::{
    error::Error,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use hyper::{
    body::{Body, Incoming},
    server::conn::{http1, http2},
    service::HttpService,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::handover::{self, After, Handover};
use crate::downstream::connection::{Activity, PARK_AFTER, Watched};

type BoxError = Box<dyn Error + Send + Sync>;

/// How every HTTP/2 connection begins (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait before looking again at a connection whose first bytes are only the start
/// of the HTTP/2 preface (a peek returns the same bytes at once until more arrive): at first,
/// and at most. The wait doubles each time, so that a client that stops there (until the
/// connection's header deadline closes it) costs a few wake-ups, not hundreds.
const REST_OF_PREFACE: (Duration, Duration) =
    (Duration::from_millis(5), Duration::from_millis(250));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Serves `stream` with `service` until the client closes it or, once `draining` is
/// cancelled, until its requests in flight are answered. A connection closed before it sent
/// a byte ends without an error. Over HTTP/1.1, a response `service` offers to `handover`
/// is written by the connection itself.
pub(super) async fn serve<S, B>(
    stream: TcpStream,
    activity: Arc<Activity>,
    service: S,
    handover: &Handover<B>,
    draining: CancellationToken,
) -> Result<(), BoxError>
where
    S: HttpService<Incoming, ResBody = B> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let protocol = tokio::select! {
        protocol = spoken_on(&stream) => protocol?,
        () = draining.cancelled() => return Ok(()),
    };
    let io = Watched::new(stream, activity.clone());
    match protocol {
        None => {}
        Some(Protocol::Http1) => serve_http1(io, service, &activity, handover, draining).await?,
        Some(Protocol::Http2) => {
            let io = TokioIo::new(io);
            // Boxed: the task that serves a connection has room for the larger of the two
            // protocols' states for as long as it lives, and HTTP/2's is the larger and the
            // rarer.
            Box::pin(Drained::new(
                http2::Builder::new(TokioExecutor::new()).serve_connection(io, service),
                http2::Connection::graceful_shutdown,
                draining,
            ))
            .await?;
        }
    }
    Ok(())
}

/// Serves an HTTP/1.1 connection, parking it whenever its watchdog finds it idle
/// ([`Activity::told_to_park`]): hyper is told to close it as it does on shutdown, with the socket
/// left open ([`Activity::set_parking`]), and gives back the socket and what it read and did
/// not use. Parked, the connection holds those alone, not hyper's buffers and state (more
/// than 16 KiB), until the client sends again; a new hyper connection then serves it. The
/// client sees one connection throughout: a response still being written as it parks is
/// finished first, and a request that arrives as it parks waits in the socket for the next
/// hyper connection.
///
/// A response offered to `handover` (an event stream that lasts while its client listens) is
/// taken from hyper the same way, though mid-request: hyper's connection gives back its socket
/// and what it read past the request, and the connection writes the stream itself; then it
/// waits for its client's next request as a parked one does.
async fn serve_http1<S, B>(
    mut io: Watched<TcpStream>,
    service: S,
    activity: &Activity,
    handover: &Handover<B>,
    drain: CancellationToken,
) -> Result<(), BoxError>
where
    S: HttpService<Incoming, ResBody = B> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<BoxError> + std::fmt::Display,
{
    let drained = drain.cancelled();
    tokio::pin!(drained);
    let mut draining = false;
    loop {
        // Boxed, so that parked it is freed; the task keeps a pointer.
        let mut connection = Box::pin(
            http1::Builder::new()
                .serve_connection(TokioIo::new(io), service.clone())
                .with_upgrades(),
        );
        let mut parking = false;
        let mut taking_over = false;
        loop {
            tokio::select! {
                biased;
                ended = connection.as_mut() => {
                    ended?;
                    break;
                }
                () = &mut drained, if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
                // The request's future offers it while hyper polls it, in this task.
                () = std::future::poll_fn(|_| handover.poll_offered()) => {
                    taking_over = true;
                    break;
                }
                // The watchdog wakes this task when it tells ([`Activity::told_to_park`]);
                // a request may have begun since it looked.
                () = std::future::poll_fn(|_| told_to_park(activity)), if !parking => {
                    parking = true;
                    activity.set_parking(true);
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
        activity.set_parking(false);
        if !taking_over && (!parking || draining) {
            return Ok(());
        }
        // `None`: the connection was upgraded (to a WebSocket), which has the socket now.
        // Taken mid-request, the parts drop the request's future, which waits for ever.
        let Some(parts) = Pin::into_inner(connection).into_parts() else {
            return Ok(());
        };
        let unread;
        (io, unread) = (parts.io.into_inner(), parts.read_buf);
        if unread.is_empty() {
            // Empty, it may still hold hyper's read buffer, which is what this gives back.
            drop(unread);
        } else {
            // What the client sent behind the last request: its next one, served next.
            io.unread(unread);
        }
        if taking_over {
            let Some(offer) = handover.take() else {
                return Ok(());
            };
            tracing::debug!("connection writes its event stream itself");
            // Boxed: the task would otherwise keep room for it for as long as it lives.
            let after = Box::pin(handover::stream(&mut io, offer)).await?;
            if after == After::Close || drain.is_cancelled() {
                return Ok(());
            }
        } else {
            tracing::debug!("connection parked: nothing in flight for {PARK_AFTER:?}");
        }
        if io.has_unread() {
            continue;
        }
        // A peek, not a wait for readiness, which may come without a byte: a new hyper
        // connection would then wait in its place, not parked, until the next request.
        let mut first = [0u8; 1];
        tokio::select! {
            peeked = io.socket().peek(&mut first) => if peeked? == 0 {
                // The client closed it.
                return Ok(());
            },
            () = &mut drained => return Ok(()),
        }
    }
}

/// Ready when the watchdog has told the connection to park and it is still idle.
fn told_to_park(activity: &Activity) -> Poll<()> {
    if activity.told_to_park() && activity.is_idle() {
        Poll::Ready(())
    } else {
        Poll::Pending
    }
}

/// The protocol a client speaks on `stream`, from its first bytes, which stay unread; `None`
/// when it closes before sending any.
async fn spoken_on(stream: &TcpStream) -> io::Result<Option<Protocol>> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    let (mut wait, longest) = REST_OF_PREFACE;
    loop {
        let peeked = stream.peek(&mut first).await?;
        if let Some(protocol) = protocol_of(&first[..peeked]) {
            return Ok(Some(protocol));
        }
        if peeked == 0 {
            return Ok(None);
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(longest);
    }
}

/// The protocol that a connection beginning with `first` speaks, or `None` while `first` is
/// (a beginning of) the HTTP/2 preface and too short to tell.
fn protocol_of(first: &[u8]) -> Option<Protocol> {
    if !HTTP2_PREFACE.starts_with(first) {
        Some(Protocol::Http1)
    } else if first.len() == HTTP2_PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

pin_project_lite::pin_project! {
    /// Runs `connection` to its end; once `draining` is cancelled, `drain` tells it to finish
    /// what is in flight and close. A future of its own rather than an `async fn`: one holds
    /// the connection it was given apart from the one it pins, and the task that serves a
    /// connection would have room for both for as long as it lives.
    struct Drained<C> {
        #[pin]
        connection: C,
        #[pin]
        draining: WaitForCancellationFutureOwned,
        drain: fn(Pin<&mut C>),
        drained: bool,
    }
}

impl<C> Drained<C> {
    fn new(connection: C, drain: fn(Pin<&mut C>), draining: CancellationToken) -> Self {
        Self {
            connection,
            draining: draining.cancelled_owned(),
            drain,
            drained: false,
        }
    }
}

impl<C: Future> Future for Drained<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.drained && this.draining.poll(cx).is_ready() {
            *this.drained = true;
            (this.drain)(this.connection.as_mut());
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_the_protocol() {
        assert_eq!(
            protocol_of(b"POST /mcp HTTP/1.1\r\n"),
            Some(Protocol::Http1)
        );
        assert_eq!(protocol_of(b"G"), Some(Protocol::Http1));
        // A method that starts like the preface, and is not it.
        assert_eq!(protocol_of(b"PUT /x HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(protocol_of(b"PRI * HTTP/1.1\r\n"), Some(Protocol::Http1));
        assert_eq!(protocol_of(HTTP2_PREFACE), Some(Protocol::Http2));
        // Too short to tell: the rest is awaited.
        assert_eq!(protocol_of(b""), None);
        assert_eq!(protocol_of(b"PRI * HTTP/2.0\r\n"), None);
    }
}
