//! The accept loop of the HTTP front door: per-connection socket options, the connection
//! limits, each connection's deadlines, and a graceful end.
//!
//! Limits, checked as a connection is accepted, before anything is read from it:
//! - over `limits.max_connections_per_peer` from its client's address, it is answered 503 at
//!   once and closed, uncounted;
//! - at `limits.max_connections`, a connection with no request in flight is closed to make
//!   room: one that never sent a whole request (silent, or too slow) before a client's idle
//!   keep-alive one, the longest idle first; only when every connection has a request in
//!   flight is the new one refused like the above. Connections held open doing nothing
//!   cannot lock anyone out;
//! - once only the reserve is left (`limits.reserved_connections`), it is served on
//!   probation: a request with a valid credential or a health check is answered as usual,
//!   any other gets 503 and the connection is closed. Anonymous clients cannot take the slots
//!   that operators and authenticated clients need.
//!
//! Each connection runs beside its watchdog (see [`super::connection`]), which closes it when
//! it sends nothing, too slowly, or goes idle.
//!
//! Shutdown: the accept loop stops when the shutdown token is cancelled; open connections are
//! told to finish their in-flight requests (the gateway drains its calls meanwhile), and when
//! the app ends the sessions, rmcp's token (a child of that one) closes their streams.

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures::FutureExt;
use handover::Handover;
use nix::sys::socket::sockopt::TcpUserTimeout;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    connection::{Activity, KeepAliveHint, TimedBody, Tracked, watchdog},
    http::HttpFront,
};
use crate::{security::client_network, sync::lock};

mod handover;
mod protocol;

/// How long open connections get to finish after shutdown starts.
const CONNECTION_DRAIN: Duration = Duration::from_secs(5);

/// Refusals being written at once; past that, a refused connection is simply closed.
const REFUSING_AT_ONCE: usize = 256;

/// Accepts connections until `shutdown`, then lets them finish what they are doing: their
/// requests are drained by the gateway, and once `sessions_end` closes the sessions' streams
/// they get at most [`CONNECTION_DRAIN`] more.
pub async fn serve(
    listener: TcpListener,
    front: Arc<HttpFront>,
    shutdown: CancellationToken,
    sessions_end: CancellationToken,
    tracker: TaskTracker,
) {
    // Cancelled to tell open connections to finish what is in flight and close; `connections`
    // waits for them.
    let draining = CancellationToken::new();
    let connections = TaskTracker::new();
    let counts = Arc::new(Counts::default());
    let refusing = Arc::new(Semaphore::new(REFUSING_AT_ONCE));
    let limits = front.connection_limits;
    let keep_alive = KeepAliveHint::new(limits.deadlines.idle);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let network = client_network(peer.ip());
        let activity = Activity::new();
        let counted = match counts.admit(network, &activity, &limits) {
            Ok(counted) => counted,
            Err(refusal) => {
                refused(&refusal);
                if let Ok(turn) = refusing.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(stream, &refusal).await;
                        drop(turn);
                    });
                }
                continue;
            }
        };
        // Nagle + delayed ACK add ~40 ms to a split SSE response.
        let _ = stream.set_nodelay(true);
        // A client that stops reading leaves our data unacknowledged (its window shut); the
        // kernel drops the connection after this long instead of holding it, and what is
        // queued for it, for ever. Streamable HTTP streams are rmcp's, so this is where a
        // slow reader on them is bounded.
        let stall = u32::try_from(front.write_stall.as_millis()).unwrap_or(u32::MAX);
        let _ = nix::sys::socket::setsockopt(&stream, TcpUserTimeout, &stall);
        let probation = counted.probation;
        let evicted = counted.evict.clone();
        let front = front.clone();
        let service_activity = activity.clone();
        let keep_alive = keep_alive.clone();
        let handover = Arc::new(Handover::new());
        let service_handover = handover.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let front = front.clone();
            let keep_alive = keep_alive.clone();
            let version = request.version();
            // An event stream that lasts while its client listens is written by the
            // connection itself (`handover.rs`).
            let handover = service_handover.clone();
            let in_flight = service_activity.begin();
            let mut request = request.map(|body| TimedBody::new(body, limits.deadlines.body_read));
            // Who is asking, for what is counted per client address (logins, sessions).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            // Boxed whole: hyper allocates room for a connection's request future when the
            // connection opens and keeps it while the connection lives, and this future's size
            // is every way a request can take (tens of KB), which each idle keep-alive
            // connection would hold.
            async move {
                let mut response = if probation && !front.may_use_reserve(&request).await {
                    front.too_many_connections()
                } else {
                    front.handle(request).await
                };
                keep_alive.tell(version, &mut response);
                let response = response.map(|body| Tracked::new(body, in_flight));
                if handover::takes_over(version, &response) {
                    // The connection writes it; this future is dropped with hyper's connection.
                    handover.offer(response);
                    return std::future::pending().await;
                }
                Ok::<_, Infallible>(response)
            }
            .boxed()
        });
        let drain = draining.clone();
        let deadlines = limits.deadlines;
        tracker.spawn(connections.track_future(async move {
            let _counted = counted;
            // The connection's future is made here, not before the task: one the task captured
            // would take room twice in it, as captured and where it is awaited.
            tokio::select! {
                ended = protocol::serve(stream, activity.clone(), service, &handover, drain) => if let Err(error) = ended {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                },
                closed = watchdog(activity, deadlines) => {
                    tracing::debug!(%peer, "connection closed: {closed}");
                }
                () = evicted.cancelled() => {
                    tracing::debug!(%peer, "connection closed to make room: no request in flight for the longest");
                }
            }
        }));
    }
    drop(listener);
    draining.cancel();
    connections.close();
    let deadline = async {
        sessions_end.cancelled().await;
        tokio::time::sleep(CONNECTION_DRAIN).await;
    };
    tokio::select! {
        () = connections.wait() => {}
        () = deadline => {
            tracing::warn!("connections still open {CONNECTION_DRAIN:?} after the sessions ended; closing them");
        }
    }
}

