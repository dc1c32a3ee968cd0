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
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, ClientRequest, CompleteRequest,
    CompleteRequestParams, CompleteResult, GetPromptRequest, GetPromptRequestParams,
    GetPromptResponse, Prompt, ReadResourceRequest, ReadResourceRequestParams,
    ReadResourceResponse, Reference, Resource, ResourceTemplate, ResultType, ServerResult, Tool,
};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use catalog::{Catalog, CatalogTool, Changed, Collision};
pub use catalog_freshness::Page;
pub use client_requests::check_capability;
use conversation::Conversations;
pub use forward::{Origin, ProgressTarget};
use forward::{send, send_bridged, strip_hop_meta, unexpected};
pub use logging::SessionLogLevel;
pub use notifier::Changes;
pub use reconfigure::{LogLevelReport, Reconfigured};
pub use router::{RawAnswer, ToolCall};
pub use server::{GatewayServer, Scope};
pub use services::LifecycleError;
pub use sessions::{Listener, SessionFacts, Waking};
pub use view::View;

use isolation::SessionConnections;
use rmcp::{Peer, RoleClient};

use crate::{
    config::{Config, Isolation},
    error::GatewayError,
    registry::CallLog,
    security::Identity,
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

    fn resource_owner(
        &self,
        uri: &str,
        view: Option<&View>,
    ) -> Result<Arc<Upstream>, GatewayError> {
        self.catalog_for(view)
            .resources
            .owner_of(uri)
            .cloned()
            .ok_or_else(|| GatewayError::UnknownResource {
                uri: uri.to_owned(),
            })
    }

    /// The error for a name no catalog entry has. When the name carries the prefix of an
    /// upstream that is down, that upstream is named: its tools are missing because it is
    /// down, and "unknown tool" would send the user looking in the wrong place. (This only
    /// shapes the message; routing itself is a catalog lookup.)
    fn unrouted(&self, name: &str, view: Option<&View>) -> GatewayError {
        let down = self
            .upstreams
            .load()
            .iter()
            .filter(|upstream| view.is_none_or(|view| view.offers(upstream)))
            .filter(|upstream| !upstream.prefix().is_empty() && name.starts_with(upstream.prefix()))
            .max_by_key(|upstream| upstream.prefix().len())
            .map(|upstream| upstream.ready_peer());
        match down {
            Some(Err(unavailable)) => unavailable,
            _ => GatewayError::UnknownTool {
                name: name.to_owned(),
            },
        }
    }

    /// The upstream that owns the tool a client calls `name` (in its view), and the name the
    /// upstream knows it by. The tool's overrides put their pinned values and defaults into
    /// `arguments` (the lane, which has none to give, never carries a tool that has any): a
    /// virtual server's rule first, then the upstream's, whose pinned values have the last word.
    fn tool_route(
        &self,
        name: &str,
        view: Option<&View>,
        arguments: Option<&mut Option<rmcp::model::JsonObject>>,
    ) -> Result<(Arc<Upstream>, String), GatewayError> {
        let catalog = self.catalog_for(view);
        let route = catalog
            .route(name)
            .ok_or_else(|| self.unrouted(name, view))?;
        if let Some(arguments) = arguments {
            for rule in route.overrides.iter().rev() {
                rule.apply_to_arguments(arguments);
            }
        }
        Ok((route.upstream.clone(), route.original.clone()))
    }

    /// Sends a routed `tools/call` (see [`Gateway::call_tool`], which routes and records it)
    /// and returns the answer whole.
    async fn send_call(
        &self,
        upstream: &Arc<Upstream>,
        original: String,
        mut params: CallToolRequestParams,
        origin: &Origin,
    ) -> Result<CallToolResponse, GatewayError> {
        match per_user::take_sign_in_answer(&mut params.input_responses) {
            Some(per_user::SignInAnswer::Refused(reason)) => {
                return Err(GatewayError::UpstreamUnavailable {
                    upstream: upstream.name().to_owned(),
                    reason,
                });
            }
            Some(per_user::SignInAnswer::Accepted) => {
                // Waits on the connection that asked for the sign-in; `connect` below then
                // opens a new one with the fresh token.
                if let Some(who) = &origin.principal {
                    self.await_sign_in(upstream, who).await;
                }
            }
            None => {}
        }
        let (upstream, peer) = match self.connect(upstream, origin).await {
            Ok(connection) => connection,
            // A 2026-07-28 client is asked to sign in the way that revision asks for input.
            Err(error) if origin.stateless => return per_user::as_input_required(error),
            Err(error) => return Err(error),
        };
        let binding = format!("tools/call\n{}", params.name);
        params.name = original.into();
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::CallToolResult(mut result) => {
                // Session-era upstreams omit it; 2026-07-28 clients require it. rmcp strips it
                // again for session-era clients.
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(CallToolResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Routes a `prompts/get` by exposed prompt name.
    pub async fn get_prompt(
        &self,
        mut params: GetPromptRequestParams,
        origin: &Origin,
    ) -> Result<GetPromptResponse, GatewayError> {
        self.wait_started().await;
        let (upstream, original) =
            {
                let catalog = self.catalog_for(origin.view.as_deref());
                let route = catalog.prompts.route(&params.name).ok_or_else(|| {
                    GatewayError::UnknownPrompt {
                        name: params.name.clone(),
                    }
                })?;
                (route.upstream.clone(), route.original.clone())
            };
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        let binding = format!("prompts/get\n{}", params.name);
        params.name = original;
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::GetPromptResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(GetPromptResponse::InputRequired(result))
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Routes a `resources/read` to the upstream that listed the URI or owns its template.
    pub async fn read_resource(
        &self,
        mut params: ReadResourceRequestParams,
        origin: &Origin,
    ) -> Result<ReadResourceResponse, GatewayError> {
        self.wait_started().await;
        let upstream = self.resource_owner(&params.uri, origin.view.as_deref())?;
        let principal = origin.principal.as_ref().map(Identity::key);
        let reader = read_cache::Reader {
            principal: principal.as_deref(),
            own_connection: self.takes_own_connection(&upstream, origin),
        };
        // Asked only once the caller may reach the upstream: a user who has not signed in to
        // a per-user one is told to, not served what another read.
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        let generation = upstream.state().generation;
        // A retry of an `input_required` round depends on more than the URI: never kept.
        let cacheable = params.input_responses.is_none() && params.request_state.is_none();
        let uri = params.uri.clone();
        if cacheable && let Some(kept) = self.read_cache.get(generation, &uri, &reader) {
            return Ok(ReadResourceResponse::Complete(kept));
        }
        let binding = format!("resources/read\n{}", params.uri);
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params));
        let conversations = &self.conversations;
        match send_bridged(&upstream, &peer, request, origin, conversations, &binding).await? {
            ServerResult::ReadResourceResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                if cacheable {
                    self.read_cache.keep(generation, &uri, &reader, &result);
                }
                Ok(ReadResourceResponse::Complete(result))
            }
            ServerResult::InputRequiredResult(result) => {
                Ok(ReadResourceResponse::InputRequired(result))
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }

    /// Routes `completion/complete` to the owner of the prompt or resource template.
    pub async fn complete(
        &self,
        mut params: CompleteRequestParams,
        origin: &Origin,
    ) -> Result<CompleteResult, GatewayError> {
        self.wait_started().await;
        let upstream = {
            let catalog = self.catalog_for(origin.view.as_deref());
            match &mut params.r#ref {
                Reference::Prompt(prompt) => {
                    let route = catalog.prompts.route(&prompt.name).ok_or_else(|| {
                        GatewayError::UnknownPrompt {
                            name: prompt.name.clone(),
                        }
                    })?;
                    prompt.name = route.original.clone();
                    route.upstream.clone()
                }
                Reference::Resource(resource) => catalog
                    .resources
                    .template_owner(&resource.uri)
                    .cloned()
                    .ok_or_else(|| GatewayError::UnknownResource {
                        uri: resource.uri.clone(),
                    })?,
                // A reference kind newer than this gateway: no way to know its owner.
                _ => {
                    return Err(GatewayError::UnknownResource {
                        uri: "<unsupported completion reference>".into(),
                    });
                }
            }
        };
        let (upstream, peer) = self.connect(&upstream, origin).await?;
        strip_hop_meta(&mut params.meta);
        let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
        match send(&upstream, &peer, request, origin).await? {
            ServerResult::CompleteResult(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(result)
            }
            other => Err(unexpected(&upstream, &other)),
        }
    }
}
