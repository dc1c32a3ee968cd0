//! The MCP server every downstream transport serves: an rmcp `ServerHandler` over the gateway.
//!
//! rmcp does the protocol work for both eras: the `initialize` handshake or `server/discover`,
//! per-request `_meta` validation, and shaping results for the client's revision (it strips
//! `resultType` for session-era clients and fills cache hints for 2026-07-28 ones). This handler
//! only answers from the catalog and routes calls.

#![allow(
    deprecated,
    reason = "logging is deprecated by SEP-2577, but session-era clients use it"
)]

mod listen;
mod origin;

pub use listen::{GatewayService, ListenSubscribed};

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicU64, Ordering},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        CompleteRequestParams, CompleteResult, CustomRequest, CustomResult, GetPromptRequestParams,
        GetPromptResponse, GetTaskParams, GetTaskResult, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, LoggingLevel,
        PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, SetLevelRequestParams, SubscribeRequestParams,
        SubscriptionFilter, UnsubscribeRequestParams, UpdateTaskParams,
    },
    service::{MaybeSendFuture, NotificationContext, RequestContext, SubscriptionContext},
};

use super::{
    Gateway, SessionFacts, Waking, forward::with_client_meta, isolation::SessionConnections,
    logging::SessionLogLevel, methods::untyped_request_error, subscribe::SubscriberGuard,
};
use crate::security::{Identity, Lease};

/// One downstream session's (or stateless request's) view of the gateway. Cheap to create:
/// the HTTP transport makes one per session.
#[derive(Clone)]
pub struct GatewayServer {
    gateway: Arc<Gateway>,
    /// Names this session in the gateway's subscription book-keeping.
    session: u64,
    /// The session's own upstream connections, if any upstream is `isolation: per-session`.
    connections: Option<Arc<SessionConnections>>,
    /// The level the client set with `logging/setLevel`.
    log_level: Arc<SessionLogLevel>,
    /// What the client declared at `initialize`, once asked for.
    capabilities: OnceLock<Arc<ClientCapabilities>>,
    /// Ends the session's resource subscriptions with the session (the last clone).
    _subscriptions: Arc<SubscriberGuard>,
    /// The virtual server this endpoint serves (WebSocket and stdio fix it per session; on
    /// streamable HTTP each request carries a [`Scope`]).
    scope: Option<Arc<str>>,
    /// The lease of the credential the session was opened with (WebSocket; on streamable
    /// HTTP each request carries its own): its requests are cancelled when it ends.
    lease: Option<Lease>,
    /// Who opened the session (WebSocket; on streamable HTTP each request says).
    principal: Option<Identity>,
    /// Where the session's facts go at `notifications/initialized` for a door that serves
    /// its calls itself and is not streamable HTTP (stdio and WebSocket: `downstream/message_calls.rs`).
    facts: Option<Arc<OnceLock<Arc<SessionFacts>>>>,
}

/// The virtual server an HTTP request is for, put in its extensions by the front door:
/// named by its path (`/mcp/{name}`) or bound to its API key.
#[derive(Debug, Clone)]
pub struct Scope(pub Arc<str>);

/// Session numbers; only uniqueness matters.
static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

/// A number for a subscriber that is neither a session nor a stream (a subscription taken
/// over from another gateway).
pub(super) fn next_subscriber_number() -> u64 {
    NEXT_SESSION.fetch_add(1, Ordering::Relaxed) | 1 << 60
}

/// A number for the caller of one 2026-07-28 request: above session numbers, below
/// conversation keys, never equal to either.
pub(super) fn stateless_caller_key() -> u64 {
    NEXT_SESSION.fetch_add(1, Ordering::Relaxed) | 1 << 62
}

/// The streamable HTTP session a request belongs to (its `Mcp-Session-Id`), if any.
fn http_session_id(context: &RequestContext<RoleServer>) -> Option<&str> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-session-id"))
        .and_then(|id| id.to_str().ok())
}

