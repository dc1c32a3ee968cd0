//! An upstream that changes a tool's definition after the gateway first saw it: the change
//! is logged with what changed; with `pin: true` the changed tool is refused (left out of
//! the catalog), while an unpinned upstream's changed tool is served as it now is.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test]
async fn a_changed_definition_is_logged_and_refused_when_pinned() {
    let dynamic = |name: &str, extra: &str| {
        fixture_upstream_yaml(name, name, &["echo"], extra)
            .replace("\"--tool\"", "\"--dynamic\", \"--tool\"")
    };
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}{}",
        dynamic("pinned", "    pin: true\n"),
        dynamic("loose", "")
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for upstream in ["pinned", "loose"] {
        let changed = session
            .call(&format!("{upstream}__add_tool"), json!({"name": "echo"}))
            .await;
        assert!(changed["result"].is_object(), "{changed}");
    }
    gateway.wait_for_log("refused (pin: true)").await;
    gateway
        .wait_for_log("tool definition changed upstream=\"loose\" tool=echo")
        .await;
    let log = gateway.log();
    assert!(
        log.contains("description: \"a fixture tool\" → \"added at run time\""),
        "the change is spelled out: {log}"
    );
    let names = session.tool_names().await;
    assert!(!names.contains(&"pinned__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"loose__echo".to_owned()), "{names:?}");
    let refused = session.call("pinned__echo", json!({})).await;
    assert!(refused["error"].is_object(), "{refused}");
}
