//! The registry means the same on SQLite and on PostgreSQL: every kind of row it keeps, run
//! through the same checks on an SQLite file and on a real PostgreSQL server's database.

use crate::common::postgres::{by_socket, column, fresh_database};

use mcps::{
    config::{DatabaseLocation, UpstreamConfig},
    registry::{
        CallFilter, CallRecord, KeptSubscription, Registry, RegistryError, StoredSession, TokenKind,
    },
};

const KEY: &str = "a test key that seals the registry's secrets";

/// Runs every check on the registry at `location`; `what` names it in failures.
async fn every_row_kind(location: &DatabaseLocation, what: &str) {
    let registry = Registry::open(location, KEY).await.expect(what);

    // Users.
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

    // Tokens: an API key bound to a virtual server, a login that has expired.
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

    // Services, with a client secret that is sealed at rest and opened on reading.
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

    // Calls: a batch, pages, filters, counts.
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

    // Sealed OAuth credentials, per upstream and principal.
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

    // Uploads, never replaced.
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

    // Client sessions shared by the gateways.
    let (one, two) = (
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    );
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
    let ids: Vec<std::sync::Arc<str>> = vec![one.into(), two.into(), "gone".into()];
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

    // Their resource subscriptions, each held by one gateway on a lease.
    let kept = |session: &str, uri: &str| KeptSubscription {
        session: session.into(),
        uri: uri.into(),
    };
    registry
        .hold_subscription(one, "x://a", "gw-1", 1_000)
        .await
        .unwrap();
    registry
        .hold_subscription(two, "x://a", "gw-1", 1_000)
        .await
        .unwrap();
    registry
        .hold_subscription(one, "x://b", "gw-2", 1_000)
        .await
        .unwrap();
    assert!(
        registry
            .hold_subscription("not-stored", "x://a", "gw-1", 1_000)
            .await
            .is_err(),
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
    registry
        .hold_subscription(one, "x://a", "gw-4", 1_300)
        .await
        .unwrap();
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
    // Many at once, past one statement's share.
    let many: Vec<std::sync::Arc<str>> = (0..600)
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
    registry.close().await.unwrap();

    // Opened again: migrations already applied, everything kept.
    let again = Registry::open(location, KEY).await.expect(what);
    assert_eq!(again.services().await.unwrap()[0].spec, changed, "{what}");
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

#[tokio::test]
async fn on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let location = DatabaseLocation::Sqlite(dir.path().join("data/mcps.db"));
    every_row_kind(&location, "SQLite").await;
}

#[tokio::test]
async fn on_postgresql_by_tcp() {
    let url = fresh_database().await;
    every_row_kind(&DatabaseLocation::Postgres(url.clone()), "PostgreSQL").await;
    // The schema's version is where PostgreSQL keeps it.
    let versions = column(&url, "SELECT version FROM mcps_migrations ORDER BY version").await;
    let every: Vec<String> = (1..=crate::common::migrations().await)
        .map(|version| version.to_string())
        .collect();
    assert_eq!(versions, every);
    // A page of one tool's or one upstream's calls, or of the failed calls, is read from its
    // index in the page's order (newest first), not every such call read and sorted. (The
    // failed calls' page names `outcome != 'ok'` as the registry's query does.)
    for (index, filter) in [
        ("calls_tool", "tool = 'echo__add'"),
        ("calls_upstream", "upstream = 'echo'"),
        ("calls_failed", "outcome = 'error' AND outcome != 'ok'"),
    ] {
        let plan = column(
            &url,
            &format!(
                "SET enable_sort = off; SET enable_seqscan = off; \
                 EXPLAIN SELECT * FROM calls WHERE {filter} ORDER BY id DESC LIMIT 51"
            ),
        )
        .await
        .join("\n");
        assert!(plan.contains(index), "{plan}");
        assert!(!plan.contains("Sort"), "{plan}");
    }
}

#[tokio::test]
async fn on_postgresql_by_unix_socket_without_tls() {
    let url = by_socket(&fresh_database().await) + "&sslmode=disable";
    every_row_kind(&DatabaseLocation::Postgres(url), "PostgreSQL by socket").await;
}

/// Replicas that start together on a new database migrate it once, and all open it.
#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let location = DatabaseLocation::Postgres(fresh_database().await);
    let opened = futures::future::join_all((0..4).map(|_| Registry::open(&location, KEY))).await;
    for registry in opened {
        registry.expect("every replica opens the database");
    }
    let DatabaseLocation::Postgres(url) = &location else {
        unreachable!()
    };
    assert_eq!(
        column(url, "SELECT COUNT(*) FROM mcps_migrations").await,
        [crate::common::migrations().await.to_string()]
    );
}

