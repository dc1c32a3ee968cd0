//! `mcps db copy`: every row of one registry into another (an SQLite file into PostgreSQL, as
//! a team moves to replicas). Rows keep their ids, so API keys, logins and the call history
//! mean the same afterwards. Secrets are opened with the source's key and sealed again with
//! the target's: the two keys need not be the same (an SQLite file's made-up key file is not
//! a `database.secret_key`).
//!
//! Copying again is harmless: rows already there are left as they are. A target that holds
//! rows of its own (a gateway already ran on it and made its own admin) is refused before
//! anything is written: merging two registries would attach one's keys to the other's users.

use std::collections::HashSet;

use super::{
    Registry, RegistryError,
    engine::{Engine, Row, Value, values},
    oauth_seal_context, services,
};

/// Rows per table, in the target after the copy (each equal to the source's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    pub tables: Vec<(&'static str, i64)>,
}

/// A table: its name, its columns, and how many of them (from the first) tell whether a
/// target's row is one a copy from here made.
struct Table {
    name: &'static str,
    columns: &'static str,
    /// Every column where a row is copied as it is; the key where its secrets are sealed
    /// again (with a fresh nonce, so they differ each time).
    key_columns: usize,
    /// It has an `id` identity: PostgreSQL must be told it moved past the copied ids, and
    /// the rows are read and compared a page at a time by it (the call history may be long).
    identity: bool,
}

/// In the order foreign keys need: users before their tokens.
const TABLES: &[Table] = &[
    Table {
        name: "users",
        columns: "id, username, password_hash, is_admin, created_at",
        key_columns: 5,
        identity: true,
    },
    Table {
        name: "tokens",
        columns: "id, secret_hash, user_id, kind, name, hint, created_at, expires_at, revoked_at, virtual_server",
        key_columns: 10,
        identity: true,
    },
    Table {
        name: "services",
        columns: services::COLUMNS,
        key_columns: 1,
        identity: false,
    },
    Table {
        name: "oauth_credentials",
        columns: "upstream, principal, sealed, updated_at",
        key_columns: 2,
        identity: false,
    },
    Table {
        name: "calls",
        columns: "id, at, client, principal, upstream, tool, duration_us, outcome, error",
        key_columns: 9,
        identity: true,
    },
];

/// Rows of a table with an `id` are read and written this many at a time.
const PAGE: i64 = 2_000;

