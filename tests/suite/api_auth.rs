//! `/api/v1/auth` over real HTTP: logging in, tokens that expire or are revoked, API keys,
//! and what happens without a token, with a wrong one, or with a body that is not JSON; and
//! mcp-remote, the desktop clients' bridge, with and without a key.

use crate::common;

use std::time::Duration;

use common::{
    api::{ADMIN_PASSWORD, Api, admin_env},
    line_peer::LinePeer,
    process::{ConfigDir, ServeProcess},
};
use reqwest::{Method, StatusCode};
use serde_json::json;

fn gateway(extra_yaml: &str) -> ServeProcess {
    ServeProcess::start_in(ConfigDir::new(extra_yaml), &admin_env())
}

#[tokio::test]
async fn login_me_and_the_bad_cases() {
    let gateway = gateway("");
    let anonymous = Api::new(&gateway);

    let health = anonymous.get("/api/v1/system/health").await;
    assert_eq!(health.status, StatusCode::OK, "health needs no token");

    let missing = anonymous.get("/api/v1/auth/me").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.code(), "unauthorized");
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"),
        "{missing:?}"
    );
    for path in [
        "/api/v1/tools",
        "/api/v1/mcp/services",
        "/api/v1/calls",
        "/api/v1/system/status",
    ] {
        assert_eq!(
            anonymous.get(path).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    let forged = anonymous
        .with_token(Some("mcps_not-a-real-token"))
        .get("/api/v1/auth/me")
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);

    let wrong = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": "nope"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown = anonymous
        .post(
            "/api/v1/auth/login",
            json!({"username": "nobody", "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body, unknown.body,
        "a wrong user and a wrong password look the same"
    );

    let not_json = anonymous
        .send_raw(
            Method::POST,
            "/api/v1/auth/login",
            "application/json",
            "{username:",
        )
        .await;
    assert_eq!(not_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_json.code(), "invalid_json", "{not_json:?}");
    let wrong_shape = anonymous
        .post("/api/v1/auth/login", json!({"user": "admin"}))
        .await;
    assert!(wrong_shape.status.is_client_error(), "{wrong_shape:?}");
    assert_eq!(wrong_shape.code(), "invalid_body", "{wrong_shape:?}");

    let api = Api::logged_in(&gateway).await;
    let me = api.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["username"], "admin");
    assert_eq!(me.body["authenticated_with"], "login");

    let unknown_route = api.get("/api/v1/no/such/route").await;
    assert_eq!(unknown_route.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown_route.code(), "not_found", "{unknown_route:?}");

    let logout = api.send(Method::POST, "/api/v1/auth/logout", None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED,
        "revoked"
    );
    assert!(
        !gateway.log().contains(ADMIN_PASSWORD),
        "the password never reaches the log"
    );
}

#[tokio::test]
async fn a_login_token_expires() {
    let gateway = gateway("auth:\n  token_ttl_secs: 1\n");
    let api = Api::logged_in(&gateway).await;
    assert_eq!(api.get("/api/v1/auth/me").await.status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let expired = api.get("/api/v1/auth/me").await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED, "{expired:?}");
}

#[tokio::test]
async fn api_keys_are_shown_once_listed_without_the_secret_and_revoked() {
    let gateway = gateway("");
    let api = Api::logged_in(&gateway).await;
    let created = api
        .post("/api/v1/auth/keys", json!({"name": "script"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let key = created.body["key"].as_str().expect("the key").to_owned();
    let id = created.body["id"].as_i64().expect("an id");

    let with_key = api.with_token(Some(&key));
    let me = with_key.get("/api/v1/auth/me").await;
    assert_eq!(me.body["authenticated_with"], "api_key", "{me:?}");
    assert_eq!(me.body["key_name"], "script");

    let listed = api.get("/api/v1/auth/keys").await;
    assert_eq!(listed.body[0]["name"], "script", "{listed:?}");
    assert!(
        !listed.body.to_string().contains(&key),
        "the list never shows a key"
    );

    let empty = api.post("/api/v1/auth/keys", json!({"name": " "})).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    let revoked = api
        .send(Method::DELETE, &format!("/api/v1/auth/keys/{id}"), None)
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    assert_eq!(
        with_key.get("/api/v1/auth/me").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = api
        .send(Method::DELETE, &format!("/api/v1/auth/keys/{id}"), None)
        .await;
    assert_eq!(
        again.status,
        StatusCode::NO_CONTENT,
        "revoking twice is harmless"
    );
    let unknown = api
        .send(Method::DELETE, "/api/v1/auth/keys/999999", None)
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let not_a_number = api
        .send(Method::DELETE, "/api/v1/auth/keys/abc", None)
        .await;
    assert_eq!(not_a_number.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_first_run_prints_a_random_password_once() {
    let gateway = ServeProcess::start("");
    let log = gateway.log();
    let password = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed: {log}"))
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    let api = Api::new(&gateway);
    let login = api
        .post(
            "/api/v1/auth/login",
            json!({"username": "admin", "password": password}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");

    let (_, config) = gateway.stop(nix::sys::signal::Signal::SIGTERM);
    let again = ServeProcess::start_in(config, &[]);
    assert!(
        !again.log().contains("password: "),
        "the password is printed on the first run only"
    );
}

#[tokio::test]
async fn mcp_needs_a_key_when_auth_is_enabled() {
    let gateway = gateway("auth:\n  enabled: true\n");
    let bare = common::http::client()
        .post(gateway.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(bare.headers().contains_key("www-authenticate"));
    let body: serde_json::Value = bare.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer"),
        "{body}"
    );

    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("client").await;
    let authorization = format!("Bearer {key}");
    let mut session = common::http::RawSession::open_with(
        &gateway.mcp_url(),
        &[("authorization", &authorization)],
    )
    .await;
    assert!(session.tool_names().await.is_empty());
}

#[tokio::test]
async fn a_wrong_method_is_refused_in_json() {
    let gateway = gateway("");
    let answer = Api::new(&gateway)
        .send(Method::DELETE, "/api/v1/system/health", None)
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.code(), "method_not_allowed", "{answer:?}");
}

/// mcp-remote, through which desktop clients reach a remote server, in front of a gateway that
/// takes API keys: without one it looks for an OAuth sign-in, and is told what to send
/// instead; with the key in `--header`, as that says, its client's calls go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_remote_is_told_to_send_an_api_key_and_works_with_one() {
    let gateway = gateway(&format!(
        "auth:\n  enabled: true\nupstreams:\n{}",
        common::fixture_upstream_yaml("fx", "keyed", &["echo"], "")
    ));
    let state = tempfile::tempdir().expect("a directory for mcp-remote");
    let mcp_remote = |headers: &[&str]| {
        let mut command = common::mcp_remote(&gateway.mcp_url(), state.path());
        command.args(headers);
        command
    };
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "desktop", "version": "1"}}})
    .to_string();

    let mut keyless = mcp_remote(&[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mcp-remote");
    let mut stdin = keyless.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{initialize}\n").as_bytes()).unwrap();
    let ended = tokio::task::spawn_blocking(move || keyless.wait_with_output())
        .await
        .unwrap()
        .expect("mcp-remote ends");
    drop(stdin);
    let told = String::from_utf8_lossy(&ended.stderr);
    assert!(
        !ended.status.success()
            && told.contains("this gateway signs nobody in with OAuth: it takes API keys")
            && told.contains("--header"),
        "{told}"
    );

    // As README.md configures it: the key in the environment, not in the arguments.
    let key = Api::logged_in(&gateway).await.create_key("desktop").await;
    let mut command = mcp_remote(&["--header", "Authorization: Bearer ${MCPS_API_KEY}"]);
    command.env("MCPS_API_KEY", key);
    let mut keyed = LinePeer::spawn(command);
    let (initialized, called) = tokio::task::spawn_blocking(move || {
        let initialized = keyed.exchange(&initialize);
        keyed.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
        let called = keyed.exchange(
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "fx__echo", "arguments": {"from": "the desktop"}}})
            .to_string(),
        );
        (initialized, called)
    })
    .await
    .unwrap();
    assert_eq!(
        initialized["result"]["serverInfo"]["name"], "mcps",
        "{initialized}"
    );
    assert_eq!(
        called["result"]["structuredContent"]["arguments"]["from"],
        "the desktop",
        "{called}\n{}",
        gateway.log()
    );
}
