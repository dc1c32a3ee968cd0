//! Over `limits.max_sessions`, a new session gets 503 with a JSON-RPC error, the open ones
//! work on, and a session that closes makes room for a new one. With auth, one credential
//! over `limits.max_sessions_per_principal` gets 503 while other credentials are served;
//! without, one client address over `limits.max_sessions_per_peer` does, while other
//! addresses are served.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// Another session opened the way `like` was (same headers) gets 503 naming `limit`.
async fn new_session_refused(like: &RawSession, limit: &str) {
    let another = RawSession {
        session_id: None,
        ..like.handle()
    };
    let refused = another
        .post_json(&json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "another", "version": "0"}}
        }))
        .await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(refused.body.contains(limit), "{}", refused.body);
}

#[tokio::test]
async fn a_session_over_the_limit_is_refused_and_the_others_serve() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_sessions: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let first = RawSession::open(&gateway.mcp_url()).await;
    let mut second = RawSession::open(&gateway.mcp_url()).await;

    new_session_refused(&first, "max_sessions").await;

    let reply = second.call("fx__echo", json!({})).await;
    assert!(
        reply["result"].is_object(),
        "the open sessions serve: {reply}"
    );
    // 2026-07-28 requests have no session and are not counted.
    let stateless = common::http::modern_post(&gateway.mcp_url(), "tools/list", None)
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "m", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {}}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), StatusCode::OK);

    first.close().await;
    let mut fourth = RawSession::open(&gateway.mcp_url()).await;
    let reply = fourth.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_over_its_own_session_limit_is_refused_and_others_are_not() {
    use common::{
        api::{Api, admin_env},
        process::ConfigDir,
    };
    let yaml = format!(
        "auth:\n  enabled: true\nlimits:\n  max_sessions_per_principal: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let greedy = format!("Bearer {}", api.create_key("greedy").await);
    let modest = format!("Bearer {}", api.create_key("modest").await);
    let greedy_header = [("authorization", greedy.as_str())];
    let first = RawSession::open_with(&gateway.mcp_url(), &greedy_header).await;
    // A WebSocket session counts too.
    let mut upgrade = gateway.ws_url("/ws").into_client_request().unwrap();
    upgrade
        .headers_mut()
        .insert("authorization", greedy.parse().unwrap());
    let (_socket, _) = tokio_tungstenite::connect_async(upgrade).await.unwrap();

    new_session_refused(&first, "max_sessions_per_principal").await;
    // Another key is not held back by this one.
    let mut other = RawSession::open_with(&gateway.mcp_url(), &[("authorization", &modest)]).await;
    let reply = other.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
}

#[tokio::test]
async fn without_auth_one_address_over_its_session_limit_is_refused_and_others_are_not() {
    use common::http::client_from;
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_sessions_per_peer: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let url = gateway.mcp_url();
    let greedy = client_from("127.0.0.2");
    let first = RawSession::open_on(greedy.clone(), &url, &[]).await;
    // A WebSocket session from the same address counts too.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let address = gateway.base.trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(address).await.unwrap();
    let upgrade = gateway.ws_url("/ws").into_client_request().unwrap();
    let (_socket, _) = tokio_tungstenite::client_async(upgrade, stream)
        .await
        .unwrap();

    new_session_refused(&first, "max_sessions_per_peer").await;
    let mut elsewhere = RawSession::open_on(client_from("127.0.0.3"), &url, &[]).await;
    let reply = elsewhere.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    // Its session closed, the address may open another.
    first.close().await;
    let mut again = RawSession::open_on(greedy, &url, &[]).await;
    let reply = again.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
}
