//! The HTTP client under the lane: hyper's HTTP/1.1 connections to the one upstream a lane
//! talks to, on the connector reqwest builds on, kept in a pool of the lane's own.
//!
//! Not reqwest: it turns each request's URI back into a text and parses it as a URL twice
//! (for its redirect policy, even with redirects off, and for the response), with IDNA, and
//! passes it through its retry and redirect services: about a tenth of the gateway's CPU per
//! call through an HTTP upstream (BENCHMARKS.md). The lane needs none of that: one URL, no
//! redirects (a redirect could move a request somewhere the operator never configured).
//!
//! Not hyper-util's pooled client either: it keeps a map of pools hashed by scheme and
//! authority (SipHash on every checkout and return), races each checkout against a lazy
//! connect, and spawns a task per response to put the connection back once it is ready:
//! together about a twentieth of the gateway's work per call (BENCHMARKS.md). A lane has
//! one origin, so its pool is a list; a connection goes back on it as soon as the response's
//! head is in, and is taken again only once hyper says it is ready (its body read).
//!
//! Connections go where the system's proxy settings send them, as reqwest's do (`route.rs`).

use std::{
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, Uri};
use http_body_util::Full;
use hyper::{body::Incoming, client::conn::http1};

use super::{
    idle_closes::{Learned, Watch},
    route::Route,
};
use crate::{
    error::{cannot_send, with_causes},
    sync::lock,
    upstream::http::KEEP_IDLE,
};

type Sender = http1::SendRequest<Full<Bytes>>;

/// One connection to the upstream: how requests go on it, and what the pool says it does.
struct Connection {
    sender: Sender,
    watch: Arc<Watch>,
}

/// Connections to one upstream: requests carry their whole body, HTTP/1.1 on keep-alive.
pub struct Wire {
    /// Where connections go, and what requests name there.
    route: Route,
    /// Before `pool`, so that it goes first: the connections the pool closes as it goes
    /// teach it nothing.
    learned: Arc<Learned>,
    pool: Arc<Mutex<Pool>>,
    /// How long a connection is kept idle when the upstream does not say.
    keep_idle: Duration,
}

/// The connections back from their requests, and whether a reaper watches them: one does
/// while there are any, so a lane with nothing pooled wakes nobody.
#[derive(Default)]
struct Pool {
    connections: Vec<Pooled>,
    reaped: bool,
}

/// A connection back from a request; busy until hyper says it is ready.
struct Pooled {
    connection: Connection,
    /// When it was last seen busy: its idle time counts from then. hyper does not say when a
    /// response's body ended, so a connection may seem idle a little longer than it was,
    /// never shorter.
    since: Instant,
    /// How long it may sit idle (see [`keep_for`]).
    keep_for: Duration,
}

impl Pooled {
    /// Whether it can stay in the pool at `now`: open, and busy or idle less than its time
    /// (`learned` may shorten it). A busy one's idle time starts anew.
    fn stays(&mut self, now: Instant, learned: &Learned) -> bool {
        let sender = &self.connection.sender;
        if sender.is_closed() {
            return false;
        }
        if !sender.is_ready() {
            self.since = now;
            return true;
        }
        let stays = now.duration_since(self.since) < learned.limit(self.keep_for);
        if !stays {
            self.connection.watch.let_go();
        }
        stays
    }
}

/// A client for `upstream`'s `url` (`http://` or `https://`, no user or password in it).
pub fn wire(upstream: &str, url: &Uri) -> Result<Wire, String> {
    Ok(Wire::new(upstream, Route::to(url)?, KEEP_IDLE))
}

