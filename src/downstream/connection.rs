//! How long one client connection may take, so that clients that send slowly or not at all
//! cannot hold connections, and with them the gateway's slots, for ever.
//!
//! Every accepted socket is read through [`Watched`], which notes when bytes arrive, and every
//! request through [`Activity::begin`], which counts it in flight until its response is sent
//! or dropped (an event stream stays in flight as long as it streams). A [`watchdog`] beside
//! the connection closes it when, with no request in flight:
//! - a new connection has not sent a whole request head within `timeouts.header_read_secs`;
//! - a request head was begun and not finished within `timeouts.header_read_secs`;
//! - nothing has arrived for `timeouts.connection_idle_secs` since the last response.
//!
//! An HTTP/1.1 connection with nothing in flight for [`PARK_AFTER`] is parked: the watchdog
//! tells it to ([`Activity::told_to_park`]), and its server gives hyper's state back and keeps
//! only the socket until the client sends again (`listener/protocol.rs`).
//!
//! Bodies are bounded by [`TimedBody`]: the whole body must arrive within
//! `timeouts.body_read_secs` of the handler's first read. That covers HTTP/1.1 and HTTP/2
//! alike, and the bytes read before the protocol is known; hyper's own header timeout covers
//! HTTP/1.1 alone.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, Version, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::Notify,
    time::{Instant, Sleep},
};

/// The deadlines of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header_read: Duration,
    pub body_read: Duration,
    pub idle: Duration,
}

/// What an HTTP/1.1 response tells its client of how long the connection stays open with
/// nothing in flight: `Keep-Alive: timeout=N`, `timeouts.connection_idle_secs` in whole
/// seconds. A client that reads it (Node's undici, under the TypeScript SDK's clients) lets
/// go of the connection before the gateway closes it, rather than send a request on it as it
/// closes, which would fail unread.
#[derive(Clone)]
pub struct KeepAliveHint(HeaderValue);

impl KeepAliveHint {
    pub fn new(idle: Duration) -> Self {
        let value = format!("timeout={}", idle.as_secs());
        // Visible ASCII, which is always a header value.
        Self(HeaderValue::from_str(&value).expect("visible ASCII is a header value"))
    }

    /// Tells it on `response`, an answer to a request of `version`, unless the response
    /// ends the connection or changes its protocol.
    pub fn tell<B>(&self, version: Version, response: &mut Response<B>) {
        if version == Version::HTTP_11
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
            && !response.headers().contains_key(header::CONNECTION)
        {
            const KEEP_ALIVE: header::HeaderName = header::HeaderName::from_static("keep-alive");
            response.headers_mut().insert(KEEP_ALIVE, self.0.clone());
        }
    }
}

/// What a connection is doing, shared by its reader, its requests and its watchdog. Times are
/// milliseconds since the connection was accepted.
pub struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// Requests begun on it.
    begun: AtomicU64,
    /// When the last request in flight ended.
    idle_since: AtomicU64,
    /// When the first byte arrived while no request was in flight, plus one (0: none has).
    head_started: AtomicU64,
    /// Told when the last request in flight ends.
    idle: Notify,
    /// Set when it has had nothing in flight for [`PARK_AFTER`], until its server sees it.
    park: AtomicBool,
    /// Set while its server gives hyper's state back: the socket stays open.
    parking: AtomicBool,
}

/// How long an HTTP/1.1 connection stays idle before it is parked: hyper keeps a read and a
/// write buffer of 8 KiB each, and the head of the last response, for as long as it serves a
/// connection, which made an idle keep-alive connection cost twice the sleeping session its
/// client holds. Serving it again costs a new hyper connection, a few
/// allocations: nothing beside a client's pause this long.
pub const PARK_AFTER: Duration = Duration::from_secs(2);

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            idle: Notify::new(),
            park: AtomicBool::new(false),
            parking: AtomicBool::new(false),
        })
    }

    fn now(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, millis: u64) -> Instant {
        self.accepted + Duration::from_millis(millis)
    }

    /// A request's head has arrived: it is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether it never had a request: it only holds a slot (or sends too slowly to get one).
    pub fn never_used(&self) -> bool {
        self.begun.load(Ordering::Relaxed) == 0
    }

    /// How dispensable it is at `now` when room must be made, or `None` while a request is
    /// in flight: first whether it never had a request (a connection that only ever held a
    /// slot goes before a client's idle keep-alive one), then how long it has been idle.
    /// Reads no clock: it is asked of every connection at once.
    pub fn dispensable(&self, now: Instant) -> Option<(bool, Duration)> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let (never_used, since) = match self.begun.load(Ordering::Relaxed) {
            0 => (true, 0),
            _ => (false, self.idle_since.load(Ordering::Relaxed)),
        };
        Some((never_used, now.saturating_duration_since(self.at(since))))
    }

    /// Whether the watchdog has found the connection idle for [`PARK_AFTER`] since this was
    /// last asked; once for each idle time.
    ///
    /// Nothing wakes a task for it but the watchdog's own: it is asked by the connection's
    /// server, which runs in the task of the connection's watchdog, and the watchdog wakes that
    /// task when it tells. Asking costs a load, and the server asks every time its task wakes.
    pub fn told_to_park(&self) -> bool {
        self.park.load(Ordering::Relaxed) && self.park.swap(false, Ordering::Relaxed)
    }

    /// Whether nothing is in flight on it and no request has begun to arrive. Its server
    /// looks again when told to park: a request may have begun since.
    pub fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
    }

    /// While set, shutting the socket down does nothing: hyper shuts it down when it lets go of
    /// a connection, and a parked connection stays open.
    pub fn set_parking(&self, parking: bool) {
        self.parking.store(parking, Ordering::Relaxed);
    }

    /// Bytes arrived.
    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(self.now() + 1, Ordering::Relaxed);
        }
    }
}

