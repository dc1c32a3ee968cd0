//! Clients written by others, through the gateway: the official TypeScript SDK client (v2,
//! both eras) over streamable HTTP, over stdio (`mcps stdio`) and over WebSocket (`/ws`; the
//! SDK has no WebSocket transport, so the client brings a minimal one), and the MCP Inspector
//! CLI over `/mcp`. Each lists the tools and calls one; the TypeScript client also answers a
//! sampling request the call causes, two clients at once, each getting its own answer.

use crate::common;

use std::process::{Command, Output};

use common::{
    clients_dir, everything_command,
    fixtures::{HttpFixture, Implementation},
    installed,
    process::{ConfigDir, ServeProcess},
};
use serde_json::Value;

const ERAS: [(&str, &str); 2] = [("legacy", "2025-11-25"), ("auto", "2026-07-28")];

fn everything_yaml() -> String {
    let (node, everything) = everything_command();
    format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n"
    )
}

/// The TypeScript client's command: `--era`, `--name`, the tool and its arguments, then the
/// transport arguments.
fn ts_client(era: &str, name: &str, tool: &str, args: &[&str], transport: &[&str]) -> Command {
    let mut command = Command::new(installed("MCPS_TEST_NODE"));
    command
        .env("NODE_PATH", installed("MCPS_TEST_NODE_PATH"))
        .arg(clients_dir().join("ts_client.cjs"))
        .args(["--era", era, "--name", name, "--tool", tool]);
    for arg in args {
        command.args(["--arg", arg]);
    }
    command.args(transport);
    command
}

/// What the client printed: protocol version, tool names, the call's text.
fn report(output: Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the TypeScript client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn assert_saw(report: &Value, version: &str, tool: &str, text: &str) {
    assert_eq!(report["protocolVersion"], version, "{report}");
    assert!(
        report["tools"]
            .as_array()
            .is_some_and(|tools| tools.iter().any(|name| name == tool)),
        "{tool} is not listed: {report}"
    );
    assert_eq!(report["isError"], false, "{report}");
    assert!(
        report["text"].as_str().is_some_and(|t| t.contains(text)),
        "expected {text:?} in {report}"
    );
}

#[test]
fn the_typescript_client_lists_calls_and_is_asked_over_streamable_http_in_both_eras() {
    let gateway = ServeProcess::start(&everything_yaml());
    let url = gateway.mcp_url();
    for (era, version) in ERAS {
        let mut echo = ts_client(
            era,
            "alice",
            "everything__echo",
            &["message=hello"],
            &["--url", &url],
        );
        assert_saw(
            &report(echo.output().expect("run")),
            version,
            "everything__echo",
            "hello",
        );
        let mut sampled = ts_client(
            era,
            "alice",
            "everything__trigger-sampling-request",
            &["prompt=hi", "maxTokens=5"],
            &["--url", &url],
        );
        assert_saw(
            &report(sampled.output().expect("run")),
            version,
            "everything__echo",
            "answer-alice",
        );
    }
}

/// Two clients at once, each asked to sample for its own call. The upstream is the
/// TypeScript fixture over streamable HTTP, reached in the session era: its requests come on
/// the stream of the call that caused them, so they can be told apart (server-everything
/// over stdio cannot say which of two calls a request belongs to).
#[test]
fn two_typescript_clients_at_once_are_each_asked_for_their_own_call() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: legacy\n",
        fixture.url
    ));
    let url = gateway.mcp_url();
    for (era, version) in ERAS {
        let [alice, bob] = ["alice", "bob"].map(|name| {
            ts_client(
                era,
                name,
                "fx__test_sampling",
                &["prompt=hi"],
                &["--url", &url],
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the TypeScript client")
        });
        for (name, child) in [("alice", alice), ("bob", bob)] {
            let report = report(child.wait_with_output().expect("wait"));
            assert_saw(
                &report,
                version,
                "fx__test_sampling",
                &format!("LLM response: answer-{name}"),
            );
        }
    }
}

