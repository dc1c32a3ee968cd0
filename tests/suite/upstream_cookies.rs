//! A session-era upstream with two instances behind a load balancer that keeps a client on one
//! instance by a cookie, as AWS ALB, ingress-nginx and Cloud Run do (`upstream/cookies.rs`):
//! nginx sends a request without the cookie to either instance at random, and names that
//! instance in `Set-Cookie`. Each instance knows only the sessions opened on it, so a gateway
//! that drops the cookie loses its session on about every other request. Behind it: the
//! Python SDK's server (streamable HTTP, on rmcp's client and the gateway's own lane) and the
//! reference server over the legacy SSE transport (the stream sets the cookie, the POSTs
//! need it).

use serde_json::json;

use crate::common::{
    balancer::{Balancer, PASS_MCP, backend},
    fixtures::{HttpFixture, Implementation},
    http::{RawSession, modern_tool_call},
    process::ServeProcess,
    served::ServedUpstream,
};

const PYTHON_TEXT: &str = "This is a simple text response for testing.";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balancers_affinity_cookie_keeps_every_request_on_the_instance_of_its_session() {
    let pythons = [
        HttpFixture::start(Implementation::Python),
        HttpFixture::start(Implementation::Python),
    ];
    let streamable = sticky_balancer(&pythons.each_ref().map(|fixture| fixture.url.as_str()));
    let everythings = [
        ServedUpstream::everything("sse"),
        ServedUpstream::everything("sse"),
    ];
    let sse_urls = everythings.each_ref().map(|served| served.url("/sse"));
    let sse = sticky_balancer(&sse_urls.each_ref().map(String::as_str));
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  \
         sticky:\n    url: {}\n    protocol: legacy\n  \
         sse:\n    url: {}\n    transport: sse\n",
        streamable.url("/mcp"),
        sse.url("/sse")
    ));

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let names = session.tool_names().await;
    for name in ["sticky__test_simple_text", "sse__echo"] {
        assert!(
            names.iter().any(|listed| listed == name),
            "{name} is not listed: {names:?}\n{}",
            gateway.log()
        );
    }
    for round in 0..8 {
        let reply = session.call("sticky__test_simple_text", json!({})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"],
            PYTHON_TEXT,
            "session era, call {round}: {reply}\n{}",
            gateway.log()
        );
        let reply =
            modern_tool_call(&gateway.mcp_url(), "sticky__test_simple_text", json!({})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"],
            PYTHON_TEXT,
            "2026-07-28, call {round}: {reply}\n{}",
            gateway.log()
        );
        let message = format!("round {round}");
        let reply = session.call("sse__echo", json!({"message": message})).await;
        assert_eq!(
            reply["result"]["content"][0]["text"],
            format!("Echo: {message}"),
            "over SSE, call {round}: {reply}\n{}",
            gateway.log()
        );
    }
}

/// nginx in front of `instances` (URLs; only their host and port count): a request without
/// the cookie `instance` goes to one of them at random and is told which in `Set-Cookie`; one
/// with it goes to the instance it names.
fn sticky_balancer(instances: &[&str; 2]) -> Balancer {
    let [a, b] = instances.map(backend);
    Balancer::http(|port| {
        format!(
            "    upstream a {{ server {a}; }}
    upstream b {{ server {b}; }}
    split_clients \"${{request_id}}\" $picked {{ 50% a; * b; }}
    map $cookie_instance $instance {{ a a; b b; default $picked; }}
    map $cookie_instance $set_instance {{ a \"\"; b \"\"; default \"instance=$picked; Path=/; HttpOnly\"; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://$instance;
{PASS_MCP}            add_header Set-Cookie $set_instance always;
        }}
    }}
"
        )
    })
}
