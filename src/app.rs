//! Wires config, gateway and transports together, and owns shutdown.
//!
//! One [`CancellationToken`] means "shut down"; every long-lived task (upstreams, connections)
//! is spawned on one [`TaskTracker`]. Shutdown cancels the token, which stops accepting, lets
//! open HTTP requests finish, closes every upstream connection and terminates every upstream
//! process group; then [`App::finish`] waits for all tracked tasks to end, bounded by the
//! shutdown grace plus a margin, so the process exits with no child left behind.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rmcp::ServiceExt;
use tokio::{io::BufReader, net::TcpListener};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Config,
    downstream::{
        http::{self, HttpFront},
        stdio::StdioServerTransport,
    },
    gateway::{Gateway, GatewayServer},
};

/// Why the gateway could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// A configured gateway and the means to stop it.
pub struct App {
    config: Config,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl App {
    pub fn new(config: Config) -> Self {
        let gateway = Gateway::new(&config);
        Self {
            config,
            gateway,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Starts every upstream (in parallel, each with its own deadline).
    pub fn start_upstreams(&self) {
        self.gateway.start(&self.tracker, &self.shutdown);
    }

    /// Serves `/mcp` and `/api/v1` on `listen` until SIGTERM or SIGINT.
    pub async fn serve_http(self, listen: SocketAddr) -> Result<(), AppError> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| AppError::Bind {
                addr: listen,
                source,
            })?;
        let bound = listener.local_addr().unwrap_or(listen);
        self.watch_signals()?;
        self.start_upstreams();
        tracing::info!(
            "MCP endpoint: http://{bound}/mcp  WebSocket: ws://{bound}/ws  health: http://{bound}/api/v1/system/health"
        );
        let front = Arc::new(HttpFront::new(
            self.gateway.clone(),
            &self.config,
            bound,
            &self.shutdown,
            &self.tracker,
        ));
        http::serve(listener, front, self.shutdown.clone(), self.tracker.clone()).await;
        self.finish().await;
        Ok(())
    }

    /// Serves MCP on stdin/stdout until stdin closes, SIGTERM or SIGINT.
    pub async fn serve_stdio(self) -> Result<(), AppError> {
        self.watch_signals()?;
        self.start_upstreams();
        let transport = StdioServerTransport::new(
            BufReader::new(tokio::io::stdin()),
            tokio::io::stdout(),
            self.config.limits.max_line_bytes,
        );
        let server = GatewayServer::new(self.gateway.clone());
        tokio::select! {
            served = server.serve_with_ct(transport, self.shutdown.child_token()) => match served {
                Ok(running) => {
                    tokio::select! {
                        _ = running.waiting() => tracing::info!("client closed stdin"),
                        () = self.shutdown.cancelled() => {}
                    }
                }
                Err(error) => tracing::warn!(%error, "stdio session ended before it started"),
            },
            () = self.shutdown.cancelled() => {}
        }
        self.finish().await;
        Ok(())
    }

    /// Cancels everything and waits (bounded) for every task, and so every child, to end.
    pub async fn finish(self) {
        self.shutdown.cancel();
        self.tracker.close();
        let bound = self.config.timeouts.shutdown_grace() + Duration::from_secs(3);
        if tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks still running {bound:?} after shutdown began; exiting anyway");
        }
    }

    /// Cancels the shutdown token on the first SIGTERM or SIGINT.
    fn watch_signals(&self) -> Result<(), AppError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(AppError::Signals)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(AppError::Signals)?;
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
                () = shutdown.cancelled() => return,
            };
            tracing::info!("{name} received; shutting down");
            shutdown.cancel();
        });
        Ok(())
    }
}
