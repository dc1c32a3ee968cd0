//! A new user's first hour with the shipped files: each friction met there, shown gone.

use crate::common;

use std::path::Path;

use common::{
    http::RawSession,
    process::{ConfigDir, ServeProcess},
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
