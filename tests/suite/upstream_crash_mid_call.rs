//! `kill -9` of an upstream in the middle of a call: the call fails within 100 ms with an
//! error naming the upstream, the upstream is back within its backoff, and no zombie and no
//! orphaned grandchild is left. Calls to the other upstreams are not disturbed.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    example_bin, fixture_upstream_yaml,
    http::RawSession,
    process::{ServeProcess, processes_with_marker},
};
use serde_json::json;

fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie), if the process exists.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The pids of the fault upstream's own process and of its grandchild.
fn fault_processes(marker: &str) -> (Vec<u32>, Vec<u32>) {
    processes_with_marker(marker)
        .into_iter()
        .filter(|pid| state(*pid) != Some('Z'))
        .partition(|pid| command_line(*pid).contains("fault_upstream"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upstream_fails_its_call_at_once_and_comes_back() {
    let marker = format!("crash-mid-call-{}", std::process::id());
    let yaml = format!(
        "restart:\n  initial_backoff_secs: 0.3\nupstreams:\n  flt:\n    command: {:?}\n    args: [\"--grandchild\"]\n    env: {{MCPS_TEST_MARKER: {marker:?}}}\n{}",
        example_bin("fault_upstream").display().to_string(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start(&yaml);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let (upstream, grandchildren) = fault_processes(&marker);
    assert_eq!(upstream.len(), 1, "one fault upstream: {upstream:?}");
    assert_eq!(grandchildren.len(), 1, "its grandchild: {grandchildren:?}");

    let mut hanging = session.handle();
    let call = tokio::spawn(async move {
        let reply = hanging.call("flt__hang", json!({})).await;
        (reply, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call hangs until the kill");
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(upstream[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (reply, answered_at) = call.await.unwrap();
    let waited = answered_at - killed_at;
    assert!(
        waited < Duration::from_millis(100),
        "the call failed after {waited:?}"
    );
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("flt"),
        "the error names the upstream: {reply}"
    );

    // The others serve meanwhile.
    let other = session.call("fx__echo", json!({"x": 1})).await;
    assert!(other["result"].is_object(), "{other}");

    // Back within its backoff (0.3 s ± 20 %, plus its start).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let health = gateway.health();
        if health["upstreams"][0]["state"] == "ready" {
            break;
        }
        assert!(Instant::now() < deadline, "not back: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = session.call("flt__ok", json!({})).await;
    assert_eq!(again["result"]["content"][0]["text"], "ok", "{again}");
    let health = gateway.health();
    assert!(
        health["upstreams"][0]["error"].is_null(),
        "ready again: {health}"
    );

    // The old process group is gone: no zombie, and the grandchild that ignored SIGTERM too.
    assert_eq!(state(upstream[0]), None, "the killed upstream was reaped");
    assert_eq!(state(grandchildren[0]), None, "the old grandchild is gone");
    let gateway_pid = gateway.child.id();
    let zombies: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| state(*pid) == Some('Z'))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let ppid = stat
                        .rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()?;
                    Some(ppid == gateway_pid)
                })
                .unwrap_or(false)
        })
        .collect();
    assert!(zombies.is_empty(), "zombies of the gateway: {zombies:?}");
    let (upstream_now, _) = fault_processes(&marker);
    assert_eq!(upstream_now.len(), 1, "one new upstream process");
}

#[tokio::test]
async fn a_crash_loop_is_reported_and_paused() {
    let gateway = ServeProcess::start(
        "restart:\n  initial_backoff_secs: 0.05\n  max_backoff_secs: 0.1\n  crash_loop_failures: 3\n  crash_loop_pause_secs: 600\nupstreams:\n  broken:\n    command: sh\n    args: [\"-c\", \"echo about to fail >&2; exit 7\"]\n",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    // Each failed try shows `failed` for a moment before the next; the pause says so.
    let health = loop {
        let health = gateway.health();
        let paused = health["upstreams"][0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("crash loop"));
        if health["upstreams"][0]["state"] == "failed" && paused {
            break health;
        }
        assert!(Instant::now() < deadline, "no crash loop seen: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = health["upstreams"][0]["error"].as_str().unwrap();
    assert!(
        error.contains("crash loop") && error.contains("600s"),
        "{error}"
    );
    assert!(
        error.contains("exit status: 7"),
        "the reason is kept: {error}"
    );
    let spawns = gateway.log().matches("about to fail").count();
    assert_eq!(spawns, 3, "paused after 3 tries: {}", gateway.log());
}
