//! `isolation: per-session`: each client session gets its own connection (for stdio, its own
//! process) to the upstream, so even a stdio upstream's requests to the client always reach
//! the right one, and the session's process ends with the session. The calls go the
//! gateway's own way (the upstream's lane), on the session's own connection.

use crate::common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{
    clients_dir,
    process::{ConfigDir, ServeProcess, processes_with_marker},
    python,
};

#[test]
fn each_session_gets_its_own_stdio_process_and_its_own_questions() {
    let marker = format!("per-session-{}", std::process::id());
    let yaml = format!(
        "upstreams:\n  own:\n    command: {:?}\n    args: [{:?}]\n    protocol: legacy\n    isolation: per-session\n    env: {{MCPS_TEST_MARKER: {marker:?}}}\n",
        python(),
        clients_dir()
            .join("bridge_upstream.py")
            .display()
            .to_string(),
    );
    // Debug: each call's "call done" line says which way it went.
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    assert_eq!(
        processes_with_marker(&marker).len(),
        1,
        "before any session, only the shared connection (which serves the catalog) runs"
    );

    // Four session-era clients at once on a stdio upstream: with a shared connection the
    // gateway could not tell whose question is whose (see tests/client_requests.rs).
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_client_requests.py"))
        .args(["--mode", "legacy", "--url", &gateway.mcp_url()])
        .args(["--prefix", "own__", "--clients", "4"])
        .output()
        .expect("run the Python SDK clients");
    assert!(
        output.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );

    // Their calls went the gateway's own way, each on its session's own connection.
    let log = gateway.log();
    let calls = log
        .lines()
        .filter(|line| line.contains("call done"))
        .count();
    assert!(calls >= 4, "{log}");
    assert_eq!(common::lane_calls_in(&log), calls, "{log}");

    // The clients closed their sessions: their processes are gone, the shared one stays.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let running = processes_with_marker(&marker).len();
        if running == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{running} upstream processes still run after the sessions closed\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
