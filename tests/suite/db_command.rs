//! `mcps db`: the registry's schema (`status`, `migrate`), and `copy`, which moves a populated
//! SQLite registry into PostgreSQL so that a gateway there serves the same users, keys,
//! services and history.

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::call_echo,
    postgres::{column, fresh_database},
    process::{ConfigDir, ServeProcess, run_mcps, run_mcps_with},
};
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use serde_json::json;

const TARGET_KEY: &str = "the PostgreSQL registry's own sealing key";

fn yaml(database: &str) -> String {
    format!(
        "{database}security:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

fn on_postgres(url: &str) -> String {
    yaml(&format!(
        "database:\n  url: {url:?}\n  secret_key: {TARGET_KEY:?}\n"
    ))
}

/// Runs `mcps db ARGS` on `config`; its stdout, after checking that it succeeded.
fn db(config: &ConfigDir, args: &[&str]) -> String {
    let mut all = vec!["db"];
    all.extend(args);
    let (status, stdout, stderr) = run_mcps_with(
        &config.path(),
        &all,
        &[("MCPS_COPY_SECRET_KEY", TARGET_KEY)],
    );
    assert!(status.success(), "mcps db {args:?}: {stdout} {stderr}");
    stdout
}

#[tokio::test]
async fn a_populated_sqlite_registry_moves_to_postgresql() {
    // An SQLite registry with a key, a service whose client secret is sealed, and calls.
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml("")), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("agent").await;
    let service = api
        .post(
            "/api/v1/mcp/services",
            json!({"name": "remote", "url": "http://127.0.0.1:9/mcp", "disabled": true,
                   "oauth": {"client_id": "gw", "client_secret": "s3cret"}}),
        )
        .await;
    assert_eq!(service.status, StatusCode::CREATED, "{service:?}");
    call_echo(&gateway.mcp_url(), 4).await;
    let form = "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"tool.sh\"\r\n\r\n#!/bin/sh\n\r\n--b--\r\n";
    let uploaded = common::http::client()
        .post(format!("{}/api/v1/system/upload", gateway.base))
        .bearer_auth(api.token.as_deref().unwrap())
        .header("content-type", "multipart/form-data; boundary=b")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let (status, sqlite) = gateway.stop(Signal::SIGTERM);
    assert!(status.success());
    let latest = common::migrations().await;
    assert!(db(&sqlite, &["status"]).contains(&format!(
        "{latest} of {latest} migrations applied; none pending"
    )));

    let url = fresh_database().await;
    let copied = db(&sqlite, &["copy", "--to", &url]);
    for line in [
        "users: 1 rows",
        "tokens: 2 rows",
        "services: 1 rows",
        "calls: 4 rows",
        "uploads: 1 rows",
    ] {
        assert!(copied.contains(line), "{line:?} in {copied}");
    }
    assert!(
        !copied.contains(url.split('@').next().unwrap()),
        "no password: {copied}"
    );
    // Again: nothing changes, nothing is refused.
    let again = db(&sqlite, &["copy", "--to", &url]);
    assert_eq!(
        again.lines().skip(1).collect::<Vec<_>>(),
        copied.lines().skip(1).collect::<Vec<_>>()
    );

    // A gateway on PostgreSQL serves the same login, key, service and history.
    let gateway = ServeProcess::start_in(ConfigDir::new(&on_postgres(&url)), &[]);
    let admin = Api::logged_in(&gateway).await;
    assert_eq!(admin.get("/api/v1/auth/me").await.body["username"], "admin");
    let with_key = Api::new(&gateway).with_token(Some(&key));
    assert_eq!(with_key.get("/api/v1/auth/me").await.status, StatusCode::OK);
    let kept = with_key.get("/api/v1/mcp/services/remote").await;
    assert_eq!(kept.body["state"], "disabled", "{kept:?}");
    let calls = with_key.get("/api/v1/calls?tool=fx__echo&limit=10").await;
    assert_eq!(
        calls.body["calls"].as_array().map(Vec::len),
        Some(4),
        "{calls:?}"
    );
    // New rows take ids after the copied ones.
    let second = admin.create_key("after the copy").await;
    assert_ne!(second, key);
    assert_eq!(column(&url, "SELECT COUNT(*) FROM tokens").await, ["4"]);
    // The client secret was sealed again with the PostgreSQL registry's key: it opens there.
    let sealed = column(&url, "SELECT spec FROM services").await;
    assert!(!sealed[0].contains("s3cret"), "sealed at rest: {sealed:?}");
    // The upload is written into the PostgreSQL gateway's own uploads/.
    let uploaded = gateway.config.dir.path().join("data/uploads/tool.sh");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::fs::read(&uploaded).ok().as_deref() != Some(b"#!/bin/sh\n".as_slice()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload is not there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    drop(gateway);
}

#[tokio::test]
async fn a_target_with_rows_of_its_own_is_refused() {
    let sqlite = ConfigDir::new(&yaml(""));
    let gateway = ServeProcess::start_in(sqlite, &admin_env());
    let (_, sqlite) = gateway.stop(Signal::SIGTERM);
    // A gateway already ran on the target and made its own admin.
    let url = fresh_database().await;
    let other = ServeProcess::start_in(ConfigDir::new(&on_postgres(&url)), &[]);
    drop(other);
    let (status, stdout, stderr) = run_mcps_with(
        &sqlite.path(),
        &["db", "copy", "--to", &url],
        &[("MCPS_COPY_SECRET_KEY", TARGET_KEY)],
    );
    assert!(!status.success(), "{stdout}");
    assert!(
        stderr.contains("users has 1 rows that are not this registry's"),
        "{stderr}"
    );
    assert_eq!(column(&url, "SELECT COUNT(*) FROM users").await, ["1"]);
}

#[tokio::test]
async fn status_and_migrate_on_postgresql() {
    let url = fresh_database().await;
    let config = ConfigDir::new(&on_postgres(&url));
    let latest = common::migrations().await;
    assert!(db(&config, &["status"]).contains(&format!(
        "0 of {latest} migrations applied, {latest} pending"
    )));
    assert!(db(&config, &["migrate"]).contains(&format!(
        "{latest} of {latest} migrations applied; none pending ({latest} applied now)"
    )));
    assert!(db(&config, &["status"]).contains("none pending"));
    let missing = ConfigDir::new(&yaml(""));
    let (status, stdout, _) = run_mcps(&missing.path(), &["db", "status"]);
    assert!(status.success());
    assert!(stdout.contains("does not exist yet"), "{stdout}");
    assert!(
        !missing.dir.path().join("data").exists(),
        "status creates nothing"
    );
}
