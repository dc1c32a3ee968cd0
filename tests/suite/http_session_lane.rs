//! The gateway's own lane to a session-era streamable HTTP upstream, for what an SDK server
//! cannot show from outside: that a cancelled call is cancelled upstream, and that a call
//! finds its way when the upstream has forgotten the session. The upstream here is another
//! `mcps serve` (in front of the test upstream, which logs `sleep <tag> cancelled` when its
//! call is cancelled), so both show in a log; the lane's calls with each SDK's server are in
//! `session_call_lane.rs`.

use crate::common;

use std::time::Duration;

use common::{
    fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;
use serde_json::json;

/// A gateway in front of `upstream` (another gateway) in the session era, with debug logs:
/// each call's "call done" line says which way it went (`lane=true`).
fn gateway_in_front_of(upstream: &ServeProcess) -> ServeProcess {
    let yaml = format!(
        "upstreams:\n  b:\n    url: {:?}\n    protocol: legacy\n",
        upstream.mcp_url()
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    gateway.wait_ready(Duration::from_secs(20));
    gateway
}

#[tokio::test]
async fn a_call_the_client_cancels_is_cancelled_in_the_upstreams_session() {
    let upstream = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo", "sleep"], "")
    ));
    upstream.wait_ready(Duration::from_secs(20));
    let gateway = gateway_in_front_of(&upstream);
    let session = RawSession::open(&gateway.mcp_url()).await;
    let call = json!({"jsonrpc": "2.0", "id": "slow-1", "method": "tools/call",
                      "params": {"name": "b__fx__sleep", "arguments": {"ms": 20_000, "tag": "through"}}});
    let handle = session.handle();
    let pending = tokio::spawn(async move { handle.post_json(&call).await });
    upstream.wait_for_log("call sleep").await;
    let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                        "params": {"requestId": "slow-1", "reason": "changed my mind"}});
    assert_eq!(
        session.post_json(&cancel).await.status,
        StatusCode::ACCEPTED
    );
    upstream.wait_for_log("sleep through cancelled").await;
    gateway.wait_for_log("call done").await;
    assert_eq!(gateway.lane_calls(), 1, "{}", gateway.log());
    pending.abort();
}

#[tokio::test]
async fn a_call_after_the_upstream_forgot_the_session_is_served_in_a_new_one() {
    let yaml = format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let upstream = ServeProcess::start(&yaml);
    upstream.wait_ready(Duration::from_secs(20));
    let gateway = gateway_in_front_of(&upstream);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let first = session.call("b__fx__echo", json!({"n": 1})).await;
    assert!(first["result"].is_object(), "{first}");
    // The upstream starts again on its address with a registry of its own: it never saw the
    // gateway's session, which the gateway's next call names.
    let address = upstream.base.trim_start_matches("http://").to_owned();
    upstream.stop(nix::sys::signal::Signal::SIGKILL);
    let upstream = ServeProcess::start_listening(ConfigDir::new(&yaml), &[], &address);
    upstream.wait_ready(Duration::from_secs(20));
    let second = session.call("b__fx__echo", json!({"n": 2})).await;
    assert!(second["result"].is_object(), "{second}\n{}", gateway.log());
    // The lane met the upstream's 404, had rmcp open a new session, and sent the call again.
    gateway.wait_for_log("a new one was opened").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gateway.lane_calls() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
