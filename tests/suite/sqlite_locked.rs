//! Another process holding the registry's database locked past the busy timeout: proxying
//! goes on at full speed, and the calls made meanwhile reach the call log once it is free.

use crate::common;

use std::time::{Duration, Instant};

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_database_does_not_slow_calls_and_loses_none() {
    let yaml = format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let database = gateway.config.dir.path().join("data/mcps.db");

    let locker = rusqlite::Connection::open(&database).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    for n in 0..5 {
        let started = Instant::now();
        let reply = session.call("fx__echo", json!({"n": n})).await;
        assert!(reply["result"].is_object(), "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a call waited on the lock"
        );
    }
    // Past the gateway's 5 s busy timeout, so its first write of the batch fails.
    tokio::time::sleep(Duration::from_secs(6)).await;
    locker.execute_batch("COMMIT").unwrap();
    drop(locker);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let calls = api.get("/api/v1/calls?tool=fx__echo").await;
        if calls.body["calls"]
            .as_array()
            .is_some_and(|calls| calls.len() == 5)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "calls not written after the lock: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gateway.log().contains("retrying"), "{}", gateway.log());
}
