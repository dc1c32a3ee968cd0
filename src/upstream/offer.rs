//! Opening a connection and listing what an upstream offers.

use std::{sync::Arc, time::Instant};

use rmcp::{
    ClientCacheConfig, ClientLifecycleMode, ClientServiceExt, Peer, RoleClient,
    model::{Prompt, ProtocolVersion, Resource, ResourceTemplate, ServerNotification, Tool},
    service::{ClientInitializeError, MergedList, Subscription},
};

use super::{
    Connection, Phase, UpstreamState,
    call::UpstreamLane,
    client::UpstreamClient,
    freshness::{Hint, ListHints},
};
use crate::{config::ProtocolMode, error::with_causes, mcp_headers::arguments};

/// Resolves `true` on the next list change of a subscription, `false` when it ended;
/// never resolves without one.
pub(super) async fn next_list_change(subscription: &mut Option<Subscription>) -> bool {
    let Some(subscription) = subscription else {
        return std::future::pending().await;
    };
    loop {
        match subscription.next().await {
            Ok(Some(
                ServerNotification::ToolListChangedNotification(_)
                | ServerNotification::PromptListChangedNotification(_)
                | ServerNotification::ResourceListChangedNotification(_),
            )) => return true,
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return false,
        }
    }
}

/// Everything an upstream offers, as fetched in one go, with the hints of each list.
pub(super) struct Offer {
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    pub hints: ListHints,
}

impl Offer {
    /// Lists (all pages of) what the upstream's capabilities say it has.
    pub(super) async fn fetch(peer: &Peer<RoleClient>) -> Result<Self, String> {
        // The gateway keeps the caches (the catalog, and `resources/read` by principal):
        // rmcp's own, one per connection and blind to principals, would answer a re-list of
        // stale lists from itself.
        peer.set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        let capabilities = peer.peer_info().map(|info| info.capabilities.clone());
        // A server that skipped the handshake (no info) is asked for tools only.
        let (tools, prompts, resources) = capabilities.as_ref().map_or((true, false, false), |c| {
            (
                c.tools.is_some(),
                c.prompts.is_some(),
                c.resources.is_some(),
            )
        });
        fn failed(what: &'static str) -> impl Fn(rmcp::ServiceError) -> String {
            move |error| format!("{what} failed: {}", with_causes(&error))
        }
        let mut hints = ListHints {
            fetched: Instant::now(),
            ..ListHints::default()
        };
        fn offer<T>(list: MergedList<T>, slot: &mut Option<Hint>) -> Vec<T> {
            *slot = Some(Hint::of(list.ttl_ms, list.cache_scope));
            list.items
        }
        let tools = if tools {
            let list = peer.list_all_tools_with_cache_hint().await;
            offer(list.map_err(failed("tools/list"))?, &mut hints.tools)
        } else {
            Vec::new()
        };
        let prompts = if prompts {
            let list = peer.list_all_prompts_with_cache_hint().await;
            offer(list.map_err(failed("prompts/list"))?, &mut hints.prompts)
        } else {
            Vec::new()
        };
        let (resources, templates) = if resources {
            let list = peer.list_all_resources_with_cache_hint().await;
            let resources = offer(
                list.map_err(failed("resources/list"))?,
                &mut hints.resources,
            );
            let list = peer.list_all_resource_templates_with_cache_hint().await;
            let list = list.map_err(failed("resources/templates/list"))?;
            (resources, offer(list, &mut hints.templates))
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Self {
            tools,
            prompts,
            resources,
            templates,
            hints,
        })
    }

    /// Whether its lists are those of `state`.
    pub(super) fn lists_as(&self, state: &UpstreamState) -> bool {
        *self.tools == *state.tools
            && *self.prompts == *state.prompts
            && *self.resources == *state.resources
            && *self.templates == *state.templates
    }

    pub(super) fn into_state(
        self,
        peer: Peer<RoleClient>,
        protocol_version: Option<ProtocolVersion>,
        lane: Option<UpstreamLane>,
    ) -> UpstreamState {
        UpstreamState {
            generation: 0,
            phase: Phase::Ready,
            peer: Some(peer),
            marking_tools: self
                .tools
                .iter()
                .enumerate()
                .filter(|(_, tool)| arguments::declared(&tool.input_schema))
                .map(|(at, _)| at)
                .collect(),
            tools: Arc::from(self.tools),
            prompts: Arc::from(self.prompts),
            resources: Arc::from(self.resources),
            templates: Arc::from(self.templates),
            protocol_version,
            lane,
        }
    }
}

