//! MCP over WebSocket at `/ws` and `/ws/mcp`: a plain WebSocket client sends JSON-RPC, one
//! message per text frame, lists and calls tools of a real upstream; bad frames get JSON-RPC
//! errors and the connection lives on; an oversized message closes it with 1009; the
//! handshake checks Origin and the `mcp` subprotocol; a plain call goes the gateway's own way.

use crate::common;

use common::{
    fixture_upstream_yaml,
    process::{ConfigDir, ServeProcess},
    ws::{initialize, next_message, open, request},
};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message,
        client::IntoClientRequest,
        http::{HeaderValue, StatusCode},
        protocol::frame::coding::CloseCode,
    },
};

fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "limits:\n  max_body_bytes: 65536\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "over-ws", &["echo"], "")
    ))
}

#[tokio::test]
async fn a_websocket_client_lists_and_calls_tools_on_both_paths() {
    let gateway = gateway();
    for path in ["/ws", "/ws/mcp"] {
        let mut socket = open(&gateway.ws_url(path)).await;
        initialize(&mut socket).await;
        let listed = request(&mut socket, 1, "tools/list", json!({})).await;
        assert_eq!(listed["result"]["tools"][0]["name"], "fx__echo", "{listed}");
        let called = request(
            &mut socket,
            2,
            "tools/call",
            json!({"name": "fx__echo", "arguments": {"path": path}}),
        )
        .await;
        let content = &called["result"]["structuredContent"];
        assert_eq!(content["label"], "over-ws", "{called}");
        assert_eq!(content["arguments"]["path"], path, "{called}");
        socket.close(None).await.unwrap();
    }
}

#[tokio::test]
async fn bad_frames_get_json_rpc_errors_and_the_session_goes_on() {
    let gateway = gateway();
    let mut socket = open(&gateway.ws_url("/ws")).await;
    initialize(&mut socket).await;

    socket.send(Message::text("{not json")).await.unwrap();
    let reply = next_message(&mut socket).await;
    assert_eq!(reply["error"]["code"], -32700, "{reply}");

    socket
        .send(Message::text(r#"{"id": 5, "hello": 1}"#))
        .await
        .unwrap();
    let reply = next_message(&mut socket).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert_eq!(reply["id"], 5, "{reply}");

    socket.send(Message::binary(b"{}".to_vec())).await.unwrap();
    let reply = next_message(&mut socket).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");

    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    socket.send(Message::text(deep)).await.unwrap();
    let reply = next_message(&mut socket).await;
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_json_depth"),
        "{reply}"
    );

    let unknown = request(
        &mut socket,
        6,
        "tools/call",
        json!({"name": "nope", "arguments": {}}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");

    let listed = request(&mut socket, 7, "tools/list", json!({})).await;
    assert_eq!(listed["result"]["tools"][0]["name"], "fx__echo", "{listed}");
}

#[tokio::test]
async fn an_oversized_message_closes_the_connection_with_1009() {
    let gateway = gateway();
    let mut socket = open(&gateway.ws_url("/ws")).await;
    initialize(&mut socket).await;
    let huge = "x".repeat(200_000);
    let message = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                         "params": {"name": "fx__echo", "arguments": {"blob": huge}}});
    let _ = socket.send(Message::text(message.to_string())).await;
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(frame.code, CloseCode::Size);
                break;
            }
            Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                panic!("closed without 1009")
            }
            Some(Ok(_)) => {}
        }
    }
    // The gateway is unharmed.
    let mut socket = open(&gateway.ws_url("/ws")).await;
    initialize(&mut socket).await;
}

