//! Requests that flow back: an upstream's elicitation, sampling and roots requests reach the
//! client whose call caused them, for every pairing of client and upstream era, with two
//! clients calling one shared upstream at once. The upstream and the clients are the official
//! Python SDK; the upstream asks mid-call (session era) or with `input_required` (2026-07-28).

use crate::common;

use std::process::Command;

use common::{
    clients_dir,
    process::{ConfigDir, ServeProcess},
    python,
    served::ServedUpstream,
};
use serde_json::{Value, json};

/// One upstream process, reached by the gateway in each era under its own name.
fn gateway_in_front_of(upstream: &ServedUpstream) -> ServeProcess {
    gateway_logging(upstream, &[])
}

/// The same, with more of the gateway's environment: `env`.
fn gateway_logging(upstream: &ServedUpstream, env: &[(&str, &str)]) -> ServeProcess {
    let url = upstream.url("/mcp");
    let yaml = format!(
        "upstreams:\n  legacy:\n    url: {url:?}\n    protocol: legacy\n  modern:\n    url: {url:?}\n    protocol: modern\n  stdio:\n    command: {:?}\n    args: [{:?}]\n    protocol: legacy\n",
        python(),
        clients_dir()
            .join("bridge_upstream.py")
            .display()
            .to_string(),
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), env);
    gateway.wait_ready(std::time::Duration::from_secs(30));
    gateway
}

fn run_clients(gateway: &ServeProcess, mode: &str, prefix: &str, clients: usize) {
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_client_requests.py"))
        .args([
            "--mode",
            mode,
            "--url",
            &gateway.mcp_url(),
            "--prefix",
            prefix,
        ])
        .args(["--clients", &clients.to_string()])
        .output()
        .expect("run the Python SDK clients");
    assert!(
        output.status.success(),
        "{mode} clients of {prefix}:\n{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );
}

#[test]
fn every_era_pairing_routes_questions_to_the_asking_client() {
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let gateway = gateway_in_front_of(&upstream);
    for upstream_era in ["legacy__", "modern__"] {
        for client_era in ["legacy", "2026-07-28"] {
            run_clients(&gateway, client_era, upstream_era, 2);
        }
    }
}

#[test]
fn a_shared_stdio_upstream_routes_to_its_only_caller_and_refuses_to_guess() {
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let gateway = gateway_in_front_of(&upstream);
    for client_era in ["legacy", "2026-07-28"] {
        run_clients(&gateway, client_era, "stdio__", 1);
    }
    // Two clients' calls at once on a stdio connection: which one asked cannot be known, so
    // the upstream's request is refused with an error that says why, never sent to either.
    let output = Command::new(python())
        .arg(clients_dir().join("sdk_client_requests.py"))
        .args(["--mode", "legacy", "--url", &gateway.mcp_url()])
        .args(["--prefix", "stdio__", "--tools", "greet", "--clients", "4"])
        .output()
        .expect("run the Python SDK clients");
    let printed = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        assert!(printed.contains("isolation: per-session"), "{printed}");
        assert!(
            !printed.contains("got 'Hello, "),
            "a question reached the wrong client: {printed}"
        );
    }
}

async fn call(gateway: &ServeProcess, name: &str, extra: Value) -> Value {
    common::http::modern_tool_call(&gateway.mcp_url(), name, extra).await
}

/// The gateway's own `requestState` for a session-era upstream's question: forged, replayed
/// against another tool or used twice, it is refused; every call, the refused ones too, goes
/// the gateway's own way.
#[tokio::test]
async fn a_request_state_is_signed_bound_to_its_tool_and_used_once() {
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    // Debug: each call's log line says which way it went.
    let gateway = gateway_logging(&upstream, &[("RUST_LOG", "mcps=debug,rmcp=warn")]);

    let asked = call(&gateway, "legacy__greet", json!({})).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let requests = asked["result"]["inputRequests"]
        .as_object()
        .expect("inputRequests");
    let (key, request) = requests.iter().next().expect("one question");
    assert_eq!(request["method"], "elicitation/create", "{asked}");
    let state = asked["result"]["requestState"]
        .as_str()
        .expect("requestState")
        .to_owned();
    let answer = json!({key.clone(): {"action": "accept", "content": {"name": "eve"}}});

    // Altered by one character: refused.
    let mut forged = state.clone().into_bytes();
    let middle = forged.len() / 2;
    forged[middle] = if forged[middle] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let refused = call(
        &gateway,
        "legacy__greet",
        json!({"requestState": forged, "inputResponses": answer}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // Replayed against another tool: refused.
    let refused = call(
        &gateway,
        "legacy__summarize",
        json!({"requestState": state, "inputResponses": answer}),
    )
    .await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");

    // The real retry resumes the waiting upstream call.
    let done = call(
        &gateway,
        "legacy__greet",
        json!({"requestState": state, "inputResponses": answer}),
    )
    .await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, eve!",
        "{done}"
    );

    // A state resumes once.
    let replayed = call(
        &gateway,
        "legacy__greet",
        json!({"requestState": state, "inputResponses": answer}),
    )
    .await;
    assert_eq!(replayed["error"]["code"], -32602, "{replayed}");
    // The question and the answered retry are done; the three refusals failed. A call's
    // line is logged as its answer leaves, so the last one may follow the answer here.
    gateway.calls_done(2).await;
    common::wait_logged(|| gateway.log(), "call failed", 3).await;
    let log = gateway.log();
    assert_eq!(common::lane_calls_in(&log), 2, "{log}");
    let failed: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("call failed"))
        .collect();
    assert_eq!(failed.len(), 3, "{log}");
    assert!(
        failed.iter().all(|line| line.contains("lane=true")),
        "{log}"
    );
}
