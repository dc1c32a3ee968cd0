//! A plain `tools/call` over `mcps stdio` takes the gateway's own way too
//! (`downstream/message_calls.rs`): the reader hands it to the router before rmcp parses it,
//! and the answer is written to stdout as a line. What the client gets is what rmcp's way
//! gives it (checked against a call whose `_meta` holds a key of the protocol's own this way
//! does not read, which goes rmcp's way); an SDK server's progress, elicitation request and log
//! messages reach the client as lines before the answer, and the client's answer reaches the
//! tool; a call the client cancels is cancelled upstream.

use crate::common;

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    fixture_upstream_yaml,
    fixtures::{HttpFixture, Implementation, stdio_upstream_yaml},
    mcps_bin,
    process::ConfigDir,
};
use serde_json::{Value, json};

use crate::tool_call_lane::meta as modern_meta;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    sync::mpsc,
};

/// `mcps stdio` with debug logs: each call's "call done" line says which way it went.
struct StdioGateway {
    _child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    log: Arc<Mutex<String>>,
    _config: ConfigDir,
}

impl StdioGateway {
    /// Starts it on `yaml` and opens the session, declaring `capabilities`.
    async fn start(yaml: &str, capabilities: Value) -> Self {
        let mut gateway = Self::spawn(yaml);
        gateway
            .send(
                json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": capabilities,
                "clientInfo": {"name": "stdio-test", "version": "0"}}}),
            )
            .await;
        let init = gateway.answer_to("init").await;
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        gateway
            .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        // The session is initialized for the door once rmcp has handled that notification,
        // and the upstreams are in the catalog once they started: `tools/list` answers after
        // both.
        let tools = gateway.listed(json!({})).await;
        assert!(!tools.is_empty(), "no tools listed:\n{}", gateway.log());
        gateway
    }

    /// Starts it on `yaml` for a 2026-07-28 client, which opens no session: ready once its
    /// `tools/list` lists every upstream's tools.
    async fn start_in_2026_07_28(yaml: &str, upstreams: usize) -> Self {
        let mut gateway = Self::spawn(yaml);
        for _ in 0..100 {
            let listed = gateway.listed(json!({"_meta": modern_meta()})).await;
            let upstreams_listed = listed
                .iter()
                .filter_map(|tool| tool["name"].as_str()?.split_once("__"))
                .map(|(upstream, _)| upstream.to_owned())
                .collect::<std::collections::BTreeSet<_>>();
            if upstreams_listed.len() == upstreams {
                return gateway;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("not every upstream's tools listed:\n{}", gateway.log());
    }

    /// The tools `tools/list` with `params` lists.
    async fn listed(&mut self, params: Value) -> Vec<Value> {
        self.send(
            json!({"jsonrpc": "2.0", "id": "list", "method": "tools/list", "params": params}),
        )
        .await;
        let listed = self.answer_to("list").await;
        listed["result"]["tools"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| panic!("{listed}"))
    }

    /// Starts `mcps stdio` on `yaml`.
    fn spawn(yaml: &str) -> Self {
        let config = ConfigDir::new(yaml);
        let mut child = Command::new(mcps_bin())
            .args(["stdio", "-c"])
            .arg(config.path())
            .env("RUST_LOG", "mcps=debug,rmcp=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn mcps stdio");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                let message = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("stdout holds a line that is not JSON: {line}"));
                if sender.send(message).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(String::new()));
        let written = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = written.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self {
            _child: child,
            stdin,
            lines,
            log,
            _config: config,
        }
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// The next message on stdout.
    async fn next(&mut self) -> Value {
        tokio::time::timeout(Duration::from_secs(30), self.lines.recv())
            .await
            .unwrap_or_else(|_| panic!("no line on stdout in 30 s:\n{}", self.log()))
            .expect("stdout open")
    }

    /// The messages up to and with the answer to `id`.
    async fn until_answer(&mut self, id: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let message = self.next().await;
            let done = message["id"] == id && message.get("method").is_none();
            seen.push(message);
            if done {
                return seen;
            }
        }
    }

    /// The next message of `method`; the gateway's own notifications meanwhile (a
    /// `list_changed` as its upstreams start) are skipped.
    async fn next_of(&mut self, method: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["method"] == method {
                return message;
            }
            assert!(message.get("id").is_none(), "{message} before {method}");
        }
    }

    async fn answer_to(&mut self, id: &str) -> Value {
        self.until_answer(id).await.pop().unwrap()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// How many calls went the gateway's own way, once `calls` calls are done.
    async fn lane_calls(&self, calls: usize) -> usize {
        crate::common::wait_logged(|| self.log(), "call done", calls).await;
        crate::common::lane_calls_in(&self.log())
    }

    async fn wait_for_log(&self, needle: &str) {
        crate::common::wait_logged(|| self.log(), needle, 1).await;
    }
}

