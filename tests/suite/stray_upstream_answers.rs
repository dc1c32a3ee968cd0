//! An upstream that answers a request it was never sent, or answers one twice: the stray
//! answers are dropped with a warning naming the upstream, the call gets the first answer,
//! and the upstream serves on.

use crate::common;

use common::{example_bin, http::RawSession, process::ServeProcess};
use serde_json::json;

#[tokio::test]
async fn unknown_and_duplicate_answers_are_dropped_with_a_warning() {
    let gateway = ServeProcess::start(&format!(
        "upstreams:\n  flt:\n    command: {:?}\n",
        example_bin("fault_upstream").display().to_string()
    ));
    let mut session = RawSession::open(&gateway.mcp_url()).await;
    let reply = session.call("flt__stray_answers", json!({})).await;
    assert_eq!(
        reply["result"]["content"][0]["text"], "first answer",
        "{reply}"
    );
    // Both strays: the one to no request, and the second answer to the call.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while gateway
        .log()
        .matches("dropped an answer to no request in flight")
        .count()
        < 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the strays were not both logged:\n{}",
            gateway.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(gateway.log().contains("upstream=flt"), "{}", gateway.log());
    assert!(
        gateway.log().contains("no-such-request"),
        "{}",
        gateway.log()
    );
    let next = session.call("flt__ok", json!({})).await;
    assert_eq!(next["result"]["content"][0]["text"], "ok", "{next}");
    assert_eq!(gateway.health()["upstreams"][0]["state"], "ready");
}
