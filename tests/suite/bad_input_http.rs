//! Bad input over streamable HTTP gets the right JSON-RPC error, and the session keeps working.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use reqwest::StatusCode;
use serde_json::json;

fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "limits:\n  max_body_bytes: 65536\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ))
}

async fn assert_session_still_works(session: &mut RawSession) {
    let reply = session.call("fx__echo", json!({"still": "alive"})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["arguments"]["still"], "alive",
        "{reply}"
    );
}

#[tokio::test]
async fn malformed_json_gets_parse_error_and_session_lives_on() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .post_raw("{\"jsonrpc\": \"2.0\", \"id\": 7, \"method\": ", &[])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), Some(-32700), "{}", reply.body);
    assert_session_still_works(&mut session).await;
}

#[tokio::test]
async fn json_that_is_not_json_rpc_gets_invalid_request() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .post_raw("{\"id\": 3, \"hello\": \"world\"}", &[])
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), Some(-32600), "{}", reply.body);
    assert_eq!(reply.message()["id"], 3);
    assert_session_still_works(&mut session).await;
}

#[tokio::test]
async fn unknown_method_gets_method_not_found() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.request("tools/frobnicate", json!({})).await;
    assert_eq!(reply.error_code(), Some(-32601), "{}", reply.body);
    assert_session_still_works(&mut session).await;
}

#[tokio::test]
async fn unknown_tool_gets_invalid_params_naming_it_and_reaches_no_upstream() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    // One with no upstream's prefix, one with a real upstream's prefix.
    for name in ["nobody__nothing", "fx__nothing"] {
        let reply = session.call(name, json!({})).await;
        assert_eq!(reply["error"]["code"], -32602, "{reply}");
        assert!(
            reply["error"]["message"].as_str().unwrap().contains(name),
            "{reply}"
        );
    }
    assert_session_still_works(&mut session).await;
    // The upstream logs every call it gets; the echo after them has arrived, they have not.
    gateway.wait_for_log("fixture upstream fx: call echo").await;
    assert!(
        !gateway.log().contains("fixture upstream fx: call nothing"),
        "{}",
        gateway.log()
    );
}

#[tokio::test]
async fn invalid_params_get_invalid_params() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for params in [
        json!({"arguments": {}}),
        json!({"name": "fx__echo", "arguments": [1, 2]}),
    ] {
        let reply = session.request("tools/call", params.clone()).await;
        assert_eq!(reply.error_code(), Some(-32602), "{params}: {}", reply.body);
    }
    assert_session_still_works(&mut session).await;
}

#[tokio::test]
async fn oversized_body_is_refused_with_413() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let big = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": "fx__echo", "arguments": {"blob": "x".repeat(100_000)}}});
    let reply = session.post_json(&big).await;
    assert_eq!(
        reply.status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        reply.body
    );
    assert_session_still_works(&mut session).await;
}

#[tokio::test]
async fn missing_or_unknown_session_id_gets_400_or_404_and_a_new_session_works() {
    let gateway = gateway();
    let mut stale = RawSession::open(&gateway.mcp_url()).await;
    stale.session_id = Some("no-such-session".into());
    let reply = stale.request("tools/list", json!({})).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    stale.session_id = None;
    let reply = stale.request("tools/list", json!({})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    let mut fresh = RawSession::open(&gateway.mcp_url()).await;
    assert_session_still_works(&mut fresh).await;
}

#[tokio::test]
async fn deep_nesting_is_rejected_without_a_stack_overflow() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let nested = |depth: usize| {
        format!(
            "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/list\", \"params\": {{\"x\": {}{}}}}}",
            "[".repeat(depth),
            "]".repeat(depth)
        )
    };
    // Far past serde_json's own bound, and just past limits.max_json_depth (64) but within
    // serde_json's: both are refused by our limit, as valid JSON that is too deep.
    for depth in [30_000, 64] {
        let reply = session.post_raw(nested(depth), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{depth}");
        assert_eq!(reply.error_code(), Some(-32600), "{}", reply.body);
        assert!(reply.body.contains("max_json_depth"), "{}", reply.body);
    }
    let stateless = common::http::modern_post(&gateway.mcp_url(), "tools/list", None)
        .body(nested(30_000))
        .send()
        .await
        .unwrap();
    assert_eq!(stateless.status(), StatusCode::BAD_REQUEST);
    // Within the limit is fine.
    let reply = session.post_raw(nested(20), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_session_still_works(&mut session).await;
    assert_eq!(gateway.health()["status"], "ok", "the gateway is still up");
}
