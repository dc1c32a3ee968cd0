//! The gateway proper: the set of upstreams, the catalog built from them, and routing.
//!
//! No transport types live here. Downstream transports hand requests to [`server::GatewayServer`]
//! (an rmcp `ServerHandler`), which calls into [`Gateway`]. The catalog is rebuilt whenever an
//! upstream reports a change and swapped in whole; the call path reads it with one atomic load.
//!
//! Until every upstream has finished starting (ready, failed or timed out), list and call
//! requests wait, so a client that connects at launch sees the whole catalog, not a partial one.
//! Each upstream has its own start deadline, which bounds that wait.

mod catalog;
mod catalog_freshness;
mod client_requests;
mod conversation;
mod drain;
mod forward;
mod gauges;
mod history;
mod isolation;
mod kept_subscriptions;
mod logging;
mod methods;
mod notifier;
mod overrides;
mod parked_elsewhere;
mod per_user;
mod read_cache;
mod reconfigure;
mod router;
mod routes;
mod server;
mod services;
mod sessions;
mod subscribe;
mod tasks;
mod tool_search;
mod view;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
};

use arc_swap::ArcSwap;
use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use catalog::{Catalog, CatalogTool, Changed, Collision};
pub use catalog_freshness::Page;
pub use client_requests::{RequestLog, Retry, StatelessCaller, check_capability};
use conversation::Conversations;
pub use forward::{Origin, ProgressTarget};
pub use logging::SessionLogLevel;
pub use notifier::Changes;
pub use reconfigure::{LogLevelReport, Reconfigured};
pub use router::{LaneCall, LaneTool, RawAnswer, ToolCall, typed_answer_text};
pub use server::{GatewayServer, GatewayService, ListenSubscribed, Scope};
pub use services::LifecycleError;
pub use sessions::{Listener, SessionFacts, Waking};
pub use view::View;

use isolation::SessionConnections;
use rmcp::{Peer, RoleClient};

use crate::{
    config::{Config, Isolation},
    error::GatewayError,
    registry::CallLog,
    sync::lock,
    upstream::{OAuthVault, Phase, Upstream, freshness::ListKind},
};

/// Upstreams, catalog and routing, shared by every downstream session.
pub struct Gateway {
    /// The upstreams in order (the config file's, then those added at run time); replaced
    /// whole when one is added or removed.
    upstreams: ArcSwap<Vec<Arc<Upstream>>>,
    /// How to stop each running upstream, by name.
    running: Mutex<HashMap<String, services::Running>>,
    /// What new upstreams' settings are resolved against; replaced by a reload.
    config: ArcSwap<Config>,
    /// This gateway, for the callbacks of upstreams added later.
    me: Weak<Gateway>,
    catalog: ArcSwap<Catalog>,
    /// The virtual servers, by name; replaced by a reload.
    views: ArcSwap<view::Views>,
    /// Serializes rebuilds so a slower one never overwrites a newer catalog.
    rebuild: Mutex<()>,
    /// `true` once no upstream is still starting.
    started: watch::Sender<bool>,
    /// Counts changes to what clients see, per kind.
    catalog_changes: watch::Sender<Changes>,
    /// Session-era clients to tell about catalog changes.
    sessions: Arc<sessions::Sessions>,
    /// Clients' resource subscriptions, and the upstreams' updates on their way to them.
    resources: subscribe::Resources,
    page_size: usize,
    /// `catalog.tool_search`: clients of the whole gateway search instead of listing. Read
    /// at start, as the rest of `catalog` is.
    tool_search: bool,
    /// Where sessions' own upstream connections run: set by [`Gateway::start`].
    runtime: OnceLock<(TaskTracker, CancellationToken)>,
    /// 2026-07-28 clients' calls parked on a session-era upstream's question.
    conversations: Conversations,
    /// Where every `tools/call` is recorded, when the gateway keeps a history.
    call_log: OnceLock<CallLog>,
    /// The calls in flight, for a graceful stop.
    drain: drain::Drain,
    /// Where OAuth upstreams keep their sign-ins, and the sign-ins under way.
    oauth: Arc<OAuthVault>,
    /// The tool overrides that match nothing, as last logged.
    warned_overrides: Mutex<std::collections::HashSet<String>>,
    /// `resources/read` answers upstreams said may be kept (see `read_cache`).
    read_cache: read_cache::ReadCache,
    /// Tool calls run as tasks (see `tasks`).
    tasks: tasks::Tasks,
}

