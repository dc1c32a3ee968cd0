//! Tool overrides (issue 20) on the reference server's real tools, through every door: the
//! 2026-07-28 `/mcp`, `/ws`, `mcps stdio` and the REST surface, for an upstream's `tools:` and
//! a virtual server's, and for a service registered through the API. Each kind shows: a new
//! name, title, description and annotations; a pinned argument (gone from the schema, and
//! sent whatever the client says); a default (shown in the schema, filled in when left out).
//! `mcps check` reports an override that matches nothing.

use crate::common;

use std::io::{BufRead, BufReader, Write};

use common::{
    api::{Api, admin_env},
    everything_command,
    http::{modern_post, modern_tool_call},
    mcps_bin,
    process::{ConfigDir, ServeProcess, run_mcps},
};
use serde_json::{Value, json};

const PINNED: &str = "pinned by the gateway";

fn config() -> String {
    let (node, everything) = everything_command();
    format!(
        r#"security:
  spawn_allowlist: [{node:?}]
virtual_servers:
  shaped:
    upstreams: [everything]
    tools:
      everything__get-sum: {{name: add_five, defaults: {{b: 5}}, annotations: {{idempotentHint: true}}}}
upstreams:
  everything:
    command: {node:?}
    args: [{everything:?}]
    startup_timeout_secs: 60
    tools:
      echo:
        name: say
        title: Say it
        description: Says the fixed message back
        annotations: {{readOnlyHint: true}}
        arguments: {{message: {PINNED:?}}}
      get-sum:
        defaults: {{b: 10}}
      nothing-like-it: {{title: Nothing}}
"#
    )
}

/// A JSON-RPC answer's result, or the whole answer when it has none (an error), so that an
/// assertion on it shows what came instead.
fn result_or_whole(message: Value) -> Value {
    match message.get("result") {
        Some(result) => result.clone(),
        None => message,
    }
}

/// Asks something of a door: its `tools/list` tools, or a `tools/call` result.
trait Door {
    async fn tools(&mut self) -> Value;
    async fn call(&mut self, name: &str, arguments: Value) -> Value;
}

/// The 2026-07-28 `/mcp` (or a virtual server's), request by request.
struct Modern(String);

impl Door for Modern {
    async fn tools(&mut self) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {}}}});
        let reply: Value = modern_post(&self.0, "tools/list", None)
            .body(body.to_string())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["result"]["tools"].clone()
    }
    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        result_or_whole(modern_tool_call(&self.0, name, json!({ "arguments": arguments })).await)
    }
}

/// A session-era WebSocket.
struct Socket(common::ws::Socket, u64);

impl Door for Socket {
    async fn tools(&mut self) -> Value {
        self.1 += 1;
        common::ws::request(&mut self.0, self.1, "tools/list", json!({})).await["result"]["tools"]
            .clone()
    }
    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.1 += 1;
        let params = json!({"name": name, "arguments": arguments});
        result_or_whole(common::ws::request(&mut self.0, self.1, "tools/call", params).await)
    }
}

/// `mcps stdio`, as a client config launches it.
struct Stdio {
    child: std::process::Child,
    stdout: BufReader<std::process::ChildStdout>,
    id: u64,
}

impl Stdio {
    fn start(config: &ConfigDir, server: Option<&str>) -> Self {
        let mut command = std::process::Command::new(mcps_bin());
        command.arg("stdio");
        if let Some(server) = server {
            command.args(["--server", server]);
        }
        let mut child = command
            .arg("-c")
            .arg(config.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut stdio = Self {
            child,
            stdout,
            id: 0,
        };
        stdio.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "stdio", "version": "0"}}),
        );
        stdio.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        stdio
    }

    fn send(&mut self, message: Value) {
        writeln!(self.child.stdin.as_mut().unwrap(), "{message}").unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "stdout closed"
            );
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return result_or_whole(message);
            }
        }
    }
}

impl Drop for Stdio {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Door for Stdio {
    async fn tools(&mut self) -> Value {
        self.request("tools/list", json!({}))["tools"].clone()
    }
    async fn call(&mut self, name: &str, arguments: Value) -> Value {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }
}

fn tool<'a>(tools: &'a Value, name: &str) -> &'a Value {
    tools
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {tools}"))
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// What every door of the whole gateway must show and do.
async fn the_upstreams_overrides_hold(door: &mut impl Door, through: &str) {
    let tools = door.tools().await;
    assert!(
        !tools
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "everything__echo"),
        "{through}: the old name is gone: {tools}"
    );
    let say = tool(&tools, "everything__say");
    assert_eq!(say["title"], "Say it", "{through}");
    assert_eq!(
        say["description"], "Says the fixed message back",
        "{through}"
    );
    assert_eq!(say["annotations"]["readOnlyHint"], true, "{through}");
    assert!(
        say["inputSchema"]["properties"].get("message").is_none(),
        "{through}: {say}"
    );
    let sum = tool(&tools, "everything__get-sum");
    assert_eq!(
        sum["inputSchema"]["properties"]["b"]["default"], 10,
        "{through}"
    );
    assert_eq!(sum["inputSchema"]["required"], json!(["a"]), "{through}");

    let said = door
        .call("everything__say", json!({"message": "the client's own"}))
        .await;
    assert!(
        text(&said).contains(PINNED) && !text(&said).contains("client's own"),
        "{through}: {said}"
    );
    let filled = door.call("everything__get-sum", json!({"a": 1})).await;
    assert!(text(&filled).contains("11"), "{through}: {filled}");
    let given = door
        .call("everything__get-sum", json!({"a": 1, "b": 2}))
        .await;
    assert!(
        text(&given).contains('3') && !text(&given).contains("11"),
        "{through}: {given}"
    );
}

