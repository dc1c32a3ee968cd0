//! Streamable HTTP upstreams in both eras: the reference server (session era) and another
//! MCPS.ONE gateway (which speaks 2026-07-28), aggregated and routed like stdio ones.

use crate::common;

use common::{
    fixture_upstream_yaml, http::RawSession, process::ServeProcess, served::ServedUpstream,
};
use serde_json::json;

#[tokio::test]
async fn http_upstreams_of_both_eras_are_aggregated_and_routed() {
    let everything = ServedUpstream::everything("streamableHttp");
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "inner", &["echo"], "")
    ));
    let outer = ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    url: {:?}\n  inner:\n    url: {:?}\n    headers: {{X-Test-Header: \"yes\"}}\n",
        everything.url("/mcp"),
        inner.mcp_url()
    ));

    let health = outer.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", outer.log());
    let version_of = |name: &str| {
        health["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .map(|u| u["protocol_version"].as_str().unwrap_or("").to_owned())
            .unwrap()
    };
    assert!(version_of("everything").as_str() < "2026-07-28", "{health}");
    assert_eq!(version_of("inner"), "2026-07-28", "{health}");

    let mut session = RawSession::open(&outer.mcp_url()).await;
    let names = session.tool_names().await;
    assert!(names.contains(&"everything__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"inner__fx__echo".to_owned()), "{names:?}");

    let reply = session
        .call("everything__echo", json!({"message": "over http"}))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Echo: over http",
        "{reply}"
    );
    let reply = session.call("inner__fx__echo", json!({"n": 1})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "inner",
        "{reply}"
    );
}

#[tokio::test]
async fn unreachable_http_upstream_fails_within_its_deadline_and_others_serve() {
    let free_port = common::free_port();
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  gone:\n    url: \"http://127.0.0.1:{free_port}/mcp\"\n    startup_timeout_secs: 5\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let health = gateway.health();
    assert_eq!(health["status"], "degraded", "{health}");
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("fx__echo", json!({})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "fx",
        "{reply}"
    );
    let reply = session.call("gone__anything", json!({})).await;
    assert_eq!(reply["error"]["data"]["upstream"], "gone", "{reply}");
}
