//! The gateway on a real PostgreSQL registry (`database.url: postgresql://...`): users, keys,
//! services and the call history live there, and a restarted gateway finds them; a URL of a
//! scheme it does not serve is refused at start, naming the key, and creates nothing.

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::call_echo,
    postgres::{column, fresh_database},
    process::{ConfigDir, ServeProcess, run_mcps},
};
use nix::sys::signal::Signal;
use reqwest::StatusCode;

fn yaml(url: &str) -> String {
    format!(
        "database:\n  url: {url:?}\n  secret_key: a long random secret for the test\nsecurity:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

#[tokio::test]
async fn the_gateway_keeps_everything_in_postgresql() {
    let url = fresh_database().await;
    let config = ConfigDir::new(&yaml(&url));
    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("agent").await;
    api.add_disabled_service().await;
    call_echo(&gateway.mcp_url(), 3).await;
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");

    // The rows are in PostgreSQL, and no SQLite file was made beside the config.
    assert_eq!(column(&url, "SELECT username FROM users").await, ["admin"]);
    assert_eq!(
        column(&url, "SELECT COUNT(*) FROM calls WHERE tool = 'fx__echo'").await,
        ["3"]
    );
    assert!(
        !config.dir.path().join("data/mcps.db").exists(),
        "no SQLite file"
    );

    // A new gateway on the same database: the key, the service and the history are there.
    let gateway = ServeProcess::start_in(config, &[]);
    let with_key = Api::new(&gateway).with_token(Some(&key));
    let me = with_key.get("/api/v1/auth/me").await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    let kept = with_key.get("/api/v1/mcp/services/remote").await;
    assert_eq!(kept.body["state"], "disabled", "{kept:?}");
    let calls = with_key.get("/api/v1/calls?tool=fx__echo&limit=10").await;
    assert_eq!(
        calls.body["calls"].as_array().map(Vec::len),
        Some(3),
        "{calls:?}"
    );
}

fn check_refuses(yaml: &str, key: &str, words: &str) -> ConfigDir {
    let config = ConfigDir::new(yaml);
    let (status, stdout, stderr) = run_mcps(&config.path(), &["check"]);
    assert_eq!(status.code(), Some(2), "stdout: {stdout} stderr: {stderr}");
    assert!(stderr.contains(key), "expected {key:?} in: {stderr}");
    assert!(stderr.contains(words), "expected {words:?} in: {stderr}");
    config
}

#[test]
fn a_database_the_gateway_does_not_serve_is_refused_and_nothing_is_created() {
    for url in ["mysql://user:pass@db.example/mcps", "mongodb+srv://h/db"] {
        let config = check_refuses(
            &format!("database:\n  url: {url:?}\n"),
            "database.url",
            "is not a database the gateway serves",
        );
        let (status, _, stderr) = run_mcps(&config.path(), &["serve", "--listen", "127.0.0.1:0"]);
        assert_eq!(status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("database.url"), "{stderr}");
        assert!(!stderr.contains("pass@"), "no password shown: {stderr}");
        let made: Vec<_> = std::fs::read_dir(config.dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(made, ["proxy.yaml"], "nothing made beside the config");
    }
}

#[test]
fn a_file_name_with_a_colon_is_shown_how_to_write() {
    check_refuses(
        "database:\n  url: backup:2026.db\n",
        "database.url",
        "write ./backup:2026.db",
    );
}

#[test]
fn postgresql_without_a_secret_key_or_with_a_bad_url_is_refused() {
    check_refuses(
        "database:\n  url: postgresql://u:p@127.0.0.1:1/db\n",
        "database.secret_key",
        "PostgreSQL",
    );
    check_refuses(
        "database:\n  url: postgresql://u:p@127.0.0.1:notaport/db\n  secret_key: k\n",
        "database.url",
        "is not a PostgreSQL URL",
    );
}

/// `database.keep_calls_days`: a gateway deletes the calls older than that at start (and
/// hourly), and keeps the others.
#[tokio::test]
async fn calls_past_the_retention_are_deleted() {
    let url = fresh_database().await;
    let config = ConfigDir::new(&yaml(&url));
    // The schema and a day-old call and a fresh one, as an earlier run left them.
    let registry = mcps::registry::Registry::open(
        &mcps::config::DatabaseLocation::Postgres(url.clone()),
        "a long random secret for the test",
    )
    .await
    .expect("open the registry");
    let now = mcps::registry::now_ms();
    let call = |at: i64| mcps::registry::CallRecord {
        id: 0,
        at,
        client: None,
        principal: None,
        upstream: Some("fx".into()),
        tool: "fx__echo".into(),
        duration_us: 1,
        outcome: "ok".into(),
        error: None,
    };
    let two_days = 2 * 86_400_000;
    registry
        .insert_calls(vec![call(now - two_days), call(now)])
        .await
        .unwrap();
    registry.close().await.unwrap();

    let yaml = std::fs::read_to_string(config.path())
        .unwrap()
        .replace("  secret_key:", "  keep_calls_days: 1\n  secret_key:");
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &[]);
    let start = std::time::Instant::now();
    while column(&url, "SELECT COUNT(*) FROM calls").await != ["1"] {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the day-old call is still there: {}",
            gateway.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let kept = column(&url, "SELECT at FROM calls").await;
    assert_eq!(kept, [now.to_string()]);
}