/// The limits on connections, from `limits` and `timeouts`.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max: usize,
    pub per_peer: usize,
    /// Already capped at a tenth of `max`.
    pub reserved: usize,
    pub deadlines: super::connection::Deadlines,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Full(usize),
    Peer(usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Full(max) => write!(f, "too many connections (limits.max_connections = {max})"),
            Self::Peer(max) => write!(
                f,
                "too many connections from this address (limits.max_connections_per_peer = {max})"
            ),
        }
    }
}

/// Open connections, in all and per client address, and how to make room among them.
#[derive(Default)]
struct Counts {
    open: AtomicUsize,
    by_peer: Mutex<HashMap<IpAddr, usize>>,
    /// Every counted connection, by a number of its own given in the order they came.
    live: Mutex<BTreeMap<u64, Live>>,
    next: AtomicU64,
}

/// What [`Counts`] knows of a counted connection.
struct Live {
    network: IpAddr,
    activity: Arc<Activity>,
    /// Cancelled to close it, making room for a new one.
    evict: CancellationToken,
}

impl Counts {
    /// Counts a new connection from `network` (making room if need be), or refuses it.
    fn admit(
        self: &Arc<Self>,
        network: IpAddr,
        activity: &Arc<Activity>,
        limits: &ConnectionLimits,
    ) -> Result<Counted, Refusal> {
        {
            let by_peer = lock(&self.by_peer);
            if by_peer.get(&network).copied().unwrap_or(0) >= limits.per_peer {
                return Err(Refusal::Peer(limits.per_peer));
            }
        }
        if self.open.load(Ordering::Acquire) >= limits.max && !self.evict_idlest() {
            return Err(Refusal::Full(limits.max));
        }
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        *lock(&self.by_peer).entry(network).or_default() += 1;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let evict = CancellationToken::new();
        lock(&self.live).insert(
            id,
            Live {
                network,
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        Ok(Counted {
            counts: self.clone(),
            id,
            evict,
            probation: open >= limits.max - limits.reserved,
        })
    }

    /// Closes the most dispensable connection with no request in flight (one that never had
    /// a request before a client's idle keep-alive one, the longest idle first), and gives its
    /// place back at once; false if every connection has a request in flight.
    fn evict_idlest(&self) -> bool {
        let idlest = {
            let live = lock(&self.live);
            // In the order they came, so the first silent one is the longest silent: under a
            // flood of silent connections this is found at once.
            let silent = live
                .iter()
                .find(|(_, live)| live.activity.never_used())
                .map(|(id, _)| *id);
            silent.or_else(|| {
                let now = tokio::time::Instant::now();
                live.iter()
                    .filter_map(|(id, live)| Some((*id, live.activity.dispensable(now)?)))
                    .max_by_key(|(_, dispensable)| *dispensable)
                    .map(|(id, _)| id)
            })
        };
        match idlest.and_then(|id| self.release(id)) {
            Some(evicted) => {
                evicted.cancel();
                true
            }
            None => false,
        }
    }

    /// Uncounts connection `id`, once; returns how to close it, if it was still counted.
    fn release(&self, id: u64) -> Option<CancellationToken> {
        let live = lock(&self.live).remove(&id)?;
        self.open.fetch_sub(1, Ordering::AcqRel);
        let mut by_peer = lock(&self.by_peer);
        if let Some(count) = by_peer.get_mut(&live.network) {
            *count -= 1;
            if *count == 0 {
                by_peer.remove(&live.network);
            }
        }
        Some(live.evict)
    }
}

/// One counted connection, for as long as it lives (or until it is evicted).
struct Counted {
    counts: Arc<Counts>,
    id: u64,
    /// Cancelled when it is closed to make room for another.
    evict: CancellationToken,
    /// Accepted into the reserve: only credentials and health checks are served on it.
    probation: bool,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.counts.release(self.id);
    }
}

/// Answers a refused connection 503 without reading its request, then reads (and drops)
/// what it sends for a moment before closing, so that it reads our answer rather than a
/// reset.
async fn refuse(mut stream: TcpStream, refusal: &Refusal) {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32603, "message": format!("{refusal}; try again later")},
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let polite = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left = 64 * 1024usize;
        while left > 0 {
            let read = stream.read(&mut sink).await?;
            if read == 0 {
                break;
            }
            left = left.saturating_sub(read);
        }
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), polite).await;
}

