//! Two clients that use the same JSON-RPC id at the same time, on one shared upstream, each
//! get their own answer: the gateway numbers its requests to the upstream itself.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_id_from_two_clients_gets_two_right_answers() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "").replace("args: [", "args: [\"--sleep\", ")
    ));
    let mut calls = Vec::new();
    for client in ["alice", "bob"] {
        let mut session = RawSession::open(&gateway.mcp_url()).await;
        calls.push(tokio::spawn(async move {
            // Both use id 7; alice's call is still running when bob's is answered.
            session.next_id = 7;
            let ms = if client == "alice" { 400 } else { 50 };
            let reply = session
                .call("fx__sleep", json!({"ms": ms, "tag": client}))
                .await;
            (client, reply)
        }));
    }
    for call in calls {
        let (client, reply) = call.await.unwrap();
        assert_eq!(reply["id"], 7, "{reply}");
        assert_eq!(
            reply["result"]["structuredContent"]["arguments"]["tag"], client,
            "{client} got someone else's answer: {reply}"
        );
    }
}
