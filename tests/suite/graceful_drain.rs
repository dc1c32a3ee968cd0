//! SIGTERM with 50 calls in flight against a slow upstream: the calls that finish within
//! `timeouts.drain_secs` succeed, the rest are answered with a shutdown error, no upstream
//! process remains, and the exit code is 0. A second signal during the drain stops at once.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    fixture_upstream_yaml,
    http::RawSession,
    process::{ServeProcess, processes_with_marker},
};
use nix::sys::signal::Signal;
use serde_json::json;

/// A gateway with a sleeping upstream whose processes carry `marker`, draining for `drain_secs`.
fn slow_upstream_yaml(marker: &str, drain_secs: u64) -> String {
    format!(
        "timeouts:\n  drain_secs: {drain_secs}\nupstreams:\n{}",
        fixture_upstream_yaml(
            "slow",
            "slow",
            &[],
            &format!("    env: {{MCPS_TEST_MARKER: {marker:?}}}\n")
        )
        .replace("args: [", "args: [\"--sleep\", ")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_in_flight_then_cancels_the_rest() {
    let marker = format!("graceful-drain-{}", std::process::id());
    let yaml = slow_upstream_yaml(&marker, 3);
    let gateway = ServeProcess::start(&yaml);
    let session = RawSession::open(&gateway.mcp_url()).await;
    assert!(!processes_with_marker(&marker).is_empty());

    let mut calls = Vec::new();
    for n in 0..50u64 {
        let mut handle = session.handle();
        handle.next_id += n * 10;
        // Even calls take 1 s (within the drain), odd ones 30 s (past it).
        let ms = if n % 2 == 0 { 1000 } else { 30_000 };
        calls.push(tokio::spawn(async move {
            (
                n,
                handle
                    .call("slow__sleep", json!({"ms": ms, "tag": n}))
                    .await,
            )
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stopping = Instant::now();
    gateway.signal(Signal::SIGTERM);

    for call in calls {
        let (n, reply) = call.await.unwrap();
        if n % 2 == 0 {
            assert!(
                reply["result"].is_object(),
                "call {n} should have finished: {reply}"
            );
        } else {
            let message = reply["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("shutting down"), "call {n}: {reply}");
        }
    }
    let mut gateway = gateway;
    let status = gateway.wait_exit();
    let took = stopping.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    assert!(
        processes_with_marker(&marker).is_empty(),
        "an upstream process is left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_and_leaves_no_upstream_behind() {
    let marker = format!("second-signal-{}", std::process::id());
    let yaml = slow_upstream_yaml(&marker, 60);
    let mut gateway = ServeProcess::start(&yaml);
    let session = RawSession::open(&gateway.mcp_url()).await;
    let mut handle = session.handle();
    let call = tokio::spawn(async move {
        handle
            .call("slow__sleep", json!({"ms": 60_000, "tag": "long"}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.signal(Signal::SIGINT);
    // The first signal starts a drain that would wait 60 s for the call.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    gateway.signal(Signal::SIGINT);
    let status = gateway.wait_exit();
    let took = stopping.elapsed();
    assert_eq!(status.code(), Some(130), "exit status {status:?}");
    assert!(took < Duration::from_secs(2), "stopping took {took:?}");
    assert!(gateway.log().contains("second signal"), "{}", gateway.log());
    let deadline = Instant::now() + Duration::from_secs(2);
    while !processes_with_marker(&marker).is_empty() {
        assert!(Instant::now() < deadline, "an upstream process is left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    call.abort();
}
