//! The accept loop of the HTTP front door: per-connection socket options, the connection
//! limit, and a graceful end.
//!
//! Shutdown: the accept loop stops when the shutdown token is cancelled; open connections are
//! told to finish their in-flight requests (the gateway drains its calls meanwhile), and when
//! the app ends the sessions, rmcp's token (a child of that one) closes their streams.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use nix::sys::socket::sockopt::TcpUserTimeout;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::http::HttpFront;

/// How long open connections get to finish after shutdown starts.
const CONNECTION_DRAIN: Duration = Duration::from_secs(5);

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
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let open = Arc::new(AtomicUsize::new(0));
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
        // Nagle + delayed ACK add ~40 ms to a split SSE response.
        let _ = stream.set_nodelay(true);
        // A client that stops reading leaves our data unacknowledged (its window shut); the
        // kernel drops the connection after this long instead of holding it, and what is
        // queued for it, for ever. Streamable HTTP streams are rmcp's, so this is where a
        // slow reader on them is bounded.
        let stall = u32::try_from(front.write_stall.as_millis()).unwrap_or(u32::MAX);
        let _ = nix::sys::socket::setsockopt(&stream, TcpUserTimeout, &stall);
        let over_limit = open.load(Ordering::Relaxed) >= front.max_connections;
        let counted = Connection::open(&open);
        let front = front.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            let front = front.clone();
            // Who is asking, for the routes that count per client address (logins).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            async move {
                if over_limit {
                    return Ok::<_, Infallible>(front.too_many_connections());
                }
                Ok(front.handle(request).await)
            }
        });
        let io = TokioIo::new(stream);
        let connection = if over_limit {
            // Answered once with 503, then closed.
            let mut refusing = auto::Builder::new(TokioExecutor::new());
            refusing.http1().keep_alive(false);
            refusing
                .serve_connection_with_upgrades(io, service)
                .into_owned()
        } else {
            builder
                .serve_connection_with_upgrades(io, service)
                .into_owned()
        };
        let connection = graceful.watch(connection);
        tracker.spawn(async move {
            let _counted = counted;
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let deadline = async {
        sessions_end.cancelled().await;
        tokio::time::sleep(CONNECTION_DRAIN).await;
    };
    tokio::select! {
        () = graceful.shutdown() => {}
        () = deadline => {
            tracing::warn!("connections still open {CONNECTION_DRAIN:?} after the sessions ended; closing them");
        }
    }
}

/// Counts an open connection while it lives.
struct Connection(Arc<AtomicUsize>);

impl Connection {
    fn open(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
