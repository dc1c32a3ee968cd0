//! The schema, as numbered migrations. Append new ones; never edit one that has shipped
//! (databases in the field record how far they got in `user_version`).

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
];

/// Brings `db` to the latest schema.
pub fn apply(db: &mut rusqlite::Connection) -> Result<(), rusqlite_migration::Error> {
    Migrations::from_slice(MIGRATIONS).to_latest(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        Migrations::from_slice(MIGRATIONS).validate().unwrap();
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
        apply(&mut db).unwrap();
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
