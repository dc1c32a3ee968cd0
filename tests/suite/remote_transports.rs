//! Upstreams over the two remote transports besides streamable HTTP: legacy HTTP+SSE (the
//! reference server's `sse` mode) and WebSocket (another MCPS.ONE gateway's `/ws`), aggregated
//! and routed like any other, with a bad URL scheme refused by the config check.

use crate::common;

use common::{
    fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess, run_mcps},
    served::ServedUpstream,
};
use serde_json::json;

#[tokio::test]
async fn sse_and_websocket_upstreams_are_aggregated_and_callable() {
    let everything = ServedUpstream::everything("sse");
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "behind-ws", &["echo"], "")
    ));
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  legacy-sse:\n    url: {:?}\n  ws:\n    url: {:?}\n",
        everything.url("/sse"),
        inner.ws_url("/ws"),
    ));
    let health = gateway.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", gateway.log());
    let transports: Vec<_> = health["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|upstream| upstream["transport"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(transports, ["sse", "websocket"], "{health}");

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    assert!(names.contains(&"legacy-sse__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"ws__fx__echo".to_owned()), "{names:?}");

    let reply = session
        .call("legacy-sse__echo", json!({"message": "over sse"}))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "Echo: over sse",
        "{reply}"
    );
    let reply = session
        .call("legacy-sse__get-sum", json!({"a": 2, "b": 3}))
        .await;
    assert!(
        reply["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains('5')),
        "{reply}"
    );
    let reply = session.call("ws__fx__echo", json!({"over": "ws"})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "behind-ws",
        "{reply}"
    );
    assert_eq!(
        reply["result"]["structuredContent"]["arguments"]["over"], "ws",
        "{reply}"
    );
}

#[test]
fn a_url_of_the_wrong_scheme_for_its_transport_is_a_config_error() {
    for (entry, key) in [
        (
            "url: \"http://127.0.0.1:1/mcp\"\n    transport: websocket",
            "bad.url",
        ),
        (
            "url: \"ws://127.0.0.1:1/ws\"\n    transport: sse",
            "bad.url",
        ),
        (
            "url: \"http://127.0.0.1:1/sse\"\n    protocol: modern",
            "bad.protocol",
        ),
    ] {
        let config = ConfigDir::new(&format!("upstreams:\n  bad:\n    {entry}\n"));
        let (status, _, stderr) = run_mcps(&config.path(), &["check"]);
        assert_eq!(status.code(), Some(2), "{entry}: {stderr}");
        assert!(stderr.contains(key), "{entry}: expected {key} in {stderr}");
    }
}