#[test]
fn the_typescript_client_lists_calls_and_is_asked_over_stdio_in_both_eras() {
    let config = ConfigDir::new(&everything_yaml());
    let mcps = common::mcps_bin().display().to_string();
    let path = config.path().display().to_string();
    for (era, version) in ERAS {
        let mut client = ts_client(
            era,
            "carol",
            "everything__trigger-sampling-request",
            &["prompt=hi", "maxTokens=5"],
            &["--stdio", &mcps, "stdio", "-c", &path],
        );
        assert_saw(
            &report(client.output().expect("run")),
            version,
            "everything__echo",
            "answer-carol",
        );
    }
}

#[test]
fn the_typescript_client_lists_calls_and_is_asked_over_websocket_in_both_eras() {
    let gateway = ServeProcess::start(&everything_yaml());
    let ws = gateway.base.replacen("http", "ws", 1) + "/ws";
    for (era, version) in ERAS {
        let mut client = ts_client(
            era,
            "erin",
            "everything__trigger-sampling-request",
            &["prompt=hi", "maxTokens=5"],
            &["--ws", &ws],
        );
        assert_saw(
            &report(client.output().expect("run")),
            version,
            "everything__echo",
            "answer-erin",
        );
    }
}

/// A tool written for sessions on an upstream that speaks both eras: a session-era
/// TypeScript client is asked to sample, as it is directly (the gateway's session-era twin
/// connection); a 2026-07-28 one gets what it gets directly, the SDK's refusal.
#[test]
fn the_typescript_client_of_each_era_gets_from_a_typescript_upstream_what_it_gets_directly() {
    let fixture = HttpFixture::start(Implementation::TypeScript);
    let gateway = ServeProcess::start(&format!("upstreams:\n  fx:\n    url: {:?}\n", fixture.url));
    for (era, version) in ERAS {
        let direct = report(
            ts_client(
                era,
                "dave",
                "test_sampling",
                &["prompt=hi"],
                &["--url", &fixture.url],
            )
            .output()
            .expect("run"),
        );
        let through = report(
            ts_client(
                era,
                "dave",
                "fx__test_sampling",
                &["prompt=hi"],
                &["--url", &gateway.mcp_url()],
            )
            .output()
            .expect("run"),
        );
        assert_eq!(through["protocolVersion"], version);
        assert_eq!(
            direct["text"], through["text"],
            "{era}: direct {direct}, through the gateway {through}"
        );
    }
}

fn inspector(url: &str, era: &str, catalog: &std::path::Path, method: &[&str]) -> String {
    let output = Command::new(installed("MCPS_TEST_NODE"))
        .arg(installed("MCPS_TEST_INSPECTOR"))
        .args(["--cli", url, "--protocol-era", era])
        .args(method)
        // The Inspector keeps a catalog of servers; not in the home directory.
        .env("MCP_CATALOG_PATH", catalog)
        .output()
        .expect("run the Inspector CLI");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the Inspector CLI failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_inspector_cli_lists_and_calls_tools_through_mcp_in_both_eras() {
    let gateway = ServeProcess::start(&everything_yaml());
    let catalog = tempfile::tempdir().expect("temp dir");
    let catalog = catalog.path().join("catalog.json");
    for era in ["legacy", "modern"] {
        let listed: Value = serde_json::from_str(&inspector(
            &gateway.mcp_url(),
            era,
            &catalog,
            &["--method", "tools/list"],
        ))
        .expect("tools/list prints JSON");
        let tools = listed["tools"].as_array().expect("a tool list");
        assert!(
            tools.iter().any(|tool| tool["name"] == "everything__echo"),
            "{era}: {listed}"
        );
        let called: Value = serde_json::from_str(&inspector(
            &gateway.mcp_url(),
            era,
            &catalog,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                "everything__get-sum",
                "--tool-arg",
                "a=2",
                "b=3",
            ],
        ))
        .expect("tools/call prints JSON");
        assert!(
            called["content"][0]["text"]
                .as_str()
                .is_some_and(|text| text.contains('5')),
            "{era}: {called}"
        );
    }
}
