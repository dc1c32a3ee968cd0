//! A cancelled call is cancelled upstream too (`notifications/cancelled` with the id the
//! gateway used there), whatever ended it: the client's own `notifications/cancelled`, the end
//! of its session (DELETE), its WebSocket closing, or a 2026-07-28 client closing the response
//! stream (a deadline passing: `upstream_hang.rs`). The test upstream logs `sleep <tag>
//! cancelled` when its call is cancelled; the gateway copies that line into its own log.

use crate::common;

use std::time::Duration;

use common::{example_bin, http::RawSession, process::ServeProcess};
use serde_json::json;

fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "upstreams:\n  fx:\n    command: {:?}\n    args: [\"--label\", \"fx\", \"--sleep\"]\n",
        example_bin("fixture_upstream").display().to_string()
    ))
}

fn sleep_call(id: u64, tag: &str) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "fx__sleep", "arguments": {"ms": 20000, "tag": tag}}})
}

#[tokio::test]
async fn the_clients_own_cancellation_reaches_the_upstream() {
    let gateway = gateway();
    let session = RawSession::open(&gateway.mcp_url()).await;
    let handle = session.handle();
    let call = tokio::spawn(async move { handle.post_json(&sleep_call(5, "explicit")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": 5, "reason": "test"}});
    session.post_json(&cancel).await;
    gateway.wait_for_log("sleep explicit cancelled").await;
    call.abort();
    // The client's own doing, not the upstream's failure: counted apart, logged as no failure.
    let counted = |metrics: &str, outcome: &str| {
        metrics.lines().any(|line| {
            line.starts_with("mcps_tool_calls_total{")
                && line.contains("tool=\"sleep\"")
                && line.contains(&format!("outcome=\"{outcome}\""))
        })
    };
    let metrics_url = format!("{}/metrics", gateway.base);
    let mut metrics = common::process::blocking_get(&metrics_url);
    for _ in 0..50 {
        if counted(&metrics, "cancelled") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = common::process::blocking_get(&metrics_url);
    }
    assert!(counted(&metrics, "cancelled"), "{metrics}");
    assert!(!counted(&metrics, "error"), "{metrics}");
    assert!(!gateway.log().contains("call failed"), "{}", gateway.log());
}

#[tokio::test]
async fn ending_the_session_cancels_its_calls_upstream() {
    let gateway = gateway();
    let session = RawSession::open(&gateway.mcp_url()).await;
    let handle = session.handle();
    let call = tokio::spawn(async move { handle.post_json(&sleep_call(5, "session-end")).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deleted = session
        .client
        .delete(&session.url)
        .header("mcp-session-id", session.session_id.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    gateway.wait_for_log("sleep session-end cancelled").await;
    call.abort();
}

#[tokio::test]
async fn closing_a_websocket_cancels_its_calls_upstream() {
    let gateway = gateway();
    let mut socket = common::ws::open_initialized(&gateway.ws_url("/ws")).await;
    common::ws::send(&mut socket, &sleep_call(5, "websocket")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(socket);
    gateway.wait_for_log("sleep websocket cancelled").await;
}

#[tokio::test]
async fn closing_a_2026_07_28_response_stream_cancels_the_call_upstream() {
    let gateway = gateway();
    let mut call = sleep_call(5, "stream-closed");
    call["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let request = common::http::modern_post(&gateway.mcp_url(), "tools/call", Some("fx__sleep"))
        .body(call.to_string())
        .send();
    // Give up on the response: its stream closes.
    let _ = tokio::time::timeout(Duration::from_millis(500), request).await;
    gateway.wait_for_log("sleep stream-closed cancelled").await;
}
