//! Every kind of row the registry keeps, each put through its checks, in the order a gateway's
//! life would write them; `registry_engines.rs` runs them on each engine.

use std::sync::Arc;

use mcps::{
    config::{DatabaseLocation, UpstreamConfig},
    registry::{
        CallFilter, CallRecord, KeptSubscription, Registry, RegistryError, StoredSession, TokenKind,
    },
};

use super::KEY;

/// The two client sessions the session and subscription checks keep.
const ONE: &str = "00000000-0000-4000-8000-000000000001";
const TWO: &str = "00000000-0000-4000-8000-000000000002";

/// Runs every check on the registry at `location`; `what` names it in failures.
pub async fn every_row_kind(location: &DatabaseLocation, what: &str) {
    let registry = Registry::open(location, KEY).await.expect(what);
    users_and_tokens(&registry, what).await;
    let service = services(&registry, what).await;
    calls(&registry, what).await;
    oauth_credentials(&registry, what).await;
    uploads(&registry, what).await;
    sessions(&registry, what).await;
    subscriptions(&registry, what).await;
    many_sessions(&registry).await;
    registry.close().await.unwrap();

    // Opened again: migrations already applied, everything kept.
    let again = Registry::open(location, KEY).await.expect(what);
    assert_eq!(again.services().await.unwrap()[0].spec, service, "{what}");
    assert_eq!(again.call_counts().await.unwrap(), (2, 2));
    assert!(
        again
            .check_password("admin", "pw-admin")
            .await
            .unwrap()
            .is_some(),
        "{what}"
    );
    again.close().await.unwrap();
}

/// Users, and their tokens: an API key bound to a virtual server, a login that has expired.
async fn users_and_tokens(registry: &Registry, what: &str) {
    assert!(
        !registry.has_users().await.unwrap(),
        "{what}: empty at first"
    );
    let admin = registry
        .create_user("admin", "pw-admin", true)
        .await
        .unwrap();
    let bob = registry.create_user("bob", "pw-bob", false).await.unwrap();
    assert!(
        admin.is_admin && !bob.is_admin && admin.id != bob.id,
        "{what}"
    );
    assert!(matches!(
        registry.create_user("bob", "other", false).await,
        Err(RegistryError::Conflict(_))
    ));
    assert!(registry.has_users().await.unwrap(), "{what}");
    let checked = registry.check_password("bob", "pw-bob").await.unwrap();
    assert_eq!(checked.map(|user| user.id), Some(bob.id), "{what}");
    assert!(
        registry
            .check_password("bob", "wrong")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        registry
            .check_password("nobody", "x")
            .await
            .unwrap()
            .is_none()
    );

    // Tokens.
    let (key, secret) = registry
        .create_token(bob.id, TokenKind::ApiKey, "ci", None, Some("ops"))
        .await
        .unwrap();
    assert!(secret.starts_with("mcps_"), "{what}");
    assert_eq!(key.username, "bob");
    assert_eq!(key.virtual_server.as_deref(), Some("ops"), "{what}");
    assert_eq!(
        key.secret_hash,
        mcps::security::secret_hash(&secret),
        "{what}"
    );
    let (_login, _) = registry
        .create_token(admin.id, TokenKind::Login, "login", Some(1), None)
        .await
        .unwrap();
    let active = registry.active_tokens().await.unwrap();
    assert_eq!(
        active.iter().map(|token| token.id).collect::<Vec<_>>(),
        [key.id],
        "{what}: the expired login is not active"
    );
    assert_eq!(registry.forget_expired_tokens().await.unwrap(), 1, "{what}");
    assert!(matches!(
        registry
            .revoke_token(key.id, TokenKind::ApiKey, admin.id)
            .await,
        Err(RegistryError::NotFound(_))
    ));
    let revoked = registry
        .revoke_token(key.id, TokenKind::ApiKey, bob.id)
        .await
        .unwrap();
    assert_eq!(revoked.id, key.id);
    assert!(registry.active_tokens().await.unwrap().is_empty(), "{what}");
    let listed = registry.api_keys(bob.id).await.unwrap();
    assert!(listed[0].revoked_at.is_some(), "{what}: {listed:?}");
}

