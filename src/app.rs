//! Wires config, registry, gateway and transports together, and owns shutdown.
//!
//! Every long-lived task (upstreams, connections) is spawned on one [`TaskTracker`]. A stop
//! (SIGTERM, SIGINT) goes in phases, each a [`CancellationToken`]:
//! 1. `shutdown`: stop accepting connections and calls; calls in flight get
//!    `timeouts.drain_secs` to finish, then the rest are answered with a shutdown error;
//! 2. `sessions_end`: client sessions and their streams close, connections finish;
//! 3. `upstreams_stop`: every upstream connection closes and every process group is
//!    terminated. [`App::finish`] waits for all tracked tasks, bounded by the shutdown grace
//!    plus a margin, so the process exits with no child left behind. Last, the call log
//!    writes what is still queued, the calls of the drain included.

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use rmcp::ServiceExt;
use tokio::{io::BufReader, net::TcpListener, task::JoinHandle};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    admin::{self, AdminState},
    config::{Config, DatabaseLocation},
    downstream::{
        http::{HttpFront, Kept},
        listener,
        message_calls::MessageCalls,
        shared_sessions_check_every,
        stdio::{StdioServerTransport, standard_streams},
    },
    gateway::{Gateway, GatewayServer},
    registry::{CallLog, Registry, RegistryError, prune_calls},
    reload::Reloader,
    security::{IdentityProvider, ProviderLogin, TokenCache},
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
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("database.url: {0}")]
    Database(String),
}

