//! Questions a replica's upstream puts to a client mid-call: a session-era client's answers
//! reach the replica that asked, and a 2026-07-28 client's retry reaches the replica that
//! parked its call, or is told that replica stopped.

use std::time::{Duration, Instant};

use crate::common;

use common::{
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
};
use serde_json::json;

/// Requests a gateway puts to a session-era client mid-call (sampling, elicitation, roots),
/// behind nginx in front of three gateways: the client's answer lands on any of them and is
/// passed on to the one that asked. Two official Python SDK clients at once, each getting
/// only its own answers, with upstreams of both eras (the Python SDK's, over HTTP).
/// (A request put on rmcp's way, for a call that takes no lane, is still answered only where
/// it was asked; see `registry/answers.rs`.)
#[tokio::test]
async fn a_clients_answers_reach_the_replica_that_asked() {
    let url = fresh_database().await;
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let upstream_url = upstream.url("/mcp");
    let yaml = format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n  legacy:\n    url: {upstream_url:?}\n    protocol: legacy\n  modern:\n    url: {upstream_url:?}\n    protocol: modern\n"
    );
    let replicas: Vec<ServeProcess> = (0..3)
        .map(|_| ServeProcess::start_in(ConfigDir::new(&yaml), &[]))
        .collect();
    for replica in &replicas {
        replica.wait_ready(Duration::from_secs(30));
    }
    let balancer = common::balancer::Balancer::start(
        &replicas
            .iter()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    // Answers small enough for a notification, and sampling answers of 20 KB, which wait in
    // the registry for the gateway that asked. Calls with a progress token go rmcp's way,
    // whose requests to the client the gateways name as they do their own.
    let runs: [&[&str]; 5] = [
        &["--prefix", "legacy__"],
        &["--prefix", "modern__"],
        &["--prefix", "legacy__", "--padding", "20000"],
        &["--prefix", "legacy__", "--progress"],
        &["--prefix", "modern__", "--progress", "--padding", "20000"],
    ];
    for run in runs {
        // Round robin: most answers land on a replica that did not ask.
        let output = std::process::Command::new(common::python())
            .arg(common::clients_dir().join("sdk_client_requests.py"))
            .args(["--mode", "legacy", "--url", &balancer.url("/mcp")])
            .args(["--clients", "2"])
            .args(run)
            .output()
            .expect("run the Python SDK clients");
        assert!(
            output.status.success(),
            "{run:?}:\n{}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            replicas
                .iter()
                .map(ServeProcess::log)
                .collect::<Vec<_>>()
                .join("\n----\n"),
        );
    }
}

/// A 2026-07-28 call to `gateway`'s `legacy__greet` (a session-era upstream that asks the
/// client's name mid-call), with `extra` parameters (a retry's state and answers).
async fn greet(gateway: &ServeProcess, extra: serde_json::Value) -> serde_json::Value {
    common::http::modern_tool_call(&gateway.mcp_url(), "legacy__greet", extra).await
}

/// The question a 2026-07-28 call was asked: its state, and the answer "eve".
fn asked(reply: &serde_json::Value) -> (String, serde_json::Value) {
    assert_eq!(reply["result"]["resultType"], "input_required", "{reply}");
    let (key, _) = reply["result"]["inputRequests"]
        .as_object()
        .and_then(|requests| requests.iter().next())
        .expect("one question");
    let state = reply["result"]["requestState"].as_str().expect("a state");
    let answer = json!({key.clone(): {"action": "accept", "content": {"name": "eve"}}});
    (state.to_owned(), answer)
}

#[tokio::test]
async fn a_retry_reaches_the_replica_that_parked_its_call_or_says_it_stopped() {
    let url = fresh_database().await;
    let upstream = ServedUpstream::python_script("bridge_upstream.py");
    let yaml = format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n  legacy:\n    url: {:?}\n    protocol: legacy\n    call_timeout_secs: 3\n",
        upstream.url("/mcp")
    );
    let a = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    let b = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    for replica in [&a, &b] {
        replica.wait_ready(Duration::from_secs(30));
    }

    // Parked on A, retried on B: B passes the retry to A and answers with its result.
    let (state, answer) = asked(&greet(&a, json!({})).await);
    // Not with another gateway's name in it: B refuses that at once, without passing it on.
    let (_, sealed) = state
        .split_once('~')
        .expect("a gateway's name, then the state");
    let renamed = format!("0123456789ab~{sealed}");
    let start = Instant::now();
    let forged = greet(
        &b,
        json!({"requestState": renamed, "inputResponses": answer}),
    )
    .await;
    assert_eq!(forged["error"]["code"], -32602, "{forged}");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let done = greet(&b, json!({"requestState": state, "inputResponses": answer})).await;
    assert_eq!(
        done["result"]["content"][0]["text"], "Hello, eve!",
        "{done}"
    );
    // A state resumes once, wherever it is retried: A's refusal comes back through B.
    for replica in [&b, &a] {
        let again = greet(
            replica,
            json!({"requestState": state, "inputResponses": answer}),
        )
        .await;
        assert_eq!(again["error"]["code"], -32602, "{again}");
        let message = again["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("already used"), "{again}");
    }

    // Parked on A, and A is killed: the retry on B fails with an error that says why, at the
    // upstream's call deadline.
    let (state, answer) = asked(&greet(&a, json!({})).await);
    a.stop(nix::sys::signal::Signal::SIGKILL);
    let start = Instant::now();
    let failed = greet(&b, json!({"requestState": state, "inputResponses": answer})).await;
    let message = failed["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("did not answer its retry") && message.contains("may have stopped"),
        "{failed}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}
