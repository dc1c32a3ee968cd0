//! A client that stops reading is disconnected and the gateway's memory for it stays bounded:
//! - WebSocket and stdio: what is queued for it passes `limits.max_outbound_bytes` (or one
//!   write waits `timeouts.client_write_stall_secs`) and its session ends;
//! - streamable HTTP: the kernel drops a connection whose data has gone unacknowledged for
//!   `timeouts.client_write_stall_secs` (TCP user timeout).
//!
//! The upstream answers each call with 1 MiB, so a few unread calls fill every buffer. Other
//! clients are served throughout.

use crate::common;

use std::{
    io::{Read, Write},
    time::{Duration, Instant},
};

use common::{
    example_bin,
    http::RawSession,
    process::{ConfigDir, ServeProcess, spawn_stdio},
};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::net::TcpSocket;
use tokio_tungstenite::{client_async, tungstenite::Message};

const MIB: usize = 1024 * 1024;

fn yaml(stall_secs: u32) -> String {
    format!(
        "limits:\n  max_outbound_bytes: {}\ntimeouts:\n  client_write_stall_secs: {stall_secs}\nupstreams:\n  flt:\n    command: {:?}\n",
        2 * MIB,
        example_bin("fault_upstream").display().to_string()
    )
}

fn huge_call(id: u64) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
           "params": {"name": "flt__huge", "arguments": {"bytes": MIB}}})
    .to_string()
}

/// A TCP connection to the gateway with a small receive window.
async fn small_window(gateway: &ServeProcess) -> tokio::net::TcpStream {
    let authority = gateway.base.trim_start_matches("http://");
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(authority.parse().unwrap()).await.unwrap()
}

/// Another client is served while (or after) one is stuck.
async fn others_are_served(gateway: &ServeProcess) {
    let mut other = RawSession::open(&gateway.mcp_url()).await;
    let reply = other.call("flt__ok", json!({})).await;
    assert_eq!(reply["result"]["content"][0]["text"], "ok", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_disconnected() {
    // A long stall: the queue bound is what must end it.
    let gateway = ServeProcess::start(&yaml(600));
    let stream = small_window(&gateway).await;
    let (mut socket, _) = client_async(gateway.ws_url("/ws"), stream).await.unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "slow", "version": "0"}}});
    socket
        .send(Message::text(initialize.to_string()))
        .await
        .unwrap();
    socket.next().await.unwrap().unwrap();
    socket
        .send(Message::text(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        ))
        .await
        .unwrap();
    const CALLS: u64 = 24;
    for id in 1..=CALLS {
        socket.send(Message::text(huge_call(id))).await.unwrap();
    }
    gateway.wait_for_log("the client is not reading").await;
    others_are_served(&gateway).await;
    // Reading now: the connection ends before all the answers arrive.
    let mut answers = 0;
    let read_all = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(Ok(message)) = socket.next().await {
            if message.is_text() {
                answers += 1;
            }
        }
    })
    .await;
    assert!(read_all.is_ok(), "the connection stayed open");
    assert!(answers < CALLS, "all {answers} answers arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_client_that_stops_reading_is_disconnected() {
    let gateway = ServeProcess::start(&yaml(1));
    let session = RawSession::open(&gateway.mcp_url()).await;
    let mut stream = small_window(&gateway).await.into_std().unwrap();
    stream.set_nonblocking(false).unwrap();
    let authority = gateway.base.trim_start_matches("http://").to_owned();
    const CALLS: u64 = 16;
    for id in 1..=CALLS {
        let body = huge_call(id);
        write!(
            stream,
            "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: 2025-11-25\r\n\
             Mcp-Session-Id: {}\r\nContent-Length: {}\r\n\r\n{body}",
            session.session_id.as_deref().unwrap(),
            body.len()
        )
        .unwrap();
    }
    // Not reading: the gateway's writes stall, and after the 1 s user timeout the kernel
    // drops the connection.
    tokio::time::sleep(Duration::from_secs(4)).await;
    others_are_served(&gateway).await;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = 0usize;
    let mut buffer = vec![0; 64 * 1024];
    let ended = loop {
        match stream.read(&mut buffer) {
            Ok(0) => break true,
            Ok(read) => received += read,
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => break false,
            // Reset by the gateway's kernel.
            Err(_) => break true,
        }
    };
    assert!(ended, "the connection stayed open after {received} bytes");
    assert!(
        received < CALLS as usize * MIB,
        "every answer arrived ({received} bytes)"
    );
}

#[test]
fn a_stdio_client_that_stops_reading_ends_the_session() {
    let config = ConfigDir::new(&yaml(1));
    let mut child = spawn_stdio(&config);
    let mut stdin = child.stdin.take().unwrap();
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "slow", "version": "0"}}});
    writeln!(stdin, "{initialize}").unwrap();
    writeln!(
        stdin,
        "{}",
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
    )
    .unwrap();
    for id in 1..=8 {
        // The gateway may stop reading too, once it has given up.
        if writeln!(stdin, "{}", huge_call(id)).is_err() {
            break;
        }
    }
    // stdout is never read: its pipe fills, a write stalls, the gateway gives up and exits.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "mcps stdio is still running with a client that does not read"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    assert!(status.code().is_some(), "{status:?}");
}