#[tokio::test]
async fn a_plain_call_answers_as_rmcps_way_does() {
    let mut gateway = StdioGateway::start(
        &format!(
            "upstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo"], "")
        ),
        json!({}),
    )
    .await;
    let arguments = json!({"k": "v", "n": [1, 2.5], "s": "line\nbreak \u{e9}"});
    gateway
        .send(
            json!({"jsonrpc": "2.0", "id": "plain", "method": "tools/call",
                     "params": {"name": "fx__echo", "arguments": arguments}}),
        )
        .await;
    let plain = gateway.answer_to("plain").await;
    assert_eq!(gateway.lane_calls(1).await, 1, "{}", gateway.log());
    gateway
        .send(
            json!({"jsonrpc": "2.0", "id": "typed", "method": "tools/call",
                     "params": {"name": "fx__echo", "arguments": arguments,
                                "_meta": {"io.modelcontextprotocol/unread": true}}}),
        )
        .await;
    let typed = gateway.answer_to("typed").await;
    assert_eq!(gateway.lane_calls(2).await, 1, "that call goes rmcp's way");
    assert_eq!(plain["result"], typed["result"], "{plain} vs {typed}");
    assert_eq!(
        plain["result"]["structuredContent"]["arguments"], arguments,
        "{plain}"
    );
    // An unknown tool gets rmcp's answer.
    gateway
        .send(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                     "params": {"name": "fx__nope", "arguments": {}}}))
        .await;
    let unknown = gateway.next().await;
    assert_eq!(unknown["id"], 7, "{unknown}");
    assert!(
        unknown["error"].is_object() || unknown["result"]["isError"] == true,
        "{unknown}"
    );
}

#[tokio::test]
async fn an_sdk_servers_elicitation_and_log_messages_reach_the_stdio_client() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let mut gateway = StdioGateway::start(
        &format!(
            "upstreams:\n  fx:\n    url: {:?}\n    protocol: legacy\n",
            fixture.url
        ),
        json!({"elicitation": {}}),
    )
    .await;
    gateway
        .send(json!({"jsonrpc": "2.0", "id": "ask", "method": "tools/call",
                     "params": {"name": "fx__test_elicitation", "arguments": {"message": "Your name?"}}}))
        .await;
    let asked = gateway.next_of("elicitation/create").await;
    assert_eq!(asked["params"]["message"], "Your name?", "{asked}");
    gateway
        .send(json!({"jsonrpc": "2.0", "id": asked["id"],
                     "result": {"action": "accept", "content": {"response": "Ada"}}}))
        .await;
    let done = gateway.answer_to("ask").await;
    let text = done["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("action=accept") && text.contains("Ada"),
        "{done}"
    );

    gateway
        .send(
            json!({"jsonrpc": "2.0", "id": "level", "method": "logging/setLevel",
                     "params": {"level": "info"}}),
        )
        .await;
    gateway.answer_to("level").await;
    gateway
        .send(
            json!({"jsonrpc": "2.0", "id": "logs", "method": "tools/call",
                     "params": {"name": "fx__test_tool_with_logging", "arguments": {}}}),
        )
        .await;
    let seen = gateway.until_answer("logs").await;
    let logged = common::of_method(&seen, "notifications/message");
    assert_eq!(logged.len(), 3, "{seen:?}");
    assert_eq!(
        logged[1]["params"]["data"], "Tool processing data",
        "{seen:?}"
    );
    assert_eq!(gateway.lane_calls(2).await, 2, "{}", gateway.log());
}

/// The progress an SDK server reports for a call reaches the client as lines before the
/// answer, under the client's own token, whether the server is reached over stdio or HTTP:
/// the call goes the gateway's own way.
#[tokio::test]
async fn an_sdk_servers_progress_reaches_the_stdio_client_under_its_token() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let yaml = format!(
        "upstreams:
  fx:
    url: {:?}
    protocol: legacy
{}",
        fixture.url,
        stdio_upstream_yaml(Implementation::Rust, "rs", &[], "legacy")
    );
    let mut gateway = StdioGateway::start(&yaml, json!({})).await;
    for (n, tool) in ["fx__test_tool_with_progress", "rs__test_tool_with_progress"]
        .into_iter()
        .enumerate()
    {
        let token = format!("client-token-{n}");
        gateway
            .send(json!({"jsonrpc": "2.0", "id": tool, "method": "tools/call",
                         "params": {"name": tool, "arguments": {},
                                    "_meta": {"progressToken": token}}}))
            .await;
        let seen = gateway.until_answer(tool).await;
        let progress = common::of_method(&seen, "notifications/progress");
        assert_eq!(progress.len(), 3, "{tool}: {seen:?}");
        for update in &progress {
            assert_eq!(update["params"]["progressToken"], token, "{tool}: {seen:?}");
        }
        assert_eq!(
            progress[2]["params"]["progress"].as_f64(),
            Some(100.0),
            "{tool}: {seen:?}"
        );
        let answer = seen.last().unwrap();
        assert!(answer["result"]["content"].is_array(), "{tool}: {answer}");
    }
    assert_eq!(gateway.lane_calls(2).await, 2, "{}", gateway.log());
}

