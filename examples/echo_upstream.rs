//! The benchmark's upstream: an rmcp server with one `echo` tool that answers at once, over
//! stdio (default) or streamable HTTP (`--http PORT`, both protocol eras), so a benchmark
//! measures the path to it, not the tool. With `--http`, it prints
//! `listening on http://127.0.0.1:PORT/mcp` once it accepts connections. With
//! `--header-argument`, its tool marks `message` to go in a header too (SEP-2243's
//! `x-mcp-header`), which a 2026-07-28 client then sends in `Mcp-Param-Message`.

#[path = "shared/serve_http.rs"]
mod serve_http;

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
    transport::StreamableHttpServerConfig,
};
use serde_json::json;

#[derive(Clone)]
struct Echo {
    tools: Arc<[Tool]>,
}

impl Echo {
    fn new(header_argument: bool) -> Self {
        let message = if header_argument {
            json!({"type": "string", "x-mcp-header": "Message"})
        } else {
            json!({"type": "string"})
        };
        let schema = json!({"type": "object", "properties": {"message": message}});
        let serde_json::Value::Object(schema) = schema else {
            unreachable!("literal object")
        };
        let tool = Tool::new("echo", "Returns its `message`", Arc::new(schema));
        Self {
            tools: Arc::from([tool]),
        }
    }
}

impl ServerHandler for Echo {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("echo-upstream", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let message = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("message"))
            .and_then(|message| message.as_str())
            .unwrap_or_default()
            .to_owned();
        Ok(CallToolResult::success(vec![ContentBlock::text(message)]).into())
    }
}

// One thread, like the gateway by default, so their CPU per call compares like for like.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let header_argument = std::env::args().any(|arg| arg == "--header-argument");
    let port = std::env::args()
        .skip_while(|arg| arg != "--http")
        .nth(1)
        .map(|port| port.parse::<u16>())
        .transpose()?;
    let Some(port) = port else {
        let running = Echo::new(header_argument)
            .serve(rmcp::transport::stdio())
            .await?;
        running.waiting().await?;
        return Ok(());
    };
    // Plain JSON answers to 2026-07-28 requests, as the gateway gives: the fastest upstream
    // rmcp makes, so the direct figures are the best there are.
    let config = |_| StreamableHttpServerConfig::default().with_json_response(true);
    serve_http::serve(port, config, move || Echo::new(header_argument)).await?;
    Ok(())
}
