//! Upstreams over TLS as a team runs them: behind nginx (OpenSSL), with a certificate for
//! `localhost` signed by an authority of the team's own (`tests/tls.sh`). The gateway trusts
//! what the system trusts, here the authority in `SSL_CERT_FILE` (read as OpenSSL reads it),
//! on every client it has: its own HTTPS lane (calls), rmcp's client (handshakes and lists)
//! and WebSocket. Without the authority, each is refused naming the certificate.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    common::{
        balancer::{Balancer, PASS_MCP, PASS_WEBSOCKET, backend},
        fixture_upstream_yaml,
        fixtures::{HttpFixture, Implementation},
        forward_proxy::{self, ForwardProxy, named_only_to_the_proxy},
        http::{RawSession, modern_tool_call},
        process::{ConfigDir, ServeProcess},
    },
    upstream_proxies_and_credentials::{gateway_logging_calls, port_of},
};

const PYTHON_TEXT: &str = "This is a simple text response for testing.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_upstreams_signed_by_an_authority_the_system_trusts_serve_every_era() {
    let python = HttpFixture::start(Implementation::Python);
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "behind-wss", &["echo"], "")
    ));
    let front = tls_front(&python.url, &inner.ws_url("/ws"));
    let yaml = format!(
        "upstreams:\n  \
         https-session:\n    url: https://localhost:{0}/mcp\n    protocol: legacy\n  \
         https:\n    url: https://localhost:{0}/mcp\n  \
         wss:\n    url: wss://localhost:{0}/ws\n",
        front.port
    );
    let authority = std::env::var("MCPS_TEST_TLS_CA")
        .expect("MCPS_TEST_TLS_CA is not set: run the tests with `tests/run.sh`, or `source tests/tls.sh` first");
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &[("SSL_CERT_FILE", &authority)]);

    let expected = [
        ("https-session__test_simple_text", json!({}), PYTHON_TEXT),
        ("https__test_simple_text", json!({}), PYTHON_TEXT),
        (
            "wss__fx__echo",
            json!({"message": "over wss"}),
            r#"behind-wss:echo:{"message":"over wss"}"#,
        ),
    ];
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let wanted: Vec<&str> = expected.iter().map(|(name, ..)| *name).collect();
    let names = wait_for_tools(&mut session, &wanted).await;
    for (name, arguments, text) in &expected {
        assert!(
            names.iter().any(|listed| listed == name),
            "{name} not in {names:?}\n{}",
            gateway.log()
        );
        let reply = session.call(name, arguments.clone()).await;
        assert_eq!(
            reply["result"]["content"][0]["text"], *text,
            "session era, {name}: {reply}"
        );
        let reply =
            modern_tool_call(&gateway.mcp_url(), name, json!({"arguments": arguments})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"], *text,
            "2026-07-28, {name}: {reply}"
        );
    }

    // The same gateway without the authority: nothing it knows signed the certificate.
    let untrusting = ServeProcess::start(&yaml);
    for name in ["https-session", "https", "wss"] {
        let reply = wait_for_failure(&untrusting, &format!("{name}__tool")).await;
        let error = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("upstream '{name}' is unavailable"))
                && error.contains("invalid peer certificate: UnknownIssuer")
                && error.contains("name a file of authorities in SSL_CERT_FILE"),
            "{name}: {reply}\n{}",
            untrusting.log()
        );
    }
}

/// https and wss upstreams behind the system's proxy, named by a port only the proxy knows
/// the way from: the lane's connections, like rmcp's client's and the WebSocket's, go through
/// the proxy's `CONNECT` tunnel, with its credentials, and TLS runs inside it to the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_upstreams_behind_the_systems_proxy_are_called_through_its_tunnel() {
    every_kind_of_upstream_behind_the_systems_proxy(ForwardProxy::start).await;
}

/// The same behind a proxy spoken to in TLS (an `https://` proxy URL, its certificate signed
/// by the authority the system trusts): the lane and WebSocket connections go in TLS to the
/// proxy, an https upstream's TLS inside that of the tunnel, and a plain-HTTP upstream's
/// requests are relayed over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_behind_a_proxy_spoken_to_in_tls_are_called_through_it() {
    every_kind_of_upstream_behind_the_systems_proxy(ForwardProxy::start_in_tls).await;
}

