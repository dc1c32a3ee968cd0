//! A quiet streamable HTTP session sleeps (rmcp's half of it is closed) after
//! `timeouts.session_sleep_secs`, and its next request wakes it: the client sees nothing of it.
//! It wakes with the log level it set, stays counted while asleep, and can be ended with DELETE.
//! A session sleeps under its client's open GET stream too: the stream stays open, and carries
//! the catalog's changes while the session sleeps and after it wakes, to the official Python
//! and TypeScript SDKs' clients as to a raw one.
//!
//! The upstream is the TypeScript SDK's fixture, whose logging tool logs at `info`.

use crate::common;

use std::time::Duration;

use common::{
    fixtures::{Implementation, stdio_upstream_yaml},
    http::RawSession,
    process::{ConfigDir, ServeProcess},
    wait_logged,
};
use reqwest::StatusCode;
use serde_json::json;

const ASLEEP: &str = "a quiet session goes to sleep";

fn gateway() -> ServeProcess {
    let yaml = format!(
        "timeouts:\n  session_sleep_secs: 0.3\nupstreams:\n{}",
        stdio_upstream_yaml(Implementation::TypeScript, "fx", &[], "auto")
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[(
            "RUST_LOG",
            "info,rmcp=warn,mcps::downstream::sessions=debug",
        )],
    );
    gateway.wait_ready(Duration::from_secs(30));
    gateway
}

