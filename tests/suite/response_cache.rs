//! The cache that honours the 2026-07-28 hints (issue 20), with upstreams on the official
//! Python SDK giving the hints through its own `cache_hints`
//! (`tests/clients/cache_hints_upstream.py`), and two principals (API keys) asking:
//! - a list carries its upstreams' merged hints: the least ttl, private if any is;
//! - a `public` read is served again, from the cache, to another principal; a `private` one
//!   never is, but is to the principal it was read for;
//! - a `list_changed` re-lists at once, within the list's ttl, and retires the reads the
//!   upstream gave;
//! - an upstream with no `list_changed` to send is listed again once its list's ttl passed;
//! - `/metrics` counts the hits and misses.

use crate::common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{
    api::{Api, admin_env},
    http::{metric, modern_request},
    process::{ConfigDir, ServeProcess},
    python,
    served::ServedUpstream,
};
use serde_json::{Value, json};

fn upstream(name: &str, list_ttl: u64, read_ttl: u64, scope: &str, listen: bool) -> ServedUpstream {
    let script = common::clients_dir().join("cache_hints_upstream.py");
    ServedUpstream::start(name, |port| {
        let mut command = Command::new(python());
        command.arg(&script).args([
            "--http",
            &port.to_string(),
            "--name",
            name,
            "--list-ttl",
            &list_ttl.to_string(),
            "--read-ttl",
            &read_ttl.to_string(),
            "--scope",
            scope,
        ]);
        if !listen {
            command.arg("--no-listen");
        }
        command
    })
}

/// A 2026-07-28 request of `key` to `url`; the JSON-RPC message it gets back.
async fn ask(url: &str, key: &str, method: &str, name: Option<&str>, params: Value) -> Value {
    modern_request(url, key, method, name, params, json!({})).await
}

/// What `cache://NAME/counter` answered `key`: its text, and the answer's `ttlMs`.
async fn read(url: &str, key: &str, name: &str) -> (String, u64) {
    let uri = format!("cache://{name}/counter");
    let answer = ask(url, key, "resources/read", Some(&uri), json!({"uri": uri})).await;
    let result = &answer["result"];
    let text = result["contents"][0]["text"].as_str();
    let text = text.unwrap_or_else(|| panic!("{answer}")).to_owned();
    (
        text,
        result["ttlMs"]
            .as_u64()
            .unwrap_or_else(|| panic!("{answer}")),
    )
}

/// The tools `key` sees at `url`, and the list's hints.
async fn tools(url: &str, key: &str) -> (Vec<String>, u64, String) {
    let answer = ask(url, key, "tools/list", None, json!({})).await;
    let result = &answer["result"];
    let names = result["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    let names = names
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect();
    let ttl = result["ttlMs"]
        .as_u64()
        .unwrap_or_else(|| panic!("{answer}"));
    (
        names,
        ttl,
        result["cacheScope"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Waits (up to 15 s, well within a minute's ttl) until `url` lists tool `name` to `key`.
async fn wait_listed(url: &str, key: &str, name: &str) {
    let started = Instant::now();
    loop {
        if tools(url, key).await.0.iter().any(|tool| tool == name) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{name} never listed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_cache_keeps_what_upstreams_allow_for_whom_they_allow() {
    let public = upstream("shared", 60_000, 60_000, "public", true);
    let private = upstream("own", 30_000, 60_000, "private", true);
    let polled = upstream("polled", 2_000, 0, "public", false);
    let entry = |name: &str, served: &ServedUpstream| {
        format!("  {name}:\n    url: {}\n", served.url("/mcp"))
    };
    let yaml = format!(
        "auth:\n  enabled: true\nvirtual_servers:\n  shared_only:\n    upstreams: [shared]\n  \
         both:\n    upstreams: [shared, own]\nupstreams:\n{}{}{}",
        entry("shared", &public),
        entry("own", &private),
        entry("polled", &polled),
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    gateway.wait_ready(Duration::from_secs(30));
    let api = Api::logged_in(&gateway).await;
    let (alice, bob) = (api.create_key("alice").await, api.create_key("bob").await);
    let all = gateway.mcp_url();
    let shared_only = format!("{all}/shared_only");
    let both = format!("{all}/both");

    // Merged hints: the least ttl left, private if any part is.
    let (_, ttl, scope) = tools(&shared_only, &alice).await;
    assert!(
        (50_000..=60_000).contains(&ttl) && scope == "public",
        "{ttl} {scope}"
    );
    let (_, ttl, scope) = tools(&both, &alice).await;
    assert!(
        (20_000..=30_000).contains(&ttl) && scope == "private",
        "{ttl} {scope}"
    );
    let (_, ttl, scope) = tools(&all, &alice).await;
    assert!(ttl <= 2_000 && scope == "private", "{ttl} {scope}");

    // A public answer serves every principal; a private one only its own.
    let (first, ttl) = read(&all, &alice, "shared").await;
    assert_eq!(first, "read 1");
    assert!(ttl <= 60_000, "{ttl}");
    assert_eq!(
        read(&all, &bob, "shared").await.0,
        "read 1",
        "public: kept for bob too"
    );
    assert_eq!(read(&all, &alice, "own").await.0, "read 1");
    assert_eq!(
        read(&all, &alice, "own").await.0,
        "read 1",
        "private: kept for alice"
    );
    assert_eq!(
        read(&all, &bob, "own").await.0,
        "read 2",
        "never alice's answer to bob"
    );
    assert_eq!(
        read(&all, &bob, "own").await.0,
        "read 2",
        "bob's own, kept for him"
    );
    assert_eq!(read(&all, &alice, "own").await.0, "read 1");
    // ttlMs 0: asked of the upstream every time.
    assert_eq!(read(&all, &alice, "polled").await.0, "read 1");
    assert_eq!(read(&all, &alice, "polled").await.0, "read 2");

    // A list_changed re-lists at once, well within the list's minute, and retires the
    // upstream's kept reads.
    let added = ask(
        &all,
        &alice,
        "tools/call",
        Some("shared__add_tool"),
        json!({"name": "shared__add_tool", "arguments": {"name": "announced"}}),
    )
    .await;
    assert_eq!(added["result"]["isError"], json!(false), "{added}");
    wait_listed(&shared_only, &alice, "shared__announced").await;
    assert_eq!(
        read(&all, &bob, "shared").await.0,
        "read 2",
        "retired by the re-list"
    );

    // With no list_changed to send, the upstream is listed again once its 2 s ttl passed.
    let added = ask(
        &all,
        &alice,
        "tools/call",
        Some("polled__add_tool"),
        json!({"name": "polled__add_tool", "arguments": {"name": "quiet"}}),
    )
    .await;
    assert_eq!(added["result"]["isError"], json!(false), "{added}");
    wait_listed(&all, &bob, "polled__quiet").await;

    let base = &gateway.base;
    let count = |name: &'static str| metric(base, Some(&alice), name);
    let read_hits =
        count("mcps_cache_lookups_total{method=\"resources/read\",outcome=\"hit\"}").await;
    let read_misses =
        count("mcps_cache_lookups_total{method=\"resources/read\",outcome=\"miss\"}").await;
    let list_misses =
        count("mcps_cache_lookups_total{method=\"tools/list\",outcome=\"miss\"}").await;
    assert!(
        read_hits >= 4 && read_misses >= 5 && list_misses >= 1,
        "hits {read_hits}, misses {read_misses}, stale lists {list_misses}"
    );
}