impl Registry {
    /// Copies every row of this registry into `target`, and checks that each table there
    /// then has as many rows as here.
    pub async fn copy_to(&self, target: &Registry) -> Result<Copied, RegistryError> {
        for table in TABLES {
            self.refuse_foreign_rows(target, table).await?;
        }
        self.refuse_foreign_uploads(target).await?;
        for table in TABLES {
            self.copy_table(target, table).await?;
            if table.identity
                && let Engine::Postgres(_) = target.db()
            {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', 'id'), GREATEST((SELECT MAX(id) FROM {0}), 1))",
                    table.name
                );
                target.db().rows(&sql, values![]).await?;
            }
        }
        let mut tables = Vec::new();
        for table in TABLES {
            let (here, there) = (self.count(table).await?, target.count(table).await?);
            if here != there {
                return Err(RegistryError::Sql(format!(
                    "{}: {here} rows here, {there} in the target after the copy",
                    table.name
                )));
            }
            tables.push((table.name, there));
        }
        tables.push(("uploads", self.copy_uploads(target).await?));
        Ok(Copied { tables })
    }

    /// Refuses a target with uploads this registry does not have.
    async fn refuse_foreign_uploads(&self, target: &Registry) -> Result<(), RegistryError> {
        let ours: HashSet<String> = self.upload_names().await?.into_iter().collect();
        let foreign = target
            .upload_names()
            .await?
            .into_iter()
            .filter(|name| !ours.contains(name))
            .count();
        if foreign > 0 {
            return Err(RegistryError::Conflict(format!(
                "the target's uploads has {foreign} rows that are not this registry's: copy into a new, empty database"
            )));
        }
        Ok(())
    }

    /// Copies the uploads one at a time (each may be as large as `limits.max_upload_bytes`);
    /// how many the target then has, as many as here.
    async fn copy_uploads(&self, target: &Registry) -> Result<i64, RegistryError> {
        let names = self.upload_names().await?;
        for name in &names {
            let Some(row) = self
                .db()
                .row(
                    "SELECT content, uploaded_at FROM uploads WHERE name = $1",
                    values![name],
                )
                .await?
            else {
                continue;
            };
            target
                .db()
                .execute(
                    "INSERT INTO uploads (name, content, uploaded_at) VALUES ($1, $2, $3)
                    ON CONFLICT DO NOTHING",
                    values![name, row.bytes(0)?, row.int(1)?],
                )
                .await?;
        }
        let there = target.upload_names().await?.len();
        if there != names.len() {
            return Err(RegistryError::Sql(format!(
                "uploads: {} rows here, {there} in the target after the copy",
                names.len()
            )));
        }
        Ok(there as i64)
    }

    async fn count(&self, table: &Table) -> Result<i64, RegistryError> {
        let sql = format!("SELECT COUNT(*) FROM {}", table.name);
        match self.db().row(&sql, values![]).await? {
            Some(row) => row.int(0),
            None => Ok(0),
        }
    }

    /// What tells `table`'s rows apart (see [`Table::key_columns`]), as text: every row's,
    /// or for a table with an `id`, those of ids `first..=last`.
    async fn keys(
        &self,
        table: &Table,
        ids: Option<(i64, i64)>,
    ) -> Result<HashSet<String>, RegistryError> {
        let key: Vec<&str> = table.columns.split(", ").take(table.key_columns).collect();
        let (condition, values) = match ids {
            Some((first, last)) => (" WHERE id BETWEEN $1 AND $2", values![first, last]),
            None => ("", values![]),
        };
        let sql = format!("SELECT {} FROM {}{condition}", key.join(", "), table.name);
        let rows = self.db().rows(&sql, values).await?;
        Ok(rows.iter().map(|row| format!("{:?}", row.0)).collect())
    }

    /// How many of the target's rows of `table` this registry does not have. A table with an
    /// `id` (the call history may be long) is compared a page of the target's ids at a time.
    async fn foreign_rows(&self, target: &Registry, table: &Table) -> Result<usize, RegistryError> {
        if !table.identity {
            let ours = self.keys(table, None).await?;
            let theirs = target.keys(table, None).await?;
            return Ok(theirs.iter().filter(|key| !ours.contains(*key)).count());
        }
        let page = format!(
            "SELECT id FROM {} WHERE id > $1 ORDER BY id LIMIT {PAGE}",
            table.name
        );
        let mut foreign = 0;
        let mut after = i64::MIN;
        loop {
            let ids = target.db().rows(&page, values![after]).await?;
            let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
                return Ok(foreign);
            };
            let range = (first.int(0)?, last.int(0)?);
            let ours = self.keys(table, Some(range)).await?;
            let theirs = target.keys(table, Some(range)).await?;
            foreign += theirs.iter().filter(|key| !ours.contains(*key)).count();
            if (ids.len() as i64) < PAGE {
                return Ok(foreign);
            }
            after = range.1;
        }
    }

    async fn refuse_foreign_rows(
        &self,
        target: &Registry,
        table: &Table,
    ) -> Result<(), RegistryError> {
        let foreign = self.foreign_rows(target, table).await?;
        if foreign > 0 {
            return Err(RegistryError::Conflict(format!(
                "the target's {} has {foreign} rows that are not this registry's: copy into a new, empty database (a gateway started on it first makes an admin of its own)",
                table.name
            )));
        }
        Ok(())
    }

    async fn copy_table(&self, target: &Registry, table: &Table) -> Result<(), RegistryError> {
        let count = table.columns.split(", ").count();
        let parameters: Vec<String> = (1..=count).map(|n| format!("${n}")).collect();
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            table.name,
            table.columns,
            parameters.join(", ")
        );
        let mut after = i64::MIN;
        loop {
            let (sql, page) = if table.identity {
                let sql = format!(
                    "SELECT {} FROM {} WHERE id > $1 ORDER BY id LIMIT {PAGE}",
                    table.columns, table.name
                );
                (sql, values![after])
            } else {
                (
                    format!("SELECT {} FROM {}", table.columns, table.name),
                    values![],
                )
            };
            let rows = self.db().rows(&sql, page).await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.int(0).unwrap_or(i64::MAX);
            let full = rows.len() as i64 == PAGE;
            let batch = rows
                .into_iter()
                .map(|row| self.sealed_again(target, table, row))
                .collect::<Result<Vec<_>, _>>()?;
            target.db().execute_each(&insert, batch).await?;
            if !table.identity || !full {
                return Ok(());
            }
        }
    }

    /// `row` as the target stores it: its secrets sealed with the target's key.
    fn sealed_again(
        &self,
        target: &Registry,
        table: &Table,
        row: Row,
    ) -> Result<Vec<Value>, RegistryError> {
        match table.name {
            "services" => {
                let service = services::from_row(&row)?;
                let spec = services::opened_spec(&self.sealer, &service.name, service.spec)?;
                let mut values = row.0;
                values[1] = services::to_json(&target.sealer, &service.name, &spec)?.into();
                Ok(values)
            }
            "oauth_credentials" => {
                let context = oauth_seal_context(&row.text(0)?, &row.text(1)?);
                let clear = self.sealer.open(&context, &row.text(2)?)?;
                let mut values = row.0;
                values[2] = target.sealer.seal(&context, &clear).into();
                Ok(values)
            }
            _ => Ok(row.0),
        }
    }
}
