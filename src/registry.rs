//! The embedded SQLite registry: services added at run time, users, tokens, the call log and
//! the (sealed) credentials of OAuth upstreams.
//!
//! One connection, on a thread of its own (`tokio_rusqlite`), so no query ever blocks the
//! async executor. The file is opened in WAL mode with a busy timeout; a committed row
//! survives the process being killed. Schema changes are numbered migrations
//! ([`migrations`]), applied at start-up.
//!
//! A file that is not a healthy SQLite database stops start-up with a message naming it, and
//! is left exactly as it was: the integrity check runs before anything is written.

mod call_log;
mod calls;
mod migrations;
mod oauth;
mod services;
mod tokens;
mod users;

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

pub use call_log::CallLog;
pub use calls::{CallFilter, CallPage, CallRecord};
pub use services::StoredService;
pub use tokens::{StoredToken, TokenKind};
pub use users::User;

use crate::security::Sealer;

/// How long a write waits for a lock held by another connection (another `mcps` process on
/// the same file, or a backup tool) before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the registry failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error("cannot create the directory of database {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "database {path} is unreadable or corrupt ({reason}); it was left untouched: restore it from a backup or move it away"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot migrate database {path}: {reason}")]
    Migrate { path: PathBuf, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// Too much work queued (password checks); worth retrying in a moment.
    #[error("{0}")]
    Busy(String),
    #[error("database error: {0}")]
    Sql(String),
    /// The key that seals secrets in the database (`database.secret_key` or its key file).
    #[error("database.secret_key: {0}")]
    Key(#[from] crate::security::SealError),
}

impl From<tokio_rusqlite::Error<rusqlite::Error>> for RegistryError {
    fn from(error: tokio_rusqlite::Error<rusqlite::Error>) -> Self {
        match error {
            tokio_rusqlite::Error::Error(error) => Self::Sql(error.to_string()),
            other => Self::Sql(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for RegistryError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sql(error.to_string())
    }
}

/// The registry database.
#[derive(Clone)]
pub struct Registry {
    connection: tokio_rusqlite::Connection,
    path: PathBuf,
    /// Seals the secrets kept in the database (OAuth credentials, client secrets).
    sealer: Sealer,
}

impl Registry {
    /// Opens (creating it and its directory on first run) and migrates the database at
    /// `path`; its secrets are sealed with `secret_key`, or the key file beside it when that
    /// is empty (see [`Sealer::for_database`]).
    pub async fn open(path: &Path, secret_key: &str) -> Result<Self, RegistryError> {
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
        let connection = tokio_rusqlite::Connection::open(path)
            .await
            .map_err(|error| corrupt(error.to_string()))?;
        connection
            .call(|db| {
                db.busy_timeout(BUSY_TIMEOUT)?;
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
                migrations::apply(db).map_err(|error| error.to_string())
            })
            .await
            .map_err(|error| RegistryError::Migrate {
                path: path.to_owned(),
                reason: match error {
                    tokio_rusqlite::Error::Error(reason) => reason,
                    other => other.to_string(),
                },
            })?;
        let sealer = Sealer::for_database(secret_key, path)?;
        Ok(Self {
            connection,
            path: path.to_owned(),
            sealer,
        })
    }

    /// What seals the secrets kept in the database.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Merges the write-ahead log into the database file and closes the connection, so that
    /// the file alone holds every row (a backup that copies only `mcps.db` loses nothing).
    /// Every clone is closed with it: later queries fail. Called on every clean stop.
    pub async fn close(self) -> Result<(), RegistryError> {
        self.run(|db| {
            // TRUNCATE also empties the `-wal` file, so a stale one cannot confuse a copy.
            db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await?;
        // SQLite also checkpoints when its last connection closes; the explicit checkpoint
        // above reports a failure (a reader holding the log) instead of hiding it.
        self.connection.close().await.map_err(RegistryError::from)
    }

    /// Runs `query` on the database thread.
    async fn run<T, F>(&self, query: F) -> Result<T, RegistryError>
    where
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, RegistryError> + Send + 'static,
        T: Send + 'static,
    {
        self.connection
            .call(query)
            .await
            .map_err(|error| match error {
                tokio_rusqlite::Error::Error(error) => error,
                other => RegistryError::Sql(other.to_string()),
            })
    }
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