#[tokio::test]
async fn a_call_the_client_cancels_is_cancelled_upstream() {
    let mut gateway = StdioGateway::start(
        &format!(
            "upstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo", "sleep"], "")
        ),
        json!({}),
    )
    .await;
    gateway
        .send(json!({"jsonrpc": "2.0", "id": "slow", "method": "tools/call",
                     "params": {"name": "fx__sleep", "arguments": {"ms": 20_000, "tag": "stdio-way"}}}))
        .await;
    gateway.wait_for_log("call sleep").await;
    gateway
        .send(
            json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                     "params": {"requestId": "slow", "reason": "changed my mind"}}),
        )
        .await;
    gateway.wait_for_log("sleep stdio-way cancelled").await;
    assert_eq!(gateway.lane_calls(1).await, 1, "{}", gateway.log());
}

/// A 2026-07-28 client over `mcps stdio` opens no session, and its plain calls take the
/// gateway's own way all the same: answered as rmcp's way answers them, with the progress and
/// the log messages (at the level the call asks) of an SDK's server, reached over HTTP and over
/// stdio, as lines before the answer.
#[tokio::test]
async fn a_2026_07_28_clients_calls_take_the_gateways_own_way_too() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let yaml = format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: modern\n{}{}",
        fixture.url,
        stdio_upstream_yaml(Implementation::Rust, "rs", &[], "modern"),
        fixture_upstream_yaml("ec", "ec", &["echo"], "")
    );
    let mut gateway = StdioGateway::start_in_2026_07_28(&yaml, 3).await;
    let arguments = json!({"k": "v", "n": [1, 2.5], "s": "line\nbreak \u{e9}"});
    let mut answers = Vec::new();
    for (id, meta) in [
        ("plain", modern_meta()),
        ("typed", {
            let mut meta = modern_meta();
            meta["io.modelcontextprotocol/unread"] = json!(true);
            meta
        }),
    ] {
        gateway
            .send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                         "params": {"name": "ec__echo", "arguments": arguments, "_meta": meta}}))
            .await;
        answers.push(gateway.answer_to(id).await);
    }
    let (plain, typed) = (&answers[0], &answers[1]);
    assert_eq!(plain["result"], typed["result"], "{plain} vs {typed}");
    assert_eq!(plain["result"]["resultType"], "complete", "{plain}");
    assert_eq!(gateway.lane_calls(2).await, 1, "{}", gateway.log());

    let mut calls = 2;
    for upstream in ["fx", "rs"] {
        let tool = format!("{upstream}__test_tool_with_progress");
        let mut meta = modern_meta();
        meta["progressToken"] = json!(format!("token-{upstream}"));
        gateway
            .send(json!({"jsonrpc": "2.0", "id": tool, "method": "tools/call",
                         "params": {"name": tool, "arguments": {}, "_meta": meta}}))
            .await;
        let seen = gateway.until_answer(&tool).await;
        let progress = common::of_method(&seen, "notifications/progress");
        assert_eq!(progress.len(), 3, "{tool}: {seen:?}");
        assert!(
            progress
                .iter()
                .all(|update| update["params"]["progressToken"] == format!("token-{upstream}")),
            "{tool}: {seen:?}"
        );
        assert_eq!(
            seen.last().unwrap()["result"]["resultType"],
            "complete",
            "{tool}: {seen:?}"
        );

        let tool = format!("{upstream}__test_tool_with_logging");
        for (level, expected) in [("info", 3), ("error", 0)] {
            let mut meta = modern_meta();
            meta["io.modelcontextprotocol/logLevel"] = json!(level);
            let id = format!("{tool}-{level}");
            gateway
                .send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                             "params": {"name": tool, "arguments": {}, "_meta": meta}}))
                .await;
            let seen = gateway.until_answer(&id).await;
            let logged = common::of_method(&seen, "notifications/message").len();
            assert_eq!(logged, expected, "{tool} at {level}: {seen:?}");
        }
        calls += 3;
    }
    assert_eq!(
        gateway.lane_calls(calls).await,
        calls - 1,
        "{}",
        gateway.log()
    );
}
