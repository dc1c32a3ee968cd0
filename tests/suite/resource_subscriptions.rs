//! `resources/subscribe` through the gateway: the owning upstream is subscribed, and its
//! `notifications/resources/updated` reach the subscribed session only.

use crate::common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{
    everything_command,
    fixtures::{HttpFixture, Implementation},
    http::{RawSession, wait_for},
    line_peer::LinePeer,
    process::{ConfigDir, ServeProcess},
    slow_link::SlowLink,
};
use futures::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

const ARCHITECTURE: &str = "demo://resource/static/document/architecture.md";
const FEATURES: &str = "demo://resource/static/document/features.md";
/// The conformance fixtures' resource that `test_trigger_resource_update` announces.
const WATCHED: &str = "test://watched-resource";

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
    let events = listen_over_http(&gateway, &[ARCHITECTURE]).await;
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

/// The doors a 2026-07-28 client may listen through.
#[derive(Clone, Copy)]
enum Door {
    Http,
    WebSocket,
    Stdio,
}

/// A 2026-07-28 client may act as soon as its `subscriptions/listen` is acknowledged: by then
/// the upstream holds the subscription, however slow the way to it. Here every request from
/// the gateway reaches the upstream 500 ms late, and the update is triggered on the upstream
/// directly the moment the acknowledgment arrives.
async fn check_listen_acknowledged_once_the_upstream_listens(
    implementation: Implementation,
    protocol: &str,
    door: Door,
) {
    let (fixture, _link, yaml) = behind_a_slow_link(implementation, protocol);
    let (_gateway, events) = listen_through(door, &yaml, &[WATCHED]).await;
    wait_for(&events, "notifications/subscriptions/acknowledged", 1).await;

    trigger_and_hear(&fixture, &events).await;
}

/// The fixture of `implementation`, and a gateway's config (upstream `fx`, reached with
/// `protocol`) that reaches it through a link holding the gateway's requests 500 ms.
fn behind_a_slow_link(
    implementation: Implementation,
    protocol: &str,
) -> (HttpFixture, SlowLink, String) {
    behind(implementation, protocol, |address| {
        SlowLink::start(address, Duration::from_millis(500))
    })
}

/// The fixture of `implementation`, and a gateway's config (upstream `fx`, reached with
/// `protocol`) that reaches it through the link `link` makes to its address.
fn behind(
    implementation: Implementation,
    protocol: &str,
    link: impl FnOnce(&str) -> SlowLink,
) -> (HttpFixture, SlowLink, String) {
    let fixture = HttpFixture::start(implementation);
    let address = fixture
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp");
    let link = link(address);
    let yaml = format!(
        "upstreams:\n  fx:\n    url: \"http://127.0.0.1:{}/mcp\"\n    protocol: {protocol}\n",
        link.port()
    );
    (fixture, link, yaml)
}

/// A 2026-07-28 `subscriptions/listen` for the resources `uris`.
fn listen_to(uris: &[&str]) -> serde_json::Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}},
        "notifications": {"resourceSubscriptions": uris}}})
}

/// Triggers an update of the watched resource on `fixture` directly; `events` hears it.
async fn trigger_and_hear(fixture: &HttpFixture, events: &Arc<Mutex<String>>) {
    let mut direct = RawSession::open(&fixture.url).await;
    let reply = direct.call("test_trigger_resource_update", json!({})).await;
    assert!(reply["result"].is_object(), "{reply}");
    wait_for(events, "notifications/resources/updated", 1).await;
    let seen = events.lock().unwrap().clone();
    assert!(seen.contains(WATCHED), "{seen}");
}

/// Listens to the resources `uris` on a gateway on `yaml` through `door`; what keeps the gateway (and the
/// stream) running, and the stream's messages as they arrive.
async fn listen_through(
    door: Door,
    yaml: &str,
    uris: &[&str],
) -> (Box<dyn std::any::Any>, Arc<Mutex<String>>) {
    match door {
        Door::Http => {
            let gateway = ServeProcess::start(yaml);
            let events = listen_over_http(&gateway, uris).await;
            (Box::new(gateway), events)
        }
        Door::WebSocket => {
            let gateway = ServeProcess::start(yaml);
            let mut socket = common::ws::open(&gateway.ws_url("/ws")).await;
            common::ws::send(&mut socket, &listen_to(uris)).await;
            let heard = Arc::new(Mutex::new(String::new()));
            let into = heard.clone();
            // Until the gateway goes, at the end of the test.
            tokio::spawn(async move {
                while let Some(Ok(frame)) = socket.next().await {
                    if let Message::Text(text) = frame {
                        into.lock().unwrap().push_str(&format!("{text}\n"));
                    }
                }
            });
            (Box::new(gateway), heard)
        }
        Door::Stdio => {
            let config = ConfigDir::new(yaml);
            let mut command = std::process::Command::new(common::mcps_bin());
            command.args(["stdio", "-c"]).arg(config.path());
            let mut peer = LinePeer::spawn(command);
            peer.send(&listen_to(uris).to_string());
            let heard = peer.transcript();
            (Box::new((config, peer)), heard)
        }
    }
}

