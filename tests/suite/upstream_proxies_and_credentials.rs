//! The ways to a plain-HTTP upstream that the gateway's own lane takes as rmcp's client
//! (reqwest) does: through the proxy the system's settings name (proxy.py, asking for
//! credentials; pproxy as a SOCKS proxy), and with the user and password the upstream's URL
//! carries (nginx's `auth_basic` checks them). Calls go on the lane, in both eras;
//! credentials are in no log line. The https way through a proxy's tunnel is in
//! `tls_upstreams.rs`.

use serde_json::{Value, json};

use crate::common::{
    balancer::{Balancer, PASS_MCP, backend},
    fixture_upstream_yaml,
    forward_proxy::{self, ForwardProxy, named_only_to_the_proxy},
    free_port,
    http::{RawSession, modern_tool_call},
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
    socks_proxy::{self, SocksProxy},
};

/// Another gateway, upstream of the one under test: it serves the fixture's `echo` as
/// `fx__echo`, labelled `inner`, in either era.
fn inner_gateway() -> ServeProcess {
    ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "inner", &["echo"], "")
    ))
}

/// A gateway on `yaml`, logging at debug (which says whether a call took the lane), with
/// more environment `env`.
pub fn gateway_logging_calls(yaml: &str, env: &[(&str, &str)]) -> ServeProcess {
    let mut env = env.to_vec();
    env.push(("RUST_LOG", "mcps=debug,rmcp=warn"));
    ServeProcess::start_in(ConfigDir::new(yaml), &env)
}

/// The port of a URL `http://host:port/...`.
pub fn port_of(url: &str) -> u16 {
    backend(url)
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("{url:?} names no port"))
}

/// Calls the inner gateway's `echo` as `tool` through `gateway`, in the session era and in
/// 2026-07-28: both answered by the inner gateway.
async fn assert_inner_echoes(gateway: &ServeProcess, tool: &str) {
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call(tool, json!({"n": 1})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"],
        "inner",
        "{reply}\n{}",
        gateway.log()
    );
    let reply = modern_tool_call(&gateway.mcp_url(), tool, json!({"arguments": {"n": 2}})).await;
    assert_eq!(
        reply["result"]["structuredContent"]["label"],
        "inner",
        "{reply}\n{}",
        gateway.log()
    );
}

/// The upstream `name`'s entry in `gateway`'s health.
fn upstream_health(gateway: &ServeProcess, name: &str) -> Value {
    let health = gateway.health();
    health["upstreams"]
        .as_array()
        .and_then(|upstreams| upstreams.iter().find(|upstream| upstream["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no upstream {name} in {health}"))
}

/// The reference server (the session era) and another gateway (2026-07-28, and over
/// WebSocket), each named by a port only the proxy knows the way from: their handshakes
/// (rmcp's client) and their calls (the lane) all go through the proxy, with its credentials;
/// the WebSocket connection through its `CONNECT` tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_behind_the_systems_proxy_are_called_on_the_lane_through_it() {
    let everything = ServedUpstream::everything("streamableHttp");
    let inner = inner_gateway();
    let everything_at = named_only_to_the_proxy(everything.port);
    let inner_at = named_only_to_the_proxy(port_of(&inner.mcp_url()));
    let proxy = ForwardProxy::start(&[everything_at, inner_at]);
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             everything:\n    url: http://127.0.0.1:{}/mcp\n  \
             inner:\n    url: http://127.0.0.1:{1}/mcp\n  \
             inner-ws:\n    url: ws://127.0.0.1:{1}/ws\n",
            everything_at.0, inner_at.0
        ),
        &proxy.environment(),
    );
    let health = gateway.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", gateway.log());

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .call("everything__echo", json!({"message": "through the proxy"}))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"],
        "Echo: through the proxy",
        "{reply}\n{}",
        gateway.log()
    );
    assert_inner_echoes(&gateway, "inner__fx__echo").await;
    assert_inner_echoes(&gateway, "inner-ws__fx__echo").await;
    gateway.calls_done(5).await;
    // All but the WebSocket upstream's, which have no lane to take.
    assert_eq!(gateway.lane_calls(), 3, "{}", gateway.log());
    assert!(
        !gateway.log().contains(forward_proxy::PASSWORD),
        "{}",
        gateway.log()
    );
}