impl GatewayServer {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        let session = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        Self {
            connections: gateway.session_connections(),
            _subscriptions: Arc::new(SubscriberGuard::new(gateway.clone(), session)),
            gateway,
            session,
            log_level: Arc::default(),
            capabilities: OnceLock::new(),
            scope: None,
            lease: None,
            principal: None,
            facts: None,
        }
    }

    /// The same, serving only the virtual server `scope` (when there is one).
    pub fn scoped(mut self, scope: Option<Arc<str>>) -> Self {
        self.scope = scope;
        self
    }

    /// The same, publishing the session's facts in `facts` once it is initialized.
    pub fn publishing_facts(mut self, facts: Arc<OnceLock<Arc<SessionFacts>>>) -> Self {
        self.facts = Some(facts);
        self
    }

    /// The same, for a session opened by `principal` with the credential of `lease` (when
    /// there is one).
    pub fn leased(mut self, lease: Option<Lease>, principal: Option<Identity>) -> Self {
        self.lease = lease;
        self.principal = principal;
        self
    }

    /// The session's messages go to its client from `level` up, and the upstreams are asked
    /// for what some client wants.
    fn keep_log_level(&self, level: LoggingLevel) {
        self.log_level.set(level);
        self.gateway.want_logs_at(level);
    }
}

