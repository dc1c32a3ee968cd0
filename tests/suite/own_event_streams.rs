//! An event stream that lasts while its client listens (a session-era GET stream, a
//! 2026-07-28 `subscriptions/listen`) is taken from hyper over HTTP/1.1 and written by the
//! connection itself (`downstream/listener/handover.rs`), so that hyper's buffers go while
//! the client listens. A client sees an ordinary chunked response: hyper's own client reads
//! its events and its end here, the connection that carried it serves the next request (one
//! pipelined behind the stream too), one asked to close closes after it, and one its client
//! closes is let go at once. The official SDKs' clients listen through it in
//! `session_sleep`, `resource_subscriptions` and the interop matrix.

use crate::common;

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use common::{
    fixtures::{Implementation, stdio_upstream_yaml},
    http::RawSession,
    process::{ConfigDir, ServeProcess},
    wait_logged,
};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

const TAKEN_OVER: &str = "connection writes its event stream itself";

/// A gateway in front of the TypeScript SDK's fixture that logs its connections' handovers,
/// with `settings` (YAML) before its upstreams.
fn gateway_with(settings: &str) -> (ServeProcess, SocketAddr) {
    let yaml = format!(
        "{settings}upstreams:\n{}",
        stdio_upstream_yaml(Implementation::TypeScript, "fx", &[], "auto")
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[(
            "RUST_LOG",
            "info,rmcp=warn,mcps::downstream::listener=debug",
        )],
    );
    gateway.wait_ready(Duration::from_secs(30));
    let address = gateway.base.trim_start_matches("http://").parse().unwrap();
    (gateway, address)
}

/// A hyper HTTP/1.1 client connection to `address`, driven on a task of its own.
async fn connect(address: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// A session-era request to `url` on `sender`'s connection, in `session` if given.
fn request(
    url: &str,
    method: http::Method,
    session: Option<&str>,
    body: Option<Value>,
) -> http::Request<Full<Bytes>> {
    let mut request = http::Request::builder()
        .method(method)
        .uri(url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-11-25");
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let body = body.map_or_else(Bytes::new, |body| Bytes::from(body.to_string()));
    request.body(Full::new(body)).unwrap()
}

/// A session-era `initialize` request.
fn initialize(url: &str) -> http::Request<Full<Bytes>> {
    let message = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "own-event-streams", "version": "0"}}});
    request(url, http::Method::POST, None, Some(message))
}