/// What every door of the virtual server `shaped` must show and do.
async fn the_virtual_servers_overrides_hold(door: &mut impl Door, through: &str) {
    let tools = door.tools().await;
    let add = tool(&tools, "add_five");
    assert_eq!(add["annotations"]["idempotentHint"], true, "{through}");
    assert_eq!(
        add["inputSchema"]["properties"]["b"]["default"], 5,
        "{through}"
    );
    // The whole answer goes in the message: an error has no text to show.
    let answer = door.call("add_five", json!({"a": 1})).await;
    assert!(text(&answer).contains('6'), "{through}: {answer}");
    let said = door
        .call("everything__say", json!({"message": "mine"}))
        .await;
    assert!(text(&said).contains(PINNED), "{through}: {said}");
}

#[tokio::test]
async fn overrides_shape_tools_and_their_calls_through_every_door() {
    let gateway = ServeProcess::start_in(ConfigDir::new(&config()), &admin_env());
    let mcp = gateway.mcp_url();
    the_upstreams_overrides_hold(&mut Modern(mcp.clone()), "/mcp").await;
    the_virtual_servers_overrides_hold(&mut Modern(format!("{mcp}/shaped")), "/mcp/shaped").await;
    let socket = common::ws::open_initialized(&gateway.ws_url("/ws")).await;
    the_upstreams_overrides_hold(&mut Socket(socket, 10), "/ws").await;
    let socket = common::ws::open_initialized(&gateway.ws_url("/ws/shaped")).await;
    the_virtual_servers_overrides_hold(&mut Socket(socket, 10), "/ws/shaped").await;
    let config = ConfigDir::new(&config());
    the_upstreams_overrides_hold(&mut Stdio::start(&config, None), "stdio").await;
    the_virtual_servers_overrides_hold(
        &mut Stdio::start(&config, Some("shaped")),
        "stdio --server",
    )
    .await;

    // REST: the catalog and a call, pinned argument included.
    let api = Api::logged_in(&gateway).await;
    let listed = api.get("/api/v1/tools").await.body;
    let say = tool(&listed, "everything__say");
    assert_eq!(say["description"], "Says the fixed message back");
    assert!(
        say["input_schema"]["properties"].get("message").is_none(),
        "{say}"
    );
    let called = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "everything__say", "arguments": {"message": "rest's own"}}),
        )
        .await;
    assert!(text(&called.body).contains(PINNED), "{called:?}");

    // A service registered through the API takes overrides too.
    let (node, everything) = everything_command();
    let registered = api
        .post(
            "/api/v1/mcp/services",
            json!({"name": "more", "command": node, "args": [everything],
                   "tools": {"echo": {"arguments": {"message": "pinned by the API"}}}}),
        )
        .await;
    assert_eq!(registered.status, 201, "{registered:?}");
    api.wait_for_state("more", "ready").await;
    let called = api
        .post(
            "/api/v1/tools/call",
            json!({"tool_name": "more__echo", "arguments": {"message": "ignored"}}),
        )
        .await;
    assert!(
        text(&called.body).contains("pinned by the API"),
        "{called:?}"
    );

    // The override that matches nothing is in the log, once.
    gateway
        .wait_for_log("upstreams.everything.tools.nothing-like-it: everything has no tool")
        .await;
}

#[test]
fn check_reports_an_override_that_matches_nothing_and_bad_ones_are_refused() {
    let dir = ConfigDir::new(&config());
    let (status, stdout, _) = run_mcps(&dir.path(), &["check", "--local"]);
    assert!(!status.success(), "{stdout}");
    assert!(
        stdout.contains("OVERRIDE upstreams.everything.tools.nothing-like-it: everything has no tool \"nothing-like-it\""),
        "{stdout}"
    );
    for (rule, said) in [
        (
            "{name: \"two words\"}",
            "upstreams.everything.tools.echo.name",
        ),
        (
            "{arguments: {message: a}, defaults: {message: b}}",
            "upstreams.everything.tools.echo.defaults.message",
        ),
        (
            "{annotations: {readOnlyHint: perhaps}}",
            "upstreams.everything.tools.echo.annotations",
        ),
        ("{colour: red}", "unknown field `colour`"),
    ] {
        let (node, everything) = everything_command();
        let yaml = format!(
            "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    tools:\n      echo: {rule}\n"
        );
        let dir = ConfigDir::new(&yaml);
        let (status, stdout, stderr) = run_mcps(&dir.path(), &["check", "--local"]);
        assert_eq!(status.code(), Some(2), "{rule}: {stdout}{stderr}");
        assert!(stderr.contains(said), "{rule}: {stderr}");
    }
}
