//! Gateways that share one PostgreSQL registry agree: a key made on one works on the others at
//! once; revoked on one it fails on the others, and a service added, changed or removed
//! through one runs, changes or stops on all, within a second (notified with
//! `LISTEN`/`NOTIFY`); and stateless clients behind a balancer see one gateway. A session-era
//! session across replicas: `replicas/sessions.rs`; what an upstream asks a client mid-call,
//! across replicas: `replicas/questions.rs`.

mod questions;
mod sessions;

use std::time::{Duration, Instant};

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::{RawSession, metric},
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
    on_b.revoke_key("agent").await;
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

fn meta() -> serde_json::Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw-modern", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A 2026-07-28 `tools/call` of `fx__echo` at `url` with `key`; its HTTP status and message.
async fn modern_call(url: &str, key: &str, n: u64) -> (StatusCode, serde_json::Value) {
    let response = common::http::modern_post(url, "tools/call", Some("fx__echo"))
        .bearer_auth(key)
        .body(
            json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                   "params": {"_meta": meta(), "name": "fx__echo", "arguments": {"n": n}}})
            .to_string(),
        )
        .send()
        .await
        .expect("POST through the balancer");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// The tool calls a gateway counted, from its own `/metrics`.
async fn calls_counted(gateway: &ServeProcess, key: &str) -> u64 {
    metric(&gateway.base, Some(key), "mcps_tool_calls_total{").await
}

/// Three gateways behind nginx's plain round robin: 2026-07-28 clients see one gateway. A key
/// made through the balancer works on the very next request, wherever it lands, and once
/// revoked it fails everywhere.
#[tokio::test]
async fn stateless_clients_see_one_gateway_behind_a_round_robin_balancer() {
    let url = fresh_database().await;
    let yaml = yaml(&url).replace("security:", "auth:\n  enabled: true\nsecurity:");
    let replicas: Vec<ServeProcess> = (0..3)
        .map(|n| {
            let env: &[(&str, &str)] = if n == 0 { &admin_env() } else { &[] };
            ServeProcess::start_in(ConfigDir::new(&yaml), env)
        })
        .collect();
    let balancer = common::balancer::Balancer::start(
        &replicas
            .iter()
            .map(|replica| replica.base.trim_start_matches("http://").to_owned())
            .collect::<Vec<_>>(),
    );
    let admin = Api::logged_in(&replicas[0]).await;
    let key = admin.create_key("through the balancer").await;
    let mcp = balancer.url("/mcp");
    for n in 0..30 {
        let (status, reply) = modern_call(&mcp, &key, n).await;
        assert_eq!(status, StatusCode::OK, "call {n}: {reply}");
        assert_eq!(reply["id"], n, "{reply}");
        assert_eq!(
            reply["result"]["resultType"], "complete",
            "call {n}: {reply}"
        );
    }
    for (n, replica) in replicas.iter().enumerate() {
        let counted = calls_counted(replica, &key).await;
        assert!(counted >= 5, "replica {n} served {counted} of the 30 calls");
    }
    // Every replica's calls are in the one history (each writes its batch within 250 ms).
    within(
        SECOND * 3,
        "the 30 calls are in the one history",
        async || {
            let history = admin.get("/api/v1/calls?tool=fx__echo&limit=100").await;
            history.body["calls"].as_array().map(Vec::len) == Some(30)
        },
    )
    .await;

    // Revoked through the balancer: refused by every replica.
    Api::new(&replicas[1])
        .with_token(Some(&key))
        .revoke_key("through the balancer")
        .await;
    within(
        SECOND,
        "every replica refuses the revoked key",
        async || {
            let mut refused = 0;
            for replica in &replicas {
                refused += usize::from(
                    modern_call(&replica.mcp_url(), &key, 99).await.0 == StatusCode::UNAUTHORIZED,
                );
            }
            refused == replicas.len()
        },
    )
    .await;
    for n in 0..6 {
        let (status, _) = modern_call(&mcp, &key, n).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "call {n} after the revocation"
        );
    }
}