impl Wire {
    fn new(upstream: &str, route: Route, keep_idle: Duration) -> Self {
        Self {
            route,
            learned: Arc::new(Learned::new(upstream)),
            pool: Arc::default(),
            keep_idle,
        }
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection or a new one; the
    /// response, its body still to read. The error says why, in words.
    pub async fn request(
        &self,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        self.route.address(&mut request);
        loop {
            let (mut connection, reused) = match self.checkout() {
                Some(connection) => (connection, true),
                // Boxed: the connector's and the handshake's futures are large, and the
                // request's future would carry them on every call.
                None => (Box::pin(self.connect()).await?, false),
            };
            match connection.sender.try_send_request(request).await {
                Ok(response) => {
                    self.checkin(connection, keep_for(response.headers(), self.keep_idle));
                    return Ok(response);
                }
                Err(mut error) => match error.take_message() {
                    // An idle connection the upstream closed before the request went out
                    // (the end of its keep-alive): the request goes on another.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(cannot_send(&error.into_error())),
                },
            }
        }
    }

    /// The most recently used connection that is ready for a request; closed ones go, and
    /// so do those idle past their time, which the upstream may be closing right now.
    fn checkout(&self) -> Option<Connection> {
        let now = Instant::now();
        let connections = &mut lock(&self.pool).connections;
        connections.retain_mut(|pooled| pooled.stays(now, &self.learned));
        let ready = connections
            .iter()
            .rposition(|pooled| pooled.connection.sender.is_ready())?;
        let connection = connections.swap_remove(ready).connection;
        connection.watch.busy();
        Some(connection)
    }

    fn checkin(&self, connection: Connection, keep_for: Duration) {
        let since = Instant::now();
        let keep_for = self.learned.limit(keep_for);
        self.learned.answered(&connection.watch, since, keep_for);
        let mut pool = lock(&self.pool);
        pool.connections.push(Pooled {
            connection,
            since,
            keep_for,
        });
        if !std::mem::replace(&mut pool.reaped, true) {
            let (pool, learned) = (Arc::downgrade(&self.pool), Arc::downgrade(&self.learned));
            tokio::spawn(reap(pool, learned, self.keep_idle));
        }
    }

    /// A new connection, its own task driving it, and watching how it ends.
    async fn connect(&self) -> Result<Connection, String> {
        let io = self.route.connect().await?;
        let (sender, connection) = http1::Builder::new()
            // See `route::relayed_by_a_proxy`.
            .title_case_headers(self.route.relayed())
            .handshake(io)
            .await
            .map_err(|error| cannot_send(&error))?;
        let watch = Arc::new(Watch::new());
        let (watched, learned) = (watch.clone(), Arc::downgrade(&self.learned));
        tokio::spawn(async move {
            match connection.await {
                // Closed without an error, by either side: `ended` tells an idle close of the
                // upstream's from the rest. With the wire gone, its pool closed it as it went.
                Ok(()) => {
                    if let Some(learned) = learned.upgrade() {
                        learned.ended(&watched);
                    }
                }
                Err(error) => {
                    tracing::debug!(error = %with_causes(&error), "an upstream connection ended");
                }
            }
        });
        Ok(Connection { sender, watch })
    }
}

/// How long a connection may sit idle after a response with `headers`: a second less than
/// the `timeout` of the upstream's `Keep-Alive` header, the second being a request's way to
/// it (undici does the same), and at most ten minutes; `otherwise` when it names none. Node's
/// servers say `timeout=5`.
fn keep_for(headers: &HeaderMap, otherwise: Duration) -> Duration {
    const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
    const MOST: u64 = 600;
    let timeout = headers
        .get(KEEP_ALIVE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value.split(',').find_map(|parameter| {
                let (name, secs) = parameter.split_once('=')?;
                name.trim().eq_ignore_ascii_case("timeout").then_some(())?;
                secs.trim().parse::<u64>().ok()
            })
        });
    timeout.map_or(otherwise, |secs| {
        Duration::from_secs(secs.min(MOST).saturating_sub(1))
    })
}

