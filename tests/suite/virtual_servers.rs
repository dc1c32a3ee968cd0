//! Virtual servers: named parts of the catalog, each at its own endpoint and assignable to
//! API keys. Two keys bound to two virtual servers see different `tools/list` results and
//! cannot call each other's tools (the upstream never hears of the refused call); the same
//! view is served at `/mcp/{name}`, `/ws/{name}`, `mcps stdio --server NAME` and the tools
//! API, and a bound key can reach nothing else.

use crate::common;

use std::io::{BufRead, BufReader, Write};

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::RawSession,
    mcps_bin,
    process::{ConfigDir, ServeProcess},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const VIRTUAL_SERVERS: &str = "virtual_servers:
  reader:
    upstreams: [alpha]
    allow: [\"alpha__read*\"]
    rename: {alpha__read: read}
  searcher:
    allow: [\"*search*\", \"alpha__write\"]
    deny: [\"alpha__*\"]
";

fn config(auth: bool) -> String {
    format!(
        "auth:\n  enabled: {auth}\n{VIRTUAL_SERVERS}upstreams:\n{}{}",
        fixture_upstream_yaml(
            "alpha",
            "alpha",
            &["read", "read_more", "write", "delete"],
            ""
        ),
        fixture_upstream_yaml("beta", "beta", &["search"], ""),
    )
}

async fn session(gateway: &ServeProcess, path: &str, key: &str) -> RawSession {
    let bearer = format!("Bearer {key}");
    RawSession::open_with(
        &format!("{}{path}", gateway.base),
        &[("authorization", bearer.as_str())],
    )
    .await
}

/// The answer to an `initialize` on `path` with `key`, whatever its status.
async fn initialize(gateway: &ServeProcess, path: &str, key: &str) -> reqwest::Response {
    common::http::client()
        .post(format!("{}{path}", gateway.base))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string())
        .send()
        .await
        .unwrap()
}

/// The names of a list of tools.
fn names(tools: &Value) -> Vec<&str> {
    let tools = tools.as_array().expect("a list of tools");
    tools
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect()
}

/// Whether the call was refused as a tool this client does not have.
fn unknown_tool(answer: &Value) -> bool {
    answer["error"]["message"]
        .as_str()
        .is_some_and(|message| message.starts_with("Unknown tool"))
}

#[tokio::test]
async fn keys_bound_to_virtual_servers_see_and_call_only_their_tools() {
    let gateway = ServeProcess::start_in(ConfigDir::new(&config(true)), &admin_env());
    let admin = Api::logged_in(&gateway).await;
    let bound = |server: &'static str| {
        let admin = &admin;
        async move {
            let answer = admin
                .post(
                    "/api/v1/auth/keys",
                    json!({"name": format!("{server}-client"), "virtual_server": server}),
                )
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
            assert_eq!(answer.body["virtual_server"], server);
            answer.body["key"].as_str().unwrap().to_owned()
        }
    };
    let reader_key = bound("reader").await;
    let searcher_key = bound("searcher").await;

    let mut reader = session(&gateway, "/mcp", &reader_key).await;
    let mut searcher = session(&gateway, "/mcp", &searcher_key).await;
    assert_eq!(reader.tool_names().await, ["alpha__read_more", "read"]);
    assert_eq!(searcher.tool_names().await, ["beta__search"]);

    let answer = reader.call("read", json!({"n": 1})).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "alpha:read:{\"n\":1}",
        "{answer}"
    );
    let answer = searcher.call("beta__search", json!({})).await;
    assert_eq!(
        answer["result"]["content"][0]["text"], "beta:search:{}",
        "{answer}"
    );

    // Each other's tools, the gateway's own names of them, and tools neither offers.
    for name in [
        "beta__search",
        "alpha__write",
        "alpha__read",
        "alpha__delete",
    ] {
        assert!(
            unknown_tool(&reader.call(name, json!({})).await),
            "reader called {name}"
        );
    }
    for name in ["read", "alpha__read", "alpha__read_more", "alpha__write"] {
        assert!(
            unknown_tool(&searcher.call(name, json!({})).await),
            "searcher called {name}"
        );
    }
    // One more allowed call: once alpha's log shows it, it would show any refused one
    // that had reached it before (its stderr comes through in order).
    reader.call("read", json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gateway
        .log()
        .matches("fixture upstream alpha: call read upstream=")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = gateway.log();
    for refused in ["call write", "call delete", "call read_more"] {
        assert!(
            !log.contains(&format!("fixture upstream alpha: {refused}")),
            "{log}"
        );
    }

    // A bound key may not use another virtual server's endpoint, nor the rest of the API.
    let refused = initialize(&gateway, "/mcp/searcher", &reader_key).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let as_reader = admin.with_token(Some(&reader_key));
    let tools = as_reader.get("/api/v1/tools").await;
    assert_eq!(names(&tools.body), ["alpha__read_more", "read"]);
    let call = as_reader
        .post("/api/v1/tools/call", json!({"tool_name": "beta__search"}))
        .await;
    assert_eq!(call.status, StatusCode::NOT_FOUND, "{call:?}");
    for (method, path) in [
        (Method::GET, "/api/v1/mcp/services"),
        (Method::POST, "/api/v1/auth/keys"),
        (Method::GET, "/api/v1/calls"),
    ] {
        let answer = as_reader
            .send(method, path, Some(json!({"name": "x"})))
            .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{path}: {answer:?}");
    }
    let proxied = as_reader
        .post(
            "/api/v1/mcp/proxy",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    let proxied = names(&proxied.body["result"]["tools"]);
    assert_eq!(proxied, ["alpha__read_more", "read"]);

    // An unbound key picks a virtual server by its path.
    let unbound = admin.create_key("any").await;
    let mut by_path = session(&gateway, "/mcp/searcher", &unbound).await;
    assert_eq!(by_path.tool_names().await, ["beta__search"]);
    let mut whole = session(&gateway, "/mcp", &unbound).await;
    assert_eq!(whole.tool_names().await.len(), 5);
    let missing = common::http::client()
        .post(format!("{}/mcp/nope", gateway.base))
        .bearer_auth(&unbound)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_websocket_endpoint_serves_a_virtual_server() {
    let gateway = ServeProcess::start(&config(false));
    let mut socket = common::ws::open_initialized(&gateway.ws_url("/ws/reader")).await;
    let reply = common::ws::request(&mut socket, 2, "tools/list", json!({})).await;
    assert_eq!(
        names(&reply["result"]["tools"]),
        ["alpha__read_more", "read"]
    );
}

#[test]
fn stdio_serves_the_virtual_server_it_is_given() {
    let dir = ConfigDir::new(&config(false));
    let mut child = std::process::Command::new(mcps_bin())
        .args(["stdio", "--server", "searcher", "-c"])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    for message in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "stdio", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
    ] {
        writeln!(stdin, "{message}").unwrap();
    }
    let mut line = String::new();
    let tools = loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "stdout closed");
        let message: Value = serde_json::from_str(&line).unwrap();
        if message["id"] == 2 {
            break message["result"]["tools"].clone();
        }
    };
    drop(stdin);
    child.wait().unwrap();
    assert_eq!(names(&tools), ["beta__search"]);

    let (status, stdout, _) = common::process::run_mcps(&dir.path(), &["check"]);
    assert!(status.success(), "{stdout}");
    assert!(
        stdout.contains("virtual server reader: alpha__read_more, read"),
        "{stdout}"
    );
    assert!(
        stdout.contains("virtual server searcher: beta__search"),
        "{stdout}"
    );

    let (status, _, stderr) =
        common::process::run_mcps(&dir.path(), &["stdio", "--server", "nope"]);
    assert!(!status.success());
    assert!(
        stderr.contains("no virtual server named \"nope\""),
        "{stderr}"
    );
}

