//! The official TypeScript SDK's client signs in to a `credentials: per-user` upstream the
//! way the spec lays out for URL elicitations (2025-11-25): its call fails with the SDK's own
//! `UrlElicitationRequiredError`, its user signs in at the address, the gateway tells the
//! session `notifications/elicitation/complete` for that elicitation, and the client's retry
//! is its user's call.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

use crate::{
    common::{clients_dir, installed},
    per_user_oauth::{per_user_gateway, sign_in_at},
    upstream_oauth::OAuthServer,
};

/// The client's next JSON line.
async fn next_step(lines: &mut Lines<BufReader<tokio::process::ChildStdout>>) -> Value {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the TypeScript client went quiet")
        .expect("its output")
        .expect("the TypeScript client ended early");
    serde_json::from_str(&line).unwrap_or_else(|error| panic!("{error}: {line}"))
}

#[tokio::test]
async fn the_typescript_client_is_told_when_its_sign_in_is_done_and_retries() {
    let server = OAuthServer::start(3600);
    let (gateway, api) = per_user_gateway(&server, "").await;
    let key = api.create_key("ts-agent").await;
    let mut client = tokio::process::Command::new(installed("MCPS_TEST_NODE"))
        .env("NODE_PATH", installed("MCPS_TEST_NODE_PATH"))
        .arg(clients_dir().join("ts_url_elicitation.cjs"))
        .args(["--url", &gateway.mcp_url(), "--token", &key])
        .args(["--tool", "remote__whoami"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the TypeScript client starts");
    let mut lines = BufReader::new(client.stdout.take().expect("piped")).lines();

    let asked = next_step(&mut lines).await;
    let address = asked["url"].as_str().expect("an address");
    assert!(address.contains("/oauth/connect/"), "{asked}");
    server.next_subject("ts-user").await;
    sign_in_at(address).await;

    let completed = next_step(&mut lines).await;
    assert_eq!(
        completed["completed"], asked["elicitationId"],
        "{completed}"
    );
    let answer = next_step(&mut lines).await;
    assert_eq!(answer["text"], "ts-user", "{answer}");
    let status = client.wait().await.expect("the client ends");
    assert!(status.success(), "{status:?}");
}