#[tokio::test]
async fn the_handshake_checks_origin_subprotocol_and_upgrade() {
    let gateway = gateway();
    let refused_status = |result: Result<_, tokio_tungstenite::tungstenite::Error>| match result {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status(),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("the handshake succeeded"),
    };

    let mut evil = gateway.ws_url("/ws").into_client_request().unwrap();
    evil.headers_mut()
        .insert("origin", HeaderValue::from_static("https://evil.example"));
    assert_eq!(
        refused_status(connect_async(evil).await.map(|_| ())),
        StatusCode::FORBIDDEN
    );

    let mut other = gateway.ws_url("/ws").into_client_request().unwrap();
    other.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-ws"),
    );
    assert_eq!(
        refused_status(connect_async(other).await.map(|_| ())),
        StatusCode::BAD_REQUEST
    );

    // No subprotocol offered: accepted without one.
    let plain = gateway.ws_url("/ws").into_client_request().unwrap();
    let (mut socket, response) = connect_async(plain).await.expect("handshake");
    assert!(response.headers().get("sec-websocket-protocol").is_none());
    initialize(&mut socket).await;

    let status = common::http::client()
        .get(format!("{}/ws", gateway.mcp_url().trim_end_matches("/mcp")))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 426);
}

/// A plain call over WebSocket goes the gateway's own way (`downstream/message_calls.rs`),
/// and is answered as rmcp's way answers it (a call whose `_meta` holds a key of the
/// protocol's own the gateway's way does not read goes there).
#[tokio::test]
async fn a_plain_call_goes_the_gateways_own_way_and_answers_as_rmcp_does() {
    let gateway = own_way_gateway();
    let mut socket = open(&gateway.ws_url("/ws")).await;
    initialize(&mut socket).await;
    // Answered after `notifications/initialized`, which settles the session's facts.
    request(&mut socket, 1, "tools/list", json!({})).await;
    let (plain, typed) = both_ways(&gateway, &mut socket, None).await;
    assert_eq!(typed["id"], 3, "{typed}");
    assert!(plain["result"].get("resultType").is_none(), "{plain}");
}

/// A 2026-07-28 client over WebSocket opens no session; its plain call takes the gateway's
/// own way all the same, and is answered as rmcp's way answers it.
#[tokio::test]
async fn a_2026_07_28_call_goes_the_gateways_own_way_too() {
    let gateway = own_way_gateway();
    gateway.wait_ready(std::time::Duration::from_secs(20));
    let mut socket = open(&gateway.ws_url("/ws")).await;
    let meta = crate::tool_call_lane::meta();
    let (plain, _) = both_ways(&gateway, &mut socket, Some(meta)).await;
    assert_eq!(plain["result"]["resultType"], "complete", "{plain}");
}

/// A gateway in front of the rmcp fixture's echo, whose debug log says which way each call
/// went.
fn own_way_gateway() -> ServeProcess {
    ServeProcess::start_in(
        ConfigDir::new(&format!(
            "upstreams:\n{}",
            fixture_upstream_yaml("fx", "own-way", &["echo"], "")
        )),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    )
}

/// The same call of `fx__echo` sent twice on `socket` (ids 2 and 3): with `meta`, if any,
/// which the gateway's own way takes, then with a key of the protocol's own added that its
/// way does not read, which rmcp's way answers. Checks each went its way and both answered
/// alike, with the arguments echoed; the two answers.
async fn both_ways(
    gateway: &ServeProcess,
    socket: &mut common::ws::Socket,
    meta: Option<serde_json::Value>,
) -> (serde_json::Value, serde_json::Value) {
    let arguments = json!({"k": "v", "n": [1, 2.5], "s": "line\nbreak \u{e9}"});
    let mut params = json!({"name": "fx__echo", "arguments": arguments});
    if let Some(meta) = &meta {
        params["_meta"] = meta.clone();
    }
    let plain = request(socket, 2, "tools/call", params.clone()).await;
    gateway.calls_done(1).await;
    assert_eq!(gateway.lane_calls(), 1, "{}", gateway.log());
    let mut unread = meta.unwrap_or_else(|| json!({}));
    unread["io.modelcontextprotocol/unread"] = json!(true);
    params["_meta"] = unread;
    let typed = request(socket, 3, "tools/call", params).await;
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 1, "that call goes rmcp's way");
    assert_eq!(plain["id"], 2, "{plain}");
    assert_eq!(plain["result"], typed["result"], "{plain} vs {typed}");
    assert_eq!(
        plain["result"]["structuredContent"]["arguments"], arguments,
        "{plain}"
    );
    (plain, typed)
}
