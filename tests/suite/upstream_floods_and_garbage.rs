//! An upstream that writes what is not JSON-RPC to stdout: a stray line is skipped (servers
//! that print a banner keep working), but a message over `limits.max_line_bytes` — a huge
//! answer, or a flood with no newline — fails that upstream at once: its call gets an error
//! naming it and the limit, the others are unaffected, and it is restarted. Memory stays
//! bounded by the line cap throughout.

use crate::common;

use std::time::{Duration, Instant};

use common::{example_bin, fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "restart:\n  initial_backoff_secs: 0.2\nlimits:\n  max_line_bytes: 1048576\nupstreams:\n  flt:\n    command: {:?}\n{}",
        example_bin("fault_upstream").display().to_string(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ))
}

async fn wait_ready(gateway: &ServeProcess) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.health()["upstreams"][0]["state"] != "ready" {
        assert!(
            Instant::now() < deadline,
            "flt not back: {}",
            gateway.health()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_stray_line_is_skipped() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("flt__garbage", json!({})).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "after garbage",
        "{reply}"
    );
    // The warning may be written a little after the answer.
    gateway.wait_for_log("not JSON-RPC").await;
    assert_eq!(gateway.health()["upstreams"][0]["state"], "ready");
}

#[tokio::test]
async fn an_oversized_answer_or_a_flood_fails_the_upstream_at_once() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for (tool, arguments) in [
        ("flt__huge", json!({"bytes": 2_000_000})),
        ("flt__flood", json!({"mb": 8})),
    ] {
        let started = Instant::now();
        let reply = session.call(tool, arguments).await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{tool} failed only after {took:?}"
        );
        let message = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("flt") && message.contains("max_line_bytes"),
            "{tool}: {reply}"
        );
        let other = session.call("fx__echo", json!({})).await;
        assert!(other["result"].is_object(), "the others serve: {other}");
        wait_ready(&gateway).await;
        let again = session.call("flt__ok", json!({})).await;
        assert_eq!(again["result"]["content"][0]["text"], "ok", "{again}");
    }
}

/// The most recent failure of the upstream in health, once there is one (its state is
/// published a moment after the calls in flight have failed).
async fn flt_failure(gateway: &ServeProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = gateway.health();
        if let Some(failure) = health["upstreams"][0]["last_error"].as_str() {
            return failure.to_owned();
        }
        assert!(Instant::now() < deadline, "no failure in health: {health}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Calls `tool`, whose answer never comes whole, and checks the call failed long before the
/// call deadline.
async fn call_failing_at_once(session: &mut RawSession, tool: &str) -> serde_json::Value {
    let started = Instant::now();
    let reply = session.call(tool, json!({})).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{tool} failed only after {took:?}"
    );
    assert!(reply["error"].is_object(), "{reply}");
    reply
}

#[tokio::test]
async fn an_answer_that_cannot_be_read_fails_its_call_at_once() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = call_failing_at_once(&mut session, "flt__bad_utf8").await;
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("flt") && message.contains("cannot be read") && message.contains("UTF-8"),
        "{reply}"
    );
    // The connection itself is sound: the next call on it works.
    assert_eq!(gateway.health()["upstreams"][0]["state"], "ready");
    let again = session.call("flt__ok", json!({})).await;
    assert_eq!(again["result"]["content"][0]["text"], "ok", "{again}");
}

#[tokio::test]
async fn half_an_answer_fails_the_connection_and_health_says_why() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = call_failing_at_once(&mut session, "flt__broken_answer").await;
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("flt"),
        "{reply}"
    );
    let failure = flt_failure(&gateway).await;
    assert!(
        failure.contains("JSON-RPC message that cannot be read"),
        "{}",
        gateway.health()
    );
    wait_ready(&gateway).await;
    let again = session.call("flt__ok", json!({})).await;
    assert_eq!(again["result"]["content"][0]["text"], "ok", "{again}");
    assert!(
        flt_failure(&gateway).await.contains("cannot be read"),
        "health keeps the last failure once it is back: {}",
        gateway.health()
    );
}

#[tokio::test]
async fn health_names_the_line_limit_as_the_reason_for_a_closed_connection() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("flt__huge", json!({"bytes": 2_000_000})).await;
    assert!(reply["error"].is_object(), "{reply}");
    let failure = flt_failure(&gateway).await;
    assert!(failure.contains("max_line_bytes"), "{}", gateway.health());
    wait_ready(&gateway).await;
    assert!(
        flt_failure(&gateway).await.contains("max_line_bytes"),
        "{}",
        gateway.health()
    );
}