/// The text of the logging tool's call in `session` (its whole event stream). The call names
/// itself in its headers too (SEP-2243), as a client of the 2026 SDKs does.
async fn logging_call(session: &mut RawSession) -> String {
    let name = "fx__test_tool_with_logging";
    session.next_id += 1;
    let call = json!({"jsonrpc": "2.0", "id": session.next_id, "method": "tools/call",
                      "params": {"name": name, "arguments": {}}});
    let reply = session
        .post_raw(
            call.to_string(),
            &[("mcp-method", "tools/call"), ("mcp-name", name)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.contains("\"result\""), "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn a_quiet_session_sleeps_and_wakes_with_its_log_level() {
    let gateway = gateway();
    let mut quiet = RawSession::open(&gateway.mcp_url()).await;
    let mut chatty = RawSession::open(&gateway.mcp_url()).await;
    let level = quiet
        .request("logging/setLevel", json!({"level": "error"}))
        .await;
    assert_eq!(level.status, StatusCode::OK, "{}", level.body);
    let chatty_level = chatty
        .request("logging/setLevel", json!({"level": "debug"}))
        .await;
    assert_eq!(chatty_level.status, StatusCode::OK, "{}", chatty_level.body);
    wait_logged(|| gateway.log(), ASLEEP, 2).await;

    // Woken by a request rmcp serves, then by a call the gateway serves itself.
    assert_eq!(quiet.tool_names().await, chatty.tool_names().await);
    assert!(
        quiet
            .tool_names()
            .await
            .contains(&"fx__test_tool_with_logging".to_owned())
    );
    let filtered = logging_call(&mut quiet).await;
    assert!(
        !filtered.contains("Tool execution started"),
        "the session asked for errors only before it slept:\n{filtered}"
    );
    let logged = logging_call(&mut chatty).await;
    assert!(
        logged.contains("Tool execution started"),
        "the session asked for debug messages before it slept:\n{logged}"
    );

    // Asleep again, a call wakes it directly.
    wait_logged(|| gateway.log(), ASLEEP, 4).await;
    let filtered = logging_call(&mut quiet).await;
    assert!(!filtered.contains("Tool execution started"), "{filtered}");
    let logged = logging_call(&mut chatty).await;
    assert!(logged.contains("Tool execution started"), "{logged}");
}

/// The `mcps_sessions` gauge in the gateway's metrics.
async fn sessions_gauge(gateway: &ServeProcess) -> String {
    let metrics = crate::common::http::metrics_text(&gateway.base).await;
    metrics
        .lines()
        .find(|line| line.starts_with("mcps_sessions "))
        .unwrap_or_else(|| panic!("no mcps_sessions in:\n{metrics}"))
        .to_owned()
}

#[tokio::test]
async fn a_sleeping_session_is_counted_and_ends_with_delete() {
    let gateway = gateway();
    let session = RawSession::open(&gateway.mcp_url()).await;
    wait_logged(|| gateway.log(), ASLEEP, 1).await;
    assert_eq!(
        sessions_gauge(&gateway).await,
        "mcps_sessions 1",
        "the sleeping session counts as open"
    );
    session.close().await;
    let gone = session.handle().request("tools/list", json!({})).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
    assert_eq!(sessions_gauge(&gateway).await, "mcps_sessions 0");
}

#[tokio::test]
async fn a_session_sleeps_under_its_open_stream_which_goes_on() {
    let yaml = |with_second: bool| {
        let mut yaml = format!(
            "timeouts:\n  session_sleep_secs: 0.3\nupstreams:\n{}",
            stdio_upstream_yaml(Implementation::TypeScript, "fx", &[], "auto")
        );
        if with_second {
            yaml.push_str(&stdio_upstream_yaml(
                Implementation::TypeScript,
                "fy",
                &[],
                "auto",
            ));
        }
        yaml
    };
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let stream = session.open_stream().await;
    wait_logged(|| gateway.log(), ASLEEP, 1).await;

    // Asleep, its client still hears that the tools changed.
    let config = gateway.config.path();
    std::fs::write(&config, yaml(true)).unwrap();
    gateway.signal(nix::sys::signal::Signal::SIGHUP);
    common::http::wait_for(&stream, "notifications/tools/list_changed", 1).await;
    assert_eq!(
        gateway.log().matches(ASLEEP).count(),
        1,
        "it slept once and has not woken:\n{}",
        gateway.log()
    );

    // Its next request wakes it, and the same stream carries what its awake half sends: a
    // change announced while a call keeps it awake.
    let reply = session.call("fy__test_simple_text", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    let mut slow = session.handle();
    let slow =
        tokio::spawn(async move { slow.call("fx__test_slow_tool", json!({"seconds": 3})).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reply = session
        .call("fx__test_trigger_tool_change", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    common::http::wait_for(&stream, "notifications/tools/list_changed", 2).await;
    assert!(
        !slow.is_finished(),
        "the slow call ended before the change arrived"
    );
    assert_eq!(
        gateway.log().matches(ASLEEP).count(),
        1,
        "{}",
        gateway.log()
    );
    let reply = slow.await.unwrap();
    assert!(reply["result"].is_object(), "{reply}");
    // And it sleeps again under it.
    wait_logged(|| gateway.log(), ASLEEP, 2).await;
}

/// A session asleep while its client has no stream open keeps the catalog's changes for it,
/// as rmcp keeps what an awake session is sent before its client's stream opens: the stream
/// its client opens next, which wakes it, begins with them.
#[tokio::test]
async fn a_change_while_a_session_sleeps_unheard_reaches_the_stream_opened_next() {
    let gateway = gateway();
    let session = RawSession::open(&gateway.mcp_url()).await;
    wait_logged(|| gateway.log(), ASLEEP, 1).await;

    let mut other = RawSession::open(&gateway.mcp_url()).await;
    let reply = other.call("fx__test_trigger_tool_change", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    wait_logged(|| gateway.log(), "offer changed", 1).await;
    // The catalog's change is sent out a moment after the upstream's offer is read.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stream = session.open_stream().await;
    common::http::wait_for(&stream, "notifications/tools/list_changed", 1).await;
}

/// The official Python SDK's client (`tests/clients/matrix.py`), two at once: each session
/// sleeps under its GET stream before each list change, and the client that did not make the
/// change still hears of it, asleep.
#[tokio::test]
async fn an_sdk_client_hears_list_changes_while_its_session_sleeps() {
    let gateway = gateway();
    let output = std::process::Command::new(common::python())
        .arg(common::clients_dir().join("matrix.py"))
        .args([
            "--mode",
            "legacy",
            "--prefix",
            "fx__",
            "--only",
            "list_changed",
        ])
        .args(["--quiet", "1", "--url", &gateway.mcp_url()])
        .output()
        .expect("run the matrix client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ok list_changed"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        gateway.log()
    );
    // Both slept before each of the three changes.
    assert!(
        gateway.log().matches(ASLEEP).count() >= 6,
        "{}",
        gateway.log()
    );
}

/// A GET stream resumed from an event the session does not have (one numbered before it
/// slept, say: a woken session numbers its events afresh) goes on from now, rather than
/// failing.
#[tokio::test]
async fn a_stream_resumed_from_an_unknown_event_goes_on_from_now() {
    let gateway = gateway();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    // A change with no stream open: the session keeps its notification for a resumption.
    let reply = session
        .call("fx__test_trigger_tool_change", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut resuming = session.handle();
    resuming
        .headers
        .push(("last-event-id".into(), "999".into()));
    let stream = resuming.open_stream().await;
    let reply = session
        .call("fx__test_trigger_tool_change", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    common::http::wait_for(&stream, "notifications/tools/list_changed", 1).await;
}

/// The official TypeScript SDK's client (`tests/clients/ts_client.cjs`) opens its GET stream,
/// then calls nothing: its session sleeps, and it still hears that the tools changed; its next
/// call wakes the session.
#[tokio::test]
async fn the_typescript_client_hears_a_list_change_while_its_session_sleeps() {
    use std::io::BufRead;

    let gateway = gateway();
    let mut client = std::process::Command::new(common::installed("MCPS_TEST_NODE"))
        .env("NODE_PATH", common::installed("MCPS_TEST_NODE_PATH"))
        .arg(common::clients_dir().join("ts_client.cjs"))
        .args([
            "--era",
            "legacy",
            "--name",
            "sleeper",
            "--tool",
            "fx__test_simple_text",
        ])
        .args(["--await-list-change", "20", "--url", &gateway.mcp_url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("start the TypeScript client");
    let mut lines = std::io::BufReader::new(client.stdout.take().unwrap()).lines();
    let listening = lines.next().expect("a line").expect("stdout reads");
    assert!(listening.contains("listening"), "{listening}");
    wait_logged(|| gateway.log(), ASLEEP, 1).await;

    let mut other = RawSession::open(&gateway.mcp_url()).await;
    let reply = other.call("fx__test_trigger_tool_change", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    let report = lines.next().expect("a report").expect("stdout reads");
    let ended = client.wait().expect("the client ends");
    assert!(ended.success(), "the TypeScript client failed: {report}");
    let report: serde_json::Value = serde_json::from_str(&report).expect("a JSON report");
    assert_eq!(report["heard"], 1, "{report}\n{}", gateway.log());
    assert_eq!(
        report["text"], "This is a simple text response for testing.",
        "{report}"
    );
}
