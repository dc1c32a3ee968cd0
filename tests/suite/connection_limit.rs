//! At `limits.max_connections`, a new connection closes the one that has gone longest with no
//! request in flight; when every connection has a request in flight, the new one is answered
//! 503 (a JSON-RPC error, `Connection: close`) and closed, and the requests in flight are not
//! touched. One address over `limits.max_connections_per_peer` is answered 503 while others
//! are served, and the last `limits.reserved_connections` serve only health checks and
//! requests with a valid credential.

use crate::common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    os::fd::AsRawFd,
    time::Duration,
};

use nix::sys::socket::SockaddrIn;

use common::{fixture_upstream_yaml, process::ServeProcess};

/// One keep-alive GET of the health endpoint on `stream`; the status line and the body.
fn get_health(stream: &mut TcpStream, authority: &str) -> (String, String) {
    get(stream, authority, "/api/v1/system/health", None)
}

/// One keep-alive GET of `path` on `stream`, with `token` as bearer when there is one; the
/// status line and the body.
fn get(
    stream: &mut TcpStream,
    authority: &str,
    path: &str,
    token: Option<&str>,
) -> (String, String) {
    let (status, _, body) = get_with_head(stream, authority, path, token);
    (status, body)
}

/// [`get`], with the response's header lines (lowercase) between its status and its body.
fn get_with_head(
    stream: &mut TcpStream,
    authority: &str,
    path: &str,
    token: Option<&str>,
) -> (String, Vec<String>, String) {
    let bearer = token.map_or_else(String::new, |token| {
        format!("Authorization: Bearer {token}\r\n")
    });
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\n{bearer}\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" {
            break;
        }
        let header = header.trim_end().to_ascii_lowercase();
        if let Some(value) = header.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        headers.push(header);
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, headers, String::from_utf8(body).unwrap())
}

fn authority_of(gateway: &ServeProcess) -> String {
    gateway
        .mcp_url()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

fn connect(authority: &str) -> TcpStream {
    connect_from("127.0.0.1", authority)
}

/// A connection to `authority` from `source` (any of 127.0.0.0/8 reaches the gateway).
fn connect_from(source: &str, authority: &str) -> TcpStream {
    let socket = socket2_free_socket();
    let source: std::net::SocketAddrV4 = format!("{source}:0").parse().unwrap();
    let target: std::net::SocketAddrV4 = authority.parse().unwrap();
    nix::sys::socket::bind(socket.as_raw_fd(), &SockaddrIn::from(source)).unwrap();
    nix::sys::socket::connect(socket.as_raw_fd(), &SockaddrIn::from(target)).unwrap();
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// A new IPv4 TCP socket.
fn socket2_free_socket() -> std::os::fd::OwnedFd {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
    socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap()
}

/// Sends a request head and part of its body on `stream`: a request in flight on that
/// connection until the rest comes (or its body deadline passes).
fn start_slow_request(stream: &mut TcpStream, authority: &str) {
    start_slow_request_as(stream, authority, "");
}

/// The same, with `headers` (each line ending in `\r\n`).
fn start_slow_request_as(stream: &mut TcpStream, authority: &str, headers: &str) {
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\n{headers}Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
    )
    .unwrap();
}

#[test]
fn when_every_connection_has_a_request_in_flight_one_more_gets_503() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_connections: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = authority_of(&gateway);
    let mut first = connect(&authority);
    let mut second = connect(&authority);
    start_slow_request(&mut first, &authority);
    start_slow_request(&mut second, &authority);
    std::thread::sleep(Duration::from_millis(300));

    let mut third = connect(&authority);
    let (status, body) = get_health(&mut third, &authority);
    assert!(status.contains("503"), "{status}");
    assert!(body.contains("max_connections"), "{body}");
    // And it is closed after that answer.
    let mut rest = Vec::new();
    assert_eq!(third.read_to_end(&mut rest).unwrap_or(0), 0);

    // The requests in flight were not touched: their connections are open, waiting.
    for stream in [&first, &second] {
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let waiting = (&*stream).read(&mut [0u8; 1]).map_err(|error| error.kind());
        assert!(
            matches!(
                waiting,
                Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
            ),
            "{waiting:?}"
        );
    }
}

#[test]
fn at_the_limit_the_longest_idle_connection_makes_room() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_connections: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = authority_of(&gateway);
    let mut first = connect(&authority);
    assert!(get_health(&mut first, &authority).0.contains("200"));
    std::thread::sleep(Duration::from_millis(200));
    let mut second = connect(&authority);
    assert!(get_health(&mut second, &authority).0.contains("200"));

    // Both idle now: the third is served, and the first, idle the longest, is closed.
    let mut third = connect(&authority);
    assert!(get_health(&mut third, &authority).0.contains("200"));
    let mut rest = Vec::new();
    assert_eq!(
        first.read_to_end(&mut rest).unwrap_or(0),
        0,
        "the idlest was closed"
    );
    assert!(get_health(&mut second, &authority).0.contains("200"));
    assert!(get_health(&mut third, &authority).0.contains("200"));
}

