//! The schema, as numbered migrations, for SQLite and for PostgreSQL. Append new ones to both
//! lists; never edit one that has shipped (databases in the field record how far they got:
//! SQLite in `user_version`, PostgreSQL in the table `mcps_migrations`).

use rusqlite_migration::{M, Migrations};

const MIGRATIONS: &[M<'static>] = &[
    M::up(
    "
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    -- Login tokens and API keys: only a SHA-256 of the secret is kept.
    CREATE TABLE tokens (
        id           INTEGER PRIMARY KEY,
        user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind         TEXT NOT NULL CHECK (kind IN ('login', 'api_key')),
        name         TEXT NOT NULL,
        secret_hash  BLOB NOT NULL UNIQUE,
        hint         TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER
    );
    -- Services registered through the API; `spec` is the upstream entry as JSON.
    CREATE TABLE services (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE calls (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        client      TEXT,
        principal   TEXT,
        upstream    TEXT,
        tool        TEXT NOT NULL,
        duration_us INTEGER NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'tool_error', 'input_required', 'error')),
        error       TEXT
    );
    CREATE INDEX calls_at ON calls(at);
    CREATE INDEX calls_tool ON calls(tool, at);
    CREATE INDEX calls_upstream ON calls(upstream, at);
    ",
    ),
    // An API key bound to a virtual server sees and calls only that server's tools.
    M::up("ALTER TABLE tokens ADD COLUMN virtual_server TEXT;"),
    // A call its client cancelled counts as `cancelled`, not as an upstream's `error`. SQLite
    // cannot change a CHECK constraint in place: the table is copied into a new one.
    M::up(
    "
    CREATE TABLE calls_next (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        client      TEXT,
        principal   TEXT,
        upstream    TEXT,
        tool        TEXT NOT NULL,
        duration_us INTEGER NOT NULL,
        outcome     TEXT NOT NULL
                    CHECK (outcome IN ('ok', 'tool_error', 'input_required', 'cancelled', 'error')),
        error       TEXT
    );
    INSERT INTO calls_next SELECT id, at, client, principal, upstream, tool, duration_us, outcome, error FROM calls;
    DROP TABLE calls;
    ALTER TABLE calls_next RENAME TO calls;
    CREATE INDEX calls_at ON calls(at);
    CREATE INDEX calls_tool ON calls(tool, at);
    CREATE INDEX calls_upstream ON calls(upstream, at);
    ",
    ),
    // What the gateway holds to sign in to an OAuth upstream (tokens, the client it
    // registered), sealed: the database alone reveals no secret. `principal` is '' for the
    // gateway's own (shared) credentials.
    M::up(
    "
    CREATE TABLE oauth_credentials (
        upstream   TEXT NOT NULL,
        principal  TEXT NOT NULL,
        sealed     TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (upstream, principal)
    );
    ",
    ),
    // Session-era client sessions, so that any gateway on the database can continue one
    // (see `downstream/sessions/shared.rs`): the client's `initialize`, the credential it is
    // bound to, its log level, and when it was last used anywhere.
    M::up(
    "
    CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        credential  INTEGER,
        initialize  TEXT NOT NULL,
        log_level   TEXT,
        opened_at   INTEGER NOT NULL,
        active_at   INTEGER NOT NULL
    );
    CREATE INDEX sessions_active ON sessions(active_at);
    ",
    ),
    // A client's answer too large for a notification, on its way to the gateway that asked
    // (see `registry/answers.rs`).
    M::up(
    "
    CREATE TABLE passed_answers (
        id      INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        body    TEXT NOT NULL,
        at      INTEGER NOT NULL
    );
    ",
    ),
    // Parcels between gateways of other kinds than answers: a 2026-07-28 client's retry of a
    // call parked on another gateway, and that gateway's reply (see `registry/answers.rs`).
    M::up("ALTER TABLE passed_answers ADD COLUMN kind TEXT NOT NULL DEFAULT 'answer';"),
    // Sessions' resource subscriptions, each held upstream by one gateway on a lease it
    // renews, so that another takes it over when that gateway stops (see
    // `gateway/kept_subscriptions.rs`).
    M::up(
    "
    CREATE TABLE session_subscriptions (
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        uri     TEXT NOT NULL,
        holder  TEXT NOT NULL,
        held_at INTEGER NOT NULL,
        PRIMARY KEY (session, uri)
    );
    CREATE INDEX session_subscriptions_holder ON session_subscriptions(holder);
    CREATE INDEX session_subscriptions_held ON session_subscriptions(held_at);
    ",
    ),
    // Files uploaded through the API, so that every gateway on the database has them in its
    // own `uploads/` (see `admin/uploads.rs`).
    M::up(
    "
    CREATE TABLE uploads (
        name        TEXT PRIMARY KEY,
        content     BLOB NOT NULL,
        uploaded_at INTEGER NOT NULL
    );
    ",
    ),
    M::up(
    "
    -- Tool calls run as tasks (SEP-2663): what `tasks/get` answers, wherever it is asked.
    -- `detail` is the JSON of the result, the error or the input requests; `holder` the tag
    -- of the gateway running it, which renews `held_at` while it does.
    CREATE TABLE tasks (
        id          TEXT PRIMARY KEY,
        owner       TEXT,
        holder      TEXT NOT NULL,
        held_at     INTEGER NOT NULL,
        status      TEXT NOT NULL
                    CHECK (status IN ('working', 'input_required', 'completed', 'failed', 'cancelled')),
        detail      TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    );
    CREATE INDEX tasks_expires ON tasks(expires_at);
    CREATE INDEX tasks_holder ON tasks(holder, status);
    ",
    ),
    // A page of calls of one tool or upstream is read newest first (`ORDER BY id DESC`):
    // indexed by (tool, at), every call of that tool was read and sorted to show the last
    // fifty. SQLite ends each index entry with the rowid (`id`), so an index of the name alone
    // is in the page's order.
    M::up(
    "
    DROP INDEX calls_tool;
    DROP INDEX calls_upstream;
    CREATE INDEX calls_tool ON calls(tool);
    CREATE INDEX calls_upstream ON calls(upstream);
    ",
    ),
    // The calls that did not end `ok`, newest first, without reading the rest: an index of
    // them alone, so that a call that succeeds (nearly all) costs no entry. A query names
    // `outcome != 'ok'` itself to use it (see `calls.rs`): SQLite does not infer it from
    // `outcome = 'error'`.
    M::up("CREATE INDEX calls_failed ON calls(outcome) WHERE outcome != 'ok';"),
];

