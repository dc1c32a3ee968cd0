//! A session's resource subscription outlives the replica that held it: gateways on one
//! PostgreSQL registry keep subscriptions there, and when the one that subscribed upstream is
//! killed, another takes the subscription over (subscribing its own upstream), tells the
//! client at once that the resource may have changed, and passes on the upstream's updates to
//! wherever the client's stream is held; on one SQLite file, a restart carries them over the
//! same way. The upstream is the reference server-everything.

use std::time::Duration;

use crate::common;

use common::{
    everything_command,
    http::{RawSession, metric, wait_for},
    postgres::fresh_database,
    process::{ConfigDir, ServeProcess},
};
use serde_json::json;

const ARCHITECTURE: &str = "demo://resource/static/document/architecture.md";

/// Session `id` as seen through the replica at `base`.
fn session_at(base: &str, id: &str) -> RawSession {
    RawSession {
        client: common::http::client(),
        url: format!("{base}/mcp"),
        session_id: Some(id.to_owned()),
        next_id: 1,
        headers: Vec::new(),
    }
}

fn updates(events: &std::sync::Arc<std::sync::Mutex<String>>) -> usize {
    events.lock().unwrap().matches(ARCHITECTURE).count()
}

#[tokio::test]
async fn a_subscription_outlives_the_replica_that_held_it() {
    let url = fresh_database().await;
    let (node, everything) = everything_command();
    // Sessions idle out after 8 s here, so the replicas renew their leases every 2 s and take
    // over one unrenewed for 6 s.
    let yaml = format!(
        "database:\n  url: {url:?}\n  secret_key: shared by the replicas\ntimeouts:\n  session_idle_secs: 8\nupstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n"
    );
    let mut replicas: Vec<Option<ServeProcess>> = (0..3)
        .map(|_| Some(ServeProcess::start_in(ConfigDir::new(&yaml), &[])))
        .collect();
    let base = |n: usize| replicas[n].as_ref().expect("a live replica").base.clone();
    let (a, b, c) = (base(0), base(1), base(2));

    // Opened and subscribed on A; the client's stream is held by C.
    let mut opener = RawSession::open(&format!("{a}/mcp")).await;
    let id = opener.session_id.clone().expect("a session id");
    let reply = opener
        .request("resources/subscribe", json!({"uri": ARCHITECTURE}))
        .await;
    assert!(reply.message()["result"].is_object(), "{}", reply.body);
    let events = session_at(&c, &id).open_stream().await;
    // Each replica's server-everything sends updates for what it is subscribed to, every 5 s.
    for gateway in [&a, &b, &c] {
        let reply = session_at(gateway, &id)
            .call("everything__toggle-subscriber-updates", json!({}))
            .await;
        assert!(reply["result"].is_object(), "{reply}");
    }
    wait_for(&events, ARCHITECTURE, 1).await;

    // A is killed. The client makes no request meanwhile: listening on its stream (at C)
    // keeps the session in use.
    let (status, _) = replicas[0]
        .take()
        .unwrap()
        .stop(nix::sys::signal::Signal::SIGKILL);
    eprintln!("killed replica A: {status}");
    let before = updates(&events);
    // Taken over within the lease and a round: one update at once, then the upstream's.
    wait_for(&events, ARCHITECTURE, before + 1).await;
    wait_for(&events, ARCHITECTURE, before + 2).await;
    let mut taken = 0;
    for gateway in [&b, &c] {
        taken += metric(gateway, None, "mcps_subscriptions_taken_over_total").await;
    }
    assert_eq!(taken, 1, "one replica took the subscription over");

    // Unsubscribed through B, whichever replica holds it: the updates stop within a round.
    let reply = session_at(&b, &id)
        .request("resources/unsubscribe", json!({"uri": ARCHITECTURE}))
        .await;
    assert!(reply.message()["result"].is_object(), "{}", reply.body);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = updates(&events);
    // Longer than the upstream's 5 s between updates.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        updates(&events),
        settled,
        "updates after unsubscribing: {}",
        events.lock().unwrap()
    );
}

/// On one gateway with its SQLite registry, a session's subscription goes on after the
/// gateway restarts: the new process takes over what the old one released when it stopped,
/// and subscribes its own (new) upstream.
#[tokio::test]
async fn a_subscription_goes_on_after_its_gateway_restarts() {
    let (node, everything) = everything_command();
    let yaml = format!(
        "timeouts:\n  session_idle_secs: 8\nupstreams:\n  everything:\n    command: {node:?}\n    args: [{everything:?}]\n"
    );
    let gateway = ServeProcess::start(&yaml);
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session
        .request("resources/subscribe", json!({"uri": ARCHITECTURE}))
        .await;
    assert!(reply.message()["result"].is_object(), "{}", reply.body);
    let (status, config) = gateway.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(status.success(), "{status}");

    let gateway = ServeProcess::start_in(config, &[]);
    session.url = gateway.mcp_url();
    let events = session.open_stream().await;
    // The new upstream sends updates for what it is subscribed to, from now on.
    let reply = session
        .call("everything__toggle-subscriber-updates", json!({}))
        .await;
    assert!(reply["result"].is_object(), "{reply}\n{}", gateway.log());
    wait_for(&events, ARCHITECTURE, 1).await;
    assert_eq!(
        metric(&gateway.base, None, "mcps_subscriptions_taken_over_total").await,
        1,
        "{}",
        gateway.log()
    );
}
