//! The registry: services added at run time, users, tokens, the call log and the (sealed)
//! credentials of OAuth upstreams. On SQLite, embedded, by default ([`sqlite`]); on
//! PostgreSQL for teams that run several gateways on one database ([`postgres`]). Schema
//! changes are numbered migrations ([`migrations`]), applied at start-up.

mod answers;
mod call_log;
mod calls;
mod changes;
mod copy;
pub(crate) mod engine;
mod migrations;
mod oauth;
mod postgres;
mod postgres_tls;
mod services;
mod sessions;
mod sqlite;
mod sqlite_clean_stop;
mod subscriptions;
mod tasks;
mod tokens;
mod uploads;
mod users;

use std::{
    path::PathBuf,
    time::{SystemTime, UNIX_EPOCH},
};

pub use answers::{ParcelKind, PassedAnswer, this_gateway};
pub use call_log::{CallLog, prune as prune_calls};
pub use calls::{CallFilter, CallPage, CallRecord};
pub use changes::{Change, Changes, Pending, SessionNotice, next_announcement};
pub use copy::Copied;
pub use oauth::oauth_seal_context;
pub use services::StoredService;
pub use sessions::StoredSession;
pub use subscriptions::KeptSubscription;
pub use tasks::StoredTask;
pub use tokens::{SECRET_PREFIX, StoredToken, TokenKind};
pub use users::User;

use crate::{config::DatabaseLocation, security::Sealer};
use engine::Engine;

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
    #[error("cannot migrate database {place}: {reason}")]
    Migrate { place: String, reason: String },
    #[error("cannot connect to database {place}: {reason}")]
    Unreachable { place: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    /// Too much work queued (password checks); worth retrying in a moment.
    #[error("{0}")]
    Busy(String),
    #[error("database error: {0}")]
    Sql(String),
    /// Gateways on SQLite share no channel to pass messages on.
    #[error("{0}")]
    NoChannel(String),
    #[error("database.secret_key: {}", crate::config::POSTGRES_NEEDS_SECRET_KEY)]
    NoSecretKey,
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
    engine: Engine,
    /// The file, or the server and database (without a password): for messages.
    place: String,
    /// Seals the secrets kept in the database (OAuth credentials, client secrets).
    sealer: Sealer,
    /// PostgreSQL's URL, for the listener of changes; `None` on SQLite.
    url: Option<std::sync::Arc<str>>,
}

impl Registry {
    /// Opens (creating an SQLite file and its directory on first run) and migrates the
    /// database at `location`; its secrets are sealed with `secret_key`, or, on SQLite, the
    /// key file beside it when that is empty (see [`Sealer::for_database`]).
    pub async fn open(
        location: &DatabaseLocation,
        secret_key: &str,
    ) -> Result<Self, RegistryError> {
        match location {
            DatabaseLocation::Sqlite(path) => Ok(Self {
                engine: Engine::Sqlite(sqlite::open(path).await?),
                place: path.display().to_string(),
                sealer: Sealer::for_database(secret_key, path)?,
                url: None,
            }),
            DatabaseLocation::Postgres(url) => {
                // Every replica must open what another sealed: no key file of one's own.
                // (The config check refuses this before the gateway gets here.)
                if secret_key.is_empty() {
                    return Err(RegistryError::NoSecretKey);
                }
                Ok(Self {
                    engine: Engine::Postgres(postgres::open(url).await?),
                    place: Self::describe(location),
                    sealer: Sealer::from_secret(secret_key),
                    url: Some(url.as_str().into()),
                })
            }
        }
    }

    /// What seals the secrets kept in the database.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The database, for messages: its file, or its server and name.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Closes the database. On SQLite the write-ahead log is merged into the file first, so
    /// the file alone holds every row (a backup that copies only `mcps.db` loses nothing).
    /// Every clone is closed with it: later queries fail. Called on every clean stop.
    pub async fn close(self) -> Result<(), RegistryError> {
        match self.engine {
            Engine::Sqlite(connection) => sqlite::close(connection).await,
            Engine::Postgres(pool) => {
                pool.close();
                Ok(())
            }
        }
    }

    /// The schema of the database at `location`: how many migrations it has had (`None`: an
    /// SQLite file that does not exist yet), and how many there are. Changes nothing.
    pub async fn schema(
        location: &DatabaseLocation,
    ) -> Result<(Option<usize>, usize), RegistryError> {
        let applied = match location {
            DatabaseLocation::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || migrations::applied_sqlite(&path))
                    .await
                    .map_err(|error| RegistryError::Sql(error.to_string()))??
            }
            DatabaseLocation::Postgres(url) => Some(postgres::applied(url).await?),
        };
        Ok((applied, migrations::latest()))
    }

    /// `location` for messages: a file, or a server and database without the password.
    pub fn describe(location: &DatabaseLocation) -> String {
        match location {
            DatabaseLocation::Sqlite(path) => path.display().to_string(),
            DatabaseLocation::Postgres(url) => postgres::describe(url),
        }
    }

    fn db(&self) -> &Engine {
        &self.engine
    }
}

/// A file kept beside the SQLite database `database`: its name with `suffix` after it
/// (SQLite's `-wal`, the sealing key's `.key`, the clean stop's `-closed`).
pub fn beside(database: &std::path::Path, suffix: &str) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Milliseconds since the Unix epoch: how every time is stored.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}