/// Reads `body` into `heard` until it holds `needle`.
async fn hear(body: &mut hyper::body::Incoming, heard: &mut String, needle: &str) {
    while !heard.contains(needle) {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap_or_else(|_| panic!("{needle} arrived on the stream: {heard}"))
            .expect("the stream went on")
            .expect("a whole chunk");
        if let Ok(data) = frame.into_data() {
            heard.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

/// `initialize` and `notifications/initialized` on `sender`'s connection: the session's id.
async fn open_session(sender: &mut SendRequest<Full<Bytes>>, url: &str) -> String {
    let response = sender.send_request(initialize(url)).await.unwrap();
    assert_eq!(response.status(), 200);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    response.into_body().collect().await.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let response = sender
        .send_request(request(
            url,
            http::Method::POST,
            Some(&session),
            Some(initialized),
        ))
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.into_body().collect().await.unwrap();
    session
}

/// A session opened on a connection of its own, closed once it is open.
async fn open_session_apart(address: SocketAddr, url: &str) -> String {
    let mut sender = connect(address).await;
    open_session(&mut sender, url).await
}

/// A connection to `address` on which `bytes` are sent at once.
async fn send_raw(address: SocketAddr, bytes: &str) -> TcpStream {
    let mut connection = TcpStream::connect(address).await.unwrap();
    connection.write_all(bytes.as_bytes()).await.unwrap();
    connection
}

/// Ends session `session` (a DELETE from another client), and so its stream.
async fn end_session(url: &str, session: &str) {
    let session = RawSession {
        client: common::http::client(),
        url: url.to_owned(),
        session_id: Some(session.to_owned()),
        next_id: 1,
        headers: Vec::new(),
    };
    session.close().await;
}

/// A raw session-era GET for `session`'s stream, with `more` headers (each ending in CRLF).
fn raw_get(url: &str, address: SocketAddr, session: &str, more: &str) -> String {
    let path = url.split_once("//").unwrap().1.split_once('/').unwrap().1;
    format!(
        "GET /{path} HTTP/1.1\r\nhost: {address}\r\naccept: text/event-stream\r\n\
         mcp-protocol-version: 2025-11-25\r\nmcp-session-id: {session}\r\n{more}\r\n"
    )
}

/// Reads `connection` into `heard` until `done` says it holds enough, or the connection
/// closes (then `true`).
async fn read_until(
    connection: &mut TcpStream,
    heard: &mut Vec<u8>,
    done: impl Fn(&str) -> bool,
) -> bool {
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !done(&String::from_utf8_lossy(heard)) {
            let mut more = [0u8; 4096];
            let read = connection.read(&mut more).await.unwrap();
            if read == 0 {
                return true;
            }
            heard.extend_from_slice(&more[..read]);
        }
        false
    });
    read.await.unwrap_or_else(|_| {
        panic!(
            "nothing more on the connection: {}",
            String::from_utf8_lossy(heard)
        )
    })
}

/// The Node SDK's client opens its GET stream on the connection that carried `initialize`,
/// as here: the stream's events and its end arrive whole, and the connection goes on.
#[tokio::test]
async fn a_get_stream_on_the_connection_of_its_session_is_written_by_the_gateway() {
    let (gateway, address) = gateway_with("");
    let url = gateway.mcp_url();
    let mut sender = connect(address).await;
    let session = open_session(&mut sender, &url).await;
    let response = sender
        .send_request(request(&url, http::Method::GET, Some(&session), None))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert!(response.headers().contains_key("date"));
    wait_logged(|| gateway.log(), TAKEN_OVER, 1).await;

    // What the session is sent arrives on it: a change the upstream announces.
    let mut body = response.into_body();
    let mut other = RawSession {
        client: common::http::client(),
        url: url.clone(),
        session_id: Some(session.clone()),
        next_id: 10,
        headers: Vec::new(),
    };
    let reply = other.call("fx__test_trigger_tool_change", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    hear(
        &mut body,
        &mut String::new(),
        "notifications/tools/list_changed",
    )
    .await;

    // Ended with its session, the stream ends whole (its last chunk read, no error) ...
    other.close().await;
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(frame) = body.frame().await {
            frame.expect("the stream ends without an error");
        }
    });
    end.await.expect("the stream ended with its session");
    drop(body);
    // ... and the connection that carried it takes the next request.
    let reopened = open_session(&mut sender, &url).await;
    assert_ne!(reopened, session);
}

