//! Upstreams over the two remote transports besides streamable HTTP: legacy HTTP+SSE (the
//! reference server's `sse` mode) and WebSocket (another MCPS.ONE gateway's `/ws`), aggregated
//! and routed like any other, with a bad URL scheme refused by the config check; a WebSocket
//! upstream behind OAuth is signed in from its upgrade's challenge.

use crate::common;

use crate::{client_oauth::Issuer, upstream_oauth::sign_in};
use common::{
    api::{Api, admin_env},
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

/// A WebSocket upstream behind OAuth: another MCPS.ONE gateway whose `/ws` takes the PyJWT
/// issuer's tokens (`auth.oauth`). The upgrade's 401 challenge sends the gateway to the
/// inner one's resource metadata and on to the issuer: it waits for a sign-in, registers
/// itself there, and once an administrator has signed it in, calls through with its token.
#[tokio::test]
async fn a_websocket_upstream_behind_oauth_is_signed_in_from_its_challenge() {
    let issuer = Issuer::start();
    let port = common::free_port();
    // The inner gateway as a whole is the resource; the WebSocket URL's HTTP twin is in it.
    let audience = format!("http://127.0.0.1:{port}/");
    let inner_url = format!("ws://127.0.0.1:{port}/ws");
    let inner = ServeProcess::start_listening(
        ConfigDir::new(&format!(
            "auth:\n  oauth:\n    issuer: {:?}\n    audience: {audience:?}\nupstreams:\n{}",
            issuer.base(),
            fixture_upstream_yaml("fx", "behind-oauth-ws", &["echo"], "")
        )),
        &admin_env(),
        &format!("127.0.0.1:{port}"),
    );
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&format!(
            "upstreams:\n  remote:\n    url: {inner_url:?}\n    oauth: {{}}\n"
        )),
        &admin_env(),
    );
    let api = Api::logged_in(&gateway).await;
    let waiting = api.wait_for_state("remote", "needs_authorization").await;
    assert!(
        waiting["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("WebSocket")),
        "{waiting}"
    );
    sign_in(&api).await;
    api.wait_for_state("remote", "ready").await;

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .call("remote__fx__echo", json!({"over": "ws"}))
        .await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"],
        "behind-oauth-ws",
        "{reply}\n{}",
        inner.log()
    );
}