/// A server that is not there: a clear error naming the database without its password.
#[tokio::test]
async fn an_unreachable_server_is_named_without_its_password() {
    let port = crate::common::free_port();
    let url = format!("postgresql://mcps:hunter2@127.0.0.1:{port}/mcps?connect_timeout=2");
    let error = Registry::open(&DatabaseLocation::Postgres(url), KEY)
        .await
        .err()
        .expect("no server listens there")
        .to_string();
    assert!(
        error.contains(&format!("postgresql://mcps@127.0.0.1:{port}/mcps")),
        "{error}"
    );
    assert!(!error.contains("hunter2"), "{error}");
}

/// On PostgreSQL the sealing key cannot be made up by one replica.
#[tokio::test]
async fn postgresql_needs_a_secret_key() {
    let location = DatabaseLocation::Postgres(fresh_database().await);
    let error = Registry::open(&location, "").await.err().expect("refused");
    assert!(error.to_string().contains("database.secret_key"), "{error}");
}

/// TLS as libpq reads `sslmode`: encrypted without a check by default and with `require`;
/// `verify-ca` checks the authority, `verify-full` the authority and the host name, each
/// against `sslrootcert` (the test server's certificate names `localhost`, signed by an
/// authority of its own); anything that fails the check is refused, saying why.
#[tokio::test]
async fn tls_follows_libpq_sslmode_and_sslrootcert() {
    let url = fresh_database().await;
    let authority = std::env::var("MCPS_TEST_POSTGRES_CA").expect("MCPS_TEST_POSTGRES_CA");
    let by_name = url.replace("@127.0.0.1:", "@localhost:");
    let open = async |url: String| Registry::open(&DatabaseLocation::Postgres(url), KEY).await;

    let mut opened = Vec::new();
    for url in [
        url.clone(),
        format!("{url}?sslmode=require"),
        format!("{url}?sslmode=verify-ca&sslrootcert={authority}"),
        format!("{url}?sslmode=require&sslrootcert={authority}"),
        format!("{by_name}?sslmode=verify-full&sslrootcert={authority}"),
    ] {
        let registry = open(url.clone()).await;
        opened.push(registry.unwrap_or_else(|error| panic!("{url}: {error}")));
    }
    let name = url.rsplit('/').next().unwrap();
    let encrypted = column(
        &url,
        &format!(
            "SELECT COUNT(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
            WHERE datname = '{name}' AND ssl"
        ),
    )
    .await;
    assert!(
        encrypted[0].parse::<u32>().unwrap() >= 5,
        "every registry's connections are encrypted: {encrypted:?}"
    );

    for (url, why) in [
        (
            format!("{url}?sslmode=verify-full&sslrootcert={authority}"),
            "the certificate names localhost, not the address",
        ),
        (
            format!("{by_name}?sslmode=verify-full"),
            "the public roots did not sign it",
        ),
        (
            format!("{by_name}?sslmode=verify-ca&sslrootcert=/nowhere/ca.pem"),
            "no such file",
        ),
        (format!("{url}?sslmode=verify"), "no such mode"),
    ] {
        let Err(error) = open(url.clone()).await else {
            panic!("{why}: {url} was accepted");
        };
        let text = error.to_string();
        assert!(
            text.contains("certificate")
                || text.contains("sslrootcert /nowhere/ca.pem")
                || text.contains("sslmode=verify is not one of"),
            "{why}: {text}"
        );
        eprintln!("{why}: {text}");
        let password = url::Url::parse(&url)
            .unwrap()
            .password()
            .unwrap()
            .to_owned();
        assert!(!text.contains(&password), "the password is shown: {text}");
    }
}

/// `copy_to` with a history longer than its pages: every call arrives, copying again changes
/// nothing, and a target row that is not the source's is found on any page and refused.
#[tokio::test]
async fn a_long_history_is_copied_and_compared_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let source = Registry::open(
        &DatabaseLocation::Sqlite(dir.path().join("data/mcps.db")),
        KEY,
    )
    .await
    .unwrap();
    let call = |n: i64| CallRecord {
        id: 0,
        at: n,
        client: None,
        principal: None,
        upstream: Some("fx".into()),
        tool: "fx__echo".into(),
        duration_us: n,
        outcome: "ok".into(),
        error: None,
    };
    source
        .insert_calls((0..4_500).map(call).collect())
        .await
        .unwrap();
    let url = fresh_database().await;
    let target = Registry::open(&DatabaseLocation::Postgres(url.clone()), KEY)
        .await
        .unwrap();
    for _ in 0..2 {
        let copied = source.copy_to(&target).await.expect("copied");
        assert!(copied.tables.contains(&("calls", 4_500)), "{copied:?}");
    }
    // A row changed in the target's second page: no longer the source's.
    column(&url, "UPDATE calls SET tool = 'other' WHERE id = 3000").await;
    let error = source.copy_to(&target).await.expect_err("refused");
    assert!(
        error.to_string().contains("the target's calls has 1 rows"),
        "{error}"
    );
}