/// A listening socket on `address` whose queue of connections not yet accepted holds a burst
/// of `max_connections` (the system caps it, at `net.core.somaxconn`): with the usual 1,024, a
/// burst of clients overflows it, and the kernel leaves the overflow half-open for a minute.
fn listen_on(address: SocketAddr, max_connections: usize) -> std::io::Result<TcpListener> {
    let socket = match address {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // A restarted gateway can bind while the old connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    let backlog = u32::try_from(max_connections)
        .unwrap_or(u32::MAX)
        .clamp(1024, 65_535);
    socket.listen(backlog)
}

/// The registry and what runs on it.
struct Stored {
    registry: Registry,
    /// Where uploads go: beside an SQLite file, or in `data/` beside the config file.
    data_dir: std::path::PathBuf,
    tokens: Arc<TokenCache>,
    /// Cancelled after the drain, to make the call log write what is left and end.
    flush_calls: CancellationToken,
    call_writer: JoinHandle<()>,
}

/// A configured gateway and the means to stop it.
pub struct App {
    config: Config,
    gateway: Arc<Gateway>,
    shutdown: CancellationToken,
    sessions_end: CancellationToken,
    upstreams_stop: CancellationToken,
    tracker: TaskTracker,
    stored: Option<Stored>,
    /// Reloads the config file the gateway was started from, when there is one.
    reloader: Option<Arc<Reloader>>,
}

impl App {
    pub fn new(config: Config) -> Self {
        let gateway = Gateway::new(&config);
        Self {
            config,
            gateway,
            shutdown: CancellationToken::new(),
            sessions_end: CancellationToken::new(),
            upstreams_stop: CancellationToken::new(),
            tracker: TaskTracker::new(),
            stored: None,
            reloader: None,
        }
    }

    /// Reloads `path` (the file `config` came from) on SIGHUP, on the API's request and,
    /// with `server.watch_config`, when it changes.
    pub fn reload_from(mut self, path: &Path) -> Self {
        self.reloader = Some(Reloader::new(
            path,
            self.gateway.clone(),
            self.config.clone(),
        ));
        self
    }

    /// Shows start-up progress when someone is watching stderr (see [`crate::progress`]).
    fn show_progress(&self) {
        if !crate::progress::wanted() {
            return;
        }
        let gateway = self.gateway.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = crate::progress::show_startup(gateway) => {}
                () = shutdown.cancelled() => {}
            }
        });
    }

    /// Starts reloading the config file on its triggers, if [`App::reload_from`] named one.
    fn watch_config(&self) -> Result<(), AppError> {
        let Some(reloader) = &self.reloader else {
            return Ok(());
        };
        reloader
            .reload_on_sighup(&self.tracker, &self.shutdown)
            .map_err(AppError::Signals)?;
        if self.config.server.watch_config {
            reloader.reload_on_change(&self.tracker, &self.shutdown);
        }
        Ok(())
    }

    /// Opens the registry (creating it on first run), makes the first user if there is none,
    /// starts the services stored in it and begins recording calls. Call after
    /// [`App::start_upstreams`], so the config file's upstreams start meanwhile.
    pub async fn open_registry(&mut self) -> Result<(), AppError> {
        let location = self
            .config
            .database
            .location(&self.config.base_dir)
            .map_err(AppError::Database)?;
        let registry = Registry::open(&location, &self.config.database.secret_key).await?;
        let data_dir = match &location {
            DatabaseLocation::Sqlite(path) => path.parent().map(Path::to_owned),
            DatabaseLocation::Postgres(_) => None,
        }
        .unwrap_or_else(|| self.config.base_dir.join("data"));
        self.gateway.oauth().open(registry.clone());
        let tokens = TokenCache::new();
        admin::bootstrap(&registry, &tokens).await?;
        for service in registry.services().await? {
            if self.config.upstreams.contains_key(&service.name) {
                tracing::warn!(
                    service = %service.name,
                    "a stored service has the name of an upstream in the config file; the file's wins"
                );
                continue;
            }
            if let Err(error) = self.gateway.add_upstream(&service.name, service.spec) {
                tracing::warn!(service = %service.name, %error, "cannot start a stored service");
            }
        }
        let flush_calls = CancellationToken::new();
        let (log, writer) = CallLog::start(registry.clone(), flush_calls.clone());
        let keep_days = self.config.database.keep_calls_days;
        if keep_days > 0 {
            let keep = Duration::from_secs(u64::from(keep_days) * 86_400);
            self.tracker
                .spawn(prune_calls(registry.clone(), keep, self.shutdown.clone()));
        }
        self.gateway.keep_call_history(log);
        // An SQLite registry is this gateway's alone: a task it finds running was left by
        // its last run.
        let alone = matches!(location, DatabaseLocation::Sqlite(_));
        self.gateway.keep_tasks(
            registry.clone(),
            alone,
            &self.tracker,
            self.shutdown.clone(),
        );
        self.stored = Some(Stored {
            registry,
            data_dir,
            tokens,
            flush_calls,
            call_writer: tokio::spawn(writer),
        });
        Ok(())
    }

    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gateway
    }

    /// Starts every upstream (in parallel, each with its own deadline).
    pub fn start_upstreams(&self) {
        self.gateway.start(&self.tracker, &self.upstreams_stop);
    }

    /// Serves `/mcp` and `/api/v1` on `listen` until SIGTERM or SIGINT.
    pub async fn serve_http(mut self, listen: SocketAddr) -> Result<(), AppError> {
        let listener = listen_on(listen, self.config.limits.max_connections).map_err(|source| {
            AppError::Bind {
                addr: listen,
                source,
            }
        })?;
        let bound = listener.local_addr().unwrap_or(listen);
        self.watch_signals()?;
        self.start_upstreams();
        self.watch_config()?;
        if let Err(error) = self.open_registry().await {
            self.finish().await;
            return Err(error);
        }
        self.show_progress();
        let stored = self.stored.as_ref().expect("opened above");
        let public_url = self
            .config
            .server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"));
        self.gateway.oauth().set_public_url(&public_url);
        // One checker of the identity provider's tokens (and one cache of its keys) for /mcp,
        // /ws and /api/v1.
        let identity = self.config.auth.oauth.clone().and_then(|oauth| {
            IdentityProvider::new(oauth, &public_url)
                .map(Arc::new)
                .inspect_err(|error| tracing::error!(%error, "auth.oauth cannot be used"))
                .ok()
        });
        let provider_login = identity
            .clone()
            .and_then(|identity| ProviderLogin::new(identity, &public_url))
            .map(Arc::new);
        self.gateway
            .oauth()
            .set_provider_users_sign_in(provider_login.is_some());
        let admin_state = Arc::new(AdminState {
            gateway: self.gateway.clone(),
            registry: stored.registry.clone(),
            tokens: stored.tokens.clone(),
            identity: identity.clone(),
            provider_login,
            config: self.config.clone(),
            data_dir: stored.data_dir.clone(),
            started: std::time::Instant::now(),
            services_lock: tokio::sync::Mutex::new(()),
            reloader: self.reloader.clone(),
            login_throttle: crate::security::LoginThrottle::new(self.config.auth.login.clone()),
        });
        // What other gateways on the same registry change, taken here too.
        let changes = stored
            .registry
            .follow(admin::replicas::RESYNC, self.shutdown.clone());
        self.tracker.spawn(admin::replicas::follow(
            admin_state.clone(),
            changes.clone(),
            self.shutdown.clone(),
        ));
        self.gateway.keep_session_subscriptions(
            stored.registry.clone(),
            shared_sessions_check_every(self.config.timeouts.session_idle()),
            &self.tracker,
            self.shutdown.clone(),
        );
        self.gateway.pass_parked_calls(
            stored.registry.clone(),
            &changes,
            &self.tracker,
            self.shutdown.clone(),
        );
        let admin = admin::router(admin_state);
        tracing::info!(
            "MCP endpoint: http://{bound}/mcp  WebSocket: ws://{bound}/ws  API: http://{bound}/docs"
        );
        let front = Arc::new(
            HttpFront::new(
                self.gateway.clone(),
                &self.config,
                bound,
                admin,
                Kept {
                    tokens: stored.tokens.clone(),
                    sessions_in: Some((stored.registry.clone(), &changes)),
                },
                &self.sessions_end,
                &self.tracker,
            )
            .checking(identity),
        );
        listener::serve(
            listener,
            front,
            self.shutdown.clone(),
            self.sessions_end.clone(),
            self.tracker.clone(),
        )
        .await;
        self.finish().await;
        Ok(())
    }

    /// Serves MCP on stdin/stdout until stdin closes, SIGTERM or SIGINT; only virtual
    /// server `scope`, when one is named.
    pub async fn serve_stdio(mut self, scope: Option<Arc<str>>) -> Result<(), AppError> {
        self.watch_signals()?;
        self.start_upstreams();
        self.watch_config()?;
        if let Err(error) = self.open_registry().await {
            self.finish().await;
            return Err(error);
        }
        self.show_progress();
        let facts = Arc::default();
        let own_way = MessageCalls::new(
            self.gateway.clone(),
            Arc::clone(&facts),
            scope.clone(),
            self.sessions_end.child_token(),
        );
        let (stdin, stdout) = standard_streams();
        let transport = StdioServerTransport::new(
            BufReader::new(stdin),
            stdout,
            crate::jsonrpc::MessageLimits {
                max_bytes: self.config.limits.max_line_bytes,
                max_depth: self.config.limits.max_json_depth,
            },
            crate::outbound::Outbound::from_config(&self.config),
            Some(own_way),
        );
        let server = GatewayServer::new(self.gateway.clone())
            .scoped(scope)
            .publishing_facts(facts)
            .into_service();
        tokio::select! {
            served = server.serve_with_ct(transport, self.sessions_end.child_token()) => match served {
                Ok(running) => {
                    tokio::select! {
                        _ = running.waiting() => tracing::info!("client closed stdin"),
                        // After the drain (see `watch_signals`).
                        () = self.sessions_end.cancelled() => {}
                    }
                }
                Err(error) => tracing::warn!(%error, "stdio session ended before it started"),
            },
            () = self.sessions_end.cancelled() => {}
        }
        self.finish().await;
        Ok(())
    }

    /// Cancels everything and waits (bounded) for every task, and so every child, to end.
    pub async fn finish(self) {
        self.shutdown.cancel();
        self.sessions_end.cancel();
        self.upstreams_stop.cancel();
        self.tracker.close();
        let bound = self.config.timeouts.shutdown_grace() + Duration::from_secs(3);
        if tokio::time::timeout(bound, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks still running {bound:?} after shutdown began; exiting anyway");
        }
        if let Some(stored) = self.stored {
            stored.flush_calls.cancel();
            if tokio::time::timeout(Duration::from_secs(5), stored.call_writer)
                .await
                .is_err()
            {
                tracing::warn!("the call log did not finish writing within 5 s");
            }
            if let Err(error) = stored.registry.close().await {
                tracing::warn!(%error, "the registry was not closed cleanly; its -wal file holds the latest rows");
            }
        }
    }

    /// On the first SIGTERM or SIGINT: stops accepting, drains the calls in flight, then
    /// ends the sessions (the serving loops then return and [`App::finish`] does the rest).
    /// A second one kills every upstream process group and exits at once.
    fn watch_signals(&self) -> Result<(), AppError> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate()).map_err(AppError::Signals)?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(AppError::Signals)?;
        let shutdown = self.shutdown.clone();
        let sessions_end = self.sessions_end.clone();
        let gateway = self.gateway.clone();
        let drain = self.config.timeouts.drain();
        self.tracker.spawn(async move {
            let name = tokio::select! {
                _ = terminate.recv() => "SIGTERM",
                _ = interrupt.recv() => "SIGINT",
                () = shutdown.cancelled() => return,
            };
            tracing::info!("{name} received; shutting down (a second signal stops at once)");
            shutdown.cancel();
            // Not tracked: it must outlive the tracked tasks that `finish` waits for.
            tokio::spawn(async move {
                // The shell's convention: 128 + the signal's number.
                let code = tokio::select! {
                    _ = terminate.recv() => 128 + 15,
                    _ = interrupt.recv() => 128 + 2,
                };
                tracing::warn!("second signal received; stopping now, without the drain");
                crate::upstream::kill_every_group();
                std::process::exit(code);
            });
            gateway.drain(drain).await;
            // Let the last answers reach their clients before their sessions close.
            tokio::time::sleep(Duration::from_millis(100)).await;
            sessions_end.cancel();
        });
        Ok(())
    }
}
