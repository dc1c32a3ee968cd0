//! With `auth.enabled`, a client's `Authorization` header (and any other header of its own)
//! authenticates it to the gateway and goes no further: the upstream sees only the headers
//! its own entry configures. The upstream is reached through a recording TCP relay, so the
//! test reads the very bytes the upstream received.

use crate::common;

use std::{
    process::Command,
    sync::{Arc, Mutex},
};

use common::{
    api::{Api, admin_env},
    example_bin,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Relays connections to `target`, keeping a copy of every byte sent towards it.
async fn recording_relay(target: u16) -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = TcpStream::connect(("127.0.0.1", target)).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut upstream_read, mut upstream_write) = upstream.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
            });
            let record = record.clone();
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 16 * 1024];
                while let Ok(read) = client_read.read(&mut buffer).await {
                    if read == 0 || upstream_write.write_all(&buffer[..read]).await.is_err() {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buffer[..read]);
                }
            });
        }
    });
    (port, seen)
}

// Two threads: starting the gateway blocks this one while the relay must keep relaying.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_token_never_reaches_the_upstream() {
    let echo = ServedUpstream::start("echo upstream", |port| {
        let mut command = Command::new(example_bin("echo_upstream"));
        command.args(["--http", &port.to_string()]);
        command
    });
    let (relay, seen) = recording_relay(echo.port).await;
    let yaml = format!(
        "auth:\n  enabled: true\nupstreams:\n  echo:\n    url: \"http://127.0.0.1:{relay}/mcp\"\n    headers: {{X-Configured: from-the-entry}}\n"
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("client").await;
    let authorization = format!("Bearer {key}");
    let mut session = RawSession::open_with(
        &gateway.mcp_url(),
        &[
            ("authorization", &authorization),
            ("x-client-secret", "client-only-value"),
        ],
    )
    .await;
    let reply = session
        .call("echo__echo", json!({"message": "hello"}))
        .await;
    assert_eq!(reply["result"]["content"][0]["text"], "hello", "{reply}");

    let seen = String::from_utf8_lossy(&seen.lock().unwrap()).to_lowercase();
    assert!(
        seen.contains("x-configured: from-the-entry"),
        "the relay saw the traffic: {seen}"
    );
    assert!(seen.contains("\"message\":\"hello\""), "{seen}");
    assert!(
        !seen.contains(&key.to_lowercase()),
        "the client's key reached the upstream"
    );
    assert!(
        !seen.contains("authorization"),
        "an Authorization header reached the upstream"
    );
    assert!(
        !seen.contains("client-only-value"),
        "a client header reached the upstream"
    );
}
