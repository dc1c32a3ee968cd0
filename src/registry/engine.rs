//! The two databases the registry runs on, behind one way of asking: SQL written once, with
//! `$1`-style parameters, and rows of plain [`Value`]s.
//!
//! SQLite (embedded, the default) is one connection on a thread of its own; PostgreSQL (for
//! teams that run several replicas) a pool of connections. The statements the registry runs
//! are in the common dialect of both (`RETURNING`, `ON CONFLICT`, `FILTER`); only the schema's
//! types differ, in the migrations.

use super::{RegistryError, postgres, sqlite};

/// One value in or out of a statement: what both databases store.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// Every integer, and booleans (0 and 1).
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Self::Int(value.into())
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Self::Text(value.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(value: &[u8]) -> Self {
        Self::Bytes(value.to_owned())
    }
}

impl From<Vec<u8>> for Value {
    fn from(value: Vec<u8>) -> Self {
        Self::Bytes(value)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::Null, Into::into)
    }
}

/// The parameters of a statement, in order: `values![a, b]`.
macro_rules! values {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::registry::engine::Value::from($value)),*]
    };
}
pub(crate) use values;

/// One row of a result.
#[derive(Debug, Clone)]
pub struct Row(pub(super) Vec<Value>);

impl Row {
    fn at(&self, column: usize) -> Result<&Value, RegistryError> {
        self.0
            .get(column)
            .ok_or_else(|| RegistryError::Sql(format!("the row has no column {column}")))
    }

    fn wrong(column: usize, wanted: &str, got: &Value) -> RegistryError {
        RegistryError::Sql(format!("column {column} holds {got:?}, not {wanted}"))
    }

    pub fn int(&self, column: usize) -> Result<i64, RegistryError> {
        match self.at(column)? {
            Value::Int(value) => Ok(*value),
            other => Err(Self::wrong(column, "an integer", other)),
        }
    }

    pub fn opt_int(&self, column: usize) -> Result<Option<i64>, RegistryError> {
        match self.at(column)? {
            Value::Null => Ok(None),
            _ => self.int(column).map(Some),
        }
    }

    pub fn bool(&self, column: usize) -> Result<bool, RegistryError> {
        self.int(column).map(|value| value != 0)
    }

    pub fn text(&self, column: usize) -> Result<String, RegistryError> {
        match self.at(column)? {
            Value::Text(value) => Ok(value.clone()),
            other => Err(Self::wrong(column, "text", other)),
        }
    }

    pub fn opt_text(&self, column: usize) -> Result<Option<String>, RegistryError> {
        match self.at(column)? {
            Value::Null => Ok(None),
            _ => self.text(column).map(Some),
        }
    }

    pub fn bytes(&self, column: usize) -> Result<Vec<u8>, RegistryError> {
        match self.at(column)? {
            Value::Bytes(value) => Ok(value.clone()),
            other => Err(Self::wrong(column, "bytes", other)),
        }
    }
}

/// The database under a registry.
#[derive(Clone)]
pub enum Engine {
    Sqlite(tokio_rusqlite::Connection),
    Postgres(deadpool_postgres::Pool),
}

impl Engine {
    /// The rows `sql` answers.
    pub async fn rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<Row>, RegistryError> {
        match self {
            Self::Sqlite(connection) => sqlite::rows(connection, sql, values).await,
            Self::Postgres(pool) => postgres::rows(pool, sql, values).await,
        }
    }

    /// The first row `sql` answers, if any.
    pub async fn row(&self, sql: &str, values: Vec<Value>) -> Result<Option<Row>, RegistryError> {
        Ok(self.rows(sql, values).await?.into_iter().next())
    }

    /// Runs `sql`; how many rows it changed.
    pub async fn execute(&self, sql: &str, values: Vec<Value>) -> Result<u64, RegistryError> {
        match self {
            Self::Sqlite(connection) => sqlite::execute(connection, sql, values).await,
            Self::Postgres(pool) => postgres::execute(pool, sql, values).await,
        }
    }

    /// Runs `sql` once for each set of values, all in one transaction.
    pub async fn execute_each(
        &self,
        sql: &str,
        batch: Vec<Vec<Value>>,
    ) -> Result<(), RegistryError> {
        let statements = batch
            .into_iter()
            .map(|values| (sql.to_owned(), values))
            .collect();
        self.execute_all(statements).await
    }

    /// Runs each statement with its values, all in one transaction.
    pub async fn execute_all(
        &self,
        statements: Vec<(String, Vec<Value>)>,
    ) -> Result<(), RegistryError> {
        match self {
            Self::Sqlite(connection) => sqlite::execute_all(connection, statements).await,
            Self::Postgres(pool) => postgres::execute_all(pool, statements).await,
        }
    }
}