/// A proxy that refuses the gateway's credentials: each upstream it would carry is
/// unavailable, saying so, and the password is in no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_the_gateways_credentials_leaves_its_upstreams_unavailable_saying_so()
{
    let inner = inner_gateway();
    let inner_at = named_only_to_the_proxy(port_of(&inner.mcp_url()));
    let proxy = ForwardProxy::start(&[inner_at]);
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             inner:\n    url: http://127.0.0.1:{0}/mcp\n  \
             inner-ws:\n    url: ws://127.0.0.1:{0}/ws\n",
            inner_at.0
        ),
        &proxy.refused_environment(),
    );
    for (name, says) in [
        ("inner", "407"),
        ("inner-ws", "proxy authorization required"),
    ] {
        let health = upstream_health(&gateway, name);
        assert_ne!(health["state"], "ready", "{health}");
        let error = health["last_error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{name}: {health}");
    }
    assert!(
        !gateway.log().contains(forward_proxy::PASSWORD),
        "{}",
        gateway.log()
    );
}

/// nginx in front of the inner gateway, asking for Basic credentials: `mcp-user` with a
/// password that has a space in it, which the URL percent-encodes.
fn behind_basic_credentials(inner: &ServeProcess) -> (Balancer, tempfile::TempDir) {
    let users = tempfile::tempdir().expect("a directory for the password file");
    let file = users.path().join("htpasswd");
    // nginx's own scheme for a password kept in plain text.
    std::fs::write(&file, "mcp-user:{PLAIN}open sesame\n").expect("write the password file");
    let to = backend(&inner.mcp_url());
    let front = Balancer::http(|port| {
        format!(
            "    server {{
        listen 127.0.0.1:{port};
        location /mcp {{
            auth_basic \"mcp\";
            auth_basic_user_file {};
            proxy_pass http://{to};
{PASS_MCP}        }}
    }}
",
            file.display()
        )
    });
    (front, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_and_password_in_an_upstreams_url_go_as_basic_credentials_on_the_lane() {
    let inner = inner_gateway();
    let (front, _users) = behind_basic_credentials(&inner);
    let port = front.port;
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             signed:\n    url: http://mcp-user:open%20sesame@127.0.0.1:{port}/mcp\n  \
             signed-session:\n    url: http://mcp-user:open%20sesame@127.0.0.1:{port}/mcp\n    protocol: legacy\n  \
             wrong:\n    url: http://mcp-user:not-the-password@127.0.0.1:{port}/mcp\n  \
             unsigned:\n    url: http://127.0.0.1:{port}/mcp\n    startup_timeout_secs: 5\n"
        ),
        &[],
    );
    for name in ["signed", "signed-session"] {
        let health = upstream_health(&gateway, name);
        assert_eq!(health["state"], "ready", "{health}\n{}", gateway.log());
    }
    // Refused with a reason that says so; the password is in no part of it.
    for name in ["wrong", "unsigned"] {
        let health = upstream_health(&gateway, name);
        assert_ne!(health["state"], "ready", "{health}");
        let error = health["last_error"].as_str().unwrap_or_default();
        assert!(error.contains("authorization required"), "{health}");
    }

    assert_inner_echoes(&gateway, "signed__fx__echo").await;
    assert_inner_echoes(&gateway, "signed-session__fx__echo").await;
    gateway.calls_done(4).await;
    assert_eq!(gateway.lane_calls(), 4, "{}", gateway.log());
    let log = gateway.log();
    for secret in ["open sesame", "open%20sesame", "not-the-password"] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}

