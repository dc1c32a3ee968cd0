//! An upstream that hangs on a call: the call fails at its deadline with an error naming the
//! upstream, the upstream is sent `notifications/cancelled`, and the call's slot is free for
//! the next call (the upstream allows one call at a time here, so a leaked slot would block
//! it). Deadlines come from `timeouts.call_secs`, the upstream's `call_timeout_secs`, or the
//! upstream's `tool_timeouts` for one tool.

use crate::common;

use std::time::{Duration, Instant};

use common::{example_bin, http::RawSession, process::ServeProcess};
use serde_json::json;

/// An upstream with a 0.5 s deadline, one call slot, and a `sleep_patient` tool allowed 10 s.
fn gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "upstreams:\n  fx:\n    command: {:?}\n    args: [\"--label\", \"fx\", \"--sleep\", \"--tool\", \"sleep_patient\"]\n    call_timeout_secs: 0.5\n    max_concurrent_calls: 1\n    tool_timeouts: {{sleep_patient: 10}}\n",
        example_bin("fixture_upstream").display().to_string()
    ))
}

#[tokio::test]
async fn a_hung_call_fails_at_its_deadline_is_cancelled_upstream_and_frees_its_slot() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let started = Instant::now();
    let reply = session
        .call("fx__sleep", json!({"ms": 60000, "tag": "hung"}))
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("'fx'") && message.contains("did not answer within"),
        "{reply}"
    );
    gateway.wait_for_log("sleep hung cancelled").await;
    // The only slot is free again: the next call is served.
    let next = session
        .call("fx__sleep", json!({"ms": 1, "tag": "next"}))
        .await;
    assert!(next["result"].is_object(), "{next}");
}

#[tokio::test]
async fn a_tool_with_its_own_deadline_may_take_longer_than_the_upstreams() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    // 1.5 s is past the upstream's 0.5 s but within this tool's 10 s.
    let reply = session
        .call("fx__sleep_patient", json!({"ms": 1500, "tag": "patient"}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    assert_eq!(reply["result"]["isError"], json!(false), "{reply}");
}