/// Logs refused connections at most once every ten seconds, with how many there were: a
/// flood of them must not become a flood of log lines.
fn refused(refusal: &Refusal) {
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    static LOGGED_AT: AtomicU64 = AtomicU64::new(0);
    let count = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
    let now = crate::registry::now_ms().unsigned_abs();
    let last = LOGGED_AT.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= 10_000
        && LOGGED_AT
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        REFUSED.store(0, Ordering::Relaxed);
        tracing::warn!(refused = count, "connections refused: {refusal}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            max: 10,
            per_peer: 4,
            reserved: 2,
            deadlines: super::super::connection::Deadlines {
                header_read: Duration::from_secs(1),
                body_read: Duration::from_secs(1),
                idle: Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn connections_are_counted_per_address_and_the_last_ones_are_on_probation() {
        let counts = Arc::new(Counts::default());
        let limits = limits();
        let admit = |network: IpAddr| counts.admit(network, &Activity::new(), &limits);
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let mut held: Vec<Counted> = (0..4).map(|_| admit(one).unwrap()).collect();
        assert!(matches!(admit(one), Err(Refusal::Peer(4))));
        for n in 2..6u8 {
            held.push(admit(IpAddr::from([10, 0, 0, n])).unwrap());
        }
        assert!(held.iter().all(|counted| !counted.probation));
        let reserve_a = admit(IpAddr::from([10, 0, 1, 1])).unwrap();
        let reserve_b = admit(IpAddr::from([10, 0, 1, 2])).unwrap();
        assert!(reserve_a.probation && reserve_b.probation);
        drop(held);
        drop((reserve_a, reserve_b));
        assert_eq!(counts.open.load(Ordering::Relaxed), 0);
        assert!(lock(&counts.by_peer).is_empty());
        assert!(lock(&counts.live).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn when_full_the_longest_silent_connection_makes_room() {
        let counts = Arc::new(Counts::default());
        let limits = limits();
        let admit = |last: u8, activity: &Arc<Activity>| {
            counts
                .admit(IpAddr::from([10, 0, 0, last]), activity, &limits)
                .unwrap()
        };
        let busy = Activity::new();
        let _request = busy.begin();
        let busy = admit(1, &busy);
        // A client's keep-alive connection, idle longer than any other.
        let keep_alive = Activity::new();
        drop(keep_alive.begin());
        let keep_alive = admit(2, &keep_alive);
        tokio::time::advance(Duration::from_secs(5)).await;
        let silent = admit(3, &Activity::new());
        tokio::time::advance(Duration::from_secs(1)).await;
        let younger: Vec<Counted> = (4..11).map(|n| admit(n, &Activity::new())).collect();
        assert_eq!(counts.open.load(Ordering::Relaxed), 10);

        let newcomer = counts.admit(IpAddr::from([10, 0, 0, 11]), &Activity::new(), &limits);
        assert!(newcomer.is_ok(), "room was made");
        assert!(silent.evict.is_cancelled(), "the longest silent went");
        assert!(
            !busy.evict.is_cancelled(),
            "not the one with a request in flight"
        );
        assert!(
            !keep_alive.evict.is_cancelled(),
            "not a client's keep-alive connection while a silent one is left"
        );
        assert!(younger.iter().all(|counted| !counted.evict.is_cancelled()));
        assert_eq!(counts.open.load(Ordering::Relaxed), 10);
        drop(silent);
        assert_eq!(counts.open.load(Ordering::Relaxed), 10, "counted once");
    }
}