// A client's pool that keeps an idle connection past the gateway's time may send on it as the
// gateway closes it, and lose that request: each response says the time, and the connection
// is closed then, not before.
#[test]
fn a_keep_alive_connection_is_told_how_long_it_stays_idle_and_is_closed_then() {
    let gateway = ServeProcess::start(&format!(
        "timeouts:\n  connection_idle_secs: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = authority_of(&gateway);
    let mut stream = connect(&authority);
    for _ in 0..2 {
        let (status, headers, _) =
            get_with_head(&mut stream, &authority, "/api/v1/system/health", None);
        assert!(status.contains("200"), "{status}");
        assert!(
            headers.contains(&"keep-alive: timeout=2".to_owned()),
            "{headers:?}"
        );
        // Still open within its time.
        std::thread::sleep(Duration::from_millis(1500));
    }
    let answered = std::time::Instant::now();
    get_health(&mut stream, &authority);
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).unwrap_or(0), 0);
    let closed_after = answered.elapsed();
    assert!(
        closed_after >= Duration::from_secs(2) && closed_after < Duration::from_secs(4),
        "closed {closed_after:?} after its last answer"
    );
    // The default outlasts the 90 s of reqwest's and Go's pools.
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = authority_of(&gateway);
    let (_, headers, _) = get_with_head(
        &mut connect(&authority),
        &authority,
        "/api/v1/system/health",
        None,
    );
    assert!(
        headers.contains(&"keep-alive: timeout=120".to_owned()),
        "{headers:?}"
    );
}

// Node's fetch (undici) keeps an idle connection 4 s unless the server's `Keep-Alive` says
// otherwise, less 2 s. The gateway says 4 s here, so undici must take a new connection for a
// request 3.5 s after the last: it did not reuse one the gateway may be closing.
#[test]
fn nodes_fetch_heeds_the_keep_alive_it_is_told() {
    const SCRIPT: &str = r#"
        const channels = require("node:diagnostics_channel");
        let connections = 0;
        channels.subscribe("undici:client:connected", () => connections++);
        (async () => {
            for (const gap of [0, 3500, 0]) {
                await new Promise((done) => setTimeout(done, gap));
                const response = await fetch(process.argv[1]);
                await response.text();
            }
            console.log(connections);
        })();
    "#;
    let gateway = ServeProcess::start(&format!(
        "timeouts:\n  connection_idle_secs: 4\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let health = format!("{}/api/v1/system/health", gateway.base);
    let output = std::process::Command::new(common::installed("MCPS_TEST_NODE"))
        .args(["-e", SCRIPT, &health])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    // The first, the one after the gap; the third went on the second's.
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "2");
}

#[test]
fn one_address_over_its_connection_limit_gets_503_and_others_are_served() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_connections_per_peer: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = authority_of(&gateway);
    let mut first = connect_from("127.0.0.2", &authority);
    let mut second = connect_from("127.0.0.2", &authority);
    assert!(get_health(&mut first, &authority).0.contains("200"));
    assert!(get_health(&mut second, &authority).0.contains("200"));
    let mut third = connect_from("127.0.0.2", &authority);
    let (status, body) = get_health(&mut third, &authority);
    assert!(status.contains("503"), "{status}");
    assert!(body.contains("max_connections_per_peer"), "{body}");
    let mut elsewhere = connect_from("127.0.0.3", &authority);
    assert!(get_health(&mut elsewhere, &authority).0.contains("200"));
    assert!(get_health(&mut first, &authority).0.contains("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reserve_serves_health_checks_and_credentials_only() {
    use crate::client_oauth::{AUDIENCE, Issuer};
    use common::{
        api::{Api, admin_env},
        process::ConfigDir,
    };
    // Twenty connections, of which the last two (a tenth) are the reserve. Users of the
    // identity provider count as credentialed too.
    let issuer = Issuer::start();
    let yaml = format!(
        "auth:\n  oauth:\n    issuer: {:?}\n    audience: {AUDIENCE:?}\nlimits:\n  max_connections: 20\n  reserved_connections: 2\nupstreams:\n{}",
        issuer.base(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let token = Api::logged_in(&gateway).await.token.unwrap();
    let jwt = issuer.mint(serde_json::json!({"scope": ""})).await;
    // With auth on, a request without a credential is answered at once: the busy ones have one.
    let authorization = format!("Authorization: Bearer {token}\r\n");
    let authority = authority_of(&gateway);
    tokio::task::spawn_blocking(move || {
        // The login's connection is closed by now.
        std::thread::sleep(Duration::from_millis(300));
        // Eighteen connections busy with a request each: only the reserve is left.
        let busy: Vec<TcpStream> = (0..18)
            .map(|_| {
                let mut stream = connect_from("127.0.0.2", &authority);
                start_slow_request_as(&mut stream, &authority, &authorization);
                std::thread::sleep(Duration::from_millis(20));
                stream
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        for stream in &busy {
            stream.set_nonblocking(true).unwrap();
            let waiting = (&*stream).read(&mut [0u8; 1]).map_err(|error| error.kind());
            assert_eq!(
                waiting,
                Err(std::io::ErrorKind::WouldBlock),
                "a busy one was closed"
            );
        }

        let mut anonymous = connect(&authority);
        let (status, body) = get(&mut anonymous, &authority, "/api/v1/system/status", None);
        assert!(status.contains("503"), "{status}");
        assert!(body.contains("valid credential"), "{body}");
        let mut rest = Vec::new();
        assert_eq!(
            anonymous.read_to_end(&mut rest).unwrap_or(0),
            0,
            "and closed"
        );

        let mut prober = connect(&authority);
        assert!(get_health(&mut prober, &authority).0.contains("200"));
        let mut operator = connect(&authority);
        let (status, body) = get(&mut operator, &authority, "/api/v1/auth/me", Some(&token));
        assert!(status.contains("200"), "{status} {body}");
        drop(operator);
        std::thread::sleep(Duration::from_millis(100));
        let mut user = connect(&authority);
        let (status, body) = get(&mut user, &authority, "/api/v1/auth/me", Some(&jwt));
        assert!(status.contains("200"), "{status} {body}");
    })
    .await
    .unwrap();
}
