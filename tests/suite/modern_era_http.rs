//! A stateless 2026-07-28 client over raw HTTP: `server/discover`, then requests that carry
//! their own `_meta`, no session; results from a session-era upstream get `resultType`.
//! (Progress on a 2026-07-28 call, which turns its answer into an event stream, is in
//! `progress_and_cancellation`.)

use crate::common;

use common::{fixture_upstream_yaml, process::ServeProcess};
use serde_json::{Value, json};

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

async fn post(gateway: &ServeProcess, method: &str, name: Option<&str>, params: Value) -> Value {
    let response = common::http::modern_post(&gateway.mcp_url(), method, name)
        .body(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string())
        .send()
        .await
        .expect("POST");
    assert!(
        response.headers().get("mcp-session-id").is_none(),
        "a 2026-07-28 reply has no session"
    );
    let reply = common::http::Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    };
    assert_eq!(
        reply.headers["content-type"], "application/json",
        "a 2026-07-28 answer with nothing before it is plain JSON, no event stream"
    );
    reply.message()
}

#[tokio::test]
async fn stateless_client_discovers_lists_and_calls() {
    // The fixture is an rmcp server; force the session era so the bridge fills `resultType`.
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "    protocol: legacy\n")
    ));
    let discovered = post(&gateway, "server/discover", None, json!({"_meta": meta()})).await;
    let versions = &discovered["result"]["supportedVersions"];
    assert!(
        versions.as_array().unwrap().contains(&json!("2026-07-28")),
        "{discovered}"
    );
    assert!(
        discovered["result"]["capabilities"]["tools"].is_object(),
        "{discovered}"
    );

    let listed = post(&gateway, "tools/list", None, json!({"_meta": meta()})).await;
    assert_eq!(listed["result"]["tools"][0]["name"], "fx__echo", "{listed}");
    assert_eq!(listed["result"]["resultType"], "complete", "{listed}");

    let called = post(
        &gateway,
        "tools/call",
        Some("fx__echo"),
        json!({"_meta": meta(), "name": "fx__echo", "arguments": {"k": "v"}}),
    )
    .await;
    assert_eq!(called["result"]["resultType"], "complete", "{called}");
    assert_eq!(
        called["result"]["structuredContent"]["arguments"]["k"], "v",
        "{called}"
    );
    assert!(gateway.health()["upstreams"][0]["protocol_version"] == "2025-11-25");
}
