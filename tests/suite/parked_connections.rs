//! An HTTP/1.1 keep-alive connection idle for two seconds is parked: the gateway gives back
//! hyper's buffers and state and keeps the socket (`listener/protocol.rs`). Its client sees
//! nothing of it: the next request on the same connection is answered, a WebSocket upgrade
//! on it is served, and a shutdown closes it at once. Closed by its client, it is let go.
//! Node's fetch goes on calling on a connection parked between its calls.

use crate::common;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use common::{fixture_upstream_yaml, http::modern_tool_call_request, process::ServeProcess};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const PARKED: &str = "connection parked";

/// A gateway in front of the fixture's echo that logs its connections' parking.
fn gateway() -> (ServeProcess, SocketAddr) {
    gateway_with("")
}

/// The same with `settings` (YAML) before its upstreams.
fn gateway_with(settings: &str) -> (ServeProcess, SocketAddr) {
    let gateway = ServeProcess::start_in(
        common::process::ConfigDir::new(&format!(
            "{settings}upstreams:\n{}",
            fixture_upstream_yaml("fx", "fx", &["echo"], "")
        )),
        &[(
            "RUST_LOG",
            "info,rmcp=warn,mcps::downstream::listener=debug",
        )],
    );
    let address = gateway.base.trim_start_matches("http://").parse().unwrap();
    (gateway, address)
}

/// Calls the echo with `text` on `sender`'s connection and checks the answer.
async fn echo_on(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    url: &str,
    text: &str,
) {
    let response = sender
        .send_request(modern_tool_call_request(
            url,
            "fx__echo",
            json!({"text": text}),
        ))
        .await
        .unwrap_or_else(|error| panic!("calling with {text:?} on the connection: {error}"));
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let message: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        message["result"]["content"].to_string().contains(text),
        "{message}"
    );
}

/// A hyper HTTP/1.1 client connection to `address`, and the task that drives it (it ends when
/// the gateway closes the connection).
async fn connect(
    address: SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    (sender, tokio::spawn(connection))
}

#[tokio::test]
async fn an_idle_connection_is_parked_and_serves_its_next_requests() {
    let (gateway, address) = gateway();
    let url = gateway.mcp_url();
    let (mut sender, connection) = connect(address).await;

    echo_on(&mut sender, &url, "before").await;
    // Parked two seconds after the answer, and again after each request that wakes it.
    for (parks, text) in [(1, "after one park"), (2, "after two")] {
        common::wait_logged(|| gateway.log(), PARKED, parks).await;
        echo_on(&mut sender, &url, text).await;
    }
    assert!(
        !connection.is_finished(),
        "the gateway kept the connection open"
    );
    // Calls on the connection a moment apart do not park it.
    for n in 0..5 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        echo_on(&mut sender, &url, &format!("busy {n}")).await;
    }
    let log = gateway.log();
    assert_eq!(log.matches(PARKED).count(), 2, "{log}");
}

#[tokio::test]
async fn a_parked_connection_is_upgraded_to_a_websocket() {
    let (gateway, address) = gateway();
    let mut stream = TcpStream::connect(address).await.unwrap();

    // A plain request on the connection first; then it is parked.
    stream
        .write_all(b"GET /api/v1/system/health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let answer = read_response(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    common::wait_logged(|| gateway.log(), PARKED, 1).await;

    // The same connection becomes a WebSocket, and MCP works on it.
    let request = common::ws::upgrade_request(&gateway.ws_url("/ws"), None);
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("a WebSocket handshake on the parked connection");
    let params = json!({"protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "parked", "version": "1"}});
    let reply = common::ws::request(&mut socket, 0, "initialize", params).await;
    assert_eq!(reply["result"]["protocolVersion"], "2025-11-25", "{reply}");
}

#[tokio::test]
async fn a_parked_connection_is_closed_at_once_on_sigterm() {
    let (mut gateway, address) = gateway();
    let url = gateway.mcp_url();
    let (mut sender, connection) = connect(address).await;
    echo_on(&mut sender, &url, "one").await;
    common::wait_logged(|| gateway.log(), PARKED, 1).await;

    gateway.signal(nix::sys::signal::Signal::SIGTERM);
    tokio::time::timeout(Duration::from_secs(2), connection)
        .await
        .expect("the parked connection closed as the drain began")
        .unwrap()
        .unwrap();
    assert!(gateway.wait_exit().success());
}

#[tokio::test]
async fn a_parked_connection_its_client_closes_is_let_go() {
    // Two connections from this address at most: a third is refused while two are open.
    let (gateway, address) = gateway_with("limits:\n  max_connections_per_peer: 2\n");
    let url = gateway.mcp_url();
    let (mut sender, connection) = connect(address).await;
    echo_on(&mut sender, &url, "then parked").await;
    common::wait_logged(|| gateway.log(), PARKED, 1).await;
    drop(sender);
    connection.await.unwrap().unwrap();

    // Its place is free again once the gateway sees it closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (mut first, _first) = connect(address).await;
    echo_on(&mut first, &url, "first").await;
    loop {
        let (mut second, second_connection) = connect(address).await;
        let call = modern_tool_call_request(&url, "fx__echo", json!({"text": "second"}));
        let answer = second.send_request(call).await;
        if answer.as_ref().is_ok_and(|answer| answer.status() == 200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed parked connection still holds its place: {:?}",
            answer.map(|answer| answer.status())
        );
        drop(second_connection);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Node's fetch (undici, under the TypeScript SDK's clients), whose pool keeps a connection
/// for as long as the gateway's `Keep-Alive` allows: calls three seconds apart go on one
/// connection, parked between them.
#[tokio::test]
async fn nodes_fetch_calls_on_a_connection_parked_between_its_calls() {
    const SCRIPT: &str = r#"
        const channels = require("node:diagnostics_channel");
        let connections = 0;
        channels.subscribe("undici:client:connected", () => connections++);
        const [url, body] = process.argv.slice(1);
        (async () => {
            const texts = [];
            for (const gap of [0, 3000, 3000]) {
                await new Promise((done) => setTimeout(done, gap));
                const response = await fetch(url, {method: "POST", body, headers: {
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2026-07-28",
                    "mcp-method": "tools/call",
                    "mcp-name": "fx__echo"}});
                texts.push(await response.text());
            }
            console.log(JSON.stringify({connections, texts}));
        })();
    "#;
    let (gateway, _) = gateway();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "_meta": common::http::modern_meta("node", json!({})),
        "name": "fx__echo", "arguments": {"text": "from node"}}});
    let output = std::process::Command::new(common::installed("MCPS_TEST_NODE"))
        .args(["-e", SCRIPT, &gateway.mcp_url(), &body.to_string()])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(seen["connections"], 1, "{seen}");
    for text in seen["texts"].as_array().unwrap() {
        assert!(text.as_str().unwrap().contains("from node"), "{seen}");
    }
    // Parked before the second call and before the third.
    common::wait_logged(|| gateway.log(), PARKED, 2).await;
}

/// One HTTP/1.1 response read from `stream`, head and body (by its `Content-Length`).
async fn read_response(stream: &mut TcpStream) -> String {
    let mut read = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the gateway closed the connection");
        read.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&read).into_owned();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length = text[..end]
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .expect("a Content-Length");
        if read.len() >= end + 4 + length {
            return text;
        }
    }
}
