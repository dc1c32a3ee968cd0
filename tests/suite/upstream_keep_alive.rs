//! An HTTP upstream closes a connection it kept alive once the connection has sat idle for a
//! while: 5 s for Node's servers (the reference server here), uvicorn and Apache, 2 s for
//! gunicorn's uvicorn workers. A request the gateway sends on that connection just as it
//! closes is never read, and the gateway learns only that the connection closed before an
//! answer: a failed call the upstream never saw. The race is a matter of microseconds against
//! a real server, so here a proxy in front of the server plays it out every time: a request
//! that comes on a connection idle for nearly the server's time, or one the server has closed,
//! is dropped unread and the connection closed. The gateway must not send on such a
//! connection.
//!
//! A connection is kept only if the response on it was read to its end: the proxy also holds
//! back the end of a request's event stream, which uvicorn sends on its own after the answer,
//! to see that the lane waits for it, and not for ever.

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

use crate::common::{
    http::{RawSession, modern_message, modern_meta, modern_tool_call},
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
};

/// How long the reference server keeps an idle connection: Node's default, which it says in
/// a `Keep-Alive` header.
const NODE_KEEPS_IDLE: Duration = Duration::from_secs(5);

/// How long the second test's server keeps one (gunicorn's default `keepalive`), saying
/// nothing of it.
const GUNICORN_KEEPS_IDLE: Duration = Duration::from_secs(2);

// Multi-threaded: the proxy relays while `ServeProcess::start` blocks its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_upstream_is_closing_carries_no_call() {
    let everything = ServedUpstream::everything("streamableHttp");
    let upstream = everything.url("").trim_start_matches("http://").to_owned();
    // The server's close is kept from the gateway until it sends: it cannot know of it.
    let play = Play {
        at_risk: NODE_KEEPS_IDLE,
        close_told: false,
        holds_end: Duration::ZERO,
    };
    let closing = ClosingProxy::start(upstream, play).await;
    let port = closing.port;
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  node:\n    url: http://127.0.0.1:{port}/mcp\n"
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;

    for round in 0..2 {
        if round > 0 {
            // Every connection the calls used now sits idle past the server's keep-alive.
            tokio::time::sleep(NODE_KEEPS_IDLE + Duration::from_millis(500)).await;
        }
        assert_node_echoes(&mut session, &gateway, &format!("round {round}")).await;
    }
    // Not one request went out on a connection the server was closing, to fail or to be
    // sent again.
    assert_eq!(
        closing.dropped.load(Ordering::SeqCst),
        0,
        "requests sent on closing connections"
    );
}

// uvicorn, as gunicorn runs it, closes a connection idle for 2 s and says nothing of it before
// (no `Keep-Alive` header): the gateway's lane learns it from the server's closes, and sends
// no request on a connection within half a second of its close, which here stands for the
// distance a request may be from it (a network's, a busy machine's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_idle_connections_sooner_than_the_lane_keeps_them_is_learned() {
    let keep_alive = GUNICORN_KEEPS_IDLE.as_secs().to_string();
    let play = Play {
        at_risk: GUNICORN_KEEPS_IDLE - Duration::from_millis(500),
        close_told: true,
        holds_end: Duration::ZERO,
    };
    let served = PythonBehindProxy::start(&["--keep-alive", &keep_alive], play).await;
    let gateway = &served.gateway;
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    // Two closes after 2 s idle, each after a call.
    for round in 0..2 {
        assert_echoes(&mut session, gateway, &format!("before close {round}")).await;
        tokio::time::sleep(GUNICORN_KEEPS_IDLE + Duration::from_millis(500)).await;
    }
    assert!(
        gateway
            .log()
            .contains("closes connections idle for about 2."),
        "{}",
        gateway.log()
    );
    // Within the proxy's risk, well within the lane's 4 s: a new connection carries it.
    assert_echoes(&mut session, gateway, "learned").await;
    tokio::time::sleep(GUNICORN_KEEPS_IDLE - Duration::from_millis(300)).await;
    assert_echoes(&mut session, gateway, "after 1.7 s").await;
    assert_eq!(
        served.proxy.dropped.load(Ordering::SeqCst),
        0,
        "requests sent on connections the server was about to close"
    );
}

