//! A new user's first hour with the shipped files: each friction met there, shown gone.

use crate::common;

use std::path::Path;

use common::{
    api::{Api, admin_env},
    http::RawSession,
    process::{ConfigDir, ServeProcess, run_mcps},
};
use serde_json::json;

fn shipped(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap()
}

/// The shipped proxy.yaml, copied elsewhere and started with a `PATH` that holds no program at
/// all (as a desktop client may launch the gateway): its `hello` upstream is the binary's own
/// demo server, so it comes up and answers without cargo, without the repository beside it.
#[tokio::test]
async fn the_shipped_hello_upstream_runs_without_a_toolchain_or_a_path() {
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&shipped("proxy.yaml")),
        &[("PATH", "/nonexistent")],
    );
    let health = gateway.health();
    let hello = health["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|upstream| upstream["name"] == "hello")
        .unwrap_or_else(|| panic!("{health}"));
    assert_eq!(hello["state"], "ready", "{health}");

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let greeting = session
        .call("hello__greet", json!({"name": "newcomer"}))
        .await;
    assert_eq!(
        greeting["result"]["content"][0]["text"], "Hello, newcomer!",
        "{greeting}"
    );
    let sum = session.call("hello__add", json!({"a": 2, "b": 3})).await;
    assert_eq!(sum["result"]["structuredContent"]["sum"], 5.0, "{sum}");
}

/// `mcps import --write` into the shipped proxy.yaml puts the imported server after the
/// shipped ones (so they keep their names and their tools' in a clash) and moves no line:
/// taking the imported lines out gives back the file as it was, comments and all.
#[test]
fn import_write_appends_after_the_existing_upstreams_and_moves_no_comment() {
    let original = shipped("proxy.yaml");
    let dir = ConfigDir::new(&original);
    let claude = dir.dir.path().join("claude_desktop_config.json");
    std::fs::write(
        &claude,
        r#"{"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"]}}}"#,
    )
    .unwrap();
    let (status, _, notes) = run_mcps(
        &dir.path(),
        &["import", "--write", claude.to_str().unwrap()],
    );
    assert!(status.success(), "{notes}");

    let written = std::fs::read_to_string(dir.path()).unwrap();
    let added = "  time:\n    command: uvx\n    args:\n    - mcp-server-time\n";
    assert_eq!(
        written.replacen(added, "", 1),
        original,
        "only the entry was added:\n{written}"
    );
    let config = mcps::config::Config::load(&dir.path()).unwrap();
    let names: Vec<&str> = config.upstreams.keys().map(String::as_str).collect();
    assert_eq!(names, ["everything", "hello", "time"]);
}

/// An upstream that cannot be reached is said by its cause (`dns error`), not by the Rust
/// types of rmcp's transport.
#[test]
fn an_unreachable_upstream_is_said_by_its_cause() {
    let gateway = ServeProcess::start(
        "upstreams:\n  remote:\n    url: http://unknown-host.invalid/mcp\n    startup_timeout_secs: 10\n",
    );
    let health = gateway.health();
    let error = health["upstreams"][0]["last_error"]
        .as_str()
        .or_else(|| health["upstreams"][0]["error"].as_str())
        .unwrap_or_else(|| panic!("{health}"))
        .to_owned();
    assert!(error.contains("dns error"), "{error}");
    for rust in ["Transport [", "Worker", "<", "::"] {
        assert!(!error.contains(rust), "{error}");
    }
}

