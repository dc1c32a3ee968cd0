//! An upstream whose command does not exist: the gateway starts, reports it (log and health),
//! serves the others, and a call to its tools fails at once naming it.

use crate::common;

use std::time::{Duration, Instant};

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test]
async fn missing_command_is_reported_and_the_rest_serve() {
    let yaml = format!(
        // A long backoff keeps it in one state while the test looks.
        "restart:\n  initial_backoff_secs: 60\nupstreams:\n  broken:\n    command: /nonexistent/mcp-server-that-is-not-here\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start(&yaml);

    let health = gateway.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let broken = health["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "broken")
        .expect("broken upstream listed");
    assert_eq!(broken["state"], "degraded", "restarting later: {health}");
    assert!(
        broken["error"]
            .as_str()
            .unwrap()
            .contains("mcp-server-that-is-not-here"),
        "{health}"
    );
    let log = gateway.log();
    assert!(
        log.contains("upstream=broken") && log.contains("cannot spawn"),
        "{log}"
    );

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("fx__echo", json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "fx",
        "{reply}"
    );

    let started = Instant::now();
    let reply = session.call("broken__anything", json!({})).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the call must fail at once"
    );
    let message = reply["error"]["message"].as_str().expect("an error");
    assert!(message.contains("'broken'"), "{reply}");
    assert_eq!(reply["error"]["data"]["upstream"], "broken", "{reply}");
}

#[tokio::test]
async fn check_reports_the_failed_upstream_and_fails() {
    let config = common::process::ConfigDir::new(&format!(
        "upstreams:\n  broken:\n    command: /nonexistent/nope\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let (status, stdout, _) = common::process::run_mcps(&config.path(), &["check"]);
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("broken") && stdout.contains("FAILED"),
        "{stdout}"
    );
    assert!(stdout.contains("fx__echo"), "{stdout}");
}