// The Python SDK's server (uvicorn under it) ends a request's event stream in a write of its
// own after the answer. A connection whose response was dropped before its end cannot carry
// another request: the lane reads each stream to its end, and calls one after another, in
// either era, share the connections they have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_the_python_sdks_server_share_their_connections() {
    const CALLS: usize = 20;
    let play = ENDS_LATE;
    let served = PythonBehindProxy::start(&[], play).await;
    let gateway = &served.gateway;
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let in_both_eras = async |session: &mut RawSession, text: &str| {
        assert_echoes(session, gateway, text).await;
        let arguments = json!({ "arguments": { "text": text } });
        let reply = modern_tool_call(&gateway.mcp_url(), ECHO, arguments).await;
        assert_eq!(reply["result"]["content"][0]["text"], text, "{reply}");
    };
    // What the gateway opened to meet the upstream in both eras, and the first calls'.
    for text in ["session era", "2026-07-28"] {
        in_both_eras(&mut session, text).await;
    }
    let opened = served.proxy.accepted.load(Ordering::SeqCst);
    for call in 0..CALLS {
        in_both_eras(&mut session, &format!("call {call}")).await;
    }
    // A call that comes while the last one's stream is still ending takes a connection of its
    // own, which then stays: a few more at most.
    let more = served.proxy.accepted.load(Ordering::SeqCst) - opened;
    assert!(
        more <= 3,
        "{more} connections more for {} calls\n{}",
        2 * CALLS,
        gateway.log()
    );
}

// Prompts got and resources read by 2026-07-28 clients go on the lane too, and share its
// connections as calls do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompts_and_resources_of_the_python_sdks_server_share_their_connections() {
    const ROUNDS: usize = 10;
    let play = ENDS_LATE;
    let served = PythonBehindProxy::start_logging_requests(play).await;
    let gateway = &served.gateway;
    let round = async |n: usize| {
        let name = format!("reader {n}");
        let prompt = modern_request_of(
            gateway,
            "prompts/get",
            "python__greeting",
            json!({"name": "python__greeting", "arguments": {"name": name}}),
        )
        .await;
        assert_eq!(
            prompt["result"]["messages"][0]["content"]["text"],
            format!("Hello, {name}!"),
            "{prompt}\n{}",
            gateway.log()
        );
        let read = modern_request_of(
            gateway,
            "resources/read",
            "plain://pid",
            json!({"uri": "plain://pid"}),
        )
        .await;
        let pid = read["result"]["contents"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            !pid.is_empty() && pid.bytes().all(|byte| byte.is_ascii_digit()),
            "{read}\n{}",
            gateway.log()
        );
    };
    round(0).await;
    let opened = served.proxy.accepted.load(Ordering::SeqCst);
    for n in 1..=ROUNDS {
        round(n).await;
    }
    let more = served.proxy.accepted.load(Ordering::SeqCst) - opened;

    assert!(
        more <= 3,
        "{more} connections more for {} requests\n{}",
        2 * ROUNDS,
        gateway.log()
    );
    for method in ["prompts/get", "resources/read"] {
        assert_eq!(
            gateway.typed_on_the_lane(method),
            ROUNDS + 1,
            "{method}:\n{}",
            gateway.log()
        );
    }
}

/// A 2026-07-28 request of `method` naming `name` (`Mcp-Name`) to `gateway`, with `params`;
/// the message it gets back.
async fn modern_request_of(
    gateway: &ServeProcess,
    method: &str,
    name: &str,
    mut params: serde_json::Value,
) -> serde_json::Value {
    params["_meta"] = modern_meta("keep-alive", json!({}));
    modern_message(&gateway.mcp_url(), method, Some(name), &params).await
}