/// Services, with a client secret that is sealed at rest and opened on reading; the service as last changed.
async fn services(registry: &Registry, what: &str) -> UpstreamConfig {
    let spec: UpstreamConfig = serde_json::from_value(serde_json::json!({
        "url": "http://127.0.0.1:9/mcp",
        "oauth": {"client_id": "gateway", "client_secret": "s3cret"}
    }))
    .unwrap();
    let stored = registry.insert_service("remote", &spec).await.unwrap();
    assert_eq!(stored.spec, spec, "{what}");
    assert!(matches!(
        registry.insert_service("remote", &spec).await,
        Err(RegistryError::Conflict(_))
    ));
    let mut changed = spec.clone();
    changed.disabled = true;
    let updated = registry.update_service("remote", &changed).await.unwrap();
    assert!(updated.spec.disabled && updated.updated_at >= stored.created_at);
    assert!(matches!(
        registry.update_service("absent", &spec).await,
        Err(RegistryError::NotFound(_))
    ));
    registry.insert_service("second", &spec).await.unwrap();
    let names: Vec<_> = registry
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|service| service.name)
        .collect();
    assert_eq!(names, ["remote", "second"], "{what}");
    registry.delete_service("second").await.unwrap();
    assert!(matches!(
        registry.delete_service("second").await,
        Err(RegistryError::NotFound(_))
    ));
    changed
}

