//! Where an OAuth upstream's credentials are kept: in memory for the hot path, and sealed in
//! the registry so they survive a restart. rmcp's authorization manager reads and writes
//! them through [`CredentialStore`].

use std::sync::Arc;

use rmcp::transport::auth::{AuthError, AuthorizationMetadata, CredentialStore, StoredCredentials};
use serde::{Deserialize, Serialize};

use super::vault::OAuthVault;

/// Everything kept about signing in to one upstream.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(super) struct Record {
    /// The tokens, as rmcp's manager stores them.
    pub credentials: Option<StoredCredentials>,
    /// The client the gateway registered itself as (RFC 7591), to use again.
    pub client: Option<RegisteredClient>,
    /// The authorization server's metadata, to restore a signed-in upstream without asking.
    pub metadata: Option<AuthorizationMetadata>,
}

/// A client registered dynamically, at the authorization server named `issuer`.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct RegisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub issuer: Option<String>,
    pub redirect_uri: String,
}

/// The store of one upstream's [`Record`].
#[derive(Clone)]
pub(super) struct SealedStore {
    upstream: Arc<str>,
    /// The user whose record it is; `None` for the gateway's own.
    owner: Option<Arc<str>>,
    vault: Arc<OAuthVault>,
    record: Arc<tokio::sync::RwLock<Record>>,
}

impl SealedStore {
    pub fn new(upstream: Arc<str>, owner: Option<Arc<str>>, vault: Arc<OAuthVault>) -> Self {
        Self {
            upstream,
            owner,
            vault,
            record: Arc::default(),
        }
    }

    /// Loads the record from the registry (waiting for it to open); false when none is kept.
    pub async fn load_kept(&self) -> Result<bool, String> {
        let kept = self
            .vault
            .load(&self.upstream, self.owner.as_deref())
            .await?;
        let found = kept.is_some();
        *self.record.write().await = kept.unwrap_or_default();
        Ok(found)
    }

    pub async fn record(&self) -> Record {
        self.record.read().await.clone()
    }

    /// Changes the record and keeps it.
    pub async fn update(&self, change: impl FnOnce(&mut Record)) -> Result<(), String> {
        let mut record = self.record.write().await;
        change(&mut record);
        self.vault
            .save(&self.upstream, self.owner.as_deref(), &record)
            .await
    }

    /// Forgets everything: the tokens and the registered client.
    pub async fn forget(&self) -> Result<(), String> {
        *self.record.write().await = Record::default();
        self.vault
            .forget(&self.upstream, self.owner.as_deref())
            .await
    }
}

fn store_error(error: String) -> AuthError {
    AuthError::InternalError(format!("cannot keep the credentials: {error}"))
}

#[async_trait::async_trait]
impl CredentialStore for SealedStore {
    async fn load(&self) -> Result<Option<StoredCredentials>, AuthError> {
        Ok(self.record.read().await.credentials.clone())
    }

    async fn save(&self, credentials: StoredCredentials) -> Result<(), AuthError> {
        self.update(|record| record.credentials = Some(credentials))
            .await
            .map_err(store_error)
    }

    async fn clear(&self) -> Result<(), AuthError> {
        self.update(|record| record.credentials = None)
            .await
            .map_err(store_error)
    }
}
