//! Tool search (issue 20): the official Python SDK client, in both eras, lists three tools
//! instead of the catalog, finds `everything__echo` first for "echo back a message" (the
//! reference server's real tools beside mcp-server-time's), calls it through `call_tool`, and
//! through a virtual server never finds nor calls a tool outside that server. A `call_tool`
//! goes the gateway's own way, as a call of the tool it names would; `search_tools` and
//! `list_tool_names` are answered on the gateway's own way too.

use crate::common;

use std::process::Command;

use common::{
    clients_dir, mcps_bin,
    process::{ConfigDir, ServeProcess},
    python, real_upstreams_yaml,
};
use serde_json::json;

use crate::tool_call_lane::{meta, post_call};

/// Runs the Python SDK's client of the search against the gateway at `url`, or, for a
/// `url` that is a config file's path, against `mcps stdio` on it.
fn run_client(url: &str, mode: &str, hidden: Option<(&str, &str)>) {
    let mut command = Command::new(python());
    command
        .arg(clients_dir().join("sdk_tool_search.py"))
        .args(["--mode", mode]);
    if url.starts_with("http") {
        command.args(["--url", url]);
    } else {
        command
            .arg("--mcps")
            .arg(mcps_bin())
            .args(["--config", url]);
    }
    if let Some((name, query)) = hidden {
        command.args(["--hidden", name, "--hidden-query", query]);
    }
    let output = command.output().expect("run the Python SDK client");
    assert!(
        output.status.success(),
        "tool search ({mode}, {url}):\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_client_searches_the_catalog_and_calls_what_it_found_within_its_view() {
    let yaml = format!(
        "catalog:\n  tool_search: true\nvirtual_servers:\n  echoes:\n    upstreams: [everything]\n    tool_search: true\n  plain:\n    upstreams: [everything]\nupstreams:\n{}",
        real_upstreams_yaml()
    );
    // Debug: each call's "call done" line says whether it went the gateway's own way.
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &[("RUST_LOG", "mcps=debug")]);
    assert_eq!(gateway.health()["status"], "ok", "{}", gateway.log());
    for mode in ["legacy", "2026-07-28"] {
        run_client(&gateway.mcp_url(), mode, None);
        run_client(
            &format!("{}/echoes", gateway.mcp_url()),
            mode,
            Some(("time__get_current_time", "current time in a timezone")),
        );
    }
    // Each run's `call_tool` of `everything__echo` went the way a call of that tool goes,
    // unwrapped; a refused one went rmcp's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while gateway.lane_calls() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(gateway.lane_calls(), 4, "{}", gateway.log());
    // Every `search_tools` and `list_tool_names` of the runs, refused ones included, in both
    // eras: four in each run, and one more in each run within the view. The log is read as
    // the gateway writes it: wait for them all, then hold that there are no more.
    let own_way = "the tool search answers on the gateway's own way";
    while gateway.log().matches(own_way).count() < 18 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let own_answers = gateway.log().matches(own_way).count();
    assert_eq!(own_answers, 18, "{}", gateway.log());
}

/// The same client over `mcps stdio`, in both eras: its searches and lists are answered on
/// the stdio door's own way (its log, written to files here, says so for each).
#[test]
fn a_client_of_mcps_stdio_searches_on_the_gateways_own_way() {
    let yaml = format!(
        "logging:\n  level: mcps=debug,rmcp=warn\n  dir: logs\n  rotation: never\n\
         catalog:\n  tool_search: true\nupstreams:\n{}",
        real_upstreams_yaml()
    );
    let config = ConfigDir::new(&yaml);
    let config_path = config.path().display().to_string();
    for mode in ["legacy", "2026-07-28"] {
        run_client(&config_path, mode, None);
    }
    let logs = config.dir.path().join("logs");
    let log: String = std::fs::read_dir(&logs)
        .unwrap_or_else(|error| panic!("{}: {error}", logs.display()))
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    // Four in each run: two searches, one refused, one list.
    let own_answers = log
        .matches("the tool search answers on the gateway's own way")
        .count();
    assert_eq!(own_answers, 8, "{log}");
}

/// What the search's own tools refuse (`-32602`): a limit under 1 and a query of blanks, on
/// the gateway's own way, in the words of the typed way's checks; arguments that are no
/// object, which no door's own way takes, on rmcp's. A 2026-07-28 request and a session-era
/// session's are refused alike.
#[tokio::test]
async fn the_search_refuses_what_it_cannot_answer_in_both_eras() {
    let yaml = format!(
        "catalog:\n  tool_search: true\nupstreams:\n{}",
        common::fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &[("RUST_LOG", "mcps=debug")]);
    gateway.wait_ready(std::time::Duration::from_secs(30));
    let cases = [
        (json!([1]), "invalid type: sequence, expected a map"),
        (
            json!({"query": "echo", "limit": 0}),
            "`limit` is a whole number from 1",
        ),
        (
            json!({"query": "   "}),
            "`query` (a non-empty string) is required",
        ),
    ];
    let mut session = common::http::RawSession::open(&gateway.mcp_url()).await;
    for (arguments, words) in &cases {
        let params = json!({"_meta": meta(), "name": "search_tools", "arguments": arguments});
        let (status, modern) = post_call(&gateway.mcp_url(), "search_tools", &[], params).await;
        let legacy = session.call("search_tools", arguments.clone()).await;
        for (era, answer) in [("2026-07-28", &modern), ("session era", &legacy)] {
            assert_eq!(
                answer["error"]["code"], -32602,
                "{era}, {arguments}: {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains(words), "{era}, {arguments}: {message}");
        }
        assert_eq!(status, 200, "{arguments}: {modern}");
    }
    let own_way = "the tool search answers on the gateway's own way";
    common::wait_logged(|| gateway.log(), own_way, 2 * (cases.len() - 1)).await;
    let own_answers = gateway.log().matches(own_way).count();
    assert_eq!(own_answers, 2 * (cases.len() - 1), "{}", gateway.log());
}
