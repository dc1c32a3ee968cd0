//! The registry on PostgreSQL, for teams that run several gateways on one database.
//!
//! tokio-postgres is the asynchronous client the Rust ecosystem builds on (sqlx and diesel-async
//! wrap it or mirror it); deadpool-postgres pools its connections. Neither brings a second
//! SQLite: sqlx's would fight rusqlite's over the one `sqlite3` library a binary may link.
//! TLS is rustls with the ring provider the gateway already uses, on libpq's `sslmode` and
//! `sslrootcert` (see [`super::postgres_tls`]).

use std::str::FromStr;

use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::{
    RegistryError,
    engine::{Row, Value},
    migrations, postgres_tls,
};

/// Connections per gateway: the registry's queries are short, and a database serves several
/// replicas.
const POOL_SIZE: usize = 8;
/// How long making a connection, or waiting for a free one, may take before a query fails
/// (a server that drops packets would otherwise hold it for the kernel's TCP timeout).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A pool on the database at `url` (a libpq URL), migrated to the latest schema.
pub async fn open(url: &str) -> Result<Pool, RegistryError> {
    let pool = connect(url)?;
    let mut client = pool
        .get()
        .await
        .map_err(|error| unreachable(url, pool_text(&error)))?;
    migrations::apply_postgres(&mut client)
        .await
        .map_err(|error| RegistryError::Migrate {
            place: describe(url),
            reason: text(&error),
        })?;
    Ok(pool)
}

/// How many migrations the database at `url` has had. Changes nothing.
pub async fn applied(url: &str) -> Result<usize, RegistryError> {
    let pool = connect(url)?;
    let client = pool
        .get()
        .await
        .map_err(|error| unreachable(url, pool_text(&error)))?;
    migrations::applied_postgres(&client)
        .await
        .map_err(|error| unreachable(url, text(&error)))
}

/// One connection of its own to the database at `url`, outside the pool (the listener of
/// [`super::changes`]), and the connection's half that must be polled.
pub async fn connect_one(
    url: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio_postgres::Connection<
            tokio_postgres::Socket,
            impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
        >,
    ),
    RegistryError,
> {
    let (config, tls) = config(url)?;
    config
        .connect(tls)
        .await
        .map_err(|error| unreachable(url, text(&error)))
}

/// The connection settings of `url`, and its TLS connector.
fn config(
    url: &str,
) -> Result<
    (
        tokio_postgres::Config,
        tokio_postgres_rustls::MakeRustlsConnect,
    ),
    RegistryError,
> {
    let (plain, check) = postgres_tls::split(url).map_err(|reason| unreachable(url, reason))?;
    let mut config =
        tokio_postgres::Config::from_str(&plain).map_err(|error| unreachable(url, text(&error)))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let tls = postgres_tls::connector(&check).map_err(|reason| unreachable(url, reason))?;
    Ok((config, tls))
}

/// A pool on the database at `url`; no connection is made yet.
fn connect(url: &str) -> Result<Pool, RegistryError> {
    let (config, tls) = config(url)?;
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|error| unreachable(url, error.to_string()))
}

fn unreachable(url: &str, mut reason: String) -> RegistryError {
    if reason.contains("UnknownIssuer") {
        reason.push_str(
            " (an authority the gateway does not trust signed the server's certificate: name it with sslrootcert=/path/to/ca.pem)",
        );
    }
    RegistryError::Unreachable {
        place: describe(url),
        reason,
    }
}

