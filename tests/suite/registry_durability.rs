//! The registry keeps what it committed when the gateway is killed, the call log is
//! written out on a graceful stop, and a database file that is not healthy stops start-up
//! without being touched, even one damaged after a clean stop.

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::call_echo,
    process::{ConfigDir, ServeProcess, run_mcps},
};
use nix::sys::signal::Signal;
use reqwest::StatusCode;

fn yaml() -> String {
    format!(
        "security:\n  allow_private_urls: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    )
}

#[tokio::test]
async fn kill_9_loses_no_committed_row() {
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml()), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let key = api.create_key("kept").await;
    api.add_disabled_service().await;

    let (_, config) = gateway.stop(Signal::SIGKILL);
    let gateway = ServeProcess::start_in(config, &[]);
    let with_key = Api::new(&gateway).with_token(Some(&key));
    assert_eq!(
        with_key.get("/api/v1/auth/me").await.status,
        StatusCode::OK,
        "the key survived"
    );
    let kept = with_key.get("/api/v1/mcp/services/remote").await;
    assert_eq!(kept.body["state"], "disabled", "{kept:?}");
    let login = Api::logged_in(&gateway).await;
    assert_eq!(login.get("/api/v1/auth/me").await.body["username"], "admin");
}

#[tokio::test]
async fn a_graceful_stop_writes_every_call_to_the_log() {
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml()), &admin_env());
    call_echo(&gateway.mcp_url(), 20).await;
    // At once: the calls are still queued for the log's next batch.
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");

    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    let calls = api.get("/api/v1/calls?tool=fx__echo&limit=100").await;
    assert_eq!(
        calls.body["calls"].as_array().unwrap().len(),
        20,
        "{calls:?}"
    );
}

/// Rows per table of the database file `path` opened alone: a copy without its `-wal` and
/// `-shm` files, as a backup that copies only `mcps.db` would have it.
fn rows_in_a_copy_of(path: &std::path::Path) -> std::collections::BTreeMap<&'static str, i64> {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    std::fs::copy(path, &copy).unwrap();
    let db = rusqlite::Connection::open(&copy).unwrap();
    ["users", "tokens", "services", "calls"]
        .into_iter()
        .map(|table| {
            let count = db
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                    row.get(0)
                })
                .unwrap_or_else(|error| panic!("{table} in the copy: {error}"));
            (table, count)
        })
        .collect()
}

#[tokio::test]
async fn after_sigterm_the_database_file_alone_has_every_row() {
    let config = ConfigDir::new(&yaml());
    let file = config.dir.path().join("data").join("mcps.db");
    let gateway = ServeProcess::start_in(config, &admin_env());
    let api = Api::logged_in(&gateway).await;
    api.create_key("first").await;
    api.create_key("second").await;
    api.add_disabled_service().await;
    call_echo(&gateway.mcp_url(), 7).await;

    let (status, _config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");
    let rows = rows_in_a_copy_of(&file);
    // The admin; its login token and two keys; the service; the calls.
    let expected = [("calls", 7), ("services", 1), ("tokens", 3), ("users", 1)];
    assert_eq!(
        rows,
        expected.into_iter().collect(),
        "rows in mcps.db alone"
    );
    let wal = file.with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |wal| wal.len() == 0),
        "the write-ahead log was merged"
    );
}

#[test]
fn a_corrupt_database_stops_start_up_and_is_left_untouched() {
    for (what, bytes) in [
        (
            "garbage",
            b"this is not an SQLite database, and it is long enough to have a header".repeat(100),
        ),
        ("a damaged database", damaged_database()),
    ] {
        let config = ConfigDir::new("");
        let data = config.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let file = data.join("mcps.db");
        std::fs::write(&file, &bytes).unwrap();
        let (status, _, stderr) = run_mcps(&config.path(), &["serve", "--listen", "127.0.0.1:0"]);
        assert!(!status.success(), "{what}: started on a corrupt database");
        assert!(
            stderr.contains("mcps.db") && stderr.contains("corrupt"),
            "{what}: {stderr}"
        );
        assert_eq!(
            std::fs::read(&file).unwrap(),
            bytes,
            "{what}: the file was changed"
        );
        let (status, _, _) = run_mcps(&config.path(), &["stdio"]);
        assert!(!status.success(), "{what}: stdio mode refuses it too");
    }
}

/// A clean stop spares the next start the integrity check, which reads every page; but only
/// for the file that stop left. One changed since (here a page overwritten, as a disk or a
/// hand could) is checked again, and refused untouched.
#[test]
fn a_database_changed_after_a_clean_stop_is_checked_again() {
    let config = ConfigDir::new(&yaml());
    let file = config.dir.path().join("data").join("mcps.db");
    let mark = config.dir.path().join("data").join("mcps.db-closed");
    let gateway = ServeProcess::start_in(config, &admin_env());
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");
    assert!(mark.exists(), "a clean stop leaves its mark");

    let gateway = ServeProcess::start_in(config, &[]);
    assert!(!mark.exists(), "a running gateway takes the mark away");
    let (status, config) = gateway.stop(Signal::SIGTERM);
    assert!(status.success(), "{status:?}");

    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() > 4 * 4096, "several pages: {}", bytes.len());
    for byte in &mut bytes[2 * 4096..3 * 4096] {
        *byte = 0xA5;
    }
    // A file's modification time moves with the kernel's coarse clock (a tick of up to 10 ms):
    // a write within the tick of the stop's own would leave it where the mark has it.
    std::thread::sleep(std::time::Duration::from_millis(50));
    std::fs::write(&file, &bytes).unwrap();
    let (status, _, stderr) = run_mcps(&config.path(), &["stdio"]);
    assert!(
        !status.success(),
        "started on a database damaged after its clean stop"
    );
    assert!(stderr.contains("corrupt"), "{stderr}");
    assert_eq!(std::fs::read(&file).unwrap(), bytes, "the file was changed");
}

/// A real SQLite database of several pages, with one of them overwritten.
fn damaged_database() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whole.db");
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute_batch("CREATE TABLE t (x TEXT); CREATE INDEX t_x ON t(x);")
        .unwrap();
    for n in 0..500 {
        db.execute(
            "INSERT INTO t VALUES (?1)",
            [format!("row {n} {}", "y".repeat(50))],
        )
        .unwrap();
    }
    drop(db);
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4 * 4096, "several pages");
    for byte in &mut bytes[2 * 4096..3 * 4096] {
        *byte = 0xA5;
    }
    bytes
}
