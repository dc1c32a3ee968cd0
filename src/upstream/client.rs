//! The gateway's client side of one upstream connection: what it tells the upstream about
//! itself, what it does with the upstream's notifications, and where the upstream's requests
//! (sampling, elicitation, roots) go: to the client whose call caused them (see [`Callers`]).
#![allow(
    deprecated,
    reason = "sampling and roots are deprecated by SEP-2577, but session-era servers use them"
)]

use std::sync::Arc;

use rmcp::{
    ClientHandler, ErrorData,
    model::{
        ClientCapabilities, ClientConfig, ClientResult, CreateMessageRequest,
        CreateMessageRequestParams, CreateMessageResult, ElicitRequest, ElicitRequestParams,
        ElicitResult, ElicitationCapability, FormElicitationCapability, Implementation,
        ListRootsRequest, ListRootsResult, ProtocolVersion, ResourceUpdatedNotificationParam,
        RootsCapabilities, SamplingCapability, ServerNotification, ServerRequest,
        UrlElicitationCapability,
    },
    service::{MaybeSendFuture, NotificationContext, RequestContext, RoleClient},
};
use tokio::sync::mpsc;

use super::{
    callers::{Callers, Matched},
    list_changes::ListChanges,
};

/// Handles one upstream's notifications; a list change wakes the upstream's task to re-list.
#[derive(Clone)]
pub struct UpstreamClient {
    pub list_changes: Arc<ListChanges>,
    /// `notifications/resources/updated`, for the gateway to pass to the subscribers.
    pub resource_updates: mpsc::Sender<ResourceUpdatedNotificationParam>,
    /// Who gets the upstream's requests.
    pub callers: Arc<Callers>,
}

impl UpstreamClient {
    /// Hands the upstream's request to its caller and returns the caller's answer.
    async fn forward(
        &self,
        request: ServerRequest,
        context: RequestContext<RoleClient>,
    ) -> Result<ClientResult, ErrorData> {
        match self.callers.caller_of(&context.id)? {
            (caller, Matched::OnTheCallsStream) => caller.answer(request, context.ct).await,
            (caller, Matched::OnlyClientInFlight) => {
                caller.answer_unsure(request, context.ct).await
            }
        }
    }
}

impl UpstreamClient {
    /// Takes a notification that came on a request's stream of the gateway's own lane (see
    /// `http_lane`), which rmcp never sees: what concerns the connection, as rmcp's handler
    /// below does. Log messages and progress belong to the call, which routes them itself.
    pub fn notice(&self, notification: ServerNotification) {
        match notification {
            ServerNotification::ResourceUpdatedNotification(update) => {
                self.resource_updated(update.params);
            }
            ServerNotification::ToolListChangedNotification(_)
            | ServerNotification::PromptListChangedNotification(_)
            | ServerNotification::ResourceListChangedNotification(_) => {
                self.list_changes.heard();
            }
            _ => {}
        }
    }

    fn resource_updated(&self, update: ResourceUpdatedNotificationParam) {
        // Bounded: an upstream that floods updates loses some rather than growing our memory.
        if self.resource_updates.try_send(update).is_err() {
            tracing::debug!("resource update queue full; update dropped");
        }
    }
}

/// The gateway's answer of the wrong kind for the request it forwarded.
fn mismatched(result: &ClientResult) -> ErrorData {
    ErrorData::internal_error(format!("the client answered with {result:?}"), None)
}

/// What the gateway can do for its upstreams: whatever its clients can. Whether the client of
/// a given call can is checked when a request arrives.
pub(super) fn capabilities() -> ClientCapabilities {
    let mut capabilities = ClientCapabilities::default();
    capabilities.roots = Some(RootsCapabilities::default());
    capabilities.sampling = Some(SamplingCapability::default());
    let mut elicitation = ElicitationCapability::new();
    elicitation.form = Some(FormElicitationCapability::default());
    elicitation.url = Some(UrlElicitationCapability::default());
    capabilities.elicitation = Some(elicitation);
    capabilities
}

/// Who the gateway says it is to its upstreams.
pub(super) fn implementation() -> Implementation {
    Implementation::new("mcps", env!("CARGO_PKG_VERSION"))
}

impl ClientHandler for UpstreamClient {
    /// What `initialize` proposes: the latest session-era revision. (rmcp's default is its
    /// latest revision, 2026-07-28, which has no `initialize` at all; a 2026-07-28
    /// connection is opened with `server/discover` instead, see `offer::lifecycle`.)
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(capabilities(), implementation())
            .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        let request = ServerRequest::CreateMessageRequest(CreateMessageRequest::new(params));
        match self.forward(request, context).await? {
            ClientResult::CreateMessageResult(result) => Ok(*result),
            other => Err(mismatched(&other)),
        }
    }

    async fn create_elicitation(
        &self,
        params: ElicitRequestParams,
        context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let request = ServerRequest::ElicitRequest(ElicitRequest::new(params));
        match self.forward(request, context).await? {
            ClientResult::ElicitResult(result) => Ok(result),
            other => Err(mismatched(&other)),
        }
    }

    async fn list_roots(
        &self,
        context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        let request = ServerRequest::ListRootsRequest(ListRootsRequest::default());
        match self.forward(request, context).await? {
            ClientResult::ListRootsResult(result) => Ok(result),
            other => Err(mismatched(&other)),
        }
    }

    fn on_resource_updated(
        &self,
        update: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.resource_updated(update);
        std::future::ready(())
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        // The re-list runs on the upstream's own task: awaiting a request here would hold up
        // the connection's message loop that must deliver its response.
        self.list_changes.heard();
        std::future::ready(())
    }

    fn on_prompt_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.list_changes.heard();
        std::future::ready(())
    }

    fn on_resource_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.list_changes.heard();
        std::future::ready(())
    }
}