impl Gateway {
    /// Creates the gateway and its upstreams (not yet started; see [`Gateway::start`]).
    pub fn new(config: &Config) -> Arc<Self> {
        Arc::new_cyclic(|weak: &Weak<Gateway>| {
            let resources = subscribe::Resources::new();
            let oauth = Arc::new(OAuthVault::default());
            let upstreams = config
                .upstreams
                .iter()
                .map(|(name, upstream)| {
                    let updates = &resources.update_sender;
                    services::new_upstream(config, weak, updates, &oauth, name, upstream.clone())
                })
                .collect::<Vec<_>>();
            let (started, _) = watch::channel(false);
            let (catalog_changes, _) = watch::channel(Changes::default());
            Gateway {
                upstreams: ArcSwap::from_pointee(upstreams),
                running: Mutex::default(),
                config: ArcSwap::from_pointee(config.clone()),
                me: weak.clone(),
                catalog: ArcSwap::from_pointee(Catalog::default()),
                views: ArcSwap::from_pointee(view::compile(config)),
                rebuild: Mutex::new(()),
                started,
                catalog_changes,
                sessions: Arc::default(),
                resources,
                page_size: config.catalog.page_size,
                tool_search: config.catalog.tool_search,
                runtime: OnceLock::new(),
                conversations: Conversations::new(),
                call_log: OnceLock::new(),
                drain: drain::Drain::default(),
                oauth,
                warned_overrides: Mutex::default(),
                read_cache: read_cache::ReadCache::new(&config.cache),
                tasks: tasks::Tasks::new(&config.tasks),
            }
        })
    }

    /// Starts every upstream in parallel on `tracker`; they stop when `shutdown` is cancelled.
    pub fn start(self: &Arc<Self>, tracker: &TaskTracker, shutdown: &CancellationToken) {
        let _ = self.runtime.set((tracker.clone(), shutdown.clone()));
        for upstream in self.upstreams().iter() {
            self.launch(upstream.clone(), tracker, shutdown);
        }
        tracker.spawn(notifier::run(
            self.sessions.clone(),
            self.catalog_changes.subscribe(),
            shutdown.clone(),
        ));
        let updates = lock(&self.resources.updates).take();
        if let Some(updates) = updates {
            let me = Arc::downgrade(self);
            let updated = move |uri: &str| {
                if let Some(gateway) = me.upgrade() {
                    gateway.read_cache.forget_uri(uri);
                }
            };
            tracker.spawn(notifier::relay_resource_updates(
                self.resources.subscriptions.clone(),
                updates,
                updated,
                shutdown.clone(),
            ));
        }
        self.rebuild_catalog();
    }

    /// A new session's scope for its own upstream connections, when some upstream is
    /// `isolation: per-session` and the gateway is running.
    pub fn session_connections(&self) -> Option<Arc<SessionConnections>> {
        let any_isolated = self
            .upstreams
            .load()
            .iter()
            .any(|upstream| upstream.config().isolation == Isolation::PerSession);
        let (tracker, shutdown) = self.runtime.get().filter(|_| any_isolated)?;
        Some(Arc::new(SessionConnections::new(shutdown, tracker.clone())))
    }

    /// The connection a request of `origin` goes on: the shared one; for an
    /// `isolation: per-session` upstream, the session's own; for a `credentials: per-user`
    /// one, the user's own; for a session-era client of an upstream `auto` reached in
    /// 2026-07-28, its session-era twin.
    async fn connect(
        &self,
        upstream: &Arc<Upstream>,
        origin: &Origin,
    ) -> Result<(Arc<Upstream>, Peer<RoleClient>), GatewayError> {
        if self.takes_own_connection(upstream, origin)
            && let Some(who) = &origin.principal
        {
            return self.own_connection(upstream, who, origin).await;
        }
        if upstream.config().isolation == Isolation::PerSession
            && let Some(own) = &origin.connections
        {
            return own.connection(upstream).await;
        }
        let peer = upstream.ready_peer()?;
        // A session-era client that can be asked (sampling, elicitation, roots) gets the
        // upstream's session-era behaviour, as it would directly (see `upstream::twin`).
        if !origin.stateless
            && origin.caller.is_some()
            && upstream.wants_session_twin(&peer)
            && let Some((tracker, shutdown)) = self.runtime.get()
            && let Some(twin) = upstream.session_twin(tracker, shutdown).await
        {
            return Ok(twin);
        }
        Ok((upstream.clone(), peer))
    }

    /// Whether a request of `origin` to `upstream` goes on the user's own connection
    /// (`credentials: per-user`). A caller without a user (no `auth`, `mcps stdio`) is the
    /// operator: the gateway's own sign-in serves them.
    fn takes_own_connection(&self, upstream: &Upstream, origin: &Origin) -> bool {
        upstream.oauth().is_some_and(|auth| auth.per_user()) && origin.principal.is_some()
    }

