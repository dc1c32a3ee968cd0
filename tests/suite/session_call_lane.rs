//! A plain `tools/call` in a session-era session over HTTP takes the gateway's own way too
//! (`downstream/http/session_call.rs`): routed by lookup, sent on the upstream's lane, its
//! result carried as JSON text on an event stream. What the client gets is what rmcp's way
//! gives it (checked against a call whose `_meta` holds a key of the protocol's own this way
//! does not read, which goes rmcp's way); an
//! upstream's `input_required` round is put to the client on the call's stream and the
//! client's answer, POSTed to its session, resumes the call; a call the client cancels is
//! cancelled upstream. A session-era streamable HTTP upstream is reached on the gateway's
//! own lane too, in the session rmcp's client opened, with the server's requests and log
//! messages on the call's stream.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    fixture_upstream_yaml,
    fixtures::{HttpFixture, Implementation},
    http::{RawSession, client, collect_stream, wait_for},
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Debug: each call's "call done" line says which way it went (`lane=true`).
fn debug_gateway(yaml: &str) -> ServeProcess {
    ServeProcess::start_in(
        ConfigDir::new(yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    )
}

/// A debug gateway (see [`debug_gateway`]) in front of one fixture upstream, `fx`, with
/// `echo` and `sleep`, ready.
fn echo_and_sleep_gateway() -> ServeProcess {
    let gateway = debug_gateway(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo", "sleep"], "")
    ));
    gateway.wait_ready(Duration::from_secs(20));
    gateway
}

/// The JSON-RPC message an event-stream (or JSON) answer carries last.
fn last_message(body: &str) -> Value {
    let text = body
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .rfind(|data| !data.trim().is_empty())
        .unwrap_or(body);
    serde_json::from_str(text).unwrap_or(json!({"unreadable": body}))
}

/// A plain call and the same call with a key of the protocol's own in `_meta` (rmcp's way) get
/// the same answer.
async fn answers_as_rmcp_does(gateway: &ServeProcess) {
    gateway.wait_ready(Duration::from_secs(20));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let arguments = json!({"k": "v", "n": [1, 2.5], "s": "line\nbreak \u{e9}"});
    let plain = session
        .request(
            "tools/call",
            json!({"name": "fx__echo", "arguments": arguments}),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    assert!(
        plain.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        plain.headers
    );
    let plain = last_message(&plain.body);
    gateway.calls_done(1).await;
    assert_eq!(
        gateway.lane_calls(),
        1,
        "the plain call took the lane:\n{}",
        gateway.log()
    );
    let typed = session
        .request(
            "tools/call",
            json!({"name": "fx__echo", "arguments": arguments,
                   "_meta": {"io.modelcontextprotocol/unread": true}}),
        )
        .await;
    let typed = last_message(&typed.body);
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 1, "that call goes rmcp's way");
    assert!(plain["result"].get("resultType").is_none(), "{plain}");
    assert_eq!(plain["result"], typed["result"], "{plain} vs {typed}");
    assert_eq!(
        plain["result"]["structuredContent"]["arguments"], arguments,
        "{plain}"
    );
}

#[tokio::test]
async fn a_call_to_a_session_era_stdio_upstream_answers_as_rmcp_does() {
    let gateway = debug_gateway(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    answers_as_rmcp_does(&gateway).await;
}

#[tokio::test]
async fn a_call_to_a_2026_07_28_stdio_upstream_answers_as_rmcp_does() {
    let gateway = debug_gateway(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "    protocol: modern\n")
    ));
    answers_as_rmcp_does(&gateway).await;
}

/// A session that declares `capabilities`.
async fn open_declaring(url: &str, capabilities: Value) -> RawSession {
    let mut session = RawSession {
        client: client(),
        url: url.to_owned(),
        session_id: None,
        next_id: 1,
        headers: Vec::new(),
    };
    let reply = session
        .post_json(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "asked", "version": "0"}}}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    session.session_id = Some(reply.headers["mcp-session-id"].to_str().unwrap().to_owned());
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert!(session.post_json(&initialized).await.status.is_success());
    session
}

