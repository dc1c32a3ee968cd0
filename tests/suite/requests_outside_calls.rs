//! An upstream that asks for something only a client can give (roots, right after
//! `initialize`, as the reference server does) while no client call is in progress is told
//! that no client is being served: quietly, as this is normal, not with a warning. Asked again
//! during a call, the question reaches that call's client, on the response stream of the
//! client's own request (rmcp warns when it must fall back to the GET stream), and the tool
//! sees that client's roots.
//!
//! Over stdio nothing says which call a question belongs to: one asked while a single
//! client's calls are in flight goes to that client, but it may be the upstream's own (the
//! reference server asks for roots 350 ms after `initialize`, whatever is in flight then).
//! So a 2026-07-28 client that did not declare the capability does not have its call ended
//! by such a question: the upstream is refused and the call gets the upstream's own answer.

use crate::common;

use std::process::Command;

use serde_json::json;

use common::{
    clients_dir, everything_command, http::modern_tool_call, process::ServeProcess, python,
};

fn everything_alone() -> ServeProcess {
    let (node, everything) = everything_command();
    ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n"
    ))
}

#[test]
fn roots_asked_outside_a_call_are_refused_quietly_and_asked_of_the_caller_later() {
    let gateway = everything_alone();
    assert_eq!(gateway.health()["status"], "ok", "{}", gateway.log());

    let output = Command::new(python())
        .arg(clients_dir().join("sdk_roots.py"))
        .args(["--url", &gateway.mcp_url()])
        .args(["--tool", "everything__get-roots-list"])
        .args(["--root", "file:///projects/alice"])
        .output()
        .expect("run the SDK client");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.contains("file:///projects/alice"),
        "the caller's roots: {text}"
    );

    let log = gateway.log();
    // The reference server asked at start-up, with no client about, and was told so.
    assert!(log.contains("Failed to request roots"), "{log}");
    let alarms: Vec<&str> = log.lines().filter(|line| line.contains(" WARN ")).collect();
    assert!(
        alarms.is_empty(),
        "no warning for normal behaviour: {alarms:#?}"
    );
}

#[tokio::test]
async fn a_question_over_stdio_never_ends_a_call_of_a_client_that_cannot_answer_it() {
    let gateway = everything_alone();
    // The tool asks for roots outside any request of its own, as at start-up; the client
    // declares elicitation alone.
    let answer =
        modern_tool_call(&gateway.mcp_url(), "everything__get-roots-list", json!({})).await;
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        text.contains("no roots are currently configured"),
        "the tool's own answer, not the gateway's -32021: {answer}"
    );
    // The upstream heard why, and the call's answer was not dropped for one that came early.
    gateway
        .wait_for_log("Failed to request roots from client undefined: MCP error -32021")
        .await;
    let log = gateway.log();
    assert!(!log.contains("dropped an answer"), "{log}");
}
