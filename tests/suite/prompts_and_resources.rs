//! Prompts (namespaced), resources and templates (URIs unchanged), reads routed by URI or
//! template, and completion routed to the owner — checked with the official Python SDK in both
//! eras against direct connections to the reference server.

use crate::common;

use std::process::Command;

use common::{
    clients_dir, everything_command, fixture_upstream_yaml, http::RawSession,
    process::ServeProcess, python,
};
use serde_json::json;

fn check_with_python_sdk(mode: &str) {
    let (node, everything) = everything_command();
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_prompts_resources.py"))
        .args(["--mode", mode, "--url", &gateway.mcp_url()])
        .args(["--node", &node, "--everything", &everything])
        .output()
        .expect("run the Python SDK client");
    assert!(
        output.status.success(),
        "{mode}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prompts_resources_and_completion_legacy_client() {
    check_with_python_sdk("legacy");
}

#[test]
fn prompts_resources_and_completion_2026_07_28_client() {
    check_with_python_sdk("2026-07-28");
}

#[tokio::test]
async fn unknown_prompt_and_resource_get_clear_errors() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .request("prompts/get", json!({"name": "fx__nothing"}))
        .await;
    assert_eq!(reply.error_code(), Some(-32602), "{}", reply.body);
    let reply = session
        .request("resources/read", json!({"uri": "nowhere://x"}))
        .await;
    assert_eq!(reply.error_code(), Some(-32002), "{}", reply.body);
    assert!(reply.body.contains("nowhere://x"), "{}", reply.body);
}