/// Each request that reaches an upstream boxes the gateway's future: rmcp awaits the handler
/// of `initialize` inside the session's task, whose size is then that of the largest handler
/// future (a call's, tens of KB), held for the whole life of every session.
impl ServerHandler for GatewayServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_completions()
                .enable_logging()
                .enable_prompts()
                .enable_resources()
                .enable_tools()
                .enable_prompts_list_changed()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .enable_tool_list_changed()
                // Tool calls the configuration runs as tasks (see `gateway/tasks.rs`).
                .enable_tasks()
                .build(),
        )
        .with_server_info(Implementation::new("mcps", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "MCPS.ONE gateway: the tools of several MCP servers, each named {server}__{tool}.",
        )
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let cursor = request.as_ref().and_then(|params| params.cursor.as_deref());
        let page = Box::pin(
            self.gateway
                .list_tools(cursor, self.view(&context)?.as_deref()),
        )
        .await?;
        let mut result = ListToolsResult::with_all_items(page.items);
        result.next_cursor = page.next_cursor;
        result.ttl_ms = Some(page.ttl_ms);
        result.cache_scope = Some(page.cache_scope);
        Ok(result)
    }

    /// The definition rmcp checks a 2026-07-28 `tools/call`'s `Mcp-Param-*` headers against
    /// (SEP-2243: an argument whose schema has `x-mcp-header` must come with the matching
    /// header). A stateless request's virtual server is not known here, so its tools are
    /// looked up in the whole catalog; a name found nowhere is not checked.
    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        let view = self
            .scope
            .as_deref()
            .and_then(|scope| self.gateway.view(scope));
        let catalog = self.gateway.catalog_for(view.as_deref());
        catalog.route(name).map(|entry| entry.item.clone())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // A streamable HTTP session names itself in the notification's headers.
        let parts = context.extensions.get::<http::request::Parts>();
        let http_id = parts
            .and_then(|parts| parts.headers.get("mcp-session-id"))
            .and_then(|id| id.to_str().ok())
            .map(Arc::<str>::from);
        // A session waking from sleep gets back what rmcp's replay does not bring.
        if let Some(waking) = parts.and_then(|parts| parts.extensions.get::<Waking>())
            && let Some(level) = waking.log_level
        {
            self.keep_log_level(level);
        }
        let facts = SessionFacts {
            key: self.session,
            client: context
                .peer
                .peer_info()
                .map(|info| Arc::from(info.client_info.name.as_str())),
            capabilities: self.client_capabilities(&context.peer).unwrap_or_default(),
            log_level: self.log_level.clone(),
            peer: context.peer.clone(),
            connections: self.connections.as_ref().map(Arc::downgrade),
        };
        let http = match (http_id, &self.facts) {
            (Some(id), _) => Some((id, facts)),
            (None, Some(slot)) => {
                let _ = slot.set(Arc::new(facts));
                None
            }
            (None, None) => None,
        };
        self.gateway
            .register_session(self.session, context.peer, http);
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // rmcp narrows this to what `get_info` advertises: list changes of every kind.
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        self.listen_to_changes(context).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let cursor = request.as_ref().and_then(|params| params.cursor.as_deref());
        let page = Box::pin(
            self.gateway
                .list_prompts(cursor, self.view(&context)?.as_deref()),
        )
        .await?;
        let mut result = ListPromptsResult::with_all_items(page.items);
        result.next_cursor = page.next_cursor;
        result.ttl_ms = Some(page.ttl_ms);
        result.cache_scope = Some(page.cache_scope);
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let request = with_client_meta(request, &context);
        Ok(Box::pin(self.gateway.get_prompt(request, &self.origin(&context)?)).await?)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let cursor = request.as_ref().and_then(|params| params.cursor.as_deref());
        let page = Box::pin(
            self.gateway
                .list_resources(cursor, self.view(&context)?.as_deref()),
        )
        .await?;
        let mut result = ListResourcesResult::with_all_items(page.items);
        result.next_cursor = page.next_cursor;
        result.ttl_ms = Some(page.ttl_ms);
        result.cache_scope = Some(page.cache_scope);
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let cursor = request.as_ref().and_then(|params| params.cursor.as_deref());
        let view = self.view(&context)?;
        let page = Box::pin(
            self.gateway
                .list_resource_templates(cursor, view.as_deref()),
        )
        .await?;
        let mut result = ListResourceTemplatesResult::with_all_items(page.items);
        result.next_cursor = page.next_cursor;
        result.ttl_ms = Some(page.ttl_ms);
        result.cache_scope = Some(page.cache_scope);
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let request = with_client_meta(request, &context);
        Ok(Box::pin(self.gateway.read_resource(request, &self.origin(&context)?)).await?)
    }

    #[allow(
        deprecated,
        reason = "resources/subscribe is what session-era clients send"
    )]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let origin = self.origin(&context)?;
        let http_id = http_session_id(&context);
        let subscriber = self
            .gateway
            .session_subscriber(context.peer.clone(), http_id);
        let uri = request.uri.clone();
        Box::pin(
            self.gateway
                .subscribe(self.session, subscriber, request, &origin),
        )
        .await?;
        if let Some(http_id) = http_id {
            self.gateway
                .keep_subscription(http_id, &uri, self.session)
                .await;
        }
        Ok(())
    }

    #[allow(
        deprecated,
        reason = "resources/unsubscribe is what session-era clients send"
    )]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let origin = self.origin(&context)?;
        let http_id = http_session_id(&context);
        Ok(Box::pin(
            self.gateway
                .unsubscribe(self.session, http_id, request, &origin),
        )
        .await?)
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.keep_log_level(request.level);
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let request = with_client_meta(request, &context);
        Ok(Box::pin(self.gateway.complete(request, &self.origin(&context)?)).await?)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, ErrorData>> + MaybeSendFuture + '_ {
        let stateless = context
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        std::future::ready(Err(untyped_request_error(&request, stateless)))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let request = with_client_meta(request, &context);
        let origin = self.origin(&context)?;
        Ok(Box::pin(self.gateway.call_tool_or_task(request, &origin)).await?)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let origin = self.origin(&context)?;
        let task = self.gateway.get_task(&request.task_id, &origin).await?;
        Ok(GetTaskResult::new(task))
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let origin = self.origin(&context)?;
        let UpdateTaskParams {
            task_id,
            input_responses,
            ..
        } = request;
        Ok(self
            .gateway
            .update_task(&task_id, input_responses, &origin)
            .await?)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let origin = self.origin(&context)?;
        Ok(self.gateway.cancel_task(&request.task_id, &origin).await?)
    }
}
