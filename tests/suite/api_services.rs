//! Services registered through `/api/v1/mcp/services` start live, become callable through
//! `/mcp` (connected clients are told their list changed), survive a restart of the gateway,
//! and stop (process gone) when disabled or deleted. The config file's services are
//! read-only here, a command outside the spawn allowlist starts nothing, and a URL into the
//! gateway's own network is refused.

use crate::common;

use std::time::Duration;

use common::{
    api::{Api, admin_env},
    example_bin, fixture_upstream_yaml,
    http::{RawSession, wait_for},
    process::{ConfigDir, ServeProcess, processes_with_marker},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn echo_path() -> String {
    example_bin("echo_upstream").display().to_string()
}

fn config() -> String {
    format!(
        "security:\n  spawn_allowlist: [{:?}]\nupstreams:\n{}",
        echo_path(),
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

fn echo_service(name: &str, marker: &str) -> Value {
    json!({"name": name, "command": echo_path(), "env": {"MCPS_TEST_MARKER": marker, "SECRET": "hunter2"}})
}

async fn gone(marker: &str) -> bool {
    for _ in 0..40 {
        if processes_with_marker(marker).is_empty() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_service_added_through_the_api_is_callable_persisted_and_stopped() {
    let marker = format!("api-service-{}", std::process::id());
    let gateway = ServeProcess::start_in(ConfigDir::new(&config()), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let events = session.open_stream().await;

    let created = api
        .post("/api/v1/mcp/services", echo_service("echo", &marker))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["origin"], "api");
    assert_eq!(
        created.body["env"]["SECRET"], "********",
        "secrets are not shown"
    );
    wait_for(&events, "notifications/tools/list_changed", 1).await;
    let reply = session
        .call("echo__echo", json!({"message": "through the API"}))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "through the API",
        "{reply}"
    );
    let ready = api.wait_for_state("echo", "ready").await;
    assert_eq!(ready["tools"], 1);
    assert!(!processes_with_marker(&marker).is_empty());

    let listed = api.get("/api/v1/mcp/services").await;
    let origins: Vec<(&str, &str)> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|service| {
            (
                service["name"].as_str().unwrap(),
                service["origin"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(origins, [("fx", "config"), ("echo", "api")]);

    let disabled = api
        .send(
            Method::PATCH,
            "/api/v1/mcp/services/echo",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{disabled:?}");
    assert_eq!(disabled.body["state"], "disabled");
    assert!(gone(&marker).await, "disabling stops the process");
    let enabled = api
        .send(
            Method::PATCH,
            "/api/v1/mcp/services/echo",
            Some(json!({"disabled": null})),
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{enabled:?}");
    api.wait_for_state("echo", "ready").await;

    // Persisted: a new gateway on the same data starts it again.
    let (status, config) = gateway.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success());
    assert!(gone(&marker).await, "shutdown stops it");
    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    let back = api.wait_for_state("echo", "ready").await;
    assert_eq!(back["env"]["SECRET"], "********");
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .call("echo__echo", json!({"message": "after a restart"}))
        .await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "after a restart",
        "{reply}"
    );

    let restarted = api
        .send(Method::POST, "/api/v1/mcp/services/echo/restart", None)
        .await;
    assert_eq!(restarted.status, StatusCode::ACCEPTED, "{restarted:?}");
    api.wait_for_state("echo", "ready").await;

    let deleted = api
        .send(Method::DELETE, "/api/v1/mcp/services/echo", None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{deleted:?}");
    assert!(
        processes_with_marker(&marker).is_empty(),
        "its process is gone when DELETE answers"
    );
    assert!(
        !session
            .tool_names()
            .await
            .contains(&"echo__echo".to_owned())
    );
    assert_eq!(
        api.get("/api/v1/mcp/services/echo").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_services_are_refused_and_start_nothing() {
    let marker = format!("refused-service-{}", std::process::id());
    let gateway = ServeProcess::start_in(ConfigDir::new(&config()), &admin_env());
    let api = Api::logged_in(&gateway).await;

    let not_allowed = api
        .post("/api/v1/mcp/services", json!({"name": "sh", "command": "sh", "args": ["-c", "sleep 60"], "env": {"MCPS_TEST_MARKER": marker}}))
        .await;
    assert_eq!(not_allowed.status, StatusCode::BAD_REQUEST);
    assert_eq!(not_allowed.code(), "command_not_allowed", "{not_allowed:?}");
    let via_tools = api
        .post(
            "/api/v1/tools",
            json!({"name": "sh2", "command": "/bin/sh", "env": {"MCPS_TEST_MARKER": marker}}),
        )
        .await;
    assert_eq!(via_tools.code(), "command_not_allowed", "{via_tools:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        processes_with_marker(&marker).is_empty(),
        "nothing was spawned"
    );
    assert_eq!(
        api.get("/api/v1/mcp/services/sh").await.status,
        StatusCode::NOT_FOUND
    );

    for url in [
        "http://127.0.0.1:9/mcp",
        "http://169.254.169.254/latest",
        "ws://[::1]:9/ws",
        "http://localhost:9/mcp",
    ] {
        let internal = api
            .post(
                "/api/v1/mcp/services",
                json!({"name": "inside", "url": url}),
            )
            .await;
        assert_eq!(
            internal.status,
            StatusCode::BAD_REQUEST,
            "{url}: {internal:?}"
        );
        assert_eq!(internal.code(), "url_not_allowed", "{url}: {internal:?}");
    }

    let loader = api
        .post(
            "/api/v1/mcp/services",
            json!({"name": "ld", "command": echo_path(), "env": {"LD_PRELOAD": "/tmp/x.so"}}),
        )
        .await;
    assert_eq!(loader.status, StatusCode::BAD_REQUEST, "{loader:?}");

    for (body, why) in [
        (json!({"command": echo_path()}), "no name"),
        (
            json!({"name": "Bad_Name", "command": echo_path()}),
            "a bad name",
        ),
        (
            json!({"name": "both", "command": echo_path(), "url": "http://127.0.0.1:1/mcp"}),
            "command and url",
        ),
        (
            json!({"name": "odd", "command": echo_path(), "colour": "blue"}),
            "an unknown field",
        ),
        (
            json!({"name": "ws", "url": "ftp://example.com/"}),
            "a bad URL",
        ),
    ] {
        let answer = api.post("/api/v1/mcp/services", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{why}: {answer:?}");
    }
    let not_json = api
        .send_raw(
            Method::POST,
            "/api/v1/mcp/services",
            "application/json",
            "{\"name\": ",
        )
        .await;
    assert_eq!(not_json.code(), "invalid_json", "{not_json:?}");

    let first = api
        .post("/api/v1/mcp/services", echo_service("twice", &marker))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = api
        .post("/api/v1/mcp/services", echo_service("twice", &marker))
        .await;
    assert_eq!(second.status, StatusCode::CONFLICT, "{second:?}");
    let like_the_file = api
        .post("/api/v1/mcp/services", echo_service("fx", &marker))
        .await;
    assert_eq!(
        like_the_file.status,
        StatusCode::CONFLICT,
        "{like_the_file:?}"
    );

    let patch_file = api
        .send(
            Method::PATCH,
            "/api/v1/mcp/services/fx",
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(patch_file.status, StatusCode::CONFLICT, "{patch_file:?}");
    let delete_file = api
        .send(Method::DELETE, "/api/v1/mcp/services/fx", None)
        .await;
    assert_eq!(delete_file.status, StatusCode::CONFLICT);
    let rename = api
        .send(
            Method::PATCH,
            "/api/v1/mcp/services/twice",
            Some(json!({"name": "other"})),
        )
        .await;
    assert_eq!(rename.status, StatusCode::BAD_REQUEST);
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let body = (method == Method::PATCH).then(|| json!({}));
        let unknown = api
            .send(method.clone(), "/api/v1/mcp/services/nope", body)
            .await;
        assert_eq!(
            unknown.status,
            StatusCode::NOT_FOUND,
            "{method}: {unknown:?}"
        );
    }
    let restart_unknown = api
        .send(Method::POST, "/api/v1/mcp/services/nope/restart", None)
        .await;
    assert_eq!(restart_unknown.status, StatusCode::NOT_FOUND);
    api.send(Method::DELETE, "/api/v1/mcp/services/twice", None)
        .await;
    assert!(gone(&marker).await);
}