/// A proxy spoken to in TLS whose certificate nothing the system trusts signed: each upstream
/// behind it is unavailable, and its error names the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_spoken_to_in_tls_with_a_certificate_nobody_trusts_is_named_so() {
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "behind", &["echo"], "")
    ));
    let (named, real) = named_only_to_the_proxy(port_of(&inner.mcp_url()));
    let proxy = ForwardProxy::start_in_tls(&[(named, real)]);
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             plain:\n    url: http://127.0.0.1:{named}/mcp\n  \
             ws:\n    url: ws://127.0.0.1:{named}/ws\n"
        ),
        &proxy.environment(),
    );
    for name in ["plain", "ws"] {
        let reply = wait_for_failure(&gateway, &format!("{name}__fx__echo")).await;
        let error = reply["error"]["message"].as_str().unwrap_or_default();
        assert!(
            error.contains(&format!("upstream '{name}' is unavailable"))
                && error.contains("UnknownIssuer"),
            "{name}: {reply}\n{}",
            gateway.log()
        );
    }
}

/// https, wss, plain-HTTP and ws upstreams, each named by a port only `proxy` knows the way
/// from, called through the gateway in both eras: the HTTP upstreams' calls on the lane.
async fn every_kind_of_upstream_behind_the_systems_proxy(
    proxy: impl FnOnce(&[(u16, u16)]) -> ForwardProxy,
) {
    let python = HttpFixture::start(Implementation::Python);
    let inner = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "behind", &["echo"], "")
    ));
    let front = tls_front(&python.url, &inner.ws_url("/ws"));
    let (named, real) = named_only_to_the_proxy(front.port);
    let (inner_named, inner_real) = named_only_to_the_proxy(port_of(&inner.mcp_url()));
    let proxy = proxy(&[(named, real), (inner_named, inner_real)]);
    let authority = std::env::var("MCPS_TEST_TLS_CA").expect("MCPS_TEST_TLS_CA");
    let mut env = proxy.environment();
    env.push(("SSL_CERT_FILE", &authority));
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             https-session:\n    url: https://localhost:{named}/mcp\n    protocol: legacy\n  \
             https:\n    url: https://localhost:{named}/mcp\n  \
             wss:\n    url: wss://localhost:{named}/ws\n  \
             plain:\n    url: http://127.0.0.1:{inner_named}/mcp\n  \
             ws:\n    url: ws://127.0.0.1:{inner_named}/ws\n"
        ),
        &env,
    );
    let health = gateway.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", gateway.log());

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for name in ["https-session__test_simple_text", "https__test_simple_text"] {
        let reply = session.call(name, json!({})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"], PYTHON_TEXT,
            "session era, {name}: {reply}"
        );
        let reply = modern_tool_call(&gateway.mcp_url(), name, json!({"arguments": {}})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"], PYTHON_TEXT,
            "2026-07-28, {name}: {reply}"
        );
    }
    for upstream in ["wss", "plain", "ws"] {
        let reply = session
            .call(
                &format!("{upstream}__fx__echo"),
                json!({"message": upstream}),
            )
            .await;
        assert_eq!(
            reply["result"]["content"][0]["text"],
            format!(r#"behind:echo:{{"message":"{upstream}"}}"#),
            "{reply}\n{}",
            gateway.log()
        );
    }
    gateway.calls_done(7).await;
    // All but the WebSocket upstreams', which have no lane to take.
    assert_eq!(gateway.lane_calls(), 5, "{}", gateway.log());
    assert!(
        !gateway.log().contains(forward_proxy::PASSWORD),
        "{}",
        gateway.log()
    );
}

/// nginx serving TLS with the tests' certificate for `localhost`: `/mcp` to the streamable
/// HTTP server at `mcp_url`, `/ws` to the WebSocket server at `ws_url`.
fn tls_front(mcp_url: &str, ws_url: &str) -> Balancer {
    let (mcp, ws) = (backend(mcp_url), backend(ws_url));
    let certificate = std::env::var("MCPS_TEST_TLS_CERT").expect("MCPS_TEST_TLS_CERT");
    let key = std::env::var("MCPS_TEST_TLS_KEY").expect("MCPS_TEST_TLS_KEY");
    Balancer::http(|port| {
        format!(
            "    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        location /mcp {{
            proxy_pass http://{mcp};
{PASS_MCP}        }}
        location /ws {{
            proxy_pass http://{ws};
{PASS_WEBSOCKET}        }}
    }}
"
        )
    })
}

/// The tools listed once all of `names` are (the upstreams connect in the background), or
/// after 30 s.
async fn wait_for_tools(session: &mut RawSession, names: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = session.tool_names().await;
        if names
            .iter()
            .all(|name| listed.iter().any(|listed| listed == name))
            || Instant::now() > deadline
        {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The answer to a call of `name` once it is an error that says why (after the upstream's
/// first try), or after 30 s.
async fn wait_for_failure(gateway: &ServeProcess, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = modern_tool_call(&gateway.mcp_url(), name, json!({})).await;
        let error = reply["error"]["message"].as_str().unwrap_or_default();
        if error.contains("certificate") || Instant::now() > deadline {
            return reply;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