/// A `subscriptions/listen` for the resources `uris` to `gateway`'s `/mcp`, to send.
fn listen_request(gateway: &ServeProcess, uris: &[&str]) -> reqwest::RequestBuilder {
    common::http::modern_post(&gateway.mcp_url(), "subscriptions/listen", None)
        .body(listen_to(uris).to_string())
}

/// Listens to the resources `uris` on `gateway`'s `/mcp`; the stream's events as they arrive.
async fn listen_over_http(gateway: &ServeProcess, uris: &[&str]) -> Arc<Mutex<String>> {
    let response = listen_request(gateway, uris)
        .send()
        .await
        .expect("open subscriptions/listen");
    common::http::collect_stream(response)
}

#[tokio::test]
async fn a_listen_over_http_is_acknowledged_once_a_2026_07_28_python_upstream_listens() {
    check_listen_acknowledged_once_the_upstream_listens(Implementation::Python, "auto", Door::Http)
        .await;
}

#[tokio::test]
async fn a_listen_over_http_is_acknowledged_once_a_session_era_typescript_upstream_is_subscribed() {
    check_listen_acknowledged_once_the_upstream_listens(
        Implementation::TypeScript,
        "legacy",
        Door::Http,
    )
    .await;
}

#[tokio::test]
async fn a_listen_over_websocket_is_acknowledged_once_the_upstream_listens() {
    check_listen_acknowledged_once_the_upstream_listens(
        Implementation::Python,
        "auto",
        Door::WebSocket,
    )
    .await;
}

#[tokio::test]
async fn a_listen_over_stdio_is_acknowledged_once_the_upstream_is_subscribed() {
    check_listen_acknowledged_once_the_upstream_listens(
        Implementation::TypeScript,
        "legacy",
        Door::Stdio,
    )
    .await;
}

/// A listen that names a resource nobody serves beside one that exists: the stream is still
/// acknowledged, the unknown URI is logged, and the known one's updates arrive.
#[tokio::test]
async fn a_listen_naming_an_unknown_resource_still_hears_the_others() {
    let fixture = HttpFixture::start(Implementation::Python);
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  fx:\n    url: {:?}\n    protocol: auto\n",
        fixture.url
    ));
    let events = listen_over_http(&gateway, &["test://nowhere", WATCHED]).await;
    wait_for(&events, "notifications/subscriptions/acknowledged", 1).await;
    gateway
        .wait_for_log("a subscriptions/listen resource could not be subscribed")
        .await;

    trigger_and_hear(&fixture, &events).await;
}

/// A second client that listens to a resource while the first one's upstream subscription is
/// still on its way (500 ms late here) is acknowledged once that subscription is in place,
/// not before: both hear the update triggered the moment the second is acknowledged.
#[tokio::test]
async fn a_listener_that_joins_a_subscription_on_its_way_is_acknowledged_once_it_is_in_place() {
    let (fixture, _link, yaml) = behind_a_slow_link(Implementation::TypeScript, "legacy");
    let gateway = ServeProcess::start(&yaml);
    // The first listen is answered only once subscribed: it is sent on a task of its own.
    let request = listen_request(&gateway, &[WATCHED]);
    let first = tokio::spawn(async move {
        let response = request.send().await.expect("open subscriptions/listen");
        common::http::collect_stream(response)
    });
    // Its upstream subscription is on its way by now.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = listen_over_http(&gateway, &[WATCHED]).await;
    wait_for(&second, "notifications/subscriptions/acknowledged", 1).await;

    trigger_and_hear(&fixture, &second).await;
    let first = first.await.expect("the first listen");
    wait_for(&first, "notifications/resources/updated", 1).await;
}

/// A client that closes its listen and listens again at once (as one that reconnects does):
/// the gateway's unsubscription goes upstream first, then its subscription, 500 ms late each,
/// and the new stream hears the update triggered once it is acknowledged.
#[tokio::test]
async fn a_listen_opened_again_at_once_hears_the_next_update() {
    let (fixture, _link, yaml) = behind_a_slow_link(Implementation::TypeScript, "legacy");
    let gateway = ServeProcess::start(&yaml);
    let request = || listen_request(&gateway, &[WATCHED]);
    let first = request().send().await.expect("open subscriptions/listen");
    drop(first);
    // Time for the gateway to see the stream close and send its unsubscription (were it to
    // see it later, the new listen would join the old subscription instead).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = common::http::collect_stream(request().send().await.expect("listen again"));
    wait_for(&again, "notifications/subscriptions/acknowledged", 1).await;
    trigger_and_hear(&fixture, &again).await;
}

