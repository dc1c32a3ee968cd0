//! Redirects the gateway does not follow (`upstream/redirects.rs`), each refused with a reason
//! that names where it pointed, and nothing sent there; and the one nginx answers a
//! WebSocket upstream's path without its final slash with, followed to supergateway's server. The redirect it follows
//! over streamable HTTP, Starlette's from `/mcp` to `/mcp/` in front of the Python SDK's
//! server, is in `conformance.rs` (`the_python_fixture_behind_starlettes_slash_redirect_…`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

use crate::common::{
    balancer::{Balancer, PASS_WEBSOCKET},
    http::{RawSession, modern_tool_call},
    process::ServeProcess,
    served::{ServedUpstream, assert_tells_the_time},
};

// Multi-threaded: the servers answer while `ServeProcess::start` blocks its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_off_the_origin_or_to_a_get_are_refused_naming_where_they_lead() {
    // Where the refused redirects point: it must never be asked anything.
    let elsewhere = Redirecting::start(307, |_| "/".into()).await;
    let elsewhere_url = format!("http://127.0.0.1:{}/mcp", elsewhere.port);
    let off_origin = {
        let to = elsewhere_url.clone();
        Redirecting::start(307, move |_| to.clone()).await
    };
    let moved = Redirecting::start(301, |_| "/mcp/".into()).await;
    let looping = Redirecting::start(308, |_| "/mcp".into()).await;
    let sse_off_origin = {
        let to = elsewhere_url.clone();
        Redirecting::start(307, move |_| to.clone()).await
    };
    let websocket_off_origin = {
        let to = format!("ws://127.0.0.1:{}/ws", elsewhere.port);
        Redirecting::start(307, move |_| to.clone()).await
    };
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  \
         off:\n    url: http://127.0.0.1:{}/mcp\n  \
         moved:\n    url: http://127.0.0.1:{}/mcp\n  \
         looping:\n    url: http://127.0.0.1:{}/mcp\n  \
         sse:\n    url: http://127.0.0.1:{}/mcp\n    transport: sse\n  \
         ws:\n    url: ws://127.0.0.1:{}/ws\n",
        off_origin.port, moved.port, looping.port, sse_off_origin.port, websocket_off_origin.port
    ));

    let expected = [
        (
            "off",
            format!("to {elsewhere_url}, another origin than its own"),
        ),
        (
            "moved",
            "with HTTP 301 Moved Permanently, which would turn a POST into a GET".into(),
        ),
        ("looping", "it redirected 10 times in a row".into()),
        (
            "sse",
            format!("to {elsewhere_url}, another origin than its own"),
        ),
        (
            "ws",
            format!(
                "WebSocket connection failed: it redirects ws://127.0.0.1:{0}/ws to \
                 ws://127.0.0.1:{1}/ws, another origin than its own",
                websocket_off_origin.port, elsewhere.port
            ),
        ),
    ];
    for (upstream, reason) in expected {
        let error = failure_of(&gateway, upstream, &reason).await;
        assert!(
            error.contains(&format!("upstream '{upstream}' is unavailable"))
                && error.contains(&reason),
            "{upstream}: {error}\n{}",
            gateway.log()
        );
    }
    for (server, asked) in [
        (&off_origin, 1),
        (&moved, 1),
        (&looping, 11),
        (&sse_off_origin, 1),
        (&websocket_off_origin, 1),
    ] {
        assert!(
            server.requests() >= asked,
            "the redirecting server was asked {} times",
            server.requests()
        );
    }
    assert_eq!(
        elsewhere.requests(),
        0,
        "the gateway sent a request to the other origin"
    );
}

/// nginx answers a request for a proxied location's path without its final slash
/// (`/message` of `location /message/`) with a 301 to the path with it, written as an
/// `http://` URL. A WebSocket client reaches the server there by following it, which the
/// gateway does, and says which URL would save the round trip. The server is supergateway's
/// (the `ws` library) in front of the reference `mcp-server-time`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upstream_is_reached_through_nginxs_slash_redirect() {
    let server = ServedUpstream::supergateway("ws", &[]);
    let front = Balancer::http(|port| {
        format!(
            "    server {{
        listen 127.0.0.1:{port};
        location /message/ {{
            proxy_pass http://127.0.0.1:{}/message;
{PASS_WEBSOCKET}        }}
    }}
",
            server.port
        )
    });
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  ws:\n    url: ws://127.0.0.1:{}/message\n",
        front.port
    ));
    gateway.wait_ready(Duration::from_secs(30));

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    assert_tells_the_time(&gateway, &mut session, "ws__get_current_time").await;
    let told = format!(
        "ws://127.0.0.1:{0}/message redirects to ws://127.0.0.1:{0}/message/ (HTTP 301 Moved \
         Permanently): every connection follows it",
        front.port
    );
    assert!(gateway.log().contains(&told), "{}", gateway.log());
}

/// Why a call to `upstream`'s tool fails, once that says `reason` (after the upstream's first
/// try), or after 20 s.
async fn failure_of(gateway: &ServeProcess, upstream: &str, reason: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply =
            modern_tool_call(&gateway.mcp_url(), &format!("{upstream}__tool"), json!({})).await;
        let error = reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if error.contains(reason) || Instant::now() > deadline {
            return error;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An HTTP server that answers every request with `status` and a `Location` that `to` makes
/// of the request's target, and counts the requests.
struct Redirecting {
    port: u16,
    requests: Arc<AtomicUsize>,
    serving: JoinHandle<()>,
}

impl Redirecting {
    async fn start(status: u16, to: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        let to = Arc::new(to);
        let serving = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = counted.clone();
                let to = to.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0; 4096];
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => head.extend_from_slice(&buffer[..read]),
                        }
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&head);
                    let target = head.split(' ').nth(1).unwrap_or("/");
                    let answer = format!(
                        "HTTP/1.1 {status} Redirect\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        to(target)
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            port,
            requests,
            serving,
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Redirecting {
    fn drop(&mut self) {
        self.serving.abort();
    }
}