/// One request in flight on a connection.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity.idle_since.store(activity.now(), Ordering::Relaxed);
        if activity.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            activity.idle.notify_waiters();
        }
    }
}

/// Why the watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// It sent no request head within `header_read`.
    NoRequest,
    /// It began a request head and did not finish it within `header_read`.
    SlowHead,
    /// It was idle for `idle`.
    Idle,
}

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoRequest => "sent no request within timeouts.header_read_secs",
            Self::SlowHead => "did not finish a request head within timeouts.header_read_secs",
            Self::Idle => "idle for timeouts.connection_idle_secs",
        })
    }
}

/// Resolves when the connection has overstayed one of `deadlines` with no request in flight.
/// On the way, tells it to park ([`Activity::told_to_park`]) once it has been idle for
/// [`PARK_AFTER`] after a request.
pub async fn watchdog(activity: Arc<Activity>, deadlines: Deadlines) -> Closed {
    // The requests begun when it was last told to park: once for each idle time.
    let mut parked_after = 0;
    loop {
        let idle = activity.idle.notified();
        tokio::pin!(idle);
        // Registered before the count is read, so an end in between is not missed.
        idle.as_mut().enable();
        if activity.in_flight.load(Ordering::Acquire) > 0 {
            idle.await;
            continue;
        }
        let head = activity.head_started.load(Ordering::Relaxed);
        let begun = activity.begun.load(Ordering::Relaxed);
        let (deadline, due) = if head != 0 {
            let deadline = activity.at(head - 1) + deadlines.header_read;
            (deadline, Due::Close(Closed::SlowHead))
        } else if begun == 0 {
            let deadline = activity.accepted + deadlines.header_read;
            (deadline, Due::Close(Closed::NoRequest))
        } else {
            let since = activity.at(activity.idle_since.load(Ordering::Relaxed));
            if parked_after != begun && PARK_AFTER < deadlines.idle {
                (since + PARK_AFTER, Due::Park)
            } else {
                (since + deadlines.idle, Due::Close(Closed::Idle))
            }
        };
        if deadline <= Instant::now() {
            match due {
                Due::Close(why) => return why,
                Due::Park => {
                    parked_after = begun;
                    activity.park.store(true, Ordering::Relaxed);
                    // The connection's server, in this task, looks when the task is polled.
                    tokio::task::yield_now().await;
                    continue;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            // A request came and went meanwhile: look again.
            () = idle => {}
        }
    }
}

/// What the watchdog does at its next deadline.
enum Due {
    Close(Closed),
    Park,
}

/// A socket whose reads are noted in its connection's [`Activity`].
pub struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
    /// Bytes read from the socket and given back, read again before it.
    unread: Bytes,
}

impl<S> Watched<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            activity,
            unread: Bytes::new(),
        }
    }

    pub fn socket(&self) -> &S {
        &self.inner
    }

    /// Gives back `bytes`, read from the socket and not used: the next reads return them first.
    pub fn unread(&mut self, bytes: Bytes) {
        self.unread = bytes;
    }

    /// Whether bytes given back wait to be read again.
    pub fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.unread.is_empty() {
            let taken = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread.split_to(taken));
            if self.unread.is_empty() {
                // What is left, though empty, would keep the buffer they were read into.
                self.unread = Bytes::new();
            }
            self.activity.read();
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.activity.parking.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A request body that must arrive whole within a deadline, counted from the first read.
pub struct TimedBody {
    inner: Incoming,
    limit: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

/// A request body that did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within timeouts.body_read_secs ({0:?})")]
pub struct BodyTimedOut(pub Duration);

impl TimedBody {
    pub fn new(inner: Incoming, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            deadline: None,
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let limit = self.limit;
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut(limit))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
pub struct Tracked<B> {
    inner: B,
    in_flight: Option<InFlight>,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, in_flight: InFlight) -> Self {
        Self {
            inner,
            in_flight: Some(in_flight),
        }
    }
}

impl<B: Body + Unpin> Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.in_flight = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keep_alive_hint_goes_on_http1_responses_that_keep_their_connection() {
        let hint = KeepAliveHint::new(Duration::from_secs_f64(120.7));
        let told = |version, status, connection: Option<&'static str>| {
            let mut response = Response::new(());
            *response.status_mut() = status;
            if let Some(connection) = connection {
                let value = HeaderValue::from_static(connection);
                response.headers_mut().insert(header::CONNECTION, value);
            }
            hint.tell(version, &mut response);
            response.headers().get("keep-alive").cloned()
        };
        assert_eq!(
            told(Version::HTTP_11, StatusCode::OK, None).unwrap(),
            "timeout=120",
            "whole seconds, rounded down"
        );
        assert!(told(Version::HTTP_2, StatusCode::OK, None).is_none());
        assert!(told(Version::HTTP_10, StatusCode::OK, None).is_none());
        assert!(told(Version::HTTP_11, StatusCode::SWITCHING_PROTOCOLS, None).is_none());
        assert!(
            told(
                Version::HTTP_11,
                StatusCode::SERVICE_UNAVAILABLE,
                Some("close")
            )
            .is_none()
        );
    }

    const DEADLINES: Deadlines = Deadlines {
        header_read: Duration::from_secs(10),
        body_read: Duration::from_secs(30),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_is_closed_after_the_header_time() {
        let activity = Activity::new();
        let started = Instant::now();
        assert_eq!(watchdog(activity, DEADLINES).await, Closed::NoRequest);
        assert_eq!(started.elapsed(), DEADLINES.header_read);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_holds_the_connection_then_idleness_counts() {
        let activity = Activity::new();
        let request = activity.begin();
        let watching = tokio::spawn(watchdog(activity.clone(), DEADLINES));
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(!watching.is_finished(), "a long request keeps it open");
        let ended = Instant::now();
        drop(request);
        assert_eq!(watching.await.unwrap(), Closed::Idle);
        assert_eq!(ended.elapsed(), DEADLINES.idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_must_be_finished_within_the_header_time() {
        let activity = Activity::new();
        drop(activity.begin());
        tokio::time::sleep(Duration::from_secs(5)).await;
        let begun = Instant::now();
        activity.read();
        assert_eq!(watchdog(activity, DEADLINES).await, Closed::SlowHead);
        assert_eq!(begun.elapsed(), DEADLINES.header_read);
    }

    /// Told to park once it has been idle for `PARK_AFTER`, once for each idle time, and
    /// closed at the idle deadline all the same. Asked in the watchdog's task, as the
    /// connection's server asks.
    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_told_to_park_once_then_closed() {
        let activity = Activity::new();
        drop(activity.begin());
        let idle_from = Instant::now();
        let watching = watchdog(activity.clone(), DEADLINES);
        tokio::pin!(watching);
        let told = || {
            std::future::poll_fn(|_| {
                if activity.told_to_park() {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
        };
        tokio::select! {
            closed = &mut watching => panic!("closed ({closed}) before told to park"),
            () = told() => assert_eq!(idle_from.elapsed(), PARK_AFTER),
        }
        tokio::select! {
            closed = &mut watching => assert_eq!(closed, Closed::Idle),
            () = told() => panic!("told to park twice in one idle time"),
        }
        assert_eq!(idle_from.elapsed(), DEADLINES.idle);
    }

    /// Bytes given back are read before the socket's, and count as a request begun.
    #[tokio::test]
    async fn bytes_given_back_are_read_first() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (near, mut far) = tokio::io::duplex(64);
        let activity = Activity::new();
        let mut watched = Watched::new(near, activity.clone());
        watched.unread(Bytes::from_static(b"GET / HT"));
        far.write_all(b"TP/1.1\r\n").await.unwrap();
        let mut read = vec![0; 5];
        watched.read_exact(&mut read).await.unwrap();
        assert_eq!(read, b"GET /");
        assert!(!activity.is_idle(), "a request has begun to arrive");
        let mut rest = vec![0; 11];
        watched.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, b" HTTP/1.1\r\n");
    }
}