/// Closes the connections idle past their time, every `keep_idle`, until the pool is empty
/// (a checkin starts another) or gone. It only tidies: a checkout drops what it finds past
/// its time itself.
async fn reap(pool: Weak<Mutex<Pool>>, learned: Weak<Learned>, keep_idle: Duration) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + keep_idle, keep_idle);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        // Dropped before `pool`: were the wire gone meanwhile, the connections that close with
        // the pool would find nothing to learn from them.
        let Some(learned) = learned.upgrade() else {
            return;
        };
        let now = Instant::now();
        let mut pool = lock(&pool);
        pool.connections
            .retain_mut(|pooled| pooled.stays(now, &learned));
        if pool.connections.is_empty() {
            pool.reaped = false;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::BodyExt;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    use super::*;

    /// A server answering every request on a connection with `OK`, closing the connection
    /// after `per_connection` answers; and how many connections it took.
    async fn server(per_connection: usize) -> (Uri, Arc<AtomicUsize>) {
        server_saying(per_connection, "").await
    }

    /// [`server`], its answers carrying `headers` (each line ending in CRLF).
    async fn server_saying(
        per_connection: usize,
        headers: &'static str,
    ) -> (Uri, Arc<AtomicUsize>) {
        server_closing_idle(per_connection, headers, Duration::MAX).await
    }

    /// [`server_saying`], also closing a connection idle for `idle`.
    async fn server_closing_idle(
        per_connection: usize,
        headers: &'static str,
        idle: Duration,
    ) -> (Uri, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Uri = format!("http://{}/mcp", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = accepted.clone();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buffer = vec![0; 4096];
                    for _ in 0..per_connection {
                        // Each request is small and comes whole.
                        let read = tokio::time::timeout(idle, stream.read(&mut buffer)).await;
                        if !matches!(read, Ok(Ok(1..))) {
                            return;
                        }
                        let answer =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{headers}\r\nOK");
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    // Closed without a word, as a server ends an idle keep-alive.
                });
            }
        });
        (url, accepted)
    }

    async fn get(wire: &Wire, url: &Uri) -> String {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = "/mcp".parse().unwrap();
        let host = url.authority().unwrap().as_str().parse().unwrap();
        request.headers_mut().insert(http::header::HOST, host);
        let response = wire.request(request).await.expect("answered");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn requests_one_after_another_share_one_connection() {
        let (url, accepted) = server(usize::MAX).await;
        let wire = wire("up", &url).unwrap();
        for _ in 0..20 {
            assert_eq!(get(&wire, &url).await, "OK");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn requests_side_by_side_open_connections_and_reuse_them() {
        let (url, accepted) = server(usize::MAX).await;
        let wire = wire("up", &url).unwrap();
        for _ in 0..3 {
            let answers = futures::future::join_all((0..4).map(|_| get(&wire, &url))).await;
            assert!(answers.iter().all(|answer| answer == "OK"));
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_connection_the_upstream_closed_is_not_used_again() {
        let (url, accepted) = server(1).await;
        let wire = wire("up", &url).unwrap();
        for _ in 0..3 {
            assert_eq!(get(&wire, &url).await, "OK");
            // The close reaches the connection's task.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
        assert!(
            lock(&wire.pool)
                .connections
                .iter()
                .all(|pooled| pooled.connection.sender.is_closed())
        );
    }

    #[tokio::test]
    async fn a_connection_idle_too_long_is_closed() {
        let (url, accepted) = server(usize::MAX).await;
        let wire = Wire::new(
            "up",
            Route::direct(&url).unwrap(),
            Duration::from_millis(150),
        );
        assert_eq!(get(&wire, &url).await, "OK");
        assert_eq!(lock(&wire.pool).connections.len(), 1);
        // The reaper comes every 150 ms: its second round at the latest finds it past its time.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            lock(&wire.pool).connections.is_empty(),
            "the idle connection was closed"
        );
        assert!(!lock(&wire.pool).reaped, "nothing left to reap: it stopped");
        assert_eq!(get(&wire, &url).await, "OK");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert!(lock(&wire.pool).reaped, "a connection back: it reaps again");
    }

    #[tokio::test]
    async fn the_upstreams_keep_alive_timeout_sets_how_long_a_connection_stays_idle() {
        // Longer than the lane's own time: kept past it.
        let (url, accepted) = server_saying(usize::MAX, "keep-alive: timeout=5\r\n").await;
        let wire = Wire::new(
            "up",
            Route::direct(&url).unwrap(),
            Duration::from_millis(150),
        );
        assert_eq!(get(&wire, &url).await, "OK");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(get(&wire, &url).await, "OK");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);

        // A second or less: no time left to use it again, reaper or not.
        let (url, accepted) = server_saying(usize::MAX, "Keep-Alive: timeout=1\r\n").await;
        let wire = Wire::new("up", Route::direct(&url).unwrap(), Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(get(&wire, &url).await, "OK");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_upstream_that_closes_idle_connections_sooner_is_learned() {
        // A server that answers each request and closes a connection idle for 700 ms,
        // without a `Keep-Alive` header to say so.
        const KEEPS: Duration = Duration::from_millis(700);
        let (url, accepted) = server_closing_idle(usize::MAX, "", KEEPS).await;
        let wire = Wire::new("up", Route::direct(&url).unwrap(), Duration::from_secs(60));
        for closes in 1..=2 {
            assert_eq!(get(&wire, &url).await, "OK");
            tokio::time::sleep(KEEPS + Duration::from_millis(200)).await;
            assert_eq!(accepted.load(Ordering::SeqCst), closes);
        }
        // Two closes after 700 ms: connections are used again within 350 ms, no later.
        let limit = wire.learned.limit(Duration::from_secs(60));
        assert!(
            limit >= Duration::from_millis(340) && limit <= Duration::from_millis(400),
            "{limit:?}"
        );
        assert_eq!(get(&wire, &url).await, "OK");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&wire, &url).await, "OK");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            3,
            "used again within the limit"
        );
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(get(&wire, &url).await, "OK");
        assert_eq!(accepted.load(Ordering::SeqCst), 4, "a new one past it");
    }

    #[tokio::test]
    async fn connections_the_pool_lets_go_teach_nothing() {
        let (url, accepted) = server(usize::MAX).await;
        let wire = Wire::new(
            "up",
            Route::direct(&url).unwrap(),
            Duration::from_millis(600),
        );
        for _ in 0..3 {
            assert_eq!(get(&wire, &url).await, "OK");
            // Past its time: the next checkout closes it, and the reaper may first.
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        assert_eq!(get(&wire, &url).await, "OK");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), 4);
        assert_eq!(
            wire.learned.limit(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn a_keep_alive_header_is_read_for_its_timeout_alone() {
        let otherwise = Duration::from_secs(4);
        let keep = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("keep-alive", value.parse().unwrap());
            keep_for(&headers, otherwise)
        };
        assert_eq!(keep("timeout=5"), Duration::from_secs(4));
        assert_eq!(keep("max=100, Timeout = 75"), Duration::from_secs(74));
        assert_eq!(keep("timeout=0"), Duration::ZERO);
        assert_eq!(keep("timeout=86400"), Duration::from_secs(599));
        assert_eq!(keep("max=100"), otherwise);
        assert_eq!(keep("timeout=soon"), otherwise);
        assert_eq!(keep_for(&HeaderMap::new(), otherwise), otherwise);
    }

    #[tokio::test]
    async fn an_upstream_that_is_not_there_is_named_as_such() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Uri = format!("http://{}/mcp", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        drop(listener);
        let wire = wire("up", &url).unwrap();
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = "/mcp".parse().unwrap();
        let error = wire.request(request).await.expect_err("nobody listens");
        assert!(error.starts_with("cannot connect to it:"), "{error}");
        assert!(error.contains("refused"), "{error}");
    }
}
