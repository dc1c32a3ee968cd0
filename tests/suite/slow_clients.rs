//! One client that connects and then sends slowly or not at all cannot lock anyone out.
//! A thousand such connections from one address (a third bare, a third trickling a request
//! head, a third trickling a body), more than `limits.max_connections` allows: meanwhile a
//! normal client's calls and the health endpoint are answered within `PROMPT` (far below the
//! header deadline a held-up request would wait for), and every slow connection is closed
//! within its deadline (or sooner, to make room).

use crate::common;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use common::{
    fixture_upstream_yaml,
    http::{RawSession, client_without_reuse},
    process::ServeProcess,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

const ATTACKER: &str = "127.0.0.2";
const SLOW_CONNECTIONS: usize = 1000;
const HEADER_READ: Duration = Duration::from_secs(2);
const BODY_READ: Duration = Duration::from_secs(3);
/// Slack for a busy machine between a deadline and the close being seen here.
const SLACK: Duration = Duration::from_millis(1500);
/// Answered this fast, a request was not held up behind the slow connections. Loose enough
/// for a busy 2-core machine (a 100 ms bound failed there at 105 ms).
const PROMPT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Slowness {
    /// Connects and sends nothing.
    Bare,
    /// Sends a request line and then a header every half second, never the blank line.
    Head,
    /// Sends a whole head announcing 1,000 bytes of body, then a byte every half second.
    Body,
}

/// Lets this process hold the connections (the soft limit is often 1,024).
fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

async fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

/// One slow client: how long after it began its request the gateway closed the connection,
/// and what (if anything) it answered first.
async fn slow_client(to: SocketAddr, slowness: Slowness) -> (Duration, String) {
    let mut stream = connect_from(ATTACKER, to).await;
    let began = Instant::now();
    match slowness {
        Slowness::Bare => {}
        Slowness::Head => {
            let _ = stream
                .write_all(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                .await;
        }
        Slowness::Body => {
            let head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
            let _ = stream.write_all(head.as_bytes()).await;
        }
    }
    let mut answer = Vec::new();
    let mut buffer = [0u8; 1024];
    let until_closed = async {
        loop {
            tokio::select! {
                read = stream.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(read) => answer.extend_from_slice(&buffer[..read]),
                },
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    let more: &[u8] = match slowness {
                        Slowness::Bare => continue,
                        Slowness::Head => b"X-Slow: yes\r\n",
                        Slowness::Body => b" ",
                    };
                    // The gateway may have closed its side already; the read will say.
                    let _ = stream.write_all(more).await;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), until_closed)
        .await
        .unwrap_or_else(|_| panic!("a {slowness:?} connection was never closed"));
    (
        began.elapsed(),
        String::from_utf8_lossy(&answer).into_owned(),
    )
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_while_others_are_served() {
    raise_open_file_limit();
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_connections: 500\ntimeouts:\n  header_read_secs: {}\n  body_read_secs: {}\n  connection_idle_secs: 2\nupstreams:\n{}",
        HEADER_READ.as_secs(),
        BODY_READ.as_secs(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let address: SocketAddr = gateway.base.trim_start_matches("http://").parse().unwrap();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let health_url = format!("{}/api/v1/system/health", gateway.base);
    let prober = client_without_reuse();

    // The slow clients run on a thread of their own, so that their thousand tasks do not
    // delay this one's measurements.
    let slow = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            // As a slowloris opens them: one after another, a thousand in half a second.
            let mut clients = Vec::new();
            for n in 0..SLOW_CONNECTIONS {
                let slowness = [Slowness::Bare, Slowness::Head, Slowness::Body][n % 3];
                clients.push(tokio::spawn(async move {
                    (slowness, slow_client(address, slowness).await)
                }));
                if n % 10 == 9 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let mut ended = Vec::new();
            for client in clients {
                ended.push(client.await.unwrap());
            }
            ended
        })
    });

    let mut slowest_call = Duration::ZERO;
    let mut slowest_health = Duration::ZERO;
    let watching = Instant::now();
    let mut n = 0;
    while watching.elapsed() < BODY_READ + SLACK {
        let started = Instant::now();
        let reply = session.call("fx__echo", json!({"n": n})).await;
        slowest_call = slowest_call.max(started.elapsed());

        assert!(reply["result"].is_object(), "{reply}");
        let started = Instant::now();
        let health = prober.get(&health_url).send().await.unwrap();
        slowest_health = slowest_health.max(started.elapsed());
        assert_eq!(health.status(), 200);
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(slowest_call < PROMPT, "a call took {slowest_call:?}");
    assert!(
        slowest_health < PROMPT,
        "a health check took {slowest_health:?}"
    );

    let slow = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert_eq!(slow.len(), SLOW_CONNECTIONS);
    for (slowness, (closed_after, answer)) in slow {
        let deadline = match slowness {
            Slowness::Bare | Slowness::Head => HEADER_READ,
            Slowness::Body => BODY_READ,
        };
        assert!(
            closed_after <= deadline + SLACK,
            "a {slowness:?} connection was closed only after {closed_after:?}"
        );
        if slowness == Slowness::Body && closed_after >= BODY_READ {
            // Not closed early to make room: it was told why.
            assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        }
    }
}