// An upstream whose streams stay open after their answers (here their ends come 3 s late)
// would have each call hold a connection while the lane waits for the end: after three such
// streams in a row the lane stops waiting, says so, and the calls go on being answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_stay_open_after_their_answers_are_not_waited_for() {
    let play = Play {
        at_risk: Duration::MAX,
        close_told: true,
        holds_end: Duration::from_secs(3),
    };
    let served = PythonBehindProxy::start(&[], play).await;
    let gateway = &served.gateway;
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for round in 0..2 {
        for call in 0..4 {
            assert_echoes(
                &mut session,
                gateway,
                &format!("round {round}, call {call}"),
            )
            .await;
        }
        // The ends waited for are given up after a second.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let log = gateway.log();
    assert!(log.contains("event streams in a row stayed open"), "{log}");
}

// Node's servers answer a notification the lane sends (a cancellation, an answer to a request
// of theirs) with a 202 whose empty body is chunked. When its end comes apart from its head,
// as a network may bring it (here 50 ms later), the lane reads it to its end, so that its
// connection carries the next request instead of closing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellations_sent_to_nodes_server_leave_their_connections_for_the_next_calls() {
    const ROUNDS: u64 = 6;
    let everything = ServedUpstream::everything("streamableHttp");
    let upstream = everything.url("").trim_start_matches("http://").to_owned();
    let play = ENDS_LATE;
    let proxy = ClosingProxy::start(upstream, play).await;
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  node:\n    url: http://127.0.0.1:{}/mcp\n",
        proxy.port
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    assert_node_echoes(&mut session, &gateway, "first").await;
    let opened = proxy.accepted.load(Ordering::SeqCst);
    for round in 0..ROUNDS {
        let id = 100 + round;
        let long = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
            "name": "node__trigger-long-running-operation",
            "arguments": {"duration": 30, "steps": 30}}});
        let handle = session.handle();
        let call = tokio::spawn(async move { handle.post_json(&long).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                            "params": {"requestId": id, "reason": "test"}});
        session.post_json(&cancel).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        call.abort();
        assert_node_echoes(
            &mut session,
            &gateway,
            &format!("after cancellation {round}"),
        )
        .await;
        // The echo's stream ends too.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each round loses the cancelled call's connection with its stream, and the cancellation
    // takes one, since the only one pooled is busy: that one then carries the next calls.
    let more = proxy.accepted.load(Ordering::SeqCst) - opened;
    assert!(
        more <= ROUNDS as usize + 2,
        "{more} connections more for {ROUNDS} rounds\n{}",
        gateway.log()
    );
}

/// Asserts that the reference server's `echo`, as the upstream `node`, answers `session`'s
/// call with `message`.
async fn assert_node_echoes(session: &mut RawSession, gateway: &ServeProcess, message: &str) {
    let reply = session
        .call("node__echo", json!({ "message": message }))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"],
        format!("Echo: {message}"),
        "{reply}\n{}",
        gateway.log()
    );
}

/// The Python SDK's `echo`, as the gateway of [`PythonBehindProxy`] names it.
const ECHO: &str = "python__echo";

/// The Python SDK's server (`tests/clients/plain_upstream.py`), a proxy in front of it, and a
/// gateway that reaches it through the proxy as `python`.
struct PythonBehindProxy {
    proxy: ClosingProxy,
    gateway: ServeProcess,
    _python: ServedUpstream,
}

impl PythonBehindProxy {
    /// The server run with `arguments`, behind a proxy that plays `play`.
    async fn start(arguments: &[&str], play: Play) -> Self {
        Self::start_with(arguments, play, &[]).await
    }

    /// The same, with the gateway logging at debug which way each request went.
    async fn start_logging_requests(play: Play) -> Self {
        Self::start_with(&[], play, &[("RUST_LOG", "mcps=debug,rmcp=warn")]).await
    }

