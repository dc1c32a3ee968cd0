//! An upstream that asks for something only a client can give (roots, right after
//! `initialize`, as the reference server does) while no client call is in progress is told
//! that no client is being served: quietly, as this is normal, not with a warning. Asked again
//! during a call, the question reaches that call's client, on the response stream of the
//! client's own request (rmcp warns when it must fall back to the GET stream), and the tool
//! sees that client's roots.

use crate::common;

use std::process::Command;

use common::{clients_dir, everything_command, process::ServeProcess, python};

#[test]
fn roots_asked_outside_a_call_are_refused_quietly_and_asked_of_the_caller_later() {
    let (node, everything) = everything_command();
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n    startup_timeout_secs: 60\n"
    ));
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