/// A SOCKS5 proxy that asks for a password, named in `ALL_PROXY` with `socks5h` (the proxy
/// resolves names): the inner gateway, named by a port only the proxy knows the way from, is
/// reached through it in 2026-07-28, in the session era and over WebSocket; its HTTP calls go
/// on the lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_behind_a_socks5_proxy_are_called_on_the_lane_through_it() {
    let inner = inner_gateway();
    let to = port_of(&inner.mcp_url());
    let proxy = SocksProxy::start("socks5", to);
    let url = format!(
        "socks5h://{}:{}@127.0.0.1:{}",
        socks_proxy::USER,
        socks_proxy::PASSWORD,
        proxy.port()
    );
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             inner:\n    url: http://127.0.0.1:{0}/mcp\n  \
             inner-session:\n    url: http://127.0.0.1:{0}/mcp\n    protocol: legacy\n  \
             inner-ws:\n    url: ws://127.0.0.1:{0}/ws\n",
            free_port()
        ),
        &socks_proxy::environment(&url),
    );
    let health = gateway.health();
    assert_eq!(health["status"], "ok", "{health}\n{}", gateway.log());
    for tool in [
        "inner__fx__echo",
        "inner-session__fx__echo",
        "inner-ws__fx__echo",
    ] {
        assert_inner_echoes(&gateway, tool).await;
    }
    gateway.calls_done(6).await;
    // All but the WebSocket upstream's, which have no lane to take.
    assert_eq!(gateway.lane_calls(), 4, "{}", gateway.log());
    assert!(
        proxy.log().contains(&format!("tunnel 127.0.0.1:{to}")),
        "{}",
        proxy.log()
    );
    assert!(
        !gateway.log().contains(socks_proxy::PASSWORD),
        "{}",
        gateway.log()
    );
}

/// The same through a SOCKS4 proxy (no passwords; `socks4`: the upstream's name, `localhost`,
/// resolved here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_behind_a_socks4_proxy_are_called_on_the_lane_through_it() {
    let inner = inner_gateway();
    let proxy = SocksProxy::start("socks4", port_of(&inner.mcp_url()));
    let url = format!("socks4://127.0.0.1:{}", proxy.port());
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  inner:\n    url: http://localhost:{}/mcp\n",
            free_port()
        ),
        &socks_proxy::environment(&url),
    );
    assert_inner_echoes(&gateway, "inner__fx__echo").await;
    gateway.calls_done(2).await;
    assert_eq!(gateway.lane_calls(), 2, "{}", gateway.log());
}

/// A SOCKS5 proxy that refuses the gateway's password: each upstream it would carry is
/// unavailable, saying so, and the password is in no log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socks_proxy_that_refuses_the_gateways_password_leaves_its_upstreams_unavailable_saying_so()
 {
    let inner = inner_gateway();
    let proxy = SocksProxy::start("socks5", port_of(&inner.mcp_url()));
    let refused = format!("not-{}", socks_proxy::PASSWORD);
    let url = format!(
        "socks5h://{}:{refused}@127.0.0.1:{}",
        socks_proxy::USER,
        proxy.port()
    );
    let gateway = gateway_logging_calls(
        &format!(
            "upstreams:\n  \
             inner:\n    url: http://127.0.0.1:{0}/mcp\n    startup_timeout_secs: 5\n  \
             inner-ws:\n    url: ws://127.0.0.1:{0}/ws\n    startup_timeout_secs: 5\n",
            free_port()
        ),
        &socks_proxy::environment(&url),
    );
    for name in ["inner", "inner-ws"] {
        let health = upstream_health(&gateway, name);
        assert_ne!(health["state"], "ready", "{health}");
        let error = health["last_error"].as_str().unwrap_or_default();
        eprintln!("{name}: {error}");
        assert!(error.contains("SOCKS"), "{name}: {health}");
    }
    assert!(!gateway.log().contains(&refused), "{}", gateway.log());
}
