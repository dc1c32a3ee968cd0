//! An upstream that never answers the handshake fails at its own deadline; the others serve
//! from the start, and the gateway does not wait longer than that deadline.

use crate::common;

use std::time::{Duration, Instant};

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test]
async fn hung_upstream_fails_at_its_deadline_and_the_others_serve() {
    let started = Instant::now();
    let gateway = ServeProcess::start(&format!(
        "restart:\n  initial_backoff_secs: 60\nupstreams:\n  hung:\n    command: sleep\n    args: [\"3600\"]\n    startup_timeout_secs: 1.5\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let settled_after = started.elapsed();
    assert!(
        settled_after < Duration::from_secs(10),
        "settled after {settled_after:?}"
    );

    // It fails, then its supervisor marks it as restarting later once the process is reaped
    // (a moment later on a busy machine).
    let mut health = gateway.health();
    let deadline = Instant::now() + Duration::from_secs(5);
    while health["upstreams"][0]["state"] == "failed" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        health = gateway.health();
    }
    let hung = &health["upstreams"][0];
    assert_eq!(hung["state"], "degraded", "restarting later: {health}");
    assert!(
        hung["error"]
            .as_str()
            .unwrap()
            .contains("did not start within"),
        "{health}"
    );

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("fx__echo", json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "fx",
        "{reply}"
    );
}
