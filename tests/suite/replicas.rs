//! Gateways that share one PostgreSQL registry agree: a key made on one works on the others at
//! once; revoked on one it fails on the others, and a service added, changed or removed
//! through one runs, changes or stops on all, within a second (notified with
//! `LISTEN`/`NOTIFY`).

use std::time::{Duration, Instant};

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::RawSession,
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
    served::ServedUpstream,
};
use reqwest::StatusCode;
use serde_json::json;

fn yaml(url: &str) -> String {
    format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\nsecurity:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

/// Waits up to `within` for `check` to hold; how long it took.
async fn within<F: AsyncFn() -> bool>(within: Duration, what: &str, check: F) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn replicas_on_one_database_agree_on_keys_and_services() {
    let url = fresh_database().await;
    let a = ServeProcess::start_in(ConfigDir::new(&yaml(&url)), &admin_env());
    let b = ServeProcess::start_in(ConfigDir::new(&yaml(&url)), &[]);
    let on_a = Api::logged_in(&a).await;
    let on_b = Api::logged_in(&b).await;

    // A key made on A works on B; revoked on B, it fails on A.
    let key = on_a.create_key("agent").await;
    let status = async |gateway: &ServeProcess| {
        Api::new(gateway)
            .with_token(Some(&key))
            .get("/api/v1/auth/me")
            .await
            .status
    };
    // At once: B looks for a key it does not know in the registry.
    assert_eq!(
        status(&b).await,
        StatusCode::OK,
        "the key works on B at once"
    );
    let keys = on_b.get("/api/v1/auth/keys").await;
    let id = keys
        .body
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["name"] == "agent"))
        .map(|k| k["id"].clone())
        .unwrap_or_else(|| panic!("{keys:?}"));
    let revoked = on_b
        .send(
            reqwest::Method::DELETE,
            &format!("/api/v1/auth/keys/{id}"),
            None,
        )
        .await;
    assert!(revoked.status.is_success(), "{revoked:?}");
    let took = within(SECOND, "the key fails on A", async || {
        status(&a).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("a key revoked on B failed on A after {took:?}");

    // A service added through A is callable through B; removed through B, it stops on A.
    let everything = ServedUpstream::everything("streamableHttp");
    let added = on_a
        .post(
            "/api/v1/mcp/services",
            json!({"name": "everything", "url": everything.url("/mcp")}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{added:?}");
    let took = within(SECOND * 5, "the service is ready on B", async || {
        on_b.get("/api/v1/mcp/services/everything").await.body["state"] == "ready"
    })
    .await;
    eprintln!("a service added on A was ready on B after {took:?}");
    let mut session = RawSession::open(&b.mcp_url()).await;
    let reply = session
        .call("everything__echo", json!({"message": "through B"}))
        .await;
    assert!(
        reply["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|text| text.contains("through B")),
        "{reply}"
    );
    let changed = on_b
        .send(
            reqwest::Method::PATCH,
            "/api/v1/mcp/services/everything",
            Some(json!({"disabled": true})),
        )
        .await;
    assert!(changed.status.is_success(), "{changed:?}");
    within(SECOND, "the service is disabled on A", async || {
        on_a.get("/api/v1/mcp/services/everything").await.body["state"] == "disabled"
    })
    .await;
    let removed = on_a
        .send(
            reqwest::Method::DELETE,
            "/api/v1/mcp/services/everything",
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{removed:?}");
    within(SECOND, "the service is gone on B", async || {
        on_b.get("/api/v1/mcp/services/everything").await.status == StatusCode::NOT_FOUND
    })
    .await;
    assert!(
        !b.log().contains("cannot tell the other gateways"),
        "{}",
        b.log()
    );
    // The file's own upstream is never touched by what the registry says.
    assert_eq!(
        on_b.get("/api/v1/mcp/services/fx").await.body["state"],
        "ready"
    );
}