#[test]
fn a_rename_onto_another_tools_name_is_reported_not_silent() {
    let dir = ConfigDir::new(&format!(
        "virtual_servers:\n  clash:\n    rename: {{alpha__read: beta__search}}\nupstreams:\n{}{}",
        fixture_upstream_yaml("alpha", "alpha", &["read"], ""),
        fixture_upstream_yaml("beta", "beta", &["search"], ""),
    ));
    let (status, stdout, _) = common::process::run_mcps(&dir.path(), &["check"]);
    assert!(!status.success(), "{stdout}");
    assert!(
        stdout.contains("virtual server clash: beta__search\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "COLLISION tool \"beta__search\": upstream 'beta' \"search\" is hidden by upstream 'alpha' \"read\"; rename one of them"
        ),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_key_whose_virtual_server_a_reload_removed_is_served_nothing() {
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&format!("server:\n  watch_config: false\n{}", config(true))),
        &admin_env(),
    );
    let admin = Api::logged_in(&gateway).await;
    let answer = admin
        .post(
            "/api/v1/auth/keys",
            json!({"name": "reader-client", "virtual_server": "reader"}),
        )
        .await;
    let key = answer.body["key"].as_str().unwrap().to_owned();
    assert_eq!(
        session(&gateway, "/mcp", &key).await.tool_names().await,
        ["alpha__read_more", "read"]
    );

    let without_views = config(true).replace(VIRTUAL_SERVERS, "");
    std::fs::write(
        gateway.config.path(),
        format!("server:\n  watch_config: false\n{without_views}"),
    )
    .unwrap();
    let reloaded = admin.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(reloaded.status, StatusCode::OK, "{reloaded:?}");

    // Not the whole catalog, as a key bound to nothing would get: nothing at all.
    let refused = initialize(&gateway, "/mcp", &key).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let body = refused.text().await.unwrap();
    assert!(body.contains("no longer has"), "{body}");
    let tools = admin.with_token(Some(&key)).get("/api/v1/tools").await;
    assert!(!tools.status.is_success(), "{tools:?}");
    assert!(tools.body.to_string().contains("reader"), "{tools:?}");
}
