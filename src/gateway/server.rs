//! The MCP server every downstream transport serves: an rmcp `ServerHandler` over the gateway.
//!
//! rmcp does the protocol work for both eras: the `initialize` handshake or `server/discover`,
//! per-request `_meta` validation, and shaping results for the client's revision (it strips
//! `resultType` for session-era clients and fills cache hints for 2026-07-28 ones). This handler
//! only answers from the catalog and routes calls.

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
        PaginatedRequestParams, ServerCapabilities, ServerConfig,
    },
    service::{MaybeSendFuture, RequestContext},
};

use super::Gateway;

/// One downstream session's (or stateless request's) view of the gateway. Cheap to create:
/// the HTTP transport makes one per session.
#[derive(Clone)]
pub struct GatewayServer {
    gateway: Arc<Gateway>,
}

impl GatewayServer {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        Self { gateway }
    }
}

impl ServerHandler for GatewayServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mcps", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "MCPS.ONE gateway: the tools of several MCP servers, each named {server}__{tool}.",
            )
    }

    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, ErrorData>> + MaybeSendFuture + '_ {
        async move {
            let cursor = request.as_ref().and_then(|params| params.cursor.as_deref());
            let (tools, next_cursor) = self.gateway.list_tools(cursor).await?;
            let mut result = ListToolsResult::with_all_items(tools);
            result.next_cursor = next_cursor;
            Ok(result)
        }
    }

    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, ErrorData>> + MaybeSendFuture + '_ {
        async move {
            let name = request.name.clone();
            let started = std::time::Instant::now();
            let outcome = self.gateway.call_tool(request, &context.ct).await;
            match &outcome {
                Ok(_) => tracing::debug!(tool = %name, elapsed = ?started.elapsed(), "call done"),
                Err(error) => {
                    tracing::info!(tool = %name, upstream = error.upstream(), %error, "call failed")
                }
            }
            Ok(outcome?)
        }
    }
}
