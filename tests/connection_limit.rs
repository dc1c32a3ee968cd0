//! Over `limits.max_connections`, one more TCP connection is answered 503 (a JSON-RPC error,
//! `Connection: close`) and closed; the open connections serve on, and a closed one makes
//! room again.

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

#[test]
fn a_connection_over_the_limit_gets_503_and_the_open_ones_serve() {
    let gateway = ServeProcess::start(&format!(
        "limits:\n  max_connections: 2\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    ));
    let authority = gateway
        .mcp_url()
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let connect = || {
        let stream = TcpStream::connect(&authority).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
    };
    let mut first = connect();
    let mut second = connect();
    assert!(get_health(&mut first, &authority).0.contains("200"));
    assert!(get_health(&mut second, &authority).0.contains("200"));

    let mut third = connect();
    let (status, body) = get_health(&mut third, &authority);
    assert!(status.contains("503"), "{status}");
    assert!(body.contains("max_connections"), "{body}");
    // And it is closed after that answer.
    let mut rest = Vec::new();
    assert_eq!(third.read_to_end(&mut rest).unwrap_or(0), 0);

    // The open connections serve on.
    assert!(get_health(&mut first, &authority).0.contains("200"));
    drop(second);
    // Room again once one closes (the gateway notices the close at once, but give it a beat).
    let mut served = false;
    for _ in 0..50 {
        let mut fourth = connect();
        if get_health(&mut fourth, &authority).0.contains("200") {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served, "a closed connection never made room");
}
