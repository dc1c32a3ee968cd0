//! The registry means the same on SQLite and on PostgreSQL: every kind of row it keeps, run
//! through the same checks on an SQLite file and on a real PostgreSQL server's database.

mod row_kinds;

use crate::common::postgres::{by_socket, column, fresh_database};
use row_kinds::every_row_kind;

use mcps::{
    config::DatabaseLocation,
    registry::{CallRecord, Registry},
};

const KEY: &str = "a test key that seals the registry's secrets";

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
