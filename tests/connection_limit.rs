//! At `limits.max_connections`, a new connection closes the one that has gone longest with no
//! request in flight; when every connection has a request in flight, the new one is answered
//! 503 (a JSON-RPC error, `Connection: close`) and closed, and the requests in flight are not
//! touched.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    time::Duration,
};

use common::{fixture_upstream_yaml, process::ServeProcess};

/// One keep-alive GET of the health endpoint on `stream`; the status line and the body.
fn get_health(stream: &mut TcpStream, authority: &str) -> (String, String) {
    write!(
        stream,
        "GET /api/v1/system/health HTTP/1.1\r\nHost: {authority}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header == "\r\n" {
            break;
        }
        if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn authority_of(gateway: &ServeProcess) -> String {
    gateway
        .mcp_url()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned()
}

fn connect(authority: &str) -> TcpStream {
    let stream = TcpStream::connect(authority).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends a request head and part of its body on `stream`: a request in flight on that
/// connection until the rest comes (or its body deadline passes).
fn start_slow_request(stream: &mut TcpStream, authority: &str) {
    write!(
        stream,
        "POST /mcp HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"jsonrpc\""
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
