//! SIGTERM with 50 calls in flight against a slow upstream: the calls that finish within
//! `timeouts.drain_secs` succeed, the rest are answered with a shutdown error, no upstream
//! process remains, and the exit code is 0.

mod common;

use std::time::{Duration, Instant};

use common::{
    fixture_upstream_yaml,
    http::RawSession,
    process::{ServeProcess, processes_with_marker},
};
use nix::sys::signal::Signal;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_calls_in_flight_then_cancels_the_rest() {
    let marker = format!("graceful-drain-{}", std::process::id());
    let yaml = format!(
        "timeouts:\n  drain_secs: 3\nupstreams:\n{}",
        fixture_upstream_yaml(
            "slow",
            "slow",
            &[],
            &format!("    env: {{MCPS_TEST_MARKER: {marker:?}}}\n")
        )
        .replace("args: [", "args: [\"--sleep\", ")
    );
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
    let pid = nix::unistd::Pid::from_raw(gateway.child.id() as i32);
    nix::sys::signal::kill(pid, Signal::SIGTERM).unwrap();

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
    let (status, _) = gateway.stop(Signal::SIGTERM);
    let took = stopping.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    assert!(
        processes_with_marker(&marker).is_empty(),
        "an upstream process is left"
    );
}
