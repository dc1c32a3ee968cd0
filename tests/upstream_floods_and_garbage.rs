//! An upstream that writes what is not JSON-RPC to stdout: a stray line is skipped (servers
//! that print a banner keep working), but a message over `limits.max_line_bytes` — a huge
//! answer, or a flood with no newline — fails that upstream at once: its call gets an error
//! naming it and the limit, the others are unaffected, and it is restarted. Memory stays
//! bounded by the line cap throughout.

mod common;

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
    assert!(gateway.log().contains("not JSON-RPC"), "{}", gateway.log());
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