/// Calls: a batch, pages, filters, counts, and the retention.
async fn calls(registry: &Registry, what: &str) {
    let call = |n: i64, outcome: &str| CallRecord {
        id: 0,
        at: 1_000 + n,
        client: Some("tester".into()),
        principal: (n % 2 == 0).then(|| "bob".into()),
        upstream: Some("echo".into()),
        tool: if n < 3 { "echo__echo" } else { "echo__add" }.into(),
        duration_us: n * 10,
        outcome: outcome.into(),
        error: (outcome == "error").then(|| "it failed".into()),
    };
    let batch = vec![
        call(0, "ok"),
        call(1, "ok"),
        call(2, "cancelled"),
        call(3, "error"),
        call(4, "tool_error"),
    ];
    registry.insert_calls(batch).await.unwrap();
    let bad = vec![call(5, "ok"), call(6, "lost")];
    assert!(
        registry.insert_calls(bad).await.is_err(),
        "{what}: an outcome outside the check"
    );
    assert_eq!(
        registry.call_counts().await.unwrap(),
        (5, 3),
        "{what}: the failed batch left nothing"
    );
    let page = registry
        .calls(CallFilter {
            limit: 2,
            ..CallFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.calls.iter().map(|call| call.at).collect::<Vec<_>>(),
        [1004, 1003]
    );
    let rest = registry
        .calls(CallFilter {
            limit: 10,
            before: page.next,
            ..CallFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.calls.len(), 3, "{what}");
    assert!(rest.next.is_none());
    let errors = registry
        .calls(CallFilter {
            limit: 10,
            tool: Some("echo__add".into()),
            outcome: Some("error".into()),
            since: Some(1_003),
            ..CallFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(errors.calls.len(), 1, "{what}");
    assert_eq!(errors.calls[0].error.as_deref(), Some("it failed"));
    assert_eq!(errors.calls[0].principal, None);
    assert_eq!(errors.calls[0].duration_us, 30);
    let bobs = registry
        .calls(CallFilter {
            limit: 10,
            principal: Some("bob".into()),
            ..CallFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        bobs.calls.iter().map(|call| call.at).collect::<Vec<_>>(),
        [1004, 1002, 1000],
        "{what}: one user's calls"
    );
    // The retention: calls before a time go, in batches smaller than what they delete.
    assert_eq!(
        registry.forget_calls_before(1_003, 2).await.unwrap(),
        3,
        "{what}"
    );
    assert_eq!(registry.call_counts().await.unwrap(), (2, 2), "{what}");
    assert_eq!(registry.forget_calls_before(1_003, 2).await.unwrap(), 0);
}

/// Sealed OAuth credentials, per upstream and principal.
async fn oauth_credentials(registry: &Registry, what: &str) {
    registry
        .save_oauth_credentials("remote", "", "sealed-1".into())
        .await
        .unwrap();
    registry
        .save_oauth_credentials("remote", "", "sealed-2".into())
        .await
        .unwrap();
    registry
        .save_oauth_credentials("remote", "key:7", "theirs".into())
        .await
        .unwrap();
    assert_eq!(
        registry.oauth_credentials("remote", "").await.unwrap(),
        Some("sealed-2".into()),
        "{what}: replaced"
    );
    assert_eq!(
        registry
            .clear_principal_oauth_credentials("key:7")
            .await
            .unwrap(),
        1
    );
    registry
        .clear_oauth_credentials("remote", "")
        .await
        .unwrap();
    assert_eq!(
        registry.oauth_credentials("remote", "").await.unwrap(),
        None
    );
}

/// Uploads, never replaced.
async fn uploads(registry: &Registry, what: &str) {
    assert!(
        registry
            .save_upload("a.bin", &[0, 1, 255], 1_000)
            .await
            .unwrap(),
        "{what}"
    );
    assert!(
        !registry
            .save_upload("a.bin", b"other", 1_001)
            .await
            .unwrap(),
        "{what}: not replaced"
    );
    assert_eq!(registry.upload_names().await.unwrap(), ["a.bin"]);
    assert_eq!(
        registry.upload("a.bin").await.unwrap(),
        Some(vec![0, 1, 255]),
        "{what}"
    );
    assert_eq!(registry.upload("b.bin").await.unwrap(), None, "{what}");
}

/// Client sessions shared by the gateways.
async fn sessions(registry: &Registry, what: &str) {
    let (one, two) = (ONE, TWO);
    registry
        .save_session(one, Some(7), r#"{"protocolVersion":"2025-11-25"}"#, 1_000)
        .await
        .unwrap();
    registry.save_session(two, None, "{}", 1_000).await.unwrap();
    registry.set_session_log_level(one, "debug").await.unwrap();
    let stored = registry.session(one, 1_000).await.unwrap().expect(what);
    assert_eq!(
        stored,
        StoredSession {
            credential: Some(7),
            initialize: r#"{"protocolVersion":"2025-11-25"}"#.into(),
            log_level: Some("debug".into()),
        },
        "{what}"
    );
    assert_eq!(
        registry.session(one, 1_001).await.unwrap(),
        None,
        "{what}: not used since"
    );
    let ids = [one, two, "gone"].map(Arc::<str>::from);
    let mut touched = registry.touch_sessions(&ids[..1], 2_000).await.unwrap();
    touched.sort();
    assert_eq!(touched, [one], "{what}");
    // Marked used earlier than it was: it keeps the later time.
    registry.touch_sessions(&ids[..1], 1_200).await.unwrap();
    assert!(
        registry.session(one, 2_000).await.unwrap().is_some(),
        "{what}: still used at 2000"
    );
    let mut stored = registry.sessions_stored(&ids).await.unwrap();
    stored.sort();
    assert_eq!(stored, [one, two], "{what}");
    assert!(
        !registry
            .forget_session_unused_since(one, 1_000)
            .await
            .unwrap(),
        "{what}: used since"
    );
}

/// The sessions' resource subscriptions, each held by one gateway on a lease; then the sessions end, and their subscriptions with them.
async fn subscriptions(registry: &Registry, what: &str) {
    let (one, two) = (ONE, TWO);
    let ids = [one, two, "gone"].map(Arc::<str>::from);
    let kept = |session: &str, uri: &str| KeptSubscription {
        session: session.into(),
        uri: uri.into(),
    };
    assert!(
        registry
            .hold_subscription(one, "x://a", "gw-1", 1_000)
            .await
            .unwrap(),
        "{what}: held"
    );
    assert!(
        registry
            .hold_subscription(two, "x://a", "gw-1", 1_000)
            .await
            .unwrap(),
        "{what}: held"
    );
    assert!(
        registry
            .hold_subscription(one, "x://b", "gw-2", 1_000)
            .await
            .unwrap(),
        "{what}: held"
    );
    assert!(
        !registry
            .hold_subscription("not-stored", "x://a", "gw-1", 1_000)
            .await
            .unwrap(),
        "{what}: a subscription of a session not stored"
    );
    let mut held = registry.renew_subscriptions("gw-1", 1_100).await.unwrap();
    held.sort();
    assert_eq!(held, [kept(one, "x://a"), kept(two, "x://a")], "{what}");
    // gw-2 stopped renewing: its lease lapses, and one gateway takes it over.
    assert_eq!(
        registry
            .take_lapsed_subscriptions("gw-3", 1_200, 1_050)
            .await
            .unwrap(),
        [kept(one, "x://b")],
        "{what}"
    );
    assert!(
        registry
            .take_lapsed_subscriptions("gw-4", 1_200, 1_050)
            .await
            .unwrap()
            .is_empty(),
        "{what}: taken once"
    );
    assert!(
        registry
            .renew_subscriptions("gw-2", 1_300)
            .await
            .unwrap()
            .is_empty()
    );
    // Released by its holder (and only by it): the next to look takes it.
    registry
        .release_subscription(one, "x://b", "gw-1")
        .await
        .unwrap();
    registry
        .release_subscription(one, "x://b", "gw-3")
        .await
        .unwrap();
    assert_eq!(
        registry
            .take_lapsed_subscriptions("gw-4", 1_300, 1_050)
            .await
            .unwrap(),
        [kept(one, "x://b")],
        "{what}"
    );
    // Subscribed again elsewhere: the subscription moves there.
    assert!(
        registry
            .hold_subscription(one, "x://a", "gw-4", 1_300)
            .await
            .unwrap(),
        "{what}: held"
    );
    assert_eq!(
        registry.renew_subscriptions("gw-1", 1_400).await.unwrap(),
        [kept(two, "x://a")],
        "{what}"
    );
    registry.drop_subscription(one, "x://b").await.unwrap();
    registry.release_subscriptions("gw-4").await.unwrap();
    assert_eq!(
        registry
            .take_lapsed_subscriptions("gw-5", 1_500, 1)
            .await
            .unwrap(),
        [kept(one, "x://a")],
        "{what}: the dropped one is gone"
    );

    assert_eq!(registry.forget_idle_sessions(1_500).await.unwrap(), 1);
    assert_eq!(registry.sessions_stored(&ids).await.unwrap(), [one]);
    assert!(
        registry
            .renew_subscriptions("gw-1", 1_600)
            .await
            .unwrap()
            .is_empty(),
        "{what}: a session's subscriptions end with it"
    );
    assert!(registry.forget_session(one).await.unwrap(), "{what}");
    assert!(!registry.forget_session(one).await.unwrap(), "{what}");
}

/// Many sessions at once, past one statement's share.
async fn many_sessions(registry: &Registry) {
    let many: Vec<Arc<str>> = (0..600)
        .map(|n| format!("00000000-0000-4000-8000-{n:012}").into())
        .collect();
    for id in &many {
        registry.save_session(id, None, "{}", 3_000).await.unwrap();
    }
    assert_eq!(
        registry.touch_sessions(&many, 4_000).await.unwrap().len(),
        600
    );
    assert_eq!(registry.forget_idle_sessions(4_001).await.unwrap(), 600);
}