/// POSTs a call in `session` and collects its answer as it streams.
async fn start_call(
    session: &RawSession,
    id: u64,
    name: &str,
    arguments: Value,
) -> std::sync::Arc<std::sync::Mutex<String>> {
    let call = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                      "params": {"name": name, "arguments": arguments}});
    let response = session
        .client
        .post(&session.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .header("mcp-session-id", session.session_id.clone().unwrap())
        .body(call.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    collect_stream(response)
}

/// The first server→client request of method `method` on a collected stream.
fn request_on(stream: &str, method: &str) -> Value {
    stream
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(|message| message["method"] == method)
        .unwrap_or_else(|| panic!("no {method} in {stream}"))
}

#[tokio::test]
async fn an_input_required_round_is_put_to_the_session_on_the_calls_stream() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let gateway = debug_gateway(&format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: modern\n",
        fixture.url
    ));
    gateway.wait_ready(Duration::from_secs(30));
    let session = open_declaring(&gateway.mcp_url(), json!({"elicitation": {}})).await;
    let stream = start_call(
        &session,
        7,
        "fx__test_input_required_result_elicitation",
        json!({}),
    )
    .await;
    wait_for(&stream, "elicitation/create", 1).await;
    let asked = request_on(&stream.lock().unwrap(), "elicitation/create");
    assert_eq!(asked["params"]["message"], "What is your name?", "{asked}");

    // An answer to nothing we asked (rmcp takes and drops it) does not answer the call's.
    let stray = json!({"jsonrpc": "2.0", "id": "mcps-ask-999999", "result": {"action": "decline"}});
    session.post_json(&stray).await;
    let answer = json!({"jsonrpc": "2.0", "id": asked["id"],
                        "result": {"action": "accept", "content": {"name": "Ada"}}});
    let posted = session.post_json(&answer).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED, "{}", posted.body);
    wait_for(&stream, "Hello, Ada!", 1).await;
    let done = last_message(&stream.lock().unwrap());
    assert_eq!(done["id"], 7, "{done}");
    assert!(done["result"].get("resultType").is_none(), "{done}");
    assert!(gateway.lane_calls() >= 1, "{}", gateway.log());

    // A client that did not declare elicitation is not asked: the call fails, as on rmcp's way.
    let undeclared = open_declaring(&gateway.mcp_url(), json!({})).await;
    let stream = start_call(
        &undeclared,
        8,
        "fx__test_input_required_result_elicitation",
        json!({}),
    )
    .await;
    wait_for(&stream, "\"id\":8", 1).await;
    let refused = last_message(&stream.lock().unwrap());
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("elicitation")),
        "{refused}"
    );
}

#[tokio::test]
async fn a_call_the_client_cancels_is_cancelled_upstream() {
    let gateway = echo_and_sleep_gateway();
    let session = RawSession::open(&gateway.mcp_url()).await;
    let call = json!({"jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
                      "params": {"name": "fx__sleep", "arguments": {"ms": 10_000, "tag": "own-way"}}});
    let handle = session.handle();
    let pending = tokio::spawn(async move { handle.post_json(&call).await });
    gateway.wait_for_log("call sleep").await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": "slow-1", "reason": "changed my mind"}});
    let posted = session.post_json(&cancel).await;
    assert_eq!(posted.status, StatusCode::ACCEPTED);
    gateway.wait_for_log("sleep own-way cancelled").await;
    assert!(gateway.lane_calls() >= 1, "{}", gateway.log());
    pending.abort();
}

