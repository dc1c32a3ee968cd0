//! A client session with no request for `timeouts.session_idle_secs` is closed: its
//! streamable-HTTP session id then gets 404 and a new `initialize` works, while one whose
//! client listens on its GET stream stays open; an idle WebSocket
//! is closed by the gateway, while one that keeps pinging stays open. A session that made no
//! request after `initialize` is closed sooner, after `timeouts.unused_session_idle_secs`.

use crate::common;

use std::time::Duration;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::{connect_async, tungstenite::Message};

fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "timeouts:\n  session_idle_secs: 1\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ))
}

#[tokio::test]
async fn an_idle_http_session_expires_and_a_new_one_opens() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let mut listening = RawSession::open(&gateway.mcp_url()).await;
    let _stream = listening.open_stream().await;
    let reply = session.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = session.request("tools/list", json!({})).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND, "{}", expired.body);
    let listened = listening.request("tools/list", json!({})).await;
    assert_eq!(listened.status, StatusCode::OK, "{}", listened.body);
    let mut fresh = RawSession::open(&gateway.mcp_url()).await;
    let reply = fresh.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
}

#[tokio::test]
async fn an_idle_websocket_is_closed_and_a_pinging_one_is_not() {
    let gateway = gateway();
    let (mut idle, _) = connect_async(gateway.ws_url("/ws")).await.unwrap();
    let (mut pinging, _) = connect_async(gateway.ws_url("/ws")).await.unwrap();
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        pinging.send(Message::Ping(vec![1].into())).await.unwrap();
    }
    // 2.4 s without a frame: the gateway has closed the idle one.
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match idle.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the idle WebSocket is still open");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "pinging", "version": "0"}}});
    pinging
        .send(Message::text(initialize.to_string()))
        .await
        .unwrap();
    let answered = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(Ok(Message::Text(text))) = pinging.next().await {
                return text.to_string();
            }
        }
    })
    .await
    .expect("the pinging WebSocket was closed");
    assert!(answered.contains("\"result\""), "{answered}");
}

#[tokio::test]
async fn a_session_never_used_expires_sooner_than_one_in_use() {
    let gateway = ServeProcess::start(&format!(
        "timeouts:\n  session_idle_secs: 60\n  unused_session_idle_secs: 1\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let mut unused = RawSession::open(&gateway.mcp_url()).await;
    let mut used = RawSession::open(&gateway.mcp_url()).await;
    let listed = used.request("tools/list", json!({})).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let expired = unused.request("tools/list", json!({})).await;
    assert_eq!(expired.status, StatusCode::NOT_FOUND, "{}", expired.body);
    let reply = used.call("fx__echo", json!({})).await;
    assert!(
        reply["result"].is_object(),
        "the used session lives on: {reply}"
    );
}
