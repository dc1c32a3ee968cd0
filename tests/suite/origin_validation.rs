//! DNS-rebinding protection: foreign `Origin` or `Host` gets 403; loopback passes.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use reqwest::StatusCode;
use serde_json::json;

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "t", "version": "0"}}})
    .to_string()
}

#[tokio::test]
async fn foreign_origin_gets_403() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let session = RawSession {
        session_id: None,
        ..RawSession::open(&gateway.mcp_url()).await
    };
    let reply = session
        .post_raw(initialize(), &[("origin", "https://evil.example")])
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert!(reply.body.contains("evil.example"), "{}", reply.body);

    let reply = session
        .post_raw(initialize(), &[("origin", "http://localhost:3000")])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test]
async fn two_origin_headers_get_403() {
    let gateway = ServeProcess::start("");
    let client = common::http::client();
    let response = client
        .post(gateway.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("origin", "http://localhost")
        .header("origin", "http://localhost")
        .body(initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn foreign_host_gets_403_on_every_route() {
    let gateway = ServeProcess::start("");
    let client = common::http::client();
    for path in ["/mcp", "/api/v1/system/health"] {
        let response = client
            .get(format!("{}{path}", gateway.base))
            .header("host", "rebind.evil.example:8000")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
}