/// Opens a session on `gateway`, subscribes it to the watched resource, and ends it 150 ms
/// later, while the subscription is on its way; returns once both are answered.
async fn end_while_subscribing(gateway: &ServeProcess) {
    let leaving = RawSession::open(&gateway.mcp_url()).await;
    let mut subscribing = leaving.handle();
    let subscribed = tokio::spawn(async move {
        subscribing
            .request("resources/subscribe", json!({"uri": WATCHED}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    leaving.close().await;
    let _ = subscribed.await;
}

/// A session that ends while its `resources/subscribe` is on its way to a 2026-07-28 upstream
/// (the gateway holds a `subscriptions/listen` on it for the URI): the gateway's stream is
/// closed once it is open, not kept. A session that subscribes after hears each update once,
/// not once more through a stream nobody holds.
#[tokio::test]
async fn a_subscription_whose_session_ends_on_its_way_is_undone_once_answered() {
    let (fixture, _link, yaml) = behind_a_slow_link(Implementation::Python, "auto");
    let gateway = ServeProcess::start_in(
        ConfigDir::new(&yaml),
        &[("RUST_LOG", "info,rmcp=warn,mcps::gateway=debug")],
    );
    // The subscription is on its way (500 ms to the upstream) when the session ends.
    end_while_subscribing(&gateway).await;
    // Past the subscription's way there and the unsubscription's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Nothing to keep in the registry for a session that ended: no warning.
    let log = gateway.log();
    assert!(
        !log.contains("cannot keep a resource subscription"),
        "{log}"
    );

    let mut listener = RawSession::open(&gateway.mcp_url()).await;
    let events = listener.open_stream().await;
    let reply = listener
        .request("resources/subscribe", json!({"uri": WATCHED}))
        .await;
    assert!(reply.message()["result"].is_object(), "{}", reply.body);
    trigger_and_hear(&fixture, &events).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = events.lock().unwrap().clone();
    assert_eq!(
        seen.matches("notifications/resources/updated").count(),
        1,
        "one update heard once: {seen}\n{}",
        gateway.log()
    );
}

/// A session that ends while its `resources/subscribe` is on its way to a session-era
/// upstream, over a network that lets what the gateway sends next on another connection
/// overtake it: the gateway unsubscribes only once the subscription is answered, so the
/// upstream hears the unsubscription last and holds no subscription that nobody does.
#[tokio::test]
async fn an_unsubscription_does_not_overtake_the_subscription_it_undoes() {
    let (_fixture, link, yaml) = behind(Implementation::TypeScript, "legacy", |address| {
        SlowLink::holding(
            address,
            "\"resources/subscribe\"",
            Duration::from_millis(1000),
        )
    });
    let gateway = ServeProcess::start(&yaml);
    // The subscription is held on its way (1 s) when the session ends.
    end_while_subscribing(&gateway).await;

    let heard = || {
        link.delivered()
            .iter()
            .filter_map(|text| {
                if text.contains("\"resources/unsubscribe\"") {
                    Some("unsubscribe")
                } else if text.contains("\"resources/subscribe\"") {
                    Some("subscribe")
                } else {
                    None
                }
            })
            .collect::<Vec<_>>()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while heard().len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing more comes after a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        heard(),
        ["subscribe", "unsubscribe"],
        "the upstream's last word on the resource\n{}",
        gateway.log()
    );
}

/// The same over a 2026-07-28 upstream, where a subscription is a `subscriptions/listen`
/// stream the gateway holds open and undoes by closing it: one held on its way (its request
/// late to the upstream) when its session ends is closed once it is open, not left open.
#[tokio::test]
async fn a_listen_held_on_its_way_is_closed_once_open_when_its_session_ended() {
    let (_fixture, link, yaml) = behind(Implementation::Python, "auto", |address| {
        SlowLink::holding(
            address,
            "resourceSubscriptions",
            Duration::from_millis(1000),
        )
    });
    let gateway = ServeProcess::start(&yaml);
    // The upstream listen is held on its way (1 s) when the session ends.
    end_while_subscribing(&gateway).await;

    // Delivered, answered, and closed: no stream for the resource stays open upstream.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while link.delivered().iter().all(|text| !text.contains(WATCHED)) {
        assert!(std::time::Instant::now() < deadline, "{}", gateway.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    while link.open_carrying(WATCHED) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a listen nobody holds stays open upstream\n{}",
            gateway.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