/// A port already taken stops start-up with its cause said once.
#[test]
fn a_busy_port_is_said_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = ConfigDir::new("upstreams: {}\n");
    let (status, _, stderr) = run_mcps(&dir.path(), &["serve", "--listen", &address]);
    assert!(!status.success(), "{stderr}");
    let said = stderr
        .lines()
        .find(|line| line.contains("cannot listen"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(said.contains(&address), "{said}");
    assert_eq!(said.matches("in use").count(), 1, "{said}");
}

/// `mcps call`, `mcps tools` and `mcps check` use the gateway running on the config's address
/// and say so: the call is in that gateway's history. `--local` starts the upstreams instead.
#[tokio::test]
async fn the_command_line_uses_the_running_gateway() {
    let address = format!("127.0.0.1:{}", common::free_port());
    let yaml = format!(
        "server:\n  listen: \"{address}\"\nvirtual_servers:\n  only-echo:\n    allow: [\"fx__echo\"]\nupstreams:\n{}",
        common::fixture_upstream_yaml("fx", "fx", &["echo", "add"], "")
    );
    let gateway = ServeProcess::start_listening(ConfigDir::new(&yaml), &admin_env(), &address);
    let config = gateway.config.path();
    let using = format!("using the gateway running at http://{address}");

    let (status, printed, said) = run_mcps(
        &config,
        &[
            "call",
            "fx__echo",
            "--args",
            r#"{"message": "from the command line"}"#,
        ],
    );
    assert!(status.success(), "{printed}\n{said}");
    assert!(said.contains(&using), "{said}");
    let result: serde_json::Value = serde_json::from_str(&printed).unwrap();
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with("fx:echo:") && text.contains("from the command line"),
        "{result}"
    );
    assert!(result.get("resultType").is_none(), "{result}");
    let api = Api::logged_in(&gateway).await;
    assert_eq!(logged_calls(&api).await, 1);

    let (status, printed, said) = run_mcps(&config, &["tools"]);
    assert!(status.success() && said.contains(&using), "{said}");
    assert!(
        printed.contains("fx__echo") && printed.contains("fx__add"),
        "{printed}"
    );

    let (status, printed, said) = run_mcps(&config, &["check"]);
    assert!(status.success(), "{printed}\n{said}");
    assert!(said.contains(&using), "{said}");
    assert!(
        printed.contains("fx") && printed.contains("ready"),
        "{printed}"
    );
    assert!(
        printed.contains("virtual server only-echo: fx__echo"),
        "{printed}"
    );

    // A tool the gateway does not have: its refusal, and exit 1.
    let (status, _, said) = run_mcps(&config, &["call", "fx__missing"]);
    assert!(!status.success(), "{said}");
    assert!(said.contains("fx__missing"), "{said}");

    let (status, printed, said) = run_mcps(&config, &["call", "fx__echo", "--local"]);
    assert!(status.success(), "{said}");
    assert!(!said.contains("using the gateway"), "{said}");
    assert!(printed.contains("\"content\""), "{printed}");
}

/// The calls of `fx__echo` in the gateway's history, once its log has written them (it
/// writes in batches).
async fn logged_calls(api: &Api) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let calls = api.get("/api/v1/calls?tool=fx__echo").await;
        let count = calls.body["calls"].as_array().map_or(0, Vec::len);
        if count > 0 || std::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// README's first command builds a profile Cargo.toml defines and runs the binary that
/// profile writes (the profile is what makes the first build take minutes, not ten).
#[test]
fn the_readme_first_command_runs_what_it_builds() {
    let readme = shipped("README.md");
    let first = readme
        .lines()
        .find(|line| line.starts_with("cargo build"))
        .unwrap_or_else(|| panic!("no cargo build line in README.md"));
    let (build, run) = first.split_once(" && ").expect("build && run");
    let words: Vec<&str> = build.split_whitespace().collect();
    let profile = words
        .iter()
        .position(|word| *word == "--profile")
        .map(|at| words[at + 1])
        .expect("a --profile");
    assert!(
        words.contains(&"--bin") && words.contains(&"mcps"),
        "{first}"
    );
    let manifest = shipped("Cargo.toml");
    assert!(
        manifest.contains(&format!("[profile.{profile}]")),
        "Cargo.toml has no profile {profile}"
    );
    assert_eq!(run, format!("./target/{profile}/mcps serve"), "{first}");
}
