//! The real PostgreSQL server `tests/postgres.sh` starts: each test gets a database of its own.

use std::sync::atomic::{AtomicU32, Ordering};

/// The server's `postgres` database, as `tests/postgres.sh` exported it.
fn server_url() -> String {
    std::env::var("MCPS_TEST_POSTGRES_URL").expect(
        "MCPS_TEST_POSTGRES_URL is not set: run the tests with `tests/run.sh`, or `source tests/postgres.sh` first",
    )
}

/// A new, empty database on the test server; its URL (by TCP, with the password).
pub async fn fresh_database() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "mcps_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let server = server_url();
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create a test database");
    let base = server
        .strip_suffix("/postgres")
        .expect("the test server's URL ends in /postgres");
    format!("{base}/{name}")
}

/// The same database as `url`, reached by the server's Unix socket (`?host=/dir`).
pub fn by_socket(url: &str) -> String {
    let socket = std::env::var("MCPS_TEST_POSTGRES_SOCKET").expect("MCPS_TEST_POSTGRES_SOCKET");
    let parsed = url::Url::parse(url).expect("a URL");
    format!(
        "postgresql://{}:{}@/{}?host={socket}&port={}",
        parsed.username(),
        parsed.password().unwrap_or_default(),
        parsed.path().trim_start_matches('/'),
        parsed.port().unwrap_or(5432)
    )
}

/// Runs `sql` on the database at `url` and returns the first column of each row, as text.
pub async fn column(url: &str, sql: &str) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to the test database");
    tokio::spawn(connection);
    client
        .simple_query(sql)
        .await
        .expect("query the test database")
        .into_iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => {
                Some(row.get(0).unwrap_or_default().to_owned())
            }
            _ => None,
        })
        .collect()
}
