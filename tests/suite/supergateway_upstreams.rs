//! Upstreams served by another implementation's bridge: supergateway (the TypeScript SDK and
//! the `ws` library) in front of the reference `mcp-server-time`, over WebSocket, legacy SSE,
//! and streamable HTTP without and with sessions. Each is reached and called, by clients of
//! both eras. Its WebSocket server is the tests' only one not written by us (the others are
//! gateways of ours, at `/ws`).

use std::time::Duration;

use crate::common::{
    http::RawSession,
    process::ServeProcess,
    served::{ServedUpstream, assert_tells_the_time},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supergateways_websocket_sse_and_streamable_http_serve_both_client_eras() {
    let websocket = ServedUpstream::supergateway("ws", &[]);
    let sse = ServedUpstream::supergateway("sse", &[]);
    let stateless = ServedUpstream::supergateway("streamableHttp", &[]);
    let stateful = ServedUpstream::supergateway("streamableHttp", &["--stateful"]);
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  \
         ws:\n    url: ws://127.0.0.1:{}/message\n  \
         sse:\n    url: {}\n    transport: sse\n  \
         stateless:\n    url: {}\n  \
         stateful:\n    url: {}\n    protocol: legacy\n",
        websocket.port,
        sse.url("/sse"),
        stateless.url("/mcp"),
        stateful.url("/mcp"),
    ));
    gateway.wait_ready(Duration::from_secs(60));

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for upstream in ["ws", "sse", "stateless", "stateful"] {
        assert_tells_the_time(
            &gateway,
            &mut session,
            &format!("{upstream}__get_current_time"),
        )
        .await;
    }
}
