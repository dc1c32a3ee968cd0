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

/// Another gateway, upstream of the one under test: it serves the fixture's `echo` as
/// `fx__echo`, labelled `inner`.
fn inner_gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "inner", &["echo"], "")
    ))
}

/// A gateway whose one upstream, `inner`, is at `url`; it logs at debug (which says whether
/// a call took the lane), with more environment `env`.
fn gateway_in_front(url: &str, env: &[(&str, &str)]) -> ServeProcess {
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "mcps=debug,rmcp=warn"));
    let gateway = ServeProcess::start_in(
        common::process::ConfigDir::new(&format!("upstreams:\n  inner:\n    url: {url:?}\n")),
        &env,
    );
    let health = gateway.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", gateway.log());
    gateway
}

/// A call of the inner gateway's `echo` through `gateway` is answered, and not on the lane.
async fn answered_off_the_lane(gateway: &ServeProcess) {
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("inner__fx__echo", json!({"n": 1})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"], "inner",
        "{reply}"
    );
    gateway.calls_done(1).await;
    assert_eq!(gateway.lane_calls(), 0, "{}", gateway.log());
}

/// The lane's own HTTP client does not follow the system's proxy settings; an upstream they
/// send through a proxy gets no lane, and rmcp's client (reqwest, which follows them) carries
/// its calls, through the proxy.
#[tokio::test]
async fn an_upstream_behind_the_systems_proxy_is_reached_through_it() {
    let inner = inner_gateway();
    let proxy = ServedUpstream::python_script("forward_proxy.py");
    let proxy_url = proxy.url("");
    let outer = gateway_in_front(
        &inner.mcp_url(),
        &[
            ("HTTP_PROXY", &proxy_url),
            ("http_proxy", &proxy_url),
            ("ALL_PROXY", ""),
            ("all_proxy", ""),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    );
    answered_off_the_lane(&outer).await;
    let seen = reqwest::get(proxy.url("/seen"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(seen.lines().any(|method| method == "tools/call"), "{seen}");
}

/// A user and password in an upstream's URL are sent as Basic credentials by rmcp's client
/// (reqwest); the lane's client would drop them, so such an upstream gets no lane, and the
/// password is in no log line.
#[tokio::test]
async fn an_upstream_url_with_credentials_is_called_through_rmcps_client() {
    let inner = inner_gateway();
    let with_credentials = inner
        .mcp_url()
        .replacen("http://", "http://user:secret@", 1);
    let outer = gateway_in_front(&with_credentials, &[]);
    answered_off_the_lane(&outer).await;
    assert!(
        outer
            .log()
            .contains("its URL carries credentials: rmcp carries its calls"),
        "{}",
        outer.log()
    );
    assert!(!outer.log().contains("secret"), "{}", outer.log());
}
