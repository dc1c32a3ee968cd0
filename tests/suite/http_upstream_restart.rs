//! A streamable-HTTP upstream (the official Python SDK's server, session era) that goes away
//! and comes back: while it is down, calls to it fail at once with an error naming it and the
//! other upstreams serve; once it is back, its first call meets `404 Session not found` (the
//! new process never saw our session), which the gateway answers by initializing a new
//! session and sending the call again. That retry is safe: a 404 means the upstream turned
//! the request away without acting on it. The client sees nothing of it.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    fixture_upstream_yaml, http::RawSession, process::ServeProcess, served::ServedUpstream,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_http_upstream_gets_a_new_session_and_the_call_goes_through() {
    let first = ServedUpstream::python_script("plain_upstream.py");
    let port = first.port;
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  plain:\n    url: {:?}\n    protocol: legacy\n{}",
        first.url("/mcp"),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let before = session.call("plain__pid", json!({})).await;
    let before = before["result"]["content"][0]["text"].clone();
    assert!(before.is_string(), "{before}");

    drop(first);
    let down = session
        .call("plain__echo", json!({"text": "anyone?"}))
        .await;
    assert_eq!(down["error"]["data"]["upstream"], "plain", "{down}");
    let others = session.call("fx__echo", json!({})).await;
    assert!(others["result"].is_object(), "{others}");

    let _second = ServedUpstream::python_script_on(port, "plain_upstream.py");
    // The call may land while the gateway is still reconnecting; it must succeed soon, on
    // the new process.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let reply = session.call("plain__pid", json!({})).await;
        if reply["result"].is_object() {
            break reply["result"]["content"][0]["text"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the upstream never came back: {reply}\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(before, after, "the same process answered");
    // The same connection carried on: the new session came from the re-initialization on
    // 404, not from the supervisor opening the upstream again.
    assert_eq!(
        gateway.log().matches("ready upstream=plain").count(),
        1,
        "{}",
        gateway.log()
    );
    let echo = session.call("plain__echo", json!({"text": "back"})).await;
    assert_eq!(echo["result"]["content"][0]["text"], "back", "{echo}");
}
