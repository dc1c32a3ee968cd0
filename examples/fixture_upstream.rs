//! A stdio MCP server for tests, offering whatever tool names it is given — including names
//! real servers never use (spaces, dots, 100 characters) — so naming and routing can be
//! tested end to end.
//!
//! `fixture_upstream --tool NAME [--tool NAME ...] [--label TEXT] [--stderr-line BYTES] [--dynamic]
//! [--sleep]`
//!
//! With `--sleep` it also offers `sleep {ms, tag}`, which takes `ms` milliseconds and answers
//! with `most_at_once` (how many sleeps this process ever ran at the same time) besides the
//! usual facts; when the call is cancelled, it writes
//! `fixture upstream <label>: sleep <tag> cancelled` to stderr
//! (so a test can see a cancellation reach the upstream in the gateway's log).
//!
//! With `--dynamic` it also offers `add_tool {name}`, which adds a tool at run time (or, for a
//! name it has, changes that tool's description) and
//! announces it: `notifications/tools/list_changed` on a session-era connection, and on every
//! `subscriptions/listen` stream of a 2026-07-28 one; and `end_listens`, which ends the
//! `subscriptions/listen` streams open now (as a server restarting its streams would).
//!
//! At start it writes `fixture upstream <label> starting` to stderr, then, with
//! `--stderr-line`, one stderr line of that many `x`s (to test the log's line cap).
//!
//! Every tool answers with text `"<label>:<tool>:<arguments as JSON>"` and the same facts as
//! `structuredContent`, so a test can tell which upstream and which tool served a call. A
//! tool named `fail` answers the same way but as a tool error (`isError: true`).

use std::sync::{
    Arc, RwLock,
    atomic::{AtomicUsize, Ordering},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
        SubscriptionFilter, Tool,
    },
    service::{RequestContext, SubscriptionContext},
};
use serde_json::json;
use tokio::sync::watch;

#[derive(Clone)]
struct Fixture {
    label: String,
    tools: Arc<RwLock<Vec<Tool>>>,
    /// Bumped when `add_tool` adds one; `subscriptions/listen` streams wait on it.
    added: watch::Sender<u64>,
    /// Bumped by `end_listens`: the `subscriptions/listen` streams open then end.
    ended: watch::Sender<u64>,
}

fn open_tool(name: &str, description: &'static str) -> Tool {
    let schema = json!({"type": "object", "additionalProperties": true});
    let serde_json::Value::Object(schema) = schema else {
        unreachable!("literal object")
    };
    Tool::new(name.to_owned(), description, Arc::new(schema))
}

impl Fixture {
    fn tools(&self) -> Vec<Tool> {
        self.tools.read().expect("tools lock").clone()
    }

    async fn add_tool(
        &self,
        arguments: &serde_json::Value,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(name) = arguments["name"].as_str() else {
            return Err(ErrorData::invalid_params("add_tool needs a `name`", None));
        };
        {
            let added = open_tool(name, "added at run time");
            let mut tools = self.tools.write().expect("tools lock");
            // A name it has already is a change of that tool's definition.
            match tools.iter_mut().find(|tool| tool.name == name) {
                Some(tool) => *tool = added,
                None => tools.push(added),
            }
        }
        self.added.send_modify(|count| *count += 1);
        let legacy = context
            .protocol_version()
            .is_some_and(|version| version.as_str() < ProtocolVersion::V_2026_07_28.as_str());
        if legacy {
            let _ = context.peer.notify_tool_list_changed().await;
        }
        Ok(CallToolResult::success(vec![ContentBlock::text(format!("added {name}"))]).into())
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("fixture-upstream", "0"))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut added = self.added.subscribe();
        let mut ended = self.ended.subscribe();
        loop {
            tokio::select! {
                changed = added.changed() => {
                    if changed.is_err() || context.sink().notify_tool_list_changed().await.is_err() {
                        return Ok(());
                    }
                }
                _ = ended.changed() => return Ok(()),
                () = context.cancelled() => return Ok(()),
            }
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // Tests read this (the gateway copies our stderr into its log) to tell which calls
        // reached an upstream at all.
        eprintln!("fixture upstream {}: call {}", self.label, request.name);
        if !self.tools().iter().any(|tool| tool.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        if request.name == "add_tool" {
            return self.add_tool(&arguments, &context).await;
        }
        if request.name == "end_listens" {
            self.ended.send_modify(|count| *count += 1);
            let text = "ended the subscriptions/listen streams";
            return Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into());
        }
        // `--tool sleep_<anything>` adds another sleeping tool (for per-tool settings).
        let sleeps = request.name.starts_with("sleep");
        if sleeps {
            let millis = arguments["ms"].as_u64().unwrap_or(10_000);
            let tag = arguments["tag"].as_str().unwrap_or("").to_owned();
            let now = SLEEPING.fetch_add(1, Ordering::SeqCst) + 1;
            MOST_AT_ONCE.fetch_max(now, Ordering::SeqCst);
            let _awake = Awake;
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_millis(millis)) => {}
                () = context.ct.cancelled() => {
                    eprintln!("fixture upstream {}: sleep {tag} cancelled", self.label);
                    return Err(ErrorData::internal_error("cancelled", None));
                }
            }
        }
        let text = format!("{}:{}:{arguments}", self.label, request.name);
        let mut result = if request.name == "fail" {
            CallToolResult::error(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::success(vec![ContentBlock::text(text)])
        };
        result.structured_content = Some(json!({
            "label": self.label,
            "tool": request.name,
            "arguments": arguments,
        }));
        if sleeps && let Some(content) = result.structured_content.as_mut() {
            content["most_at_once"] = json!(MOST_AT_ONCE.load(Ordering::SeqCst));
        }
        Ok(result.into())
    }
}

/// Sleeps running now, and the most ever at once.
static SLEEPING: AtomicUsize = AtomicUsize::new(0);
static MOST_AT_ONCE: AtomicUsize = AtomicUsize::new(0);

/// Counts a sleep as over when dropped (finished or cancelled).
struct Awake;

impl Drop for Awake {
    fn drop(&mut self) {
        SLEEPING.fetch_sub(1, Ordering::SeqCst);
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
                tools.push(open_tool(&name, "a fixture tool"));
            }
            "--dynamic" => {
                tools.push(open_tool("add_tool", "adds a tool named `name`"));
                tools.push(open_tool(
                    "end_listens",
                    "ends the subscriptions/listen streams open now",
                ));
            }
            "--sleep" => tools.push(open_tool(
                "sleep",
                "sleeps `ms` milliseconds; logs `sleep <tag> cancelled` if cancelled",
            )),
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
        tools: Arc::new(RwLock::new(tools)),
        added: watch::channel(0).0,
        ended: watch::channel(0).0,
    };
    server
        .serve(rmcp::transport::stdio())
        .await?
        .waiting()
        .await?;
    Ok(())
}