/// The same migrations in PostgreSQL's dialect, one for one: the same tables, columns and
/// checks, with PostgreSQL's types (`BIGINT` identities, `BOOLEAN`, `BYTEA`).
const POSTGRES: &[&str] = &[
    "
    CREATE TABLE users (
        id            BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
        created_at    BIGINT NOT NULL
    );
    CREATE TABLE tokens (
        id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        user_id      BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        kind         TEXT NOT NULL CHECK (kind IN ('login', 'api_key')),
        name         TEXT NOT NULL,
        secret_hash  BYTEA NOT NULL UNIQUE,
        hint         TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT
    );
    CREATE TABLE services (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE TABLE calls (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at          BIGINT NOT NULL,
        client      TEXT,
        principal   TEXT,
        upstream    TEXT,
        tool        TEXT NOT NULL,
        duration_us BIGINT NOT NULL,
        outcome     TEXT NOT NULL CONSTRAINT calls_outcome
                    CHECK (outcome IN ('ok', 'tool_error', 'input_required', 'error')),
        error       TEXT
    );
    CREATE INDEX calls_at ON calls(at);
    CREATE INDEX calls_tool ON calls(tool, at);
    CREATE INDEX calls_upstream ON calls(upstream, at);
    ",
    "ALTER TABLE tokens ADD COLUMN virtual_server TEXT;",
    "
    ALTER TABLE calls DROP CONSTRAINT calls_outcome;
    ALTER TABLE calls ADD CONSTRAINT calls_outcome
        CHECK (outcome IN ('ok', 'tool_error', 'input_required', 'cancelled', 'error'));
    ",
    "
    CREATE TABLE oauth_credentials (
        upstream   TEXT NOT NULL,
        principal  TEXT NOT NULL,
        sealed     TEXT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (upstream, principal)
    );
    ",
    "
    CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        credential  BIGINT,
        initialize  TEXT NOT NULL,
        log_level   TEXT,
        opened_at   BIGINT NOT NULL,
        active_at   BIGINT NOT NULL
    );
    CREATE INDEX sessions_active ON sessions(active_at);
    ",
    "
    CREATE TABLE passed_answers (
        id      BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        session TEXT NOT NULL,
        body    TEXT NOT NULL,
        at      BIGINT NOT NULL
    );
    ",
    "ALTER TABLE passed_answers ADD COLUMN kind TEXT NOT NULL DEFAULT 'answer';",
    "
    CREATE TABLE session_subscriptions (
        session TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        uri     TEXT NOT NULL,
        holder  TEXT NOT NULL,
        held_at BIGINT NOT NULL,
        PRIMARY KEY (session, uri)
    );
    CREATE INDEX session_subscriptions_holder ON session_subscriptions(holder);
    CREATE INDEX session_subscriptions_held ON session_subscriptions(held_at);
    ",
    "
    CREATE TABLE uploads (
        name        TEXT PRIMARY KEY,
        content     BYTEA NOT NULL,
        uploaded_at BIGINT NOT NULL
    );
    ",
    "
    -- Tool calls run as tasks (SEP-2663): what `tasks/get` answers, wherever it is asked.
    -- `detail` is the JSON of the result, the error or the input requests; `holder` the tag
    -- of the gateway running it, which renews `held_at` while it does.
    CREATE TABLE tasks (
        id          TEXT PRIMARY KEY,
        owner       TEXT,
        holder      TEXT NOT NULL,
        held_at     BIGINT NOT NULL,
        status      TEXT NOT NULL
                    CHECK (status IN ('working', 'input_required', 'completed', 'failed', 'cancelled')),
        detail      TEXT,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL
    );
    CREATE INDEX tasks_expires ON tasks(expires_at);
    CREATE INDEX tasks_holder ON tasks(holder, status);
    ",
    "
    DROP INDEX calls_tool;
    DROP INDEX calls_upstream;
    CREATE INDEX calls_tool ON calls(tool, id);
    CREATE INDEX calls_upstream ON calls(upstream, id);
    ",
    "CREATE INDEX calls_failed ON calls(outcome, id) WHERE outcome <> 'ok';",
];