/// A client that closes its GET stream's connection frees its place at once: with two
/// connections allowed from an address, two more are served right after.
#[tokio::test]
async fn a_get_stream_its_client_closes_is_let_go() {
    let (gateway, address) = gateway_with("limits:\n  max_connections_per_peer: 2\n");
    let url = gateway.mcp_url();
    let session = open_session_apart(address, &url).await;

    let listening = send_raw(address, &raw_get(&url, address, &session, "")).await;
    wait_logged(|| gateway.log(), TAKEN_OVER, 1).await;
    drop(listening);

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        // Both connections, and the stream, closed again before the next try.
        let statuses = {
            let mut first = connect(address).await;
            let mut second = connect(address).await;
            let first = first.send_request(request(&url, http::Method::GET, Some(&session), None));
            let second = second.send_request(initialize(&url));
            let (first, second) = tokio::join!(first, second);
            // The stream is opened again and a new session begun: both connections were let in.
            let status = |answer: hyper::Result<http::Response<hyper::body::Incoming>>| {
                answer
                    .map(|response| response.status().as_u16())
                    .map_err(|error| error.to_string())
            };
            (status(first), status(second))
        };
        if matches!(statuses, (Ok(200), Ok(200))) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the closed stream's connection still holds its place: {statuses:?}\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A 2026-07-28 `subscriptions/listen` streams as long as its client listens, as a GET's
/// stream does, and is written by the connection too: its acknowledgment and the change the
/// upstream announces arrive on it.
#[tokio::test]
async fn a_2026_listen_is_written_by_the_gateway() {
    let (gateway, address) = gateway_with("");
    let url = gateway.mcp_url();
    let mut sender = connect(address).await;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientInfo": {"name": "listener", "version": "0"},
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let listen = json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
                        "params": {"_meta": meta, "notifications": {"toolsListChanged": true}}});
    let listen = http::Request::builder()
        .method(http::Method::POST)
        .uri(&url)
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .body(Full::new(Bytes::from(listen.to_string())))
        .unwrap();
    let response = sender.send_request(listen).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    wait_logged(|| gateway.log(), TAKEN_OVER, 1).await;
    let mut body = response.into_body();
    let mut heard = String::new();
    hear(
        &mut body,
        &mut heard,
        "notifications/subscriptions/acknowledged",
    )
    .await;
    let mut session = RawSession::open(&url).await;
    let reply = session
        .call("fx__test_trigger_tool_change", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    hear(&mut body, &mut heard, "notifications/tools/list_changed").await;
}

/// A GET stream whose request asked for `Connection: close` says so in its head, and its
/// connection closes when the stream ends.
#[tokio::test]
async fn a_get_stream_asked_to_close_closes_its_connection_when_it_ends() {
    let (gateway, address) = gateway_with("");
    let url = gateway.mcp_url();
    let session = open_session_apart(address, &url).await;

    let get = raw_get(&url, address, &session, "connection: close\r\n");
    let mut connection = send_raw(address, &get).await;
    let mut heard = Vec::new();
    read_until(&mut connection, &mut heard, |text| {
        text.contains("\r\n\r\n")
    })
    .await;
    let text = String::from_utf8_lossy(&heard).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nconnection: close\r\n"), "{text}");
    wait_logged(|| gateway.log(), TAKEN_OVER, 1).await;

    end_session(&url, &session).await;
    let closed = read_until(&mut connection, &mut heard, |_| false).await;
    let text = String::from_utf8_lossy(&heard);
    assert!(closed && text.ends_with("\r\n0\r\n\r\n"), "{text}");
}

/// A request a client pipelines behind its GET stream, in the same write, is not lost with
/// hyper's connection: it is answered on that connection once the stream ends.
#[tokio::test]
async fn a_request_pipelined_behind_a_get_stream_is_answered_after_it() {
    let (gateway, address) = gateway_with("");
    let url = gateway.mcp_url();
    let session = open_session_apart(address, &url).await;

    let path = url.split_once("//").unwrap().1.split_once('/').unwrap().1;
    let initialize = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "pipelining", "version": "0"}}})
    .to_string();
    let behind = format!(
        "POST /{path} HTTP/1.1\r\nhost: {address}\r\n\
         accept: application/json, text/event-stream\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{initialize}",
        initialize.len()
    );
    let get = raw_get(&url, address, &session, "");
    let mut connection = send_raw(address, &format!("{get}{behind}")).await;
    wait_logged(|| gateway.log(), TAKEN_OVER, 1).await;

    // The session ended, its stream ends, and the initialize behind it opens a new one.
    end_session(&url, &session).await;
    let mut heard = Vec::new();
    let answered = |text: &str| {
        text.split_once("\r\n0\r\n\r\n")
            .is_some_and(|(_, second)| second.contains("\"result\""))
    };
    let closed = read_until(&mut connection, &mut heard, answered).await;
    let text = String::from_utf8_lossy(&heard);
    assert!(
        !closed,
        "closed before the answer behind the stream: {text}"
    );
    let (_, second) = text.split_once("\r\n0\r\n\r\n").unwrap();
    assert!(second.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(second.contains("mcp-session-id: "), "{text}");
    assert!(!second.contains(&session), "{text}");
}
