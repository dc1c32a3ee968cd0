//! Editing `proxy.yaml` while the gateway runs: upstreams added, changed and removed are
//! applied, the unchanged one keeps its process (same PID), and a connected client is told
//! its tool list changed. An invalid edit is refused and logged, and the old configuration
//! keeps serving. The file watch, SIGHUP and `POST /api/v1/system/reload` all reload, and a
//! reload reads the `.env` beside the file without touching the process environment.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, wait_for},
    process::{ConfigDir, ServeProcess, processes_with_marker},
};
use reqwest::StatusCode;
use serde_json::json;

/// A fixture upstream whose processes carry the marker `<test>-<name>-<version>`.
fn upstream(test: &str, name: &str, version: &str, tool: &str) -> String {
    let marker = format!("{test}-{name}-{version}-{}", std::process::id());
    fixture_upstream_yaml(
        name,
        &format!("{name}-{version}"),
        &[tool],
        &format!("    env: {{MCPS_TEST_MARKER: {marker:?}}}\n"),
    )
}

fn marker(test: &str, name: &str, version: &str) -> String {
    format!("{test}-{name}-{version}-{}", std::process::id())
}

fn config(server: &str, upstreams: &[String]) -> String {
    format!("{server}upstreams:\n{}", upstreams.concat())
}

/// The PID of the one process carrying `marker`.
fn pid_of(marker: &str) -> u32 {
    let pids = processes_with_marker(marker);
    assert_eq!(pids.len(), 1, "processes with {marker}: {pids:?}");
    pids[0]
}

/// Polls `tools/list` until `done` holds for the names.
async fn wait_for_tools(session: &mut RawSession, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = session.tool_names().await;
        if done(&names) {
            return names;
        }
        assert!(Instant::now() < deadline, "tools never settled: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn edits_apply_to_the_changed_upstreams_alone() {
    let test = "edit";
    let gateway = ServeProcess::start(&config(
        "",
        &[
            upstream(test, "keep", "1", "echo"),
            upstream(test, "change", "1", "echo"),
            upstream(test, "drop", "1", "echo"),
        ],
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let events = session.open_stream().await;
    let names = session.tool_names().await;
    assert_eq!(names, ["change__echo", "drop__echo", "keep__echo"]);
    let kept = pid_of(&marker(test, "keep", "1"));
    let changed = pid_of(&marker(test, "change", "1"));

    std::fs::write(
        gateway.config.path(),
        config(
            "",
            &[
                upstream(test, "keep", "1", "echo"),
                upstream(test, "change", "2", "echo"),
                upstream(test, "fresh", "1", "hello"),
            ],
        ),
    )
    .unwrap();

    wait_for(&events, "notifications/tools/list_changed", 1).await;
    let names = wait_for_tools(&mut session, |names| {
        names.contains(&"fresh__hello".to_owned()) && names.contains(&"change__echo".to_owned())
    })
    .await;
    assert_eq!(names, ["change__echo", "fresh__hello", "keep__echo"]);
    assert_eq!(
        pid_of(&marker(test, "keep", "1")),
        kept,
        "keep was restarted"
    );
    assert!(processes_with_marker(&marker(test, "change", "1")).is_empty());
    assert_ne!(pid_of(&marker(test, "change", "2")), changed);
    assert!(processes_with_marker(&marker(test, "drop", "1")).is_empty());
    let answer = session.call("change__echo", json!({})).await;
    assert!(answer.to_string().contains("change-2:echo"), "{answer}");
    gateway.wait_for_log("reloaded").await;

    // An invalid edit: refused, logged, and the running configuration stays.
    std::fs::write(
        gateway.config.path(),
        "upstreams:\n  broken: {command: 42, url: x}\n",
    )
    .unwrap();
    gateway
        .wait_for_log("refused, the running configuration stays")
        .await;
    let answer = session.call("keep__echo", json!({})).await;
    assert!(answer.to_string().contains("keep-1:echo"), "{answer}");
    assert_eq!(session.tool_names().await, names);
    assert_eq!(pid_of(&marker(test, "keep", "1")), kept);
}

#[tokio::test]
async fn sighup_and_the_api_reload_and_refuse_invalid_files() {
    let test = "trigger";
    let manual = "server:\n  watch_config: false\n";
    let dir = ConfigDir::new(&config(manual, &[upstream(test, "one", "1", "echo")]));
    let gateway = ServeProcess::start_in(dir, &admin_env());
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    pid_of(&marker(test, "one", "1"));

    let write = |upstreams: &[String]| {
        std::fs::write(gateway.config.path(), config(manual, upstreams)).unwrap()
    };
    write(&[
        upstream(test, "one", "1", "echo"),
        upstream(test, "two", "1", "echo"),
    ]);
    gateway.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for_tools(&mut session, |names| names.len() == 2).await;

    // One upstream less, and a virtual server more.
    let with_view = format!("{manual}virtual_servers:\n  only-two: {{upstreams: [two]}}\n");
    std::fs::write(
        gateway.config.path(),
        config(&with_view, &[upstream(test, "two", "1", "echo")]),
    )
    .unwrap();
    let api = Api::logged_in(&gateway).await;
    let answer = api.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["removed"], json!(["one"]), "{answer:?}");
    assert_eq!(answer.body["unchanged"], json!(["two"]), "{answer:?}");
    assert_eq!(
        answer.body["virtual_servers"],
        json!(["only-two"]),
        "{answer:?}"
    );
    let mut scoped = RawSession::open(&format!("{}/mcp/only-two", gateway.base)).await;
    assert_eq!(scoped.tool_names().await, ["two__echo"]);
    assert!(processes_with_marker(&marker(test, "one", "1")).is_empty());
    assert!(processes_with_marker(&marker(test, "two", "1")).len() == 1);

    std::fs::write(gateway.config.path(), "upstreams: [not, a, map]\n").unwrap();
    let answer = api.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{answer:?}"
    );
    assert_eq!(answer.code(), "invalid_config");
    assert_eq!(session.tool_names().await, ["two__echo"]);

    let answer = Api::new(&gateway)
        .post("/api/v1/system/reload", json!({}))
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
}

// In this binary, not config_env's, whose other test sets variables: the environment is
// not to be read while another thread writes it.
#[test]
fn a_reload_reads_the_dot_env_again_without_changing_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("proxy.yaml"),
        "server:\n  listen: \"127.0.0.1:${MCPS_TEST_RELOAD_PORT:8000}\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join(".env"), "MCPS_TEST_RELOAD_PORT=9321\n").unwrap();
    let config = mcps::config::Config::reload(&dir.path().join("proxy.yaml")).unwrap();
    assert_eq!(config.server.listen, "127.0.0.1:9321");
    // Other threads read the environment while the gateway runs: a reload leaves it alone.
    assert!(std::env::var_os("MCPS_TEST_RELOAD_PORT").is_none());
}

