//! `max_concurrent_calls` bounds the requests one upstream has in flight: more calls wait
//! for a slot (within their deadline) instead of piling onto it, and all are answered.

use crate::common;

use common::{fixture_upstream_yaml, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_never_has_more_calls_than_its_limit() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &[], "    max_concurrent_calls: 2\n")
            .replace("args: [", "args: [\"--sleep\", ")
    ));
    let session = RawSession::open(&gateway.mcp_url()).await;
    let mut calls = Vec::new();
    for n in 0..6u64 {
        let mut handle = session.handle();
        handle.next_id += n * 10;
        calls.push(tokio::spawn(async move {
            handle.call("fx__sleep", json!({"ms": 200, "tag": n})).await
        }));
    }
    let mut most = 0;
    for call in calls {
        let reply = call.await.unwrap();
        assert!(reply["result"].is_object(), "{reply}");
        most = most.max(
            reply["result"]["structuredContent"]["most_at_once"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(most, 2, "the upstream ran {most} calls at once");
}
