//! A credential is checked for the life of every channel opened with it, not only when the
//! channel opens. Revoking an API key, logging out, or a login token expiring ends, within a
//! second: a WebSocket session (closed with 1008), a session's GET event stream, and a
//! session-era POST whose answer is still streaming (its call is cancelled upstream); the
//! session itself is gone; and a new connection with the old credential gets 401.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    api::{ADMIN_PASSWORD, Api, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, client},
    process::{ConfigDir, ServeProcess},
    ws,
};
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

/// How long after its credential ends a channel may still be open.
const WITHIN: Duration = Duration::from_secs(1);

fn gateway(token_ttl_secs: u64) -> ServeProcess {
    let yaml = format!(
        "auth:\n  enabled: true\n  token_ttl_secs: {token_ttl_secs}\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo", "sleep"], "")
    );
    ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env())
}

/// The channels one credential holds open, each reporting when it ends.
struct Channels {
    websocket: tokio::task::JoinHandle<(Instant, Option<CloseCode>, String)>,
    get_stream: oneshot::Receiver<Instant>,
    post_stream: oneshot::Receiver<Instant>,
    session_id: String,
}

/// Reads `response` to its end; reports when that came.
fn watch_end(response: reqwest::Response) -> oneshot::Receiver<Instant> {
    let (ended, end) = oneshot::channel();
    tokio::spawn(async move {
        let mut chunks = response.bytes_stream();
        while let Some(Ok(_)) = chunks.next().await {}
        let _ = ended.send(Instant::now());
    });
    end
}

/// Opens a WebSocket session, a streamable HTTP session with its GET stream, and a call in
/// that session whose answer streams for ten seconds, all with `token`; checks each works.
async fn open_channels(gateway: &ServeProcess, token: &str) -> Channels {
    let mut socket = ws::open_as(&gateway.ws_url("/ws"), Some(token))
        .await
        .expect("WebSocket with a good credential");
    ws::initialize(&mut socket).await;
    let reply = ws::request(&mut socket, 1, "tools/call", json!({"name": "fx__echo"})).await;
    assert!(reply["result"].is_object(), "{reply}");
    let websocket = tokio::spawn(async move {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|frame| (Some(frame.code), frame.reason.to_string()))
                        .unwrap_or_default();
                    return (Instant::now(), code, reason);
                }
                Some(Ok(_)) => {}
                _ => return (Instant::now(), None, String::new()),
            }
        }
    });

    let bearer = format!("Bearer {token}");
    let mut session =
        RawSession::open_with(&gateway.mcp_url(), &[("authorization", bearer.as_str())]).await;
    let reply = session.call("fx__echo", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    let session_id = session.session_id.clone().unwrap();
    let get = client()
        .get(gateway.mcp_url())
        .header("authorization", &bearer)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session_id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    let get_stream = watch_end(get);
    let call = json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
                      "params": {"name": "fx__sleep", "arguments": {"ms": 10_000, "tag": "held"}}});
    let post = client()
        .post(gateway.mcp_url())
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session_id)
        .header("mcp-protocol-version", "2025-11-25")
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::OK);
    let post_stream = watch_end(post);
    // Let the call reach the upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    Channels {
        websocket,
        get_stream,
        post_stream,
        session_id,
    }
}

/// Checks that every channel ended within [`WITHIN`] of `ended`, the WebSocket with 1008, and
/// that `token` opens nothing any more.
async fn assert_all_ended(gateway: &ServeProcess, channels: Channels, ended: Instant, token: &str) {
    let limit = ended + WITHIN;
    let give_up = tokio::time::Instant::from_std(limit + WITHIN * 2);
    let (at, code, reason) = tokio::time::timeout_at(give_up, channels.websocket)
        .await
        .expect("the WebSocket was closed")
        .unwrap();
    assert!(at <= limit, "the WebSocket closed {:?} late", at - limit);
    assert_eq!(code, Some(CloseCode::Policy), "{reason}");
    assert!(reason.contains("credential"), "{reason}");
    for (what, end) in [
        ("the GET stream", channels.get_stream),
        ("the streaming POST", channels.post_stream),
    ] {
        let at = tokio::time::timeout_at(give_up, end)
            .await
            .unwrap_or_else(|_| panic!("{what} never ended"))
            .unwrap();
        assert!(at <= limit, "{what} ended {:?} late", at - limit);
    }

    // The call in flight was cancelled at the upstream too, not left to run out.
    while !gateway.log().contains("sleep held cancelled") {
        assert!(
            Instant::now() < give_up.into_std(),
            "the held call was not cancelled upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The old credential opens nothing now.
    let refused = ws::open_as(&gateway.ws_url("/ws"), Some(token)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401);
        }
        other => panic!("a WebSocket with the old credential: {other:?}"),
    }
    let bearer = format!("Bearer {token}");
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "0"}}});
    for session in [None, Some(channels.session_id.as_str())] {
        let mut request = client()
            .post(gateway.mcp_url())
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize.to_string());
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        assert_eq!(
            request.send().await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
}

/// The open sessions, as the admin sees them (with an API key that lives on).
async fn open_sessions(admin: &Api) -> u64 {
    let status = admin.get("/api/v1/system/status").await;
    assert_eq!(status.status, StatusCode::OK, "{status:?}");
    status.body["sessions"].as_u64().unwrap()
}

async fn admin_key_api(gateway: &ServeProcess) -> Api {
    let login = Api::logged_in(gateway).await;
    let key = login.create_key("admin-tools").await;
    Api::new(gateway).with_token(Some(&key))
}

async fn wait_no_sessions(admin: &Api) {
    let deadline = Instant::now() + WITHIN * 2;
    while open_sessions(admin).await != 0 {
        assert!(Instant::now() < deadline, "sessions are left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn revoking_an_api_key_ends_its_channels_within_a_second() {
    let gateway = gateway(3600);
    let admin = admin_key_api(&gateway).await;
    let created = admin
        .post("/api/v1/auth/keys", json!({"name": "to-revoke"}))
        .await;
    let key = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_i64().unwrap();
    let channels = open_channels(&gateway, &key).await;
    assert_eq!(open_sessions(&admin).await, 2);

    let revoked = admin
        .send(Method::DELETE, &format!("/api/v1/auth/keys/{id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{revoked:?}");
    let ended = Instant::now();
    assert_all_ended(&gateway, channels, ended, &key).await;
    wait_no_sessions(&admin).await;
}

#[tokio::test]
async fn logging_out_ends_its_channels_within_a_second() {
    let gateway = gateway(3600);
    let admin = admin_key_api(&gateway).await;
    let login = Api::logged_in(&gateway).await;
    let token = login.token.clone().unwrap();
    let channels = open_channels(&gateway, &token).await;

    let out = login.post("/api/v1/auth/logout", json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{out:?}");
    let ended = Instant::now();
    assert_all_ended(&gateway, channels, ended, &token).await;
    wait_no_sessions(&admin).await;
}

#[tokio::test]
async fn an_expiring_login_ends_its_channels_within_a_second() {
    let gateway = gateway(4);
    let admin = admin_key_api(&gateway).await;
    let started = Instant::now();
    let answer = client()
        .post(format!("{}/api/v1/auth/login", gateway.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let body: Value = answer.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let expires_at = body["expires_at"].as_i64().unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let expires = Instant::now() + Duration::from_millis((expires_at - now_ms).max(0) as u64);
    let channels = open_channels(&gateway, &token).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the channels opened before the token expired"
    );
    assert_all_ended(&gateway, channels, expires, &token).await;
    wait_no_sessions(&admin).await;
}
