//! The registry on SQLite: one connection, on a thread of its own (`tokio_rusqlite`), so no
//! query ever blocks the async executor. The file is opened in WAL mode with a busy timeout;
//! a committed row survives the process being killed.
//!
//! A file that is not a healthy SQLite database stops start-up with a message naming it, and
//! is left exactly as it was: the integrity check runs before anything is written. A file as
//! the last clean stop left it is not checked again (`sqlite_clean_stop.rs`).

use std::{borrow::Cow, path::Path, time::Duration};

use rusqlite::types::ValueRef;

use super::{
    RegistryError,
    engine::{Row, Value},
    migrations, sqlite_clean_stop,
};

/// How long a write waits for a lock held by another connection (another `mcps` process on
/// the same file, or a backup tool) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept for reuse.
const STATEMENTS_KEPT: usize = 64;

/// Opens (creating it and its directory on first run) and migrates the database at `path`.
pub async fn open(path: &Path) -> Result<tokio_rusqlite::Connection, RegistryError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| RegistryError::CreateDir {
            path: path.to_owned(),
            source,
        })?;
    }
    let corrupt = |reason: String| RegistryError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    let whole = sqlite_clean_stop::take(path);
    let connection = tokio_rusqlite::Connection::open(path)
        .await
        .map_err(|error| corrupt(error.to_string()))?;
    connection
        .call(move |db| {
            db.busy_timeout(BUSY_TIMEOUT)?;
            if whole {
                // Page one still has to be a database's: a cheap read that fails otherwise.
                return db.query_row("PRAGMA schema_version", [], |_| Ok("ok".to_owned()));
            }
            // Read-only, before anything writes: a damaged file must stay as it is.
            db.query_row("PRAGMA quick_check", [], |row| row.get::<_, String>(0))
        })
        .await
        .map_err(|error| corrupt(error.to_string()))
        .and_then(|check| match check.as_str() {
            "ok" => Ok(()),
            problem => Err(corrupt(problem.to_owned())),
        })?;
    connection
        .call(|db| -> Result<(), String> {
            let pragmas = || -> rusqlite::Result<()> {
                db.pragma_update(None, "journal_mode", "WAL")?;
                // With WAL, NORMAL loses nothing when the process dies, only on power loss.
                db.pragma_update(None, "synchronous", "NORMAL")?;
                db.pragma_update(None, "foreign_keys", true)
            };
            pragmas().map_err(|error| error.to_string())?;
            // Room for every statement the gateway runs (rusqlite keeps 16): the call log
            // alone has seven, one per size of its inserts.
            db.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
            migrations::apply_sqlite(db).map_err(|error| error.to_string())
        })
        .await
        .map_err(|error| RegistryError::Migrate {
            place: path.display().to_string(),
            reason: match error {
                tokio_rusqlite::Error::Error(reason) => reason,
                other => other.to_string(),
            },
        })?;
    Ok(connection)
}

/// Merges the write-ahead log into the database file and closes the connection, so that the
/// file alone holds every row (a backup that copies only `mcps.db` loses nothing).
pub async fn close(connection: tokio_rusqlite::Connection) -> Result<(), RegistryError> {
    let file = run(&connection, |db| {
        // TRUNCATE also empties the `-wal` file, so a stale one cannot confuse a copy.
        db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(db.path().map(std::path::PathBuf::from))
    })
    .await?;
    // SQLite also checkpoints when its last connection closes; the explicit checkpoint above
    // reports a failure (a reader holding the log) instead of hiding it.
    connection.close().await.map_err(RegistryError::from)?;
    if let Some(file) = file
        && let Err(error) = sqlite_clean_stop::leave(&file)
    {
        // The next start checks the whole file, as after a crash.
        tracing::warn!(%error, "cannot mark the database as closed cleanly");
    }
    Ok(())
}

pub async fn rows(
    connection: &tokio_rusqlite::Connection,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<Row>, RegistryError> {
    let sql = numbered(sql).into_owned();
    run(connection, move |db| {
        let mut statement = db.prepare_cached(&sql)?;
        let columns = statement.column_count();
        let mut rows = statement.query(rusqlite::params_from_iter(values))?;
        let mut answered = Vec::new();
        while let Some(row) = rows.next()? {
            let row = (0..columns)
                .map(|column| row.get_ref(column).map(value_of))
                .collect::<rusqlite::Result<_>>()?;
            answered.push(Row(row));
        }
        Ok(answered)
    })
    .await
}

pub async fn execute(
    connection: &tokio_rusqlite::Connection,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, RegistryError> {
    let sql = numbered(sql).into_owned();
    run(connection, move |db| {
        let changed = db
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(changed as u64)
    })
    .await
}

/// Runs each statement with its values, all in one transaction.
pub async fn execute_all(
    connection: &tokio_rusqlite::Connection,
    statements: Vec<(String, Vec<Value>)>,
) -> Result<(), RegistryError> {
    run(connection, move |db| {
        let transaction = db.transaction()?;
        for (sql, values) in statements {
            transaction
                .prepare_cached(&numbered(&sql))?
                .execute(rusqlite::params_from_iter(values))?;
        }
        transaction.commit()?;
        Ok(())
    })
    .await
}

/// Runs `query` on the database thread.
async fn run<T, F>(connection: &tokio_rusqlite::Connection, query: F) -> Result<T, RegistryError>
where
    F: FnOnce(&mut rusqlite::Connection) -> Result<T, RegistryError> + Send + 'static,
    T: Send + 'static,
{
    connection.call(query).await.map_err(|error| match error {
        tokio_rusqlite::Error::Error(error) => error,
        other => RegistryError::Sql(other.to_string()),
    })
}

/// `sql` with PostgreSQL's `$1` parameters written as SQLite's `?1`. (SQLite reads `$1` as a
/// parameter *named* `$1`, numbered by where it first appears, not by its digits.)
fn numbered(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    // Byte by byte: it runs for every statement of the call history, and one ASCII byte
    // for another leaves the text valid UTF-8.
    let mut out = sql.as_bytes().to_vec();
    for at in 1..out.len() {
        if out[at - 1] == b'$' && out[at].is_ascii_digit() {
            out[at - 1] = b'?';
        }
    }
    String::from_utf8(out).map_or(Cow::Borrowed(sql), Cow::Owned)
}

fn value_of(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(value) => Value::Int(value),
        // The schema has no REAL column; a float would only come from an expression.
        ValueRef::Real(value) => Value::Int(value as i64),
        ValueRef::Text(text) => Value::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(bytes) => Value::Bytes(bytes.to_owned()),
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(value) => ValueRef::Integer(*value),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
            Self::Bytes(bytes) => ValueRef::Blob(bytes),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn parameters_keep_their_numbers() {
        assert_eq!(
            numbered("UPDATE t SET a = $2 WHERE id = $1"),
            "UPDATE t SET a = ?2 WHERE id = ?1"
        );
        assert_eq!(numbered("SELECT 1"), "SELECT 1");
    }
}
