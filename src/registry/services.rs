//! Services (upstream entries) registered through the API. The entry is stored as the JSON
//! of the same `UpstreamConfig` a `proxy.yaml` entry parses into: one schema, whichever door
//! a service comes in by.

use super::{
    Change, Registry, RegistryError,
    engine::{Row, Value, values},
    now_ms,
};
use crate::{config::UpstreamConfig, security::Sealer};

/// A stored service.
#[derive(Debug, Clone)]
pub struct StoredService {
    pub name: String,
    pub spec: UpstreamConfig,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A service of a row read with [`COLUMNS`] (its secrets still sealed).
pub(super) fn from_row(row: &Row) -> Result<StoredService, RegistryError> {
    let name = row.text(0)?;
    let spec = serde_json::from_str(&row.text(1)?).map_err(|error| {
        RegistryError::Sql(format!(
            "the stored entry of service {name:?} does not read: {error}"
        ))
    })?;
    Ok(StoredService {
        name,
        spec,
        created_at: row.int(2)?,
        updated_at: row.int(3)?,
    })
}

/// The entry as stored: its OAuth client secret sealed (see `security::Sealer`).
pub(super) fn to_json(
    sealer: &Sealer,
    name: &str,
    spec: &UpstreamConfig,
) -> Result<String, RegistryError> {
    let mut spec = spec.clone();
    if let Some(secret) = client_secret(&mut spec) {
        *secret = sealer.seal(&secret_context(name), secret.as_bytes());
    }
    serde_json::to_string(&spec).map_err(|error| RegistryError::Sql(error.to_string()))
}

/// A stored service as the gateway uses it: its client secret opened.
fn opened(sealer: &Sealer, mut service: StoredService) -> Result<StoredService, RegistryError> {
    service.spec = opened_spec(sealer, &service.name, service.spec)?;
    Ok(service)
}

/// The stored entry of service `name` with its client secret opened.
pub(super) fn opened_spec(
    sealer: &Sealer,
    name: &str,
    mut spec: UpstreamConfig,
) -> Result<UpstreamConfig, RegistryError> {
    if let Some(secret) = client_secret(&mut spec) {
        let clear = sealer.open(&secret_context(name), secret)?;
        *secret = String::from_utf8(clear)
            .map_err(|_| RegistryError::Sql("a sealed client secret is not text".into()))?;
    }
    Ok(spec)
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
pub(super) const COLUMNS: &str = "name, spec, created_at, updated_at";

impl Registry {
    /// Runs a statement that returns at most one service row; none is `missing`.
    async fn one_service(
        &self,
        sql: &str,
        values: Vec<Value>,
        missing: impl FnOnce() -> RegistryError,
    ) -> Result<StoredService, RegistryError> {
        let row = self
            .db()
            .row(&format!("{sql} RETURNING {COLUMNS}"), values)
            .await?
            .ok_or_else(missing)?;
        self.announce(Change::Services).await;
        opened(&self.sealer, from_row(&row)?)
    }

    /// Every stored service, in the order they were added.
    pub async fn services(&self) -> Result<Vec<StoredService>, RegistryError> {
        let sql = format!("SELECT {COLUMNS} FROM services ORDER BY created_at, name");
        self.db()
            .rows(&sql, values![])
            .await?
            .iter()
            .map(|row| opened(&self.sealer, from_row(row)?))
            .collect()
    }

    /// Stores a new service; a taken name is a conflict.
    pub async fn insert_service(
        &self,
        name: &str,
        spec: &UpstreamConfig,
    ) -> Result<StoredService, RegistryError> {
        let json = to_json(&self.sealer, name, spec)?;
        self.one_service(
            "INSERT INTO services (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (name) DO NOTHING",
            values![name, json, now_ms()],
            || RegistryError::Conflict(format!("a service named {name:?} exists")),
        )
        .await
    }

    /// Replaces a stored service's entry.
    pub async fn update_service(
        &self,
        name: &str,
        spec: &UpstreamConfig,
    ) -> Result<StoredService, RegistryError> {
        let json = to_json(&self.sealer, name, spec)?;
        self.one_service(
            "UPDATE services SET spec = $2, updated_at = $3 WHERE name = $1",
            values![name, json, now_ms()],
            || RegistryError::NotFound(format!("no service named {name:?}")),
        )
        .await
    }

    /// Deletes a stored service.
    pub async fn delete_service(&self, name: &str) -> Result<(), RegistryError> {
        match self
            .db()
            .execute("DELETE FROM services WHERE name = $1", values![name])
            .await?
        {
            0 => Err(RegistryError::NotFound(format!(
                "no service named {name:?}"
            ))),
            _ => {
                self.announce(Change::Services).await;
                Ok(())
            }
        }
    }
}
