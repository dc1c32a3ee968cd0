//! An upstream that adds a tool at run time makes connected clients receive
//! `notifications/tools/list_changed` (session-era clients on their GET stream, 2026-07-28
//! clients on `subscriptions/listen`), and the next tools/list shows the tool. Upstreams of
//! both eras are covered: the session era announces on its session, 2026-07-28 only on a
//! subscription the gateway opens. A listing that fails once after the change is asked again,
//! a subscription the upstream ends is opened again, and a list asked for while the gateway lists
//! the upstream again waits for it: no change is lost until the next one.

use std::sync::{Arc, Mutex};

use crate::common;

use common::{
    example_bin, fixture_upstream_yaml,
    http::{RawSession, collect_stream, wait_for},
    process::ServeProcess,
};
use serde_json::json;

fn config() -> String {
    format!(
        "upstreams:\n{}{}",
        fixture_upstream_yaml("old", "old", &["echo"], "    protocol: legacy\n")
            .replace("\"--tool\"", "\"--dynamic\", \"--tool\""),
        fixture_upstream_yaml("new", "new", &["echo"], "    protocol: modern\n")
            .replace("\"--tool\"", "\"--dynamic\", \"--tool\""),
    )
}

#[tokio::test]
async fn session_era_client_is_told_and_sees_the_new_tools() {
    let gateway = ServeProcess::start(&config());
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let events = session.open_stream().await;

    for (n, upstream) in ["old", "new"].into_iter().enumerate() {
        add_tool_and_hear_of_it(&mut session, &events, upstream, "fresh", n + 1).await;
    }
}

#[tokio::test]
async fn modern_client_is_told_on_its_subscription() {
    let gateway = ServeProcess::start(&config());
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "listener", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let listen = common::http::modern_post(&gateway.mcp_url(), "subscriptions/listen", None)
        .body(
            json!({"jsonrpc": "2.0", "id": "listen-1", "method": "subscriptions/listen",
                "params": {"_meta": meta, "notifications": {"toolsListChanged": true}}})
            .to_string(),
        )
        .send()
        .await
        .expect("subscriptions/listen");
    assert!(listen.status().is_success(), "listen: {}", listen.status());
    let events = collect_stream(listen);
    wait_for(&events, "notifications/subscriptions/acknowledged", 1).await;

    let mut session = RawSession::open(&gateway.mcp_url()).await;
    add_tool_and_hear_of_it(&mut session, &events, "new", "later", 1).await;
}

/// The first `tools/list` after the change fails (as one does on a keep-alive connection the
/// upstream closed as it went out): the gateway asks again, and clients hear of the change.
#[tokio::test]
async fn a_listing_that_fails_once_is_asked_again() {
    let (gateway, mut session) = in_front_of_the_fault_upstream().await;
    let events = session.open_stream().await;
    change_the_list_and_fail_its_listing(&mut session).await;
    wait_for(&events, "notifications/tools/list_changed", 1).await;
    assert_listed(&mut session, "flt__added").await;
    assert!(
        !gateway.log().contains("keeping the old lists"),
        "{}",
        gateway.log()
    );
}

/// A list asked for right after the upstream announced a change, while the gateway is still
/// listing it again (here for 200 ms at least: the first listing fails), waits for the new
/// lists. Behind a balancer, a client told of a change by one replica may ask another that
/// heard the change too but has not listed it yet.
#[tokio::test]
async fn a_list_asked_for_while_the_upstream_is_listed_again_waits_for_it() {
    let (_gateway, mut session) = in_front_of_the_fault_upstream().await;
    change_the_list_and_fail_its_listing(&mut session).await;
    // At once: no waiting for the gateway's `list_changed`.
    assert_listed(&mut session, "flt__added").await;
}

/// A gateway in front of the fault upstream (as `flt`), and a session on it.
async fn in_front_of_the_fault_upstream() -> (ServeProcess, RawSession) {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  flt:\n    command: {:?}\n",
        example_bin("fault_upstream").display().to_string()
    ));
    let session = RawSession::open(&gateway.mcp_url()).await;
    (gateway, session)
}

/// The fault upstream adds a tool, says its list changed, and fails the next listing.
async fn change_the_list_and_fail_its_listing(session: &mut RawSession) {
    let reply = session.call("flt__list_fails_once", json!({})).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "the tool list changed",
        "{reply}"
    );
}

/// A 2026-07-28 upstream that ends the gateway's `subscriptions/listen` stream (as one that
/// restarts its streams does): the gateway subscribes again, lists again for what changed
/// meanwhile, and hears the changes after.
#[tokio::test]
async fn a_subscription_the_upstream_ends_is_opened_again() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("new", "new", &["echo"], "    protocol: modern\n")
            .replace("\"--tool\"", "\"--dynamic\", \"--tool\""),
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let events = session.open_stream().await;
    let ended = session.call("new__end_listens", json!({})).await;
    assert!(ended["result"].is_object(), "{ended}");
    gateway
        .wait_for_log("ended the subscription to its list changes")
        .await;
    // A change at once, before the gateway is back (it waits a second): found by the listing
    // that follows the new subscription.
    add_tool_and_hear_of_it(&mut session, &events, "new", "meanwhile", 1).await;
    // And one after: heard on the new subscription.
    add_tool_and_hear_of_it(&mut session, &events, "new", "after", 2).await;
}

/// `upstream` (the fixture with `--dynamic`) adds tool `name`; `events` hears the `count`th
/// `tools/list_changed`, and the tool is listed.
async fn add_tool_and_hear_of_it(
    session: &mut RawSession,
    events: &Arc<Mutex<String>>,
    upstream: &str,
    name: &str,
    count: usize,
) {
    let reply = session
        .call(&format!("{upstream}__add_tool"), json!({ "name": name }))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    wait_for(events, "notifications/tools/list_changed", count).await;
    assert_listed(session, &format!("{upstream}__{name}")).await;
}

async fn assert_listed(session: &mut RawSession, tool: &str) {
    let names = session.tool_names().await;
    assert!(names.iter().any(|name| name == tool), "{tool} in {names:?}");
}