/// `url` without its password, for messages: `postgresql://user@host:port/db`.
pub fn describe(url: &str) -> String {
    let plain = postgres_tls::split(url).map_or_else(|_| url.to_owned(), |(plain, _)| plain);
    let Ok(config) = tokio_postgres::Config::from_str(&plain) else {
        return "a PostgreSQL database (its URL does not parse)".into();
    };
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
        })
        .collect();
    format!(
        "postgresql://{}@{}/{}",
        config.get_user().unwrap_or_default(),
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

pub async fn rows(pool: &Pool, sql: &str, values: Vec<Value>) -> Result<Vec<Row>, RegistryError> {
    let client = client(pool).await?;
    let statement = client.prepare_cached(sql).await.map_err(from_db)?;
    let rows = client
        .query(&statement, &parameters(&values))
        .await
        .map_err(from_db)?;
    rows.iter().map(row_of).collect()
}

pub async fn execute(pool: &Pool, sql: &str, values: Vec<Value>) -> Result<u64, RegistryError> {
    let client = client(pool).await?;
    let statement = client.prepare_cached(sql).await.map_err(from_db)?;
    client
        .execute(&statement, &parameters(&values))
        .await
        .map_err(from_db)
}

/// Runs each statement with its values, all in one transaction.
pub async fn execute_all(
    pool: &Pool,
    statements: Vec<(String, Vec<Value>)>,
) -> Result<(), RegistryError> {
    let mut client = client(pool).await?;
    let transaction = client.transaction().await.map_err(from_db)?;
    for (sql, values) in &statements {
        let statement = transaction.prepare_cached(sql).await.map_err(from_db)?;
        transaction
            .execute(&statement, &parameters(values))
            .await
            .map_err(from_db)?;
    }
    transaction.commit().await.map_err(from_db)
}

/// A connection of the pool.
async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, RegistryError> {
    pool.get()
        .await
        .map_err(|error| RegistryError::Sql(pool_text(&error)))
}

fn parameters(values: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    values
        .iter()
        .map(|value| value as &(dyn ToSql + Sync))
        .collect()
}

fn row_of(row: &tokio_postgres::Row) -> Result<Row, RegistryError> {
    (0..row.len())
        .map(|column| {
            let kind = row.columns()[column].type_();
            let value = match *kind {
                Type::BOOL => row.try_get::<_, Option<bool>>(column)?.map(Value::from),
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(column)?
                    .map(|value| Value::Int(value.into())),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(column)?
                    .map(|value| Value::Int(value.into())),
                Type::INT8 => row.try_get::<_, Option<i64>>(column)?.map(Value::Int),
                Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(column)?.map(Value::Bytes),
                // What a function called for its effect answers (`setval` is not one).
                Type::VOID => None,
                _ => row.try_get::<_, Option<String>>(column)?.map(Value::Text),
            };
            Ok(value.unwrap_or(Value::Null))
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map(Row)
        .map_err(from_db)
}

/// A value as the column's type wants it: the registry's integers go into BIGINT, INTEGER and
/// BOOLEAN columns alike.
impl ToSql for Value {
    fn to_sql(
        &self,
        kind: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(value) => match *kind {
                Type::BOOL => (*value != 0).to_sql(kind, out),
                Type::INT2 => i16::try_from(*value)?.to_sql(kind, out),
                Type::INT4 => i32::try_from(*value)?.to_sql(kind, out),
                _ => value.to_sql(kind, out),
            },
            Self::Text(text) => text.as_str().to_sql(kind, out),
            Self::Bytes(bytes) => bytes.as_slice().to_sql(kind, out),
        }
    }

    fn accepts(kind: &Type) -> bool {
        matches!(
            *kind,
            Type::BOOL
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::TEXT
                | Type::VARCHAR
                | Type::BYTEA
                | Type::UNKNOWN
        )
    }

    to_sql_checked!();
}

fn from_db(error: tokio_postgres::Error) -> RegistryError {
    match error.as_db_error() {
        // The registry's own conflicts are answered by `ON CONFLICT`; one here is a race.
        Some(db) if db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
            RegistryError::Conflict(db.message().to_owned())
        }
        _ => RegistryError::Sql(text(&error)),
    }
}

/// What went wrong, with the server's own message: tokio-postgres's `Display` alone says
/// only "db error".
pub(super) fn text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => crate::error::with_causes(error),
    }
}

fn pool_text(error: &deadpool_postgres::PoolError) -> String {
    match error {
        deadpool_postgres::PoolError::Backend(error) => text(error),
        other => other.to_string(),
    }
}
