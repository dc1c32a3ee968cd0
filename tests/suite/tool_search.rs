//! Tool search (issue 20): the official Python SDK client, in both eras, lists three tools
//! instead of the catalog, finds `everything__echo` first for "echo back a message" (the
//! reference server's real tools beside mcp-server-time's), calls it through `call_tool`, and
//! through a virtual server never finds nor calls a tool outside that server. A `call_tool`
//! goes the gateway's own way, as a call of the tool it names would.

use crate::common;

use std::process::Command;

use common::{
    clients_dir,
    process::{ConfigDir, ServeProcess},
    python, real_upstreams_yaml,
};

fn run_client(url: &str, mode: &str, hidden: Option<(&str, &str)>) {
    let mut command = Command::new(python());
    command
        .arg(clients_dir().join("sdk_tool_search.py"))
        .args(["--mode", mode, "--url", url]);
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
    // unwrapped; a refused one, and the search's other tools, went rmcp's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while gateway.lane_calls() < 4 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(gateway.lane_calls(), 4, "{}", gateway.log());
}
