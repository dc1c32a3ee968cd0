//! The front door speaks HTTP/1.1 and HTTP/2 (in the clear, with prior knowledge) on one
//! port, tells them apart by the connection's first bytes, also when they come in pieces, and
//! drains both when it stops. The clients are hyper's.

use crate::common;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use common::{
    fixture_upstream_yaml,
    http::{modern_meta, modern_tool_call_request as tool_call},
    process::ServeProcess,
};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fn gateway() -> (ServeProcess, SocketAddr) {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let address = gateway.base.trim_start_matches("http://").parse().unwrap();
    (gateway, address)
}

/// A 2026-07-28 `tools/call` of the fixture's echo, as an HTTP request to `url`.
fn echo_call(url: &str, text: &str) -> hyper::Request<Full<Bytes>> {
    tool_call(url, "fx__echo", json!({"text": text}))
}

/// The JSON-RPC message of `response`'s body.
async fn message_of(response: hyper::Response<hyper::body::Incoming>) -> Value {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

#[tokio::test]
async fn http2_with_prior_knowledge_is_served_beside_http1() {
    let (gateway, address) = gateway();
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("an HTTP/2 handshake");
    tokio::spawn(connection);

    // Two calls on one connection, side by side: two streams.
    let url = gateway.mcp_url();
    let (first, second) = tokio::join!(
        sender.clone().send_request(echo_call(&url, "one")),
        sender.send_request(echo_call(&url, "two")),
    );
    for (response, text) in [(first, "one"), (second, "two")] {
        let response = response.expect("an answer over HTTP/2");
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        let message = message_of(response).await;
        assert!(
            message["result"]["content"].to_string().contains(text),
            "{message}"
        );
    }

    // And HTTP/1.1 on the same port.
    let reply = common::http::modern_message(
        &url,
        "tools/call",
        Some("fx__echo"),
        &json!({"_meta": modern_meta("h1", json!({})), "name": "fx__echo", "arguments": {"text": "three"}}),
    )
    .await;
    assert!(
        reply["result"]["content"].to_string().contains("three"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_preface_in_pieces_is_awaited_and_a_request_that_starts_like_one_is_http1() {
    let (gateway, address) = gateway();

    // The HTTP/2 preface in two writes, then an empty SETTINGS frame: the gateway waits for
    // the rest and answers with its own SETTINGS (frame type 4, on stream 0).
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&PREFACE[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&PREFACE[10..]).await.unwrap();
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    let mut header = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut header))
        .await
        .expect("the gateway's first frame")
        .unwrap();
    assert_eq!(header[3], 4, "a SETTINGS frame: {header:?}");
    assert_eq!(&header[5..9], &[0, 0, 0, 0], "on stream 0: {header:?}");

    // A connection closed before it sent a byte costs nothing and breaks nothing.
    drop(TcpStream::connect(address).await.unwrap());

    // An HTTP/1.1 request whose first byte is the preface's: served as HTTP/1.1 once the
    // second byte tells them apart.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "_meta": modern_meta("h1", json!({})),
        "name": "fx__echo", "arguments": {"text": "four"}}})
    .to_string();
    let rest = format!(
        "OST /mcp HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nmcp-protocol-version: 2026-07-28\r\nmcp-method: tools/call\r\nmcp-name: fx__echo\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
        .await
        .expect("the whole answer")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""id":7"#), "{answer}");
    assert!(answer.contains("four"), "{answer}");
    assert_eq!(gateway.health()["upstreams"][0]["state"], "ready");
}

#[tokio::test]
async fn on_sigterm_an_http2_call_in_flight_is_answered_and_an_idle_connection_is_closed() {
    let mut gateway = ServeProcess::start(&format!(
        "timeouts:\n  drain_secs: 5\nupstreams:\n{}",
        fixture_upstream_yaml("slow", "slow", &[], "").replace("args: [", "args: [\"--sleep\", ")
    ));
    let address: SocketAddr = gateway.base.trim_start_matches("http://").parse().unwrap();
    let url = gateway.mcp_url();

    // An HTTP/1.1 keep-alive connection, idle after one call.
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut idle, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let idle_connection = tokio::spawn(connection);
    let answer = idle
        .send_request(tool_call(
            &url,
            "slow__sleep",
            json!({"ms": 0, "tag": "h1"}),
        ))
        .await
        .unwrap();
    assert!(message_of(answer).await["result"].is_object());

    // An HTTP/2 call that takes three seconds.
    let stream = TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let slow = tokio::spawn(async move {
        let call = tool_call(&url, "slow__sleep", json!({"ms": 3000, "tag": "h2"}));
        message_of(sender.send_request(call).await.unwrap()).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    gateway.signal(nix::sys::signal::Signal::SIGTERM);
    // The idle connection is closed as the drain begins, not when it ends (the call in flight
    // takes 2.7 s more).
    tokio::time::timeout(Duration::from_secs(2), idle_connection)
        .await
        .expect("the idle connection closed at once")
        .unwrap()
        .unwrap();
    let reply = slow.await.unwrap();
    assert!(reply["result"].is_object(), "{reply}");
    assert!(gateway.wait_exit().success());
}
