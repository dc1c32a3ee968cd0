//! A stdio MCP server for tests, offering whatever tool names it is given — including names
//! real servers never use (spaces, dots, 100 characters) — so naming and routing can be
//! tested end to end.
//!
//! `fixture_upstream --tool NAME [--tool NAME ...] [--label TEXT] [--stderr-line BYTES]`
//!
//! At start it writes `fixture upstream <label> starting` to stderr, then, with
//! `--stderr-line`, one stderr line of that many `x`s (to test the log's line cap).
//!
//! Every tool answers with text `"<label>:<tool>:<arguments as JSON>"` and the same facts as
//! `structuredContent`, so a test can tell which upstream and which tool served a call.

use std::sync::Arc;

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::json;

#[derive(Clone)]
struct Fixture {
    label: String,
    tools: Arc<Vec<Tool>>,
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("fixture-upstream", "0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools.as_ref().clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !self.tools.iter().any(|tool| tool.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let text = format!("{}:{}:{arguments}", self.label, request.name);
        let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
        result.structured_content = Some(json!({
            "label": self.label,
            "tool": request.name,
            "arguments": arguments,
        }));
        Ok(result.into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut label = "fixture".to_owned();
    let mut stderr_line = 0usize;
    let mut tools = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tool" => {
                let name = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--tool needs a name"))?;
                let schema = json!({"type": "object", "additionalProperties": true});
                let serde_json::Value::Object(schema) = schema else {
                    unreachable!("literal object")
                };
                tools.push(Tool::new(name, "a fixture tool", Arc::new(schema)));
            }
            "--label" => {
                label = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--label needs text"))?;
            }
            "--stderr-line" => {
                stderr_line = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--stderr-line needs a size"))?
                    .parse()?;
            }
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    eprintln!("fixture upstream {label} starting");
    if stderr_line > 0 {
        eprintln!("{}", "x".repeat(stderr_line));
    }
    let server = Fixture {
        label,
        tools: Arc::new(tools),
    };
    server
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}
