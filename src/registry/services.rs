//! Services (upstream entries) registered through the API. The entry is stored as the JSON
//! of the same `UpstreamConfig` a `proxy.yaml` entry parses into: one schema, whichever door
//! a service comes in by.

use rusqlite::{OptionalExtension, params};

use super::{Registry, RegistryError, now_ms};
use crate::{config::UpstreamConfig, security::Sealer};

/// A stored service.
#[derive(Debug, Clone)]
pub struct StoredService {
    pub name: String,
    pub spec: UpstreamConfig,
    pub created_at: i64,
    pub updated_at: i64,
}

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredService> {
    let spec: String = row.get(1)?;
    let spec = serde_json::from_str(&spec).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(error))
    })?;
    Ok(StoredService {
        name: row.get(0)?,
        spec,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
    })
}

/// The entry as stored: its OAuth client secret sealed (see `security::Sealer`).
fn to_json(sealer: &Sealer, name: &str, spec: &UpstreamConfig) -> Result<String, RegistryError> {
    let mut spec = spec.clone();
    if let Some(secret) = client_secret(&mut spec) {
        *secret = sealer.seal(&secret_context(name), secret.as_bytes());
    }
    serde_json::to_string(&spec).map_err(|error| RegistryError::Sql(error.to_string()))
}

/// A stored service as the gateway uses it: its client secret opened.
fn opened(sealer: &Sealer, mut service: StoredService) -> Result<StoredService, RegistryError> {
    let context = secret_context(&service.name);
    if let Some(secret) = client_secret(&mut service.spec) {
        let clear = sealer.open(&context, secret)?;
        *secret = String::from_utf8(clear)
            .map_err(|_| RegistryError::Sql("a sealed client secret is not text".into()))?;
    }
    Ok(service)
}

fn client_secret(spec: &mut UpstreamConfig) -> Option<&mut String> {
    spec.oauth
        .as_mut()
        .and_then(|oauth| oauth.client_secret.as_mut())
        .filter(|secret| !secret.is_empty())
}

fn secret_context(name: &str) -> String {
    format!("service:{name}:oauth.client_secret")
}

/// The columns [`from_row`] reads, in its order.
const COLUMNS: &str = "name, spec, created_at, updated_at";

/// Runs a statement that returns at most one service row; none is `missing`.
fn one_service(
    db: &rusqlite::Connection,
    sql: &str,
    values: impl rusqlite::Params,
    missing: impl FnOnce() -> RegistryError,
) -> Result<StoredService, RegistryError> {
    db.query_row(&format!("{sql} RETURNING {COLUMNS}"), values, from_row)
        .optional()?
        .ok_or_else(missing)
}

impl Registry {
    /// Every stored service, in the order they were added.
    pub async fn services(&self) -> Result<Vec<StoredService>, RegistryError> {
        self.run(|db| {
            let mut statement = db.prepare(&format!(
                "SELECT {COLUMNS} FROM services ORDER BY created_at, name"
            ))?;
            let rows = statement.query_map([], from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await?
        .into_iter()
        .map(|service| opened(&self.sealer, service))
        .collect()
    }

    /// Stores a new service; a taken name is a conflict.
    pub async fn insert_service(
        &self,
        name: &str,
        spec: &UpstreamConfig,
    ) -> Result<StoredService, RegistryError> {
        let json = to_json(&self.sealer, name, spec)?;
        let name = name.to_owned();
        self.run(move |db| {
            one_service(
                db,
                "INSERT INTO services (name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO NOTHING",
                params![name, json, now_ms()],
                || RegistryError::Conflict(format!("a service named {name:?} exists")),
            )
        })
        .await
        .and_then(|service| opened(&self.sealer, service))
    }

    /// Replaces a stored service's entry.
    pub async fn update_service(
        &self,
        name: &str,
        spec: &UpstreamConfig,
    ) -> Result<StoredService, RegistryError> {
        let json = to_json(&self.sealer, name, spec)?;
        let name = name.to_owned();
        self.run(move |db| {
            one_service(
                db,
                "UPDATE services SET spec = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, json, now_ms()],
                || RegistryError::NotFound(format!("no service named {name:?}")),
            )
        })
        .await
        .and_then(|service| opened(&self.sealer, service))
    }

    /// Deletes a stored service.
    pub async fn delete_service(&self, name: &str) -> Result<(), RegistryError> {
        let name = name.to_owned();
        self.run(
            move |db| match db.execute("DELETE FROM services WHERE name = ?1", [&name])? {
                0 => Err(RegistryError::NotFound(format!(
                    "no service named {name:?}"
                ))),
                _ => Ok(()),
            },
        )
        .await
    }
}