    /// A receiver that changes whenever what clients see changes.
    pub fn catalog_changes(&self) -> watch::Receiver<Changes> {
        self.catalog_changes.subscribe()
    }

    /// Whether every upstream has had its first try (ready, failed or timed out).
    pub fn is_started(&self) -> bool {
        *self.started.borrow()
    }

    /// Resolves once no upstream is starting any more.
    pub async fn wait_started(&self) {
        if *self.started.borrow() {
            return;
        }
        let mut started = self.started.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = started.wait_for(|started| *started).await;
    }

    /// The upstreams: the config file's in its order, then those added at run time.
    pub fn upstreams(&self) -> Arc<Vec<Arc<Upstream>>> {
        self.upstreams.load_full()
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog.load_full()
    }

    /// Where OAuth upstreams keep their sign-ins (opened with the registry), and the
    /// sign-ins under way.
    pub fn oauth(&self) -> &Arc<OAuthVault> {
        &self.oauth
    }

    /// The virtual server called `name`.
    pub fn view(&self, name: &str) -> Option<Arc<View>> {
        self.views.load().get(name).cloned()
    }

    /// The catalog as `view` shows it (the whole of it without one).
    pub fn catalog_for(&self, view: Option<&View>) -> Arc<Catalog> {
        let full = self.catalog.load_full();
        match view {
            Some(view) => view.catalog(&full),
            None => full,
        }
    }

    fn rebuild_catalog(&self) {
        let _guard = lock(&self.rebuild);
        let catalog = Catalog::build(&self.upstreams.load());
        let previous = self.catalog.swap(Arc::new(catalog));
        for collision in self.catalog.load().new_collisions(Some(&previous)) {
            tracing::warn!("{collision}");
        }
        self.warn_unmatched_overrides();
        let changed = previous.changes_to(&self.catalog.load());
        if changed.any() {
            self.catalog_changes
                .send_modify(|changes| changes.record(changed));
        }
        // Only the first start holds requests back: an upstream added or restarted later
        // must not stall calls to the others while it starts.
        if *self.started.borrow() {
            return;
        }
        let starting = self
            .upstreams
            .load()
            .iter()
            .any(|upstream| upstream.state().phase == Phase::Starting);
        if !starting {
            self.started.send_replace(true);
        }
    }

    /// One page of the tool catalog.
    pub async fn list_tools(
        &self,
        cursor: Option<&str>,
        view: Option<&View>,
    ) -> Result<Page<Tool>, GatewayError> {
        self.wait_started().await;
        if self.searches(view) {
            return match cursor {
                None => Ok(Page::own(tool_search::tools())),
                Some(cursor) => Err(GatewayError::InvalidCursor {
                    cursor: cursor.to_owned(),
                }),
            };
        }
        self.freshen(ListKind::Tools, view).await;
        let page = self.catalog_for(view).tools.page(cursor, self.page_size)?;
        Ok(self.with_hints(ListKind::Tools, view, page))
    }

    /// Whether clients of `view` (or of the whole gateway) search the catalog instead of
    /// listing it (see `tool_search`).
    pub fn searches(&self, view: Option<&View>) -> bool {
        match view {
            Some(view) => view.tool_search(),
            None => self.tool_search,
        }
    }

    /// One page of the prompt catalog.
    pub async fn list_prompts(
        &self,
        cursor: Option<&str>,
        view: Option<&View>,
    ) -> Result<Page<Prompt>, GatewayError> {
        self.wait_started().await;
        self.freshen(ListKind::Prompts, view).await;
        let page = self
            .catalog_for(view)
            .prompts
            .page(cursor, self.page_size)?;
        Ok(self.with_hints(ListKind::Prompts, view, page))
    }

    /// One page of the resources.
    pub async fn list_resources(
        &self,
        cursor: Option<&str>,
        view: Option<&View>,
    ) -> Result<Page<Resource>, GatewayError> {
        self.wait_started().await;
        self.freshen(ListKind::Resources, view).await;
        let catalog = self.catalog_for(view);
        let page = catalog.resources.page_resources(cursor, self.page_size)?;
        Ok(self.with_hints(ListKind::Resources, view, page))
    }

    /// One page of the resource templates.
    pub async fn list_resource_templates(
        &self,
        cursor: Option<&str>,
        view: Option<&View>,
    ) -> Result<Page<ResourceTemplate>, GatewayError> {
        self.wait_started().await;
        self.freshen(ListKind::Templates, view).await;
        let catalog = self.catalog_for(view);
        let page = catalog.resources.page_templates(cursor, self.page_size)?;
        Ok(self.with_hints(ListKind::Templates, view, page))
    }
}
