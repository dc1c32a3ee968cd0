//! Shared test helpers: run the real `mcps` binary on a config of the test's own, find the
//! example servers and the pinned real upstreams/clients that `tests/run.sh` installs, and
//! speak raw JSON-RPC over streamable HTTP and WebSocket.

#![allow(dead_code)]

pub mod api;
pub mod balancer;
pub mod browser;
pub mod console;
pub mod fixtures;
pub mod forward_proxy;
pub mod http;
pub mod line_peer;
pub mod postgres;
pub mod process;
pub mod served;
pub mod slow_link;
pub mod socks_proxy;
pub mod ws;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// The messages of `method` among `messages` (what a client was sent, in order).
pub fn of_method<'a>(
    messages: &'a [serde_json::Value],
    method: &str,
) -> Vec<&'a serde_json::Value> {
    messages
        .iter()
        .filter(|message| message["method"] == method)
        .collect()
}

/// How many calls a gateway's debug log says took its own lane: each call's "call done"
/// line says which way it went (`lane=true`).
pub fn lane_calls_in(log: &str) -> usize {
    log.lines()
        .filter(|line| line.contains("lane=true") && line.contains("call done"))
        .count()
}

/// Waits (up to 15 s) until a log, as `log` reads it, holds `needle` `count` times.
pub async fn wait_logged(log: impl Fn() -> String, needle: &str, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while log().matches(needle).count() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} (x{count}) in:\n{}",
            log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The `mcps` binary under test.
pub fn mcps_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mcps"))
}

/// A binary of `examples/`, built by `cargo test` beside the main one.
pub fn example_bin(name: &str) -> PathBuf {
    let path = mcps_bin()
        .parent()
        .expect("binary has a directory")
        .join("examples")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run the tests with `tests/run.sh` (or `cargo build --examples` first)",
        path.display()
    );
    path
}

/// A port nobody listens on now (for a test that must know its URL beforehand).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// How many migrations the registry's schema has: the gateway's own count, asked of an SQLite
/// file that does not exist (which creates nothing).
pub async fn migrations() -> usize {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let nowhere = mcps::config::DatabaseLocation::Sqlite(dir.path().join("none.db"));
    let (applied, latest) = mcps::registry::Registry::schema(&nowhere)
        .await
        .expect("the schema of no database");
    assert_eq!(applied, None);
    latest
}

/// The conformance suite's 0.2 line, run on its `scenario` against the server at `url`:
/// whether it exited with success, and what it printed.
pub fn conformance_scenario(url: &str, scenario: &str) -> (bool, String) {
    let output = std::process::Command::new(installed("MCPS_TEST_NODE"))
        .arg(installed("MCPS_TEST_CONFORMANCE_0_2"))
        .args(["server", "--url", url, "--scenario", scenario])
        .output()
        .expect("run the conformance suite");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A variable `tests/run.sh` sets after installing the pinned real servers and clients.
pub fn installed(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the suite with `tests/run.sh`, which installs the pinned MCP servers and SDK clients")
    })
}

/// The Python interpreter of the test virtualenv (with `mcp` and `mcp-server-time`).
pub fn python() -> String {
    installed("MCPS_TEST_PYTHON")
}

/// `node` and the entry point of the pinned `@modelcontextprotocol/server-everything`.
pub fn everything_command() -> (String, String) {
    (
        installed("MCPS_TEST_NODE"),
        installed("MCPS_TEST_EVERYTHING"),
    )
}

/// `node` and the entry point of the pinned mcp-remote, the stdio bridge desktop clients reach
/// remote servers through.
pub fn mcp_remote_command() -> (String, String) {
    (
        installed("MCPS_TEST_NODE"),
        installed("MCPS_TEST_MCP_REMOTE"),
    )
}

/// mcp-remote bridging to `url`, keeping what it learns of sign-ins in `state`; no browser of
/// the machine's is opened (`BROWSER` is a no-op): a test that signs in opens the URL itself.
pub fn mcp_remote(url: &str, state: &Path) -> Command {
    let (node, mcp_remote) = mcp_remote_command();
    let mut command = Command::new(node);
    command
        .args([mcp_remote.as_str(), url])
        .env("BROWSER", "true")
        .env("MCP_REMOTE_CONFIG_DIR", state);
    command
}

/// The `upstreams:` entries for the two real reference servers, YAML-quoted.
pub fn real_upstreams_yaml() -> String {
    let (node, everything) = everything_command();
    format!(
        "  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n  time:\n    command: {python:?}\n    args: [\"-m\", \"mcp_server_time\", \"--local-timezone\", \"UTC\"]\n    startup_timeout_secs: 60\n",
        python = python()
    )
}

/// A `fixture_upstream` entry offering `tools`, answering with `label`.
pub fn fixture_upstream_yaml(name: &str, label: &str, tools: &[&str], extra: &str) -> String {
    let mut args = vec!["--label".to_owned(), label.to_owned()];
    for tool in tools {
        args.push("--tool".into());
        args.push((*tool).to_owned());
    }
    let args: Vec<String> = args.iter().map(|arg| format!("{arg:?}")).collect();
    format!(
        "  {name}:\n    command: {:?}\n    args: [{}]\n{extra}",
        example_bin("fixture_upstream").display().to_string(),
        args.join(", ")
    )
}

/// The repository's `tests/clients` directory (Python client scripts).
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("clients")
}
