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
}
