//! The official Python MCP SDK client, in both protocol eras, over streamable HTTP and over
//! stdio, sees both real upstreams' tools namespaced and gets their results unchanged.

use crate::common;

use std::process::Command;

use common::{
    clients_dir, everything_command, mcps_bin,
    process::{ConfigDir, ServeProcess},
    python, real_upstreams_yaml,
};

fn real_config() -> String {
    format!("upstreams:\n{}", real_upstreams_yaml())
}

fn run_client(mode: &str, target: &[String]) {
    let (node, everything) = everything_command();
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_client.py"))
        .args(["--mode", mode])
        .args(target)
        .args([
            "--node",
            &node,
            "--everything",
            &everything,
            "--python",
            &python(),
        ])
        .output()
        .expect("run the Python SDK client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python SDK client ({mode}) failed:\n{stdout}\n{stderr}"
    );
}

fn over_http(mode: &str) {
    let gateway = ServeProcess::start(&real_config());
    assert_eq!(gateway.health()["status"], "ok", "{}", gateway.log());
    run_client(mode, &["--url".into(), gateway.mcp_url()]);
}

fn over_stdio(mode: &str) {
    let config = ConfigDir::new(&real_config());
    run_client(
        mode,
        &[
            "--mcps".into(),
            mcps_bin().display().to_string(),
            "--config".into(),
            config.path().display().to_string(),
        ],
    );
}

#[test]
fn python_sdk_legacy_over_http() {
    over_http("legacy");
}

#[test]
fn python_sdk_2026_07_28_over_http() {
    over_http("2026-07-28");
}

#[test]
fn python_sdk_legacy_over_stdio() {
    over_stdio("legacy");
}

#[test]
fn python_sdk_2026_07_28_over_stdio() {
    over_stdio("2026-07-28");
}
