//! An HTTP upstream closes a connection it kept alive once the connection has sat idle for a
//! while: 5 s for Node's servers (the reference server here), uvicorn and Apache. A request
//! the gateway sends on that connection just as it closes is never read, and the gateway
//! learns only that the connection closed before an answer: a failed call the upstream never
//! saw. The race is a matter of microseconds against a real server, so here a proxy in front
//! of the reference server plays it out every time: a request that comes on a connection idle
//! for 5 s, or one the server has closed, is dropped unread and the connection closed. The
//! gateway must not send on such a connection, on its own lane or on rmcp's client.

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
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::common::{http::RawSession, process::ServeProcess, served::ServedUpstream};

/// How long the server in the proxy's play keeps an idle connection: Node's default.
const KEEPS_IDLE: Duration = Duration::from_secs(5);

// Multi-threaded: the proxy relays while `ServeProcess::start` blocks its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_upstream_is_closing_carries_no_call() {
    let everything = ServedUpstream::everything("streamableHttp");
    let upstream = everything.url("").trim_start_matches("http://").to_owned();
    let closing = ClosingProxy::start(upstream).await;
    let port = closing.port;
    // The same server twice: `lane` takes the gateway's own lane. A URL with credentials in it
    // leaves every call of `rmcp` to rmcp's client (reqwest), as the log says.
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  lane:\n    url: http://127.0.0.1:{port}/mcp\n  \
         rmcp:\n    url: http://user:password@127.0.0.1:{port}/mcp\n"
    ));
    assert!(
        gateway.log().contains("rmcp carries its calls"),
        "{}",
        gateway.log()
    );
    let mut session = RawSession::open(&gateway.mcp_url()).await;

    for round in 0..2 {
        if round > 0 {
            // Every connection the calls used now sits idle past the server's keep-alive.
            tokio::time::sleep(KEEPS_IDLE + Duration::from_millis(500)).await;
        }
        for upstream in ["lane", "rmcp"] {
            let message = format!("{upstream} {round}");
            let reply = session
                .call(&format!("{upstream}__echo"), json!({ "message": message }))
                .await;
            assert_eq!(
                reply["result"]["content"][0]["text"],
                format!("Echo: {message}"),
                "{reply}\n{}",
                gateway.log()
            );
        }
    }
    // Not one request went out on a connection the server was closing, to fail or to be
    // sent again.
    assert_eq!(
        closing.dropped.load(Ordering::SeqCst),
        0,
        "requests sent on closing connections"
    );
}

/// A TCP proxy to `upstream` that plays a server at the end of its keep-alive (see the top).
struct ClosingProxy {
    port: u16,
    /// Requests dropped unread.
    dropped: Arc<AtomicUsize>,
    accepting: JoinHandle<()>,
}

impl ClosingProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dropped = Arc::new(AtomicUsize::new(0));
        let counted = dropped.clone();
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, counted.clone()));
            }
        });
        Self {
            port,
            dropped,
            accepting,
        }
    }
}

impl Drop for ClosingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Relays bytes both ways until the client sends on a connection idle for [`KEEPS_IDLE`] or
/// one the server closed: then it drops what came, counts it and closes both ends.
async fn relay(mut client: TcpStream, mut server: TcpStream, dropped: Arc<AtomicUsize>) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (mut up, mut down) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
    let mut last = Instant::now();
    let mut server_closed = false;
    loop {
        tokio::select! {
            read = from_client.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if server_closed || last.elapsed() >= KEEPS_IDLE {
                    dropped.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                if to_server.write_all(&up[..n]).await.is_err() {
                    return;
                }
                last = Instant::now();
            }
            read = from_server.read(&mut down), if !server_closed => {
                match read {
                    // The close stays unsaid until the client sends again, as when it
                    // crosses the client's request.
                    Ok(0) | Err(_) => server_closed = true,
                    Ok(n) => {
                        if to_client.write_all(&down[..n]).await.is_err() {
                            return;
                        }
                        last = Instant::now();
                    }
                }
            }
        }
    }
}