/// A quick call's event stream is sent whole, as one body of known length; a call that takes
/// its time has its stream started long before its answer (after the short wait in which a
/// quick answer would have been sent whole), so the client sees its request accepted, and
/// the answer then comes on that stream. Not a measure of speed: the slow call takes 4 s,
/// and its stream starts after a tenth of a second, or with its answer.
#[tokio::test]
async fn a_quick_calls_stream_goes_whole_and_a_slow_ones_starts_before_its_answer() {
    let gateway = echo_and_sleep_gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let quick = session
        .request(
            "tools/call",
            json!({"name": "fx__echo", "arguments": {"message": "hi"}}),
        )
        .await;
    let length = quick.headers.get("content-length");
    assert_eq!(
        length.map(|length| length.to_str().unwrap().parse::<usize>().unwrap()),
        Some(quick.body.len()),
        "{:?}",
        quick.headers
    );
    assert!(quick.headers.get("transfer-encoding").is_none());
    let text = &quick.message()["result"]["content"][0]["text"];
    assert_eq!(text, r#"fx:echo:{"message":"hi"}"#);

    // Two in turn: the clock the calls' waits share stops while nobody waits, and must
    // start again for the second.
    for id in [21, 22] {
        let arguments = json!({"ms": 4_000, "tag": "slow"});
        let stream = start_call(&session, id, "fx__sleep", arguments).await;
        let started = Instant::now();
        wait_for(&stream, &format!("\"id\":{id}"), 1).await;
        let waited = started.elapsed();
        assert!(
            waited > Duration::from_secs(2),
            "the stream started with its answer, {waited:?} before it"
        );
        let done = last_message(&stream.lock().unwrap());
        assert!(done["result"]["content"].is_array(), "{done}");
    }
    assert!(gateway.lane_calls() >= 2, "{}", gateway.log());
}

/// Each SDK's streamable HTTP server, in the session era, behind the gateway: reached with
/// `protocol: legacy` (its only connection is a session) and with `auto` (a session beside
/// the 2026-07-28 connection, for session-era clients). A plain call goes on the gateway's
/// own lane, a POST in the upstream's session; the server's elicitation request on the call's
/// stream reaches the client on its call's stream, and the client's answer reaches the tool;
/// the tool's log messages reach the client at the level it set.
#[tokio::test]
async fn each_sdks_session_era_http_server_is_reached_on_the_lane() {
    for implementation in Implementation::ALL {
        let label = implementation.label();
        let fixture = HttpFixture::start(implementation);
        for protocol in ["legacy", "auto"] {
            let gateway = debug_gateway(&format!(
                "upstreams:\n  fx:\n    url: {:?}\n    protocol: {protocol}\n",
                fixture.url
            ));
            gateway.wait_ready(Duration::from_secs(30));
            let mut session = open_declaring(&gateway.mcp_url(), json!({"elicitation": {}})).await;
            let stream = start_call(
                &session,
                1,
                "fx__test_elicitation",
                json!({"message": "Your name?"}),
            )
            .await;
            wait_for(&stream, "elicitation/create", 1).await;
            let asked = request_on(&stream.lock().unwrap(), "elicitation/create");
            assert_eq!(asked["params"]["message"], "Your name?", "{label}: {asked}");
            let answer = json!({"jsonrpc": "2.0", "id": asked["id"],
                                "result": {"action": "accept", "content": {"response": "Ada"}}});
            let posted = session.post_json(&answer).await;
            assert_eq!(
                posted.status,
                StatusCode::ACCEPTED,
                "{label}: {}",
                posted.body
            );
            wait_for(&stream, "\"id\":1,", 1).await;
            let done = last_message(&stream.lock().unwrap());
            let text = done["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default();
            assert!(
                text.contains("action=accept") && text.contains("Ada"),
                "{label} ({protocol}): {done}"
            );

            let level = session
                .request("logging/setLevel", json!({"level": "info"}))
                .await;
            assert_eq!(level.status, StatusCode::OK, "{label}: {}", level.body);
            every_log_message_arrives(&session, label, protocol).await;
            gateway.calls_done(1 + LOGGING_CALLS).await;
            assert_eq!(
                gateway.lane_calls(),
                1 + LOGGING_CALLS,
                "{label} ({protocol}): every call took the lane:\n{}",
                gateway.log()
            );
        }
    }
}

/// How many times [`every_log_message_arrives`] calls the logging tool.
const LOGGING_CALLS: usize = 5;

/// Calls the tool that logs three messages, a few times in a row: each message reaches the
/// client once, on the call's stream or on the session's GET stream. The rmcp fixture sends
/// them on its session's own stream, where the last can arrive after the call's answer; the
/// gateway still owes it to this client (the calls here are the upstream's only ones).
async fn every_log_message_arrives(session: &RawSession, label: &str, protocol: &str) {
    let aside = session.open_stream().await;
    let mut streams = Vec::new();
    for n in 0..LOGGING_CALLS {
        let id = 2 + n as u64;
        let stream = start_call(session, id, "fx__test_tool_with_logging", json!({})).await;
        wait_for(&stream, &format!("\"id\":{id},"), 1).await;
        streams.push(stream);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let messages = [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ];
    loop {
        let all: String = streams
            .iter()
            .chain([&aside])
            .map(|stream| stream.lock().unwrap().clone())
            .collect();
        let counts: Vec<usize> = messages.iter().map(|m| all.matches(m).count()).collect();
        if counts.iter().all(|count| *count == LOGGING_CALLS) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline && counts.iter().all(|c| *c <= LOGGING_CALLS),
            "{label} ({protocol}): each of {messages:?} {LOGGING_CALLS} times, got {counts:?}:\n{all}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
