//! Thousands of sessions opened and left, again and again, cannot exhaust the gateway: the
//! session cap holds exactly, other clients keep working, the never-used sessions expire, and
//! the memory they took comes back each time.

use crate::common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use common::{
    fixture_upstream_yaml,
    http::{RawSession, client_from, metrics_text},
    process::ServeProcess,
};
use reqwest::StatusCode;
use serde_json::json;

/// Low enough that the flood reaches it before its first sessions expire, on a slow machine
/// too (it opened about 650 sessions a second on a busy 2-core one).
const MAX_SESSIONS: usize = 1500;
/// Twice the cap, twice: enough to see the cap hold and the memory come back again.
const PER_CYCLE: usize = 3000;
const CYCLES: usize = 2;
/// The filler's addresses: each stays under `limits.max_sessions_per_peer`.
const FILLERS: usize = 10;
const AT_ONCE_PER_FILLER: usize = 4;

fn initialize() -> String {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
           "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                      "clientInfo": {"name": "filler", "version": "0"}}})
    .to_string()
}

/// Opens one session (initialize, initialized) and leaves it; its status.
async fn open_and_leave(client: &reqwest::Client, url: &str) -> StatusCode {
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(initialize())
        .send()
        .await
        .expect("initialize");
    let status = answer.status();
    let session = answer.headers().get("mcp-session-id").cloned();
    let _ = answer.bytes().await;
    if let Some(session) = session {
        let initialized = client
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .send()
            .await
            .expect("initialized");
        assert!(initialized.status().is_success());
    }
    status
}

/// Opens [`PER_CYCLE`] sessions from [`FILLERS`] addresses; how many opened and how many
/// were refused with 503.
async fn fill(url: &str) -> (usize, usize) {
    let opened = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for filler in 0..FILLERS {
        let client = client_from(&format!("127.0.0.{}", 10 + filler));
        for _ in 0..AT_ONCE_PER_FILLER {
            let (client, url) = (client.clone(), url.to_owned());
            let (opened, refused, next) = (opened.clone(), refused.clone(), next.clone());
            workers.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < PER_CYCLE {
                    match open_and_leave(&client, &url).await {
                        StatusCode::OK => opened.fetch_add(1, Ordering::Relaxed),
                        StatusCode::SERVICE_UNAVAILABLE => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("initialize answered {other}"),
                    };
                }
            }));
        }
    }
    for worker in workers {
        worker.await.unwrap();
    }
    (
        opened.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

/// `mcps_sessions` from the gateway's metrics.
async fn sessions_now(base: &str) -> u64 {
    let text = metrics_text(base).await;
    text.lines()
        .find_map(|line| line.strip_prefix("mcps_sessions "))
        .and_then(|value| value.trim().parse().ok())
        .expect("mcps_sessions in the metrics")
}

/// The gateway's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Waits until the resident memory stops falling (the allocator returns freed pages a few
/// seconds after they are freed), then reads it.
async fn settled_rss(pid: u32) -> u64 {
    let mut last = rss_kib(pid);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = rss_kib(pid);
        if now * 100 >= last * 99 || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_floods_of_sessions_are_capped_expire_and_give_their_memory_back() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_sessions: {MAX_SESSIONS}\ntimeouts:\n  unused_session_idle_secs: 6\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let pid = gateway.child.id();
    let url = gateway.mcp_url();
    let base = gateway.base.clone();

    // Another client, with a session of its own, keeps calling throughout.
    let mut other = RawSession::open(&url).await;
    let calls = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (calls, stop) = (calls.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let reply = other.call("fx__echo", json!({})).await;
                assert!(reply["result"].is_object(), "the other client: {reply}");
                calls.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // The cap is watched throughout, too.
    let most_sessions = Arc::new(AtomicU64::new(0));
    let watcher = {
        let (most, stop, base) = (most_sessions.clone(), stop.clone(), base.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(sessions_now(&base).await, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut rss_after = Vec::new();
    for cycle in 1..=CYCLES {
        let (opened, refused) = fill(&url).await;
        assert_eq!(opened + refused, PER_CYCLE);
        assert!(
            refused > 0,
            "cycle {cycle}: the cap never engaged ({opened} opened)"
        );
        // Every session left unused expires; only the other client's remains.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let open = sessions_now(&base).await;
            if open <= 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: sessions did not expire ({open} still open)"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        rss_after.push(settled_rss(pid).await);
    }
    stop.store(true, Ordering::Relaxed);
    caller.await.unwrap();
    watcher.await.unwrap();

    assert!(
        most_sessions.load(Ordering::Relaxed) <= MAX_SESSIONS as u64,
        "{} sessions at once against max_sessions {MAX_SESSIONS}",
        most_sessions.load(Ordering::Relaxed)
    );
    assert!(
        calls.load(Ordering::Relaxed) > 10,
        "the other client kept calling"
    );
    let (first, last) = (rss_after[0], rss_after[CYCLES - 1]);
    assert!(
        last * 100 <= first * 120,
        "resident memory after each cycle (KiB): {rss_after:?}"
    );
    eprintln!("resident memory after each cycle (KiB): {rss_after:?}");
}