    async fn start_with(arguments: &[&str], play: Play, env: &[(&str, &str)]) -> Self {
        let python = ServedUpstream::python_script_with("plain_upstream.py", arguments);
        let proxy = ClosingProxy::start(format!("127.0.0.1:{}", python.port), play).await;
        let gateway = ServeProcess::start_in(
            ConfigDir::new(&format!(
                "upstreams:\n  python:\n    url: http://127.0.0.1:{}/mcp\n",
                proxy.port
            )),
            env,
        );
        Self {
            proxy,
            gateway,
            _python: python,
        }
    }
}

/// Asserts that the Python SDK's `echo` answers `session`'s call with `text`.
async fn assert_echoes(session: &mut RawSession, gateway: &ServeProcess, text: &str) {
    let reply = session.call(ECHO, json!({ "text": text })).await;
    assert_eq!(
        reply["result"]["content"][0]["text"],
        text,
        "{reply}\n{}",
        gateway.log()
    );
}

/// A server that never closes an idle connection, whose bodies' ends come 50 ms after the
/// rest, as they may across a network: a lane that drops a stream at its answer loses its
/// connection every time.
const ENDS_LATE: Play = Play {
    at_risk: Duration::MAX,
    close_told: true,
    holds_end: Duration::from_millis(50),
};

/// What the proxy plays.
#[derive(Clone, Copy)]
struct Play {
    /// A request that comes on a connection idle this long is dropped.
    at_risk: Duration,
    /// Whether the server's close reaches the gateway as it happens, or only once the
    /// gateway sends (as when the close crosses the gateway's request).
    close_told: bool,
    /// How long the end of a chunked body (its last chunk) is held back, as a network may
    /// bring it in a packet of its own.
    holds_end: Duration,
}

/// A TCP proxy to `upstream` that plays a server at the end of its keep-alive (see the top).
struct ClosingProxy {
    port: u16,
    /// Requests dropped unread.
    dropped: Arc<AtomicUsize>,
    /// Connections taken.
    accepted: Arc<AtomicUsize>,
    accepting: JoinHandle<()>,
}

impl ClosingProxy {
    async fn start(upstream: String, play: Play) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let dropped = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (counted, connections) = (dropped.clone(), accepted.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let server = TcpStream::connect(&upstream).await.unwrap();
                tokio::spawn(relay(client, server, play, counted.clone()));
            }
        });
        Self {
            port,
            dropped,
            accepted,
            accepting,
        }
    }
}

impl Drop for ClosingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// Relays bytes both ways until the client sends on a connection idle for `play.at_risk` or
/// one the server closed: then it drops what came, counts it and closes both ends. A close of
/// the server's is passed on at once if `play.close_told`.
async fn relay(
    mut client: TcpStream,
    mut server: TcpStream,
    play: Play,
    dropped: Arc<AtomicUsize>,
) {
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (mut up, mut down) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
    let mut last = Instant::now();
    let mut server_closed = false;
    loop {
        tokio::select! {
            read = from_client.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                if server_closed || last.elapsed() >= play.at_risk {
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
                    Ok(0) | Err(_) if play.close_told => return,
                    Ok(0) | Err(_) => server_closed = true,
                    Ok(n) => {
                        // A chunked body's last chunk, alone or after the rest of the write
                        // (a head, the last event), is held back on its own.
                        const END: &[u8] = b"0\r\n\r\n";
                        let written = &down[..n];
                        let ends = written == END || written.ends_with(b"\r\n0\r\n\r\n");
                        let (before, end) = if ends && !play.holds_end.is_zero() {
                            written.split_at(n - END.len())
                        } else {
                            (written, &[][..])
                        };
                        if to_client.write_all(before).await.is_err() {
                            return;
                        }
                        if !end.is_empty() {
                            tokio::time::sleep(play.holds_end).await;
                            if to_client.write_all(end).await.is_err() {
                                return;
                            }
                        }
                        last = Instant::now();
                    }
                }
            }
        }
    }
}