#[tokio::test]
async fn a_reload_puts_a_new_log_level_in_force_at_once() {
    // Reload's own lines are hidden at first (the gateway's start-up line is still needed).
    let quiet = "server:\n  watch_config: false\nlogging:\n  level: \"info,mcps::reload=warn\"\n";
    let loud = "server:\n  watch_config: false\nlogging:\n  level: info\n";
    // An empty RUST_LOG leaves the level to the file.
    let env = [admin_env()[0], ("RUST_LOG", "")];
    let gateway = ServeProcess::start_in(ConfigDir::new(quiet), &env);
    let api = Api::logged_in(&gateway).await;

    std::fs::write(gateway.config.path(), loud).unwrap();
    let answer = api.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(
        answer.body["log_level"],
        json!({"level": "info", "applied": true}),
        "{answer:?}"
    );
    assert_eq!(answer.body["needs_restart"], json!([]), "{answer:?}");
    gateway.wait_for_log("log level is now \"info\"").await;
    gateway.wait_for_log("reloaded").await;

    std::fs::write(gateway.config.path(), quiet).unwrap();
    let answer = api.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(answer.body["log_level"]["applied"], true, "{answer:?}");
    // An error still shows; once it has, an info line of that reload would have too.
    std::fs::write(gateway.config.path(), "logging: [not, a, map]\n").unwrap();
    let answer = api.post("/api/v1/system/reload", json!({})).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    gateway.wait_for_log("refused").await;
    assert_eq!(
        gateway.log().matches("reloaded").count(),
        1,
        "{}",
        gateway.log()
    );
}

#[tokio::test]
async fn a_reload_that_replaces_an_upstream_lets_its_calls_in_flight_finish() {
    let manual = "server:\n  watch_config: false\n";
    let slow = |label: &str| fixture_upstream_yaml("slow", label, &["echo", "sleep"], "");
    let dir = ConfigDir::new(&config(manual, &[slow("v1")]));
    let gateway = ServeProcess::start_in(dir, &admin_env());
    let api = Api::logged_in(&gateway).await;
    let session = RawSession::open(&gateway.mcp_url()).await;

    let in_flight: Vec<_> = (0..50u64)
        .map(|n| {
            let mut handle = session.handle();
            handle.next_id = 10_000 + n;
            tokio::spawn(async move {
                handle
                    .call("slow__sleep", json!({"ms": 3000, "tag": n}))
                    .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    std::fs::write(gateway.config.path(), config(manual, &[slow("v2")])).unwrap();
    let reload = tokio::spawn(async move { api.post("/api/v1/system/reload", json!({})).await });
    // New calls go to the new connection as soon as it is ready, while the old one drains.
    let mut probe = session.handle();
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let reply = probe.call("slow__echo", json!({})).await;
        let text = reply["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        if text.starts_with("v2:") {
            break;
        }
        assert!(text.starts_with("v1:"), "{reply}");
        assert!(
            Instant::now() < deadline,
            "the new connection never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        in_flight.iter().all(|call| !call.is_finished()),
        "the new connection took over while the old one's calls were still running"
    );

    for call in in_flight {
        let reply = call.await.unwrap();
        let result = &reply["result"];
        assert_eq!(result["isError"], json!(false), "{reply}");
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("v1:"),
            "{reply}"
        );
        assert_eq!(result["structuredContent"]["most_at_once"], 50, "{reply}");
    }
    let answer = reload.await.unwrap();
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.body["changed"], json!(["slow"]), "{answer:?}");
}

/// `mcps stdio` reloads once per SIGHUP (it used to start two watchers, so each signal reloaded
/// twice).
#[test]
fn mcps_stdio_reloads_once_per_sighup() {
    use std::io::{BufRead, BufReader};
    let dir = ConfigDir::new(&config(
        "server:\n  watch_config: false\n",
        &[upstream("stdio-reload", "one", "1", "echo")],
    ));
    let mut child = std::process::Command::new(common::mcps_bin())
        .args(["stdio", "-c"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn mcps stdio");
    let (lines, seen) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut log = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = seen.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(needle);
                log.push(line);
                if found {
                    return log;
                }
            }
        }
        panic!("never logged {needle:?}:\n{}", log.join("\n"));
    };
    wait_for("ready");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("send SIGHUP");
    wait_for("reloaded");
    std::thread::sleep(Duration::from_secs(1));
    let twice: Vec<String> = seen
        .try_iter()
        .filter(|line| line.contains("reloaded"))
        .collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(twice.is_empty(), "one SIGHUP reloaded again: {twice:?}");
}
