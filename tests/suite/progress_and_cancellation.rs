//! Two clients on one shared upstream: each gets only its own progress, and a cancellation
//! from one cancels only its own call (official Python SDK clients, both eras). A
//! session-era client's calls go the gateway's own way, their progress on the call's stream.

use crate::common;

use std::process::Command;

use common::{
    clients_dir, everything_command,
    process::{ConfigDir, ServeProcess},
    python,
};

fn check(mode: &str) {
    let (node, everything) = everything_command();
    let yaml =
        format!("upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n");
    // Debug: each call's "call done" line says which way it went.
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "mcps=debug,rmcp=warn")],
    );
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_progress.py"))
        .args(["--mode", mode, "--url", &gateway.mcp_url()])
        .output()
        .expect("run the Python SDK clients");
    assert!(
        output.status.success(),
        "{mode}:\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );
    if mode == "legacy" {
        // The two calls with progress, and the one that completes beside the cancelled one.
        let log = gateway.log();
        assert!(common::lane_calls_in(&log) >= 3, "{log}");
        assert!(
            log.lines()
                .filter(|line| line.contains("call done"))
                .all(|line| line.contains("lane=true")),
            "{log}"
        );
    }
}

#[test]
fn progress_reaches_only_its_client_and_cancel_only_its_call_legacy() {
    check("legacy");
}

#[test]
fn progress_reaches_only_its_client_and_cancel_only_its_call_2026_07_28() {
    check("2026-07-28");
}
