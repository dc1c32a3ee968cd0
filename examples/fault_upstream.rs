//! A stdio MCP server that misbehaves on request, for the fault tests: the faults real
//! servers cannot be made to show on cue.
//!
//! `fault_upstream [--grandchild] [--slow-start MS]`
//!
//! Tools (each does what its name says when called):
//! - `ok`: answers `ok` at once.
//! - `crash`: the process exits (status 3) in the middle of the call.
//! - `hang`: never answers, and ignores cancellation.
//! - `garbage`: writes a line that is not JSON to stdout, then answers.
//! - `flood {mb}`: writes `mb` MiB (default 64) of non-JSON bytes to stdout, no newline.
//! - `huge {bytes}`: answers with a text of `bytes` bytes.
//! - `stray_answers`: writes an answer to a request never sent, then its own answer
//!   (`first answer`), then answers again (`second answer`) through rmcp.
//! - `bad_utf8`: writes its answer with bytes that are not UTF-8 in its text, then never
//!   answers again.
//! - `broken_answer`: writes the first half of its answer as a line, then never answers again.
//! - `list_fails_once`: says its tool list changed (`notifications/tools/list_changed`); the
//!   next `tools/list` fails, and every one after it lists one tool more, `added`.
//!
//! `--grandchild` starts a process of its own that ignores SIGTERM and lives an hour (only a
//! SIGKILL of the process group ends it); `--slow-start MS` waits before it serves. At start it
//! writes `fault upstream <pid> starting` to stderr.

use std::{
    io::Write,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
        ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};
use serde_json::json;

const TOOLS: &[(&str, &str)] = &[
    ("ok", "answers at once"),
    ("crash", "exits the process mid-call"),
    ("hang", "never answers"),
    ("garbage", "writes a non-JSON line to stdout, then answers"),
    ("flood", "writes `mb` MiB of non-JSON bytes to stdout"),
    ("huge", "answers with `bytes` bytes of text"),
    (
        "stray_answers",
        "answers a request never sent, then this one twice",
    ),
    ("bad_utf8", "answers with bytes that are not UTF-8"),
    ("broken_answer", "writes half an answer"),
    (
        "list_fails_once",
        "changes the tool list; the next tools/list fails",
    ),
];

/// Where `tools/list` stands: as built (0, until `list_fails_once`), failing next, or listing
/// `added` too.
const NEXT_LIST_FAILS: u8 = 1;
const LISTS_ADDED: u8 = 2;

#[derive(Clone, Default)]
struct Faults {
    listing: Arc<AtomicU8>,
}

impl ServerHandler for Faults {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("fault-upstream", "1.0.0"))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({"type": "object", "additionalProperties": true});
        let serde_json::Value::Object(schema) = schema else {
            unreachable!("literal object")
        };
        let schema = Arc::new(schema);
        let mut tools: Vec<Tool> = TOOLS
            .iter()
            .map(|(name, description)| Tool::new(*name, *description, schema.clone()))
            .collect();
        match self.listing.compare_exchange(
            NEXT_LIST_FAILS,
            LISTS_ADDED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        ) {
            Ok(_) => return Err(ErrorData::internal_error("this listing fails once", None)),
            Err(LISTS_ADDED) => tools.push(Tool::new("added", "added by list_fails_once", schema)),
            Err(_) => {}
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let number = |key: &str, default: u64| {
            arguments
                .get(key)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(default)
        };
        let text = match request.name.as_ref() {
            "ok" => "ok".to_owned(),
            "crash" => std::process::exit(3),
            "hang" => std::future::pending().await,
            "garbage" => {
                raw_stdout(b"this is not JSON-RPC\n");
                "after garbage".to_owned()
            }
            "flood" => {
                let chunk = vec![b'x'; 1024 * 1024];
                for _ in 0..number("mb", 64) {
                    raw_stdout(&chunk);
                }
                "after the flood".to_owned()
            }
            "huge" => "y".repeat(number("bytes", 1024 * 1024) as usize),
            "stray_answers" => {
                let answer = |id: serde_json::Value, text: &str| {
                    let result = CallToolResult::success(vec![ContentBlock::text(text)]);
                    let line = json!({"jsonrpc": "2.0", "id": id, "result": result});
                    raw_stdout(format!("{line}\n").as_bytes());
                };
                answer(json!("no-such-request"), "stray");
                answer(json!(context.id), "first answer");
                "second answer".to_owned()
            }
            "bad_utf8" => {
                let id = json!(context.id);
                let mut line = format!(
                    r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"caf"#
                )
                .into_bytes();
                // Latin-1 `é`, which is not UTF-8.
                line.extend_from_slice(b"\xe9\"}]}}\n");
                raw_stdout(&line);
                std::future::pending().await
            }
            "list_fails_once" => {
                self.listing.store(NEXT_LIST_FAILS, Ordering::SeqCst);
                let _ = context.peer.notify_tool_list_changed().await;
                "the tool list changed".to_owned()
            }
            "broken_answer" => {
                let id = json!(context.id);
                raw_stdout(
                    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":["#).as_bytes(),
                );
                raw_stdout(b"\n");
                std::future::pending().await
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("Unknown tool: {other}"),
                    None,
                ));
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// Writes straight to stdout, past the MCP transport.
fn raw_stdout(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(bytes);
    let _ = stdout.flush();
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--grandchild" => {
                // Inherits our process group (and environment), so only the group's SIGKILL
                // reaches it.
                Command::new("sh")
                    .args(["-c", "trap '' TERM; exec sleep 3600"])
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .spawn()?;
            }
            "--slow-start" => {
                let millis: u64 = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--slow-start needs milliseconds"))?
                    .parse()?;
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    eprintln!("fault upstream {} starting", std::process::id());
    let running = Faults::default().serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