/// How a connection is opened: `legacy` with `initialize` alone, proposing the latest
/// session-era revision; `modern` with `server/discover` alone, for 2026-07-28; `auto` with
/// `server/discover`, falling back to that `initialize` when the server does not know it.
pub(super) fn lifecycle(mode: ProtocolMode) -> ClientLifecycleMode {
    let modern = vec![ProtocolVersion::V_2026_07_28];
    match mode {
        ProtocolMode::Auto => ClientLifecycleMode::Auto {
            preferred_versions: modern,
            legacy_version: Some(ProtocolVersion::LATEST_WITH_INITIALIZE),
        },
        ProtocolMode::Legacy => ClientLifecycleMode::Initialize,
        ProtocolMode::Modern => ClientLifecycleMode::Discover {
            preferred_versions: modern,
        },
    }
}

/// How a handshake's failure begins when the server answered `initialize` with an error: a
/// server of 2026-07-28 alone (see [`refused_initialize`]).
const INITIALIZE_REFUSED: &str = "handshake failed: it refused initialize";

/// Whether a handshake failed because the server refused `initialize` with an error.
pub(super) fn refused_initialize(reason: &str) -> bool {
    reason.starts_with(INITIALIZE_REFUSED)
}

/// The MCP handshake and the first full listing.
pub(super) async fn handshake<T, E, A>(
    handler: UpstreamClient,
    transport: T,
    lifecycle: ClientLifecycleMode,
) -> Result<(Connection, Offer), String>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let initialize_only = matches!(lifecycle, ClientLifecycleMode::Initialize);
    let connection = opened(handler, transport, lifecycle)
        .await
        .map_err(|error| match error {
            ClientInitializeError::JsonRpcError(error) if initialize_only => {
                format!("{INITIALIZE_REFUSED}: {}", error.message)
            }
            error => handshake_failed(&error),
        })?;
    let offer = Offer::fetch(connection.peer()).await?;
    Ok((connection, offer))
}

/// [`handshake`] in `mode`, over a transport from `open` (one per attempt). Under `auto`, a
/// server that answers `server/discover` with a result that is no discovery (a session-era
/// server that answers a method it does not know with `{}`, as the conformance suite's mock
/// servers do) is tried again with `initialize` alone, on a fresh transport: rmcp's `auto`
/// falls back only when discovery fails with an error. The TypeScript SDK likewise falls
/// back unless the answer is definitely of 2026-07-28.
pub(super) async fn handshake_tolerant<T, E, A>(
    handler: UpstreamClient,
    open: impl Fn() -> Result<T, String>,
    mode: ProtocolMode,
) -> Result<(Connection, Offer), String>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    match opened(handler.clone(), open()?, lifecycle(mode)).await {
        Ok(connection) => {
            let offer = Offer::fetch(connection.peer()).await?;
            Ok((connection, offer))
        }
        Err(ClientInitializeError::ExpectedInitResult(Some(answer)))
            if mode == ProtocolMode::Auto =>
        {
            tracing::debug!(
                ?answer,
                "server/discover answered with no discovery; trying initialize"
            );
            handshake(handler, open()?, lifecycle(ProtocolMode::Legacy)).await
        }
        Err(error) => Err(handshake_failed(&error)),
    }
}

/// Why a handshake failed, by its causes.
fn handshake_failed(error: &ClientInitializeError) -> String {
    format!("handshake failed: {}", failure(error))
}

/// What went wrong, in words: rmcp's transport error names the transport's Rust type and
/// keeps the cause (`dns error`, `Connection refused`) out of its text, and under `auto` its
/// error for a server that refused both `server/discover` and `initialize` keeps both reasons
/// out of its text (a proxy's 407, a 401). The causes are the point.
fn failure(error: &ClientInitializeError) -> String {
    match error {
        ClientInitializeError::TransportError { error, context } => {
            format!("cannot {context}: {}", with_causes(error))
        }
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => format!(
            "server/discover and then initialize failed: {}; {}",
            failure(discover),
            failure(fallback)
        ),
        error => with_causes(error),
    }
}

async fn opened<T, E, A>(
    handler: UpstreamClient,
    transport: T,
    lifecycle: ClientLifecycleMode,
) -> Result<Connection, ClientInitializeError>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    handler.serve_with_lifecycle(transport, lifecycle).await
}
