//! `mcps import` turns a Claude Desktop config (real servers: the reference `everything`
//! server and `mcp-server-time`) into a proxy.yaml that `mcps check` accepts, with every
//! server started and its tools listed; `--write` adds a VS Code `mcp.json`'s servers to an
//! existing proxy.yaml, keeping its comments; an mcp-remote entry becomes its remote server.

use crate::common;

use common::{
    api::{Api, admin_env},
    everything_command, fixture_upstream_yaml,
    process::{ConfigDir, ServeProcess, run_mcps},
    python,
};
use serde_json::json;

#[test]
fn a_claude_desktop_config_becomes_a_proxy_yaml_that_check_accepts() {
    let (node, everything) = everything_command();
    let claude = json!({"mcpServers": {
        "Everything Server": {"command": node, "args": [everything]},
        "time": {
            "command": python(),
            "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"],
            "env": {"TZ": "UTC"},
            "autoApprove": ["get_current_time"]
        }
    }});
    // An empty config beside it, for the -c the command line always has.
    let dir = ConfigDir::new("");
    let claude_file = dir.dir.path().join("claude_desktop_config.json");
    std::fs::write(&claude_file, claude.to_string()).unwrap();

    let (status, yaml, notes) = run_mcps(&dir.path(), &["import", claude_file.to_str().unwrap()]);
    assert!(status.success(), "{notes}");
    assert!(yaml.contains("everything-server:"), "{yaml}");
    assert!(
        notes.contains("\"Everything Server\" is imported as \"everything-server\""),
        "{notes}"
    );
    assert!(notes.contains("autoApprove"), "{notes}");

    std::fs::write(dir.path(), &yaml).unwrap();
    let (status, listed, log) = run_mcps(&dir.path(), &["check"]);
    assert!(status.success(), "{yaml}\n{listed}\n{log}");
    assert!(listed.contains("everything-server__echo"), "{listed}");
    assert!(listed.contains("time__get_current_time"), "{listed}");
}

#[test]
fn write_adds_vs_code_servers_to_an_existing_file_and_keeps_its_comments() {
    let existing = format!(
        "# my gateway\nupstreams:   # the servers\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let dir = ConfigDir::new(&existing);
    let vscode = dir.dir.path().join("mcp.json");
    let fixture = common::example_bin("fixture_upstream");
    std::fs::write(
        &vscode,
        format!(
            "{{\n  // VS Code allows comments\n  \"servers\": {{\n    \"fx\": {{\"command\": \"other\"}},\n    \"Second\": {{\"type\": \"stdio\", \"command\": {:?}, \"args\": [\"--label\", \"second\", \"--tool\", \"echo\"],}},\n  }},\n}}\n",
            fixture.display().to_string()
        ),
    )
    .unwrap();
    let (status, _, notes) = run_mcps(
        &dir.path(),
        &["import", "--write", vscode.to_str().unwrap()],
    );
    assert!(status.success(), "{notes}");
    assert!(notes.contains("fx is already in"), "{notes}");
    let written = std::fs::read_to_string(dir.path()).unwrap();
    assert!(
        written.starts_with("# my gateway\nupstreams: # the servers\n"),
        "{written}"
    );
    let (status, listed, log) = run_mcps(&dir.path(), &["check"]);
    assert!(status.success(), "{written}\n{log}");
    assert!(listed.contains("fx__echo"), "{listed}");
    assert!(listed.contains("second__echo"), "{listed}");
}

#[test]
fn a_file_with_no_server_list_is_refused_clearly() {
    let dir = ConfigDir::new("");
    let other = dir.dir.path().join("package.json");
    std::fs::write(&other, r#"{"name": "not a client config"}"#).unwrap();
    let (status, _, error) = run_mcps(&dir.path(), &["import", other.to_str().unwrap()]);
    assert_eq!(status.code(), Some(2), "{error}");
    assert!(error.contains("mcpServers"), "{error}");
}

/// A Claude Desktop entry that reaches a remote server through mcp-remote, configured as
/// README.md shows for a team's gateway (the API key in the entry's `env`, named in
/// `--header`), becomes that server's `url:` upstream with the key in its header: another
/// gateway imports it and reaches the first directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_remote_entry_becomes_its_remote_server() {
    let team = ServeProcess::start_in(
        ConfigDir::new(&format!(
            "auth:\n  enabled: true\nupstreams:\n{}",
            fixture_upstream_yaml("fx", "team", &["echo"], "")
        )),
        &admin_env(),
    );
    let key = Api::logged_in(&team).await.create_key("desktop").await;
    let claude = json!({"mcpServers": {"team": {
        "command": "npx",
        "args": ["-y", "mcp-remote@0.15.1", team.mcp_url(),
                 "--header", "Authorization: Bearer ${MCPS_API_KEY}"],
        "env": {"MCPS_API_KEY": key}
    }}});
    let dir = ConfigDir::new("");
    let claude_file = dir.dir.path().join("claude_desktop_config.json");
    std::fs::write(&claude_file, claude.to_string()).unwrap();

    let (status, yaml, notes) = run_mcps(&dir.path(), &["import", claude_file.to_str().unwrap()]);
    assert!(status.success(), "{notes}");
    assert!(
        yaml.contains(&format!("url: {}", team.mcp_url())) && !yaml.contains("npx"),
        "{yaml}"
    );
    assert!(
        notes.contains("mcp-remote's server, reached directly"),
        "{notes}"
    );
    std::fs::write(dir.path(), &yaml).unwrap();
    let (status, listed, log) = run_mcps(&dir.path(), &["check"]);
    assert!(status.success(), "{yaml}\n{listed}\n{log}");
    assert!(listed.contains("team__fx__echo"), "{listed}");
}
