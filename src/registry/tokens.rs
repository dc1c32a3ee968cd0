//! Login tokens and API keys. The secret is shown once, at creation; only its hash
//! ([`secret_hash`]) is stored.

use super::{
    Change, Registry, RegistryError,
    engine::{Row, values},
    now_ms,
};
use crate::security::secret_hash;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Made by `POST /auth/login`; expires.
    Login,
    /// Made on request, for scripts and MCP clients; lasts until revoked.
    ApiKey,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::ApiKey => "api_key",
        }
    }

    fn parse(text: &str) -> Self {
        if text == "login" {
            Self::Login
        } else {
            Self::ApiKey
        }
    }
}

/// A token as stored: everything but the secret.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub id: i64,
    pub user_id: i64,
    pub username: String,
    pub is_admin: bool,
    pub kind: TokenKind,
    pub name: String,
    pub secret_hash: [u8; 32],
    /// The first characters of the secret, to tell keys apart in a list.
    pub hint: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// The virtual server an API key is bound to.
    pub virtual_server: Option<String>,
}

/// How every secret the registry makes begins.
pub const SECRET_PREFIX: &str = "mcps_";

/// A new random secret: `mcps_` and 43 URL-safe characters (256 bits).
pub fn new_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

const SELECT: &str =
    "SELECT t.id, t.user_id, u.username, u.is_admin, t.kind, t.name, t.secret_hash, t.hint,
        t.created_at, t.expires_at, t.revoked_at, t.virtual_server
    FROM tokens t JOIN users u ON u.id = t.user_id";

fn from_row(row: &Row) -> Result<StoredToken, RegistryError> {
    Ok(StoredToken {
        id: row.int(0)?,
        user_id: row.int(1)?,
        username: row.text(2)?,
        is_admin: row.bool(3)?,
        kind: TokenKind::parse(&row.text(4)?),
        name: row.text(5)?,
        secret_hash: row.bytes(6)?.try_into().unwrap_or([0; 32]),
        hint: row.text(7)?,
        created_at: row.int(8)?,
        expires_at: row.opt_int(9)?,
        revoked_at: row.opt_int(10)?,
        virtual_server: row.opt_text(11)?,
    })
}

fn from_rows(rows: Vec<Row>) -> Result<Vec<StoredToken>, RegistryError> {
    rows.iter().map(from_row).collect()
}

impl Registry {
    /// Stores a new token for `user_id` and returns it with its secret, which is not kept.
    /// An API key may be bound to a virtual server.
    pub async fn create_token(
        &self,
        user_id: i64,
        kind: TokenKind,
        name: &str,
        expires_at: Option<i64>,
        virtual_server: Option<&str>,
    ) -> Result<(StoredToken, String), RegistryError> {
        let secret = new_secret();
        let hash = secret_hash(&secret);
        let hint = format!("{}…", &secret[..9]);
        let inserted = self
            .db()
            .row(
                "INSERT INTO tokens (user_id, kind, name, secret_hash, hint, created_at, expires_at, virtual_server)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                values![user_id, kind.as_str(), name, hash.as_slice(), hint, now_ms(), expires_at, virtual_server],
            )
            .await?
            .ok_or_else(|| RegistryError::Sql("the new token has no id".into()))?;
        let token = self
            .token(inserted.int(0)?)
            .await?
            .ok_or_else(|| RegistryError::Sql("the new token is gone".into()))?;
        self.announce(Change::Tokens).await;
        Ok((token, secret))
    }

    /// Token `id`, revoked or not.
    async fn token(&self, id: i64) -> Result<Option<StoredToken>, RegistryError> {
        self.db()
            .row(&format!("{SELECT} WHERE t.id = $1"), values![id])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Every token that is neither revoked nor expired: what the gateway accepts.
    pub async fn active_tokens(&self) -> Result<Vec<StoredToken>, RegistryError> {
        let sql = format!(
            "{SELECT} WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $1)"
        );
        from_rows(self.db().rows(&sql, values![now_ms()]).await?)
    }

    /// The token whose secret hashes to `hash`, if it is neither revoked nor expired.
    pub async fn active_token(&self, hash: [u8; 32]) -> Result<Option<StoredToken>, RegistryError> {
        let sql = format!(
            "{SELECT} WHERE t.secret_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)"
        );
        self.db()
            .row(&sql, values![hash.as_slice(), now_ms()])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// A user's API keys, revoked ones included, newest first.
    pub async fn api_keys(&self, user_id: i64) -> Result<Vec<StoredToken>, RegistryError> {
        let sql =
            format!("{SELECT} WHERE t.user_id = $1 AND t.kind = 'api_key' ORDER BY t.id DESC");
        from_rows(self.db().rows(&sql, values![user_id]).await?)
    }

    /// Revokes token `id` of kind `kind` belonging to `user_id`. Returns the revoked token;
    /// an unknown id, another user's or another kind's is not found.
    pub async fn revoke_token(
        &self,
        id: i64,
        kind: TokenKind,
        user_id: i64,
    ) -> Result<StoredToken, RegistryError> {
        let token = self
            .token(id)
            .await?
            .filter(|token| token.user_id == user_id && token.kind == kind)
            .ok_or_else(|| {
                RegistryError::NotFound(match kind {
                    TokenKind::ApiKey => format!("no API key {id}"),
                    TokenKind::Login => format!("no login token {id}"),
                })
            })?;
        self.db()
            .execute(
                "UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                values![id, now_ms()],
            )
            .await?;
        self.announce(Change::Tokens).await;
        Ok(token)
    }

    /// Deletes expired login tokens (they can never be used again).
    pub async fn forget_expired_tokens(&self) -> Result<u64, RegistryError> {
        self.db()
            .execute(
                "DELETE FROM tokens WHERE kind = 'login' AND expires_at <= $1",
                values![now_ms()],
            )
            .await
    }
}