/// How many migrations there are: the latest schema's number.
pub fn latest() -> usize {
    POSTGRES.len()
}

/// How many migrations the SQLite file at `path` has had; `None` if there is no such file.
/// Reads only: the file is neither created nor changed.
pub fn applied_sqlite(path: &std::path::Path) -> Result<Option<usize>, rusqlite::Error> {
    if !path.exists() {
        return Ok(None);
    }
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let version: i64 = db.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(Some(version.max(0) as usize))
}

/// How many migrations the PostgreSQL database has had (0 before the first). Reads only.
pub async fn applied_postgres(
    client: &tokio_postgres::Client,
) -> Result<usize, tokio_postgres::Error> {
    let known: bool = client
        .query_one("SELECT to_regclass('mcps_migrations') IS NOT NULL", &[])
        .await?
        .get(0);
    if !known {
        return Ok(0);
    }
    let applied: i64 = client
        .query_one("SELECT COALESCE(MAX(version), 0) FROM mcps_migrations", &[])
        .await?
        .get(0);
    Ok(applied.max(0) as usize)
}

/// Brings `db` to the latest schema.
pub fn apply_sqlite(db: &mut rusqlite::Connection) -> Result<(), rusqlite_migration::Error> {
    Migrations::from_slice(MIGRATIONS).to_latest(db)
}

/// Brings the PostgreSQL database to the latest schema. Replicas that start together take
/// turns: the first applies what is pending, in one transaction, and the others find it done.
pub async fn apply_postgres(
    client: &mut tokio_postgres::Client,
) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    // Any constant the gateway alone uses: "mcps" in ASCII.
    transaction
        .execute("SELECT pg_advisory_xact_lock(1835233395)", &[])
        .await?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS mcps_migrations (
                version    BIGINT PRIMARY KEY,
                applied_at BIGINT NOT NULL
            )",
        )
        .await?;
    let applied: i64 = transaction
        .query_one("SELECT COALESCE(MAX(version), 0) FROM mcps_migrations", &[])
        .await?
        .get(0);
    for (version, sql) in (1_i64..).zip(POSTGRES).skip(applied.max(0) as usize) {
        transaction.batch_execute(sql).await?;
        transaction
            .execute(
                "INSERT INTO mcps_migrations (version, applied_at) VALUES ($1, $2)",
                &[&version, &super::now_ms()],
            )
            .await?;
    }
    transaction.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        Migrations::from_slice(MIGRATIONS).validate().unwrap();
    }

    #[test]
    fn both_databases_have_every_migration() {
        assert_eq!(MIGRATIONS.len(), POSTGRES.len());
    }

    #[test]
    fn a_cancelled_call_is_recorded_and_older_calls_are_kept() {
        let mut db = rusqlite::Connection::open_in_memory().unwrap();
        let migrations = Migrations::from_slice(MIGRATIONS);
        // The two migrations before the one that added `cancelled`.
        migrations.to_version(&mut db, 2).unwrap();
        let insert = "INSERT INTO calls (at, tool, duration_us, outcome) VALUES (1, 't', 5, ?1)";
        db.execute(insert, ["ok"]).unwrap();
        assert!(db.execute(insert, ["cancelled"]).is_err(), "refused before");
        apply_sqlite(&mut db).unwrap();
        db.execute(insert, ["cancelled"]).unwrap();
        assert!(db.execute(insert, ["lost"]).is_err(), "still checked");
        let outcomes: Vec<String> = db
            .prepare("SELECT outcome FROM calls ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(outcomes, ["ok", "cancelled"]);
    }
}
