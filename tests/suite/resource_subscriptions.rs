//! `resources/subscribe` through the gateway: the owning upstream is subscribed, and its
//! `notifications/resources/updated` reach the subscribed session only.

use crate::common;

use std::time::Duration;

use common::{
    everything_command,
    http::{RawSession, wait_for},
    process::ServeProcess,
};
use serde_json::json;

const ARCHITECTURE: &str = "demo://resource/static/document/architecture.md";
const FEATURES: &str = "demo://resource/static/document/features.md";

#[tokio::test]
async fn updates_reach_only_the_sessions_subscribed_to_that_uri() {
    let (node, everything) = everything_command();
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n"
    ));
    let mut alice = RawSession::open(&gateway.mcp_url()).await;
    let mut bob = RawSession::open(&gateway.mcp_url()).await;
    let alice_events = alice.open_stream().await;
    let bob_events = bob.open_stream().await;

    for (session, uri) in [(&mut alice, ARCHITECTURE), (&mut bob, FEATURES)] {
        let reply = session
            .request("resources/subscribe", json!({"uri": uri}))
            .await;
        assert!(reply.message()["result"].is_object(), "{}", reply.body);
    }
    // server-everything sends an update for every subscribed URI at once, then every 5 s.
    let reply = alice
        .call("everything__toggle-subscriber-updates", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");

    wait_for(&alice_events, ARCHITECTURE, 1).await;
    wait_for(&bob_events, FEATURES, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !alice_events.lock().unwrap().contains(FEATURES),
        "alice got bob's update"
    );
    assert!(
        !bob_events.lock().unwrap().contains(ARCHITECTURE),
        "bob got alice's update"
    );

    // After unsubscribing (and once an update already on its way has landed), the next
    // rounds no longer reach alice.
    let reply = alice
        .request("resources/unsubscribe", json!({"uri": ARCHITECTURE}))
        .await;
    assert!(reply.message()["result"].is_object(), "{}", reply.body);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = alice_events.lock().unwrap().matches(ARCHITECTURE).count();
    let bob_before = bob_events.lock().unwrap().matches(FEATURES).count();
    wait_for(&bob_events, FEATURES, bob_before + 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = alice_events.lock().unwrap().matches(ARCHITECTURE).count();
    assert_eq!(
        before, after,
        "alice still gets updates after unsubscribing"
    );

    let reply = bob
        .request("resources/subscribe", json!({"uri": "nowhere://nothing"}))
        .await;
    assert_eq!(reply.error_code(), Some(-32002), "{}", reply.body);
}

#[tokio::test]
async fn a_2026_07_28_listen_stream_gets_the_updates_of_the_resources_it_names() {
    let (node, everything) = everything_command();
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n"
    ));
    let listen = json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}},
        "notifications": {"resourceSubscriptions": [ARCHITECTURE]}}});
    let response = common::http::modern_post(&gateway.mcp_url(), "subscriptions/listen", None)
        .body(listen.to_string())
        .send()
        .await
        .expect("open subscriptions/listen");
    let events = common::http::collect_stream(response);
    wait_for(&events, "notifications/subscriptions/acknowledged", 1).await;

    // The stream subscribed the upstream; a session-era client makes it send updates.
    let mut trigger = RawSession::open(&gateway.mcp_url()).await;
    let reply = trigger
        .call("everything__toggle-subscriber-updates", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}");
    wait_for(&events, "notifications/resources/updated", 1).await;
    let seen = events.lock().unwrap().clone();
    assert!(seen.contains(ARCHITECTURE), "{seen}");
    assert!(
        !seen.contains(FEATURES),
        "an update for a URI the stream did not name: {seen}"
    );
}
