//! With `auth.enabled`, a session belongs to the key that opened it: another key presenting
//! its id gets 404 (as if it did not exist), the owner goes on, and a request with no key is
//! 401 before any of that.

use crate::common;

use common::{
    api::{Api, admin_env},
    fixture_upstream_yaml,
    http::RawSession,
    process::{ConfigDir, ServeProcess},
};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn another_keys_session_id_is_not_found() {
    let yaml = format!(
        "auth:\n  enabled: true\nupstreams:\n{}",
        fixture_upstream_yaml("fx", "fx", &["echo"], "")
    );
    let gateway = ServeProcess::start_in(ConfigDir::new(&yaml), &admin_env());
    let api = Api::logged_in(&gateway).await;
    let (alice, mallory) = (
        api.create_key("alice").await,
        api.create_key("mallory").await,
    );
    let alice = format!("Bearer {alice}");
    let mut owner = RawSession::open_with(&gateway.mcp_url(), &[("authorization", &alice)]).await;

    let mallory = format!("Bearer {mallory}");
    let mut thief = owner.handle();
    thief.headers = vec![("authorization".into(), mallory)];
    let stolen = thief
        .request("tools/call", json!({"name": "fx__echo", "arguments": {}}))
        .await;
    assert_eq!(stolen.status, StatusCode::NOT_FOUND, "{}", stolen.body);

    let mut anonymous = owner.handle();
    anonymous.headers.clear();
    let refused = anonymous.request("tools/list", json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);

    let reply = owner.call("fx__echo", json!({"mine": true})).await;
    assert!(reply["result"].is_object(), "the owner goes on: {reply}");

    // An answer of known length is not watched for its key's end, so it keeps its length
    // (a watched body would go out chunked).
    let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
                          "params": {"progressToken": "none", "progress": 1}});
    let accepted = owner.post_json(&progress).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.body);
    assert_eq!(
        accepted
            .headers
            .get("content-length")
            .map(|length| length.as_bytes()),
        Some(&b"0"[..]),
        "{:?}",
        accepted.headers
    );
}
