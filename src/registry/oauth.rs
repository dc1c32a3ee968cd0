//! What the gateway holds to sign in to OAuth upstreams, one row per upstream and principal.
//! The registry stores it as the caller sealed it (see `security::Sealer`) and never sees it
//! in clear.

use super::{Registry, RegistryError, engine::values, now_ms};

/// What the credentials of `upstream` for `principal` are sealed under: a sealed value opens
/// only in the row it was made for.
pub fn oauth_seal_context(upstream: &str, principal: &str) -> String {
    format!("oauth:{upstream}:{principal}")
}

impl Registry {
    /// The sealed credentials of `upstream` for `principal` (`""`: the gateway's own).
    pub async fn oauth_credentials(
        &self,
        upstream: &str,
        principal: &str,
    ) -> Result<Option<String>, RegistryError> {
        self.db()
            .row(
                "SELECT sealed FROM oauth_credentials WHERE upstream = $1 AND principal = $2",
                values![upstream, principal],
            )
            .await?
            .map(|row| row.text(0))
            .transpose()
    }

    /// Stores (replacing) the sealed credentials of `upstream` for `principal`.
    pub async fn save_oauth_credentials(
        &self,
        upstream: &str,
        principal: &str,
        sealed: String,
    ) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "INSERT INTO oauth_credentials (upstream, principal, sealed, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (upstream, principal) DO UPDATE SET sealed = $3, updated_at = $4",
                values![upstream, principal, sealed, now_ms()],
            )
            .await?;
        Ok(())
    }

    /// Forgets the credentials of `upstream` for `principal`.
    pub async fn clear_oauth_credentials(
        &self,
        upstream: &str,
        principal: &str,
    ) -> Result<(), RegistryError> {
        self.db()
            .execute(
                "DELETE FROM oauth_credentials WHERE upstream = $1 AND principal = $2",
                values![upstream, principal],
            )
            .await?;
        Ok(())
    }

    /// Forgets every upstream's credentials of `principal` (its key was revoked); how many.
    pub async fn clear_principal_oauth_credentials(
        &self,
        principal: &str,
    ) -> Result<u64, RegistryError> {
        self.db()
            .execute(
                "DELETE FROM oauth_credentials WHERE principal = $1",
                values![principal],
            )
            .await
    }
}
